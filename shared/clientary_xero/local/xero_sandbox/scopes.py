"""The Xero sandbox's scope enforcement: which OAuth scopes grant which call, and Xero's refusal.

Facts (../shared/reference/xero-api.md §2 per endpoint, §3.3 "Scopes needed (broad vs granular)",
§4.3 error shapes; the ``security`` of each operation in ../shared/xero-openapi/):

* Broad scopes (the spec's): ``accounting.transactions``, ``accounting.contacts``,
  ``accounting.settings``, ``accounting.reports.read``, ``accounting.attachments``, ``projects``.
  Granular scopes (apps created on or after 2 March 2026 get only these): ``accounting.invoices``
  (Invoices, CreditNotes, LinkedTransactions, PurchaseOrders, Quotes, RepeatingInvoices, Items),
  ``accounting.payments`` (Payments, BatchPayments, Overpayments, Prepayments),
  ``accounting.banktransactions`` (BankTransactions, BankTransfers), ``accounting.manualjournals``
  and one ``accounting.reports.<report>.read`` per report. ``accounting.contacts``,
  ``accounting.settings`` and ``projects`` are unchanged.
* Every scope but the reports' has a ``.read`` variant that grants GET only.
* Items are covered by **both** ``accounting.settings`` and ``accounting.invoices`` (with broad
  scopes only by ``accounting.settings``: the spec lists no ``accounting.transactions`` for Items).
* ``GET /Contacts`` also takes ``accounting.settings(.read)`` (its spec ``security`` lists both),
  ``/{Endpoint}/{id}/History`` takes the parent's scope, ``/Attachments`` ``accounting.attachments``.
* ``GET /Connections`` needs the token only (the identity spec's ``security`` lists no scope).

The refusal follows §4.3: ``401 {"Type":null,"Title":"Unauthorized","Status":401,
"Detail":"AuthorizationUnsuccessful"}`` "for an expired token or missing scope"
(laravel-xero-oauth2#19; xero-node#370). Uncertain, as the reference is: whether Xero answers a
missing scope before or after a missing tenant header (403) — the sandbox checks the scope first —
whether it sends a ``WWW-Authenticate`` header (none here), and whether the Projects API answers
with the same gateway body (assumed). A path with no rule here is not refused (the route answers).

``DEFAULT_SCOPES``: what the product asks for by default (``Settings.xero_scopes``), so a
connection the sandbox bootstraps covers every action; a test passes fewer to see the refusal.
"""

from __future__ import annotations

import json

import httpx

# Accounting path family (first path segment, lower case) -> the scopes that grant a write.
_TRANSACTIONS = "accounting.transactions"
_WRITE: dict[str, tuple[str, ...]] = {
    "contacts": ("accounting.contacts",),
    **dict.fromkeys(
        ("invoices", "creditnotes", "purchaseorders", "quotes", "repeatinginvoices", "linkedtransactions"),
        (_TRANSACTIONS, "accounting.invoices"),
    ),
    "items": ("accounting.settings", "accounting.invoices"),
    **dict.fromkeys(
        ("payments", "batchpayments", "overpayments", "prepayments"), (_TRANSACTIONS, "accounting.payments")
    ),
    **dict.fromkeys(("banktransactions", "banktransfers"), (_TRANSACTIONS, "accounting.banktransactions")),
    "manualjournals": (_TRANSACTIONS, "accounting.manualjournals"),
    **dict.fromkeys(
        ("accounts", "taxrates", "trackingcategories", "organisation", "currencies", "brandingthemes"),
        ("accounting.settings",),
    ),
}
# GETs a family also grants (the spec's second security alternative).
_ALSO_READ: dict[str, tuple[str, ...]] = {"contacts": ("accounting.settings",)}
# GET /Reports/{name}: accounting.reports.read, or the report's granular scope. Only the two reports
# the sandbox serves: any other is its 404 (Xero's other granular report scopes, e.g.
# accounting.reports.trialbalance.read, would grant them).
_REPORTS: dict[str, str] = {
    "balancesheet": "accounting.reports.balancesheet.read",
    "profitandloss": "accounting.reports.profitandloss.read",
}
_ACCOUNTING_PREFIX = "/api.xro/2.0/"
_PROJECTS_PREFIX = "/projects.xro/2.0/"

REFUSAL = {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "AuthorizationUnsuccessful"}


def _product_default() -> str:
    from clientary_xero.settings import Settings

    return str(Settings().xero_scopes)


DEFAULT_SCOPES = _product_default()


def _with_read(scopes: tuple[str, ...], read: bool) -> frozenset[str]:
    return frozenset(s for scope in scopes for s in ((scope, scope + ".read") if read else (scope,)))


def granting_scopes(method: str, path: str) -> frozenset[str] | None:
    """The scopes any one of which grants ``method path`` (a path on api.xero.com); ``None`` when
    the call needs no scope (``/Connections``) or the sandbox has no rule for it."""
    read = method.upper() == "GET"
    if path.startswith(_PROJECTS_PREFIX):
        return _with_read(("projects",), read)
    if not path.startswith(_ACCOUNTING_PREFIX):
        return None
    parts = [p.lower() for p in path[len(_ACCOUNTING_PREFIX) :].split("/") if p]
    if not parts:
        return None
    family = parts[0]
    if family == "reports":
        report = _REPORTS.get(parts[1]) if len(parts) == 2 else None
        return frozenset({"accounting.reports.read", report}) if report else None
    if len(parts) > 2 and parts[2] == "attachments":
        return _with_read(("accounting.attachments",), read)
    scopes = _WRITE.get(family)
    if scopes is None:
        return None
    if read and len(parts) <= 2:
        scopes = scopes + _ALSO_READ.get(family, ())
    return _with_read(scopes, read)


def refusal(granted: str | None, method: str, path: str) -> httpx.Response | None:
    """Xero's answer when the ``granted`` scopes (space-separated) do not grant the call, else
    ``None``. ``granted=None``: a custom-connection token that asked for no scope, which Xero gives
    every scope of the connection."""
    if granted is None:
        return None
    needed = granting_scopes(method, path)
    if not needed or needed & set(granted.split()):
        return None
    return httpx.Response(
        401,
        headers={"Content-Type": "application/json; charset=utf-8"},
        content=json.dumps(REFUSAL).encode(),
    )
