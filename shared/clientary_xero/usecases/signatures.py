"""HMAC-SHA256 request signatures over the raw body, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

# Header a pushing source sends: "sha256=" + hex(HMAC-SHA256(push key, raw body)).
CLIENTARY_PUSH_HEADER = "x-clientary-xero-signature"


def sign_hex(key: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


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
