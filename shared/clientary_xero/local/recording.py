"""Record outgoing HTTP requests as JSON lines, for contract tests and for looking at what was sent.

One line per request: ``{"method", "url", "headers", "json"}`` — the format
``tools/validate_xero_requests.py`` and ``tests/xero_contract.py`` read. Credentials never reach the
file: ``Authorization``-like headers and cookies are dropped, and only JSON bodies are kept (a token
request's form body carries the refresh token and is written as ``null``).
"""

from __future__ import annotations

import json
import os
import threading
from typing import IO, Any

import httpx

# Headers that carry credentials, and name fragments that suggest one (none of Xero's own headers
# match: xero-tenant-id, Idempotency-Key, If-Modified-Since are kept).
_DROP = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
_DROP_FRAGMENTS = ("secret", "token", "password")


def _safe_headers(headers: httpx.Headers) -> dict[str, str]:
    kept: dict[str, str] = {}
    for raw_name, raw_value in headers.raw:  # as sent, with the caller's capitalisation
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        lowered = name.lower()
        if lowered in _DROP or any(fragment in lowered for fragment in _DROP_FRAGMENTS):
            continue
        kept[name] = value
    return kept


def _json_body(request: httpx.Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if not request.content or "json" not in content_type.lower():
        return None
    try:
        return json.loads(request.content)
    except ValueError:
        return None


class RecordingTransport(httpx.BaseTransport):
    """Wraps a transport; appends each request to ``path_or_file`` before passing it on."""

    def __init__(self, inner: httpx.BaseTransport, path_or_file: str | os.PathLike[str] | IO[str]) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        if isinstance(path_or_file, (str, os.PathLike)):
            self._path: str | os.PathLike[str] | None = path_or_file
            self._file: IO[str] | None = None
        else:
            self._path = None
            self._file = path_or_file

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        record = {
            "method": request.method,
            "url": str(request.url),
            "headers": _safe_headers(request.headers),
            "json": _json_body(request),
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if self._path is not None:
                with open(self._path, "a", encoding="utf-8") as out:
                    out.write(line)
            elif self._file is not None:
                self._file.write(line)
                self._file.flush()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The requests a ``RecordingTransport`` wrote to ``path``."""
    with open(path, encoding="utf-8") as source:
        return [json.loads(line) for line in source if line.strip()]
