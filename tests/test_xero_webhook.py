"""POST /webhooks/xero through its handler (moto + sandboxes), driven by the events in events/.

Xero's rules (reference/xero-api.md §5): 200 with an empty body for a correctly signed request,
401 for an incorrectly signed one — the intent-to-receive check sends both — within 5 seconds.
Every refusal enqueues nothing.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from clientary_xero.connectors.xero.webhooks import event_for, payload_for
from clientary_xero.local.environment import FakeLambdaContext, LocalEnvironment, load_handler
from clientary_xero.local.resources import SAMPLE_XERO_WEBHOOK_KEY
from clientary_xero.usecases.signatures import sign_base64

EVENTS = Path(__file__).resolve().parents[1] / "events"


def sample(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return result


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = load_handler("xero_webhook").lambda_handler(
        event, FakeLambdaContext("xero_webhook")
    )
    return result


def queued(env: LocalEnvironment) -> list[dict[str, Any]]:
    """Every message on XeroEventQueue (received and left in place)."""
    assert env.resources is not None
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(
        QueueUrl=env.resources.xero_event_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def env(local_env: LocalEnvironment) -> LocalEnvironment:
    return local_env


# ------------------------------------------------------------------------------ signatures
def test_the_sample_contact_event_is_accepted_with_an_empty_200_and_enqueued(env: LocalEnvironment) -> None:
    response = invoke(sample("xero_webhook_contact.json"))
    assert response["statusCode"] == 200
    assert response["body"] == ""
    (message,) = queued(env)
    assert message["event"]["eventCategory"] == "CONTACT"
    assert message["event"]["eventType"] == "CREATE"
    assert message["event"]["resourceId"] == "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777"
    assert message["event"]["tenantId"] == "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f"


def test_intent_to_receive_correctly_signed_is_200_and_enqueues_nothing(env: LocalEnvironment) -> None:
    response = invoke(sample("xero_webhook_intent_to_receive.json"))
    assert (response["statusCode"], response["body"]) == (200, "")
    assert queued(env) == []


def test_intent_to_receive_incorrectly_signed_is_401_with_an_empty_body(env: LocalEnvironment) -> None:
    response = invoke(sample("xero_webhook_bad_signature.json"))
    assert (response["statusCode"], response["body"]) == (401, "")
    assert queued(env) == []


def test_the_intent_to_receive_series_gets_200_or_401_by_signature_only(env: LocalEnvironment) -> None:
    # Xero sends several payloads, some signed with the key and some not; never both answers to one.
    answers = []
    for i in range(6):
        body = json.dumps(
            {"events": [], "lastEventSequence": 0, "firstEventSequence": 0, "entropy": f"E{i:019d}"}
        ).encode()
        good = i % 2 == 0
        signature = sign_base64(SAMPLE_XERO_WEBHOOK_KEY if good else "not-the-key", body)
        answers.append((good, env.xero_webhook(body=body, signature=signature)["statusCode"]))
    assert answers == [(good, 200 if good else 401) for good, _ in answers]
    assert queued(env) == []


def test_a_missing_signature_is_401(env: LocalEnvironment) -> None:
    event = sample("xero_webhook_contact.json")
    del event["headers"]["x-xero-signature"]
    response = invoke(event)
    assert (response["statusCode"], response["body"]) == (401, "")
    assert queued(env) == []


def test_a_signature_of_another_body_is_401_and_enqueues_nothing(env: LocalEnvironment) -> None:
    event = sample("xero_webhook_contact.json")
    event["body"] = event["body"].replace("CREATE", "UPDATE")  # tampered after signing
    assert invoke(event)["statusCode"] == 401
    assert queued(env) == []


def test_a_base64_body_is_decoded_before_the_signature_is_checked(env: LocalEnvironment) -> None:
    event = sample("xero_webhook_contact.json")
    raw = event["body"].encode()
    event["body"] = base64.b64encode(raw).decode()
    event["isBase64Encoded"] = True
    assert invoke(event)["statusCode"] == 200
    assert len(queued(env)) == 1


def test_a_signature_over_the_base64_text_instead_of_the_raw_bytes_is_refused(env: LocalEnvironment) -> None:
    raw = payload_for([])
    encoded = base64.b64encode(raw)
    response = env.xero_webhook(
        body=raw, signature=sign_base64(SAMPLE_XERO_WEBHOOK_KEY, encoded), base64_body=True
    )
    assert response["statusCode"] == 401


# ------------------------------------------------------------------------------ bad input
def test_a_correctly_signed_body_that_is_not_json_is_400_with_the_reason(env: LocalEnvironment) -> None:
    body = b'{"events": ['
    response = env.xero_webhook(body=body)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"].startswith("malformed JSON: Expecting value at line 1")
    assert queued(env) == []


def test_a_correctly_signed_object_without_events_is_400(env: LocalEnvironment) -> None:
    response = env.xero_webhook(body=b'{"entropy": "X"}')
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"] == "not a Xero webhook payload: events: Field required"
    assert queued(env) == []


def test_an_event_without_a_resource_id_refuses_the_whole_payload(env: LocalEnvironment) -> None:
    good = event_for("CONTACT", "CREATE", "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777", env.xero_tenant_id())
    broken = {k: v for k, v in good.items() if k != "resourceId"}
    response = env.xero_webhook([good, broken])
    assert response["statusCode"] == 400
    assert "events.1.resourceId: Field required" in json.loads(response["body"])["error"]
    assert queued(env) == []


def test_an_unconfigured_webhook_key_is_503_and_enqueues_nothing(env: LocalEnvironment) -> None:
    assert env.resources is not None
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=env.resources.xero_webhook_secret_id, SecretString=json.dumps({"xero_webhook_key": ""})
    )
    response = invoke(sample("xero_webhook_contact.json"))
    assert response["statusCode"] == 503
    assert "xero_webhook_key" in json.loads(response["body"])["error"]
    assert queued(env) == []


# ------------------------------------------------------------------------------ enqueueing
def test_each_contact_and_invoice_event_is_one_message_and_others_are_acknowledged(
    env: LocalEnvironment,
) -> None:
    tenant = env.xero_tenant_id()
    events = [
        event_for("CONTACT", "UPDATE", "11111111-1111-1111-1111-111111111111", tenant),
        event_for("INVOICE", "CREATE", "22222222-2222-2222-2222-222222222222", tenant),
        {**event_for("CREDITNOTE", "CREATE", "33333333-3333-3333-3333-333333333333", tenant), "data": {}},
    ]
    response = env.xero_webhook(events)
    assert (response["statusCode"], response["body"]) == (200, "")
    got = sorted((m["event"]["eventCategory"], m["event"]["eventType"]) for m in queued(env))
    assert got == [("CONTACT", "UPDATE"), ("INVOICE", "CREATE")]


def test_the_webhook_answers_well_inside_xeros_five_seconds(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.client import BaseClient

    # What the answer waits for, counted rather than timed: the AWS calls it makes.
    real = BaseClient._make_api_call
    made: list[str] = []

    def counted(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        made.append(operation)
        return real(self, operation, params)

    tenant = env.xero_tenant_id()
    events = [event_for("INVOICE", "UPDATE", f"00000000-0000-0000-0000-{i:012d}", tenant) for i in range(20)]
    monkeypatch.setattr(BaseClient, "_make_api_call", counted)
    response = env.xero_webhook(events)
    monkeypatch.undo()
    assert response["statusCode"] == 200
    # 20 events: two SendMessageBatch calls of 10 (and the signing key, read once), not 20 sends.
    assert made.count("SendMessageBatch") == 2 and "SendMessage" not in made, made
    assert len(made) <= 4, made
    # Nothing was fetched from Xero while answering: the records are read later.
    assert not [r for r in env.xero.requests if "/api.xro/2.0/" in r["url"]]


def test_a_queue_failure_is_503_so_xero_delivers_again(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XERO_EVENT_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    from clientary_xero.settings import reset_settings

    reset_settings()
    event = copy.deepcopy(sample("xero_webhook_contact.json"))
    response = invoke(event)
    assert response["statusCode"] == 503
    assert "Xero will deliver them again" in json.loads(response["body"])["error"]
