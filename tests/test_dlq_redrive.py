"""Issue 7, point 12: a DLQ redrive does what the person redriving expects, and a step that
succeeded leaves no message in the DLQ.

Driven through the local stack: the real trigger and action handlers, the engine and storage in
moto, SQS queues with the template's redrive policy (maxReceiveCount = MAX_ATTEMPTS = 3 here) and
the Xero sandbox. A console redrive moves each DLQ message back to its source queue, body as it
was; its receive count starts again at 1.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from clientary_xero.local import cli
from clientary_xero.local.environment import LocalEnvironment
from clientary_xero.settings import reset_settings
from clientary_xero.usecases.steps import reset_runner

TRIGGER = "clientary.new_invoice"
WORKFLOW = Path(cli.__file__).parent / "samples" / "invoice_to_xero.yaml"
LEASE_SECONDS = 3


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalEnvironment]:
    from clientary_xero.workflows.loader import read_document

    with LocalEnvironment(max_attempts=3) as e:
        # A dead worker's lease ends within the test (the default is 90 s).
        monkeypatch.setenv("STEP_LEASE_SECONDS", str(LEASE_SECONDS))
        reset_settings()
        reset_runner()
        e.put_workflow(read_document(WORKFLOW))
        yield e


def sqs() -> Any:
    return boto3.client("sqs", region_name="us-east-1")


def start_run(env: LocalEnvironment) -> None:
    env.poll(TRIGGER)  # the first poll sets the watermark
    client = env.clientary.seed_client("Acme Builders")
    env.clientary.add_invoice(client["id"], [{"title": "Survey", "quantity": 2, "price": 95.0}], status=1)
    env.poll(TRIGGER)


def only_run(env: LocalEnvironment) -> dict[str, Any]:
    (run,) = env.state.list_runs()
    return run


def redrive(env: LocalEnvironment) -> int:
    """What "Start DLQ redrive" in the SQS console does: every DLQ message back to its source queue."""
    assert env.resources is not None
    moved = 0
    while True:
        messages = sqs().receive_message(QueueUrl=env.resources.xero_dlq_url, MaxNumberOfMessages=10)
        if not messages.get("Messages"):
            return moved
        for message in messages["Messages"]:
            sqs().send_message(QueueUrl=env.resources.xero_queue_url, MessageBody=message["Body"])
            sqs().delete_message(QueueUrl=env.resources.xero_dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1


def fail_the_invoice_step(env: LocalEnvironment, status: int = 503, **fault: Any) -> Any:
    """A drain hook: once the contact step is done, Xero fails the invoice step's calls."""
    armed = {"done": False}

    def on_batch(batch: dict[str, Any]) -> None:
        if not armed["done"] and any(m["step_id"] == "contact" for m in batch["messages"]):
            env.xero.fail_next(status, **fault)
            armed["done"] = True

    return on_batch


def contacts_and_invoices(env: LocalEnvironment) -> tuple[int, int]:
    tenant = env.xero_tenant_id()
    return len(env.xero.contacts(tenant)), len(env.xero.invoices(tenant))


# ---------------------------------------------------------------------------------- redrives
def test_redriving_a_run_that_gave_up_on_retryable_errors_resumes_it_and_it_succeeds(
    env: LocalEnvironment,
) -> None:
    # Given a run whose invoice step met Xero 503s on all of its attempts
    start_run(env)
    env.drain(on_batch=fail_the_invoice_step(env, count=3))
    run = only_run(env)
    assert (run["status"], run["failed_step"]) == ("FAILED", "invoice")
    assert run["error"]["type"] == "retryable" and "gave up after 3 attempts" in run["error"]["message"]
    assert len(env.dlq_messages("xero")) == 1  # the DLQ alarm fires
    assert contacts_and_invoices(env) == (1, 0)

    # When the person answering the alarm redrives the DLQ from the console (the fault is gone)
    assert redrive(env) == 1
    env.drain()

    # Then the run resumes from its failed step and succeeds, with nothing made twice
    run = only_run(env)
    assert run["status"] == "SUCCEEDED" and run["generation"] == 1
    assert contacts_and_invoices(env) == (1, 1)
    steps = {s["step_id"]: s for s in env.state.get_steps(run["run_id"])}
    assert steps["contact"]["attempts"] == 1  # the succeeded step did not run again
    assert steps["invoice"]["output"]["InvoiceID"] == env.xero.invoices(env.xero_tenant_id())[0]["InvoiceID"]
    assert env.dlq_messages("xero") == []

    # And a second redrive of the same message (it was in the DLQ twice) changes nothing
    assert env.resources is not None
    dead = {"run_id": run["run_id"], "step_id": "invoice", "generation": 0, "dead_lettered": True}
    sqs().send_message(QueueUrl=env.resources.xero_queue_url, MessageBody=json.dumps(dead))
    env.drain()
    assert only_run(env)["status"] == "SUCCEEDED" and contacts_and_invoices(env) == (1, 1)


