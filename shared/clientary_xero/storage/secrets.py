"""Secrets Manager adapter: JSON secrets read with the current version stage and written back.

Secret values never reach logs or error messages: errors name the secret id only.

A store made with ``max_age`` keeps what it read for that many seconds, shared by every store in
the Lambda container (module level): the webhook keys and the Clientary token, which an unsigned
flood would otherwise read once per request. The rotating Xero token is read with no ``max_age``,
always ``AWSCURRENT``.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from clientary_xero.errors import NotFound, PermanentError, RetryableError
from clientary_xero.storage.aws import client, error_code

_RETRYABLE = {"ThrottlingException", "InternalServiceError", "ServiceUnavailable", "RequestLimitExceeded"}

# secret id → (monotonic time read, value). Only successful reads are kept.
_CACHE: dict[str, tuple[float, dict[str, Any]]] = {}


def clear_secret_cache() -> None:
    """Forget cached reads (tests and the local runner, which build fresh secrets)."""
    _CACHE.clear()


class SecretStore:
    """Reads and writes JSON secrets. ``read`` asks for ``AWSCURRENT``; with ``max_age`` (seconds,
    here or per call) a value read that recently in this container is reused instead."""

    def __init__(self, sm_client: Any | None = None, *, max_age: float = 0) -> None:
        self._client = sm_client
        self.max_age = max_age

    @property
    def _sm(self) -> Any:
        if self._client is None:
            self._client = client("secretsmanager")
        return self._client

    def read(self, secret_id: str, *, max_age: float | None = None) -> dict[str, Any]:
        age_limit = self.max_age if max_age is None else max_age
        if age_limit > 0:
            cached = _CACHE.get(secret_id)
            if cached is not None and time.monotonic() - cached[0] < age_limit:
                return copy.deepcopy(cached[1])
        value = self._read(secret_id)
        if age_limit > 0:
            _CACHE[secret_id] = (time.monotonic(), copy.deepcopy(value))
        return value

    def _read(self, secret_id: str) -> dict[str, Any]:
        try:
            response = self._sm.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
        except Exception as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                raise NotFound(f"secret {secret_id!r} does not exist") from None
            if code in _RETRYABLE:
                raise RetryableError(
                    f"Secrets Manager is busy reading {secret_id!r}", delay_seconds=5
                ) from None
            raise PermanentError(f"cannot read secret {secret_id!r}: {code or type(exc).__name__}") from None
        raw = response.get("SecretString") or "{}"
        try:
            value = json.loads(raw)
        except ValueError:
            raise PermanentError(f"secret {secret_id!r} is not a JSON object") from None
        if not isinstance(value, dict):
            raise PermanentError(f"secret {secret_id!r} is not a JSON object")
        return value

    def write(self, secret_id: str, value: dict[str, Any]) -> None:
        _CACHE.pop(secret_id, None)
        try:
            self._sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value))
        except Exception as exc:
            code = error_code(exc)
            if code in _RETRYABLE:
                raise RetryableError(
                    f"Secrets Manager is busy writing {secret_id!r}", delay_seconds=5
                ) from None
            raise PermanentError(f"cannot write secret {secret_id!r}: {code or type(exc).__name__}") from None
