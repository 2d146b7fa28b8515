"""A stateful fake of Xero at the HTTP level: an ``httpx`` transport the real client code runs on.

It behaves like the service rather than answering 200 to everything (facts: reference/xero-api.md):

* ``identity.xero.com/connect/token``: client authentication with HTTP Basic; refresh-token
  rotation with Xero's 30-minute grace for the previous token (a retry inside the grace returns the
  very pair issued before; later it is ``invalid_grant``); single-use 5-minute authorization codes;
  ``client_credentials`` for custom connections (no refresh token, one organisation).
* ``api.xero.com``: ``/connections``, the Accounting API (Contacts, Invoices, Organisation, Accounts
  — a seeded chart: 090/091 BANK, 200 REVENUE, 400 EXPENSE, 310/500 DIRECTCOSTS, 630 INVENTORY, … —
  Payments, Quotes, PurchaseOrders, Items, BankTransfers, TaxRates (a demo company's of the
  organisation's country; every line's tax computed from them, per line, and an unknown or inactive
  TaxType refused), History and notes, the BalanceSheet and
  ProfitAndLoss reports computed from the organisation's books) and the Projects API, with
  the tenant header, per-organisation limits (5 in flight, 60 per rolling minute, 5,000 per day,
  10,000 per app-minute) and their headers, ``Idempotency-Key`` (6 minutes; a concurrent duplicate
  waits for the first), ``summarizeErrors``, Xero's validation messages and error envelopes.
* any other host: ``httpx.ConnectError``, as if the network were down.

Thread-safe: one re-entrant lock guards every piece of state; ``latency`` is slept outside it, so
concurrent calls really overlap (and the in-flight limit can be observed).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

from clientary_xero.connectors.xero.dates import to_xero_date

ACCESS_TOKEN_SECONDS = 1800
REFRESH_GRACE_SECONDS = 1800
REFRESH_TOKEN_SECONDS = 60 * 86400
CODE_SECONDS = 300
IDEMPOTENCY_SECONDS = 360
MAX_IDEMPOTENCY_KEY = 128
MINUTE_LIMIT = 60
CONCURRENT_LIMIT = 5
DAY_LIMIT = 5000
APP_MINUTE_LIMIT = 10000
PAGE_SIZE = 100
# What inject_faults() can answer instead of Xero (see its docstring).
FAULT_KINDS = ("429", "500", "503", "timeout", "lost")
DEFAULT_SCOPES = (
    "offline_access accounting.contacts accounting.settings accounting.invoices accounting.payments"
)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

_CONTACT_FIELDS = (
    "ContactNumber",
    "AccountNumber",
    "ContactStatus",
    "Name",
    "FirstName",
    "LastName",
    "CompanyNumber",
    "EmailAddress",
    "ContactPersons",
    "BankAccountDetails",
    "TaxNumber",
    "TaxNumberType",
    "AccountsReceivableTaxType",
    "AccountsPayableTaxType",
    "Addresses",
    "Phones",
    "DefaultCurrency",
    "XeroNetworkKey",
    "SalesDefaultAccountCode",
    "PurchasesDefaultAccountCode",
    "PaymentTerms",
)
_CONTACT_LIMITS = {
    "Name": 255,
    "FirstName": 255,
    "LastName": 255,
    "EmailAddress": 255,
    "ContactNumber": 50,
    "AccountNumber": 50,
    "CompanyNumber": 50,
    "TaxNumber": 50,
}
_INVOICE_TYPES = ("ACCREC", "ACCPAY")
_CREATE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
_LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
_LINE_FIELDS = (
    "Description",
    "Quantity",
    "UnitAmount",
    "ItemCode",
    "AccountCode",
    "AccountID",
    "TaxType",
    "TaxAmount",
    "LineAmount",
    "DiscountRate",
    "Tracking",
    "LineItemID",
)


_PROJECTS_PREFIX = "/projects.xro/2.0/"
# Resources beyond Contacts and Invoices (issue #3): plural envelope name by lower-case path segment.
_MORE_RESOURCES = {
    "payments": "Payments",
    "quotes": "Quotes",
    "purchaseorders": "PurchaseOrders",
    "items": "Items",
    "banktransfers": "BankTransfers",
    "accounts": "Accounts",
    "taxrates": "TaxRates",
    "reports": "Reports",
}
# The per-element error flag each schema declares (Quote, PurchaseOrder, Item, BankTransfer have none).
_ERROR_FLAGS = {"Contacts": "HasValidationErrors", "Invoices": "HasErrors", "Payments": "HasValidationErrors"}
_QUOTE_AMOUNT_TYPES = ("EXCLUSIVE", "INCLUSIVE", "NOTAX")
_QUOTE_STATUSES = ("DRAFT", "SENT", "DECLINED", "ACCEPTED", "INVOICED", "DELETED")
_PO_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "BILLED", "DELETED")
_ASSET_TYPES = ("BANK", "CURRENT", "INVENTORY", "PREPAYMENT", "FIXED", "NONCURRENT")
_LIABILITY_TYPES = ("CURRLIAB", "LIABILITY", "TERMLIAB", "PAYG")
_INCOME_TYPES = ("REVENUE", "SALES", "OTHERINCOME")
_EXPENSE_TYPES = ("DIRECTCOSTS", "EXPENSE", "OVERHEADS", "DEPRECIATN")
# A small chart of accounts like a new organisation's: (code, name, type, system account).
_CHART = (
    ("090", "Checking Account", "BANK", ""),
    ("091", "Savings Account", "BANK", ""),
    ("200", "Sales", "REVENUE", ""),
    ("260", "Other Revenue", "REVENUE", ""),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", ""),
    ("400", "Advertising", "EXPENSE", ""),
    ("429", "General Expenses", "EXPENSE", ""),
    ("500", "Purchases", "DIRECTCOSTS", ""),
    ("610", "Accounts Receivable", "CURRENT", "DEBTORS"),
    ("630", "Inventory", "INVENTORY", ""),
    ("710", "Office Equipment", "FIXED", ""),
    ("800", "Accounts Payable", "CURRLIAB", "CREDITORS"),
    ("820", "Sales Tax", "CURRLIAB", "GST"),
    ("960", "Retained Earnings", "EQUITY", "RETAINEDEARNINGS"),
)
# The tax rates of a Xero demo company per country (GET /TaxRates): (TaxType, Name, ReportTaxType,
# components as (name, rate %), applies to (Assets, Equity, Expenses, Liabilities, Revenue)). NZ is
# the spec's own GET /TaxRates example; AU and GB are Xero's standard codes for those countries; US
# orgs have the 0 % system rates plus their own sales taxes (TAX001, …): the spec's bank-transaction
# example (a 20.00 Inclusive SPEND on account 400 with TAX001 -> TaxAmount 1.74) fits a 9.5 % rate
# that applies to expenses too, seeded as state + city tax.
_ALL, _SALES, _PURCHASES, _NEITHER = (
    (True, True, True, True, True),
    (True, True, False, True, True),
    (True, True, True, True, False),
    (False, False, False, True, False),
)
_TaxSeed = tuple[str, str, str, tuple[tuple[str, str], ...], tuple[bool, bool, bool, bool, bool]]
_TAX_RATES: dict[str, tuple[_TaxSeed, ...]] = {
    "US": (
        ("NONE", "Tax Exempt", "NONE", (("Tax Exempt", "0"),), _ALL),
        ("INPUT", "Tax on Purchases", "INPUT", (("Tax", "0"),), _PURCHASES),
        ("OUTPUT", "Tax on Sales", "OUTPUT", (("Tax", "0"),), _SALES),
        ("GSTONIMPORTS", "Sales Tax on Imports", "GSTONIMPORTS", (("Tax", "0"),), _NEITHER),
        ("TAX001", "Sales Tax", "OUTPUT", (("State Tax", "6.25"), ("City Tax", "3.25")), _ALL),
    ),
    "NZ": (
        ("INPUT2", "15% GST on Expenses", "INPUT", (("GST", "15"),), _PURCHASES),
        ("OUTPUT2", "15% GST on Income", "OUTPUT", (("GST", "15"),), _SALES),
        ("GSTONIMPORTS", "GST on Imports", "GSTONIMPORTS", (("GST", "0"),), _NEITHER),
        ("NONE", "No GST", "NONE", (("GST", "0"),), _ALL),
        ("ZERORATED", "Zero Rated", "OUTPUT", (("GST", "0"),), (False, False, False, True, True)),
    ),
    "AU": (
        ("OUTPUT", "GST on Income", "OUTPUT", (("GST", "10"),), _SALES),
        ("INPUT", "GST on Expenses", "INPUT", (("GST", "10"),), _PURCHASES),
        ("CAPEXINPUT", "GST on Capital", "INPUT", (("GST", "10"),), _PURCHASES),
        ("EXEMPTOUTPUT", "GST Free Income", "EXEMPTOUTPUT", (("GST", "0"),), _SALES),
        ("EXEMPTEXPENSES", "GST Free Expenses", "EXEMPTEXPENSES", (("GST", "0"),), _PURCHASES),
        ("INPUTTAXED", "Input Taxed", "INPUTTAXED", (("GST", "0"),), _ALL),
        ("BASEXCLUDED", "BAS Excluded", "BASEXCLUDED", (("GST", "0"),), _ALL),
        ("GSTONIMPORTS", "GST on Imports", "GSTONIMPORTS", (("GST", "0"),), _NEITHER),
    ),
    "GB": (
        ("OUTPUT2", "20% (VAT on Income)", "OUTPUT", (("VAT", "20"),), _SALES),
        ("INPUT2", "20% (VAT on Expenses)", "INPUT", (("VAT", "20"),), _PURCHASES),
        ("RROUTPUT", "5% (VAT on Income)", "OUTPUT", (("VAT", "5"),), _SALES),
        ("RRINPUT", "5% (VAT on Expenses)", "INPUT", (("VAT", "5"),), _PURCHASES),
        ("ZERORATEDOUTPUT", "Zero Rated Income", "ZERORATEDOUTPUT", (("VAT", "0"),), _SALES),
        ("ZERORATEDINPUT", "Zero Rated Expenses", "ZERORATEDINPUT", (("VAT", "0"),), _PURCHASES),
        ("EXEMPTOUTPUT", "Exempt Income", "EXEMPTOUTPUT", (("VAT", "0"),), _SALES),
        ("EXEMPTINPUT", "Exempt Expenses", "EXEMPTINPUT", (("VAT", "0"),), _PURCHASES),
        ("NONE", "No VAT", "NONE", (("VAT", "0"),), _ALL),
    ),
}
# The tax type a new organisation gives its revenue and expense accounts (and so a line without
# TaxType or account): (sales, purchases, other accounts).
_DEFAULT_TAX = {
    "US": ("OUTPUT", "INPUT", "NONE"),
    "NZ": ("OUTPUT2", "INPUT2", "NONE"),
    "AU": ("OUTPUT", "INPUT", "BASEXCLUDED"),
    "GB": ("OUTPUT2", "INPUT2", "NONE"),
}
_COUNTRY_OF_CURRENCY = {"NZD": "NZ", "AUD": "AU", "GBP": "GB"}
_APPLIES = (
    "CanApplyToAssets",
    "CanApplyToEquity",
    "CanApplyToExpenses",
    "CanApplyToLiabilities",
    "CanApplyToRevenue",
)
# The CanApplyTo… flag a line's account class asks of its tax rate.
_APPLIES_BY_CLASS = {
    "ASSET": "CanApplyToAssets",
    "EQUITY": "CanApplyToEquity",
    "EXPENSE": "CanApplyToExpenses",
    "LIABILITY": "CanApplyToLiabilities",
    "REVENUE": "CanApplyToRevenue",
}
_CLASS_OF = {
    **dict.fromkeys(_ASSET_TYPES, "ASSET"),
    **dict.fromkeys(_LIABILITY_TYPES, "LIABILITY"),
    **dict.fromkeys(_INCOME_TYPES, "REVENUE"),
    **dict.fromkeys(_EXPENSE_TYPES, "EXPENSE"),
    "EQUITY": "EQUITY",
}


# ------------------------------------------------------------------ records
@dataclass
class _App:
    client_id: str
    client_secret: str
    custom_tenant_id: str | None = None


@dataclass
class _Grant:
    grant_id: str
    client_id: str
    tenant_ids: list[str]
    scopes: str
    auth_event_id: str


@dataclass
class _AccessToken:
    client_id: str
    tenant_ids: list[str]
    expires_at: float
    grant_id: str | None = None  # None for custom connections (client_credentials)


@dataclass
class _RefreshToken:
    client_id: str
    grant_id: str
    issued_at: float
    rotated_at: float | None = None
    successor: tuple[str, str] | None = None  # (access token, refresh token) issued for this one
    revoked: bool = False


@dataclass
class _Code:
    client_id: str
    grant_id: str
    redirect_uri: str | None
    expires_at: float
    used: bool = False


@dataclass
class _Tenant:
    tenant_id: str
    name: str
    currency: str
    created_at: float
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_invoice: int = 1
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    purchase_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    bank_transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # record id -> notes
    country: str = "US"
    tax_rates: dict[str, dict[str, Any]] = field(default_factory=dict)  # TaxType -> rate
    next_quote: int = 1
    next_purchase_order: int = 1
    minute: deque[float] = field(default_factory=deque)
    day_index: int = -1
    day_count: int = 0
    in_flight: int = 0


@dataclass
class _Fault:
    status: int
    headers: dict[str, str]
    body: Any
    remaining: int


@dataclass
class _IdempotentCall:
    fingerprint: str
    created_at: float
    done: bool = False
    response: tuple[int, list[tuple[str, str]], bytes] | None = None


class _Reject(Exception):
    """An answer decided early (an error response); carries the response."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


