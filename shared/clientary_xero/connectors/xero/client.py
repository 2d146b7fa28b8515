"""The Xero API client: one ``request`` that speaks Xero's conventions and the project's errors.

* ``Authorization``, ``xero-tenant-id`` and ``Accept: application/json`` on every call.
* Every write (POST/PUT/PATCH) carries an ``Idempotency-Key`` — required, never optional, so a retry
  can't create a second record (Xero keeps a key for 6 minutes; reference/xero-api.md §4.2).
* ``summarizeErrors=false`` on the bulk endpoints that accept it, so a batch answers 200 with a
  status per element instead of an all-or-nothing 400 that hides what was created (§4.3).
* 401 TokenExpired → one forced token refresh and one retry. 401 AuthorizationUnsuccessful (a
  fresh token without the scope) → ``XeroScopeMissing`` at once: a refresh cannot add a scope.
* 429 → ``RetryableError`` with ``Retry-After`` and ``X-Rate-Limit-Problem``; 5xx, time-outs and
  transport errors → ``RetryableError``; other 4xx → ``PermanentError`` with Xero's own messages.
* The rate-limit headers of the last answer are kept on the client (``rate_limits``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from typing import TYPE_CHECKING, Any, Literal

from clientary_xero import metrics
from clientary_xero.connectors.http import new_client
from clientary_xero.connectors.xero.scopes import scope_refused
from clientary_xero.errors import PermanentError, RetryableError

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from clientary_xero.connectors.xero.auth import XeroTokenProvider
    from clientary_xero.settings import Settings
    from clientary_xero.storage.ratelimit import Permit, RateBudget
    from clientary_xero.storage.secrets import SecretStore
    from clientary_xero.storage.state import StateStore

logger = logging.getLogger(__name__)

Api = Literal["accounting", "projects", "identity"]

BASE_URLS: dict[str, str] = {
    "accounting": "https://api.xero.com/api.xro/2.0",
    "projects": "https://api.xero.com/projects.xro/2.0",
    "identity": "https://api.xero.com",
}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_IDEMPOTENCY_KEY = 128
DEFAULT_RETRY_SECONDS = 30
# The X-Rate-Limit-Problem values Xero documents (appminute per one third-party doc only).
XERO_LIMIT_NAMES = frozenset({"minute", "day", "appminute"})
UNNAMED_LIMIT_RETRY_SECONDS = 5
# How long Xero keeps an Idempotency-Key (and the answer cached under it), plus a margin.
IDEMPOTENCY_WINDOW_SECONDS = 6 * 60 + 30

# Bulk Accounting endpoints whose spec lists the summarizeErrors parameter (xero_accounting.yaml).
# Not single-record updates (POST /X/{id}), not History, not BankTransfers (its POST is the
# soft-delete), not POST /Payments (single payment).
_SUMMARIZE_BULK = frozenset(
    {
        ("PUT", "batchpayments"),
        ("PUT", "banktransactions"),
        ("POST", "banktransactions"),
        ("PUT", "contacts"),
        ("POST", "contacts"),
        ("PUT", "creditnotes"),
        ("POST", "creditnotes"),
        ("PUT", "invoices"),
        ("POST", "invoices"),
        ("PUT", "items"),
        ("POST", "items"),
        ("PUT", "manualjournals"),
        ("POST", "manualjournals"),
        ("PUT", "payments"),
        ("PUT", "purchaseorders"),
        ("POST", "purchaseorders"),
        ("PUT", "quotes"),
        ("POST", "quotes"),
        ("PUT", "repeatinginvoices"),
        ("POST", "repeatinginvoices"),
    }
)
# PUT /{CreditNotes|Overpayments|Prepayments}/{id}/Allocations accept it too.
_SUMMARIZE_ALLOCATIONS = re.compile(r"^(creditnotes|overpayments|prepayments)/[^/]+/allocations$")


class XeroNotFound(PermanentError):
    """Xero answered 404: the record (or endpoint) does not exist."""


def accepts_summarize_errors(method: str, path: str) -> bool:
    """Whether ``summarizeErrors=false`` belongs on this Accounting call."""
    method = method.upper()
    parts = path.strip("/").split("?")[0].lower()
    if "/" not in parts:
        return (method, parts) in _SUMMARIZE_BULK
    return method == "PUT" and bool(_SUMMARIZE_ALLOCATIONS.match(parts))


def xero_messages(body: Any) -> list[str]:
    """Xero's own error messages from any of its error shapes.

    Accounting validation (``Elements[].ValidationErrors[].Message``), other Accounting exceptions
    (``Message``), the gateway's ``{Title, Detail}``, Projects' ``{message, modelState}`` and
    OAuth's ``{error}``; a text body is cut to 300 characters.
    """
    found: list[str] = []
    if isinstance(body, dict):
        for element in body.get("Elements") or []:
            if isinstance(element, dict):
                found.extend(_validation_messages(element))
        if not found:
            for key in ("Message", "message", "Detail", "error_description", "Title", "error"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    found.append(value)
                    break
        model_state = body.get("modelState")
        if isinstance(model_state, dict):
            for field, problems in model_state.items():
                for problem in problems if isinstance(problems, list) else [problems]:
                    found.append(f"{field}: {problem}" if field else str(problem))
    elif isinstance(body, str) and body.strip():
        found.append(body.strip()[:300])
    return list(dict.fromkeys(found))


def _validation_messages(element: dict[str, Any]) -> list[str]:
    return [
        str(v.get("Message"))
        for v in element.get("ValidationErrors") or []
        if isinstance(v, dict) and v.get("Message")
    ]


def element_errors(response: Any, key: str) -> PermanentError | None:
    """Per-element failures of a ``summarizeErrors=false`` answer as one ``PermanentError`` (or None)."""
    elements = response.get(key) if isinstance(response, dict) else None
    messages: list[str] = []
    for element in elements or []:
        if not isinstance(element, dict):
            continue
        failed = (
            element.get("HasErrors")
            or element.get("HasValidationErrors")
            or element.get("StatusAttributeString") == "ERROR"
        )
        if failed or element.get("ValidationErrors"):
            messages.extend(_validation_messages(element) or ["Xero marked the element as failed"])
    if not messages:
        return None
    messages = list(dict.fromkeys(messages))
    return PermanentError(
        f"Xero rejected the {key}: " + "; ".join(messages), messages=messages, status=200, service="xero"
    )


def checked_elements(response: Any, key: str) -> list[dict[str, Any]]:
    """The elements of a write's answer; raises ``element_errors`` when any failed. Logs warnings."""
    error = element_errors(response, key)
    if error is not None:
        raise error
    elements = response.get(key) if isinstance(response, dict) else None
    if not isinstance(elements, list) or not elements:
        raise PermanentError(f"Xero's answer holds no {key}", service="xero")
    for element in elements:
        for warning in element.get("Warnings") or []:
            if isinstance(warning, dict) and warning.get("Message"):
                logger.warning("Xero warning on %s: %s", key, warning["Message"])
    return elements


