"""Issue 7, points 2, 7 (intake), 9 and 11: one record never stops a trigger.

A poisoned filter, a record too big for a run item, an odd record, a storage refusal: each is that
record's FAILED run, the others run, the poll's cursor passes it. Only a retryable failure holds a
record before the cursor. Records of a disabled workflow are SKIPPED runs that start later. First
steps go out with SendMessageBatch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from clientary_xero.engine.intake import Intake, TriggerEvent
from clientary_xero.engine.runner import StepRunner, replay
from clientary_xero.errors import RetryableError
from clientary_xero.settings import get_settings
from clientary_xero.storage.payloads import PayloadStore
from clientary_xero.storage.queue import StepQueue
from clientary_xero.storage.state import StateStore
from clientary_xero.storage.workflows import WorkflowStore
from clientary_xero.workflows import expressions
from clientary_xero.workflows.validate import parse_workflow
from tests.engine_helpers import Echo, echo_action, queued

TRIGGER = "clientary.new_invoice"
# The filter: an invoice of 100,000 makes it $fromMillis(1e20), an OSError inside the
# evaluator (an ordinary total gives a date far in the future, which is fine).
POISON = "{% $exists($fromMillis(invoice.total_cost * 1e15)) %}"


def workflow(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "wf",
        "trigger": TRIGGER,
        "steps": [{"id": "first", "action": "test.echo", "input": {"value": "{% invoice.number %}"}}],
    }
    doc.update(overrides)
    return doc


def invoice(record_id: int, total: float = 1e-6, **extra: Any) -> TriggerEvent:
    record = {"id": record_id, "number": f"INV-{record_id}", "total_cost": total, **extra}
    return TriggerEvent(TRIGGER, record, str(record_id), "poll")


class RecordingSqs:
    """An SQS client that counts the calls the intake makes (every message accepted)."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.singles: list[dict[str, Any]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append([json.loads(e["MessageBody"]) for e in Entries])
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def send_message(self, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0) -> None:
        self.singles.append(json.loads(MessageBody))


class Harness:
    def __init__(self, resources: Any, echo: Echo) -> None:
        self.resources = resources
        self.echo = echo
        self.state = StateStore()
        self.workflows = WorkflowStore()
        self.queue = StepQueue()
        self.intake = Intake(self.workflows, self.state, self.queue, get_settings())

    def put(self, doc: dict[str, Any]) -> None:
        self.workflows.put(parse_workflow(doc))

    def messages(self) -> list[dict[str, Any]]:
        return queued(self.resources.xero_queue_url)

    def run(self, run_id: str) -> dict[str, Any]:
        run = self.state.get_run(run_id)
        assert run is not None
        return run


@pytest.fixture
def h(aws: Any) -> Iterator[Harness]:
    with echo_action() as echo:
        yield Harness(aws, echo)


# ------------------------------------------------------------------ point 2: the intake never raises
def test_a_filter_that_raises_in_the_evaluator_is_that_records_failed_run(h: Harness) -> None:
    h.put(workflow(filter=POISON))
    outcomes = h.intake.start_runs_many([invoice(1), invoice(2, total=100_000), invoice(3)])
    statuses = [[s.status for s in o.starts] for o in outcomes]
    assert statuses == [["QUEUED"], ["FAILED"], ["QUEUED"]]
    assert all(o.retry is None for o in outcomes)
    failed = h.run(outcomes[1].starts[0].run_id)
    assert failed["error"]["message"].startswith("filter: ")
    assert sorted(m["run_id"] for m in h.messages()) == sorted(outcomes[i].starts[0].run_id for i in (0, 2))


