"""Rate limits in the engine: budget waits that use no attempt, day-limit parking and its sweeper.

The runner is driven like SQS drives it (one receive = one ``execute`` with its receive count);
sends go to a recording SQS client so the delays and copies can be checked exactly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from clientary_xero.connectors import base
from clientary_xero.connectors.base import ActionContext, ActionSpec
from clientary_xero.engine import runs as R
from clientary_xero.engine.intake import Intake, TriggerEvent
from clientary_xero.engine.runner import StepRunner, resume_parked
from clientary_xero.errors import RetryableError
from clientary_xero.local import cli
from clientary_xero.local.environment import LocalEnvironment
from clientary_xero.settings import get_settings, reset_settings
from clientary_xero.storage.queue import StepQueue
from clientary_xero.storage.ratelimit import BudgetExceeded
from clientary_xero.storage.state import StateStore
from clientary_xero.storage.workflows import WorkflowStore
from clientary_xero.usecases.steps import StepMessage, reset_runner, run_step
from clientary_xero.workflows.validate import parse_workflow

TRIGGER = "clientary.new_invoice"
QUEUE, DLQ = "https://sqs.local/xero", "https://sqs.local/xero-dlq"


class NoInput(BaseModel):
    pass


class Limited:
    """An action whose calls meet rate limits as planned: budget, day, fail (503) or ok."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.calls: list[int] = []

    def __call__(self, ctx: ActionContext, data: NoInput) -> dict[str, Any]:
        self.calls.append(ctx.attempt)
        mode = self.plan.pop(0) if self.plan else "ok"
        if mode == "budget":
            raise BudgetExceeded("Xero's minute limit is reached", delay_seconds=20, limit="minute")
        if mode == "day":
            raise RetryableError("Xero rate limit reached (day)", delay_seconds=3600, status=429, limit="day")
        if mode == "fail":
            raise RetryableError("Xero failed (503)", delay_seconds=30, status=503)
        return {"ok": True}


class RecordingSqs:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], int]] = []
        self.visibility: list[int] = []

    def send_message(self, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0) -> None:
        self.sent.append((QueueUrl, json.loads(MessageBody), DelaySeconds))

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        for entry in Entries:  # the intake sends first steps in batches
            self.send_message(QueueUrl, entry["MessageBody"], entry.get("DelaySeconds", 0))
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        self.visibility.append(VisibilityTimeout)

    def take(self) -> list[tuple[str, dict[str, Any], int]]:
        sent, self.sent = self.sent, []
        return sent


class Engine:
    def __init__(self, limited: Limited) -> None:
        self.limited = limited
        self.now = 1_800_000_000.0
        self.state = StateStore(clock=lambda: self.now)
        self.sqs = RecordingSqs()
        self.queue = StepQueue({"xero": QUEUE}, sqs=self.sqs, dead_letter_urls={"xero": DLQ})
        self.runner = StepRunner(self.state, self.queue, get_settings())
        workflows = WorkflowStore()
        workflows.put(
            parse_workflow(
                {
                    "id": "wf",
                    "trigger": TRIGGER,
                    "steps": [{"id": "s", "action": "test.limited", "input": {}}],
                }
            )
        )
        intake = Intake(workflows, self.state, self.queue, get_settings())
        (self.start,) = intake.start_runs(TriggerEvent(TRIGGER, {"id": 1}, "1", "poll"))
        ((_, self.message, _),) = self.sqs.take()

    def run(self) -> dict[str, Any]:
        run = self.state.get_run(self.start.run_id)
        assert run is not None
        return run

    def step(self) -> dict[str, Any]:
        (step,) = self.state.get_steps(self.start.run_id)
        return step


@pytest.fixture
def engine(aws: Any) -> Iterator[Engine]:  # MAX_ATTEMPTS is 3 with the aws fixture
    limited = Limited()
    base.registry()["test.limited"] = ActionSpec("test.limited", "xero", NoInput, limited)
    try:
        yield Engine(limited)
    finally:
        base.registry().pop("test.limited", None)


def test_budget_waits_resend_the_message_with_a_delay_and_use_no_attempt(engine: Engine) -> None:
    engine.limited.plan = ["budget"] * 6  # twice MAX_ATTEMPTS
    message = engine.message
    for wait in range(1, 7):
        outcome = engine.runner.execute(message, receive_count=1)  # each copy is a fresh message
        assert outcome.status == "DELAYED"
        ((url, message, delay),) = engine.sqs.take()  # re-sent, the current one acknowledged
        assert (url, delay) == (QUEUE, 20)
        # The copy names the step (it carries no run: the step was claimed, so it reads the run).
        ids = {k: v for k, v in engine.message.items() if k != "carried"}
        assert message == {**ids, "retries": 0, "waits": wait}
        assert engine.step()["status"] == "WAITING" and engine.step()["attempts"] == 0
    assert engine.runner.execute(message, receive_count=1).status == "SUCCEEDED"
    assert engine.limited.calls == [1] * 7  # every try was the step's first attempt
    assert engine.run()["status"] == "SUCCEEDED" and engine.step()["attempts"] == 1