def test_a_redriven_run_that_fails_again_is_back_in_the_dlq_and_can_be_redriven_again(
    env: LocalEnvironment,
) -> None:
    start_run(env)
    env.drain(on_batch=fail_the_invoice_step(env, count=3))
    env.xero.fail_next(503, count=3)  # still failing when redriven
    assert redrive(env) == 1
    env.drain()
    run = only_run(env)
    assert (run["status"], run["generation"]) == ("FAILED", 1)
    assert [m["generation"] for m in env.dlq_messages("xero")] == [1]
    assert redrive(env) == 1
    env.drain()
    assert only_run(env)["status"] == "SUCCEEDED"
    assert contacts_and_invoices(env) == (1, 1)


def test_redriving_a_permanently_failed_run_leaves_it_failed_and_says_use_replay(
    env: LocalEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a run that failed permanently: Xero refused the invoice (a validation error)
    start_run(env)
    refusal = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": "Account code '200' is not a valid code."}]}],
    }
    env.drain(on_batch=fail_the_invoice_step(env, 400, body=refusal))
    run = only_run(env)
    assert run["status"] == "FAILED" and run["error"]["type"] == "permanent"
    assert env.dlq_messages("xero") == []  # a permanent failure is not retried, so not dead-lettered
    # … and a dead-lettered message of it anyway (the step had given up once before the refusal,
    # the run not marked FAILED yet, e.g. a time-out between moving the message and failing the run)
    assert env.resources is not None
    dead = {"run_id": run["run_id"], "step_id": "invoice", "generation": 0, "dead_lettered": True}
    sqs().send_message(QueueUrl=env.resources.xero_dlq_url, MessageBody=json.dumps(dead))

    # When the DLQ is redriven
    assert redrive(env) == 1
    with caplog.at_level(logging.WARNING, logger="clientary_xero.engine.runner"):
        env.drain()

    # Then the run stays FAILED with its reason, the message is acknowledged (not back in the DLQ)
    after = only_run(env)
    assert (after["status"], after["generation"], after["error"]) == ("FAILED", 0, run["error"])
    assert env.dlq_messages("xero") == [] and contacts_and_invoices(env) == (1, 0)
    assert any(
        "failed permanently" in r.getMessage() and "runs replay" in r.getMessage() for r in caplog.records
    )


def test_stale_messages_never_resume_a_run(env: LocalEnvironment) -> None:
    from clientary_xero.engine.runner import StepRunner

    start_run(env)
    env.drain(on_batch=fail_the_invoice_step(env, count=3))
    run = only_run(env)
    runner = StepRunner.from_settings()
    message = {"run_id": run["run_id"], "step_id": "invoice", "generation": 0}
    # A copy of the step message that was never dead-lettered (SQS at-least-once): the run stays FAILED
    assert runner.execute(message).status == "SKIPPED"
    assert only_run(env)["status"] == "FAILED"
    # A dead-lettered message of another step than the failed one changes nothing either
    other = {**message, "step_id": "contact", "dead_lettered": True}
    assert runner.execute(other).status == "SKIPPED"
    assert only_run(env)["generation"] == 0
    # The real one resumes it once (a new generation); a duplicate of it at most queues the
    # resumed step once more, which its claim dedupes
    assert runner.execute({**message, "dead_lettered": True}).status == "RESUMED"
    runner.execute({**message, "dead_lettered": True})
    assert only_run(env)["generation"] == 1
    env.drain()
    assert only_run(env)["status"] == "SUCCEEDED" and contacts_and_invoices(env) == (1, 1)
    assert runner.execute({**message, "dead_lettered": True}).detail == "message from before a replay"
    # A message of a SUCCEEDED run is acknowledged and dropped
    outcome = runner.execute({**message, "generation": 1, "dead_lettered": True})
    assert outcome.status == "SKIPPED" and "SUCCEEDED" in outcome.detail


