"""End to end through the local runner: trigger handler → queue → Xero action handler → Xero sandbox."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from clientary_xero.connectors.xero.dates import to_xero_date
from clientary_xero.local.environment import LocalEnvironment
from clientary_xero.settings import reset_settings
from clientary_xero.storage.state import StateStore
from clientary_xero.usecases.steps import reset_runner

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "shared" / "clientary_xero" / "local" / "samples" / "invoice_to_xero.yaml"
TRIGGER = "clientary.new_invoice"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalEnvironment]:
    from clientary_xero.workflows.loader import read_document

    with LocalEnvironment(max_attempts=3, record=tmp_path / "requests.jsonl") as e:
        monkeypatch.setenv("STEP_LEASE_SECONDS", "1")  # a dead worker's lease expires quickly here
        reset_settings()
        reset_runner()
        e.put_workflow(read_document(WORKFLOW))
        yield e


def new_invoice(env: LocalEnvironment, client: str = "Acme Builders", price: float = 95.0) -> dict[str, Any]:
    c = env.clientary.seed_client(client)
    return env.clientary.add_invoice(c["id"], [{"title": "Survey", "quantity": 2, "price": price}], status=1)


def xero_invoices(env: LocalEnvironment) -> list[dict[str, Any]]:
    return list(env.xero.invoices(env.xero_tenant_id()))


def only_run(env: LocalEnvironment) -> dict[str, Any]:
    (run,) = env.state.list_runs()
    return run


def test_poll_push_and_sqs_redelivery_give_one_xero_invoice(env: LocalEnvironment) -> None:
    env.poll(TRIGGER)  # first poll: sets the watermark
    invoice = new_invoice(env)
    polled = env.poll(TRIGGER)
    pushed = env.push(TRIGGER, invoice["id"])
    assert pushed["statusCode"] == 202
    assert [r["created"] for r in polled["runs"]] == [True]
    assert [r["created"] for r in json.loads(pushed["body"])["runs"]] == [False]
    env.drain()
    run = only_run(env)
    # SQS delivers at least once: the same step messages arrive again after the run finished.
    assert env.resources is not None
    sqs = boto3.client("sqs", region_name="us-east-1")
    for step in ("contact", "invoice"):
        sqs.send_message(
            QueueUrl=env.resources.xero_queue_url,
            MessageBody=json.dumps({"run_id": run["run_id"], "step_id": step, "generation": 0}),
        )
    env.drain()
    env.poll(TRIGGER)
    env.drain()
    invoices = xero_invoices(env)
    assert len(invoices) == 1 and invoices[0]["InvoiceNumber"] == f"CL-{invoice['number']}"
    assert only_run(env)["status"] == "SUCCEEDED"
    assert len(env.xero.contacts(env.xero_tenant_id())) == 1


@pytest.mark.parametrize("minutes_later", [0, 7], ids=["within-idempotency-window", "after-window"])
def test_crash_between_the_xero_call_and_the_checkpoint_gives_no_duplicate(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch, minutes_later: int
) -> None:
    env.poll(TRIGGER)
    new_invoice(env)
    env.poll(TRIGGER)
    real_finish = StateStore.finish_step
    crashed: list[str] = []

    def crash_once(self: StateStore, run_id: str, step_id: str, **kwargs: Any) -> None:
        if step_id == "invoice" and kwargs.get("status") == "SUCCEEDED" and not crashed:
            crashed.append(step_id)
            env.xero.advance(minutes_later * 60)  # Xero forgets idempotency keys after 6 minutes
            raise RuntimeError("Lambda timed out after Xero created the invoice")
        real_finish(self, run_id, step_id, **kwargs)

    monkeypatch.setattr(StateStore, "finish_step", crash_once)

    def outlive_the_dead_workers_lease(batch: dict[str, Any]) -> None:
        # The crashed worker's lease (1 s here) must end before a retry may take the step over.
        # Wait for the lease as stored, not a fixed time: a claim needs int(now) > lease_until.
        if batch["failed"]:
            (run,) = env.state.list_runs()
            step = env.state.get_step(run["run_id"], "invoice") or {}
            while int(time.time()) <= int(step.get("lease_until") or 0):
                time.sleep(0.1)

    batches = env.drain(on_batch=outlive_the_dead_workers_lease)
    assert crashed == ["invoice"]
    assert len(xero_invoices(env)) == 1
    run = only_run(env)
    steps = {s["step_id"]: s for s in env.state.get_steps(run["run_id"])}
    # On a failure, say what happened to the step's messages (the batches, the step, the DLQ).
    why = f"batches={batches} steps={steps} dlq={env.dlq_messages('xero')}"
    assert run["status"] == "SUCCEEDED", why
    assert steps["invoice"]["attempts"] >= 2
    assert steps["invoice"]["output"]["InvoiceID"] == xero_invoices(env)[0]["InvoiceID"]


def test_retryable_errors_until_the_last_attempt_fail_the_run_and_park_the_message_in_the_dlq(
    env: LocalEnvironment,
) -> None:
    env.poll(TRIGGER)
    new_invoice(env)
    env.poll(TRIGGER)
    env.xero.fail_next(503, count=50)
    env.drain()
    run = only_run(env)
    assert run["status"] == "FAILED"
    assert run["error"]["message"].startswith("gave up after 3 attempts")
    assert env.dlq_messages("xero") == [
        {"run_id": run["run_id"], "step_id": "contact", "generation": 0, "dead_lettered": True}
    ]
    assert xero_invoices(env) == []


def test_a_429_delays_the_message_by_retry_after_then_succeeds(env: LocalEnvironment) -> None:
    env.poll(TRIGGER)
    new_invoice(env)
    env.poll(TRIGGER)
    env.xero.fail_next(429, headers={"Retry-After": "42", "X-Rate-Limit-Problem": "minute"})
    env.fast_forward = False
    assert env.resources is not None
    sqs = boto3.client("sqs", region_name="us-east-1")
    from clientary_xero.local.environment import FakeLambdaContext, load_handler, sqs_record

    (message,) = sqs.receive_message(QueueUrl=env.resources.xero_queue_url, AttributeNames=["All"])[
        "Messages"
    ]
    env.use_action_function("xero")
    response = load_handler("step_actions").lambda_handler(
        {"Records": [sqs_record(message, env.resources.xero_queue_url)]}, FakeLambdaContext("step_actions")
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    # Hidden for Retry-After seconds: not deliverable now.
    assert sqs.receive_message(QueueUrl=env.resources.xero_queue_url).get("Messages", []) == []
    step = env.state.get_steps(only_run(env)["run_id"])[0]
    assert step["status"] == "RETRYING" and step["error"]["delay_seconds"] == 42
    assert step["error"]["limit"] == "minute"
    sqs.change_message_visibility(
        QueueUrl=env.resources.xero_queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )  # 42 seconds pass
    env.fast_forward = True
    env.drain()
    assert only_run(env)["status"] == "SUCCEEDED" and len(xero_invoices(env)) == 1


def test_xero_refusal_fails_the_run_with_xeros_message(env: LocalEnvironment) -> None:
    env.xero.seed_contact(env.xero_tenant_id(), Name="Harbour Lights Ltd", ContactNumber="LEGACY-7")
    env.poll(TRIGGER)
    new_invoice(env, client="Harbour Lights Ltd")
    env.poll(TRIGGER)
    env.drain()
    run = only_run(env)
    assert run["status"] == "FAILED" and run["failed_step"] == "contact"
    assert any("already assigned to another contact" in m for m in run["error"]["messages"])


def test_every_request_sent_to_xero_validates_against_the_openapi_description(env: LocalEnvironment) -> None:
    from tests.xero_contract import validate_requests

    env.poll(TRIGGER)
    new_invoice(env)
    new_invoice(env, client="Solo Design", price=400)
    env.poll(TRIGGER)
    env.drain()
    assert env.record_path is not None
    records = [json.loads(line) for line in env.record_path.read_text().splitlines() if line.strip()]
    xero = [r for r in records if "xero.com" in r["url"]]
    assert any(r["method"] == "PUT" and r["url"].split("?")[0].endswith("/Invoices") for r in xero)
    assert validate_requests(xero) == []
    assert all("authorization" not in {k.lower() for k in r["headers"]} for r in records)


MONTHLY = {
    "id": "monthly",
    "trigger": TRIGGER,
    "steps": [
        {
            "id": "contact",
            "action": "xero.create_or_update_contact",
            "input": {
                "Name": "{% invoice.client.name %}",
                "ContactNumber": "{% 'CL-' & $string(invoice.client_id) %}",
            },
        },
        {
            "id": "invoice",
            "action": "xero.create_invoice",
            "input": {
                "Contact": {"ContactID": "{% steps.contact.ContactID %}"},
                "Reference": "{% invoice.title %}",  # the same every month
                "Status": "AUTHORISED",
                "LineItems": "{% [invoice.invoice_items.{'Description': title, 'Quantity': quantity, "
                "'UnitAmount': price, 'AccountCode': '200'}] %}",
            },
        },
    ],
}


def test_a_retry_does_not_take_last_months_invoice_with_the_same_reference_for_its_own() -> None:
    with LocalEnvironment(max_attempts=3) as env:
        # Given last month's retainer invoice, synced to Xero with Reference "Monthly retainer"
        env.put_workflow(MONTHLY)
        env.poll(TRIGGER)
        customer = env.clientary.seed_client("Retainer Client")
        line = [{"title": "Retainer", "quantity": 1, "price": 500.0}]
        env.clientary.add_invoice(customer["id"], line, status=1, title="Monthly retainer")
        env.poll(TRIGGER)
        env.drain()
        (last_month,) = xero_invoices(env)
        a_month_ago = datetime.now(UTC) - timedelta(days=30)
        with env.xero._lock:  # it was made (and last updated) a month ago
            stored = env.xero._tenants[env.xero_tenant_id()].invoices[last_month["InvoiceID"]]
            stored["UpdatedDateUTC"] = to_xero_date(a_month_ago)

        # When this month's first invoice PUT fails with a 503 (the retry looks before it creates)
        line = [{"title": "Retainer", "quantity": 1, "price": 700.0}]
        env.clientary.add_invoice(customer["id"], line, status=1, title="Monthly retainer")
        env.poll(TRIGGER)
        armed: list[bool] = []

        def fail_the_invoice_put(batch: dict[str, Any]) -> None:
            if not armed and any(m["step_id"] == "contact" for m in batch["messages"]):
                armed.append(True)
                env.xero.fail_next(503)

        env.drain(on_batch=fail_the_invoice_put)

        # Then this month's invoice is created, not mistaken for last month's
        assert armed
        assert sorted(i["Total"] for i in xero_invoices(env)) == [500.0, 700.0]
        steps = [s for r in env.state.list_runs() for s in env.state.get_steps(r["run_id"])]
        (retried,) = [s for s in steps if s["step_id"] == "invoice" and s["attempts"] == 2]
        assert retried["status"] == "SUCCEEDED"
        assert (retried["output"]["created"], retried["output"]["Total"]) == (True, 700.0)