def test_any_exception_of_the_evaluator_in_a_filter_or_branch_is_a_failed_run_naming_the_place(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever the evaluator wraps itself, the intake must not let a surprise through.
    real = expressions.evaluate

    def evaluate(source: str, context: Any, **kwargs: Any) -> Any:
        if "explode" in source:
            raise OSError(75, "Value too large for defined data type")
        return real(source, context, **kwargs)

    monkeypatch.setattr(expressions, "evaluate", evaluate)
    h.put(workflow(id="filtered", filter="{% $explode() %}"))
    h.put(
        workflow(
            id="branched",
            steps=[{"if": "{% $explode() %}", "then": [{"id": "a", "action": "test.echo", "input": {}}]}],
        )
    )
    (outcome,) = h.intake.start_runs_many([invoice(1)])
    errors = {s.workflow_id: h.run(s.run_id)["error"]["message"] for s in outcome.starts}
    assert errors == {
        "filtered": "filter: OSError: [Errno 75] Value too large for defined data type",
        "branched": "branch 'if_1'.if: OSError: [Errno 75] Value too large for defined data type",
    }
    assert h.messages() == []


def test_an_unexpected_storage_refusal_of_one_record_is_its_failed_run(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.put(workflow())
    real = h.state.create_run

    def refuse_once(run: dict[str, Any]) -> bool:
        if run["record_id"] == "2" and run["status"] == "QUEUED":
            raise ValueError("an attribute DynamoDB will not take")
        return real(run)

    monkeypatch.setattr(h.state, "create_run", refuse_once)
    outcomes = h.intake.start_runs_many([invoice(1), invoice(2), invoice(3)])
    assert [[s.status for s in o.starts] for o in outcomes] == [["QUEUED"], ["FAILED"], ["QUEUED"]]
    assert h.run(outcomes[1].starts[0].run_id)["error"]["message"] == (
        "ValueError: an attribute DynamoDB will not take"
    )


def test_a_retryable_failure_of_one_record_asks_for_it_again_and_the_others_run(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.put(workflow())
    real = h.state.create_run

    def throttled(run: dict[str, Any]) -> bool:
        if run["record_id"] == "2":
            raise RetryableError("DynamoDB is busy (ThrottlingException)", delay_seconds=5)
        return real(run)

    monkeypatch.setattr(h.state, "create_run", throttled)
    outcomes = h.intake.start_runs_many([invoice(1), invoice(2), invoice(3)])
    assert [o.retry is not None for o in outcomes] == [False, True, False]
    assert outcomes[1].starts == []  # no FAILED run: the record is delivered again instead
    assert len(h.messages()) == 2
    with pytest.raises(RetryableError):  # the one-record entry point raises it (push answers 503)
        h.intake.start_runs(invoice(2))


# ------------------------------------------------------------------ point 9: a record too big to store
def big_invoice(record_id: int, lines: int = 2_800) -> TriggerEvent:
    items = [
        {"title": f"Line {n} " + "x" * 120, "quantity": 1, "price": 1.5, "item_type": "Service"}
        for n in range(lines)
    ]
    return invoice(record_id, invoice_items=items)


def test_a_record_over_the_dynamodb_item_limit_is_stored_in_the_payload_bucket_and_runs(
    h: Harness,
) -> None:
    # The step's input (every line) is over an item's worth too: it goes to the bucket as well.
    h.put(workflow(steps=[{"id": "first", "action": "test.echo", "input": {"value": "{% invoice %}"}}]))
    big = big_invoice(2)
    assert len(json.dumps(big.record, separators=(",", ":"))) > 420 * 1024
    outcomes = h.intake.start_runs_many([invoice(1), big, invoice(3)])
    assert [[s.status for s in o.starts] for o in outcomes] == [["QUEUED"]] * 3
    run_id = outcomes[1].starts[0].run_id
    item = (
        boto3.resource("dynamodb", region_name="us-east-1")
        .Table(h.resources.state_table)
        .get_item(Key={"pk": f"RUN#{run_id}", "sk": "RUN"})["Item"]
    )
    assert "record" not in item and item["record_ref"].startswith(f"runs/{run_id}/record-")
    assert h.run(run_id)["record"] == big.record  # loaded back transparently
    runner = StepRunner(h.state, h.queue, get_settings())
    for message in h.messages():
        assert runner.execute(message).status == "SUCCEEDED"
    (step,) = h.state.get_steps(run_id)
    assert step["input"]["value"] == big.record and step["output"]["value"] == big.record
    keys = {
        o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=h.resources.payload_bucket)["Contents"]
    }
    assert sorted(k.rsplit("-", 1)[0] for k in keys) == [
        f"runs/{run_id}/record",
        f"runs/{run_id}/steps/first/input",
        f"runs/{run_id}/steps/first/output",
    ]


def test_without_a_payload_bucket_a_record_over_the_item_limit_fails_its_run_compacted(
    h: Harness,
) -> None:
    h.put(workflow())
    h.state = StateStore(payloads=PayloadStore(bucket=""))
    intake = Intake(h.workflows, h.state, h.queue, get_settings())
    outcomes = intake.start_runs_many([invoice(1), big_invoice(2), invoice(3)])
    assert [[s.status for s in o.starts] for o in outcomes] == [["QUEUED"], ["FAILED"], ["QUEUED"]]
    run = h.run(outcomes[1].starts[0].run_id)
    assert run["record"] == {"id": "2"} and run["record_omitted"] is True
    message = run["error"]["message"]
    assert message.startswith("the record is ") and "over DynamoDB's 400 KB item limit" in message
    assert len(h.messages()) == 2


# ------------------------------------------------------------------ point 11: SKIPPED, then started
def test_a_skipped_record_is_started_by_replay_once_the_workflow_is_enabled(h: Harness) -> None:
    h.put(workflow(enabled=False))
    (start,) = h.intake.start_runs(invoice(1))
    assert start.status == "SKIPPED" and h.messages() == []
    assert [r["run_id"] for r in h.state.list_runs(status="SKIPPED")] == [start.run_id]
    assert h.intake.start_runs(invoice(1))[0].detail == "duplicate delivery"  # still disabled

    h.put(workflow())  # enabled again
    result = replay(
        h.state, h.queue, start.run_id, workflow_document=parse_workflow(workflow()).to_document()
    )
    assert (result["status"], result["step_id"]) == ("QUEUED", "first")
    assert h.messages() == [{"run_id": start.run_id, "step_id": "first", "generation": 0}]
    run = h.run(start.run_id)
    assert run["status"] == "QUEUED" and run["enqueued"] is True and "skip_reason" not in run
    outcome = StepRunner(h.state, h.queue, get_settings()).execute(
        {"run_id": start.run_id, "step_id": "first", "generation": 0}
    )
    assert outcome.status == "SUCCEEDED" and h.run(start.run_id)["status"] == "SUCCEEDED"


def test_a_skipped_record_started_later_still_meets_the_filter(h: Harness) -> None:
    h.put(workflow(enabled=False, filter="{% invoice.total_cost > 100 %}"))
    (start,) = h.intake.start_runs(invoice(1, total=5))
    h.put(workflow(filter="{% invoice.total_cost > 100 %}"))
    result = replay(h.state, h.queue, start.run_id)
    assert (result["status"], result["step_id"]) == ("FILTERED", None)
    assert h.messages() == [] and h.run(start.run_id)["status"] == "FILTERED"


def test_a_skipped_record_delivered_again_to_the_enabled_workflow_starts(h: Harness) -> None:
    h.put(workflow(enabled=False))
    (skipped,) = h.intake.start_runs(invoice(1))
    h.put(workflow())
    (started,) = h.intake.start_runs(TriggerEvent(TRIGGER, invoice(1).record, "1", "backfill"))
    assert (started.run_id, started.status, started.created) == (skipped.run_id, "QUEUED", True)
    assert h.messages() == [{"run_id": skipped.run_id, "step_id": "first", "generation": 0}]
    (again,) = h.intake.start_runs(invoice(1))
    assert (again.status, again.created, again.detail) == ("QUEUED", False, "duplicate delivery")


# ------------------------------------------------------------------ point 7: SendMessageBatch
def test_first_steps_go_out_in_batches_of_ten(h: Harness) -> None:
    h.put(workflow())
    sqs = RecordingSqs()
    intake = Intake(h.workflows, h.state, StepQueue(sqs=sqs), get_settings())
    outcomes = intake.start_runs_many([invoice(n) for n in range(1, 26)])
    assert [len(batch) for batch in sqs.batches] == [10, 10, 5] and sqs.singles == []
    assert {m["run_id"] for batch in sqs.batches for m in batch} == {o.starts[0].run_id for o in outcomes}
    # Marked enqueued only after the send: a redelivery does not send them again.
    assert all(h.run(o.starts[0].run_id)["enqueued"] is True for o in outcomes)
    intake.start_runs_many([invoice(n) for n in range(1, 26)])
    assert len(sqs.batches) == 3


def test_a_failed_batch_send_leaves_its_runs_to_the_next_delivery(h: Harness) -> None:
    h.put(workflow())

    class Down(RecordingSqs):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            raise ConnectionError("SQS is down")

    intake = Intake(h.workflows, h.state, StepQueue(sqs=Down()), get_settings())
    outcomes = intake.start_runs_many([invoice(1), invoice(2)])
    assert all(o.retry is not None for o in outcomes)
    assert [h.run(o.starts[0].run_id)["enqueued"] for o in outcomes] == [False, False]
    again = h.intake.start_runs_many([invoice(1), invoice(2)])
    assert [o.starts[0].detail for o in again] == ["re-enqueued an interrupted intake"] * 2
    assert len(h.messages()) == 2


# ------------------------------------------------------------------ through the Lambdas: polls, backfill
TASK_STEP = {
    "id": "task",
    "action": "clientary.create_task",
    "input": {"title": "{% 'Follow up ' & invoice.number %}"},
}


def poll_workflow(**overrides: Any) -> dict[str, Any]:
    return {"id": "follow-up", "trigger": TRIGGER, "steps": [TASK_STEP], **overrides}


def add_invoices(env: Any, totals: list[float], *, big: int | None = None) -> list[dict[str, Any]]:
    """Invoices with one line of each total; ``big``: the index of one with 2,800 lines instead."""
    customer = env.clientary.seed_client("Acme")
    made = []
    for n, total in enumerate(totals):
        if n == big:
            items = [
                {"title": f"Timesheet line {i}: " + "survey and report " * 6, "quantity": 1, "price": 1}
                for i in range(2_800)
            ]
        else:
            items = [{"title": "Work", "quantity": 1, "price": total}]
        made.append(env.clientary.add_invoice(customer["id"], items, status=1))
    return made


def runs_by_record(env: Any) -> dict[str, dict[str, Any]]:
    return {r["record_id"]: r for r in env.state.list_runs(limit=500)}


# The filter, on the one invoice of 10,000,000: $fromMillis(1e20), an OSError in the evaluator.
POLL_POISON = "{% invoice.total > 5000000 ? $exists($fromMillis(invoice.total * 1e13)) : true %}"


def test_a_poisoned_invoice_fails_alone_a_2800_line_one_syncs_and_the_poll_moves_on(
    local_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.settings import reset_settings

    env = local_env
    # The poison is an error in the evaluator, not the time bound: set that far out, so that a
    # loaded machine cannot fail the 2,800-line invoice's filter on time.
    monkeypatch.setenv("EXPRESSION_TIMEOUT_MS", "60000")
    reset_settings()
    env.put_workflow(poll_workflow(filter=POLL_POISON))
    env.poll(TRIGGER)  # the first poll records where to start
    good1, poisoned, big, good2 = add_invoices(env, [1, 10_000_000, 1, 2], big=2)

    polled = env.poll(TRIGGER)
    assert polled["new_records"] == 4 and "retry_later" not in polled
    runs = runs_by_record(env)
    status = {k: v["status"] for k, v in runs.items()}
    assert status == {
        str(good1["id"]): "QUEUED",
        str(poisoned["id"]): "FAILED",
        str(big["id"]): "QUEUED",
        str(good2["id"]): "QUEUED",
    }
    assert runs[str(poisoned["id"])]["error"]["message"].startswith("filter: ")
    assert len(runs[str(big["id"])]["record"]["invoice_items"]) == 2_800
    assert len(json.dumps(runs[str(big["id"])]["record"])) > 432 * 1000
    # The cursor moved past all four: the next poll delivers nothing again.
    assert env.poll(TRIGGER)["new_records"] == 0
    env.drain()
    titles = sorted(t["title"] for t in env.clientary.all_records("tasks"))
    assert titles == sorted(f"Follow up {i['number']}" for i in (good1, big, good2))


def test_without_a_payload_bucket_the_oversized_invoice_is_one_failed_run_and_the_poll_moves_on(
    local_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.settings import reset_settings

    env = local_env
    monkeypatch.setenv("PAYLOAD_BUCKET", "")
    reset_settings()
    env.put_workflow(poll_workflow())
    env.poll(TRIGGER)
    good, big = add_invoices(env, [1, 1], big=1)
    assert env.poll(TRIGGER)["new_records"] == 2
    runs = runs_by_record(env)
    assert runs[str(good["id"])]["status"] == "QUEUED"
    assert runs[str(big["id"])]["status"] == "FAILED"
    message = runs[str(big["id"])]["error"]["message"]
    assert message.startswith("the record is ") and "over DynamoDB's 400 KB item limit" in message
    assert env.poll(TRIGGER)["new_records"] == 0


def test_a_retryable_failure_holds_only_that_record_for_the_next_poll(
    local_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = local_env
    env.put_workflow(poll_workflow())
    env.poll(TRIGGER)
    first, throttled, third = add_invoices(env, [1, 2, 3])
    real = StateStore.create_run

    def busy(self: StateStore, run: dict[str, Any]) -> bool:
        if run["record_id"] == str(throttled["id"]):
            raise RetryableError("DynamoDB is busy (ThrottlingException)", delay_seconds=5)
        return real(self, run)

    monkeypatch.setattr(StateStore, "create_run", busy)
    polled = env.poll(TRIGGER)
    assert [r["record_id"] for r in polled["retry_later"]] == [str(throttled["id"])]
    assert set(runs_by_record(env)) == {str(first["id"]), str(third["id"])}

    monkeypatch.setattr(StateStore, "create_run", real)
    again = env.poll(TRIGGER)
    assert again["new_records"] == 1 and [r["created"] for r in again["runs"]] == [True]
    assert set(runs_by_record(env)) == {str(i["id"]) for i in (first, throttled, third)}
    assert env.poll(TRIGGER)["new_records"] == 0


def test_an_invoice_that_cannot_be_normalised_is_a_failed_run_and_the_poll_goes_on(
    local_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.connectors.clientary import pollers

    env = local_env
    env.put_workflow(poll_workflow())
    env.poll(TRIGGER)
    good, odd = add_invoices(env, [1, 2])
    real = pollers.normalize_invoice

    def fragile(raw: dict[str, Any]) -> dict[str, Any]:
        if raw["id"] == odd["id"]:
            raise ValueError("unreadable date '31/02/2024'")
        return real(raw)

    monkeypatch.setattr(pollers, "normalize_invoice", fragile)
    assert env.poll(TRIGGER)["new_records"] == 2
    runs = runs_by_record(env)
    assert runs[str(good["id"])]["status"] == "QUEUED"
    assert runs[str(odd["id"])]["status"] == "FAILED"
    assert "unreadable date '31/02/2024'" in runs[str(odd["id"])]["error"]["message"]
    assert env.poll(TRIGGER)["new_records"] == 0


def test_a_poisoned_filter_on_the_push_route_is_a_202_with_a_failed_run(local_env: Any) -> None:
    env = local_env
    env.put_workflow(poll_workflow(filter="{% $exists($fromMillis(invoice.total * 1e13)) %}"))
    (poisoned,) = add_invoices(env, [10_000_000])  # $fromMillis(1e20): an OSError
    response = env.push(TRIGGER, poisoned["id"])
    assert response["statusCode"] == 202
    (run,) = json.loads(response["body"])["runs"]
    assert run["status"] == "FAILED" and run["detail"].startswith("filter: ")


def test_backfill_isolates_a_poisoned_record_and_starts_skipped_ones_after_re_enabling(
    local_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.local.cli import main

    env = local_env
    poison = "{% $exists($fromMillis(invoice.total * 1e13)) %}"
    env.put_workflow(poll_workflow(filter=poison, enabled=False))
    env.poll(TRIGGER)
    good, poisoned = add_invoices(env, [1, 10_000_000])
    env.poll(TRIGGER)  # while disabled: both recorded as SKIPPED
    assert main(["runs", "list", "--status", "SKIPPED"]) == 0
    listed = capsys.readouterr().out
    assert listed.count("SKIPPED") == 2 and "the workflow was disabled" in listed
    assert env.poll(TRIGGER)["new_records"] == 0  # the cursor moved on, the records are kept

    env.put_workflow(poll_workflow(filter=poison))  # enabled again
    assert main(["backfill", "new_invoice", "--since", "2000-01-01", "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"  {good['id']}  follow-up  QUEUED" in out
    assert f"  {poisoned['id']}  follow-up  FAILED" in out and "filter: " in out
    runs = runs_by_record(env)
    assert runs[str(good["id"])]["status"] == "QUEUED"
    env.drain()
    assert [t["title"] for t in env.clientary.all_records("tasks")] == [f"Follow up {good['number']}"]


def test_runs_replay_starts_a_skipped_run_only_once_its_workflow_is_enabled(
    local_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.local.cli import main

    env = local_env
    env.put_workflow(poll_workflow(enabled=False))
    env.poll(TRIGGER)
    (invoice_,) = add_invoices(env, [5])
    env.poll(TRIGGER)
    (run,) = env.state.list_runs(status="SKIPPED")
    assert main(["runs", "replay", run["run_id"]]) == 1
    assert "enabled: true" in capsys.readouterr().err
    env.put_workflow(poll_workflow())
    assert main(["runs", "replay", run["run_id"]]) == 0
    assert f"replaying {run['run_id']} from step task" in capsys.readouterr().out
    env.drain()
    assert [t["title"] for t in env.clientary.all_records("tasks")] == [f"Follow up {invoice_['number']}"]


# ------------------------------------------------------------------ Xero: the payments poll, SQS batches
XERO_POISON = "{% Reference = 'Poison' ? $exists($fromMillis(1e20)) : true %}"


def xero_payment(pid: str, reference: str) -> dict[str, Any]:
    return {
        "PaymentID": pid,
        "Date": "/Date(1764028800000+0000)/",
        "Amount": 120.0,
        "Reference": reference,
        "Status": "AUTHORISED",
        "PaymentType": "ACCRECPAYMENT",
        "Invoice": {"InvoiceID": "4b4bd2cc-3b0e-4a0a-9a3b-1f7f5f0e6e01", "InvoiceNumber": "INV-0042"},
    }


def contact_copy(trigger: str, filter_: str) -> dict[str, Any]:
    return {
        "id": "from-xero",
        "trigger": trigger,
        "filter": filter_,
        "steps": [{"id": "copy", "action": "xero.create_or_update_contact", "input": {"Name": "Copy"}}],
    }


def test_a_poisoned_payment_fails_alone_and_the_payments_poll_moves_on(local_env: Any) -> None:
    env = local_env
    env.put_workflow(contact_copy("xero.new_payment", XERO_POISON.replace("Reference", "payment.Reference")))
    env.poll_xero_payments()  # first poll
    env.xero.advance(60)
    ids = [f"aaaaaaaa-0000-0000-0000-00000000000{n}" for n in (1, 2, 3)]
    for pid, reference in zip(ids, ["Good", "Poison", "Good too"], strict=True):
        env.load_xero_record("Payments", xero_payment(pid, reference))
    polled = env.poll_xero_payments()
    assert polled["new_records"] == 3 and "retry_later" not in polled
    status = {r["record_id"]: r["status"] for r in runs_by_record(env).values()}
    assert status == {ids[0]: "QUEUED", ids[1]: "FAILED", ids[2]: "QUEUED"}
    assert runs_by_record(env)[ids[1]]["error"]["message"].startswith("filter: ")
    assert env.poll_xero_payments()["new_records"] == 0


def test_a_retryable_failure_holds_only_that_payment_for_the_next_poll(
    local_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = local_env
    env.put_workflow(contact_copy("xero.new_payment", "{% true %}"))
    env.poll_xero_payments()
    env.xero.advance(60)
    ids = [f"bbbbbbbb-0000-0000-0000-00000000000{n}" for n in (1, 2)]
    for pid in ids:
        env.load_xero_record("Payments", xero_payment(pid, "Ref"))
    real = StateStore.create_run

    def busy(self: StateStore, run: dict[str, Any]) -> bool:
        if run["record_id"] == ids[0]:
            raise RetryableError("DynamoDB is busy (ThrottlingException)", delay_seconds=5)
        return real(self, run)

    monkeypatch.setattr(StateStore, "create_run", busy)
    assert [r["record_id"] for r in env.poll_xero_payments()["retry_later"]] == [ids[0]]
    monkeypatch.setattr(StateStore, "create_run", real)
    again = env.poll_xero_payments()
    assert [r["created"] for r in again["runs"]] == [True]
    assert set(runs_by_record(env)) == set(ids)


def test_a_poisoned_contact_event_in_an_sqs_batch_is_its_own_failed_run(local_env: Any) -> None:
    from clientary_xero.local.environment import FakeLambdaContext, load_handler

    env = local_env
    env.put_workflow(contact_copy("xero.contact_created", XERO_POISON.replace("Reference", "contact.Name")))
    tenant = env.xero_tenant_id()
    records = []
    for n, name in enumerate(["Poison", "Acme"]):
        contact = env.xero.seed_contact(tenant, Name=name)
        event = {
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/Contacts/{contact['ContactID']}",
            "resourceId": contact["ContactID"],
            "eventDateUtc": "2025-11-25T10:00:00.000",
            "eventType": "CREATE",
            "eventCategory": "CONTACT",
            "tenantId": tenant,
            "tenantType": "ORGANISATION",
        }
        records.append(
            {
                "messageId": f"m{n}",
                "receiptHandle": f"h{n}",
                "body": json.dumps({"event": event, "received_at": ""}),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
            }
        )
    response = load_handler("xero_trigger").lambda_handler(
        {"Records": records}, FakeLambdaContext("xero_trigger")
    )
    assert response == {"batchItemFailures": []}
    assert sorted(r["status"] for r in runs_by_record(env).values()) == ["FAILED", "QUEUED"]


def test_a_held_lead_is_polled_again_by_the_generic_poller(
    local_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = local_env
    trigger = "clientary.new_lead"
    env.put_workflow(
        {
            "id": "lead-task",
            "trigger": trigger,
            "steps": [
                {"id": "task", "action": "clientary.create_task", "input": {"title": "{% lead.name %}"}}
            ],
        }
    )
    env.poll(trigger)
    leads = [env.clientary.add_record("leads", name=f"Lead {n}") for n in range(3)]
    real = StateStore.create_run

    def busy(self: StateStore, run: dict[str, Any]) -> bool:
        if run["record_id"] == str(leads[1]["id"]):
            raise RetryableError("DynamoDB is busy (ThrottlingException)", delay_seconds=5)
        return real(self, run)

    monkeypatch.setattr(StateStore, "create_run", busy)
    assert [r["record_id"] for r in env.poll(trigger)["retry_later"]] == [str(leads[1]["id"])]
    monkeypatch.setattr(StateStore, "create_run", real)
    again = env.poll(trigger)
    assert again["new_records"] == 1 and again["runs"][0]["created"] is True
    assert env.poll(trigger)["new_records"] == 0
    env.drain()
    assert sorted(t["title"] for t in env.clientary.all_records("tasks")) == ["Lead 0", "Lead 1", "Lead 2"]


def test_an_event_whose_processing_crashes_fails_only_its_own_sqs_record(
    local_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.connectors.xero import triggers as xero_triggers
    from clientary_xero.local.environment import FakeLambdaContext, load_handler

    env = local_env
    env.put_workflow(contact_copy("xero.contact_created", "{% true %}"))
    tenant = env.xero_tenant_id()
    contacts = [env.xero.seed_contact(tenant, Name=name) for name in ("Odd", "Acme")]
    real = xero_triggers.fetch_record

    def fragile(client: Any, trigger: str, resource_id: str) -> dict[str, Any]:
        if resource_id == contacts[0]["ContactID"]:
            raise RuntimeError("an unexpected shape")
        return real(client, trigger, resource_id)

    monkeypatch.setattr(xero_triggers, "fetch_record", fragile)
    records = [
        {
            "messageId": f"m{n}",
            "receiptHandle": f"h{n}",
            "body": json.dumps(
                {
                    "event": {
                        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Contacts/{c['ContactID']}",
                        "resourceId": c["ContactID"],
                        "eventDateUtc": "2025-11-25T10:00:00.000",
                        "eventType": "CREATE",
                        "eventCategory": "CONTACT",
                        "tenantId": tenant,
                        "tenantType": "ORGANISATION",
                    },
                    "received_at": "",
                }
            ),
            "attributes": {"ApproximateReceiveCount": "1"},
            "eventSource": "aws:sqs",
        }
        for n, c in enumerate(contacts)
    ]
    response = load_handler("xero_trigger").lambda_handler(
        {"Records": records}, FakeLambdaContext("xero_trigger")
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert [r["record_id"] for r in runs_by_record(env).values()] == [contacts[1]["ContactID"]]


@pytest.mark.parametrize("trigger", ["clientary.new_contract", TRIGGER])
def test_a_pushed_record_that_cannot_be_normalised_is_a_202_with_a_failed_run(
    local_env: Any, monkeypatch: pytest.MonkeyPatch, trigger: str
) -> None:
    # Push-only contracts are normalised from the signed body, other records after a re-read: an
    # odd one that breaks normalisation is its FAILED run, as on a poll, never a 500.
    import dataclasses

    from clientary_xero.connectors.clientary.triggers import SOURCES

    env = local_env
    env.put_workflow(poll_workflow(id="pushed", trigger=trigger))

    def fragile(raw: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("unreadable date '31/02/2024'")

    monkeypatch.setitem(SOURCES, trigger, dataclasses.replace(SOURCES[trigger], normalize=fragile))
    if trigger == TRIGGER:
        (record,) = add_invoices(env, [1])
        response = env.push(trigger, record["id"])
    else:
        record = {"id": 31, "title": "Retainer"}
        response = env.push(trigger, 31, body=json.dumps(record).encode())
    assert response["statusCode"] == 202
    (run,) = json.loads(response["body"])["runs"]
    assert run["status"] == "FAILED"
    stored = runs_by_record(env)[str(record["id"])]
    assert "unreadable date '31/02/2024'" in stored["error"]["message"]
    assert stored["record"]["id"] == record["id"]  # the raw record is kept for a replay or a look
