"""From an admitted API call to the resource that answers it, and Xero's write envelope.

``_route_request`` splits the path (``/api.xro/2.0/{Resource}[/{id}[/History]]`` or the Projects
API) and dispatches by resource and method; ``_write`` runs every element of a PUT/POST through its
resource's save, with ``summarizeErrors`` (all-or-nothing 400 by default, else per-element
``ValidationErrors``). A check per endpoint (such as the app's scopes) belongs with this dispatch,
where resource and method are known; the access token is looked up before, in core.py's pipeline.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx

from clientary_xero.local.xero_sandbox.banking import BankingMixin
from clientary_xero.local.xero_sandbox.contacts import ContactsMixin
from clientary_xero.local.xero_sandbox.documents import DocumentsMixin
from clientary_xero.local.xero_sandbox.history import HistoryMixin
from clientary_xero.local.xero_sandbox.invoices import InvoicesMixin
from clientary_xero.local.xero_sandbox.items import ItemsMixin
from clientary_xero.local.xero_sandbox.model import (
    _ERROR_FLAGS,
    _LINE_AMOUNT_TYPES,
    _MORE_RESOURCES,
    _PO_STATUSES,
    _PROJECTS_PREFIX,
    _QUOTE_AMOUNT_TYPES,
    _QUOTE_STATUSES,
    _Tenant,
)
from clientary_xero.local.xero_sandbox.payments import PaymentsMixin
from clientary_xero.local.xero_sandbox.projects import ProjectsMixin
from clientary_xero.local.xero_sandbox.reports import ReportsMixin
from clientary_xero.local.xero_sandbox.responses import (
    _api_exception,
    _no_data,
    _not_found,
    _Reject,
    _response,
)
from clientary_xero.local.xero_sandbox.tracking import TrackingMixin


def _fit_echo(plural: str, echo: dict[str, Any]) -> None:
    """Keep a rejected element's echo inside the response schema (Xero answers with its model)."""
    if plural == "Quotes":
        if echo.get("LineAmountTypes") not in _QUOTE_AMOUNT_TYPES:
            echo.pop("LineAmountTypes", None)
        if echo.get("Status") not in _QUOTE_STATUSES:
            echo.pop("Status", None)
    elif plural == "PurchaseOrders":
        if echo.get("Status") not in _PO_STATUSES:
            echo.pop("Status", None)
        if echo.get("LineAmountTypes") not in _LINE_AMOUNT_TYPES:
            echo.pop("LineAmountTypes", None)
    elif plural == "Items":
        echo["Code"] = str(echo.get("Code") or "")[:30]