# ---------------------------------------------------------------- helpers
def _response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    out = dict(headers or {})
    content = b""
    if body is not None:
        content = json.dumps(body).encode()
        out.setdefault("Content-Type", "application/json; charset=utf-8")
    return httpx.Response(status, headers=out, content=content)


def _oauth_error(status: int, error: str) -> httpx.Response:
    return _response(status, {"error": error}, {"Cache-Control": "no-store"})


def _unauthorized(detail: str = "TokenExpired") -> httpx.Response:
    return _response(
        401,
        {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": detail},
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _forbidden(detail: str = "AuthenticationUnsuccessful") -> httpx.Response:
    return _response(403, {"Type": None, "Title": "Forbidden", "Status": 403, "Detail": detail})


def _not_found() -> httpx.Response:
    # Xero answers an unknown id or path with a bare sentence, not JSON, whatever the Accept header
    # (XeroAPI/Xero-OpenAPI#163, Xero-NetStandard#490, Xero-Java#32): a client must not parse it.
    return httpx.Response(
        404,
        headers={"Content-Type": "text/html; charset=utf-8"},
        content=b"The resource you're looking for cannot be found",
    )


def _api_exception(status: int, number: int, kind: str, message: str) -> httpx.Response:
    return _response(status, {"ErrorNumber": number, "Type": kind, "Message": message})


def _no_data(noun: str) -> httpx.Response:
    # Xero's own wording, typo included.
    return _api_exception(
        400,
        17,
        "NoDataProcessedException",
        "No data has been processed for this endpoint. This endpoint is expecting "
        f"{noun} data to be specifed in the request body.",
    )


def _money(value: Decimal, places: int = 2) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _num(value: Decimal) -> float | int:
    return float(value)


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidOperation
    return Decimal(str(value))


def _parse_day(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError(value)
    match = re.match(r"^/Date\((-?\d+)", value)
    if match:
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match[1]))).date()
    return date.fromisoformat(value[:10])


