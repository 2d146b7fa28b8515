"""The sandbox's vocabulary and records: Xero's limits and lifetimes, the codes and statuses the
resources share, and the dataclasses of its state (apps, grants, tokens, codes, organisations,
faults, idempotent calls).

An organisation (``_Tenant``) holds its tables (contacts, invoices, accounts, tax rates, payments,
quotes, purchase orders, items, bank transfers, projects, history notes) and its rate-limit windows.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from clientary_xero.local.xero_sandbox import scopes as scope_rules

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
DEFAULT_SCOPES = scope_rules.DEFAULT_SCOPES  # the product's own default: every action works

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
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
    scopes: str | None = None  # a custom connection's (None: all); OAuth tokens use their grant's


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
    tracking_categories: dict[str, dict[str, Any]] = field(default_factory=dict)  # seeded only
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
