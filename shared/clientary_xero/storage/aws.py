"""boto3 clients, created lazily and cached per process (boto3 import is deferred to first use)."""

from __future__ import annotations

from functools import cache
from typing import Any

from clientary_xero.settings import get_settings


@cache
def client(service: str) -> Any:
    import boto3  # deferred: ~100 ms of a cold start

    factory: Any = boto3.client  # the stubs' per-service overloads need a literal name
    return factory(service, region_name=get_settings().region)


@cache
def resource() -> Any:
    """The DynamoDB resource (for calls on several tables' items: ``batch_get_item``)."""
    import boto3

    return boto3.resource("dynamodb", region_name=get_settings().region)


@cache
def table(name: str) -> Any:
    # One resource (and so one DynamoDB client) for every table: a push reads the Workflows and
    # writes the State table, and each further client costs a first invocation its set-up.
    return resource().Table(name)


def reset_clients() -> None:
    """Forget cached clients and what was read through them (tests and the local runner switch
    moto backends)."""
    from clientary_xero.storage.workflows import clear_cache

    client.cache_clear()
    resource.cache_clear()
    table.cache_clear()
    clear_cache()


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
