"""Engine decisions: dedupe, matching, filter, branching, checkpoints, error classes, replay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from clientary_xero.engine.intake import Intake, TriggerEvent
from clientary_xero.engine.runner import StepRunner, replay
from clientary_xero.errors import Conflict, RetryableError
from clientary_xero.settings import get_settings
from clientary_xero.storage.queue import StepQueue
from clientary_xero.storage.state import StateStore
from clientary_xero.storage.workflows import WorkflowStore
from clientary_xero.workflows.validate import parse_workflow
from tests.engine_helpers import Echo, echo_action, queued

TRIGGER = "clientary.new_invoice"


def workflow(**overrides: Any) -> dict[str, Any]:
    doc = {
        "id": "wf",
        "trigger": TRIGGER,
        "steps": [
            {"id": "first", "action": "test.echo", "input": {"value": "{% invoice.number %}"}},
            {
                "if": "{% steps.first.value = 'A-1' %}",
                "then": [
                    {
                        "id": "second",
                        "action": "test.echo",
                        "input": {"value": "{% steps.first.value & '!' %}"},
                    }
                ],
                "else": [{"id": "other", "action": "test.echo", "input": {"value": "else"}}],
            },
        ],
    }
    doc.update(overrides)
    return doc


class Harness:
    def __init__(self, resources: Any, echo: Echo) -> None:
        self.resources = resources
        self.echo = echo
        self.now = 1_800_000_000.0
        self.state = StateStore(clock=lambda: self.now)
        self.workflows = WorkflowStore()
        self.queue = StepQueue()
        self.intake = Intake(self.workflows, self.state, self.queue, get_settings())
        self.runner = StepRunner(self.state, self.queue, get_settings())

    def put(self, doc: dict[str, Any]) -> None:
        self.workflows.put(parse_workflow(doc))

    def deliver(self, record_id: int = 1, number: str = "A-1", total: float = 10.0) -> list[Any]:
        record = {"id": record_id, "number": number, "total_cost": total}
        return self.intake.start_runs(TriggerEvent(TRIGGER, record, str(record_id), "poll"))

    def messages(self) -> list[dict[str, Any]]:
        return queued(self.resources.xero_queue_url)

    def run_all(self) -> list[Any]:
        outcomes = []
        while batch := self.messages():
            outcomes.extend(self.runner.execute(m) for m in batch)
        return outcomes


@pytest.fixture
def h(aws: Any) -> Iterator[Harness]:
    with echo_action() as echo:
        yield Harness(aws, echo)


def test_a_record_starts_each_workflow_once(h: Harness) -> None:
    h.put(workflow())
    first = h.deliver()
    again = h.deliver()
    assert [s.created for s in first] == [True] and [s.created for s in again] == [False]
    assert first[0].run_id == again[0].run_id
    (message,) = h.messages()  # one message; it carries the run (saving the step's first read)
    assert {k: message[k] for k in ("run_id", "step_id", "generation")} == {
        "run_id": first[0].run_id,
        "step_id": "first",
        "generation": 0,
    }


def test_steps_run_in_order_and_the_branch_is_recorded(h: Harness) -> None:
    h.put(workflow())
    (start,) = h.deliver(number="A-1")
    outcomes = h.run_all()
    assert [(o.step_id, o.status) for o in outcomes] == [("first", "SUCCEEDED"), ("second", "SUCCEEDED")]
    run = h.state.get_run(start.run_id)
    assert run is not None and run["status"] == "SUCCEEDED" and run["decisions"] == {"if_1": True}
    steps = {s["step_id"]: s for s in h.state.get_steps(start.run_id)}
    assert steps["second"]["input"] == {"value": "A-1!"}
    assert steps["second"]["output"]["value"] == "A-1!"


def test_else_branch(h: Harness) -> None:
    h.put(workflow())
    (start,) = h.deliver(number="B-2")
    h.run_all()
    assert [c[0] for c in h.echo.calls] == ["first", "other"]
    assert h.state.get_run(start.run_id)["decisions"] == {"if_1": False}  # type: ignore[index]


def test_filter_rejection_is_a_visible_filtered_run_with_nothing_queued(h: Harness) -> None:
    h.put(workflow(filter="{% invoice.total_cost > 100 %}"))
    (start,) = h.deliver(total=5)
    assert start.status == "FILTERED"
    assert h.messages() == []
    assert h.state.get_run(start.run_id)["status"] == "FILTERED"  # type: ignore[index]


def test_disabled_workflow_does_not_run_but_records_a_skipped_run(h: Harness) -> None:
    h.put(workflow(enabled=False))
    (start,) = h.deliver()
    assert (start.status, start.created) == ("SKIPPED", True)
    assert h.messages() == [] and h.echo.calls == []
    run = h.state.get_run(start.run_id)
    assert run is not None and run["status"] == "SKIPPED" and run["record_id"] == "1"


def test_invalid_workflow_edited_in_the_console_fails_its_run_and_others_keep_running(h: Harness) -> None:
    h.put(workflow(id="good"))
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(h.resources.workflows_table)
    bad = workflow(id="broken")
    bad["steps"][0]["action"] = "xero.no_such_action"
    table.put_item(Item=bad)  # as if edited in the console, bypassing validation
    starts = {s.workflow_id: s for s in h.deliver()}
    assert starts["good"].status == "QUEUED"
    assert starts["broken"].status == "FAILED"
    run = h.state.get_run(starts["broken"].run_id)
    assert run is not None and "unknown action 'xero.no_such_action'" in run["error"]["messages"][0]
    assert [m["step_id"] for m in h.messages()] == ["first"]


def test_interrupted_intake_is_finished_by_the_next_delivery(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.put(workflow())

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("lambda died before enqueueing")

    monkeypatch.setattr(h.queue, "send_batch", crash)
    with pytest.raises(RetryableError, match="lambda died before enqueueing"):
        h.deliver()
    monkeypatch.undo()
    (again,) = h.deliver()
    assert again.detail == "re-enqueued an interrupted intake"
    assert [m["step_id"] for m in h.messages()] == ["first"]


def test_a_succeeded_step_never_executes_twice(h: Harness) -> None:
    h.put(workflow())
    h.deliver()
    (message,) = h.messages()
    h.runner.execute(message)
    duplicate = h.runner.execute(message)  # SQS redelivery of the same message
    assert duplicate.detail == "duplicate message"
    assert [c[0] for c in h.echo.calls] == ["first"]


def test_permanent_error_fails_the_run_with_the_services_messages(h: Harness) -> None:
    h.put(workflow())
    (start,) = h.deliver()
    h.echo.fail_plan["first"] = ["permanent"]
    (outcome,) = h.run_all()
    assert outcome.status == "FAILED"
    run = h.state.get_run(start.run_id)
    assert run is not None and run["status"] == "FAILED" and run["failed_step"] == "first"
    assert run["error"]["messages"] == ["Amount must be positive"]


def test_invalid_rendered_input_is_a_permanent_failure_before_any_call(h: Harness) -> None:
    doc = workflow()
    doc["steps"][0]["input"] = {"count": "{% invoice.number %}"}  # not an int
    h.put(doc)
    (start,) = h.deliver()
    h.run_all()
    assert h.echo.calls == []
    run = h.state.get_run(start.run_id)
    assert run is not None and run["status"] == "FAILED"
    assert any(m.startswith("input.count:") for m in run["error"]["messages"])


def test_an_unknown_nested_key_at_run_time_reads_as_validation_words_it(h: Harness) -> None:
    # An object from an expression is checked when rendered: its misspelt key gets the same wording
    # (and suggestion) as validation gives a literal one.
    from pydantic import BaseModel, ConfigDict

    from clientary_xero.connectors import base

    class Line(BaseModel):
        model_config = ConfigDict(extra="forbid")
        Quantity: int = 0

    class Nested(BaseModel):
        model_config = ConfigDict(extra="forbid")
        Lines: list[Line] = []

    base.registry()["test.nested"] = base.ActionSpec("test.nested", "xero", Nested, h.echo)
    try:
        doc = workflow()
        doc["steps"] = [
            {"id": "first", "action": "test.nested", "input": {"Lines": "{% [{'Quantiy': 2}] %}"}}
        ]
        h.put(doc)
        (start,) = h.deliver()
        h.run_all()
    finally:
        base.registry().pop("test.nested", None)
    assert h.echo.calls == []
    run = h.state.get_run(start.run_id)
    assert run is not None and run["status"] == "FAILED"
    assert run["error"]["messages"] == [
        "input.Lines[0].Quantiy: not a field of Lines[0] (did you mean 'Quantity'?)"
    ]


def test_retryable_error_returns_the_message_and_the_last_attempt_fails_the_run(h: Harness) -> None:
    h.put(workflow())
    (start,) = h.deliver()
    (message,) = h.messages()
    h.echo.fail_plan["first"] = ["retry", "retry", "retry"]
    for attempt in (1, 2):
        with pytest.raises(RetryableError) as info:
            h.runner.execute(message, receive_count=attempt)
        assert info.value.delay_seconds == 7
        assert h.state.get_run(start.run_id)["status"] == "RUNNING"  # type: ignore[index]
    # MAX_ATTEMPTS is 3 in these tests: the runner moves the message to the DLQ and acknowledges it.
    assert h.runner.execute(message, receive_count=3).status == "FAILED"
    run = h.state.get_run(start.run_id)
    assert run is not None and run["status"] == "FAILED"
    assert run["error"]["message"].startswith("gave up after 3 attempts")
    # The DLQ copy names the step (a redrive reads the run: it carries none).
    ids = {k: v for k, v in message.items() if k != "carried"}
    assert queued(h.resources.xero_dlq_url) == [{**ids, "dead_lettered": True}]


def test_unexpected_exception_counts_as_retryable(h: Harness) -> None:
    h.put(workflow())
    h.deliver()
    (message,) = h.messages()
    h.echo.fail_plan["first"] = ["crash"]
    with pytest.raises(RetryableError, match="unexpected error: RuntimeError"):
        h.runner.execute(message)


def test_a_crash_after_the_call_reuses_the_idempotency_key(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.put(workflow())
    h.deliver()
    (message,) = h.messages()
    real_finish = h.state.finish_step

    def crash_on_checkpoint(*args: Any, **kwargs: Any) -> None:
        if kwargs.get("status") == "SUCCEEDED":
            raise RuntimeError("lambda killed between the call and the checkpoint")
        real_finish(*args, **kwargs)

    monkeypatch.setattr(h.state, "finish_step", crash_on_checkpoint)
    with pytest.raises(RuntimeError):
        h.runner.execute(message)
    monkeypatch.undo()
    # The dead worker's lease is still live: a copy is re-sent for when it ends (not an attempt).
    busy = h.runner.execute(message, receive_count=2)
    assert busy.status == "DELAYED" and "held by another worker" in busy.detail
    assert f"re-sent with a {get_settings().step_lease_seconds + 1} s delay" in busy.detail
    h.now += get_settings().step_lease_seconds + 1
    h.runner.execute(message, receive_count=3)
    (first_call, second_call) = h.echo.calls
    assert first_call[1] == second_call[1]  # the same Idempotency-Key both times
    assert (first_call[2], second_call[2]) == (1, 2)


def test_replay_runs_from_the_failed_step_and_keeps_succeeded_outputs(h: Harness) -> None:
    h.put(workflow())
    (start,) = h.deliver()
    h.echo.fail_plan["second"] = ["permanent"]
    h.run_all()
    assert h.state.get_run(start.run_id)["status"] == "FAILED"  # type: ignore[index]
    result = replay(h.state, h.queue, start.run_id)
    assert result == {"run_id": start.run_id, "step_id": "second", "generation": 1}
    h.run_all()
    run = h.state.get_run(start.run_id)
    assert run is not None and run["status"] == "SUCCEEDED"
    assert [c[0] for c in h.echo.calls] == ["first", "second", "second"]
    keys = [c[1] for c in h.echo.calls if c[0] == "second"]
    assert keys[0] != keys[1]  # a replay must not reuse the failed attempt's key
    attempts = [c[2] for c in h.echo.calls if c[0] == "second"]
    assert attempts == [1, 2]  # so the action looks for what the failed execution made


def test_a_message_from_before_a_replay_is_ignored(h: Harness) -> None:
    h.put(workflow())
    (start,) = h.deliver()
    h.echo.fail_plan["first"] = ["permanent"]
    h.run_all()
    replay(h.state, h.queue, start.run_id)
    stale = {"run_id": start.run_id, "step_id": "first", "generation": 0}
    assert h.runner.execute(stale).status == "SKIPPED"


def test_only_failed_runs_can_be_replayed(h: Harness) -> None:
    from clientary_xero.errors import PermanentError

    h.put(workflow())
    (start,) = h.deliver()
    h.run_all()
    with pytest.raises(PermanentError, match="only FAILED runs"):
        replay(h.state, h.queue, start.run_id)


def test_claim_refuses_a_succeeded_step(h: Harness) -> None:
    h.put(workflow())
    (start,) = h.deliver()
    h.run_all()
    with pytest.raises(Conflict):
        h.state.claim_step(start.run_id, "first", owner="x", lease_seconds=30, seq=0)


def test_a_stuck_run_whose_message_was_dead_lettered_can_be_replayed(h: Harness) -> None:
    from clientary_xero.errors import PermanentError

    h.put(workflow())
    (start,) = h.deliver()
    (message,) = h.messages()
    # A Lambda took the step and timed out on every delivery; SQS then moved the message to the DLQ.
    h.state.claim_step(start.run_id, "first", owner="timed-out", lease_seconds=30, seq=0)
    with pytest.raises(PermanentError, match="add --stuck"):
        replay(h.state, h.queue, start.run_id)
    with pytest.raises(PermanentError, match="lease is live"):
        replay(h.state, h.queue, start.run_id, stuck=True)
    h.now += 31
    assert replay(h.state, h.queue, start.run_id, stuck=True)["step_id"] == "first"
    h.run_all()
    run = h.state.get_run(start.run_id)
    assert run is not None and run["status"] == "SUCCEEDED"
    assert [c[0] for c in h.echo.calls] == ["first", "second"]
    assert h.runner.execute(message).status == "SKIPPED"  # the old message, had it come back
