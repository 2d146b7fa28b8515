"""Every HTTP route's request, read from the API Gateway (HTTP API, payload 2.0) event in one place.

What a route's use case receives has passed these checks; each failure is an answer with a reason,
never an exception: ``405`` for a method the route does not serve, ``413`` for a body over
``MAX_BODY_BYTES`` (decided before any secret is read or any byte parsed), ``400`` for a body
flagged ``isBase64Encoded`` that is not base64, and ``400`` for text (path, header, query) that
cannot be UTF-8 (an unpaired surrogate). JSON bodies go through ``parse_json`` (``safe_json``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from clientary_xero import safe_json
from clientary_xero.usecases.responses import HttpResponse

# Xero's webhook bodies are a few KB and a pushed record is one object: 256 KB is generous.
MAX_BODY_BYTES = 256 * 1024


class RequestRefused(Exception):
    """A request answered before the route's logic runs; ``response`` says why."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.response = HttpResponse(status, {"error": reason}, dict(headers or {}))


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    host: str = ""


def _text(value: Any, what: str) -> str:
    text = "" if value is None else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestRefused(400, f"the {what} is not valid UTF-8") from None
    return text


def _body(event: dict[str, Any], max_bytes: int) -> bytes:
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise RequestRefused(400, "the request body is not text")
    if event.get("isBase64Encoded"):
        # 4 base64 characters carry 3 bytes: refuse what cannot fit before decoding it.
        if len(raw) > (max_bytes + 2) // 3 * 4 + 4:
            raise RequestRefused(413, f"the body is larger than {max_bytes} bytes")
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise RequestRefused(400, "the body is flagged base64 but is not valid base64") from None
    else:
        if len(raw) > max_bytes:  # a character is at least one byte
            raise RequestRefused(413, f"the body is larger than {max_bytes} bytes")
        body = _text(raw, "request body").encode("utf-8")
    if len(body) > max_bytes:
        raise RequestRefused(413, f"the body is larger than {max_bytes} bytes")
    return body


def request_id(event: dict[str, Any]) -> str | None:
    """API Gateway's id of the request (the logs' correlation id). Read from the event as it is:
    wrapping it in Powertools' event class would import all of its ~40 event classes (~50 ms of a
    cold start) for one field."""
    context = event.get("requestContext")
    value = context.get("requestId") if isinstance(context, dict) else None
    return str(value) if value else None


def read_request(
    event: dict[str, Any], *, methods: tuple[str, ...], max_bytes: int = MAX_BODY_BYTES
) -> HttpRequest:
    """The request of ``event``; ``RequestRefused`` when it must be answered before the route runs."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    method = _text(http.get("method") or "", "method").upper()
    if method not in methods:
        raise RequestRefused(
            405, f"method {method or '?'} is not allowed here", {"allow": ", ".join(methods)}
        )
    path = _text(event.get("rawPath") or http.get("path") or "", "path")
    headers = {
        _text(name, "header name").lower(): _text(value, "header value")
        for name, value in (event.get("headers") or {}).items()
    }
    query = {
        _text(name, "query string"): _text(value, "query string")
        for name, value in (event.get("queryStringParameters") or {}).items()
    }
    host = _text(context.get("domainName") or "", "host")
    return HttpRequest(method, path, headers, query, _body(event, max_bytes), host)


def parse_json(body: bytes) -> Any:
    """The body as JSON, or ``RequestRefused`` (400) saying why not."""
    try:
        return safe_json.loads(body)
    except safe_json.UnsafeJson as exc:
        raise RequestRefused(400, str(exc)) from None
