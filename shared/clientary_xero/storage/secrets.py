"""Secrets Manager adapter: JSON secrets read with the current version stage and written back.

Secret values never reach logs or error messages: errors name the secret id only.
"""

from __future__ import annotations

import json
from typing import Any

from clientary_xero.errors import NotFound, PermanentError, RetryableError
from clientary_xero.storage.aws import client, error_code

_RETRYABLE = {"ThrottlingException", "InternalServiceError", "ServiceUnavailable", "RequestLimitExceeded"}


class SecretStore:
    """Reads and writes JSON secrets. ``read`` always asks for ``AWSCURRENT`` (never a cache)."""

    def __init__(self, sm_client: Any | None = None) -> None:
        self._client = sm_client

    @property
    def _sm(self) -> Any:
        if self._client is None:
            self._client = client("secretsmanager")
        return self._client

    def read(self, secret_id: str) -> dict[str, Any]:
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
        try:
            self._sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value))
        except Exception as exc:
            code = error_code(exc)
            if code in _RETRYABLE:
                raise RetryableError(
                    f"Secrets Manager is busy writing {secret_id!r}", delay_seconds=5
                ) from None
            raise PermanentError(f"cannot write secret {secret_id!r}: {code or type(exc).__name__}") from None
