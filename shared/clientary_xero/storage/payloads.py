"""The payload bucket: run and step attributes too big for a State item (DynamoDB's 400 KB limit).

A Clientary invoice of thousands of lines, or a step's input or output built from it, does not fit
in one DynamoDB item. ``StateStore`` puts such an attribute (its JSON text) here under
``runs/<run id>/…`` and keeps only the key in the item (``<attribute>_ref``); reading a run or a
step loads it back, so callers never see the difference. Objects expire with the runs (the
bucket's lifecycle rule equals ``RunRetentionDays``). Without a bucket configured
(``PAYLOAD_BUCKET`` empty) nothing is offloaded and an oversized run is stored compacted instead.
"""

from __future__ import annotations

from typing import Any

from clientary_xero.errors import PermanentError, RetryableError
from clientary_xero.settings import get_settings
from clientary_xero.storage.aws import client, error_code


class PayloadStore:
    def __init__(self, bucket: str | None = None, s3: Any | None = None) -> None:
        self.bucket = bucket if bucket is not None else get_settings().payload_bucket
        self._client = s3

    @property
    def enabled(self) -> bool:
        return bool(self.bucket)

    @property
    def _s3(self) -> Any:
        if self._client is None:
            self._client = client("s3")
        return self._client

    def put(self, key: str, text: str) -> str:
        """Store ``text`` under ``key`` (overwriting: a step's input is rewritten per attempt)."""
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/json"
            )
        except Exception as exc:
            raise RetryableError(
                f"could not store a large payload in S3 ({error_code(exc) or type(exc).__name__})",
                delay_seconds=5,
            ) from None
        return key

    def get(self, key: str) -> str:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            code = error_code(exc)
            if code in ("NoSuchKey", "404"):
                raise PermanentError(
                    f"the payload {key} is no longer in the payload bucket (expired with the run's retention)"
                ) from None
            raise RetryableError(
                f"could not read a large payload from S3 ({code or type(exc).__name__})", delay_seconds=5
            ) from None
        return bytes(body).decode("utf-8")
