"""`clientary-xero doctor`: each check finds the problem it claims to, and passes when healthy.

The stack is the local runner's (moto in-process, the Xero and Clientary sandboxes over httpx),
with a CloudFormation stack in moto whose outputs name its resources under the real template's
output keys. One test per check: break one thing, the doctor names it (and how to fix it), exits 1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from clientary_xero.engine import runs as R
from clientary_xero.local.cli import main
from clientary_xero.local.environment import LocalEnvironment

STACK = "doc-stack"

INVOICE_WORKFLOW = {
    "id": "bills",
    "trigger": "clientary.new_invoice",
    "steps": [
        {"id": "contact", "action": "xero.create_or_update_contact", "input": {"Name": "x"}},
        {
            "id": "bill",
            "action": "xero.create_invoice",
            "input": {
                "Type": "ACCPAY",
                "Contact": {"ContactID": "{% steps.contact.ContactID %}"},
                "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1}],
            },
        },
    ],
}


def outputs_of(env: LocalEnvironment) -> dict[str, str]:
    r = env.resources
    assert r is not None
    return {
        "WorkflowsTableName": r.workflows_table,
        "StateTableName": r.state_table,
        "XeroActionQueueUrl": r.xero_queue_url,
        "XeroActionDLQUrl": r.xero_dlq_url,
        "ClientaryActionQueueUrl": r.clientary_queue_url,
        "ClientaryActionDLQUrl": r.clientary_dlq_url,
        "XeroEventQueueUrl": r.xero_event_queue_url,
        "XeroEventDLQUrl": r.xero_event_dlq_url,
        "XeroConnectionSecretArn": r.xero_secret_id,
        "ClientaryConnectionSecretArn": r.clientary_secret_id,
        "ClientaryPushKeySecretArn": r.clientary_push_secret_id,
        "XeroWebhookKeySecretArn": r.xero_webhook_secret_id,
        "PayloadBucketName": r.payload_bucket,
    }


def deploy(env: LocalEnvironment, *, drop: tuple[str, ...] = ()) -> None:
    outputs = {k: v for k, v in outputs_of(env).items() if k not in drop}
    template = {
        "Resources": {"AlarmTopic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName=STACK, TemplateBody=json.dumps(template)
    )


@pytest.fixture
def env() -> Iterator[LocalEnvironment]:
    with LocalEnvironment(max_attempts=3) as environment:
        # a push key as long as the deploy generates (the local sample's is shorter)
        set_secret(environment, "clientary_push_secret_id", {"clientary_push_key": "k" * 48})
        environment.put_workflow(INVOICE_WORKFLOW)
        yield environment


def set_secret(env: LocalEnvironment, which: str, value: dict[str, Any]) -> None:
    from clientary_xero.storage.secrets import SecretStore, clear_secret_cache

    SecretStore().write(getattr(env.resources, which), value)
    clear_secret_cache()


def read_secret(env: LocalEnvironment, which: str) -> dict[str, Any]:
    from clientary_xero.storage.secrets import SecretStore

    return SecretStore().read(getattr(env.resources, which))


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    capsys.readouterr()
    code = main(["doctor", "--stack", STACK, "--json", *args])
    report = json.loads(capsys.readouterr().out)
    return code, {c["check"]: c for c in report["checks"]}


def only_problems(checks: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, c in checks.items() if c["status"] == "problem"]


# ------------------------------------------------------------------------------ healthy
def test_a_healthy_stack_passes_every_check(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    code, checks = doctor(capsys)
    assert only_problems(checks) == [] and code == 0
    assert checks["stack"]["status"] == "ok" and "outputs complete" in checks["stack"]["detail"]
    assert checks["xero connection"]["detail"].startswith("refreshed; GET /Organisation answered")
    assert checks["xero scopes"]["status"] == "ok"
    assert checks["clientary"]["status"] == "ok"
    assert checks["dead-letter queues"]["detail"] == "empty"


def test_the_table_names_every_check_and_no_secret_value(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    capsys.readouterr()
    assert main(["doctor", "--stack", STACK]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out
    for check in ("stack", "resources", "secret: xero", "xero connection", "runs", "rate budget"):
        assert check in out
    xero = read_secret(env, "xero_secret_id")
    clientary = read_secret(env, "clientary_secret_id")
    for value in (
        xero["client_secret"],
        xero["refresh_token"],
        xero["access_token"],
        clientary["api_token"],
        "k" * 48,
    ):
        assert value not in out


# ------------------------------------------------------------------------------ the stack
def test_no_such_stack(env: LocalEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["stack"]
    assert "there is no stack 'doc-stack' in us-east-1" in checks["stack"]["detail"]


def test_a_missing_output(env: LocalEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    deploy(env, drop=("XeroEventDLQUrl",))
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["stack"]
    assert "outputs missing: XeroEventDLQUrl" in checks["stack"]["detail"]


def test_a_missing_resource(env: LocalEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    deploy(env)
    assert env.resources is not None
    boto3.client("sqs", region_name="us-east-1").delete_queue(QueueUrl=env.resources.clientary_dlq_url)
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["resources"]
    assert (
        checks["resources"]["detail"] == "missing: Clientary action DLQ clientary-xero-clientary-actions-dlq"
    )


# ------------------------------------------------------------------------------ secrets
def test_an_unconnected_xero_secret_names_the_empty_keys(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    placeholder = {
        "auth": "oauth",
        "client_id": "",
        "client_secret": "",
        "tenant_id": "",
        "refresh_token": "",
    }
    set_secret(env, "xero_secret_id", placeholder)
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["secret: xero"]
    detail = checks["secret: xero"]["detail"]
    assert "client_id, client_secret, tenant_id, refresh_token not set" in detail
    assert "connect xero" in checks["secret: xero"]["fix"]


def test_a_clientary_secret_without_a_token(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    set_secret(env, "clientary_secret_id", {"subdomain": "acme", "api_token": ""})
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["secret: clientary"]
    assert "api_token not set" in checks["secret: clientary"]["detail"]


def test_a_short_push_key(env: LocalEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    deploy(env)
    set_secret(env, "clientary_push_secret_id", {"clientary_push_key": "short-key"})
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["secret: clientary push key"]
    detail = checks["secret: clientary push key"]["detail"]
    assert "9 characters: too short" in detail and "short-key" not in detail


def test_an_empty_webhook_key_is_a_problem_only_when_a_workflow_needs_it(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    set_secret(env, "xero_webhook_secret_id", {"xero_webhook_key": ""})
    code, checks = doctor(capsys)
    assert code == 0 and checks["secret: xero webhook key"]["status"] == "ok"
    env.put_workflow(
        {
            "id": "contact-notes",
            "trigger": "xero.contact_created",
            "steps": [{"id": "find", "action": "xero.find_contact", "input": {"Name": "x"}}],
        }
    )
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["secret: xero webhook key"]
    assert "contact-notes" in checks["secret: xero webhook key"]["detail"]


# ------------------------------------------------------------------------------ the services
def test_a_xero_connection_that_no_longer_refreshes(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    # a live access token, but a refresh token Xero does not know (disconnected, or expired)
    set_secret(env, "xero_secret_id", {**read_secret(env, "xero_secret_id"), "refresh_token": "revoked"})
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["xero connection"]
    assert "invalid_grant" in checks["xero connection"]["detail"]
    assert checks["xero connection"]["fix"].startswith("reconnect Xero: clientary-xero connect xero")


def test_scopes_the_workflows_need_but_the_connection_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    narrow_scopes = "offline_access accounting.settings accounting.contacts"
    with LocalEnvironment(max_attempts=3, xero_scopes=narrow_scopes) as narrow:
        set_secret(narrow, "clientary_push_secret_id", {"clientary_push_key": "k" * 48})
        narrow.put_workflow(INVOICE_WORKFLOW)
        deploy(narrow)
        code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["xero scopes"]
    assert checks["xero scopes"]["detail"] == "the connection lacks accounting.invoices (for bills)"


def test_clientary_refuses_the_stored_token(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    set_secret(env, "clientary_secret_id", {**read_secret(env, "clientary_secret_id"), "api_token": "wrong"})
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["clientary"]
    assert "401" in checks["clientary"]["detail"] and "wrong" not in checks["clientary"]["detail"]


# ------------------------------------------------------------------------------ the stack's state
def test_an_invalid_stored_workflow(env: LocalEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    deploy(env)
    assert env.resources is not None
    boto3.resource("dynamodb", region_name="us-east-1").Table(env.resources.workflows_table).put_item(
        Item={
            "id": "edited",
            "trigger": "clientary.new_invoice",
            "steps": [{"id": "a", "action": "xero.create_invoise", "input": {}}],
        }
    )
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["workflows"]
    assert "1 of 2 invalid" in checks["workflows"]["detail"] and "edited: " in checks["workflows"]["detail"]
    assert "create_invoise" in checks["workflows"]["detail"]


def test_a_message_on_a_dead_letter_queue(env: LocalEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    deploy(env)
    assert env.resources is not None
    boto3.client("sqs", region_name="us-east-1").send_message(
        QueueUrl=env.resources.xero_dlq_url, MessageBody=json.dumps({"run_id": "r1", "step_id": "bill"})
    )
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["dead-letter queues"]
    assert checks["dead-letter queues"]["detail"] == "clientary-xero-xero-actions-dlq: 1 message(s)"
    assert "runs replay" in checks["dead-letter queues"]["fix"]


def _run(run_id: str, status: str, updated: float, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "workflow_id": "bills",
        "trigger": "clientary.new_invoice",
        "record_id": run_id,
        "status": status,
        "created_at": R.iso(updated - 60),
        "updated_at": R.iso(updated),
        "current_step": "bill",
        **extra,
    }


def test_stuck_runs(env: LocalEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    deploy(env)
    now = time.time()
    state = env.state
    state.create_run(_run("r-busy", "RUNNING", now - 60))  # recent: being worked on
    state.create_run(_run("r-leased", "RUNNING", now - 7200))  # old, but a worker holds the lease
    state.claim_step("r-leased", "bill", owner="w", lease_seconds=90, seq=1)
    state.create_run(_run("r-waits", "WAITING", now - 7200, resume_at=R.iso(now + 600)))  # not due
    code, checks = doctor(capsys)
    assert code == 0 and checks["runs"]["detail"] == "none stuck"

    state.create_run(_run("r-stuck", "RUNNING", now - 7200))
    state.create_run(_run("r-overdue", "WAITING", now - 9000, resume_at=R.iso(now - 3600)))
    code, checks = doctor(capsys)
    assert code == 1 and only_problems(checks) == ["runs"]
    detail = checks["runs"]["detail"]
    assert detail.startswith("2 stuck: ")
    assert "r-stuck RUNNING for 2 h" in detail and "r-overdue WAITING, 1 h 0 min past its resume_at" in detail
    assert "runs replay RUN --stuck" in checks["runs"]["fix"]


def test_the_rate_budget_says_when_xeros_daily_limit_is_used_up(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.storage.ratelimit import RateBudget

    deploy(env)
    code, checks = doctor(capsys)
    assert checks["rate budget"]["status"] == "ok"
    RateBudget().blocked(env.xero_tenant_id(), "day", 7200)
    code, checks = doctor(capsys)
    # a state to know of, not a fault to fix: the runs wait and resume on their own
    assert code == 0 and checks["rate budget"]["status"] == "warning"
    assert checks["xero connection"]["status"] == "warning"  # refreshed; the call waits for the budget
    assert "daily limit (5,000 calls) is used up until" in checks["rate budget"]["detail"]


def test_an_older_apps_broad_scopes_cover_the_granular_ones() -> None:
    from clientary_xero.usecases.doctor import _satisfied

    broad = {"accounting.transactions", "accounting.contacts", "accounting.reports.read"}
    assert _satisfied("accounting.invoices", broad)
    assert _satisfied("accounting.contacts.read", broad)  # a write scope grants the read
    assert _satisfied("accounting.reports.balancesheet.read", broad)
    assert not _satisfied("accounting.settings", broad)
    assert not _satisfied("accounting.invoices", {"accounting.invoices.read"})  # read does not grant write


def test_without_a_stack_the_environments_resources_are_checked(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    # WORKFLOWS_TABLE, STATE_TABLE, … are set (the local runner's): no stack to read
    capsys.readouterr()
    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    checks = {c["check"]: c for c in report["checks"]}
    assert code == 0 and report["stack"] == ""
    assert checks["stack"]["status"] == "warning" and "not checked" in checks["stack"]["detail"]
    assert checks["xero connection"]["status"] == "ok" and checks["workflows"]["status"] == "ok"


def test_a_deleted_table_is_named_and_the_other_checks_still_report(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    assert env.resources is not None
    boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName=env.resources.state_table)
    code, checks = doctor(capsys)
    assert code == 1
    assert checks["resources"]["detail"] == "missing: State table clientary-xero-state"
    assert checks["runs"]["detail"] == "AWS refused the check (ResourceNotFoundException)"
    assert checks["dead-letter queues"]["status"] == "ok" and checks["workflows"]["status"] == "ok"