def answered_elements(response: Any, key: str, sent: int) -> list[dict[str, Any]]:
    """The ``sent`` elements of a batch write's answer, in the order sent. An answer that does not
    hold one element per element sent cannot be matched to its steps: its outcome is unknown
    (``RetryableError``), so each step is retried and finds what was written."""
    elements = response.get(key) if isinstance(response, dict) else None
    if (
        not isinstance(elements, list)
        or len(elements) != sent
        or not all(isinstance(e, dict) for e in elements)
    ):
        count = len(elements) if isinstance(elements, list) else 0
        raise RetryableError(
            f"Xero's answer to a batch of {sent} {key} holds {count}: each is retried alone",
            delay_seconds=DEFAULT_RETRY_SECONDS,
            service="xero",
        )
    return elements


def _idempotency_header(key: str) -> str:
    # Xero refuses keys over 128 characters; a long key is replaced by its (stable) digest.
    if len(key) <= MAX_IDEMPOTENCY_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _limit_name(value: str | None) -> str | None:
    """``X-Rate-Limit-Problem`` when it is one of the values Xero documents (reference §4.1)."""
    name = (value or "").strip().lower()
    return name if name in XERO_LIMIT_NAMES else None


def _int_header(value: str | None, default: int) -> int:
    try:
        return max(0, int(float(value))) if value is not None else default
    except ValueError:
        return default


