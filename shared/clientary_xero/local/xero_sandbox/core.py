"""``XeroSandbox``: the transport, its constructor and the API tests and the demo use.

Set-up (organisations, apps, authorization codes, connection secrets, seeded contacts and tax
rates), fault injection (``fail_next``, ``fail_token_next``, ``inject_faults``,
``fail_inside_next``), time (``advance``) and inspection (``contacts()``, ``invoices()``, …,
``requests``, ``issued_secrets()``). ``handle_request`` sends identity.xero.com to the OAuth server
(auth.py) and api.xero.com through the pipeline: injected faults, the bearer token, the tenant,
the limits and idempotency (limits.py), then the routing (routing.py); any other host is
``httpx.ConnectError``. The mixins each hold one concern; seeding beyond the demo company's would
join them as one more mixin.
"""

from __future__ import annotations

import copy
import random
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from clientary_xero.local.xero_sandbox import scopes as scope_rules
from clientary_xero.local.xero_sandbox.accounts_tax import _COUNTRY_OF_CURRENCY, _TAX_RATES
from clientary_xero.local.xero_sandbox.auth import AuthMixin
from clientary_xero.local.xero_sandbox.limits import LimitsMixin
from clientary_xero.local.xero_sandbox.model import (
    _PROJECTS_PREFIX,
    ACCESS_TOKEN_SECONDS,
    APP_MINUTE_LIMIT,
    CODE_SECONDS,
    CONCURRENT_LIMIT,
    DAY_LIMIT,
    DEFAULT_SCOPES,
    FAULT_KINDS,
    MINUTE_LIMIT,
    _AccessToken,
    _App,
    _Code,
    _Fault,
    _Grant,
    _IdempotentCall,
    _RefreshToken,
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _forbidden,
    _not_found,
    _response,
    _unauthorized,
)
from clientary_xero.local.xero_sandbox.routing import RoutingMixin
from clientary_xero.local.xero_sandbox.seeding import SeedingMixin


class XeroSandbox(SeedingMixin, RoutingMixin, AuthMixin, LimitsMixin, httpx.BaseTransport):
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
                self._access[access].scopes = scopes or None
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
        with self._lock:
            granted = self._grants[token.grant_id].scopes if token.grant_id else token.scopes
        refused = scope_rules.refusal(granted, request.method, path)
        if refused is not None:
            return refused
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
