"""The volume benchmark's machinery (benchmarks/bench_backlog.py, benchmarks/moto_speed.py):
moto's transactions rolled back item by item, SQS on the simulated clock delivering each message at
its own instant, and a small backlog's figures agreeing with the sandboxes' own logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from benchmarks import bench_backlog
from benchmarks.moto_speed import indexed_queries, item_level_transactions


@pytest.fixture
def table(aws: Any) -> Any:
    import boto3

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName="bench-tx",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for pk in ("a", "c"):
        ddb.put_item(TableName="bench-tx", Item={"pk": {"S": pk}, "sk": {"S": "1"}, "n": {"N": "1"}})
    return ddb


def _items(ddb: Any) -> list[dict[str, Any]]:
    return sorted(ddb.scan(TableName="bench-tx")["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def _transaction(condition_value: str) -> list[dict[str, Any]]:
    """A new item, an update of an existing one, then a condition on a third that holds for ``"1"``."""
    return [
        {"Put": {"TableName": "bench-tx", "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
        {
            "Update": {
                "TableName": "bench-tx",
                "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                "UpdateExpression": "SET n = n + :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {
            "ConditionCheck": {
                "TableName": "bench-tx",
                "Key": {"pk": {"S": "c"}, "sk": {"S": "1"}},
                "ConditionExpression": "n = :v",
                "ExpressionAttributeValues": {":v": {"N": condition_value}},
            }
        },
    ]


def test_a_cancelled_transaction_leaves_its_items_as_they_were_without_copying_the_table(
    table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.table import Table

    def no_copy(self: Any, memo: Any) -> Any:
        raise AssertionError("the whole table was copied")

    monkeypatch.setattr(Table, "__deepcopy__", no_copy, raising=False)
    before = _items(table)
    with item_level_transactions():
        with pytest.raises(table.exceptions.TransactionCanceledException):
            table.transact_write_items(TransactItems=_transaction("5"))
        assert _items(table) == before  # the put removed, the update undone
        table.transact_write_items(TransactItems=_transaction("1"))
    assert _items(table) == [
        {"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "2"}},
        {"pk": {"S": "b"}, "sk": {"S": "1"}},
        {"pk": {"S": "c"}, "sk": {"S": "1"}, "n": {"N": "1"}},
    ]


def test_moto_copies_the_table_without_it(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the module exists: without it, moto copies the table (the benchmark's quadratic cost)."""
    from moto.dynamodb.models.table import Table

    copied: list[str] = []

    def counting(self: Any, memo: Any) -> Any:
        copied.append(self.name)
        raise RuntimeError("copied")

    monkeypatch.setattr(Table, "__deepcopy__", counting, raising=False)
    with pytest.raises(Exception):  # noqa: B017 - moto's error, whatever it makes of ours
        table.transact_write_items(TransactItems=_transaction("1"))
    assert copied


def test_a_query_on_the_table_key_reads_its_partition_only_and_answers_as_moto_does(
    table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.table import Table

    for pk in ("a", "b", "z"):
        for sk in ("3", "1", "2"):
            table.put_item(TableName="bench-tx", Item={"pk": {"S": pk}, "sk": {"S": sk}})

    def queries() -> list[Any]:
        asked = {"TableName": "bench-tx", "KeyConditionExpression": "pk = :p"}
        return [
            table.query(**asked, ExpressionAttributeValues={":p": {"S": "b"}})["Items"],
            table.query(**asked, ExpressionAttributeValues={":p": {"S": "a"}}, ScanIndexForward=False)[
                "Items"
            ],
            table.query(**asked, ExpressionAttributeValues={":p": {"S": "z"}}, Limit=2),
            table.query(**asked, ExpressionAttributeValues={":p": {"S": "none"}})["Items"],
        ]

    as_moto_answers = queries()

    def whole_table(self: Any) -> Any:
        raise AssertionError("the whole table was sorted")

    monkeypatch.setattr(Table, "all_items", whole_table)
    with indexed_queries():
        fast = queries()
    for answer in (fast[2], as_moto_answers[2]):
        answer.pop("ResponseMetadata")
    assert fast == as_moto_answers
    assert [i["sk"]["S"] for i in fast[1]] == ["3", "2", "1"]


def test_delayed_messages_arrive_in_order_of_their_own_delay_on_the_simulated_clock() -> None:
    from clientary_xero.storage.queue import StepQueue

    with bench_backlog.sim_env(workflow=False) as s:
        seen: list[int] = []
        queue = StepQueue()
        queue.send("xero", {"order": 2}, delay_seconds=600)
        queue.send("xero", {"order": 1}, delay_seconds=300)
        start = s.sim.time()

        import boto3

        sqs = boto3.client("sqs", region_name="us-east-1")
        url = s.env.resources.xero_queue_url
        assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []  # both delayed
        while (due := bench_backlog._next_due([url], s.sim)) is not None:
            s.sim.advance(max(0.0, due - s.sim.time()) + 0.001)
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                seen.append(json.loads(message["Body"])["order"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                # Each one when its own delay has passed on the simulated clock, not before.
                assert s.sim.time() - start >= 300 * seen[-1]
    assert seen == [1, 2]


def test_a_small_backlog_counts_what_the_sandboxes_saw_and_every_step_once() -> None:
    v = bench_backlog.backlog(12, clients=3)
    assert v.runs == {"SUCCEEDED": 12}
    assert v.rejected == 0
    # One lookup, one contact write, one invoice write: batching made every call it could share.
    assert v.xero_by_kind == {"GET /Contacts": 1, "POST /Contacts": 1, "PUT /Invoices": 1}
    assert v.xero_calls == bench_backlog.minimum_calls(12, 3)
    assert v.drained.steps == 24 and v.drained.per_step == 1.0
    assert v.dynamodb.total > 0
