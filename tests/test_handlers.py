"""The Lambda handlers in-process (moto + sandboxes), driven by the sample events in events/."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from clientary_xero.local.environment import FakeLambdaContext, LocalEnvironment, load_handler
from clientary_xero.local.resources import SAMPLE_PUSH_KEY
from clientary_xero.usecases.signatures import sign_push

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
SAMPLES = ROOT / "shared" / "clientary_xero" / "local" / "samples"
WORKFLOW = SAMPLES / "invoice_to_xero.yaml"
TRIGGER = "clientary.new_invoice"


def event(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return result


def queue_depth(env: LocalEnvironment) -> int:
    assert env.resources is not None
    attrs = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=env.resources.xero_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


@pytest.fixture
def env(local_env: LocalEnvironment) -> LocalEnvironment:
    from clientary_xero.workflows.loader import read_document

    local_env.put_workflow(read_document(WORKFLOW))
    client = local_env.clientary.seed_client("Acme Builders")
    sample = json.loads((SAMPLES / "invoice_sent_taxed.json").read_text())
    sample.update(id=1001, client_id=client["id"], client={"id": client["id"], "name": client["name"]})
    local_env.clientary.load_record("invoices", sample)
    return local_env


def trigger(env: LocalEnvironment, evt: dict[str, Any]) -> dict[str, Any]:
    return env.invoke_trigger(TRIGGER, evt)


def test_push_event_starts_one_run_and_enqueues_its_first_step(env: LocalEnvironment) -> None:
    response = trigger(env, event("clientary_push_new_invoice.json"))
    assert response["statusCode"] == 202, response["body"]
    body = json.loads(response["body"])
    assert [(r["workflow_id"], r["status"], r["created"]) for r in body["runs"]] == [
        ("invoice-to-xero", "QUEUED", True)
    ]
    assert queue_depth(env) == 1
    run = env.state.get_run(body["runs"][0]["run_id"])
    assert run is not None and run["record"]["id"] == 1001 and run["trigger_meta"]["delivery"] == "push"


def test_push_re_reads_the_record_so_a_forged_id_creates_nothing(env: LocalEnvironment) -> None:
    forged = b'{"id": 424242}'
    response = env.push(TRIGGER, 424242, body=forged, signature=sign_push(SAMPLE_PUSH_KEY, forged))
    assert response["statusCode"] == 404
    assert "not found in Clientary" in json.loads(response["body"])["error"]
    assert queue_depth(env) == 0 and env.state.list_runs() == []


def test_bad_signature_is_401_and_enqueues_nothing(env: LocalEnvironment) -> None:
    response = trigger(env, event("clientary_push_bad_signature.json"))
    assert response["statusCode"] == 401
    assert queue_depth(env) == 0 and env.state.list_runs() == []


def test_missing_signature_is_401(env: LocalEnvironment) -> None:
    evt = event("clientary_push_new_invoice.json")
    del evt["headers"]["x-clientary-xero-signature"]
    assert trigger(env, evt)["statusCode"] == 401
    assert queue_depth(env) == 0


def test_malformed_json_is_400_with_a_reason_and_enqueues_nothing(env: LocalEnvironment) -> None:
    response = trigger(env, event("clientary_push_malformed.json"))
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"].startswith("malformed JSON:")
    assert queue_depth(env) == 0 and env.state.list_runs() == []


def test_unknown_trigger_is_404_and_enqueues_nothing(env: LocalEnvironment) -> None:
    evt = copy.deepcopy(event("clientary_push_new_invoice.json"))
    for key in ("rawPath",):
        evt[key] = "/webhooks/clientary/new_widget"
    evt["requestContext"]["http"]["path"] = "/webhooks/clientary/new_widget"
    response = trigger(env, evt)
    assert response["statusCode"] == 404
    assert "unknown trigger" in json.loads(response["body"])["error"]
    assert queue_depth(env) == 0 and env.state.list_runs() == []


def test_base64_encoded_body_is_decoded_before_the_signature_check(env: LocalEnvironment) -> None:
    import base64

    evt = event("clientary_push_new_invoice.json")
    evt["body"] = base64.b64encode(evt["body"].encode()).decode()
    evt["isBase64Encoded"] = True
    assert trigger(env, evt)["statusCode"] == 202


def test_scheduled_event_polls_first_to_set_the_watermark_then_finds_new_invoices(
    env: LocalEnvironment,
) -> None:
    first = trigger(env, event("schedule_new_invoice.json"))
    assert first["new_records"] == 0 and first["runs"] == []
    client = env.clientary.seed_client("Solo Design")
    invoice = env.clientary.add_invoice(
        client["id"], [{"title": "Logo", "quantity": 1, "price": 400}], status=1
    )
    second = trigger(env, event("schedule_new_invoice.json"))
    assert second["new_records"] == 1
    assert [r["status"] for r in second["runs"]] == ["QUEUED"]
    run = env.state.get_run(second["runs"][0]["run_id"])
    assert run is not None and run["record_id"] == str(invoice["id"])
    idle = trigger(env, event("schedule_new_invoice.json"))
    assert idle["new_records"] == 0 and idle["requests"] == 1


def test_sqs_event_runs_the_step_it_names(env: LocalEnvironment) -> None:
    from clientary_xero.engine import runs as R
    from clientary_xero.workflows.loader import load_workflow_file

    workflow = load_workflow_file(WORKFLOW)
    record = {
        "id": 1001,
        "client_id": 7,
        "client": {"id": 7, "name": "Sample Client"},
        "total_cost": 10,
        "status_name": "sent",
    }
    env.state.create_run(
        {
            "run_id": "run-sample",
            "workflow_id": workflow.id,
            "trigger": TRIGGER,
            "record_id": "1001",
            "created_at": R.now_iso(),
            "generation": 0,
            "record": record,
            "trigger_meta": {"name": TRIGGER},
            "workflow": workflow.to_document(),
            "decisions": {},
            "status": R.QUEUED,
            "current_step": "contact",
            "enqueued": True,
        }
    )
    env.use_action_function("xero")  # functions/step_actions as XeroActionFunction
    module = load_handler("step_actions")
    response = module.lambda_handler(event("sqs_xero_step.json"), FakeLambdaContext("step_actions"))
    assert response == {"batchItemFailures": []}
    contacts = env.xero.contacts(env.xero_tenant_id())
    assert [(c["Name"], c["ContactNumber"]) for c in contacts] == [("Sample Client", "CL-7")]
    steps = {s["step_id"]: s for s in env.state.get_steps("run-sample")}
    assert steps["contact"]["status"] == "SUCCEEDED"
    assert steps["contact"]["output"]["ContactID"] == contacts[0]["ContactID"]
    assert env.state.get_run("run-sample")["current_step"] == "invoice"  # type: ignore[index]


def test_unsupported_event_is_refused(env: LocalEnvironment) -> None:
    with pytest.raises(ValueError, match="unsupported event"):
        trigger(env, {"hello": "world"})


def test_a_malformed_step_message_fails_only_its_own_record(env: LocalEnvironment) -> None:
    good = event("sqs_xero_step.json")["Records"][0]
    good = dict(good, body=json.dumps({"run_id": "no-such-run", "step_id": "contact", "generation": 0}))
    poison = dict(good, messageId="poison-1", body="{not json")
    env.use_action_function("xero")
    module = load_handler("step_actions")
    response = module.lambda_handler({"Records": [good, poison]}, FakeLambdaContext("step_actions"))
    assert response == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}


def test_the_action_function_refuses_to_run_without_step_app(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.settings import reset_settings

    module = load_handler("step_actions")
    monkeypatch.setenv("STEP_APP", "")
    reset_settings()
    with pytest.raises(RuntimeError, match="STEP_APP is not set"):
        module.lambda_handler(event("sqs_xero_step.json"), FakeLambdaContext("step_actions"))