def test_failures_and_waits_together_get_exactly_max_attempts_then_the_dlq(engine: Engine) -> None:
    engine.limited.plan = ["fail", "budget", "fail", "fail"]
    with pytest.raises(RetryableError):
        engine.runner.execute(engine.message, receive_count=1)  # real attempt 1 (SQS visibility)
    assert engine.runner.execute(engine.message, receive_count=2).status == "DELAYED"
    ((_, copy, _),) = engine.sqs.take()
    assert copy["retries"] == 1  # the copy remembers the attempt SQS counted on the original
    with pytest.raises(RetryableError):
        engine.runner.execute(copy, receive_count=1)  # real attempt 2
    outcome = engine.runner.execute(copy, receive_count=2)  # real attempt 3 = MAX_ATTEMPTS
    assert outcome.status == "FAILED"
    run = engine.run()
    assert run["status"] == "FAILED" and run["error"]["message"].startswith("gave up after 3 attempts")
    # The runner moves the message to the DLQ itself (SQS has counted only 2 receives of this copy).
    dead = {"run_id": run["run_id"], "step_id": "s", "generation": 0, "dead_lettered": True}
    assert engine.sqs.take() == [(DLQ, dead, 0)]
    assert engine.limited.calls == [1, 2, 2, 3]  # attempts as the action saw them


def test_the_original_message_reaches_the_dlq_marked_for_a_redrive(engine: Engine) -> None:
    engine.limited.plan = ["fail"] * 3
    for receive in (1, 2):
        with pytest.raises(RetryableError):
            engine.runner.execute(engine.message, receive_count=receive)
    assert engine.runner.execute(engine.message, receive_count=3).status == "FAILED"  # acknowledged
    assert engine.run()["status"] == "FAILED"
    # Moved by the runner, not by SQS (maxReceiveCount), so the body says it was dead-lettered.
    ids = {k: v for k, v in engine.message.items() if k != "carried"}  # a redrive reads the run
    assert engine.sqs.take() == [(DLQ, {**ids, "dead_lettered": True}, 0)]


def test_a_minute_429_from_xero_waits_for_retry_after_on_the_queue(engine: Engine) -> None:
    def xero_minute_429(ctx: ActionContext, data: NoInput) -> dict[str, Any]:
        raise RetryableError("Xero rate limit reached (minute)", delay_seconds=42, status=429, limit="minute")

    base.registry()["test.limited"] = ActionSpec("test.limited", "xero", NoInput, xero_minute_429)
    with pytest.raises(RetryableError):
        run_step(
            StepMessage(**engine.message),
            app="xero",
            receive_count=1,
            receipt_handle="h",
            runner=engine.runner,
        )
    assert engine.sqs.visibility == [42]  # hidden for Retry-After seconds
    assert engine.step()["status"] == "RETRYING" and engine.step()["error"]["delay_seconds"] == 42


def test_the_day_limit_parks_the_run_until_it_resets_then_the_sweeper_resumes_it(engine: Engine) -> None:
    engine.limited.plan = ["day"]
    outcome = engine.runner.execute(engine.message, receive_count=1)
    assert outcome.status == "WAITING"  # acknowledged: no error raised, nothing re-sent
    assert engine.sqs.take() == [] and engine.sqs.visibility == []
    run = engine.run()
    assert run["status"] == "WAITING" and run["resume_at"] == R.iso(engine.now + 3600)
    assert "day" in run["wait_reason"]
    assert engine.step()["status"] == "WAITING" and engine.step()["attempts"] == 0

    engine.now += 1800
    assert resume_parked(engine.state, engine.queue) == []  # not due yet
    assert engine.run()["status"] == "WAITING"
    engine.now += 1801
    assert resume_parked(engine.state, engine.queue) == [{"run_id": run["run_id"], "step_id": "s"}]
    ((url, message, delay),) = engine.sqs.take()
    assert url == QUEUE and delay == 0 and message["run_id"] == run["run_id"]
    assert engine.run()["status"] == "QUEUED"
    assert resume_parked(engine.state, engine.queue) == []  # resumed once

    assert engine.runner.execute(message, receive_count=1).status == "SUCCEEDED"
    run = engine.run()
    assert run["status"] == "SUCCEEDED" and "resume_at" not in run
    assert engine.step()["attempts"] == 1


def test_a_parked_run_that_was_failed_meanwhile_is_not_resumed(engine: Engine) -> None:
    engine.limited.plan = ["day"]
    engine.runner.execute(engine.message, receive_count=1)
    engine.state.update_run(engine.start.run_id, {"status": "FAILED"})
    engine.now += 3601
    assert resume_parked(engine.state, engine.queue) == []
    assert engine.sqs.take() == []
    assert engine.state.due_parked(engine.now) == []  # the marker is gone


# ------------------------------------------------------------------------------ through the stack
SAMPLE_WORKFLOW = Path(cli.__file__).parent / "samples" / "invoice_to_xero.yaml"


