"""Failures reach a person (issue 9): for each kind of failure, the metric the Lambda prints (its
EMF line) and the message the stack's SNS topic sends (read back through an SQS subscription, as
an e-mail subscriber would get it). The whole stack runs in-process (trigger handler → queue →
action handler → Xero sandbox; the notifier handler on its schedule)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from clientary_xero.local.environment import FakeLambdaContext, LocalEnvironment, load_handler
from clientary_xero.settings import reset_settings
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.usecases.steps import reset_runner

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "shared" / "clientary_xero" / "local" / "samples" / "invoice_to_xero.yaml"
TRIGGER = "clientary.new_invoice"
STACK = "acme-books"
NAMESPACE = f"ClientaryXero/{STACK}"
TAKEN = "Harbour Lights Ltd"  # a client whose contact number Xero refuses (see ``refused_invoice``)


class Stack:
    def __init__(self, env: LocalEnvironment, inbox: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.env = env
        self.inbox = inbox
        self.capsys = capsys

    def invoice(self, client: str = "Acme Builders") -> None:
        """A new Clientary invoice, polled and run to its end."""
        c = self.env.clientary.seed_client(client)
        self.env.clientary.add_invoice(c["id"], [{"title": "Survey", "quantity": 2, "price": 95.0}], status=1)
        self.env.poll(TRIGGER)
        self.env.drain()

    def refused_invoice(self) -> None:
        """An invoice whose contact Xero refuses: its ContactNumber is taken (a permanent error)."""
        self.invoice(TAKEN)

    def notify(self) -> dict[str, Any]:
        """The notifier's schedule fires."""
        handler = load_handler("notifier").lambda_handler
        result: dict[str, Any] = handler({"source": "aws.events"}, FakeLambdaContext("notifier"))
        return result

    def emails(self) -> list[dict[str, str]]:
        """What the topic delivered since the last look: ``{subject, body}`` each."""
        sqs = boto3.client("sqs", region_name="us-east-1")
        out = []
        while messages := sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get("Messages"):
            for m in messages:
                envelope = json.loads(m["Body"])
                out.append({"subject": envelope["Subject"], "body": envelope["Message"]})
                sqs.delete_message(QueueUrl=self.inbox, ReceiptHandle=m["ReceiptHandle"])
        return out

    def metrics(self) -> list[dict[str, Any]]:
        """The EMF documents the handlers printed since the last look."""
        out = self.capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]

    def runs(self, status: str) -> list[dict[str, Any]]:
        return [r for r in self.env.state.list_runs(limit=500) if r["status"] == status]


def total(docs: list[dict[str, Any]], name: str, *, workflow: str | None = None) -> float:
    """A metric's sum over the documents, stack-wide (no dimension) or for one workflow."""
    found = 0.0
    for doc in docs:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        wanted = [["workflow"]] if workflow else [[]]
        if directive["Dimensions"] != wanted or doc.get("workflow") != workflow:
            continue
        if name in {m["Name"] for m in directive["Metrics"]}:
            value = doc[name]
            found += sum(value) if isinstance(value, list) else value
    return found


@pytest.fixture
def stack(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from clientary_xero.workflows.loader import read_document

    with LocalEnvironment(max_attempts=3) as env:
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name=f"{STACK}-alarms")["TopicArn"]
        inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
        assert env.resources is not None
        for key, value in {
            "ALARM_TOPIC_ARN": topic,
            "STACK_NAME": STACK,
            "XERO_EVENT_DLQ_URL": env.resources.xero_event_dlq_url,
            "REPEATED_FAILURE_THRESHOLD": "3",
            "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
            # In Lambda the handlers print their metrics (EMF lines) to stdout, the log group.
            "AWS_LAMBDA_FUNCTION_NAME": "test",
            "STEP_LEASE_SECONDS": "1",
        }.items():
            monkeypatch.setenv(key, value)
        reset_settings()
        reset_runner()
        env.xero.seed_contact(env.xero_tenant_id(), Name=TAKEN, ContactNumber="LEGACY-7")
        env.put_workflow(read_document(WORKFLOW))
        env.poll(TRIGGER)  # the first poll only sets the cursor
        s = Stack(env, inbox, capsys)
        s.metrics()
        yield s


def secrets_of(env: LocalEnvironment) -> list[str]:
    assert env.resources is not None
    xero = SecretStore().read(env.resources.xero_secret_id)
    clientary = SecretStore().read(env.resources.clientary_secret_id)
    return [
        str(v)
        for v in (
            xero.get("client_secret"),
            xero.get("refresh_token"),
            xero.get("access_token"),
            clientary.get("api_token"),
        )
        if v
    ]


