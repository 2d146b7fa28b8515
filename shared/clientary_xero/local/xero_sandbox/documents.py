"""Quotes and purchase orders: one save for both — a contact that exists, status, LineAmountTypes
(quotes spell them EXCLUSIVE/INCLUSIVE/NOTAX), dates, text lengths, at least one line, tax and
totals (lines.py), numbers QU-0001 / PO-0001 when none is given. Behaviour and messages follow
reference/xero-api.md §2.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from clientary_xero.connectors.xero.dates import to_xero_date
from clientary_xero.local.xero_sandbox.contacts import ContactsMixin
from clientary_xero.local.xero_sandbox.lines import LinesMixin
from clientary_xero.local.xero_sandbox.model import (
    _CURRENCY,
    _LINE_AMOUNT_TYPES,
    _PO_STATUSES,
    _QUOTE_AMOUNT_TYPES,
    _QUOTE_STATUSES,
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _num,
)


class DocumentsMixin(LinesMixin, ContactsMixin):
    """Quotes and purchase orders."""

    @staticmethod
    def _contact_summary(contact: dict[str, Any]) -> dict[str, Any]:
        return {
            k: contact[k] for k in ("ContactID", "ContactNumber", "Name", "ContactStatus") if k in contact
        } | {"HasValidationErrors": False}

    @staticmethod
    def _set_day(record: dict[str, Any], key: str, day: date | None) -> None:
        if day is not None:
            record[key] = to_xero_date(day)
            record[f"{key}String"] = f"{day.isoformat()}T00:00:00"

    def _document_base(
        self,
        tenant: _Tenant,
        store: dict[str, dict[str, Any]],
        id_key: str,
        element: dict[str, Any],
        method: str,
    ) -> tuple[dict[str, Any] | None, list[str]]:
        record_id = element.get(id_key)
        if not record_id:
            return None, []
        if method == "PUT":
            return None, [f"A {id_key} cannot be specified when creating; use POST to update."]
        existing = store.get(str(record_id).lower())
        if existing is None:
            return None, [f"The {id_key[:-2]} with {id_key} {record_id} could not be found."]
        return existing, []

    def _save_document(
        self,
        tenant: _Tenant,
        element: dict[str, Any],
        method: str,
        *,
        kind: str,
    ) -> tuple[dict[str, Any], list[str]]:
        """Quotes and purchase orders: a contact that exists, lines, dates, number, totals."""
        quote = kind == "Quote"
        store = tenant.quotes if quote else tenant.purchase_orders
        id_key = "QuoteID" if quote else "PurchaseOrderID"
        number_key = "QuoteNumber" if quote else "PurchaseOrderNumber"
        existing, errors = self._document_base(tenant, store, id_key, element, method)
        if errors:
            return {}, errors
        base = existing or {}
        contact: dict[str, Any] | None = None
        if "Contact" in element or not existing:
            contact, problem = self._resolve_contact(tenant, element.get("Contact"))
            if problem:
                errors.append(problem)
        else:
            contact = tenant.contacts.get(existing["Contact"]["ContactID"])
        statuses = _QUOTE_STATUSES if quote else _PO_STATUSES
        creatable = statuses[:4] if quote else statuses[:3]
        status = element.get("Status", base.get("Status", "DRAFT"))
        if status not in (statuses if existing else creatable):
            errors.append(f"{kind} Status {status!r} is not valid here.")
        amount_types = element.get("LineAmountTypes", base.get("LineAmountTypes"))
        if quote:
            amount_types = amount_types or "EXCLUSIVE"
            if amount_types not in _QUOTE_AMOUNT_TYPES:
                errors.append(
                    f"LineAmountTypes {amount_types!r} is not valid for quotes; "
                    "use EXCLUSIVE, INCLUSIVE or NOTAX."
                )
        else:
            amount_types = amount_types or "Exclusive"
            if amount_types not in _LINE_AMOUNT_TYPES:
                errors.append(f"LineAmountTypes {amount_types!r} is not valid.")
        currency = element.get("CurrencyCode", base.get("CurrencyCode", tenant.currency))
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            errors.append(f"CurrencyCode {currency!r} is not a valid currency code.")
        date_keys = ("Date", "ExpiryDate") if quote else ("Date", "DeliveryDate", "ExpectedArrivalDate")
        days = {key: self._day(element, base, key, errors) for key in date_keys}
        if quote and not days["Date"]:
            # Xero's docs list Contact, Date and LineItems as required for a quote (purchase
            # orders take today's date).
            errors.append("Date is required for a quote.")
        days["Date"] = days["Date"] or self._today()
        limits = (
            {"QuoteNumber": 255, "Reference": 4000, "Terms": 4000, "Title": 100, "Summary": 3000}
            if quote
            else {
                "PurchaseOrderNumber": 255,
                "Reference": 255,
                "DeliveryInstructions": 500,
                "DeliveryAddress": 500,
                "AttentionTo": 255,
                "Telephone": 50,
            }
        )
        for key, limit in limits.items():
            value = element.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                errors.append(f"{key} must be a text of at most {limit} characters.")
        raw_lines = self._kept_lines(element, base, amount_types)
        if isinstance(raw_lines, list) and not raw_lines:
            errors.append(f"A {kind} must have at least one line item.")
        lines, line_errors = self._lines(raw_lines, 2, quote)
        errors.extend(line_errors)
        errors.extend(self._line_account_errors(tenant, lines))
        errors.extend(self._tax(tenant, lines, str(amount_types), sales=quote))
        if errors:
            return {}, errors
        assert contact is not None
        number = element.get(number_key) or base.get(number_key)
        if not number:
            prefix = "QU" if quote else "PO"
            used = {r.get(number_key) for r in store.values()}
            counter = "next_quote" if quote else "next_purchase_order"
            while f"{prefix}-{getattr(tenant, counter):04d}" in used:
                setattr(tenant, counter, getattr(tenant, counter) + 1)
            number = f"{prefix}-{getattr(tenant, counter):04d}"
            setattr(tenant, counter, getattr(tenant, counter) + 1)
        subtotal, tax, total = self._totals(lines, str(amount_types))
        record: dict[str, Any] = existing if existing is not None else {id_key: str(uuid.uuid4())}
        record.update(
            {
                number_key: number,
                "Reference": element.get("Reference", base.get("Reference", "")),
                "Contact": self._contact_summary(contact),
                "LineItems": lines,
                "Status": status,
                "LineAmountTypes": amount_types,
                "CurrencyCode": currency,
                "CurrencyRate": 1.0,
                "SubTotal": _num(subtotal),
                "TotalTax": _num(tax),
                "Total": _num(total),
                "TotalDiscount": 0.0,
                "UpdatedDateUTC": self._stamp(),
            }
        )
        for key, day in days.items():
            self._set_day(record, key, day)
        keep = ("Terms", "Title", "Summary") if quote else tuple(k for k in limits if k not in ("Reference",))
        for key in keep:
            if key in element:
                record[key] = element[key]
        if not quote:
            record.setdefault("SentToContact", False)
            record.setdefault("HasAttachments", False)
        store[record[id_key]] = record
        return record, []

    def _save_quote(
        self, tenant: _Tenant, element: dict[str, Any], method: str
    ) -> tuple[dict[str, Any], list[str]]:
        return self._save_document(tenant, element, method, kind="Quote")

    def _save_purchase_order(
        self, tenant: _Tenant, element: dict[str, Any], method: str
    ) -> tuple[dict[str, Any], list[str]]:
        return self._save_document(tenant, element, method, kind="PurchaseOrder")
