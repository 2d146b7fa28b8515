"""The action Lambdas' partial batch responses (usecases/sqs_batch.py) are the ones Powertools'
BatchProcessor gave for the same records: failures by messageId, the rest complete."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch import process_partial_response as powertools_response

from clientary_xero.usecases.sqs_batch import process_partial_response
from clientary_xero.usecases.steps import StepRecord


def _record(message_id: str, body: Any, receive_count: str = "1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": receive_count, "SentTimestamp": "1"},
        "messageAttributes": {},
        "md5OfBody": "x",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }


MIXED = {
    "Records": [
        _record("ok-1", {"run_id": "r1", "step_id": "a"}),
        _record("raises-2", {"run_id": "boom", "step_id": "a"}),
        _record("poison-3", "not json"),
        _record("unknown-field-4", {"run_id": "r4", "step_id": "a", "extra": 1}),
        _record("ok-5", {"run_id": "r5", "step_id": "b", "generation": 2}),
    ]
}


def _handler(seen: list[str]) -> Any:
    def handle(record: StepRecord) -> dict[str, Any]:
        if record.body.run_id == "boom":
            raise RuntimeError("the step failed")
        seen.append(f"{record.body.run_id}/{record.body.step_id}/{record.attributes.ApproximateReceiveCount}")
        return {}

    return handle


@pytest.mark.parametrize(
    "event",
    [MIXED, {"Records": [_record("only-poison", "{}")]}],
    ids=["mixed", "all-fail"],
)
def test_the_answer_and_the_records_handled_are_powertools_own(event: dict[str, Any]) -> None:
    ours: list[str] = []
    theirs: list[str] = []
    processor = BatchProcessor(
        event_type=EventType.SQS, model=StepRecord, raise_on_entire_batch_failure=False
    )
    expected = powertools_response(event=event, record_handler=_handler(theirs), processor=processor)
    assert process_partial_response(event, _handler(ours), StepRecord) == expected
    assert ours == theirs


def test_the_mixed_batch_reports_exactly_its_three_failures() -> None:
    answer = process_partial_response(MIXED, _handler([]), StepRecord)
    assert answer == {
        "batchItemFailures": [
            {"itemIdentifier": "raises-2"},
            {"itemIdentifier": "poison-3"},
            {"itemIdentifier": "unknown-field-4"},
        ]
    }


@pytest.mark.parametrize("event", [{"detail-type": "Scheduled Event"}, {"Records": "x"}, {"Records": []}, []])
def test_an_event_that_is_not_an_sqs_batch_is_refused_saying_so_as_powertools_refuses_it(event: Any) -> None:
    with pytest.raises(ValueError, match="expected an SQS event"):
        process_partial_response(event, _handler([]), StepRecord)
    processor = BatchProcessor(
        event_type=EventType.SQS, model=StepRecord, raise_on_entire_batch_failure=False
    )
    # Powertools raises too (its own error class): either way the invocation fails and SQS retries.
    with pytest.raises(Exception):  # noqa: B017
        powertools_response(event=event, record_handler=_handler([]), processor=processor)