def test_a_permanent_step_failure_is_a_metric_and_one_email_with_the_commands(stack: Stack) -> None:
    stack.refused_invoice()
    (run,) = stack.runs("FAILED")
    docs = stack.metrics()
    assert total(docs, "RunsStarted") == 1
    assert total(docs, "RunsFailed") == 1
    assert total(docs, "RunsFailed", workflow="invoice-to-xero") == 1
    assert total(docs, "XeroCalls") >= 1

    stack.notify()
    (email,) = stack.emails()
    assert email["subject"] == f"clientary-xero {STACK}: 1 run FAILED"
    body = email["body"]
    assert "workflow 'invoice-to-xero', step 'contact': 1 run" in body
    assert "already assigned to another contact" in body  # the service's own message
    assert f"{TRIGGER} {run['record_id']}" in body
    assert f"clientary-xero runs show {run['run_id']} --stack {STACK}" in body
    assert f"clientary-xero runs replay {run['run_id']} --stack {STACK}" in body
    for secret in secrets_of(stack.env):
        assert secret not in body
    # Told once: the next digest has nothing to say.
    stack.notify()
    assert stack.emails() == []


def test_a_burst_of_failures_is_one_email_with_a_count(stack: Stack) -> None:
    clients = [stack.env.clientary.seed_client(TAKEN) for _ in range(12)]
    for c in clients:
        stack.env.clientary.add_invoice(
            c["id"], [{"title": "Survey", "quantity": 1, "price": 10.0}], status=1
        )
    stack.env.poll(TRIGGER)
    stack.env.drain()
    assert len(stack.runs("FAILED")) == 12
    assert total(stack.metrics(), "RunsFailed") == 12

    stack.notify()
    (email,) = stack.emails()
    assert email["subject"].startswith(f"clientary-xero {STACK}: 12 runs FAILED")
    assert "workflow 'invoice-to-xero', step 'contact': 12 runs" in email["body"]
    assert "… and 7 more" in email["body"]  # five runs listed, the rest counted


def test_xero_needing_reconnection_is_told_once_until_the_connection_works_again(stack: Stack) -> None:
    stack.invoice()  # works: the connection is fine
    assert len(stack.runs("SUCCEEDED")) == 1
    stack.env.xero.revoke_tokens()  # the organisation disconnected the app
    stack.invoice("Bay Plumbing")
    (failed,) = stack.runs("FAILED")
    assert failed["error"]["reconnect"] is True
    assert total(stack.metrics(), "RunsFailed", workflow="invoice-to-xero") == 1

    stack.notify()
    (email,) = stack.emails()
    assert email["subject"] == f"clientary-xero {STACK}: Xero needs reconnecting"
    assert f"clientary-xero connect xero --stack {STACK}" in email["body"]
    assert failed["run_id"] in email["body"]
    assert f"clientary-xero runs replay RUN --stack {STACK}" in email["body"]

    # More runs fail for the same reason: not told again, not once per run.
    stack.invoice("Cove Electrical")
    stack.invoice("Dune Roofing")
    assert len(stack.runs("FAILED")) == 3
    stack.notify()
    assert stack.emails() == []

    # Reconnected (new tokens in the secret, the access token due for a refresh): the first refresh
    # that works clears the flag, so the next disconnection is told again.
    assert stack.env.resources is not None
    secret_id = stack.env.resources.xero_secret_id
    fresh = stack.env.xero.bootstrap_secret()
    SecretStore().write(secret_id, {**fresh, "expires_at": 0})
    reset_runner()
    stack.invoice("Estuary Joinery")
    assert len(stack.runs("SUCCEEDED")) == 2
    stack.env.xero.revoke_tokens()
    SecretStore().write(secret_id, {**SecretStore().read(secret_id), "expires_at": 0})
    reset_runner()
    stack.invoice("Fjord Glazing")
    stack.notify()
    (again,) = stack.emails()
    assert again["subject"] == f"clientary-xero {STACK}: Xero needs reconnecting"


def test_a_dead_lettered_step_is_a_failed_run_and_a_dlq_email_told_once(stack: Stack) -> None:
    stack.env.xero.fail_next(503, count=50)  # Xero down for every attempt
    stack.invoice()
    (run,) = stack.runs("FAILED")
    assert stack.env.dlq_messages("xero") == [
        {"run_id": run["run_id"], "step_id": "contact", "generation": 0, "dead_lettered": True}
    ]
    docs = stack.metrics()
    assert total(docs, "StepRetries") == 2 and total(docs, "RunsFailed") == 1

    stack.notify()
    (email,) = stack.emails()
    assert email["subject"] == (f"clientary-xero {STACK}: 1 run FAILED; 1 new message in the Xero action DLQ")
    assert "Failed (after its last attempt)." in email["body"]
    assert "DEAD-LETTER QUEUE: Xero action (1 new, 1 in all)" in email["body"]
    assert f"clientary-xero runs replay RUN --stuck --stack {STACK}" in email["body"]
    assert total(stack.metrics(), "DeadLetterMessages") == 1  # the notifier's own EMF line
    # The same message still there: not told again.
    stack.notify()
    assert stack.emails() == []


