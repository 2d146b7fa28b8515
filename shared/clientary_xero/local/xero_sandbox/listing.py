"""Reading records: one by id or number, many with Xero's query parameters.

``_lookup`` (any resource by its id, or its number or code), ``_find_contact``, and for lists:
``where`` and ``searchTerm`` (``_filter``), ``page``/``pageSize`` with the pagination block
(``_page``), the ``If-Modified-Since`` header, ``order``, and the quote and purchase-order filters
(status, contact, number, date ranges).
"""

from __future__ import annotations

import copy
import math
import re
from datetime import UTC, date, datetime
from decimal import InvalidOperation
from typing import Any

import httpx

from clientary_xero.local.xero_sandbox.base import _SandboxBase
from clientary_xero.local.xero_sandbox.model import (
    _UUID,
    PAGE_SIZE,
    _Tenant,
)
from clientary_xero.local.xero_sandbox.query import _get_path, _QueryError, _where
from clientary_xero.local.xero_sandbox.responses import (
    _api_exception,
    _Reject,
)


class ListingMixin(_SandboxBase):
    """Look-ups and lists with Xero's query parameters."""

    @staticmethod
    def _page(
        records: list[dict[str, Any]], params: dict[str, str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        if "page" not in params:
            return records, {}
        try:
            page = max(1, int(params["page"]))
            size = min(1000, max(1, int(params.get("pagesize", PAGE_SIZE))))
        except ValueError:
            raise _Reject(
                _api_exception(400, 16, "QueryParseException", "page and pageSize must be integers")
            ) from None
        chunk = records[(page - 1) * size : page * size]
        pagination = {
            "page": page,
            "pageSize": size,
            "pageCount": math.ceil(len(records) / size),
            "itemCount": len(records),
        }
        return chunk, {"pagination": pagination}

    @staticmethod
    def _filter(
        records: list[dict[str, Any]], params: dict[str, str], search_fields: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        if params.get("where"):
            try:
                matches = _where(params["where"])
                records = [r for r in records if matches(r)]
            except (_QueryError, ValueError, InvalidOperation) as exc:
                raise _Reject(_api_exception(400, 16, "QueryParseException", str(exc))) from None
        term = params.get("searchterm", "").strip().casefold()
        if term:
            records = [
                r for r in records if any(term in str(r.get(f) or "").casefold() for f in search_fields)
            ]
        return records

    def _find_contact(self, tenant: _Tenant, ident: str) -> dict[str, Any] | None:
        if _UUID.match(ident):
            return tenant.contacts.get(ident.lower())
        return next((c for c in tenant.contacts.values() if c.get("ContactNumber") == ident), None)

    def _lookup(self, tenant: _Tenant, plural: str, ident: str) -> dict[str, Any] | None:
        if plural == "Contacts":
            return self._find_contact(tenant, ident)
        store, number_key = {
            "Invoices": (tenant.invoices, "InvoiceNumber"),
            "Payments": (tenant.payments, None),
            "Quotes": (tenant.quotes, "QuoteNumber"),
            "PurchaseOrders": (tenant.purchase_orders, "PurchaseOrderNumber"),
            "Items": (tenant.items, "Code"),
            "BankTransfers": (tenant.bank_transfers, None),
            "Accounts": (tenant.accounts, "Code"),
            "TaxRates": (tenant.tax_rates, "TaxType"),
        }[plural]
        if _UUID.match(ident):
            return store.get(ident.lower())
        if number_key is None:
            return None
        return next((r for r in store.values() if r.get(number_key) == ident), None)

    def _list(self, tenant: _Tenant, plural: str, params: dict[str, str]) -> httpx.Response:
        records: list[dict[str, Any]] = list(
            {
                "Payments": tenant.payments,
                "Quotes": tenant.quotes,
                "PurchaseOrders": tenant.purchase_orders,
                "Items": tenant.items,
                "BankTransfers": tenant.bank_transfers,
                "Accounts": tenant.accounts,
                "TaxRates": tenant.tax_rates,
            }[plural].values()
        )
        if plural in ("Quotes", "PurchaseOrders"):
            records = self._document_filters(plural, records, params)
        records = self._modified_since(records, params)
        records = self._filter(records, params, ())
        records = self._order(records, params.get("order"))
        extra: dict[str, Any] = {}
        if plural in ("Payments", "PurchaseOrders", "Quotes"):  # the paged collections
            records, extra = self._page(records, params)
            if plural == "Quotes":
                extra = {}  # GET /Quotes has page but no pagination block in its schema
        listed = copy.deepcopy(records)
        if plural == "BankTransfers":
            # Xero's GET /BankTransfers names each account by AccountID and Name only (the spec's
            # example); the Code comes back on PUT.
            for transfer in listed:
                for side in ("FromBankAccount", "ToBankAccount"):
                    transfer.get(side, {}).pop("Code", None)
        return self._ok({**extra, plural: listed})

    def _document_filters(
        self, plural: str, records: list[dict[str, Any]], params: dict[str, str]
    ) -> list[dict[str, Any]]:
        status = params.get("status")
        if status:
            records = [r for r in records if r.get("Status") == status.upper()]
        if plural == "Quotes":
            if params.get("contactid"):
                records = [r for r in records if r["Contact"]["ContactID"] == params["contactid"].lower()]
            if params.get("quotenumber"):
                records = [r for r in records if r.get("QuoteNumber") == params["quotenumber"]]
        bounds: tuple[tuple[str, str, int], ...] = (
            ("datefrom", "DateString", 1),
            ("dateto", "DateString", -1),
        )
        if plural == "Quotes":
            bounds += (("expirydatefrom", "ExpiryDateString", 1), ("expirydateto", "ExpiryDateString", -1))
        for param, key, sign in bounds:
            if not params.get(param):
                continue
            try:
                limit = date.fromisoformat(params[param][:10])
            except ValueError:
                raise _Reject(
                    _api_exception(400, 16, "QueryParseException", f"{param} must be a date (YYYY-MM-DD)")
                ) from None
            records = [
                r
                for r in records
                if r.get(key) and (date.fromisoformat(r[key][:10]) - limit).days * sign >= 0
            ]
        return records

    @staticmethod
    def _ms(value: Any) -> int | None:
        match = re.match(r"^/Date\((-?\d+)", value) if isinstance(value, str) else None
        return int(match[1]) if match else None

    def _modified_since(self, records: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
        raw = params.get("if-modified-since")
        if not raw:
            return records
        from email.utils import parsedate_to_datetime

        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                raise _Reject(
                    _api_exception(400, 16, "QueryParseException", "If-Modified-Since is not a date")
                ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        since_ms = int(when.timestamp() * 1000)
        return [r for r in records if (self._ms(r.get("UpdatedDateUTC")) or 0) >= since_ms]

    def _order(self, records: list[dict[str, Any]], order: str | None) -> list[dict[str, Any]]:
        if not order:
            return records
        field_name, _, direction = order.strip().partition(" ")

        def key(record: dict[str, Any]) -> tuple[int, Any]:
            value = _get_path(record, field_name)
            ms = self._ms(value)
            if ms is not None:
                return (0, ms)
            if isinstance(value, (int, float)):
                return (0, value)
            return (1, str(value or ""))

        return sorted(records, key=key, reverse=direction.strip().upper() == "DESC")
