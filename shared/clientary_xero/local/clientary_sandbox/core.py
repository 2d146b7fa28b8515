"""``ClientarySandbox``: one Clientary account on ``https://{subdomain}.clientary.com``, an httpx
transport. It holds the state (the constructor), checks host and auth, applies injected faults,
and hands the request to the router; the test API comes from the mixins (seeding, faults)."""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from clientary_xero.local.clientary_sandbox.catalog import default_resources
from clientary_xero.local.clientary_sandbox.faults import FaultsMixin
from clientary_xero.local.clientary_sandbox.rendering import _STATUS_TEXT, _json_response
from clientary_xero.local.clientary_sandbox.routing import RoutingMixin
from clientary_xero.local.clientary_sandbox.seeding import SeedingMixin
from clientary_xero.local.clientary_sandbox.spec import Clock, Record, ResourceSpec, SandboxValidation


class ClientarySandbox(SeedingMixin, FaultsMixin, RoutingMixin):
    """One Clientary account on ``https://{subdomain}.clientary.com`` (thread-safe)."""

    def __init__(
        self,
        *,
        subdomain: str = "sandbox",
        api_token: str | None = None,
        clock: Clock | None = None,
        utc_offset: timedelta = timedelta(hours=-8),
        plan_limits: dict[str, int] | None = None,
        resources: Iterable[ResourceSpec] | None = None,
        fiscal_year_start_month: int = 1,
        task_create_path: str = "/tasks",
        ignore_payment_dates: bool = False,
        nest_invoice_client: bool = True,
    ) -> None:
        self.subdomain = subdomain
        # Undocumented behaviour the product checks at run time (README "Unverified against a live
        # Clientary account"): a payment create may drop received_on (today's date instead), and an
        # invoice may come without its nested client (client_id only, as the docs' example shows).
        self.ignore_payment_dates = ignore_payment_dates
        self.nest_invoice_client = nest_invoice_client
        # Which spelling creates a task: the docs say POST /task, every known client POST /tasks;
        # the other one answers 404 (the action falls back from /tasks to /task).
        if task_create_path not in ("/tasks", "/task"):
            raise ValueError("task_create_path is '/tasks' or '/task'")
        self.task_create_path = task_create_path
        self.api_token = api_token or secrets.token_hex(16)
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.tz = timezone(utc_offset)
        self.plan_limits = dict(plan_limits or {})
        # Account setting: the default window of GET /expenses is the current fiscal year.
        self.fiscal_year_start_month = fiscal_year_start_month
        self.resources = {
            spec.name: spec for spec in (resources if resources is not None else default_resources())
        }
        self.request_count = 0
        self.requests: list[tuple[str, str]] = []  # (method, path?query) of every request served
        self._lock = threading.RLock()
        self._records: dict[str, dict[int, Record]] = {name: {} for name in self.resources}
        self._next_ids: dict[str, int] = {name: spec.id_start for name, spec in self.resources.items()}
        self._item_ids = itertools.count(70_000_001)
        self._failures: list[tuple[int | None, dict[str, str], Any]] = []
        self._lost_answers: list[int | None] = []

    def __repr__(self) -> str:
        return f"ClientarySandbox(subdomain={self.subdomain!r})"

    # ------------------------------------------------------------------ test/CLI helpers
    def bootstrap_secret(self) -> dict[str, str]:
        """The Clientary connection secret for this account (``CLIENTARY_SECRET_ID``'s shape)."""
        return {"subdomain": self.subdomain, "api_token": self.api_token}

    # ------------------------------------------------------------------ transport
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host or ""
        if request.url.scheme != "https" or not host.endswith(".clientary.com"):
            raise httpx.ConnectError(
                f"the Clientary sandbox does not serve {request.url.scheme}://{host}", request=request
            )
        request.read()
        with self._lock:
            self.request_count += 1
            target = request.url.raw_path.decode("ascii", "replace")
            self.requests.append((request.method, target))
            if self._failures:
                status, headers, body = self._failures.pop(0)
                if status is None:
                    raise httpx.ReadTimeout("the Clientary sandbox timed out (as asked)", request=request)
                if body is None:
                    body = {"error": _STATUS_TEXT.get(status, "Error")}
                return _json_response(status, body, headers)
            if host != f"{self.subdomain}.clientary.com":
                # An unknown account: Clientary shows a page; JSON here so the client can show it.
                return _json_response(404, {"error": "Account not found"})
            if not self._authorized(request):
                # Rails' http_basic_authenticate answers exactly this.
                return httpx.Response(
                    401,
                    headers={
                        "WWW-Authenticate": 'Basic realm="Application"',
                        "Content-Type": "text/plain; charset=utf-8",
                    },
                    content=b"HTTP Basic: Access denied.\n",
                )
            try:
                response = self._route(request)
            except SandboxValidation as exc:
                return _json_response(exc.status, {"errors": exc.errors})
            if self._lost_answers and request.method in ("POST", "PUT") and response.is_success:
                lost = self._lost_answers.pop(0)
                if lost is None:
                    raise httpx.ReadTimeout(
                        "the Clientary sandbox wrote, then timed out (as asked)", request=request
                    )
                return _json_response(lost, {"error": _STATUS_TEXT.get(lost, "Error")})
            return response
