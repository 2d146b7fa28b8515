"""Answers as Xero gives them, and the number and date helpers every resource uses.

Error envelopes (OAuth errors, 401/403 problem details, the bare-text 404, ``ApiException`` bodies,
Xero's "No data has been processed" with its typo), ``_Reject`` to answer early from deep inside a
handler, money rounding (half up, per line) and Xero's ``/Date(ms)/`` or ISO dates.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx


class _Reject(Exception):
    """An answer decided early (an error response); carries the response."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


# ---------------------------------------------------------------- helpers
def _response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    out = dict(headers or {})
    content = b""
    if body is not None:
        content = json.dumps(body).encode()
        out.setdefault("Content-Type", "application/json; charset=utf-8")
    return httpx.Response(status, headers=out, content=content)


def _oauth_error(status: int, error: str) -> httpx.Response:
    return _response(status, {"error": error}, {"Cache-Control": "no-store"})


def _unauthorized(detail: str = "TokenExpired") -> httpx.Response:
    return _response(
        401,
        {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": detail},
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _forbidden(detail: str = "AuthenticationUnsuccessful") -> httpx.Response:
    return _response(403, {"Type": None, "Title": "Forbidden", "Status": 403, "Detail": detail})


def _not_found() -> httpx.Response:
    # Xero answers an unknown id or path with a bare sentence, not JSON, whatever the Accept header
    # (XeroAPI/Xero-OpenAPI#163, Xero-NetStandard#490, Xero-Java#32): a client must not parse it.
    return httpx.Response(
        404,
        headers={"Content-Type": "text/html; charset=utf-8"},
        content=b"The resource you're looking for cannot be found",
    )


def _api_exception(status: int, number: int, kind: str, message: str) -> httpx.Response:
    return _response(status, {"ErrorNumber": number, "Type": kind, "Message": message})


def _no_data(noun: str) -> httpx.Response:
    # Xero's own wording, typo included.
    return _api_exception(
        400,
        17,
        "NoDataProcessedException",
        "No data has been processed for this endpoint. This endpoint is expecting "
        f"{noun} data to be specifed in the request body.",
    )


def _money(value: Decimal, places: int = 2) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _num(value: Decimal) -> float | int:
    return float(value)


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidOperation
    return Decimal(str(value))


def _parse_day(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError(value)
    match = re.match(r"^/Date\((-?\d+)", value)
    if match:
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match[1]))).date()
    return date.fromisoformat(value[:10])
