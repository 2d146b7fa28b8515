"""HTTP answers for the push routes, and the one place domain errors map to status codes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from clientary_xero.errors import ClientaryXeroError, Conflict, NotFound, PermanentError, RetryableError


@dataclass
class HttpResponse:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def to_api_gateway(self) -> dict[str, Any]:
        headers = {"content-type": "application/json", **self.headers}
        return {
            "statusCode": self.status,
            "headers": headers,
            "body": "" if self.body is None else json.dumps(self.body),
        }


def error_response(exc: ClientaryXeroError) -> HttpResponse:
    if isinstance(exc, RetryableError):
        return HttpResponse(503, {"error": str(exc)}, {"retry-after": str(max(1, exc.delay_seconds))})
    if isinstance(exc, NotFound):
        return HttpResponse(404, {"error": str(exc)})
    if isinstance(exc, Conflict):  # a concurrent write won (the same push twice at once)
        return HttpResponse(409, {"error": "a concurrent request changed the same record; try again"})
    if isinstance(exc, PermanentError):
        status = exc.status if exc.status in (400, 401, 403, 404, 409, 422) else 422
        body: dict[str, Any] = {"error": str(exc)}
        if exc.messages:
            body["messages"] = exc.messages
        return HttpResponse(status, body)
    return HttpResponse(500, {"error": "internal error"})
