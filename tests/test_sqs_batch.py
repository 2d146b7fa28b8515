"""The action Lambdas' partial batch responses (usecases/sqs_batch.py) are the ones Powertools'
BatchProcessor gave for the same records: failures by messageId, the rest complete. Powertools
validates records with a pydantic model: ``PydanticStepRecord`` below is the model the step
records were before they were read without pydantic, and ``StepRecord.read`` must accept and
refuse what it does, with the same values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch import process_partial_response as powertools_response
from pydantic import BaseModel, ConfigDict, Json, ValidationError, field_validator

from clientary_xero.usecases.sqs_batch import process_partial_response
from clientary_xero.usecases.steps import MalformedRecord, StepMessage, StepRecord

ROOT = Path(__file__).resolve().parents[1]


class PydanticStepMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    step_id: str
    generation: int = 0
    retries: int = 0
    waits: int = 0
    reservation: dict[str, Any] | None = None
    dead_lettered: bool = False
    carried: dict[str, Any] | None = None


class PydanticSqsAttributes(BaseModel):
    ApproximateReceiveCount: int


class PydanticStepRecord(BaseModel):
    messageId: str
    receiptHandle: str
    body: Json[PydanticStepMessage]
    attributes: PydanticSqsAttributes


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
    def handle(record: Any) -> dict[str, Any]:
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
        event_type=EventType.SQS, model=PydanticStepRecord, raise_on_entire_batch_failure=False
    )
    expected = powertools_response(event=event, record_handler=_handler(theirs), processor=processor)
    assert process_partial_response(event, _handler(ours), StepRecord.read) == expected
    assert ours == theirs


def test_the_mixed_batch_reports_exactly_its_three_failures() -> None:
    answer = process_partial_response(MIXED, _handler([]), StepRecord.read)
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
        process_partial_response(event, _handler([]), StepRecord.read)
    processor = BatchProcessor(
        event_type=EventType.SQS, model=PydanticStepRecord, raise_on_entire_batch_failure=False
    )
    # Powertools raises too (its own error class): either way the invocation fails and SQS retries.
    with pytest.raises(Exception):  # noqa: B017
        powertools_response(event=event, record_handler=_handler([]), processor=processor)


BODIES: list[Any] = [
    {"run_id": "r", "step_id": "s"},
    {"run_id": "r", "step_id": "s", "generation": 2, "retries": 1, "waits": 3, "dead_lettered": True},
    {"run_id": "r", "step_id": "s", "generation": "2", "retries": 1.0, "dead_lettered": "yes"},
    {"run_id": "r", "step_id": "s", "dead_lettered": 0, "reservation": {"at": [1.5]}, "carried": None},
    {"run_id": "r", "step_id": "s", "carried": {"run": {}, "outputs": {}}},
    {"run_id": "r", "step_id": "s", "generation": True},
    {"run_id": "r", "step_id": "s", "generation": "1.0", "retries": " 1 ", "waits": "1_000"},
    {"run_id": "r", "step_id": "s", "generation": 1e20},
    {"run_id": "r", "step_id": "s", "generation": "\u0661\u0662"},
    {"run_id": "r", "step_id": "s", "dead_lettered": " yes"},
    {"run_id": "r", "step_id": "s", "dead_lettered": "True "},
    {"run_id": "r", "step_id": "s", "dead_lettered": "YES", "generation": -0},
    {"run_id": "r"},
    {"step_id": 5},
    {"run_id": "r", "step_id": "s", "extra": 1},
    {"run_id": "r", "step_id": "s", "generation": 1.5},
    {"run_id": "r", "step_id": "s", "generation": "two"},
    {"run_id": "r", "step_id": "s", "dead_lettered": "maybe"},
    {"run_id": "r", "step_id": "s", "dead_lettered": 2},
    {"run_id": "r", "step_id": "s", "reservation": []},
    {"run_id": "r", "step_id": "s", "carried": "x"},
    ["run_id", "r"],
    "text",
    None,
]


def _raw_records() -> list[Any]:
    records: list[Any] = [_record(f"m{i}", body) for i, body in enumerate(BODIES)]
    records += [
        _record("not-json", "{"),
        {**_record("count-text", {"run_id": "r", "step_id": "s"}, "x")},
        {
            **_record("count-float", {"run_id": "r", "step_id": "s"}),
            "attributes": {"ApproximateReceiveCount": 2.0},
        },
        {
            k: v
            for k, v in _record("no-attributes", {"run_id": "r", "step_id": "s"}).items()
            if k != "attributes"
        },
        {k: v for k, v in _record("no-body", {"run_id": "r", "step_id": "s"}).items() if k != "body"},
        {**_record("body-not-text", {}), "body": {"run_id": "r", "step_id": "s"}},
        {**_record("id-not-text", {"run_id": "r", "step_id": "s"}), "messageId": 7},
        {**_record("attributes-list", {"run_id": "r", "step_id": "s"}), "attributes": []},
        "not a record",
    ]
    return records


@pytest.mark.parametrize(
    "raw", _raw_records(), ids=lambda r: r.get("messageId", "?") if isinstance(r, dict) else "str"
)
def test_the_reader_takes_and_refuses_what_the_pydantic_model_did(raw: Any) -> None:
    try:
        expected = PydanticStepRecord.model_validate(raw)
    except ValidationError as exc:
        with pytest.raises(MalformedRecord) as refused:
            StepRecord.read(raw)
        # The same places are named (pydantic's first line of each error is "place: reason").
        places = {".".join(str(p) for p in e["loc"]) or "(top level)" for e in exc.errors()}
        named = {problem.split(": ", 1)[0] for problem in refused.value.problems}
        assert {p.replace("body.", "") for p in places} <= {n.replace("body.", "") for n in named} | {"body"}
        return
    read = StepRecord.read(raw)
    assert (read.messageId, read.receiptHandle) == (expected.messageId, expected.receiptHandle)
    assert read.attributes.ApproximateReceiveCount == expected.attributes.ApproximateReceiveCount
    assert read.body.as_dict() == expected.body.model_dump()
    assert read.body == StepMessage(**expected.body.model_dump())


def test_a_body_nested_too_deep_fails_its_own_record_only() -> None:
    deep = '{"run_id": "r", "step_id": "s", "carried": ' + "[" * 5000 + "]" * 5000 + "}"
    event = {"Records": [_record("ok-1", {"run_id": "r1", "step_id": "a"}), _record("deep-2", deep)]}
    with pytest.raises(MalformedRecord, match="RecursionError"):
        StepRecord.read(event["Records"][1])
    with pytest.raises(ValidationError):
        PydanticStepRecord.model_validate(event["Records"][1])
    seen: list[str] = []
    assert process_partial_response(event, _handler(seen), StepRecord.read) == {
        "batchItemFailures": [{"itemIdentifier": "deep-2"}]
    }
    assert seen == ["r1/a/1"]


# ------------------------------------------------------------------ the Xero trigger's queue
class PydanticQueuedEvent(BaseModel):
    """The Xero event queue's message model before it was read without pydantic."""

    model_config = ConfigDict(extra="ignore")

    event: Any
    received_at: str = ""
    delivery_id: str = ""
    reservation: dict[str, Any] | None = None

    @field_validator("event", mode="before")
    @classmethod
    def _event(cls, value: Any) -> Any:
        from clientary_xero.connectors.xero.webhooks import MalformedPayload, WebhookEvent

        try:
            return WebhookEvent.parse(value)
        except MalformedPayload as exc:
            raise ValueError("; ".join(exc.problems)) from None


