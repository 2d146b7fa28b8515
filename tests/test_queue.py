"""The SQS adapter's batch send: 10 entries a call, refused entries sent again, never silently lost."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from clientary_xero.errors import RetryableError
from clientary_xero.storage.queue import StepQueue


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_send_batch_sends_every_message_in_calls_of_ten(aws: Any) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="batch-test")["QueueUrl"]
    calls: list[int] = []

    class Counting:
        def send_message_batch(self, **kwargs: Any) -> Any:
            calls.append(len(kwargs["Entries"]))
            return sqs.send_message_batch(**kwargs)

    queue = StepQueue({"xero": url}, sqs=Counting(), dead_letter_urls={})
    sent = queue.send_batch("xero", [{"n": i} for i in range(23)])

    assert sent == 23
    assert calls == [10, 10, 3]
    assert sorted(b["n"] for b in _drain(sqs, url)) == list(range(23))


class Refusing:
    """SQS answering a batch with some entries ``Failed`` (as it does under throttling)."""

    def __init__(self, refuse_times: int) -> None:
        self.refuse_times = refuse_times
        self.bodies: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        failed = []
        for entry in Entries:
            if entry["Id"] == "0" and self.refuse_times > 0:
                self.refuse_times -= 1
                failed.append({"Id": "0", "Code": "InternalError", "SenderFault": False})
            else:
                self.bodies.append(entry["MessageBody"])
        return {"Successful": [], "Failed": failed}


def test_an_entry_refused_once_is_sent_again() -> None:
    sqs = Refusing(refuse_times=1)
    queue = StepQueue({"xero": "https://sqs.local/q"}, sqs=sqs, dead_letter_urls={})
    assert queue.send_batch("xero", [{"n": i} for i in range(3)]) == 3
    assert sorted(json.loads(b)["n"] for b in sqs.bodies) == [0, 1, 2]


def test_an_entry_refused_twice_is_a_retryable_error_naming_the_count() -> None:
    sqs = Refusing(refuse_times=2)
    queue = StepQueue({"xero": "https://sqs.local/q"}, sqs=sqs, dead_letter_urls={})
    with pytest.raises(RetryableError, match="refused 1 of 3 messages twice"):
        queue.send_batch("xero", [{"n": i} for i in range(3)])