class XeroClient:
    """Calls Xero for one connection. Safe to share between threads."""

    def __init__(
        self,
        tokens: XeroTokenProvider,
        *,
        transport: httpx.BaseTransport | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        self.tokens = tokens
        self._transport = transport
        # The per-organisation rate budget shared by every Lambda (storage/ratelimit.py); None: no
        # admission control (unit tests of the client itself).
        self.budget = budget
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()
        # The last rate-limit headers seen: {"minute": …, "day": …, "app_minute": …}.
        self.rate_limits: dict[str, int] = {}

    def _client(self) -> httpx.Client:
        # Built on first use, so a transport installed after construction (tests, local runner) is used.
        with self._lock:
            if self._http is None:
                self._http = new_client(transport=self._transport) if self._transport else new_client()
            return self._http

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        api: Api = "accounting",
    ) -> Any:
        """Call Xero; returns the parsed JSON (``{}`` for an empty answer) or raises the project's errors."""
        import httpx  # here, not at the top: a client built only for its tenant id imports no httpx

        method = method.upper()
        if api not in BASE_URLS:
            raise ValueError(f"unknown Xero API {api!r}")
        url = BASE_URLS[api] + "/" + path.lstrip("/")
        query = dict(params or {})
        headers = {"Accept": "application/json"}
        if method in WRITE_METHODS:
            if not idempotency_key:
                raise ValueError(f"{method} {path}: every Xero write needs an idempotency_key")
            headers["Idempotency-Key"] = _idempotency_header(idempotency_key)
            if api == "accounting" and accepts_summarize_errors(method, path):
                query.setdefault("summarizeErrors", "false")
        for attempt in (1, 2):
            token = self.tokens.access_token()
            sent = {**headers, "Authorization": f"Bearer {token}"}
            if api != "identity":
                tenant = self.tokens.tenant_id()
                if tenant:
                    sent["xero-tenant-id"] = tenant
            permit = self._admit(api)
            try:
                response = self._client().request(method, url, params=query or None, json=json, headers=sent)
            except httpx.TimeoutException:
                raise RetryableError(
                    f"Xero did not answer {method} {path} in time",
                    delay_seconds=DEFAULT_RETRY_SECONDS,
                    service="xero",
                ) from None
            except httpx.TransportError as exc:
                raise RetryableError(
                    f"cannot reach Xero for {method} {path} ({type(exc).__name__})",
                    delay_seconds=DEFAULT_RETRY_SECONDS,
                    service="xero",
                ) from None
            finally:
                if permit is not None and self.budget is not None:
                    self.budget.release(permit)
            self._note_limits(response)
            self._learn(permit, response)
            _count_call(response)
            detail = self._detail(response) if response.status_code == 401 else None
            if detail == "TokenExpired" and attempt == 1:
                logger.info(
                    "Xero said TokenExpired; renewing the token once and retrying %s %s", method, path
                )
                self.tokens.force_refresh(token)
                continue
            if detail == "AuthorizationUnsuccessful":
                raise scope_refused(method, path, api, self.tokens.granted_scopes())
            return self._result(method, path, response)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- shared rate budget (issue #3: rate limits across Lambdas) -------------------------------
    def _admit(self, api: Api) -> Permit | None:
        """A slot in the organisation's budget before the call (raises ``BudgetExceeded`` to wait)."""
        if self.budget is None or api == "identity":  # /connections is not an organisation's call
            return None
        return self.budget.acquire(self.tokens.tenant_id() or self.tokens.connection)

    def _learn(self, permit: Permit | None, response: httpx.Response) -> None:
        """Teach the budget what Xero counted: X-MinLimit-Remaining, and a 429's Retry-After."""
        if permit is None or self.budget is None:
            return
        if response.status_code == 429:
            limit = _limit_name(response.headers.get("X-Rate-Limit-Problem"))
            retry_after = _int_header(response.headers.get("Retry-After"), 60)
            self.budget.blocked(permit.scope, limit, retry_after)
            return
        remaining = response.headers.get("X-MinLimit-Remaining")
        if remaining is not None and remaining.strip().isdigit():
            self.budget.observe(permit, int(remaining))

    @staticmethod
    def _detail(response: httpx.Response) -> str | None:
        """The ``Detail`` of Xero's 401: ``TokenExpired`` or ``AuthorizationUnsuccessful`` (§4.3)."""
        try:
            body = response.json()
        except ValueError:
            return None
        detail = body.get("Detail") if isinstance(body, dict) else None
        return detail if isinstance(detail, str) else None

    def _note_limits(self, response: httpx.Response) -> None:
        seen: dict[str, int] = {}
        for header, name in (
            ("X-MinLimit-Remaining", "minute"),
            ("X-DayLimit-Remaining", "day"),
            ("X-AppMinLimit-Remaining", "app_minute"),
        ):
            value = response.headers.get(header)
            if value is not None and value.strip().isdigit():
                seen[name] = int(value)
        if seen:
            self.rate_limits = seen
            logger.debug("Xero rate limits remaining: %s", seen)

    @staticmethod
    def _result(method: str, path: str, response: httpx.Response) -> Any:
        status = response.status_code
        body: Any
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        if 200 <= status < 300:
            if body is None:
                return {}
            if isinstance(body, str):
                raise PermanentError(
                    f"Xero answered {method} {path} with a body that is not JSON",
                    status=status,
                    service="xero",
                )
            return body
        messages = xero_messages(body)
        detail = ": " + "; ".join(messages) if messages else ""
        if status == 429:
            named = response.headers.get("X-Rate-Limit-Problem")
            limit = _limit_name(named)
            if limit is None:
                # Xero names minute, day and appminute limits only; its 5-calls-in-flight limit has
                # no documented value (nor Retry-After): a short wait, as for our own in-flight cap.
                delay = _int_header(response.headers.get("Retry-After"), UNNAMED_LIMIT_RETRY_SECONDS)
                what = f"a limit Xero calls {named!r}" if named else "Xero named no limit"
                reason = f"{what}, perhaps its 5 calls in flight"
            else:
                delay = _int_header(response.headers.get("Retry-After"), 60)
                reason = limit
            raise RetryableError(
                f"Xero rate limit reached ({reason}); retry in {delay} s",
                delay_seconds=delay,
                status=status,
                service="xero",
                limit=limit,
            )
        if status >= 500:
            delay = _int_header(response.headers.get("Retry-After"), DEFAULT_RETRY_SECONDS)
            if method.upper() in WRITE_METHODS:
                # Xero caches a failed answer under its Idempotency-Key too (reference §4.2): the same
                # key would get the same error back for 6 minutes. Retry after the key expired; the
                # action then looks for what the failed write may have made before writing again.
                delay = max(delay, IDEMPOTENCY_WINDOW_SECONDS)
            raise RetryableError(
                f"Xero failed {method} {path} ({status}){detail}",
                delay_seconds=delay,
                status=status,
                service="xero",
            )
        error_class = XeroNotFound if status == 404 else PermanentError
        raise error_class(
            f"Xero rejected {method} {path} ({status}){detail}",
            messages=messages,
            status=status,
            service="xero",
        )


def _count_call(response: httpx.Response) -> None:
    """Metrics: every call Xero answered, and its 429s by limit (the day's apart: it parks runs)."""
    metrics.count("XeroCalls")
    if response.status_code == 429:
        day = _limit_name(response.headers.get("X-Rate-Limit-Problem")) == "day"
        metrics.count("Xero429Day" if day else "Xero429Minute")


def build_xero_client(
    secrets: SecretStore | None = None,
    state: StateStore | None = None,
    settings: Settings | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> XeroClient:
    """The client for the configured connection (``settings.xero_secret_id``)."""
    from clientary_xero.connectors.xero.auth import XeroTokenProvider
    from clientary_xero.settings import get_settings
    from clientary_xero.storage.secrets import SecretStore
    from clientary_xero.storage.state import StateStore

    settings = settings or get_settings()
    state = state or StateStore()
    tokens = XeroTokenProvider(settings.xero_secret_id, secrets or SecretStore(), state)
    return XeroClient(tokens, transport=transport, budget=_budget(state, settings))


def _budget(state: StateStore, settings: Settings) -> RateBudget:
    from clientary_xero.storage.ratelimit import RateBudget

    return RateBudget(state, wait_seconds=settings.xero_budget_wait_seconds)
