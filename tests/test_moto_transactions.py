"""The local environment's moto transactions (local/moto_transactions.py): all or nothing as in AWS,
rolled back item by item instead of by copying every table the transaction names."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from clientary_xero.local.moto_transactions import item_rollback_transactions

TABLE = "t"


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws(), item_rollback_transactions():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(
            TableName=TABLE,
            Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}, "l": {"L": [{"S": "x"}]}},
        )
        client.put_item(TableName=TABLE, Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "2"}})
        yield client


def _items(client: Any) -> list[dict[str, Any]]:
    return sorted(client.scan(TableName=TABLE)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "1"}}


def _writes(condition_on_b: str) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": TABLE, "Item": {**_key("new"), "n": {"N": "9"}}}},
        {
            "Update": {
                "TableName": TABLE,
                "Key": _key("a"),
                "UpdateExpression": "SET n = n + :one, l = list_append(l, :more)",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":more": {"L": [{"S": "y"}]}},
            }
        },
        {"Delete": {"TableName": TABLE, "Key": _key("b"), "ConditionExpression": condition_on_b}},
    ]


def test_a_transaction_that_fails_writes_nothing(ddb: Any) -> None:
    before = _items(ddb)
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=_writes("attribute_not_exists(pk)"))  # b exists: fails
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _items(ddb) == before  # the Put undone, the Update undone (nested list too), the Delete not done


def test_a_failing_condition_check_undoes_the_writes_before_and_after_it(ddb: Any) -> None:
    before = _items(ddb)
    items = [
        {"Put": {"TableName": TABLE, "Item": {**_key("new"), "n": {"N": "9"}}}},
        {
            "ConditionCheck": {
                "TableName": TABLE,
                "Key": _key("b"),
                "ConditionExpression": "n = :x",
                "ExpressionAttributeValues": {":x": {"N": "7"}},
            }
        },
        {"Delete": {"TableName": TABLE, "Key": _key("a")}},
    ]
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=items)
    assert _items(ddb) == before


def test_a_transaction_that_passes_writes_everything(ddb: Any) -> None:
    ddb.transact_write_items(TransactItems=_writes("attribute_exists(pk)"))
    items = {i["pk"]["S"]: i for i in _items(ddb)}
    assert set(items) == {"a", "new"}
    assert items["a"]["n"] == {"N": "2"} and items["a"]["l"] == {"L": [{"S": "x"}, {"S": "y"}]}


def test_two_operations_on_one_item_are_still_refused_and_change_nothing(ddb: Any) -> None:
    before = _items(ddb)
    items = [
        {"Put": {"TableName": TABLE, "Item": {**_key("a"), "n": {"N": "5"}}}},
        {"Delete": {"TableName": TABLE, "Key": _key("a")}},
    ]
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=items)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert _items(ddb) == before


def test_no_table_is_copied(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import Table

    copied: list[str] = []
    real = copy.deepcopy

    def spy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            copied.append(value.name)
        return real(value, memo)

    monkeypatch.setattr(copy, "deepcopy", spy)
    ddb.transact_write_items(TransactItems=_writes("attribute_exists(pk)"))
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=_writes("attribute_exists(pk)"))  # b is gone now
    assert copied == []


def test_moto_is_as_it_was_once_the_last_environment_closes() -> None:
    from moto.dynamodb import models

    original, module = models.DynamoDBBackend.transact_write_items, models.copy
    with item_rollback_transactions():
        with item_rollback_transactions():
            assert models.DynamoDBBackend.transact_write_items is not original
        assert models.copy is not module  # still installed for the outer one
    assert models.DynamoDBBackend.transact_write_items is original and models.copy is module
