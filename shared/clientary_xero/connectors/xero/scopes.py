"""Which Xero OAuth scope a call needs, and the error when Xero says the connection lacks it.

Xero refuses a call whose token lacks the scope with ``401 AuthorizationUnsuccessful`` (a fresh
token: an expired one is ``TokenExpired``; reference/xero-api.md §4.3). A refresh cannot add a
scope — scopes change only by consenting again (§3.1) — so the client fails such a call for good
with ``XeroScopeMissing``, naming the scope to reconnect with. Scopes per endpoint family follow
§2 and §3.3 and each operation's ``security`` in Xero's OpenAPI files; every one but the reports'
has a ``.read`` variant granting GET only. Each Xero action declares the scopes it needs
(``ActionSpec.scopes``, granular names; ``broad`` gives an older app's equivalents).
"""

from __future__ import annotations

from clientary_xero.errors import PermanentError

# Path family (first segment, lower case) -> the scopes granting a write: granular first, then
# the broad one of apps created before 2 March 2026 (§3.3).
_INVOICES = ("accounting.invoices", "accounting.transactions")
_FAMILIES: dict[str, tuple[str, ...]] = {
    "contacts": ("accounting.contacts",),
    "invoices": _INVOICES,
    "creditnotes": _INVOICES,
    "purchaseorders": _INVOICES,
    "quotes": _INVOICES,
    "repeatinginvoices": _INVOICES,
    # Items: accounting.settings, and under granular scopes accounting.invoices too (§2.11).
    "items": ("accounting.settings", "accounting.invoices"),
    "payments": ("accounting.payments", "accounting.transactions"),
    "banktransactions": ("accounting.banktransactions", "accounting.transactions"),
    "banktransfers": ("accounting.banktransactions", "accounting.transactions"),
    "manualjournals": ("accounting.manualjournals", "accounting.transactions"),
    "accounts": ("accounting.settings",),
    "taxrates": ("accounting.settings",),
    "trackingcategories": ("accounting.settings",),
    "organisation": ("accounting.settings",),
}
# GET /Contacts also takes accounting.settings(.read): its spec lists both.
_ALSO_READ = {"contacts": ("accounting.settings",)}
_REPORTS = {
    "balancesheet": "accounting.reports.balancesheet.read",
    "profitandloss": "accounting.reports.profitandloss.read",
}
REPORTS_BROAD = "accounting.reports.read"
# A granular scope -> the broad scope an older app asks for instead.
_BROAD = {
    "accounting.invoices": "accounting.transactions",
    "accounting.payments": "accounting.transactions",
    "accounting.banktransactions": "accounting.transactions",
    "accounting.manualjournals": "accounting.transactions",
}
CONNECT_HINT = "add it to the XeroScopes parameter (or --scopes) and run `clientary-xero connect xero` again"


class XeroScopeMissing(PermanentError):
    """Xero answered 401 AuthorizationUnsuccessful: the connection lacks a scope this call needs."""

    def __init__(self, message: str, *, scopes: tuple[str, ...]) -> None:
        super().__init__(message, messages=["AuthorizationUnsuccessful"], status=401, service="xero")
        self.scopes = scopes


def call_scopes(method: str, path: str, api: str = "accounting") -> tuple[str, ...]:
    """The scopes any one of which grants the call, the one to ask for first; ``()`` when it
    needs none (``/Connections``) or the family is not one the product calls."""
    if api == "identity":
        return ()
    read = method.upper() == "GET"
    if api == "projects":
        return ("projects", "projects.read") if read else ("projects",)
    parts = [p.lower() for p in path.split("?", 1)[0].strip("/").split("/") if p]
    if not parts:
        return ()
    if parts[0] == "reports":
        report = _REPORTS.get(parts[1]) if len(parts) == 2 else None
        return (report, REPORTS_BROAD) if report else (REPORTS_BROAD,)
    scopes = _FAMILIES.get(parts[0], ())
    if read and len(parts) <= 2:
        scopes += _ALSO_READ.get(parts[0], ())
    if not read:
        return scopes
    return tuple(s for scope in scopes for s in (scope, scope + ".read"))


def broad(scope: str) -> str:
    """The broad scope an app created before 2 March 2026 asks for instead of ``scope``."""
    if scope.startswith("accounting.reports."):
        return REPORTS_BROAD
    base = scope.removesuffix(".read")
    return _BROAD[base] + scope[len(base) :] if base in _BROAD else scope


def scope_refused(method: str, path: str, api: str, granted: set[str] | None) -> XeroScopeMissing:
    """The error for Xero's ``AuthorizationUnsuccessful`` on ``method path``; ``granted``: the
    scopes the connection was given, when its secret records them."""
    call = f"{method.upper()} {path.split('?', 1)[0]}"
    needed = call_scopes(method, path, api)
    held = [s for s in needed if granted and s in granted]
    if held:
        # Xero refused a scope the connection holds: the user's permissions in Xero, or an app
        # not allowed that scope (granular scopes for apps created after 2 March 2026, §3.3).
        return XeroScopeMissing(
            f"Xero refused {call} (401 AuthorizationUnsuccessful) although the connection was granted "
            f"{held[0]}: the Xero user who connected may lack that permission, or the app may not be "
            "allowed the scope — reconnect Xero (`clientary-xero connect xero`) as a user who has it",
            scopes=needed,
        )
    if not needed:
        what = "a scope this call needs"
    else:
        what = f"the scope {needed[0]}" + (f" (or {', '.join(needed[1:])})" if len(needed) > 1 else "")
    return XeroScopeMissing(
        f"Xero refused {call} (401 AuthorizationUnsuccessful): the connection lacks {what} — "
        f"reconnect Xero with that scope: {CONNECT_HINT}",
        scopes=needed,
    )
