"""boto3 clients, created lazily and cached per process (boto3 import is deferred to first use)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from clientary_xero.settings import get_settings

if TYPE_CHECKING:  # pragma: no cover
    pass


@lru_cache(maxsize=None)
def client(service: str) -> Any:
    import boto3  # deferred: ~100 ms of a cold start

    return boto3.client(service, region_name=get_settings().region)


@lru_cache(maxsize=None)
def table(name: str) -> Any:
    import boto3

    return boto3.resource("dynamodb", region_name=get_settings().region).Table(name)


def reset_clients() -> None:
    """Forget cached clients (tests and the local runner switch moto backends)."""
    client.cache_clear()
    table.cache_clear()


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