class PydanticEventRecord(BaseModel):
    messageId: str
    receiptHandle: str
    body: Json[PydanticQueuedEvent]
    attributes: PydanticSqsAttributes


def _xero_events() -> list[Any]:
    from clientary_xero.connectors.xero.webhooks import event_for

    good = event_for("INVOICE", "CREATE", "i-1", "t-1")
    bodies: list[Any] = [
        {"event": good, "received_at": "2026-12-01T00:00:00Z", "delivery_id": "d-1"},
        {"event": good, "reservation": {"at": [1]}, "extra": "ignored"},
        {"event": {k: v for k, v in good.items() if k != "resourceId"}},
        {"event": {**good, "eventType": 5}},
        {"event": "not an event"},
        {"received_at": "x"},
        {"event": good, "delivery_id": 3},
        {"event": good, "reservation": []},
        [good],
    ]
    records: list[Any] = [_record(f"x{i}", body) for i, body in enumerate(bodies)]
    records.append(json.loads((ROOT / "events" / "sqs_xero_event.json").read_text())["Records"][0])
    return records


@pytest.mark.parametrize("raw", _xero_events(), ids=lambda r: str(r.get("messageId", "?"))[:12])
def test_the_xero_event_reader_takes_and_refuses_what_its_pydantic_model_did(raw: Any) -> None:
    from clientary_xero.usecases.xero_trigger import EventRecord

    try:
        expected = PydanticEventRecord.model_validate(raw)
    except ValidationError:
        with pytest.raises(MalformedRecord):
            EventRecord.read(raw)
        return
    read = EventRecord.read(raw)
    assert (read.messageId, read.receiptHandle) == (expected.messageId, expected.receiptHandle)
    assert read.attributes.ApproximateReceiveCount == expected.attributes.ApproximateReceiveCount
    assert read.body.as_dict() == {
        **expected.body.model_dump(mode="json"),
        "event": read.body.event.as_dict(),
    }
    assert read.body.event == expected.body.event


def test_the_xero_trigger_answers_a_batch_as_powertools_did() -> None:
    from clientary_xero.usecases.xero_trigger import EventRecord

    event = {"Records": _xero_events()}

    def handler(seen: list[str]) -> Any:
        def handle(record: Any) -> dict[str, Any]:
            if record.body.delivery_id == "d-1":
                raise RuntimeError("this event's work failed")
            seen.append(record.messageId)
            return {}

        return handle

    ours: list[str] = []
    theirs: list[str] = []
    processor = BatchProcessor(
        event_type=EventType.SQS, model=PydanticEventRecord, raise_on_entire_batch_failure=False
    )
    expected = powertools_response(event=event, record_handler=handler(theirs), processor=processor)
    assert process_partial_response(event, handler(ours), EventRecord.read) == expected
    assert ours == theirs and len(ours) == 2  # x1 and the sample event
    failed = [f["itemIdentifier"] for f in expected["batchItemFailures"]]
    assert failed == ["x0", *(f"x{i}" for i in range(2, 9))]  # x0's work failed; the rest do not read
