"""The Clientary API client: HTTP Basic auth, JSON, and Clientary's errors as the project's own.

Clientary (https://{subdomain}.clientary.com/api/v2) authenticates with the user's API token as
both the Basic-auth user name and password, and answers JSON when asked with
``Accept: application/json``. It documents only two error codes (422: a required field is missing
or a unique one taken; 426: plan limits) and no error body format, so an error shows whatever the
body says. It documents no rate limit either; a 429 is still honoured with its ``Retry-After``.

This client never retries: the step runner owns retries (``RetryableError`` puts the step message
back on its queue), and a retried POST is the action's business (find before create).

The token lives only inside the httpx auth object: it is never logged, never put into an error
(bodies that echo it are redacted) and never shown by ``repr``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

from clientary_xero.connectors.http import new_client
from clientary_xero.errors import NotFound, PermanentError, RetryableError

if TYPE_CHECKING:  # pragma: no cover
    from clientary_xero.settings import Settings
    from clientary_xero.storage.secrets import SecretStore

logger = logging.getLogger(__name__)

SERVICE = "clientary"
MAX_PAGE_SIZE = 100  # "The maximum allowed page_size is 100" (Clientary contacts docs)
DEFAULT_RETRY_AFTER = 60  # seconds to wait after a 429 that names no Retry-After
DEFAULT_SERVER_ERROR_DELAY = 30
_MAX_MESSAGE_CHARS = 500
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


class ClientaryNotFound(PermanentError, NotFound):
    """Clientary answered 404: the record (or the path) does not exist."""


class ClientaryClient:
    """A small synchronous client for Clientary's API v2.

    ``transport`` overrides the transport installed with ``connectors.http.set_transport`` (tests,
    the local runner's sandbox); without either, httpx talks to the network.
    """

    def __init__(
        self,
        subdomain: str,
        api_token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        self.subdomain = _clean_subdomain(subdomain)
        if not api_token or not isinstance(api_token, str):
            raise PermanentError("the Clientary API token is empty", service=SERVICE)
        self.base_url = f"https://{self.subdomain}.clientary.com/api/v2"
        self._redactor = _Redactor(api_token)
        kwargs: dict[str, Any] = {
            "base_url": self.base_url,
            "auth": httpx.BasicAuth(api_token, api_token),
            "headers": {"Accept": "application/json", "User-Agent": "clientary-xero"},
            "follow_redirects": False,
        }
        if transport is not None:
            kwargs["transport"] = transport
        if timeout is not None:
            kwargs["timeout"] = timeout
        self._http = new_client(**kwargs)
        self.requests_made = 0

    def __repr__(self) -> str:
        return f"ClientaryClient(subdomain={self.subdomain!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ClientaryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ resources
    def get_invoice(self, invoice_id: int | str) -> dict[str, Any]:
        return self.get(f"/invoices/{_id(invoice_id)}")

    def list_invoices(
        self, *, updated_since: date | None = None, page: int = 1, page_size: int = MAX_PAGE_SIZE
    ) -> dict[str, Any]:
        """One page of ``GET /invoices``: the raw envelope (``page_count``, ``page_size``,
        ``total_count``, ``invoices``). ``updated_since`` is date-granular (Clientary documents
        only ``YYYY-MM-DD``)."""
        if page < 1:
            raise ValueError("page starts at 1")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if updated_since is not None:
            day = updated_since.date() if isinstance(updated_since, datetime) else updated_since
            params["updated_since"] = day.isoformat()
        envelope = self.get("/invoices", params)
        if not isinstance(envelope.get("invoices"), list):
            raise PermanentError(
                "Clientary answered GET /invoices without an 'invoices' list", service=SERVICE
            )
        return envelope

    # ------------------------------------------------------------------ verbs
    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._request("GET", path, params=params)

    def post(self, path: str, json: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._request("POST", path, json=json)

    def put(self, path: str, json: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._request("PUT", path, json=json)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = _relative(path)
        label = f"{method} {url}"
        self.requests_made += 1
        started = time.monotonic()
        try:
            response = self._http.request(method, url, params=params, json=json)
        except httpx.TimeoutException:
            raise RetryableError(
                f"Clientary did not answer in time ({label})",
                delay_seconds=DEFAULT_SERVER_ERROR_DELAY,
                service=SERVICE,
            ) from None
        except httpx.TransportError as exc:
            raise RetryableError(
                f"cannot reach Clientary ({label}): {type(exc).__name__}",
                delay_seconds=DEFAULT_SERVER_ERROR_DELAY,
                service=SERVICE,
            ) from None
        logger.debug(
            "clientary %s -> %s in %.0f ms", label, response.status_code, (time.monotonic() - started) * 1000
        )
        if response.is_success:
            return self._json(response, label)
        raise self._error(response, label)

    # ------------------------------------------------------------------ responses
    def _json(self, response: httpx.Response, label: str) -> dict[str, Any]:
        if not response.content.strip():
            return {}
        try:
            body = response.json()
        except ValueError:
            raise PermanentError(
                f"Clientary answered {label} with something that is not JSON "
                f"({response.headers.get('content-type', 'no content type')})",
                status=response.status_code,
                service=SERVICE,
            ) from None
        if not isinstance(body, dict):
            return {"items": body}
        return body

    def _error(self, response: httpx.Response, label: str) -> PermanentError | RetryableError:
        status = response.status_code
        messages = [self._redactor(m) for m in _messages(response)]
        detail = "; ".join(messages)
        suffix = f": {detail}" if detail else ""
        if status == 429:
            delay = _retry_after(response.headers.get("retry-after"), DEFAULT_RETRY_AFTER)
            return RetryableError(
                f"Clientary rate limit ({label}), retry in {delay} s{suffix}",
                delay_seconds=delay,
                status=status,
                service=SERVICE,
            )
        if status >= 500 or status == 408:
            delay = _retry_after(response.headers.get("retry-after"), DEFAULT_SERVER_ERROR_DELAY)
            return RetryableError(
                f"Clientary server error {status} ({label}){suffix}",
                delay_seconds=delay,
                status=status,
                service=SERVICE,
            )
        reason = _REASONS.get(status, f"Clientary refused the request ({status})")
        if 300 <= status < 400:
            reason = f"Clientary answered a redirect ({status}); check the account subdomain"
        cls = ClientaryNotFound if status == 404 else PermanentError
        return cls(f"{reason} ({label}){suffix}", messages=messages, status=status, service=SERVICE)


class _Redactor:
    """Removes what an error body might echo back: the token and the Authorization header value.

    Its ``repr`` shows nothing, so even ``vars(client)`` in a debugger or log line stays clean.
    """

    __slots__ = ("_secrets",)

    def __init__(self, token: str) -> None:
        self._secrets = (token, base64.b64encode(f"{token}:{token}".encode()).decode())

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def __repr__(self) -> str:
        return "<redacted>"


_REASONS = {
    400: "Clientary rejected the request (400)",
    401: "Clientary rejected the API token (401)",
    403: "the Clientary API token lacks permission (403)",
    404: "not found in Clientary (404)",
    422: "Clientary rejected the data (422)",
    426: "the Clientary plan's limits are reached (426)",
}


def _messages(response: httpx.Response) -> list[str]:
    """What an error body says, whatever its shape (Clientary documents none).

    Handles Rails-style ``{"errors": {"field": ["msg"]}}``, ``{"errors": ["msg"]}``,
    ``{"error": "msg"}``, ``{"message": "msg"}``, a bare ``{"field": ["msg"]}`` and plain text.
    """
    text = response.text.strip()
    if not text:
        return []
    try:
        body = json.loads(text)
    except ValueError:
        if "<html" in text[:500].lower():
            return []  # an HTML error page says nothing useful
        return [text[:_MAX_MESSAGE_CHARS]]
    return [m[:_MAX_MESSAGE_CHARS] for m in _flatten(body)][:20]


def _flatten(body: Any, field: str | None = None) -> list[str]:
    if body is None or body == "":
        return []
    if isinstance(body, str):
        return [f"{field} {body}" if field and field not in ("base", "error", "message") else body]
    if isinstance(body, list):
        return [m for item in body for m in _flatten(item, field)]
    if isinstance(body, dict):
        out: list[str] = []
        for key, value in body.items():
            if key in ("errors", "error", "message", "messages", "base"):
                out.extend(_flatten(value))
            else:
                out.extend(_flatten(value, str(key)))
        return out
    return [str(body)]


def _retry_after(value: str | None, default: int) -> int:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int((when - datetime.now(UTC)).total_seconds() + 0.999))


def _relative(path: str) -> str:
    # An absolute URL would make httpx ignore base_url and send the token to another host.
    if "://" in path or path.startswith("//"):
        raise ValueError("Clientary paths are relative to /api/v2 (e.g. '/invoices')")
    return path if path.startswith("/") else f"/{path}"


def _id(value: int | str) -> str:
    text = str(value).strip()
    if not text.isdigit():
        raise PermanentError(f"not a Clientary id: {value!r}", service=SERVICE)
    return text


def _clean_subdomain(value: str) -> str:
    """Accept ``acme``, ``acme.clientary.com`` or ``https://acme.clientary.com/``."""
    text = (value or "").strip().lower()
    text = re.sub(r"^https?://", "", text).split("/", 1)[0]
    text = text.removesuffix(".clientary.com")
    if not _SUBDOMAIN_RE.match(text):
        raise PermanentError(f"not a Clientary account subdomain: {value!r}", service=SERVICE)
    return text


def build_clientary_client(secrets: SecretStore, settings: Settings | None = None) -> ClientaryClient:
    """A client for the account in the Clientary secret (``{"subdomain", "api_token"}``).

    ``settings`` defaults to ``get_settings()``. Errors name the secret id, never its value.
    """
    if settings is None:
        from clientary_xero.settings import get_settings

        settings = get_settings()
    secret_id = settings.clientary_secret_id
    value = secrets.read(secret_id)
    missing = [key for key in ("subdomain", "api_token") if not value.get(key)]
    if missing:
        raise PermanentError(f"secret {secret_id!r} lacks {', '.join(missing)}", service=SERVICE)
    return ClientaryClient(str(value["subdomain"]), str(value["api_token"]))
