"""HMAC-SHA256 request signatures over the raw body, compared in constant time.

The push route's signature carries its own time, as Stripe signs webhooks, so a captured request
cannot be replayed later: ``x-clientary-xero-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">``. Several ``v1=`` values may be sent (one per key while a key is rotated); one
match is enough. The older ``sha256=<hex HMAC of the body>`` form has no time in it and is accepted
only where a setting asks for it (``clientary_push_legacy_signatures``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

# Header a pushing source sends: "t=<unix seconds>,v1=<hex HMAC-SHA256(push key, "<t>.<body>")>".
CLIENTARY_PUSH_HEADER = "x-clientary-xero-signature"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_UNIX = re.compile(r"[0-9]{1,12}")


def _hmac_hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sign_push(key: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The push header value for ``body`` signed now (or at ``timestamp``)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_hmac_hex(key, str(t).encode() + b'.' + body)}"


def verify_push(
    key: str,
    body: bytes,
    header_value: str | None,
    *,
    tolerance_seconds: int,
    legacy: bool = False,
    now: float | None = None,
) -> str | None:
    """``None`` when the header signs ``body`` within the tolerance; otherwise why not (no secret
    in it). ``legacy`` also accepts the untimed ``sha256=<hex>`` form."""
    if not key or not header_value:
        return "missing signature"
    value = header_value.strip()
    if value.lower().startswith("sha256="):
        if not legacy:
            return "the untimed sha256= form is not accepted: sign as t=<unix seconds>,v1=<hex>"
        return None if verify_hex(key, body, value) else "wrong signature"
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in value.split(","):
        name, _, item = part.strip().partition("=")
        if name == "t":
            timestamps.append(item)
        elif name == "v1":
            candidates.append(item.lower())
    # Exactly one t: with two, which one the signature covers would be up to the parser.
    timestamp = timestamps[0] if len(timestamps) == 1 else ""
    if not _UNIX.fullmatch(timestamp) or not candidates:
        return "malformed signature: expected one t=<unix seconds> and v1=<hex>"
    expected = _hmac_hex(key, timestamp.encode() + b"." + body).encode()
    # Compare every candidate (no early exit), each in constant time.
    matched = False
    for candidate in candidates[:8]:
        if _HEX64.fullmatch(candidate) and hmac.compare_digest(expected, candidate.encode()):
            matched = True
    if not matched:
        return "wrong signature"
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > tolerance_seconds:
        direction = "old" if age > 0 else "in the future"
        return f"signature timestamp is {int(abs(age))} s {direction} (over {tolerance_seconds} s)"
    return None


def sign_hex(key: str, body: bytes) -> str:
    """The legacy untimed form: ``sha256=`` + hex(HMAC-SHA256(key, body))."""
    return "sha256=" + _hmac_hex(key, body)


def verify_hex(key: str, body: bytes, header_value: str | None) -> bool:
    if not key or not header_value:
        return False
    return hmac.compare_digest(sign_hex(key, body).encode(), header_value.strip().lower().encode())


def sign_base64(key: str, body: bytes) -> str:
    """Xero's webhook signature: base64(HMAC-SHA256(webhook key, raw body))."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def verify_base64(key: str, body: bytes, header_value: str | None) -> bool:
    if not key or not header_value:
        return False
    return hmac.compare_digest(sign_base64(key, body).encode(), header_value.strip().encode())