class RoutingMixin(
    InvoicesMixin,
    DocumentsMixin,
    PaymentsMixin,
    ItemsMixin,
    BankingMixin,
    ContactsMixin,
    HistoryMixin,
    ReportsMixin,
    ProjectsMixin,
    TrackingMixin,
):
    """Dispatch of an admitted call to its resource; the PUT/POST envelope."""

    def _route_request(self, request: httpx.Request, tenant: _Tenant) -> httpx.Response:
        if request.url.path.startswith(_PROJECTS_PREFIX):
            with self._lock:
                return self._projects_api(request, tenant)
        parts = [p for p in request.url.path[len("/api.xro/2.0/") :].split("/") if p]
        params = {k.lower(): v for k, v in request.url.params.multi_items()}
        since = request.headers.get("if-modified-since")
        if since:
            params["if-modified-since"] = since
        method = request.method
        resource = parts[0].lower() if parts else ""
        ident = parts[1] if len(parts) > 1 else None
        with self._lock:
            try:
                if len(parts) == 3 and parts[2].lower() == "history" and ident is not None:
                    return self._history(tenant, resource, ident, method, request.content)
                if len(parts) > 2:
                    return _not_found()
                if resource == "trackingcategories":
                    return self._tracking_categories_route(tenant, ident, method, params)
                if resource in _MORE_RESOURCES:
                    return self._more_route(tenant, resource, ident, method, request.content, params)
                if resource == "contacts":
                    if method == "GET":
                        return self._get_contacts(tenant, ident, params)
                    if method in ("PUT", "POST") and (ident is None or method == "POST"):
                        return self._write(tenant, "Contacts", method, request.content, params, ident)
                elif resource == "invoices":
                    if method == "GET":
                        return self._get_invoices(tenant, ident, params)
                    if method in ("PUT", "POST") and (ident is None or method == "POST"):
                        return self._write(tenant, "Invoices", method, request.content, params, ident)
                elif resource == "organisation" and method == "GET" and ident is None:
                    return self._ok({"Organisations": [_organisation(tenant)]})
                else:
                    return _not_found()
                return _response(405, {"Title": "Method Not Allowed", "Status": 405})
            except _Reject as reject:
                return reject.response

    def _write(
        self,
        tenant: _Tenant,
        plural: str,
        method: str,
        content: bytes,
        params: dict[str, str],
        ident: str | None,
    ) -> httpx.Response:
        try:
            body = json.loads(content) if content else None
        except ValueError:
            return _api_exception(400, 14, "PostDataInvalidException", "Invalid Json data")
        singular = plural[:-1]
        elements = body.get(plural) if isinstance(body, dict) else None
        if not isinstance(elements, list) or not elements:
            return _no_data(singular)
        if ident is not None:
            found = self._lookup(tenant, plural, ident)
            if found is None:
                return _not_found()
            id_key = f"{singular}ID"
            elements = [{**e, id_key: found[id_key]} if isinstance(e, dict) else e for e in elements[:1]]
        # Single-record updates and BankTransfers take no summarizeErrors: always all-or-nothing.
        summarize = (
            params.get("summarizeerrors", "true").lower() != "false"
            or ident is not None
            or plural == "BankTransfers"
        )
        unitdp = 4 if params.get("unitdp") == "4" else 2
        results: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for element in elements:
            if not isinstance(element, dict):
                return _no_data(singular)
            if plural == "Contacts":
                saved, errors = self._save_contact(tenant, element, method)
            elif plural == "Invoices":
                saved, errors = self._save_invoice(tenant, element, method, unitdp)
            else:
                saved, errors = self._save_more(tenant, plural, element, method, unitdp)
            error_flag = _ERROR_FLAGS.get(plural)
            if errors:
                echo = {k: v for k, v in element.items() if k not in ("ValidationErrors", "Warnings")}
                echo.update(
                    {"StatusAttributeString": "ERROR", "ValidationErrors": [{"Message": m} for m in errors]}
                )
                if error_flag:
                    echo[error_flag] = True
                _fit_echo(plural, echo)
                results.append(echo)
                failed.append(echo)
            elif plural == "BankTransfers":  # not a BankTransfer field (spec, Xero's example)
                results.append(copy.deepcopy(saved))
            else:
                results.append({**copy.deepcopy(saved), "StatusAttributeString": "OK"})
        if failed and summarize:
            # Xero's all-or-nothing answer hides the elements that were created anyway.
            return _response(
                400,
                {
                    "ErrorNumber": 10,
                    "Type": "ValidationException",
                    "Message": "A validation exception occurred",
                    "Elements": failed,
                },
            )
        return self._ok({plural: results})

    def _save_more(
        self, tenant: _Tenant, plural: str, element: dict[str, Any], method: str, unitdp: int
    ) -> tuple[dict[str, Any], list[str]]:
        if plural == "Payments":
            if method != "PUT":
                return {}, ["Payments cannot be edited; create them with PUT /Payments."]
            return self._save_payment(tenant, element)
        if plural == "Quotes":
            return self._save_quote(tenant, element, method)
        if plural == "PurchaseOrders":
            return self._save_purchase_order(tenant, element, method)
        if plural == "Items":
            return self._save_item(tenant, element, method)
        if plural == "BankTransfers":
            return self._save_bank_transfer(tenant, element)
        raise AssertionError(plural)  # pragma: no cover

    def _more_route(
        self,
        tenant: _Tenant,
        resource: str,
        ident: str | None,
        method: str,
        content: bytes,
        params: dict[str, str],
    ) -> httpx.Response:
        plural = _MORE_RESOURCES[resource]
        if resource == "reports":
            if method != "GET" or ident is None:
                return _not_found()
            return self._report(tenant, ident.lower(), params)
        if method == "GET":
            if ident is not None:
                found = self._lookup(tenant, plural, ident)
                return self._ok({plural: [copy.deepcopy(found)]}) if found else _not_found()
            return self._list(tenant, plural, params)
        writable = {
            "Payments": ("PUT",),
            "Quotes": ("PUT", "POST"),
            "PurchaseOrders": ("PUT", "POST"),
            "Items": ("PUT", "POST"),
            "BankTransfers": ("PUT",),
        }.get(plural, ())
        if method in writable and (ident is None or method == "POST"):
            return self._write(tenant, plural, method, content, params, ident)
        return _response(405, {"Title": "Method Not Allowed", "Status": 405})


# What GET /Organisation tells of a demo company's tax settings, by country (Xero's example answer
# in xero_accounting.yaml has these fields; the values are each country's usual ones).
_ORGANISATION_BY_COUNTRY: dict[str, dict[str, Any]] = {
    "US": {
        "Version": "US",
        "SalesTaxBasis": "ACCRUAL",
        "SalesTaxPeriod": "QUARTERLY",
        "FinancialYearEndMonth": 12,
        "Timezone": "EASTERNSTANDARDTIME",
    },
    "NZ": {
        "Version": "NZ",
        "SalesTaxBasis": "PAYMENTS",
        "SalesTaxPeriod": "TWOMONTHS",
        "FinancialYearEndMonth": 3,
        "Timezone": "NEWZEALANDSTANDARDTIME",
    },
    "AU": {
        "Version": "AU",
        "SalesTaxBasis": "ACCRUALS",
        "SalesTaxPeriod": "QUARTERLY1",
        "FinancialYearEndMonth": 6,
        "Timezone": "AUSEASTERNSTANDARDTIME",
    },
    "GB": {
        "Version": "UK",
        "SalesTaxBasis": "ACCRUAL",
        "SalesTaxPeriod": "QUARTERLY1",
        "FinancialYearEndMonth": 3,
        "Timezone": "GMTSTANDARDTIME",
    },
}
_MONTH_END = {3: 31, 6: 30, 12: 31}


def _organisation(tenant: _Tenant) -> dict[str, Any]:
    country = _ORGANISATION_BY_COUNTRY.get(tenant.country, _ORGANISATION_BY_COUNTRY["US"])
    return {
        "OrganisationID": tenant.tenant_id,
        "Name": tenant.name,
        "LegalName": tenant.name,
        "PaysTax": True,
        "Version": country["Version"],
        "OrganisationType": "COMPANY",
        "BaseCurrency": tenant.currency,
        "CountryCode": tenant.country,
        "IsDemoCompany": True,
        "OrganisationStatus": "ACTIVE",
        "FinancialYearEndDay": _MONTH_END[country["FinancialYearEndMonth"]],
        "FinancialYearEndMonth": country["FinancialYearEndMonth"],
        "SalesTaxBasis": country["SalesTaxBasis"],
        "SalesTaxPeriod": country["SalesTaxPeriod"],
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "OrganisationEntityType": "COMPANY",
        "Timezone": country["Timezone"],
        "Edition": "BUSINESS",
        "Class": "DEMO",
    }
