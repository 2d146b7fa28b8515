"""Payments (PUT only): against an AUTHORISED invoice, to a bank account (or one that takes
payments), at most the amount due; the invoice's AmountPaid, AmountDue, Payments and status (PAID
when settled) follow.
"""

from __future__ import annotations

import copy
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from clientary_xero.connectors.xero.dates import to_xero_date
from clientary_xero.local.xero_sandbox.accounts_tax import AccountsTaxMixin
from clientary_xero.local.xero_sandbox.model import (
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _decimal,
    _money,
    _num,
)


class PaymentsMixin(AccountsTaxMixin):
    """Payments against invoices."""

    def _save_payment(self, tenant: _Tenant, element: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        ref = element.get("Invoice")
        invoice: dict[str, Any] | None = None
        if isinstance(ref, dict) and ref.get("InvoiceID"):
            invoice = tenant.invoices.get(str(ref["InvoiceID"]).lower())
        elif (isinstance(ref, dict) and ref.get("InvoiceNumber")) or element.get("InvoiceNumber"):
            number = (ref or {}).get("InvoiceNumber") or element.get("InvoiceNumber")
            invoice = next((i for i in tenant.invoices.values() if i["InvoiceNumber"] == number), None)
        else:
            return {}, ["An Invoice, CreditNote, Prepayment or Overpayment must be specified."]
        if invoice is None:
            errors.append("Invoice could not be found.")
        account_ref = element.get("Account") or ({"Code": element["Code"]} if element.get("Code") else None)
        account = self._account(tenant, account_ref)
        if account_ref is None:
            errors.append("An Account (Code or AccountID) must be specified.")
        elif account is None:
            errors.append("Account could not be found.")
        elif account["Type"] != "BANK" and not account.get("EnablePaymentsToAccount"):
            errors.append(
                "Payments can only be made to Bank accounts or accounts with "
                "'Enable payments to this account'."
            )
        try:
            amount = _decimal(element.get("Amount"))
        except (InvalidOperation, ValueError):
            amount = None
        if amount is None or amount <= 0:
            errors.append("Payment Amount must be a number greater than zero.")
        day = self._day(element, {}, "Date", errors) or self._today()
        if invoice is not None:
            if invoice["Status"] != "AUTHORISED":
                errors.append("Payments can only be made against Authorised documents.")
            elif amount is not None and amount > (_decimal(invoice["AmountDue"]) or Decimal(0)):
                errors.append(
                    "Payment amount must be less than or equal to the outstanding amount "
                    "owing on the invoice."
                )
        if errors:
            return {}, errors
        assert invoice is not None and account is not None and amount is not None
        amount = _money(amount)
        paid = _money((_decimal(invoice["AmountPaid"]) or Decimal(0)) + amount)
        due = _money((_decimal(invoice["Total"]) or Decimal(0)) - paid)
        stamp = self._stamp()
        payment: dict[str, Any] = {
            "PaymentID": str(uuid.uuid4()),
            "Date": to_xero_date(day),
            "Amount": _num(amount),
            "BankAmount": _num(amount),
            "CurrencyRate": 1.0,
            "Reference": str(element.get("Reference") or ""),
            "IsReconciled": bool(element.get("IsReconciled", False)),
            "Status": "AUTHORISED",
            "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
            "UpdatedDateUTC": stamp,
            "HasAccount": True,
            "HasValidationErrors": False,
            "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
        }
        invoice["AmountPaid"] = _num(paid)
        invoice["AmountDue"] = _num(due)
        invoice["Payments"] = [
            *invoice.get("Payments", []),
            {
                "PaymentID": payment["PaymentID"],
                "Date": payment["Date"],
                "Amount": payment["Amount"],
                "Reference": payment["Reference"],
                "CurrencyRate": 1.0,
                "HasAccount": True,
                "HasValidationErrors": False,
            },
        ]
        if due == 0:
            invoice["Status"] = "PAID"
            invoice["FullyPaidOnDate"] = to_xero_date(day)
        invoice["UpdatedDateUTC"] = stamp
        payment["Invoice"] = {
            k: copy.deepcopy(invoice[k])
            for k in (
                "InvoiceID",
                "InvoiceNumber",
                "Type",
                "Status",
                "Contact",
                "CurrencyCode",
                "Total",
                "AmountDue",
                "AmountPaid",
                "IsDiscounted",
                "HasErrors",
            )
            if k in invoice
        } | {"Payments": [], "CreditNotes": [], "Prepayments": [], "Overpayments": []}
        tenant.payments[payment["PaymentID"]] = payment
        return payment, []