def _get_path(record: dict[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        key = next((k for k in value if k.lower() == part.lower()), None)
        if key is None:
            return None
        value = value[key]
    return value


_CLAUSE = re.compile(
    r"""^(?P<field>[A-Za-z_][\w.]*)\s*(?:
        (?P<op>==|!=|>=|<=|>|<)\s*(?P<value>"(?:[^"\\]|\\.)*"|Guid\(\s*"[^"]*"\s*\)|true|false|null|-?\d+(?:\.\d+)?)
      | \.(?P<method>Contains|StartsWith|EndsWith)\(\s*(?P<arg>"(?:[^"\\]|\\.)*")\s*\)
    )$""",
    re.VERBOSE | re.IGNORECASE,
)


class _QueryError(ValueError):
    pass


def _word_at(text: str, i: int, words: tuple[str, ...]) -> str | None:
    for word in words:
        if text[i : i + len(word)].upper() != word:
            continue
        if word.isalpha():  # AND / OR must stand alone
            before = text[i - 1] if i else " "
            after = text[i + len(word)] if i + len(word) < len(text) else " "
            if not (before.isspace() or before == ")") or not (after.isspace() or after == "("):
                continue
        return word
    return None


def _split_top(text: str, words: tuple[str, ...]) -> list[str]:
    """Split on AND/&& (or OR/||) outside string literals and parentheses."""
    parts: list[str] = []
    depth, quoted, start, i = 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 2
                continue
            quoted = ch != '"'
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (word := _word_at(text, i, words)):
            parts.append(text[start:i])
            i += len(word)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _literal(token: str) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    lowered = token.lower()
    if lowered.startswith("guid("):
        return token[token.index('"') + 1 : token.rindex('"')].lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    return Decimal(token)


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if expected is None or actual is None:
        same = actual is None and expected is None
        if op in ("==", "!="):
            return same if op == "==" else not same
        return False
    if isinstance(expected, bool):
        result = bool(actual) == expected
        return result if op == "==" else (not result if op == "!=" else False)
    if isinstance(expected, Decimal):
        try:
            left = Decimal(str(actual))
        except (InvalidOperation, ValueError):
            return False
        return {
            "==": left == expected,
            "!=": left != expected,
            ">": left > expected,
            "<": left < expected,
            ">=": left >= expected,
            "<=": left <= expected,
        }[op]
    # Strings (and GUIDs): Xero compares them case-insensitively.
    left_text, right_text = str(actual).casefold(), str(expected).casefold()
    if op == "==":
        return left_text == right_text
    if op == "!=":
        return left_text != right_text
    raise _QueryError(f"operator {op} is not supported for text")


Predicate = Callable[[dict[str, Any]], bool]


def _method_clause(path: str, method: str, arg: str) -> Predicate:
    def clause(record: dict[str, Any]) -> bool:
        value = _get_path(record, path)
        if value is None:
            return False
        text = str(value).casefold()
        return {"contains": arg in text, "startswith": text.startswith(arg), "endswith": text.endswith(arg)}[
            method
        ]

    return clause


def _compare_clause(path: str, op: str, expected: Any) -> Predicate:
    return lambda record: _compare(_get_path(record, path), op, expected)


def _where(expression: str) -> Predicate:
    """Compile the subset of Xero's ``where`` language the sandbox understands, or raise _QueryError."""
    alternatives: list[list[Predicate]] = []
    for group in _split_top(expression, ("||", "OR")):
        clauses: list[Predicate] = []
        for raw in _split_top(group, ("&&", "AND")):
            text = raw.strip()
            while text.startswith("(") and text.endswith(")"):
                text = text[1:-1].strip()
            match = _CLAUSE.match(text)
            if not match:
                raise _QueryError(f"cannot parse the where clause {raw!r}")
            if match["method"]:
                clauses.append(
                    _method_clause(
                        match["field"], match["method"].lower(), json.loads(match["arg"]).casefold()
                    )
                )
            else:
                clauses.append(_compare_clause(match["field"], match["op"], _literal(match["value"])))
        alternatives.append(clauses)
    return lambda record: any(all(c(record) for c in group) for group in alternatives)


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


# ------------------------------------------------------------------ sandbox
class XeroSandbox(httpx.BaseTransport):
    """Xero (identity + Accounting API) in memory. Install it with ``connectors.http.use_transport``."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        latency: float = 0.0,
        minute_limit: int = MINUTE_LIMIT,
        concurrent_limit: int = CONCURRENT_LIMIT,
        day_limit: int = DAY_LIMIT,
        app_minute_limit: int = APP_MINUTE_LIMIT,
    ) -> None:
        self.clock = clock
        self._offset = 0.0
        self.latency = latency
        # Xero's limits by default; smaller ones let a test reach them quickly.
        self.minute_limit = minute_limit
        self.concurrent_limit = concurrent_limit
        self.day_limit = day_limit
        self.app_minute_limit = app_minute_limit
        self._lock = threading.RLock()
        self._idem_done = threading.Condition(self._lock)
        self._apps: dict[str, _App] = {}
        self._tenants: dict[str, _Tenant] = {}
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._codes: dict[str, _Code] = {}
        self._connections: dict[tuple[str, str], dict[str, Any]] = {}  # (grant, tenant) -> connection
        # (app, tenant) -> when the app was first connected to it: a reconnection keeps it.
        self._first_connected: dict[tuple[str, str], str] = {}
        self._idempotency: dict[tuple[str, str], _IdempotentCall] = {}
        self._inside_faults: list[_Fault] = []
        self._app_minute: dict[str, deque[float]] = {}
        self._faults: list[_Fault] = []
        self._token_faults: list[int] = []
        self._chaos: tuple[float, tuple[str, ...], random.Random] = (0.0, (), random.Random(0))
        self.fault_counts: dict[str, int] = {}
        self._log: list[dict[str, Any]] = []
        self._issued: set[str] = set()
        self.grant_counts: dict[str, int] = {
            "refresh_token": 0,
            "authorization_code": 0,
            "client_credentials": 0,
        }
        self.invalid_grants = 0
        self.max_in_flight = 0

    # ------------------------------------------------------------ set-up helpers
    def _now(self) -> float:
        return self.clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox's time forward (on top of its clock): tokens, idempotency keys and the
        rate-limit windows age as if ``seconds`` had passed at Xero."""
        with self._lock:
            self._offset += seconds

    def register_app(
        self, client_id: str, client_secret: str, *, custom_tenant_id: str | None = None
    ) -> None:
        """Register an app. ``custom_tenant_id`` makes it a custom connection (client_credentials)."""
        with self._lock:
            self._apps[client_id] = _App(client_id, client_secret, custom_tenant_id)
            self._issued.add(client_secret)

    def create_tenant(
        self, name: str = "Demo Company (US)", *, currency: str = "USD", country: str | None = None
    ) -> str:
        """A new organisation: a demo company's chart of accounts and tax rates of its ``country``
        (US, NZ, AU or GB; by default the currency's, else US)."""
        country = (country or _COUNTRY_OF_CURRENCY.get(currency, "US")).upper()
        if country not in _TAX_RATES:
            raise ValueError(f"country {country!r}: the sandbox knows the tax rates of {sorted(_TAX_RATES)}")
        with self._lock:
            tenant_id = str(uuid.uuid4())
            tenant = _Tenant(tenant_id, name, currency, self._now(), country=country)
            self._seed_tax_rates(tenant)
            self._seed_accounts(tenant)
            self._tenants[tenant_id] = tenant
            return tenant_id

    def issue_code(
        self,
        client_id: str,
        *,
        tenant_ids: list[str] | None = None,
        redirect_uri: str | None = None,
        scopes: str = DEFAULT_SCOPES,
    ) -> str:
        """What the consent screen would hand the redirect: a single-use code valid for 5 minutes."""
        with self._lock:
            if client_id not in self._apps:
                raise KeyError(f"unknown client {client_id!r}")
            tenants = list(tenant_ids) if tenant_ids else [self.create_tenant()]
            grant = self._new_grant(client_id, tenants, scopes)
            code = secrets.token_urlsafe(24)
            self._codes[code] = _Code(client_id, grant.grant_id, redirect_uri, self._now() + CODE_SECONDS)
            self._issued.add(code)
            return code

    def bootstrap_secret(
        self,
        *,
        client_id: str = "sandbox-client",
        client_secret: str | None = None,
        auth: str = "oauth",
        tenant_id: str | None = None,
        tenant_name: str = "Demo Company (US)",
        scopes: str = DEFAULT_SCOPES,
    ) -> dict[str, Any]:
        """A connection secret in the project's format (docs/DEVELOPING.md) for a fresh organisation."""
        with self._lock:
            tenant = tenant_id or self.create_tenant(tenant_name)
            app = self._apps.get(client_id)
            if app is None:
                self.register_app(client_id, client_secret or secrets.token_urlsafe(24))
                app = self._apps[client_id]
            elif client_secret is not None and client_secret != app.client_secret:
                raise ValueError("client_secret differs from the registered one")
            now = self._now()
            secret: dict[str, Any] = {
                "auth": auth,
                "client_id": client_id,
                "client_secret": app.client_secret,
                "tenant_id": tenant,
                "scopes": scopes,
            }
            if auth == "client_credentials":
                app.custom_tenant_id = tenant
                access = self._new_access(client_id, [tenant], None)
                secret.update(access_token=access, expires_at=int(now + ACCESS_TOKEN_SECONDS))
            elif auth == "oauth":
                grant = self._new_grant(client_id, [tenant], scopes)
                access, refresh = self._new_pair(grant)
                secret.update(
                    access_token=access, refresh_token=refresh, expires_at=int(now + ACCESS_TOKEN_SECONDS)
                )
            else:
                raise ValueError(f"unknown auth kind {auth!r}")
            return secret

    def revoke_tokens(self) -> None:
        """The user disconnected the app: every token stops working (refresh → invalid_grant)."""
        with self._lock:
            for token in self._refresh.values():
                token.revoked = True
            self._access.clear()

    def fail_next(
        self, status: int, headers: dict[str, str] | None = None, body: Any = None, count: int = 1
    ) -> None:
        """Answer the next ``count`` api.xero.com calls with ``status`` (before auth, limits and
        idempotency: a fault in front of the service, so a retry with the same key is processed)."""
        if body is None:
            body = (
                {"Title": "Too Many Requests", "Status": 429}
                if status == 429
                else {"Title": "Service Unavailable", "Status": status, "Detail": "Injected fault"}
            )
        with self._lock:
            self._faults.append(_Fault(status, dict(headers or {}), body, count))

    def fail_token_next(self, status: int = 503, count: int = 1) -> None:
        """Answer the next ``count`` token requests (identity.xero.com) with ``status``, before the
        grant is looked at: the refresh token is not rotated, so it still works on the next try."""
        with self._lock:
            self._token_faults.extend([status] * count)

    def inject_faults(self, rate: float, *, kinds: tuple[str, ...] = FAULT_KINDS, seed: int = 0) -> None:
        """From now on answer a random ``rate`` of api.xero.com calls with a fault, ``kinds`` chosen
        evenly: ``429`` (minute limit, ``Retry-After: 1``), ``500``, ``503`` (before Xero does
        anything), ``timeout`` (no answer; nothing done) and ``lost`` (Xero does the work, then the
        answer is lost: a time-out after the effect). ``rate=0`` stops; ``fault_counts`` counts them."""
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        with self._lock:
            self._chaos = (rate, tuple(kinds), random.Random(seed))

    def _chaos_pick(self) -> str | None:
        with self._lock:
            rate, kinds, rng = self._chaos
            if rate <= 0 or not kinds or rng.random() >= rate:
                return None
            kind = rng.choice(kinds)
            self.fault_counts[kind] = self.fault_counts.get(kind, 0) + 1
            return kind

    def fail_inside_next(self, status: int = 500, count: int = 1) -> None:
        """Make the next ``count`` calls fail *inside* Xero, after auth, limits and idempotency: like
        any answer, the error is cached under a write's Idempotency-Key, so the same key gets the
        same error back until the key expires (reference/xero-api.md §4.2)."""
        body = {"Title": "An error occurred", "Status": status, "Detail": "Injected fault inside Xero"}
        with self._lock:
            self._inside_faults.append(_Fault(status, {}, body, count))

    def seed_contact(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        """Create a contact directly (as if made in the Xero UI); raises ValueError on Xero's validation."""
        with self._lock:
            tenant = self._tenants[tenant_id]
            element, errors = self._save_contact(tenant, dict(fields), "PUT")
            if errors:
                raise ValueError("; ".join(errors))
            return copy.deepcopy(element)

    def contacts(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._snapshot(tenant_id, "contacts")

    def invoices(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._snapshot(tenant_id, "invoices")

    @property
    def tenant_ids(self) -> list[str]:
        with self._lock:
            return list(self._tenants)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received: ``{method, url, headers}`` (credentials masked)."""
        with self._lock:
            return copy.deepcopy(self._log)

    @property
    def refresh_count(self) -> int:
        """Successful ``refresh_token`` grants (a grace-period replay counts too)."""
        with self._lock:
            return self.grant_counts["refresh_token"]

    def issued_secrets(self) -> set[str]:
        """Every credential the sandbox knows or issued (client secrets, tokens, codes): for leak checks."""
        with self._lock:
            return set(self._issued)

    # ---------------------------------------------------------------- transport
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        host = request.url.host
        self._record(request)
        if host == "identity.xero.com":
            return self._identity(request)
        if host == "api.xero.com":
            return self._api(request)
        raise httpx.ConnectError(f"sandbox: no route to host {host}", request=request)

    def close(self) -> None:
        pass

    def _record(self, request: httpx.Request) -> None:
        headers = {}
        for name, value in request.headers.items():
            if name.lower() in ("authorization", "cookie"):
                scheme = value.split(" ", 1)[0] if " " in value else ""
                value = f"{scheme} <redacted>".strip()
            headers[name] = value
        with self._lock:
            self._log.append({"method": request.method, "url": str(request.url), "headers": headers})

    # ----------------------------------------------------------------- identity
    def _identity(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.rstrip("/") != "/connect/token" or request.method != "POST":
            return _not_found()
        with self._lock:
            if self._token_faults:
                status = self._token_faults.pop(0)
                return _response(status, {"error": "temporarily_unavailable"})
            app = self._client_auth(request)
            if app is None:
                return _oauth_error(401, "invalid_client")
            form = dict(parse_qsl(request.content.decode("utf-8", "replace"), keep_blank_values=True))
            grant_type = form.get("grant_type", "")
            if grant_type == "refresh_token":
                return self._grant_refresh(app, form.get("refresh_token", ""))
            if grant_type == "authorization_code":
                return self._grant_code(app, form.get("code", ""), form.get("redirect_uri"))
            if grant_type == "client_credentials":
                if app.custom_tenant_id is None:
                    return _oauth_error(400, "unauthorized_client")
                access = self._new_access(app.client_id, [app.custom_tenant_id], None)
                self.grant_counts["client_credentials"] += 1
                return self._token_response(access, None, ACCESS_TOKEN_SECONDS, form.get("scope", ""))
            return _oauth_error(400, "unsupported_grant_type")

    def _client_auth(self, request: httpx.Request) -> _App | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        client_id, _, client_secret = decoded.partition(":")
        app = self._apps.get(unquote(client_id))
        if app is None or not secrets.compare_digest(unquote(client_secret), app.client_secret):
            return None
        return app

    def _grant_refresh(self, app: _App, value: str) -> httpx.Response:
        now = self._now()
        token = self._refresh.get(value)
        if token is None or token.client_id != app.client_id or token.revoked:
            return self._invalid_grant()
        if token.successor is not None:
            # Xero's grace: the previous refresh token may be retried for 30 minutes and yields the
            # pair it produced the first time.
            if token.rotated_at is None or now - token.rotated_at > REFRESH_GRACE_SECONDS:
                return self._invalid_grant()
            access, refresh = token.successor
            self.grant_counts["refresh_token"] += 1
            remaining = self._access[access].expires_at - now if access in self._access else 0
            return self._token_response(
                access, refresh, max(0, int(remaining)), self._grants[token.grant_id].scopes
            )
        if now - token.issued_at > REFRESH_TOKEN_SECONDS:
            return self._invalid_grant()
        grant = self._grants[token.grant_id]
        access, refresh = self._new_pair(grant)
        token.successor = (access, refresh)
        token.rotated_at = now
        self.grant_counts["refresh_token"] += 1
        return self._token_response(access, refresh, ACCESS_TOKEN_SECONDS, grant.scopes)

    def _grant_code(self, app: _App, value: str, redirect_uri: str | None) -> httpx.Response:
        code = self._codes.get(value)
        if (
            code is None
            or code.used
            or code.client_id != app.client_id
            or self._now() > code.expires_at
            or (code.redirect_uri is not None and code.redirect_uri != redirect_uri)
        ):
            return self._invalid_grant()
        code.used = True
        grant = self._grants[code.grant_id]
        access, refresh = self._new_pair(grant)
        self.grant_counts["authorization_code"] += 1
        return self._token_response(access, refresh, ACCESS_TOKEN_SECONDS, grant.scopes)

    def _invalid_grant(self) -> httpx.Response:
        self.invalid_grants += 1
        return _oauth_error(400, "invalid_grant")

    @staticmethod
    def _token_response(access: str, refresh: str | None, expires_in: int, scope: str) -> httpx.Response:
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": expires_in,
            "token_type": "Bearer",
            "scope": scope,
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return _response(200, body, {"Cache-Control": "no-store"})

    def _new_grant(self, client_id: str, tenant_ids: list[str], scopes: str) -> _Grant:
        grant = _Grant(str(uuid.uuid4()), client_id, list(tenant_ids), scopes, str(uuid.uuid4()))
        self._grants[grant.grant_id] = grant
        # As identity's example: UTC without a zone, seven fractional digits. createdDateUtc is the
        # first connection of the tenant to the app, updatedDateUtc the latest (the spec's words).
        stamp = datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0")
        for tenant_id in tenant_ids:
            tenant = self._tenants[tenant_id]
            created = self._first_connected.setdefault((client_id, tenant_id), stamp)
            self._connections[(grant.grant_id, tenant_id)] = {
                "id": str(uuid.uuid4()),
                "authEventId": grant.auth_event_id,
                "tenantId": tenant_id,
                "tenantType": "ORGANISATION",
                "tenantName": tenant.name,
                "createdDateUtc": created,
                "updatedDateUtc": stamp,
            }
        return grant

    def _new_access(self, client_id: str, tenant_ids: list[str], grant_id: str | None) -> str:
        value = secrets.token_urlsafe(32)
        self._access[value] = _AccessToken(
            client_id, list(tenant_ids), self._now() + ACCESS_TOKEN_SECONDS, grant_id
        )
        self._issued.add(value)
        return value

    def _new_pair(self, grant: _Grant) -> tuple[str, str]:
        access = self._new_access(grant.client_id, grant.tenant_ids, grant.grant_id)
        refresh = secrets.token_urlsafe(32)
        self._refresh[refresh] = _RefreshToken(grant.client_id, grant.grant_id, self._now())
        self._issued.add(refresh)
        return access, refresh

    # ---------------------------------------------------------------------- API
    def _api(self, request: httpx.Request) -> httpx.Response:
        chaos = self._chaos_pick()
        if chaos == "lost":
            self._api_checked(request)  # Xero does the work; the answer never arrives
            raise httpx.ReadTimeout("injected fault: the answer was lost", request=request)
        if chaos == "timeout":
            raise httpx.ReadTimeout("injected fault: no answer", request=request)
        if chaos is not None:
            status = int(chaos)
            headers = {"Retry-After": "1", "X-Rate-Limit-Problem": "minute"} if status == 429 else {}
            return _response(status, {"Title": "Injected fault", "Status": status}, headers)
        return self._api_checked(request)

    def _api_checked(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            fault = self._take_fault()
        if fault is not None:
            return _response(fault.status, fault.body, fault.headers)
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with self._lock:
            token = self._access.get(bearer)
            if token is None or self._now() >= token.expires_at:
                return _unauthorized("TokenExpired")
        path = request.url.path
        if path.lower().rstrip("/") == "/connections" and request.method == "GET":
            return self._timed(lambda: self._get_connections(token))
        if not path.startswith(("/api.xro/2.0/", _PROJECTS_PREFIX)):
            return _not_found()
        tenant_id = request.headers.get("xero-tenant-id", "").strip().lower()
        if not tenant_id:
            if token.grant_id is not None:  # only custom connections may omit the tenant
                return _forbidden()
            tenant_id = token.tenant_ids[0]
        if tenant_id not in token.tenant_ids or tenant_id not in self._tenants:
            return _forbidden()
        tenant = self._tenants[tenant_id]
        with self._lock:
            rejected, limit_headers = self._admit(tenant, token.client_id)
            if rejected is not None:
                return rejected
        try:
            response = self._timed(lambda: self._idempotent(request, token.client_id, tenant))
        finally:
            with self._lock:
                tenant.in_flight -= 1
        response.headers.update(limit_headers)
        return response

    def _take_fault(self) -> _Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.pop(0)
        return fault

    def _timed(self, handler: Callable[[], httpx.Response]) -> httpx.Response:
        if self.latency:
            time.sleep(self.latency)
        return handler()

    def _get_connections(self, token: _AccessToken) -> httpx.Response:
        with self._lock:
            if token.grant_id is None:
                return _response(200, [])
            body = [dict(c) for (g, _), c in self._connections.items() if g == token.grant_id]
            return _response(200, body)

    def _admit(self, tenant: _Tenant, client_id: str) -> tuple[httpx.Response | None, dict[str, str]]:
        """Xero's limits per organisation (and per app-minute). Rejected calls are not counted."""
        now = self._now()
        app_window = self._app_minute.setdefault(client_id, deque())
        for window in (app_window, tenant.minute):
            while window and window[0] <= now - 60:
                window.popleft()
        day_index = int(now // 86400)
        if tenant.day_index != day_index:
            tenant.day_index, tenant.day_count = day_index, 0
        problem, retry_after = None, 0
        if tenant.in_flight >= self.concurrent_limit:
            # Xero documents the 5-in-flight limit but no X-Rate-Limit-Problem value (only minute,
            # day, appminute) nor a Retry-After for it: this 429 names nothing rather than invent one.
            problem, retry_after = "", 0
        elif len(tenant.minute) >= self.minute_limit:
            problem, retry_after = "minute", max(1, math.ceil(tenant.minute[0] + 60 - now))
        elif tenant.day_count >= self.day_limit:
            problem, retry_after = "day", max(1, math.ceil((day_index + 1) * 86400 - now))
        elif len(app_window) >= self.app_minute_limit:
            problem, retry_after = "appminute", max(1, math.ceil(app_window[0] + 60 - now))
        if problem is None:
            tenant.minute.append(now)
            app_window.append(now)
            tenant.day_count += 1
            tenant.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, tenant.in_flight)
        headers = {
            "X-MinLimit-Remaining": str(max(0, self.minute_limit - len(tenant.minute))),
            "X-DayLimit-Remaining": str(max(0, self.day_limit - tenant.day_count)),
            "X-AppMinLimit-Remaining": str(max(0, self.app_minute_limit - len(app_window))),
        }
        if problem is None:
            return None, headers
        named = {"Retry-After": str(retry_after), "X-Rate-Limit-Problem": problem} if problem else {}
        rejected = _response(
            429,
            {
                "Title": "Too Many Requests",
                "Status": 429,
                "Detail": f"Rate limit exceeded: {problem or 'unnamed'}",
            },
            {**headers, **named},
        )
        return rejected, headers

    def _idempotent(self, request: httpx.Request, client_id: str, tenant: _Tenant) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        if request.method not in ("POST", "PUT", "PATCH") or not key:
            return self._route(request, tenant)
        if len(key) > MAX_IDEMPOTENCY_KEY:
            return _api_exception(
                400,
                10,
                "ValidationException",
                f"Idempotency Key must not exceed {MAX_IDEMPOTENCY_KEY} characters.",
            )
        try:
            parsed: Any = json.loads(request.content) if request.content else None
            body_repr = json.dumps(parsed, sort_keys=True)
        except ValueError:
            body_repr = request.content.decode("utf-8", "replace")
        fingerprint = hashlib.sha256(f"{request.method}\n{request.url}\n{body_repr}".encode()).hexdigest()
        slot = (client_id, key)
        with self._idem_done:
            call = self._idempotency.get(slot)
            if call is not None and self._now() - call.created_at > IDEMPOTENCY_SECONDS:
                call = None
            if call is not None:
                if call.fingerprint != fingerprint:
                    return _api_exception(
                        400,
                        10,
                        "ValidationException",
                        f"Idempotency Key: {key} is used with a different request.",
                    )
                # A concurrent duplicate waits for the first and gets its answer.
                while not call.done:
                    self._idem_done.wait(timeout=30)
                if call.response is None:  # the first one crashed; process this one
                    call = None
                else:
                    status, headers, content = call.response
                    return httpx.Response(status, headers=headers, content=content)
            call = _IdempotentCall(fingerprint, self._now())
            self._idempotency[slot] = call
        try:
            response = self._route(request, tenant)
        except BaseException:
            with self._idem_done:
                call.done = True
                self._idempotency.pop(slot, None)
                self._idem_done.notify_all()
            raise
        with self._idem_done:
            call.response = (response.status_code, list(response.headers.multi_items()), response.content)
            call.done = True
            self._idem_done.notify_all()
        return response

    # ------------------------------------------------------------------ routing
    def _route(self, request: httpx.Request, tenant: _Tenant) -> httpx.Response:
        with self._lock:
            fault = self._inside_faults[0] if self._inside_faults else None
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._inside_faults.pop(0)
        if fault is not None:
            return _response(fault.status, fault.body, fault.headers)
        return self._route_request(request, tenant)

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
                    return self._ok(
                        {
                            "Organisations": [
                                {
                                    "OrganisationID": tenant.tenant_id,
                                    "Name": tenant.name,
                                    "BaseCurrency": tenant.currency,
                                    "OrganisationType": "COMPANY",
                                    "CountryCode": tenant.country,
                                    "IsDemoCompany": True,
                                }
                            ]
                        }
                    )
                else:
                    return _not_found()
                return _response(405, {"Title": "Method Not Allowed", "Status": 405})
            except _Reject as reject:
                return reject.response

    def _ok(self, payload: dict[str, Any]) -> httpx.Response:
        ms = int(self._now() * 1000)
        return _response(
            200,
            {
                "Id": str(uuid.uuid4()),
                "Status": "OK",
                "ProviderName": "Xero Sandbox",
                "DateTimeUTC": f"/Date({ms})/",
                **payload,
            },
        )

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

    def _get_contacts(self, tenant: _Tenant, ident: str | None, params: dict[str, str]) -> httpx.Response:
        if ident is not None:
            found = self._find_contact(tenant, ident)
            return self._ok({"Contacts": [copy.deepcopy(found)]}) if found else _not_found()
        records = list(tenant.contacts.values())
        if params.get("includearchived", "").lower() != "true":
            records = [c for c in records if c.get("ContactStatus") == "ACTIVE"]
        if params.get("ids"):
            wanted = {i.strip().lower() for i in params["ids"].split(",")}
            records = [c for c in records if c["ContactID"] in wanted]
        records = self._filter(
            records, params, ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
        )
        records, extra = self._page(records, params)
        return self._ok({**extra, "Contacts": copy.deepcopy(records)})

    def _get_invoices(self, tenant: _Tenant, ident: str | None, params: dict[str, str]) -> httpx.Response:
        if ident is not None:
            found = tenant.invoices.get(ident.lower())
            if found is None:  # Xero's docs also accept an InvoiceNumber here
                found = next((i for i in tenant.invoices.values() if i.get("InvoiceNumber") == ident), None)
            return self._ok({"Invoices": [copy.deepcopy(found)]}) if found else _not_found()
        records = list(tenant.invoices.values())

        def listed(name: str) -> set[str] | None:
            raw = params.get(name.lower())
            return {v.strip().casefold() for v in raw.split(",") if v.strip()} if raw else None

        for param, key in (("IDs", "InvoiceID"), ("InvoiceNumbers", "InvoiceNumber"), ("Statuses", "Status")):
            wanted = listed(param)
            if wanted is not None:
                records = [r for r in records if str(r.get(key, "")).casefold() in wanted]
        contacts = listed("ContactIDs")
        if contacts is not None:
            records = [r for r in records if r["Contact"]["ContactID"] in contacts]
        records = self._filter(records, params, ("InvoiceNumber", "Reference"))
        records, extra = self._page(records, params)
        return self._ok({**extra, "Invoices": copy.deepcopy(records)})

    def _find_contact(self, tenant: _Tenant, ident: str) -> dict[str, Any] | None:
        if _UUID.match(ident):
            return tenant.contacts.get(ident.lower())
        return next((c for c in tenant.contacts.values() if c.get("ContactNumber") == ident), None)

    # ------------------------------------------------------------------- writes
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

    def _stamp(self) -> str:
        return to_xero_date(datetime.fromtimestamp(self._now(), UTC))

    def _save_contact(
        self, tenant: _Tenant, element: dict[str, Any], method: str
    ) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        existing: dict[str, Any] | None = None
        contact_id = element.get("ContactID")
        if contact_id:
            if method == "PUT":
                errors.append("A ContactID cannot be specified when creating a contact; use POST to update.")
            else:
                existing = tenant.contacts.get(str(contact_id).lower())
                if existing is None:
                    errors.append(f"The Contact with ContactID {contact_id} could not be found.")
        fields = {k: element[k] for k in _CONTACT_FIELDS if k in element}
        name = fields.get("Name", existing.get("Name") if existing else None)
        if not isinstance(name, str) or not name.strip():
            errors.append("Contact Name cannot be empty.")
            name = None
        for key, limit in _CONTACT_LIMITS.items():
            value = fields.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                errors.append(f"The {key} must be a text of at most {limit} characters.")
        email = fields.get("EmailAddress")
        if isinstance(email, str) and email and not _EMAIL.match(email):
            errors.append("Email address must be valid.")
        status = fields.get("ContactStatus", existing.get("ContactStatus") if existing else "ACTIVE")
        if status not in ("ACTIVE", "ARCHIVED", "GDPRREQUEST"):
            errors.append(f"ContactStatus {status!r} is not valid.")
        currency = fields.get("DefaultCurrency")
        if currency is not None and (not isinstance(currency, str) or not _CURRENCY.match(currency)):
            errors.append(f"DefaultCurrency {currency!r} is not a valid currency code.")
        for key in ("Phones", "Addresses", "ContactPersons"):
            if key in fields and not (
                isinstance(fields[key], list) and all(isinstance(x, dict) for x in fields[key])
            ):
                errors.append(f"{key} must be a list of objects.")
        own_id = existing["ContactID"] if existing else None
        if name and status == "ACTIVE":
            taken = any(
                c["ContactID"] != own_id
                and c.get("ContactStatus") == "ACTIVE"
                and c["Name"].strip().casefold() == name.strip().casefold()
                for c in tenant.contacts.values()
            )
            if taken:
                errors.append(
                    f"The contact name {name} is already assigned to another contact. "
                    "The contact name must be unique across all active contacts."
                )
        account = fields.get("AccountNumber")
        if account and any(
            c["ContactID"] != own_id and c.get("AccountNumber") == account for c in tenant.contacts.values()
        ):
            errors.append("The Account Number already exists. Please enter a different Account Number.")
        if errors:
            return {}, errors
        if existing is None:
            existing = {
                "ContactID": str(uuid.uuid4()),
                "ContactStatus": "ACTIVE",
                "Addresses": [],
                "Phones": [],
                "ContactGroups": [],
                "ContactPersons": [],
                "IsSupplier": False,
                "IsCustomer": False,
                "HasAttachments": False,
                "HasValidationErrors": False,
            }
            tenant.contacts[existing["ContactID"]] = existing
        existing.update(copy.deepcopy(fields))
        existing["ContactStatus"] = status
        existing["UpdatedDateUTC"] = self._stamp()
        return existing, []

    def _resolve_contact(self, tenant: _Tenant, ref: Any) -> tuple[dict[str, Any] | None, str | None]:
        if not isinstance(ref, dict) or not any(ref.get(k) for k in ("ContactID", "ContactNumber", "Name")):
            return None, "A Contact must be specified for this type of transaction"
        if ref.get("ContactID"):
            found = tenant.contacts.get(str(ref["ContactID"]).lower())
            return (
                (found, None)
                if found
                else (None, f"The Contact with ContactID {ref['ContactID']} could not be found.")
            )
        if ref.get("ContactNumber"):
            found = next(
                (c for c in tenant.contacts.values() if c.get("ContactNumber") == ref["ContactNumber"]), None
            )
            return (
                (found, None)
                if found
                else (None, f"The Contact with ContactNumber {ref['ContactNumber']} could not be found.")
            )
        found = next(
            (
                c
                for c in tenant.contacts.values()
                if c.get("ContactStatus") == "ACTIVE" and c["Name"].casefold() == str(ref["Name"]).casefold()
            ),
            None,
        )
        return (found, None) if found else (None, f"The Contact with Name {ref['Name']} could not be found.")

    def _save_invoice(
        self, tenant: _Tenant, element: dict[str, Any], method: str, unitdp: int
    ) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        existing: dict[str, Any] | None = None
        invoice_id = element.get("InvoiceID")
        if invoice_id:
            if method == "PUT":
                errors.append(
                    "An InvoiceID cannot be specified when creating an invoice; use POST to update."
                )
            else:
                existing = tenant.invoices.get(str(invoice_id).lower())
                if existing is None:
                    errors.append(f"The Invoice with InvoiceID {invoice_id} could not be found.")
        elif method == "POST" and element.get("InvoiceNumber") and element.get("Type", "ACCREC") == "ACCREC":
            # POST is an upsert: an ACCREC invoice number names the invoice to update.
            existing = next(
                (
                    i
                    for i in tenant.invoices.values()
                    if i["Type"] == "ACCREC" and i["InvoiceNumber"] == element["InvoiceNumber"]
                ),
                None,
            )
        if errors:
            return {}, errors
        base = existing or {}
        kind = element.get("Type", base.get("Type"))
        if kind is None:
            errors.append("Invoice Type must be specified.")
        elif kind not in _INVOICE_TYPES:
            errors.append(f"Invoice Type {kind!r} is not supported; use ACCREC or ACCPAY.")
        if existing and kind and kind != existing["Type"]:
            errors.append("The Type of an existing invoice cannot be changed.")
        contact: dict[str, Any] | None
        if "Contact" in element or not existing:
            contact, problem = self._resolve_contact(tenant, element.get("Contact"))
            if problem:
                errors.append(problem)
        else:
            contact = tenant.contacts.get(existing["Contact"]["ContactID"])
        status = element.get("Status", base.get("Status", "DRAFT"))
        allowed = _CREATE_STATUSES if not existing else (*_CREATE_STATUSES, "DELETED", "VOIDED")
        if status not in allowed:
            errors.append(f"Invoice Status {status!r} is not valid here.")
        amount_types = element.get("LineAmountTypes", base.get("LineAmountTypes", "Exclusive"))
        if amount_types not in _LINE_AMOUNT_TYPES:
            errors.append(f"LineAmountTypes {amount_types!r} is not valid.")
        currency = element.get("CurrencyCode", base.get("CurrencyCode", tenant.currency))
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            errors.append(f"CurrencyCode {currency!r} is not a valid currency code.")
        dates: dict[str, date | None] = {}
        for key in ("Date", "DueDate"):
            raw = element.get(key)
            if raw in (None, ""):
                previous = base.get(f"{key}String")
                dates[key] = (
                    date.fromisoformat(previous[:10])
                    if previous
                    else (datetime.fromtimestamp(self._now(), UTC).date() if key == "Date" else None)
                )
                continue
            try:
                dates[key] = _parse_day(raw)
            except ValueError:
                errors.append(f"The {key} {raw!r} is not a valid date.")
        number = element.get("InvoiceNumber", base.get("InvoiceNumber"))
        if number is not None and (not isinstance(number, str) or len(number) > 255):
            errors.append("InvoiceNumber must be a text of at most 255 characters.")
        if kind == "ACCREC" and number:
            own = existing["InvoiceID"] if existing else None
            if any(
                i["InvoiceID"] != own
                and i["Type"] == "ACCREC"
                and i["InvoiceNumber"].casefold() == number.casefold()
                for i in tenant.invoices.values()
            ):
                errors.append("Invoice # must be unique.")
        raw_lines = self._kept_lines(element, base, amount_types)
        lines, line_errors = self._lines(raw_lines, unitdp, kind == "ACCREC")
        errors.extend(line_errors)
        errors.extend(self._line_account_errors(tenant, lines))
        errors.extend(self._tax(tenant, lines, str(amount_types), sales=kind != "ACCPAY"))
        if errors:
            return {}, errors
        assert contact is not None and kind is not None
        subtotal, tax, total = self._totals(lines, str(amount_types))
        paid = _decimal(base.get("AmountPaid", 0)) or Decimal(0)
        if not number:
            if kind == "ACCREC":
                used = {i["InvoiceNumber"] for i in tenant.invoices.values()}
                while f"INV-{tenant.next_invoice:04d}" in used:
                    tenant.next_invoice += 1
                number = f"INV-{tenant.next_invoice:04d}"
                tenant.next_invoice += 1
            else:
                number = ""
        invoice: dict[str, Any] = existing if existing is not None else {"InvoiceID": str(uuid.uuid4())}
        invoice.update(
            {
                "Type": kind,
                "InvoiceNumber": number,
                "Reference": element.get("Reference", base.get("Reference", "")),
                "Prepayments": [],
                "Overpayments": [],
                "CreditNotes": [],
                "Payments": [],
                "AmountDue": _num(_money(total - paid)),
                "AmountPaid": _num(_money(paid)),
                "AmountCredited": 0.0,
                "SentToContact": False,
                "CurrencyRate": 1.0,
                "IsDiscounted": any(li.get("DiscountRate") for li in lines),
                "HasAttachments": False,
                "HasErrors": False,
                "Contact": {
                    k: contact[k]
                    for k in ("ContactID", "ContactNumber", "Name", "ContactStatus")
                    if k in contact
                }
                | {"HasValidationErrors": False},
                "Status": status,
                "LineAmountTypes": amount_types,
                "LineItems": lines,
                "SubTotal": _num(_money(subtotal)),
                "TotalTax": _num(_money(tax)),
                "Total": _num(_money(total)),
                "CurrencyCode": currency,
                "UpdatedDateUTC": self._stamp(),
            }
        )
        invoice["UpdatedDateUTCString"] = datetime.fromtimestamp(self._now(), UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        for key, day in dates.items():
            if day is not None:
                invoice[key] = to_xero_date(day)
                invoice[f"{key}String"] = f"{day.isoformat()}T00:00:00"
        if "Url" in element or "Url" in base:
            invoice["Url"] = element.get("Url", base.get("Url"))
        tenant.invoices[invoice["InvoiceID"]] = invoice
        contact["IsCustomer" if kind == "ACCREC" else "IsSupplier"] = True
        return invoice, []

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

    # ============================================================ issue #3: more of the Accounting API
    # Accounts, Payments, Quotes, PurchaseOrders, Items, BankTransfers, History and Notes, the
    # BalanceSheet and ProfitAndLoss reports (computed from the organisation's data), and the
    # Projects API. Behaviour and messages follow reference/xero-api.md §2.
    def _today(self) -> date:
        return datetime.fromtimestamp(self._now(), UTC).date()

    @staticmethod
    def _account_tax(tenant: _Tenant, kind: str) -> str:
        sales, purchases, other = _DEFAULT_TAX[tenant.country]
        return {"REVENUE": sales, "EXPENSE": purchases}.get(_CLASS_OF[kind], other)

    def _seed_accounts(self, tenant: _Tenant) -> None:
        for code, name, kind, system in _CHART:
            account_id = str(uuid.uuid4())
            account: dict[str, Any] = {
                "AccountID": account_id,
                "Code": code,
                "Name": name,
                "Type": kind,
                "Status": "ACTIVE",
                "Class": _CLASS_OF[kind],
                "TaxType": self._account_tax(tenant, kind),
                "EnablePaymentsToAccount": False,
                "ShowInExpenseClaims": kind == "EXPENSE",
                "HasAttachments": False,
                "AddToWatchlist": False,
                "ReportingCode": "",
                "UpdatedDateUTC": to_xero_date(datetime.fromtimestamp(tenant.created_at, UTC)),
            }
            if kind == "BANK":
                account.update(
                    BankAccountNumber=f"12-3456-{code}", BankAccountType="BANK", CurrencyCode=tenant.currency
                )
            if system:
                account["SystemAccount"] = system
            tenant.accounts[account_id] = account

    @staticmethod
    def _tax_rate(fields: dict[str, Any]) -> dict[str, Any]:
        """A TaxRate as Xero lists it; its rate is the sum of its components unless given."""
        components = [
            {"IsCompound": False, "IsNonRecoverable": False, **c} for c in fields.get("TaxComponents") or []
        ]
        total = sum((Decimal(str(c.get("Rate") or 0)) for c in components), Decimal(0))
        rate = {
            "Name": fields.get("Name", fields["TaxType"]),
            "TaxType": fields["TaxType"],
            "ReportTaxType": fields.get("ReportTaxType", "OUTPUT"),
            **{flag: fields.get(flag, True) for flag in _APPLIES},
            "DisplayTaxRate": float(fields.get("DisplayTaxRate", total)),
            "EffectiveRate": float(fields.get("EffectiveRate", total)),
            "Status": fields.get("Status", "ACTIVE"),
            "TaxComponents": [{**c, "Rate": float(c.get("Rate") or 0)} for c in components],
        }
        return rate

    def _seed_tax_rates(self, tenant: _Tenant) -> None:
        for tax_type, name, report, components, applies in _TAX_RATES[tenant.country]:
            tenant.tax_rates[tax_type] = self._tax_rate(
                {
                    "TaxType": tax_type,
                    "Name": name,
                    "ReportTaxType": report,
                    "TaxComponents": [{"Name": n, "Rate": Decimal(r)} for n, r in components],
                    **dict(zip(_APPLIES, applies, strict=True)),
                }
            )

    def seed_tax_rate(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        """Add a tax rate to an organisation, or change one by its ``TaxType`` (the given fields over
        the existing ones; ``Status="ARCHIVED"`` retires it): e.g. ``TaxType="TAX002", Name="County
        Tax", TaxComponents=[{"Name": "County", "Rate": 1.5}]``."""
        if not fields.get("TaxType"):
            raise ValueError("a tax rate needs its TaxType")
        with self._lock:
            tenant = self._tenants[tenant_id]
            merged = {**tenant.tax_rates.get(fields["TaxType"], {}), **fields}
            if "TaxComponents" in fields:  # new components: the rates follow them unless given
                for key in ("DisplayTaxRate", "EffectiveRate"):
                    if key not in fields:
                        merged.pop(key, None)
            rate = self._tax_rate(merged)
            if rate["Status"] not in ("ACTIVE", "DELETED", "ARCHIVED", "PENDING"):
                raise ValueError(f"TaxRate Status {rate['Status']!r} is not one of Xero's")
            tenant.tax_rates[rate["TaxType"]] = rate
            return copy.deepcopy(rate)

    def tax_rates(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._snapshot(tenant_id, "tax_rates")

    def _snapshot(self, tenant_id: str, table: str) -> list[dict[str, Any]]:
        """A copy of one of an organisation's tables, for tests and the demo to inspect."""
        with self._lock:
            return copy.deepcopy(list(getattr(self._tenants[tenant_id], table).values()))

    def accounts(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._snapshot(tenant_id, "accounts")

    def payments(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._snapshot(tenant_id, "payments")

    def quotes(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._snapshot(tenant_id, "quotes")

    def purchase_orders(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._snapshot(tenant_id, "purchase_orders")

    def items(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._snapshot(tenant_id, "items")

    def bank_transfers(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._snapshot(tenant_id, "bank_transfers")

    def projects(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._snapshot(tenant_id, "projects")

    def history(self, tenant_id: str, record_id: str) -> list[dict[str, Any]]:
        """History and notes of any record (invoice, quote, purchase order, …) by its id."""
        with self._lock:
            return copy.deepcopy(self._tenants[tenant_id].history.get(record_id.lower(), []))

    # ------------------------------------------------------------ lookups
    def _account(self, tenant: _Tenant, ref: Any) -> dict[str, Any] | None:
        if not isinstance(ref, dict):
            return None
        if ref.get("AccountID"):
            return tenant.accounts.get(str(ref["AccountID"]).lower())
        if ref.get("Code"):
            return next((a for a in tenant.accounts.values() if a["Code"] == str(ref["Code"])), None)
        return None

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
    def _contact_summary(contact: dict[str, Any]) -> dict[str, Any]:
        return {
            k: contact[k] for k in ("ContactID", "ContactNumber", "Name", "ContactStatus") if k in contact
        } | {"HasValidationErrors": False}

    def _day(self, element: dict[str, Any], base: dict[str, Any], key: str, errors: list[str]) -> date | None:
        raw = element.get(key)
        if raw in (None, ""):
            previous = base.get(f"{key}String")
            return date.fromisoformat(previous[:10]) if previous else None
        try:
            return _parse_day(raw)
        except ValueError:
            errors.append(f"The {key} {raw!r} is not a valid date.")
            return None

    @staticmethod
    def _set_day(record: dict[str, Any], key: str, day: date | None) -> None:
        if day is not None:
            record[key] = to_xero_date(day)
            record[f"{key}String"] = f"{day.isoformat()}T00:00:00"

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

    # --------------------------------------------------------------- listing
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

    # --------------------------------------------------------------- payments
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

    # ----------------------------------------------------- quotes and orders
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

    # ------------------------------------------------------------------ items
    def _save_item(
        self, tenant: _Tenant, element: dict[str, Any], method: str
    ) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        existing: dict[str, Any] | None = None
        if element.get("ItemID"):
            if method == "PUT":
                return {}, ["An ItemID cannot be specified when creating an item; use POST to update."]
            existing = tenant.items.get(str(element["ItemID"]).lower())
            if existing is None:
                return {}, [f"The Item with ItemID {element['ItemID']} could not be found."]
        code = element.get("Code", existing.get("Code") if existing else None)
        if not isinstance(code, str) or not code.strip():
            return {}, ["Item Code must be specified."]
        if len(code) > 30:
            errors.append("Item Code must not be more than 30 characters long.")
        if existing is None and method == "POST":
            # POST is an upsert: an item's Code names it.
            existing = next((i for i in tenant.items.values() if i["Code"] == code), None)
        own = existing["ItemID"] if existing else None
        if any(i["ItemID"] != own and i["Code"].casefold() == code.casefold() for i in tenant.items.values()):
            errors.append(f"Item code '{code}' already exists.")
        for key, limit in (("Name", 50), ("Description", 4000), ("PurchaseDescription", 4000)):
            value = element.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                errors.append(f"Item {key} must not be more than {limit} characters long.")
        base = existing or {}
        details: dict[str, dict[str, Any]] = {}
        for key in ("SalesDetails", "PurchaseDetails"):
            raw = element.get(key, base.get(key, {}))
            if not isinstance(raw, dict):
                errors.append(f"{key} must be an object.")
                continue
            for code_key in ("AccountCode", "COGSAccountCode"):
                value = raw.get(code_key)
                if value and self._account(tenant, {"Code": value}) is None:
                    errors.append(f"{key}.{code_key} '{value}' is not a valid account code.")
            try:
                price = _decimal(raw.get("UnitPrice"))
            except (InvalidOperation, ValueError):
                errors.append(f"{key}.UnitPrice must be a number.")
                price = None
            details[key] = {k: raw[k] for k in ("AccountCode", "COGSAccountCode", "TaxType") if raw.get(k)}
            if price is not None:
                details[key]["UnitPrice"] = _num(_money(price, 4))
        inventory = element.get("InventoryAssetAccountCode", base.get("InventoryAssetAccountCode"))
        if inventory:
            account = self._account(tenant, {"Code": inventory})
            if account is None or account["Type"] != "INVENTORY":
                errors.append("InventoryAssetAccountCode must be the code of an Inventory account.")
            if not details.get("PurchaseDetails", {}).get("COGSAccountCode"):
                errors.append(
                    "A tracked item needs PurchaseDetails.COGSAccountCode (its cost of goods account)."
                )
        elif details.get("PurchaseDetails", {}).get("COGSAccountCode"):
            errors.append(
                "COGSAccountCode applies to tracked items only: give InventoryAssetAccountCode too."
            )
        if errors:
            return {}, errors
        if inventory:
            # For a tracked item the purchase account is the inventory asset account.
            details["PurchaseDetails"].pop("AccountCode", None)
        item: dict[str, Any] = (
            existing
            if existing is not None
            else {
                "ItemID": str(uuid.uuid4()),
                "QuantityOnHand": 0.0,
                "TotalCostPool": 0.0,
            }
        )
        item.update(
            {
                "Code": code,
                "Name": element.get("Name", base.get("Name", "")),
                "Description": element.get("Description", base.get("Description", "")),
                "PurchaseDescription": element.get(
                    "PurchaseDescription", base.get("PurchaseDescription", "")
                ),
                "IsSold": bool(element.get("IsSold", base.get("IsSold", True))),
                "IsPurchased": bool(element.get("IsPurchased", base.get("IsPurchased", True))),
                "IsTrackedAsInventory": bool(inventory),
                "SalesDetails": details.get("SalesDetails", {}),
                "PurchaseDetails": details.get("PurchaseDetails", {}),
                "UpdatedDateUTC": self._stamp(),
            }
        )
        if inventory:
            item["InventoryAssetAccountCode"] = inventory
        tenant.items[item["ItemID"]] = item
        return item, []

    # --------------------------------------------------------- bank transfers
    def _save_bank_transfer(
        self, tenant: _Tenant, element: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        sides: dict[str, dict[str, Any]] = {}
        for key in ("FromBankAccount", "ToBankAccount"):
            ref = element.get(key)
            if not isinstance(ref, dict) or not (ref.get("Code") or ref.get("AccountID")):
                errors.append(f"{key} must be specified (Code or AccountID).")
                continue
            account = self._account(tenant, ref)
            if account is None:
                errors.append(f"{key} could not be found.")
            elif account["Type"] != "BANK":
                errors.append(f"{key} must be a bank account.")
            else:
                sides[key] = account
        if len(sides) == 2 and sides["FromBankAccount"]["AccountID"] == sides["ToBankAccount"]["AccountID"]:
            errors.append("The From and To bank accounts must be different.")
        try:
            amount = _decimal(element.get("Amount"))
        except (InvalidOperation, ValueError):
            amount = None
        if amount is None or amount <= 0:
            errors.append("Amount must be a number greater than zero.")
        day = self._day(element, {}, "Date", errors) or self._today()
        if errors:
            return {}, errors
        assert amount is not None
        stamp = self._stamp()
        transfer: dict[str, Any] = {
            "BankTransferID": str(uuid.uuid4()),
            "FromBankAccount": {k: sides["FromBankAccount"][k] for k in ("AccountID", "Code", "Name")},
            "ToBankAccount": {k: sides["ToBankAccount"][k] for k in ("AccountID", "Code", "Name")},
            "Amount": _num(_money(amount)),
            "Date": to_xero_date(day),
            "DateString": f"{day.isoformat()}T00:00:00",
            "CurrencyRate": 1.0,
            "FromBankTransactionID": str(uuid.uuid4()),
            "ToBankTransactionID": str(uuid.uuid4()),
            "FromIsReconciled": bool(element.get("FromIsReconciled", False)),
            "ToIsReconciled": bool(element.get("ToIsReconciled", False)),
            "Reference": str(element.get("Reference") or ""),
            "HasAttachments": False,
            "CreatedDateUTC": stamp,  # Xero's BankTransfer has no UpdatedDateUTC
            "Status": "AUTHORISED",
        }
        tenant.bank_transfers[transfer["BankTransferID"]] = transfer
        return transfer, []

    # ------------------------------------------------------- history and notes
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

    # ----------------------------------------------------------------- reports
    def _ledger(self, tenant: _Tenant) -> list[tuple[date, str, Decimal]]:
        """Posted amounts (date, account id, debit positive) from approved invoices, payments, transfers."""
        by_code = {a["Code"]: a["AccountID"] for a in tenant.accounts.values()}
        entries: list[tuple[date, str, Decimal]] = []
        for invoice in tenant.invoices.values():
            if invoice["Status"] not in ("AUTHORISED", "PAID"):
                continue
            day = date.fromisoformat(invoice["DateString"][:10])
            sign = Decimal(1) if invoice["Type"] == "ACCREC" else Decimal(-1)
            control = by_code["610" if invoice["Type"] == "ACCREC" else "800"]
            entries.append((day, control, sign * Decimal(str(invoice["Total"]))))
            entries.append((day, by_code["820"], -sign * Decimal(str(invoice["TotalTax"]))))
            default = by_code["200" if invoice["Type"] == "ACCREC" else "429"]
            inclusive = invoice.get("LineAmountTypes") == "Inclusive"
            for line in invoice["LineItems"]:
                net = Decimal(str(line["LineAmount"]))
                if inclusive:
                    net -= Decimal(str(line.get("TaxAmount") or 0))
                account = line.get("AccountID") or by_code.get(line.get("AccountCode", "")) or default
                entries.append((day, str(account).lower(), -sign * net))
        for payment in tenant.payments.values():
            if payment["Status"] != "AUTHORISED":
                continue
            day = (
                datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=self._ms(payment["Date"]) or 0)
            ).date()
            sign = Decimal(1) if payment["PaymentType"] == "ACCRECPAYMENT" else Decimal(-1)
            amount = Decimal(str(payment["Amount"]))
            control = by_code["610" if sign > 0 else "800"]
            entries.append((day, payment["Account"]["AccountID"], sign * amount))
            entries.append((day, control, -sign * amount))
        for transfer in tenant.bank_transfers.values():
            day = date.fromisoformat(transfer["DateString"][:10])
            amount = Decimal(str(transfer["Amount"]))
            entries.append((day, transfer["FromBankAccount"]["AccountID"], -amount))
            entries.append((day, transfer["ToBankAccount"]["AccountID"], amount))
        return entries

    @staticmethod
    def _shift(day: date, months: int) -> date:
        import calendar

        month_end = day.day == calendar.monthrange(day.year, day.month)[1]
        index = day.year * 12 + day.month - 1 + months
        year, month = divmod(index, 12)
        last = calendar.monthrange(year, month + 1)[1]
        return date(year, month + 1, last if month_end else min(day.day, last))

    def _report_params(self, params: dict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
        import calendar

        out: dict[str, Any] = {}
        try:
            for name in names:
                if params.get(name.lower()):
                    out[name] = date.fromisoformat(params[name.lower()])
            periods = int(params.get("periods", "0") or 0)
        except ValueError as exc:
            raise _Reject(_api_exception(400, 16, "QueryParseException", str(exc))) from None
        timeframe = params.get("timeframe", "MONTH").upper()
        if timeframe not in ("MONTH", "QUARTER", "YEAR") or not 0 <= periods <= 12:
            raise _Reject(
                _api_exception(
                    400,
                    16,
                    "QueryParseException",
                    "periods must be 0 to 12 and timeframe MONTH, QUARTER or YEAR",
                )
            )
        today = self._today()
        out["month_end"] = today.replace(day=calendar.monthrange(today.year, today.month)[1])
        out["periods"] = periods
        out["step"] = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[timeframe]
        return out

    @staticmethod
    def _title(day: date) -> str:
        return f"{day.day} {day:%b %Y}"

    @staticmethod
    def _us_day(day: date) -> str:
        """A report attribute's date, as Xero writes it: ``4/30/2019``."""
        return f"{day.month}/{day.day}/{day.year}"

    @staticmethod
    def _cell(value: str, account_id: str | None = None) -> dict[str, Any]:
        cell: dict[str, Any] = {"Value": value}
        if account_id:
            cell["Attributes"] = [{"Value": account_id, "Id": "account"}]
        return cell

    def _account_rows(
        self, accounts: list[dict[str, Any]], columns: list[dict[str, Decimal]], sign: Decimal
    ) -> list[dict[str, Any]]:
        rows = []
        for account in sorted(accounts, key=lambda a: a["Code"]):
            values = [sign * c.get(account["AccountID"], Decimal(0)) for c in columns]
            if all(v == 0 for v in values):
                continue
            label = f"{account['Name']}"
            cells = [self._cell(label, account["AccountID"])]
            cells += [self._cell(f"{_money(v):.2f}", account["AccountID"]) for v in values]
            rows.append({"RowType": "Row", "Cells": cells})
        return rows

    @staticmethod
    def _sum_rows(rows: list[dict[str, Any]], width: int) -> list[Decimal]:
        totals = [Decimal(0)] * width
        for row in rows:
            for i, cell in enumerate(row["Cells"][1:]):
                totals[i] += Decimal(cell["Value"])
        return totals

    def _total_row(self, title: str, values: list[Decimal], kind: str = "SummaryRow") -> dict[str, Any]:
        return {
            "RowType": kind,
            "Cells": [self._cell(title)] + [self._cell(f"{_money(v):.2f}") for v in values],
        }

    def _report(self, tenant: _Tenant, name: str, params: dict[str, str]) -> httpx.Response:
        if name not in ("balancesheet", "profitandloss"):
            return _not_found()
        ledger = self._ledger(tenant)
        accounts = list(tenant.accounts.values())

        def of(types: tuple[str, ...]) -> list[dict[str, Any]]:
            return [a for a in accounts if a["Type"] in types]

        def sums(start: date | None, end: date) -> dict[str, Decimal]:
            out: dict[str, Decimal] = {}
            for day, account_id, amount in ledger:
                if day <= end and (start is None or day >= start):
                    out[account_id] = out.get(account_id, Decimal(0)) + amount
            return out

        def section(
            title: str, types: tuple[str, ...], cols: list[dict[str, Decimal]], sign: Decimal, total: str
        ) -> tuple[list[dict[str, Any]], list[Decimal]]:
            rows = self._account_rows(of(types), cols, sign)
            values = self._sum_rows(rows, len(cols))
            if not rows:
                return [], values
            return [
                {"RowType": "Section", "Title": title, "Rows": [*rows, self._total_row(total, values)]}
            ], values

        # As Xero's BalanceSheet example: a sum of sections ("Total Assets") is a SummaryRow in an
        # untitled section, a difference ("Net Assets") a plain Row. The spec has no ProfitAndLoss
        # example; its Gross Profit and Net Profit follow the Net Assets convention.
        def line(title: str, values: list[Decimal], kind: str = "Row") -> dict[str, Any]:
            return {"RowType": "Section", "Title": "", "Rows": [self._total_row(title, values, kind)]}

        rows: list[dict[str, Any]]
        report: dict[str, Any]
        if name == "balancesheet":
            options = self._report_params(params, ("date",))
            at = options.get("date") or options["month_end"]
            ends = [self._shift(at, -k * options["step"]) for k in range(options["periods"] + 1)]
            cols = [sums(None, end) for end in ends]
            profit_sums = [
                sum(
                    (c.get(a["AccountID"], Decimal(0)) for a in of(_INCOME_TYPES + _EXPENSE_TYPES)),
                    Decimal(0),
                )
                for c in cols
            ]
            rows = [
                {"RowType": "Header", "Cells": [self._cell("")] + [self._cell(self._title(e)) for e in ends]}
            ]
            rows.append({"RowType": "Section", "Title": "Assets", "Rows": []})
            bank, bank_total = section("Bank", ("BANK",), cols, Decimal(1), "Total Bank")
            current, current_total = section(
                "Current Assets",
                ("CURRENT", "INVENTORY", "PREPAYMENT"),
                cols,
                Decimal(1),
                "Total Current Assets",
            )
            fixed, fixed_total = section(
                "Fixed Assets", ("FIXED", "NONCURRENT"), cols, Decimal(1), "Total Fixed Assets"
            )
            assets = [a + b + c for a, b, c in zip(bank_total, current_total, fixed_total, strict=True)]
            rows += [*bank, *current, *fixed, line("Total Assets", assets, "SummaryRow")]
            rows.append({"RowType": "Section", "Title": "Liabilities", "Rows": []})
            liab, liab_total = section(
                "Current Liabilities", _LIABILITY_TYPES, cols, Decimal(-1), "Total Current Liabilities"
            )
            rows += [*liab, line("Total Liabilities", liab_total, "SummaryRow")]
            net = [a - b for a, b in zip(assets, liab_total, strict=True)]
            rows.append(line("Net Assets", net))
            # The sandbox's organisation keeps a calendar financial year: profit of earlier years
            # is Retained Earnings, this year's "Current Year Earnings" — a computed line Xero
            # marks with the nil account id and each column's span (M/D/YYYY), as in its example.
            years = [date(end.year, 1, 1) for end in ends]
            current_sums = [
                sum(
                    (c.get(a["AccountID"], Decimal(0)) for a in of(_INCOME_TYPES + _EXPENSE_TYPES)),
                    Decimal(0),
                )
                for c in (sums(start, end) for start, end in zip(years, ends, strict=True))
            ]
            retained = next((a for a in accounts if a.get("SystemAccount") == "RETAINEDEARNINGS"), None)
            equity_cols = cols
            if retained is not None:
                equity_cols = [
                    {**c, retained["AccountID"]: c.get(retained["AccountID"], Decimal(0)) + total - now}
                    for c, total, now in zip(cols, profit_sums, current_sums, strict=True)
                ]
            equity_rows = self._account_rows(of(("EQUITY",)), equity_cols, Decimal(-1))
            for row in equity_rows:
                if (
                    retained is not None
                    and row["Cells"][0]["Attributes"][0]["Value"] == retained["AccountID"]
                ):
                    for cell, start in zip(row["Cells"][1:], years, strict=True):
                        cell["Attributes"] += [
                            {"Value": "", "Id": "fromDate"},
                            {"Value": self._us_day(start - timedelta(days=1)), "Id": "toDate"},
                        ]
            nil = "00000000-0000-0000-0000-000000000000"
            earnings_cells = [self._cell("Current Year Earnings", nil)]
            for value, start, end in zip(current_sums, years, ends, strict=True):
                cell = self._cell(f"{_money(-value):.2f}", nil)
                cell["Attributes"] += [
                    {"Value": self._us_day(start), "Id": "fromDate"},
                    {"Value": self._us_day(end), "Id": "toDate"},
                ]
                earnings_cells.append(cell)
            equity_rows.insert(0, {"RowType": "Row", "Cells": earnings_cells})
            equity_total = self._sum_rows(equity_rows, len(cols))
            rows.append(
                {
                    "RowType": "Section",
                    "Title": "Equity",
                    "Rows": [*equity_rows, self._total_row("Total Equity", equity_total)],
                }
            )
            # No ReportID: Xero's examples send none for these two reports.
            report = {
                "ReportName": "Balance Sheet",
                "ReportType": "BalanceSheet",
                "ReportTitles": ["Balance Sheet", tenant.name, f"As at {at.day} {at:%B %Y}"],
            }
        else:
            options = self._report_params(params, ("fromDate", "toDate"))
            end = options.get("toDate") or options["month_end"]
            start = options.get("fromDate") or end.replace(day=1)
            if start > end:
                raise _Reject(_api_exception(400, 16, "QueryParseException", "fromDate is after toDate"))
            spans = [
                (self._shift(start, -k * options["step"]), self._shift(end, -k * options["step"]))
                for k in range(options["periods"] + 1)
            ]
            cols = [sums(s, e) for s, e in spans]
            rows = [
                {
                    "RowType": "Header",
                    "Cells": [self._cell("")] + [self._cell(self._title(e)) for _, e in spans],
                }
            ]
            income, income_total = section("Income", ("REVENUE", "SALES"), cols, Decimal(-1), "Total Income")
            costs, costs_total = section(
                "Less Cost of Sales", ("DIRECTCOSTS",), cols, Decimal(1), "Total Cost of Sales"
            )
            gross = [a - b for a, b in zip(income_total, costs_total, strict=True)]
            other, other_total = section(
                "Plus Other Income", ("OTHERINCOME",), cols, Decimal(-1), "Total Other Income"
            )
            expenses, expenses_total = section(
                "Less Operating Expenses",
                ("EXPENSE", "OVERHEADS", "DEPRECIATN"),
                cols,
                Decimal(1),
                "Total Operating Expenses",
            )
            net = [g + o - e for g, o, e in zip(gross, other_total, expenses_total, strict=True)]
            rows += [*income, *costs, line("Gross Profit", gross), *other, *expenses, line("Net Profit", net)]
            report = {
                "ReportName": "Profit and Loss",
                "ReportType": "ProfitAndLoss",
                "ReportTitles": [
                    "Profit & Loss",
                    tenant.name,
                    f"{start.day} {start:%B %Y} to {end.day} {end:%B %Y}",
                ],
            }
        today = self._today()
        report.update(
            {
                "ReportDate": f"{today.day} {today:%B %Y}",
                "UpdatedDateUTC": self._stamp(),
                "Fields": [],
                "Rows": rows,
            }
        )
        return self._ok({"Reports": [report]})

    # ----------------------------------------------------------- Projects API
    def _projects_api(self, request: httpx.Request, tenant: _Tenant) -> httpx.Response:
        parts = [p.lower() for p in request.url.path[len(_PROJECTS_PREFIX) :].split("/") if p]
        params = {k.lower(): v for k, v in request.url.params.multi_items()}
        if not parts or parts[0] != "projects" or len(parts) > 2:
            return _response(404, {"message": "The resource you're looking for cannot be found"})
        if len(parts) == 2:
            found = tenant.projects.get(parts[1])
            if request.method != "GET":
                return _response(405, {"message": "Method not allowed"})
            return _response(200, found) if found else _response(404, {"message": "Project not found"})
        if request.method == "GET":
            records = list(tenant.projects.values())
            if params.get("contactid"):
                records = [p for p in records if p["contactId"] == params["contactid"].lower()]
            if params.get("states"):
                states = {s.strip().upper() for s in params["states"].split(",")}
                records = [p for p in records if p["status"] in states]
            if params.get("projectids"):
                wanted = {s.strip().lower() for s in params["projectids"].split(",")}
                records = [p for p in records if p["projectId"] in wanted]
            try:
                page = max(1, int(params.get("page", "1")))
                size = min(500, max(1, int(params.get("pagesize", "50"))))
            except ValueError:
                return _response(400, {"message": "page and pageSize must be integers", "modelState": {}})
            chunk = records[(page - 1) * size : page * size]
            pagination = {
                "page": page,
                "pageSize": size,
                "pageCount": math.ceil(len(records) / size),
                "itemCount": len(records),
            }
            return _response(200, {"pagination": pagination, "items": copy.deepcopy(chunk)})
        if request.method != "POST":
            return _response(405, {"message": "Method not allowed"})
        try:
            body = json.loads(request.content) if request.content else None
        except ValueError:
            return _response(
                400, {"message": "The request is invalid.", "modelState": {"": ["Invalid JSON."]}}
            )
        if not isinstance(body, dict):
            # An envelope or a list is not what the Projects API takes: it wants one object.
            return _response(
                400,
                {"message": "The request is invalid.", "modelState": {"": ["A project object is expected."]}},
            )
        problems: dict[str, list[str]] = {}
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.setdefault("name", []).append("The name field is required.")
        contact_id = body.get("contactId")
        if contact_id is not None and str(contact_id).lower() not in tenant.contacts:
            problems.setdefault("contactId", []).append("The contact could not be found.")
        estimate = body.get("estimateAmount")
        if estimate is not None and (
            isinstance(estimate, bool) or not isinstance(estimate, (int, float)) or estimate < 0
        ):
            problems.setdefault("estimateAmount", []).append("The estimate must be a number of at least 0.")
        deadline = body.get("deadlineUtc")
        if deadline is not None:
            try:
                datetime.fromisoformat(str(deadline).replace("Z", "+00:00"))
            except ValueError:
                problems.setdefault("deadlineUtc", []).append("The deadline must be an ISO 8601 date-time.")
        if problems:
            return _response(400, {"message": "The request is invalid.", "modelState": problems})

        def amount(value: float = 0.0) -> dict[str, Any]:
            return {"currency": tenant.currency, "value": float(value)}

        project: dict[str, Any] = {
            "projectId": str(uuid.uuid4()),
            "name": name.strip() if isinstance(name, str) else "",
            "currencyCode": tenant.currency,
            "minutesLogged": 0,
            "minutesToBeInvoiced": 0,
            "status": "INPROGRESS",
            **{
                key: amount()
                for key in (
                    "totalTaskAmount",
                    "totalExpenseAmount",
                    "taskAmountToBeInvoiced",
                    "taskAmountInvoiced",
                    "expenseAmountToBeInvoiced",
                    "expenseAmountInvoiced",
                    "projectAmountInvoiced",
                    "deposit",
                    "depositApplied",
                    "creditNoteAmount",
                    "totalInvoiced",
                    "totalToBeInvoiced",
                )
            },
        }
        if contact_id is not None:
            project["contactId"] = str(contact_id).lower()
        if estimate is not None:
            project["estimate"] = amount(estimate)
        if deadline is not None:
            project["deadlineUtc"] = str(deadline)
        tenant.projects[project["projectId"]] = project
        return _response(201, copy.deepcopy(project))
