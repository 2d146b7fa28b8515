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
  waits for the first), ``summarizeErrors``, Xero's validation messages and error envelopes, and
  the token's scopes per endpoint (``scopes``: 401 ``AuthorizationUnsuccessful``).
* any other host: ``httpx.ConnectError``, as if the network were down.

Thread-safe: one re-entrant lock guards every piece of state; ``latency`` is slept outside it, so
concurrent calls really overlap (and the in-flight limit can be observed).

Where each part lives: ``core`` (``XeroSandbox``: constructor, set-up, fault injection, inspection,
the request pipeline), ``auth`` (OAuth server, connections), ``limits`` (faults, rate limits,
idempotency), ``routing`` (path → resource, the PUT/POST envelope), ``query`` (the ``where``
language), ``listing`` (look-ups, filters, order, paging), one module per resource family
(``contacts``, ``invoices``, ``lines`` for line items, tax and totals, ``documents`` for quotes and
purchase orders, ``payments``, ``items``, ``banking``, ``history``, ``reports``, ``projects``),
``tracking`` (tracking categories), ``accounts_tax`` (the seeded chart and tax rates), ``seeding``
(``seed``/``seed_many``: every collection, through the API's save paths), ``scopes`` (which scopes
grant each endpoint), ``model`` (constants, records), ``responses`` (Xero's answers and error
envelopes, money helpers) and ``base`` (the state the mixins share).
"""

from clientary_xero.local.xero_sandbox.core import XeroSandbox
from clientary_xero.local.xero_sandbox.model import (
    ACCESS_TOKEN_SECONDS,
    APP_MINUTE_LIMIT,
    CODE_SECONDS,
    CONCURRENT_LIMIT,
    DAY_LIMIT,
    DEFAULT_SCOPES,
    FAULT_KINDS,
    IDEMPOTENCY_SECONDS,
    MAX_IDEMPOTENCY_KEY,
    MINUTE_LIMIT,
    PAGE_SIZE,
    REFRESH_GRACE_SECONDS,
    REFRESH_TOKEN_SECONDS,
)

# The records and answers a module beside the sandbox (a seeding or scope helper) builds on; they
# were importable from the single-module sandbox, so they stay importable from the package.
from clientary_xero.local.xero_sandbox.model import _AccessToken as _AccessToken
from clientary_xero.local.xero_sandbox.model import _Tenant as _Tenant
from clientary_xero.local.xero_sandbox.query import _where as _where
from clientary_xero.local.xero_sandbox.responses import _api_exception as _api_exception
from clientary_xero.local.xero_sandbox.responses import _forbidden as _forbidden
from clientary_xero.local.xero_sandbox.responses import _not_found as _not_found
from clientary_xero.local.xero_sandbox.responses import _Reject as _Reject
from clientary_xero.local.xero_sandbox.responses import _response as _response

__all__ = [
    "ACCESS_TOKEN_SECONDS",
    "APP_MINUTE_LIMIT",
    "CODE_SECONDS",
    "CONCURRENT_LIMIT",
    "DAY_LIMIT",
    "DEFAULT_SCOPES",
    "FAULT_KINDS",
    "IDEMPOTENCY_SECONDS",
    "MAX_IDEMPOTENCY_KEY",
    "MINUTE_LIMIT",
    "PAGE_SIZE",
    "REFRESH_GRACE_SECONDS",
    "REFRESH_TOKEN_SECONDS",
    "XeroSandbox",
]
