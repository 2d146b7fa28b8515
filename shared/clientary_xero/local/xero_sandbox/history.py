"""History and notes of a record (``/{Resource}/{id}/History``): GET lists them, PUT/POST adds
notes (non-empty Details of at most 250 characters, all or nothing).
"""

from __future__ import annotations

import copy
import json

import httpx

from clientary_xero.local.xero_sandbox.listing import ListingMixin
from clientary_xero.local.xero_sandbox.model import (
    _UUID,
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _api_exception,
    _no_data,
    _not_found,
    _response,
)


class HistoryMixin(ListingMixin):
    """History and notes of any record."""

    def _history(
        self, tenant: _Tenant, resource: str, ident: str, method: str, content: bytes
    ) -> httpx.Response:
        plural = {
            "invoices": "Invoices",
            "quotes": "Quotes",
            "purchaseorders": "PurchaseOrders",
            "contacts": "Contacts",
            "items": "Items",
            "payments": "Payments",
            "banktransfers": "BankTransfers",
        }.get(resource)
        if plural is None or not _UUID.match(ident):
            return _not_found()
        record = self._lookup(tenant, plural, ident)
        if record is None:
            return _not_found()
        notes = tenant.history.setdefault(ident.lower(), [])
        if method == "GET":
            return self._ok({"HistoryRecords": copy.deepcopy(notes)})
        if method not in ("PUT", "POST"):
            return _response(405, {"Title": "Method Not Allowed", "Status": 405})
        try:
            body = json.loads(content) if content else None
        except ValueError:
            return _api_exception(400, 14, "PostDataInvalidException", "Invalid Json data")
        records = body.get("HistoryRecords") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
            return _no_data("HistoryRecord")
        failed = []
        for element in records:
            details = element.get("Details")
            problems = []
            if not isinstance(details, str) or not details.strip():
                problems.append("The Details of a history note cannot be empty.")
            elif len(details) > 250:
                problems.append("The Details of a history note must not be more than 250 characters long.")
            if problems:
                failed.append({**element, "ValidationErrors": [{"Message": m} for m in problems]})
        if failed:
            # All or nothing: History takes no summarizeErrors.
            return _response(
                400,
                {
                    "ErrorNumber": 10,
                    "Type": "ValidationException",
                    "Message": "A validation exception occurred",
                    "Elements": failed,
                },
            )
        stamp = self._stamp()
        added = [
            {"Changes": "Note", "DateUTC": stamp, "User": "System Generated", "Details": r["Details"]}
            for r in records
        ]
        notes.extend(added)
        return self._ok({"HistoryRecords": copy.deepcopy(added)})
