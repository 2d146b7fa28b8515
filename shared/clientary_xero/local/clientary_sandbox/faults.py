"""Auth and injected faults: Basic auth (the token as user and password) and the test helpers that
make the next requests fail, time out, or lose the answer of a write that was carried out.

Plan limits (426) are checked where records are created (``SandboxState._create``).
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import httpx

from clientary_xero.local.clientary_sandbox.state import SandboxState


class FaultsMixin(SandboxState):
    """Who may call, and what goes wrong on purpose."""

    def fail_next(
        self, status: int, count: int = 1, headers: dict[str, str] | None = None, body: Any = None
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (after the host check, before auth)."""
        with self._lock:
            for _ in range(count):
                self._failures.append((status, dict(headers or {}), body))

    def timeout_next(self, count: int = 1) -> None:
        """Make the next ``count`` requests time out (``httpx.ReadTimeout``)."""
        with self._lock:
            for _ in range(count):
                self._failures.append((None, {}, None))

    def lose_next_answer(self, count: int = 1, status: int | None = None) -> None:
        """Carry out the next ``count`` writes (POST/PUT), then lose the answer: a time-out, or
        ``status`` (e.g. 502) instead of the real answer. The outcome a retry must not guess at."""
        with self._lock:
            self._lost_answers.extend([status] * count)

    def _authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.api_token) and secrets.compare_digest(
            password, self.api_token
        )
