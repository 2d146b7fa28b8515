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
def dynamodb() -> Any:
    """The DynamoDB client every table shares, speaking Python types both ways as the client of
    boto3's DynamoDB resource does (``batch_get_item`` and ``transact_write_items`` included).

    The same handlers the resource registers on its client (boto3.dynamodb.transform), on a plain
    client: the resource itself costs each cold start its JSON model, its class factory and the
    handlers of every resource class it builds, for calls it would only pass on."""
    import boto3
    from boto3.dynamodb.transform import TransformationInjector, copy_dynamodb_params

    ddb = boto3.client("dynamodb", region_name=get_settings().region)
    events, injector = ddb.meta.events, TransformationInjector()
    # The order and unique ids of boto3's DynamoDBHighLevelResource.__init__.
    events.register(
        "provide-client-params.dynamodb", copy_dynamodb_params, unique_id="dynamodb-create-params-copy"
    )
    events.register(
        "before-parameter-build.dynamodb",
        injector.inject_condition_expressions,
        unique_id="dynamodb-condition-expression",
    )
    events.register(
        "before-parameter-build.dynamodb",
        injector.inject_attribute_value_input,
        unique_id="dynamodb-attr-value-input",
    )
    events.register(
        "after-call.dynamodb", injector.inject_attribute_value_output, unique_id="dynamodb-attr-value-output"
    )
    return ddb


class Table:
    """One table's item calls on the shared client, ``TableName`` filled in: what the layer used of
    boto3's ``Table`` resource (its actions only pass the call on), with ``name`` and ``meta.client``."""

    class _Meta:
        def __init__(self, ddb: Any) -> None:
            self.client = ddb

    def __init__(self, name: str, ddb: Any) -> None:
        self.name = name
        self.meta = Table._Meta(ddb)

    def get_item(self, **kwargs: Any) -> Any:
        return self.meta.client.get_item(TableName=self.name, **kwargs)

    def put_item(self, **kwargs: Any) -> Any:
        return self.meta.client.put_item(TableName=self.name, **kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        return self.meta.client.update_item(TableName=self.name, **kwargs)

    def delete_item(self, **kwargs: Any) -> Any:
        return self.meta.client.delete_item(TableName=self.name, **kwargs)

    def query(self, **kwargs: Any) -> Any:
        return self.meta.client.query(TableName=self.name, **kwargs)

    def scan(self, **kwargs: Any) -> Any:
        return self.meta.client.scan(TableName=self.name, **kwargs)


@cache
def table(name: str) -> Table:
    # One client for every table: a push reads the Workflows and writes the State table, and each
    # further client costs a first invocation its set-up.
    return Table(name, dynamodb())


def reset_clients() -> None:
    """Forget cached clients and what was read through them (tests and the local runner switch
    moto backends)."""
    from clientary_xero.storage.workflows import clear_cache

    client.cache_clear()
    dynamodb.cache_clear()
    table.cache_clear()
    clear_cache()


def resolve_region(explicit: str | None = None) -> str | None:
    """The region the way the AWS CLI picks it: ``explicit`` (``--region``), then ``AWS_REGION``,
    then boto3's own resolution (``AWS_DEFAULT_REGION``, the profile's ``region`` in the AWS config
    file, ``AWS_PROFILE`` choosing the profile). None when none of them names one.

    boto3 does not read ``AWS_REGION`` (botocore's variable is ``AWS_DEFAULT_REGION``), the AWS CLI v2
    and the Lambda runtime do; a profile that names no region makes boto3 answer None, where the
    settings would otherwise fall back to us-east-1 and look for the tables in the wrong region.
    Raises botocore's ``ProfileNotFound`` for an ``AWS_PROFILE`` the config does not have."""
    import os

    if explicit:
        return explicit
    if os.environ.get("AWS_REGION"):
        return os.environ["AWS_REGION"]
    import boto3

    return boto3.session.Session().region_name


# The last AWS call this process made: (service, operation, the resource it named). The CLI turns
# an AWS error into one line that names the resource (a ClientError names only the operation).
_last_call: dict[str, str] = {}
_RESOURCE_PARAMS = {
    "TableName": "table",
    "QueueUrl": "queue",
    "SecretId": "secret",
    "StackName": "stack",
    "Bucket": "bucket",
}


def watch_calls() -> None:
    """Remember each call's service, operation and resource (``last_call``). Registered on boto3's
    default session, so it covers every client created from now on; idempotent."""
    import boto3

    session = boto3.DEFAULT_SESSION
    if session is None:
        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-parameter-build", _note_call, unique_id="clientary-xero-last-call")


def _note_call(params: dict[str, Any], model: Any, **_: Any) -> None:
    _last_call.clear()
    _last_call["service"] = str(model.service_model.service_id)
    _last_call["operation"] = str(model.name)
    for name, kind in _RESOURCE_PARAMS.items():
        if params.get(name):
            _last_call["resource"], _last_call["kind"] = str(params[name]), kind
            break
    if "resource" not in _last_call and isinstance(params.get("RequestItems"), dict):
        _last_call["resource"], _last_call["kind"] = ", ".join(sorted(params["RequestItems"])), "table"
    if "resource" not in _last_call and isinstance(params.get("TransactItems"), list):
        names = {
            str(part.get("TableName", ""))
            for item in params["TransactItems"]
            if isinstance(item, dict)
            for part in item.values()
            if isinstance(part, dict)
        }
        _last_call["resource"], _last_call["kind"] = ", ".join(sorted(n for n in names if n)), "table"


def last_call() -> dict[str, str]:
    """``{"service", "operation", "resource"?, "kind"?}`` of the last AWS call (empty before the
    first); ``kind``: table, queue, secret, stack or bucket."""
    return dict(_last_call)


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