def test_a_redrive_whose_resume_message_could_not_be_sent_resumes_on_its_next_receive(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.engine.runner import StepRunner
    from clientary_xero.errors import RetryableError
    from clientary_xero.usecases.steps import StepMessage, run_step

    # Given a run that gave up on retryable errors, and SQS refusing the next send once
    start_run(env)
    env.drain(on_batch=fail_the_invoice_step(env, count=3))
    run = only_run(env)
    runner = StepRunner.from_settings()
    real_send = runner.queue.send
    refused = {"left": 1}

    def send(app: str, message: dict[str, Any], *, delay_seconds: int = 0) -> None:
        if refused["left"]:
            refused["left"] -= 1
            raise RetryableError("could not enqueue a step (InternalError)", delay_seconds=5)
        real_send(app, message, delay_seconds=delay_seconds)

    monkeypatch.setattr(runner.queue, "send", send)
    redriven = StepMessage(run_id=run["run_id"], step_id="invoice", generation=0, dead_lettered=True)

    # When the redriven message resumes the run but the resumed step's message is not sent
    with pytest.raises(RetryableError):
        run_step(redriven, app="xero", receive_count=1, receipt_handle="h", runner=runner)
    assert only_run(env)["generation"] == 1  # replay wrote the run before its send failed

    # Then the redriven message, back for another try, sends it, and the run completes once
    run_step(redriven, app="xero", receive_count=2, receipt_handle="h", runner=runner)
    env.drain()
    assert only_run(env)["status"] == "SUCCEEDED"
    assert contacts_and_invoices(env) == (1, 1)


def test_a_second_redriven_copy_working_from_a_stale_read_leaves_the_resumed_step_alone(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.engine.runner import StepRunner

    # Given a run that gave up, and two copies of its dead-lettered message redriven at once
    start_run(env)
    env.drain(on_batch=fail_the_invoice_step(env, count=3))
    failed = only_run(env)
    redriven = {"run_id": failed["run_id"], "step_id": "invoice", "generation": 0, "dead_lettered": True}
    assert StepRunner.from_settings().execute(redriven).status == "RESUMED"  # the first copy
    # … a worker runs the resumed step now (its lease is live) …
    env.state.claim_step(failed["run_id"], "invoice", owner="worker", lease_seconds=60, seq=1)

    # When the second copy acts on what it read before the first resumed the run (still FAILED)
    late = StepRunner.from_settings()
    monkeypatch.setattr(late.state, "get_run", lambda run_id: dict(failed))
    monkeypatch.setattr(late.state, "get_run_and_steps", lambda run_id: (dict(failed), []))
    outcome = late.execute(redriven)

    # Then it resumes nothing, and the worker keeps its lease (so its checkpoint counts)
    assert outcome.status == "SKIPPED"
    step = env.state.get_step(failed["run_id"], "invoice")
    assert step is not None and (step["status"], step.get("lease_owner")) == ("RUNNING", "worker")
    env.state.finish_step(failed["run_id"], "invoice", owner="worker", status="SUCCEEDED", output={"ok": 1})


# ------------------------------------------------------------------------------ false alarms
def test_a_duplicate_of_a_step_whose_lease_is_held_does_not_end_in_the_dlq(env: LocalEnvironment) -> None:
    # Given a worker that took the contact step and died (a Lambda time-out) holding its lease:
    # its message comes back after the visibility timeout …
    assert env.resources is not None
    start_run(env)
    (taken,) = sqs().receive_message(
        QueueUrl=env.resources.xero_queue_url, VisibilityTimeout=LEASE_SECONDS + 1
    )["Messages"]
    body = json.loads(taken["Body"])
    env.state.claim_step(body["run_id"], "contact", owner="timed-out", lease_seconds=LEASE_SECONDS, seq=0)
    # … and SQS delivers a duplicate of that message meanwhile
    sqs().send_message(QueueUrl=env.resources.xero_queue_url, MessageBody=taken["Body"])

    # When the queue is worked off (the duplicate meets the live lease, every receive)
    env.drain()

    # Then the run succeeds once, and the duplicate was acknowledged, not dead-lettered
    run = only_run(env)
    assert run["status"] == "SUCCEEDED"
    assert contacts_and_invoices(env) == (1, 1)
    assert env.dlq_messages("xero") == []  # no false alarm
