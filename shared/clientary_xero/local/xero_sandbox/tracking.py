"""Tracking categories: ``GET /TrackingCategories`` (``where``, ``order``, ``includeArchived``) and
``/{id}``. The sandbox creates none of its own; they come from seeding (seeding.py), as a Xero
organisation's come from its settings screen."""

from __future__ import annotations

import copy

import httpx

from clientary_xero.local.xero_sandbox.listing import ListingMixin
from clientary_xero.local.xero_sandbox.model import _Tenant
from clientary_xero.local.xero_sandbox.responses import _not_found, _response


class TrackingMixin(ListingMixin):
    def _tracking_categories_route(
        self, tenant: _Tenant, ident: str | None, method: str, params: dict[str, str]
    ) -> httpx.Response:
        if method != "GET":
            return _response(405, {"Title": "Method Not Allowed", "Status": 405})
        if ident is not None:
            found = tenant.tracking_categories.get(ident.lower())
            return self._ok({"TrackingCategories": [copy.deepcopy(found)]}) if found else _not_found()
        records = [c for c in tenant.tracking_categories.values() if c["Status"] != "DELETED"]
        if params.get("includearchived", "").lower() != "true":
            records = [c for c in records if c["Status"] == "ACTIVE"]
        records = self._order(self._filter(records, params, ()), params.get("order") or "Name")
        return self._ok({"TrackingCategories": copy.deepcopy(records)})
