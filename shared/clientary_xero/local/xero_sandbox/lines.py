"""Line items, the tax on each line and a document's totals: shared by invoices, quotes and
purchase orders.

Quantities to 4 places and unit amounts to ``unitdp``, discounts (ACCREC and quotes only), each line's
account checked against the chart, its TaxType (its own, its account's, else the organisation's
default) checked against the organisation's tax rates and its TaxAmount computed per line
(Exclusive, Inclusive or NoTax), then SubTotal, TotalTax and Total from the rounded lines.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from clientary_xero.local.xero_sandbox.accounts_tax import _APPLIES_BY_CLASS, _DEFAULT_TAX, AccountsTaxMixin
from clientary_xero.local.xero_sandbox.model import (
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _decimal,
    _money,
    _num,
)


class LinesMixin(AccountsTaxMixin):
    """Line items, per-line tax and totals."""

    @staticmethod
    def _lines(raw: Any, unitdp: int, discounts_allowed: bool) -> tuple[list[dict[str, Any]], list[str]]:
        if not isinstance(raw, list):
            return [], ["LineItems must be a list."]
        lines: list[dict[str, Any]] = []
        errors: list[str] = []
        for item in raw:
            if not isinstance(item, dict):
                errors.append("Each line item must be an object.")
                continue
            description = item.get("Description")
            if not isinstance(description, str) or not description.strip():
                errors.append("The description field is mandatory for each line item.")
                continue
            try:
                quantity = _decimal(item.get("Quantity"))
                unit = _decimal(item.get("UnitAmount"))
                given_line = _decimal(item.get("LineAmount"))
                discount = _decimal(item.get("DiscountRate"))
                tax = _decimal(item.get("TaxAmount"))
            except (InvalidOperation, ValueError):
                errors.append(f"The amounts of line item {description!r} must be numbers.")
                continue
            if discount is not None and not discounts_allowed:
                errors.append("Discounts are only supported on ACCREC invoices.")
                continue
            if discount is not None and not Decimal(0) <= discount <= Decimal(100):
                errors.append("DiscountRate must be between 0 and 100.")
                continue
            if quantity is None:
                quantity = Decimal(1) if (unit is not None or given_line is not None) else Decimal(0)
            if unit is None:
                unit = given_line / quantity if given_line is not None and quantity != 0 else Decimal(0)
            quantity = _money(quantity, 4)
            unit = _money(unit, unitdp)
            amount = quantity * unit
            if discount:
                amount = amount * (Decimal(100) - discount) / Decimal(100)
            line = {
                "LineItemID": item.get("LineItemID") or str(uuid.uuid4()),
                "Description": description,
                "Quantity": _num(quantity),
                "UnitAmount": _num(unit),
                "LineAmount": _num(_money(amount)),
                "Tracking": item.get("Tracking", []),
            }
            # Given ones only: _tax fills in the rest from the organisation's tax rates.
            if item.get("TaxType") not in (None, ""):
                line["TaxType"] = item["TaxType"]
            if tax is not None:
                line["TaxAmount"] = _num(_money(tax))
            for key in ("AccountCode", "AccountID", "ItemCode"):
                if item.get(key):
                    line[key] = item[key]
            if discount is not None:
                line["DiscountRate"] = _num(discount)
            lines.append(line)
        return lines, errors

    def _line_account_errors(self, tenant: _Tenant, lines: list[dict[str, Any]]) -> list[str]:
        errors = []
        for line in lines:
            code = line.get("AccountCode")
            if code and self._account(tenant, {"Code": code}) is None:
                errors.append(f"Account code '{code}' is not a valid code for this document.")
            if line.get("AccountID") and self._account(tenant, {"AccountID": line["AccountID"]}) is None:
                errors.append(f"AccountID '{line['AccountID']}' is not a valid account for this document.")
        return errors

    @staticmethod
    def _kept_lines(element: dict[str, Any], base: dict[str, Any], amount_types: Any) -> Any:
        """The lines to save: the element's, else the stored ones, whose computed taxes are
        computed again when the update changes LineAmountTypes."""
        if "LineItems" in element:
            return element["LineItems"]
        lines = base.get("LineItems", [])
        if base and amount_types != base.get("LineAmountTypes"):
            return [{k: v for k, v in li.items() if k != "TaxAmount"} for li in lines]
        return lines

    def _tax(
        self, tenant: _Tenant, lines: list[dict[str, Any]], amount_types: str, *, sales: bool
    ) -> list[str]:
        """Give each line its TaxType (its own, else its account's, else the organisation's default
        for sales or purchases) and TaxAmount from that rate, rounded per line as Xero does:
        Exclusive ``LineAmount * rate``, Inclusive ``LineAmount * rate / (1 + rate)``, NoTax 0. A
        TaxAmount the line gives is kept (Xero lets a line's tax be adjusted). The errors name each
        tax type that is unknown, not ACTIVE, or not for the line's kind of account."""
        errors: list[str] = []
        kind = amount_types.upper()
        sales_default, purchases_default, _ = _DEFAULT_TAX[tenant.country]
        for line in lines:
            ref = (
                {"AccountID": line["AccountID"]}
                if line.get("AccountID")
                else {"Code": line.get("AccountCode")}
            )
            account = self._account(tenant, ref)
            tax_type = str(
                line.get("TaxType")
                or (account or {}).get("TaxType")
                or (sales_default if sales else purchases_default)
            )
            line["TaxType"] = tax_type
            rate = tenant.tax_rates.get(tax_type)
            if account is not None:
                flag = _APPLIES_BY_CLASS[account["Class"]]
            else:
                flag = "CanApplyToRevenue" if sales else "CanApplyToExpenses"
            if rate is None or rate["Status"] != "ACTIVE" or not rate.get(flag):
                # Xero's wording as developers report it (reference/xero-api.md does not quote it).
                errors.append(
                    f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of "
                    "transaction."
                )
                continue
            if kind == "NOTAX":
                line["TaxAmount"] = 0.0
                continue
            if "TaxAmount" in line:
                continue
            share = Decimal(str(rate["EffectiveRate"])) / Decimal(100)
            amount = _decimal(line["LineAmount"]) or Decimal(0)
            tax = amount * share / (1 + share) if kind == "INCLUSIVE" else amount * share
            line["TaxAmount"] = _num(_money(tax))
        return errors

    @staticmethod
    def _totals(lines: list[dict[str, Any]], amount_types: str) -> tuple[Decimal, Decimal, Decimal]:
        """SubTotal, TotalTax and Total from the lines' (rounded) amounts and taxes: the one place
        every document's totals come from."""
        line_total = sum((_decimal(li["LineAmount"]) or Decimal(0) for li in lines), Decimal(0))
        tax = sum((_decimal(li.get("TaxAmount")) or Decimal(0) for li in lines), Decimal(0))
        kind = amount_types.upper()
        if kind == "NOTAX":
            tax = Decimal(0)
        if kind == "INCLUSIVE":
            return _money(line_total - tax), _money(tax), _money(line_total)
        return _money(line_total), _money(tax), _money(line_total + tax)
