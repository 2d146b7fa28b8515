"""What every part of the sandbox shares: its state and the small helpers each resource uses.

``_SandboxBase`` declares the attributes ``XeroSandbox.__init__`` (core.py) sets — the clock, the
limits, the one re-entrant lock guarding every piece of state, the OAuth tables, the organisations
(``_Tenant``, model.py), the fault queues and the counters — so each mixin that reads them is typed.
Its helpers: the sandbox's clock, Xero's date stamps, a date field of an element, the OK envelope.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx

from clientary_xero.connectors.xero.dates import to_xero_date
from clientary_xero.local.xero_sandbox.model import (
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
    _parse_day,
    _response,
)


class _SandboxBase:
    """The sandbox's state (set by ``XeroSandbox.__init__``) and helpers every mixin may use."""

    clock: Callable[[], float]
    _offset: float
    latency: float
    minute_limit: int
    concurrent_limit: int
    day_limit: int
    app_minute_limit: int
    _lock: threading.RLock
    _idem_done: threading.Condition
    _apps: dict[str, _App]
    _tenants: dict[str, _Tenant]
    _grants: dict[str, _Grant]
    _access: dict[str, _AccessToken]
    _refresh: dict[str, _RefreshToken]
    _codes: dict[str, _Code]
    _connections: dict[tuple[str, str], dict[str, Any]]
    _first_connected: dict[tuple[str, str], str]
    _idempotency: dict[tuple[str, str], _IdempotentCall]
    _inside_faults: list[_Fault]
    _app_minute: dict[str, deque[float]]
    _faults: list[_Fault]
    _token_faults: list[int]
    _chaos: tuple[float, tuple[str, ...], random.Random]
    fault_counts: dict[str, int]
    _log: list[dict[str, Any]]
    _issued: set[str]
    grant_counts: dict[str, int]
    invalid_grants: int
    max_in_flight: int

    def _now(self) -> float:
        return self.clock() + self._offset

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

    def _stamp(self) -> str:
        return to_xero_date(datetime.fromtimestamp(self._now(), UTC))

    def _today(self) -> date:
        return datetime.fromtimestamp(self._now(), UTC).date()

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

    def _route_request(self, request: httpx.Request, tenant: _Tenant) -> httpx.Response:
        """Answer an admitted API call: routing.RoutingMixin does (declared here for limits.py, whose
        idempotency and inside faults stand in front of it)."""
        raise NotImplementedError
