"""What stands between an authorised call and the resource: faults, rate limits, idempotency.

Injected faults (the next calls' answers, random chaos, faults *inside* Xero that an
Idempotency-Key caches), the per-organisation limits (5 in flight, 60 per rolling minute, 5,000
per day, 10,000 per app-minute) with their headers and 429s, and ``Idempotency-Key`` (6 minutes; a
concurrent duplicate waits for the first; another request under the same key is refused). Rejected
calls are not counted.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from clientary_xero.local.xero_sandbox.base import _SandboxBase
from clientary_xero.local.xero_sandbox.model import (
    IDEMPOTENCY_SECONDS,
    MAX_IDEMPOTENCY_KEY,
    _Fault,
    _IdempotentCall,
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _api_exception,
    _response,
)


class LimitsMixin(_SandboxBase):
    """Faults, rate limits and idempotency in front of the routing."""

    def _chaos_pick(self) -> str | None:
        with self._lock:
            rate, kinds, rng = self._chaos
            if rate <= 0 or not kinds or rng.random() >= rate:
                return None
            kind = rng.choice(kinds)
            self.fault_counts[kind] = self.fault_counts.get(kind, 0) + 1
            return kind

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