@pytest.fixture
def env() -> Iterator[LocalEnvironment]:
    from clientary_xero.workflows.loader import read_document

    with LocalEnvironment(max_attempts=3) as e:
        reset_settings()
        reset_runner()
        e.put_workflow(read_document(SAMPLE_WORKFLOW))
        yield e


def new_invoice(env: LocalEnvironment) -> None:
    client = env.clientary.seed_client("Acme Builders")
    env.clientary.add_invoice(client["id"], [{"title": "Survey", "quantity": 2, "price": 95.0}], status=1)


def test_a_day_limit_429_from_xero_parks_the_run_and_it_succeeds_after_the_reset(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    env.poll(TRIGGER)
    new_invoice(env)
    env.xero.fail_next(429, headers={"Retry-After": "7200", "X-Rate-Limit-Problem": "day"})
    env.poll(TRIGGER)
    env.drain()  # returns: the message was acknowledged, nothing waits on the queue
    (run,) = env.state.list_runs()
    assert run["status"] == "WAITING"
    assert env.dlq_messages("xero") == []
    assert env.xero.invoices(env.xero_tenant_id()) == []

    assert cli.main(["runs", "list", "--status", "WAITING"]) == 0
    listed = capsys.readouterr().out
    assert run["run_id"] in listed and f"resumes {run['resume_at']}" in listed
    assert cli.main(["runs", "show", run["run_id"]]) == 0
    assert f"resumes at {run['resume_at']}" in capsys.readouterr().out

    assert env.resume_parked() == {"resumed": 0, "runs": []}  # the scheduled sweeper: not due yet
    assert env.resume_parked(at=time.time() + 7201) == {"resumed": 1, "runs": [run["run_id"]]}
    env.drain()
    (run,) = env.state.list_runs()
    assert run["status"] == "SUCCEEDED"
    assert len(env.xero.invoices(env.xero_tenant_id())) == 1
    steps = {s["step_id"]: s for s in env.state.get_steps(run["run_id"])}
    assert steps["contact"]["attempts"] == 1  # the parked try was not counted


def test_the_scheduled_sweeper_resumes_a_run_when_its_time_has_come(env: LocalEnvironment) -> None:
    env.poll(TRIGGER)
    new_invoice(env)
    env.xero.fail_next(429, headers={"Retry-After": "1", "X-Rate-Limit-Problem": "day"})
    env.poll(TRIGGER)
    env.drain()
    (run,) = env.state.list_runs()
    assert run["status"] == "WAITING"
    time.sleep(1.1)  # Xero's daily limit resets (Retry-After: 1)
    assert env.resume_parked() == {"resumed": 1, "runs": [run["run_id"]]}  # the Lambda, on its schedule
    env.drain()
    assert env.state.list_runs()[0]["status"] == "SUCCEEDED"
    assert len(env.xero.invoices(env.xero_tenant_id())) == 1


def test_the_sweeper_works_through_every_page_of_due_markers(engine: Engine) -> None:
    for n in range(3):  # markers whose runs are gone (expired): dropped, page after page
        engine.state.put_parked({"run_id": f"gone-{n}", "step_id": "s"}, app="xero", resume_at=engine.now)
    engine.limited.plan = ["day"]
    engine.runner.execute(engine.message, receive_count=1)
    engine.now += 3601
    resumed = resume_parked(engine.state, engine.queue, limit=1)
    assert resumed == [{"run_id": engine.start.run_id, "step_id": "s"}]
    assert engine.state.due_parked(engine.now) == []


def test_a_rate_wait_carries_its_reserved_instant_and_is_admitted_on_arrival(engine: Engine) -> None:
    from clientary_xero.storage.ratelimit import RateBudget

    def sleep(seconds: float) -> None:
        engine.now += seconds

    def budget() -> RateBudget:  # each caller its own, as each Lambda has
        return RateBudget(
            engine.state, clock=lambda: engine.now, sleep=sleep, per_minute=5, burst=1, wait_seconds=2
        )

    def call_xero(ctx: ActionContext, data: NoInput) -> dict[str, Any]:
        shared = budget()
        shared.release(shared.acquire("tenant"))
        return {"ok": True}

    base.registry()["test.limited"] = ActionSpec("test.limited", "xero", NoInput, call_xero)
    budget().acquire("tenant")  # another Lambda's call: the next instant is 12.2 s away (61 s / 5)
    assert engine.runner.execute(engine.message, receive_count=1).status == "DELAYED"
    ((_, copy, delay),) = engine.sqs.take()
    reserved = copy["reservation"]["instants"]
    assert copy["reservation"]["scope"] == "tenant" and reserved == [int(engine.now * 1000) + 12_200]
    assert delay == 11  # due a second early; the last second is slept in the Lambda
    with pytest.raises(BudgetExceeded) as newer:
        budget().acquire("tenant")  # a newcomer meanwhile queues behind the reservation
    assert newer.value.reservation is not None and newer.value.reservation.instants[0] > reserved[0]
    engine.now += delay
    outcome = engine.runner.execute(copy, receive_count=1)
    assert outcome.status == "SUCCEEDED"  # honoured: not sent back behind the newcomer
    assert engine.sqs.take() == [] and engine.now * 1000 >= reserved[0]
