"""Xero as a trigger source: webhook events end to end, the SQS handler, and the payments poll.

Everything runs in-process: AWS in moto, Xero as the sandbox, the real handlers.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from clientary_xero.connectors.xero.dates import to_xero_date
from clientary_xero.connectors.xero.triggers import normalize
from clientary_xero.local.cli import main
from clientary_xero.local.environment import (
    FakeLambdaContext,
    LocalEnvironment,
    load_handler,
    scheduled_event,
)
from tests.xero_contract import validate_requests

EVENTS = Path(__file__).resolve().parents[1] / "events"


def workflow(
    trigger: str, wid: str = "from-xero", *, name: str = "{% contact.Name & ' (copy)' %}"
) -> dict[str, Any]:
    """A workflow whose one step leaves a visible effect in Xero: a contact named after the record."""
    return {
        "id": wid,
        "trigger": trigger,
        "steps": [{"id": "copy", "action": "xero.create_or_update_contact", "input": {"Name": name}}],
    }


def runs(env: LocalEnvironment) -> list[dict[str, Any]]:
    return env.state.list_runs(limit=100)


def queue_depth(url: str) -> int:
    attrs = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


@pytest.fixture
def env(local_env: LocalEnvironment) -> LocalEnvironment:
    return local_env


def rename(contact_id: str, name: str) -> None:
    """Someone edits the contact in Xero (POST /Contacts updates it and its UpdatedDateUTC)."""
    from clientary_xero.connectors.xero.client import build_xero_client

    build_xero_client().request(
        "POST", "Contacts", json={"Contacts": [{"ContactID": contact_id, "Name": name}]}, idempotency_key=name
    )


def contact_names(env: LocalEnvironment) -> list[str]:
    return sorted(c["Name"] for c in env.xero.contacts(env.xero_tenant_id()))


# ------------------------------------------------------------------------------ contacts
def test_a_contact_event_runs_the_workflow_once_and_a_redelivery_runs_nothing(env: LocalEnvironment) -> None:
    env.put_workflow(workflow("xero.contact_created"))
    contact = env.xero.seed_contact(env.xero_tenant_id(), Name="Acme Builders")

    assert env.xero_event("CONTACT", "CREATE", contact["ContactID"])["statusCode"] == 200
    env.drain()
    (run,) = runs(env)
    assert run["status"] == "SUCCEEDED"
    assert run["trigger"] == "xero.contact_created"
    assert run["record_id"] == contact["ContactID"]
    assert run["trigger_meta"]["delivery"] == "webhook"
    assert run["trigger_meta"]["tenant_id"] == env.xero_tenant_id()
    assert contact_names(env) == ["Acme Builders", "Acme Builders (copy)"]

    # Xero delivers again (at-least-once): no second run, no second contact.
    assert env.xero_event("CONTACT", "CREATE", contact["ContactID"])["statusCode"] == 200
    env.drain()
    assert len(runs(env)) == 1
    assert contact_names(env) == ["Acme Builders", "Acme Builders (copy)"]


def test_each_distinct_update_runs_once(env: LocalEnvironment) -> None:
    env.put_workflow(workflow("xero.contact_updated", name="{% 'Seen ' & contact.Name %}"))
    tenant = env.xero_tenant_id()
    contact = env.xero.seed_contact(tenant, Name="Acme")

    env.xero_event("CONTACT", "UPDATE", contact["ContactID"])
    env.drain()
    env.xero_event("CONTACT", "UPDATE", contact["ContactID"])  # the same update, redelivered
    env.drain()
    assert [r["status"] for r in runs(env)] == ["SUCCEEDED"]

    env.xero.advance(5)  # the next update has a later UpdatedDateUTC
    rename(contact["ContactID"], "Acme Renamed")
    env.xero_event("CONTACT", "UPDATE", contact["ContactID"])
    env.drain()
    done = runs(env)
    assert len(done) == 2 and {r["status"] for r in done} == {"SUCCEEDED"}
    assert len({r["trigger_meta"]["record_id"] for r in done}) == 1
    assert "Seen Acme Renamed" in contact_names(env) and "Seen Acme" in contact_names(env)


def test_a_created_event_does_not_start_update_workflows(env: LocalEnvironment) -> None:
    env.put_workflow(workflow("xero.contact_updated"))
    contact = env.xero.seed_contact(env.xero_tenant_id(), Name="Acme")
    env.xero_event("CONTACT", "CREATE", contact["ContactID"])
    env.drain()
    assert runs(env) == []


def test_an_event_of_another_organisation_is_acknowledged_and_skipped(env: LocalEnvironment) -> None:
    from clientary_xero.connectors.xero.webhooks import event_for

    env.put_workflow(workflow("xero.contact_created"))
    other = env.xero.create_tenant("Someone Else Ltd")
    env.xero_webhook([event_for("CONTACT", "CREATE", "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777", other)])
    batches = env.drain()
    assert [b["failed"] for b in batches] == [[]]
    assert runs(env) == []
    assert not [r for r in env.xero.requests if "/Contacts/" in r["url"]]


def test_a_record_deleted_before_the_fetch_is_skipped(env: LocalEnvironment) -> None:
    env.put_workflow(workflow("xero.contact_created"))
    env.xero_event("CONTACT", "CREATE", "99999999-9999-9999-9999-999999999999")
    batches = env.drain()
    assert [b["failed"] for b in batches] == [[]]
    assert runs(env) == []


def test_a_rate_limited_fetch_is_retried_after_retry_after(env: LocalEnvironment) -> None:
    env.put_workflow(workflow("xero.contact_created"))
    contact = env.xero.seed_contact(env.xero_tenant_id(), Name="Acme")
    env.xero.fail_next(429, {"Retry-After": "7", "X-Rate-Limit-Problem": "minute"})
    env.xero_event("CONTACT", "CREATE", contact["ContactID"])
    batches = env.drain()
    assert batches[0]["app"] == "xero_events" and len(batches[0]["failed"]) == 1
    assert [r["status"] for r in runs(env)] == ["SUCCEEDED"]


def test_waiting_for_the_rate_budget_resends_the_event_instead_of_spending_a_receive(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.connectors.xero.webhooks import event_for
    from clientary_xero.storage.ratelimit import BudgetExceeded, Reservation
    from clientary_xero.usecases import xero_trigger

    held = Reservation(env.xero_tenant_id(), (int(time.time() * 1000) + 3000,))

    def budget_full(queued: Any, **kwargs: Any) -> dict[str, Any]:
        raise BudgetExceeded("five calls in flight", delay_seconds=3, limit="concurrent", reservation=held)

    monkeypatch.setattr(xero_trigger, "handle_event", budget_full)
    event = event_for("CONTACT", "CREATE", "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777", env.xero_tenant_id())
    queued = xero_trigger.QueuedEvent.read({"event": event, "received_at": "2026-11-25T12:00:00Z"})
    # No exception: the SQS record is acknowledged, so the wait spends none of its receives …
    summary = xero_trigger.run_queued_event(queued, receipt_handle="not-used")
    assert summary["rate_wait"] == {"limit": "concurrent", "seconds": 3}
    # … and a delayed copy of the event is on the queue to do the work later.
    assert env.resources is not None
    attrs = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=env.resources.xero_event_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    # The copy keeps the instant the budget reserved for it (honoured on arrival).
    copy = boto3.client("sqs", region_name="us-east-1").receive_message(
        QueueUrl=env.resources.xero_event_queue_url, WaitTimeSeconds=4, VisibilityTimeout=0
    )["Messages"][0]
    assert json.loads(copy["Body"])["reservation"] == held.to_message()
    monkeypatch.undo()
    time.sleep(3.1)
    env.put_workflow(workflow("xero.contact_created"))
    env.load_xero_record("Contacts", {"ContactID": queued.event.resourceId, "Name": "Acme"})
    env.drain()
    assert [r["status"] for r in runs(env)] == ["SUCCEEDED"]


# ------------------------------------------------------------------------------ invoices
def test_an_invoice_event_hands_the_normalised_invoice_to_the_workflow(env: LocalEnvironment) -> None:
    env.put_workflow(
        workflow(
            "xero.invoice_created",
            name="{% invoice.InvoiceNumber & ' due ' & invoice.DueDate & ' ' & $string(invoice.Total) %}",
        )
    )
    tenant = env.xero_tenant_id()
    customer = env.xero.seed_contact(tenant, Name="Customer")
    invoice = env.load_xero_record(
        "Invoices",
        {
            "InvoiceID": "4b4bd2cc-3b0e-4a0a-9a3b-1f7f5f0e6e01",
            "Type": "ACCREC",
            "InvoiceNumber": "INV-0042",
            "Contact": {"ContactID": customer["ContactID"], "Name": "Customer"},
            "Date": "/Date(1764028800000+0000)/",
            "DueDate": "/Date(1766620800000+0000)/",
            "Status": "AUTHORISED",
            "LineItems": [],
            "Total": 250.5,
            "UpdatedDateUTC": "/Date(1764074472000+0000)/",
        },
    )
    env.xero_event("INVOICE", "CREATE", invoice["InvoiceID"])
    env.drain()
    (run,) = runs(env)
    assert run["status"] == "SUCCEEDED"
    assert run["record"]["Date"] == "2025-11-25"
    assert run["record"]["DueDate"] == "2025-12-25"
    assert run["record"]["UpdatedDateUTC"] == "2025-11-25T12:41:12+00:00"
    assert "INV-0042 due 2025-12-25 250.5" in contact_names(env)


def test_normalize_turns_every_xero_date_into_iso_and_keeps_the_rest() -> None:
    record = {
        "Date": "/Date(-86400000+0000)/",
        "UpdatedDateUTC": "/Date(1551399321043+0000)/",
        "Payments": [{"Date": "/Date(1551398400000+0000)/", "Amount": 10}],
        "Reference": "/Date( not a date",
    }
    assert normalize(record) == {
        "Date": "1969-12-31",
        "UpdatedDateUTC": "2019-03-01T00:15:21.043+00:00",
        "Payments": [{"Date": "2019-03-01", "Amount": 10}],
        "Reference": "/Date( not a date",
    }


# ------------------------------------------------------------------------------ the SQS handler
def test_the_sample_sqs_event_runs_through_the_trigger_handler(env: LocalEnvironment) -> None:
    env.put_workflow(workflow("xero.contact_created"))
    tenant = env.xero_tenant_id()
    sample = json.loads((EVENTS / "sqs_xero_event.json").read_text())
    body = json.loads(sample["Records"][0]["body"])
    env.load_xero_record("Contacts", {"ContactID": body["event"]["resourceId"], "Name": "Sample Contact"})
    # The sample names a fixed tenant id; the sandbox's organisation has a generated one.
    body["event"]["tenantId"] = tenant
    event = copy.deepcopy(sample)
    event["Records"][0]["body"] = json.dumps(body)

    response = load_handler("xero_trigger").lambda_handler(event, FakeLambdaContext("xero_trigger"))
    assert response == {"batchItemFailures": []}
    (run,) = runs(env)
    assert run["record"]["Name"] == "Sample Contact" and run["status"] == "QUEUED"
    assert env.resources is not None and queue_depth(env.resources.xero_queue_url) == 1


def test_a_message_that_is_not_an_event_fails_alone(env: LocalEnvironment) -> None:
    env.put_workflow(workflow("xero.contact_created"))
    contact = env.xero.seed_contact(env.xero_tenant_id(), Name="Acme")
    sample = json.loads((EVENTS / "sqs_xero_event.json").read_text())
    good = copy.deepcopy(sample["Records"][0])
    body = json.loads(good["body"])
    body["event"].update(resourceId=contact["ContactID"], tenantId=env.xero_tenant_id())
    good["body"] = json.dumps(body)
    bad = {**copy.deepcopy(good), "messageId": "poison", "body": '{"event": {"nothing": 1}}'}
    response = load_handler("xero_trigger").lambda_handler(
        {"Records": [bad, good]}, FakeLambdaContext("xero_trigger")
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    assert len(runs(env)) == 1


# ------------------------------------------------------------------------------ payments poll
def xero_now(env: LocalEnvironment) -> str:
    return to_xero_date(datetime.fromtimestamp(env.xero._now(), UTC))


def payment(
    pid: str, invoice_id: str = "4b4bd2cc-3b0e-4a0a-9a3b-1f7f5f0e6e01", **extra: Any
) -> dict[str, Any]:
    return {
        "PaymentID": pid,
        "Date": "/Date(1764028800000+0000)/",
        "Amount": 120.0,
        "Reference": "Bank transfer",
        "Status": "AUTHORISED",
        "PaymentType": "ACCRECPAYMENT",
        "Invoice": {"InvoiceID": invoice_id, "InvoiceNumber": "INV-0042"},
        **extra,
    }


def payments_requests(env: LocalEnvironment) -> list[dict[str, Any]]:
    return [r for r in env.xero.requests if "/api.xro/2.0/Payments" in r["url"]]


def test_payments_poll_first_delivers_nothing_then_each_new_payment_once(env: LocalEnvironment) -> None:
    env.put_workflow(
        workflow("xero.new_payment", name="{% 'Paid ' & $string(payment.Amount) & ' on ' & payment.Date %}")
    )
    env.load_xero_record("Payments", payment("aaaaaaaa-0000-0000-0000-000000000001"))  # before deployment

    first = env.poll_xero_payments()
    assert (first["first_poll"], first["new_records"], first["requests"]) == (True, 0, 1)
    assert runs(env) == []

    env.xero.advance(60)
    env.load_xero_record("Payments", payment("aaaaaaaa-0000-0000-0000-000000000002"))
    second = env.poll_xero_payments()
    assert (second["first_poll"], second["new_records"]) == (False, 1)
    env.drain()
    (run,) = runs(env)
    assert run["record_id"] == "aaaaaaaa-0000-0000-0000-000000000002"
    assert run["record"]["Date"] == "2025-11-25" and run["status"] == "SUCCEEDED"
    assert "Paid 120 on 2025-11-25" in contact_names(env)

    third = env.poll_xero_payments()  # the payment is inside the overlap window: not new again
    assert third["new_records"] == 0
    assert len(runs(env)) == 1


def test_an_idle_payments_poll_is_one_request_with_if_modified_since(env: LocalEnvironment) -> None:
    env.put_workflow(workflow("xero.new_payment"))
    env.poll_xero_payments()
    before = len(payments_requests(env))
    cursor = env.state.get_cursor("xero.new_payment")
    summary = env.poll_xero_payments()
    assert summary["requests"] == 1 and summary["new_records"] == 0
    (request,) = payments_requests(env)[before:]
    since = {k.lower(): v for k, v in request["headers"].items()}["if-modified-since"]
    assert since.endswith("Z") and datetime.fromisoformat(since.replace("Z", "+00:00")) < datetime.now(UTC)
    assert env.state.get_cursor("xero.new_payment") == cursor  # nothing written


def test_a_deleted_payment_is_not_a_new_payment(env: LocalEnvironment) -> None:
    env.put_workflow(workflow("xero.new_payment"))
    env.poll_xero_payments()
    env.load_xero_record("Payments", payment("aaaaaaaa-0000-0000-0000-000000000003", Status="DELETED"))
    assert env.poll_xero_payments()["new_records"] == 0


def test_the_sample_schedule_event_polls_payments(env: LocalEnvironment) -> None:
    event = json.loads((EVENTS / "schedule_xero_new_payment.json").read_text())
    result = load_handler("xero_trigger").lambda_handler(event, FakeLambdaContext("xero_trigger"))
    assert result["trigger"] == "xero.new_payment" and result["first_poll"] is True
    assert scheduled_event()["detail-type"] == event["detail-type"]


def test_a_payment_made_through_the_api_is_delivered(env: LocalEnvironment) -> None:
    """A payment created with PUT /Payments on an AUTHORISED invoice, as Xero records it."""
    from clientary_xero.connectors.xero.client import build_xero_client

    env.put_workflow(workflow("xero.new_payment", name="{% 'Payment ' & payment.Reference %}"))
    env.poll_xero_payments()
    env.xero.advance(30)
    xero = build_xero_client()
    tenant = env.xero_tenant_id()
    customer = env.xero.seed_contact(tenant, Name="Payer")
    created = xero.request(
        "PUT",
        "Invoices",
        json={
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": customer["ContactID"]},
                    "Status": "AUTHORISED",
                    "LineItems": [
                        {"Description": "Work", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}
                    ],
                }
            ]
        },
        idempotency_key="test-invoice",
    )
    invoice_id = created["Invoices"][0]["InvoiceID"]
    xero.request(
        "PUT",
        "Payments",
        json={
            "Payments": [
                {
                    "Invoice": {"InvoiceID": invoice_id},
                    "Account": {"Code": "090"},
                    "Amount": 40,
                    "Reference": "R-1",
                }
            ]
        },
        idempotency_key="test-payment",
    )
    assert env.poll_xero_payments()["new_records"] == 1
    env.drain()
    assert "Payment R-1" in contact_names(env)


# ------------------------------------------------------------------------------ test-workflow
def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return str(path)


def test_test_workflow_drives_a_contact_webhook_and_every_request_matches_the_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(tmp_path, "wf.json", workflow("xero.contact_created"))
    contact = {
        "Contacts": [
            {
                "ContactID": "717F2BFC-C6D4-41FD-B238-3F2F0C0CF777",
                "Name": "From Xero Ltd",
                "ContactStatus": "ACTIVE",
            }
        ]
    }
    event = write(tmp_path, "contact.json", contact)
    record = tmp_path / "requests.jsonl"
    assert main(["test-workflow", wf, "--event", event, "--record", str(record)]) == 0
    out = capsys.readouterr().out
    assert "xero.contact_created" in out and "SUCCEEDED" in out and "From Xero Ltd (copy)" in out
    records = [json.loads(line) for line in record.read_text().splitlines()]
    assert any(r["method"] == "GET" and "/Contacts/717f2bfc" in r["url"] for r in records)
    assert validate_requests([r for r in records if "api.xro" in r["url"]]) == []


def test_test_workflow_drives_the_payments_poll(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(tmp_path, "wf.json", workflow("xero.new_payment", name="{% 'Paid ' & payment.Reference %}"))
    event = write(tmp_path, "payment.json", payment("bbbbbbbb-0000-0000-0000-000000000001"))
    record = tmp_path / "requests.jsonl"
    assert main(["test-workflow", wf, "--event", event, "--record", str(record)]) == 0
    out = capsys.readouterr().out
    assert "payments poll: 1 new payment(s)" in out and "Paid Bank transfer" in out
    records = [json.loads(line) for line in record.read_text().splitlines()]
    assert validate_requests([r for r in records if "api.xro" in r["url"]]) == []


def test_test_workflow_fails_when_the_workflow_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = workflow("xero.contact_created", name="{% contact.Name %}")
    flow["steps"][0]["input"]["MatchBy"] = ["EmailAddress"]  # not by name: no match, a create
    wf = write(tmp_path, "wf.json", flow)
    event = write(
        tmp_path,
        "contact.json",
        {"ContactID": "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777", "Name": "Dup", "ContactStatus": "ACTIVE"},
    )
    # Copying the contact under its own name, not matching it by name, collides with Xero's
    # unique-name rule.
    assert main(["test-workflow", wf, "--event", event]) == 1
    assert "already assigned to another contact" in capsys.readouterr().out


def test_two_overlapping_polls_merge_their_cursors_and_deliver_nothing_twice(env: LocalEnvironment) -> None:
    """Two poll invocations read the same cursor (a slow one and the next schedule): the second
    commit conflicts, the cursors are merged, and the next poll finds nothing new."""
    from clientary_xero.connectors.http import get_transport
    from clientary_xero.connectors.xero.client import build_xero_client
    from clientary_xero.connectors.xero.triggers import HeaderTransport, poll_new_payments

    env.poll_xero_payments()
    env.xero.advance(60)
    env.load_xero_record("Payments", payment("cccccccc-0000-0000-0000-000000000001"))

    def poll() -> Any:
        headers = HeaderTransport(get_transport())
        return poll_new_payments(
            build_xero_client(transport=headers), headers, env.state, now=datetime.now(UTC)
        )

    first, second = poll(), poll()
    env.xero.advance(60)
    env.load_xero_record("Payments", payment("cccccccc-0000-0000-0000-000000000002"))
    third = poll()
    assert [len(b.records) for b in (first, second, third)] == [1, 1, 2]
    first.commit()
    third.commit()  # conflicts with first, merges
    second.commit()  # conflicts again, merges; its older watermark does not move the cursor back
    cursor = env.state.get_cursor("xero.new_payment")
    assert set(cursor["seen"]) >= {
        "cccccccc-0000-0000-0000-000000000001",
        "cccccccc-0000-0000-0000-000000000002",
    }
    assert poll().records == []