def test_a_workflow_whose_runs_keep_failing_is_reported_once_per_streak(stack: Stack) -> None:
    stack.refused_invoice()
    stack.refused_invoice()
    stack.notify()
    (first,) = stack.emails()
    assert "keeps failing" not in first["subject"]  # 2 in a row, the threshold is 3

    stack.refused_invoice()
    stack.notify()
    (second,) = stack.emails()
    assert (
        second["subject"] == f"clientary-xero {STACK}: 1 run FAILED; workflow invoice-to-xero keeps failing"
    )
    assert "'invoice-to-xero': its last 3 runs all FAILED" in second["body"]

    stack.refused_invoice()  # the streak goes on: its failure is told, the streak is not again
    stack.notify()
    (third,) = stack.emails()
    assert third["subject"] == f"clientary-xero {STACK}: 1 run FAILED"

    stack.invoice()  # a success ends the streak; a new one of 3 is told again
    for _ in range(3):
        stack.refused_invoice()
    stack.notify()
    (fourth,) = stack.emails()
    assert fourth["subject"].endswith("3 runs FAILED; workflow invoice-to-xero keeps failing")


def test_a_poll_that_needs_a_reconnect_is_told_though_no_run_failed(stack: Stack) -> None:
    from clientary_xero.errors import ReauthorizationRequired

    stack.env.poll_xero_payments()  # works (the first poll sets its cursor)
    stack.env.xero.revoke_tokens()
    for _ in range(2):  # two schedules: still one notice
        with pytest.raises(ReauthorizationRequired):
            stack.env.poll_xero_payments()
    assert stack.runs("FAILED") == []
    stack.notify()
    (email,) = stack.emails()
    assert email["subject"] == f"clientary-xero {STACK}: Xero needs reconnecting"
    assert "Stopped for the same reason: the Xero payments poll" in email["body"]
    assert f"clientary-xero connect xero --stack {STACK}" in email["body"]


def test_runs_failed_at_intake_are_told_and_count_towards_the_streak(stack: Stack) -> None:
    from clientary_xero.workflows.loader import read_document

    broken = {**read_document(WORKFLOW), "id": "broken-filter", "filter": "{% $error('the filter broke') %}"}
    stack.env.put_workflow(broken)
    for name in ("Gull Fencing", "Heron Paving", "Ibis Tiling"):
        c = stack.env.clientary.seed_client(name)
        stack.env.clientary.add_invoice(
            c["id"], [{"title": "Survey", "quantity": 1, "price": 10.0}], status=1
        )
    stack.env.poll(TRIGGER)  # one poll page: three records, each for both workflows
    stack.env.drain()
    docs = stack.metrics()
    assert total(docs, "RunsStarted") == 6
    assert total(docs, "RunsFailed", workflow="broken-filter") == 3
    assert total(docs, "RunsSucceeded") == 3
    (lags,) = [d["TriggerLag"] for d in docs if "TriggerLag" in d]  # record created → run, seconds
    assert len(lags) == 6  # one per run started (its value is time: not asserted)

    stack.notify()
    (email,) = stack.emails()
    assert email["subject"] == f"clientary-xero {STACK}: 3 runs FAILED; workflow broken-filter keeps failing"
    assert "workflow 'broken-filter', before any step" in email["body"]
    assert "the filter broke" in email["body"]


def test_xero_429s_are_counted_by_limit_and_a_parked_run_is_waiting(stack: Stack) -> None:
    stack.env.xero.fail_next(429, headers={"Retry-After": "5", "X-Rate-Limit-Problem": "minute"})
    stack.invoice()  # waits out Retry-After, then succeeds
    docs = stack.metrics()
    assert (total(docs, "Xero429Minute"), total(docs, "Xero429Day")) == (1, 0)
    assert total(docs, "RunsSucceeded") == 1
    stack.env.xero.fail_next(429, headers={"Retry-After": "7200", "X-Rate-Limit-Problem": "day"})
    stack.invoice("Bay Plumbing")  # parked until Xero's day resets
    docs = stack.metrics()
    assert (total(docs, "Xero429Minute"), total(docs, "Xero429Day")) == (0, 1)
    assert total(docs, "RunsWaiting") == 1
    assert stack.runs("WAITING")
