"""Issue 7 on the HTTP routes: hostile but signed requests are 400s, big bodies 413s before any
secret read, replays are refused (push: timestamped signature; Xero: events already seen are
dropped before a fetch), the webhook fan-out is batched, and the webhook-key reads are cached."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from clientary_xero.connectors.xero.webhooks import event_for, payload_for
from clientary_xero.local.environment import (
    FakeLambdaContext,
    LocalEnvironment,
    api_gateway_event,
    load_handler,
    xero_webhook_event,
)
from clientary_xero.local.resources import SAMPLE_PUSH_KEY, SAMPLE_XERO_WEBHOOK_KEY
from clientary_xero.usecases.signatures import sign_base64, sign_hex, sign_push, verify_push

PUSH = "clientary.new_invoice"
PUSH_PATH = "/webhooks/clientary/new_invoice"
CONTRACT = "clientary.new_contract"


def queue_depth(url: str) -> int:
    attrs = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def nothing_enqueued(env: LocalEnvironment) -> bool:
    assert env.resources is not None
    urls = (
        env.resources.xero_queue_url,
        env.resources.clientary_queue_url,
        env.resources.xero_event_queue_url,
    )
    return all(queue_depth(url) == 0 for url in urls)


def push_raw(
    env: LocalEnvironment, raw: bytes, *, trigger: str = PUSH, signature: str | None = None
) -> dict[str, Any]:
    short = trigger.split(".", 1)[1]
    event = api_gateway_event(
        f"/webhooks/clientary/{short}", raw, signature or sign_push(SAMPLE_PUSH_KEY, raw)
    )
    return env.invoke_trigger(trigger, event)


def xero_raw(raw: bytes, *, base64_body: bool = False) -> dict[str, Any]:
    event = xero_webhook_event(raw, sign_base64(SAMPLE_XERO_WEBHOOK_KEY, raw), base64_body=base64_body)
    result: dict[str, Any] = load_handler("xero_webhook").lambda_handler(
        event, FakeLambdaContext("xero_webhook")
    )
    return result


def reason(response: dict[str, Any]) -> str:
    return str(json.loads(response["body"])["error"])


DEEP = b'{"id": 1, "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
BIG_INT = b'{"id": ' + b"9" * 4301 + b"}"


# ------------------------------------------------------------------- point 3: no crash, a 400
@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (DEEP, "nested deeper"),
        (BIG_INT, "too many digits"),
        ('{"id": "²"}'.encode(), "numeric 'id'"),
        (b'{"id": "1' + b"0" * 30 + b'"}', "numeric 'id'"),
        (b'{"id": NaN}', "NaN"),
        (b'{"id": 1, "t": "\\ud800"}', "surrogate"),
    ],
    ids=["deep", "big-int", "superscript-two", "30-digit-id", "nan", "lone-surrogate"],
)
@pytest.mark.parametrize("trigger", [PUSH, CONTRACT])
def test_a_signed_hostile_push_body_is_400_with_a_reason(
    local_env: LocalEnvironment, raw: bytes, words: str, trigger: str
) -> None:
    response = push_raw(local_env, raw, trigger=trigger)
    assert response["statusCode"] == 400, response["body"]
    assert words in reason(response)
    assert nothing_enqueued(local_env)


def test_a_signed_contract_with_amounts_too_big_for_cents_is_accepted_not_a_crash(
    local_env: LocalEnvironment,
) -> None:
    """A pushed contract is the record itself: its money fields are normalised from what was sent
    (1e308 rounded to cents raised decimal.InvalidOperation out of the handler)."""
    local_env.put_workflow(
        {
            "id": "contracts",
            "trigger": CONTRACT,
            "steps": [{"id": "c", "action": "xero.create_or_update_contact", "input": {"Name": "X"}}],
        }
    )
    raw = b'{"id": 5, "amount": 1e308, "balance": "' + b"9" * 32 + b'"}'
    response = push_raw(local_env, raw, trigger=CONTRACT)
    assert response["statusCode"] == 202, response["body"]
    (run,) = local_env.state.list_runs()
    assert run["record"]["amount"] == 1e308 and run["record"]["balance"] == "9" * 32


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"events": [], "x": ' + b"[" * 2000 + b"]" * 2000 + b"}", "nested deeper"),
        (b'{"events": [], "firstEventSequence": ' + b"1" * 5000 + b"}", "too many digits"),
        (b'{"events": [], "entropy": 1e999}', "too large"),
    ],
    ids=["deep", "big-int", "infinite-float"],
)
def test_a_signed_hostile_xero_payload_is_400_with_a_reason(
    local_env: LocalEnvironment, raw: bytes, words: str
) -> None:
    response = xero_raw(raw)
    assert response["statusCode"] == 400
    assert words in reason(response)
    assert nothing_enqueued(local_env)


def test_a_body_flagged_base64_that_is_not_base64_is_400_on_both_routes(local_env: LocalEnvironment) -> None:
    event = api_gateway_event(PUSH_PATH, b"{}", sign_push(SAMPLE_PUSH_KEY, b"{}"))
    event.update(isBase64Encoded=True, body="not base64 at all!")
    response = local_env.invoke_trigger(PUSH, event)
    assert response["statusCode"] == 400 and "base64" in reason(response)

    webhook = xero_webhook_event(b"{}", "x")
    webhook.update(isBase64Encoded=True, body="%%%")
    answer = load_handler("xero_webhook").lambda_handler(webhook, FakeLambdaContext("xero_webhook"))
    assert answer["statusCode"] == 400 and "base64" in reason(answer)
    assert nothing_enqueued(local_env)


def count_secret_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every GetSecretValue the layer's Secrets Manager client sends, by secret id."""
    from clientary_xero.storage.aws import client

    sm = client("secretsmanager")
    reads: list[str] = []
    original = sm.get_secret_value

    def counting(**kwargs: Any) -> Any:
        reads.append(str(kwargs.get("SecretId")))
        return original(**kwargs)

    monkeypatch.setattr(sm, "get_secret_value", counting)
    return reads


def test_a_body_over_256_kb_is_413_before_any_secret_is_read(
    local_env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = count_secret_reads(monkeypatch)
    raw = b'{"id": 1001, "pad": "' + b"a" * (256 * 1024) + b'"}'
    response = push_raw(local_env, raw)
    assert response["statusCode"] == 413 and "larger than" in reason(response)
    assert xero_raw(raw)["statusCode"] == 413
    assert xero_raw(raw, base64_body=True)["statusCode"] == 413
    assert reads == []
    assert nothing_enqueued(local_env)


def test_another_method_is_405_with_the_allowed_one(local_env: LocalEnvironment) -> None:
    event = api_gateway_event(PUSH_PATH, b"", None)
    event["requestContext"]["http"]["method"] = "GET"
    response = local_env.invoke_trigger(PUSH, event)
    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == "POST" and "GET" in reason(response)


def test_a_connect_query_that_is_not_utf8_is_400_not_a_crash(local_env: LocalEnvironment) -> None:
    event = api_gateway_event("/oauth/xero/connect", b"", None)
    event["requestContext"]["http"]["method"] = "GET"
    event["queryStringParameters"] = {"ticket": "\ud800"}
    response = load_handler("xero_connect").lambda_handler(event, FakeLambdaContext("xero_connect"))
    assert response["statusCode"] == 400 and "UTF-8" in reason(response)


# ------------------------------------------------------------------- point 4: push replays
def test_a_push_signed_more_than_five_minutes_ago_is_401_and_runs_nothing(
    local_env: LocalEnvironment,
) -> None:
    raw = b'{"id": 1001}'
    stale = sign_push(SAMPLE_PUSH_KEY, raw, timestamp=int(time.time()) - 301)
    response = push_raw(local_env, raw, signature=stale)
    assert response["statusCode"] == 401 and "old" in reason(response)
    future = sign_push(SAMPLE_PUSH_KEY, raw, timestamp=int(time.time()) + 301)
    assert push_raw(local_env, raw, signature=future)["statusCode"] == 401
    assert nothing_enqueued(local_env)


def test_the_untimed_sha256_form_is_refused_unless_the_setting_allows_it(
    local_env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = b'{"id": 424242}'
    response = push_raw(local_env, raw, signature=sign_hex(SAMPLE_PUSH_KEY, raw))
    assert response["statusCode"] == 401 and "sha256=" in reason(response)
    monkeypatch.setenv("CLIENTARY_PUSH_LEGACY_SIGNATURES", "true")
    # Past the signature now: the record does not exist in Clientary.
    assert push_raw(local_env, raw, signature=sign_hex(SAMPLE_PUSH_KEY, raw))["statusCode"] == 404


def test_verify_push_rules() -> None:
    body = b'{"id": 1}'
    now = 1_800_000_000
    good = sign_push("k", body, timestamp=now)
    assert verify_push("k", body, good, tolerance_seconds=300, now=now + 299) is None
    assert verify_push("k", body, good, tolerance_seconds=300, now=now + 301) is not None
    assert verify_push("k", body + b" ", good, tolerance_seconds=300, now=now) == "wrong signature"
    # Key rotation: one v1 per key, one match is enough.
    rotated = good + "," + sign_push("other", body, timestamp=now).split(",")[1]
    assert verify_push("other", body, rotated, tolerance_seconds=300, now=now) is None
    # The timestamp is signed: moving it breaks the signature.
    moved = good.replace(f"t={now}", f"t={now + 1000}")
    assert verify_push("k", body, moved, tolerance_seconds=300, now=now + 1000) == "wrong signature"
    assert (verify_push("k", body, "t=abc,v1=00", tolerance_seconds=300) or "").startswith("malformed")


@pytest.mark.parametrize(
    "shape",
    ["t=,{good}", "{good},t=1", "t={now},{good}", "t=-{now},v1={sig}", "t={now}.0,v1={sig}", "t=,v1={sig}"],
)
def test_a_push_header_with_no_single_integer_t_is_malformed_even_if_its_v1_matches(shape: str) -> None:
    """Two t= (or none usable) make the signed time ambiguous: refused, whichever one the v1 signs."""
    body, now = b'{"id": 1}', 1_800_000_000
    good = sign_push("k", body, timestamp=now)
    header = shape.format(good=good, now=now, sig=good.split("v1=")[1])
    refused = verify_push("k", body, header, tolerance_seconds=300, now=now)
    assert (refused or "").startswith("malformed"), header


def test_the_local_runner_re_signs_the_sample_push_at_send_time_only(
    local_env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from clientary_xero.settings import reset_settings

    events = Path(__file__).resolve().parents[1] / "events"
    sample = json.loads((events / "clientary_push_new_invoice.json").read_text())
    # Sent as it is (its t is 2026-01-01), the route refuses it as a replay...
    monkeypatch.setenv("TRIGGER", PUSH)
    reset_settings()
    direct = load_handler("clientary_trigger").lambda_handler(sample, FakeLambdaContext("t"))
    assert direct["statusCode"] == 401 and "old" in reason(direct)
    # ...through the runner it is signed now: past the signature (404: not in the empty sandbox).
    assert local_env.invoke_trigger(PUSH, sample)["statusCode"] == 404
    bad = json.loads((events / "clientary_push_bad_signature.json").read_text())
    assert local_env.invoke_trigger(PUSH, bad)["statusCode"] == 401


# -------------------------------------------------------------- point 4: Xero webhook replays
def test_one_signed_webhook_body_delivered_20_times_costs_one_xero_fetch(local_env: LocalEnvironment) -> None:
    contact = local_env.load_xero_record("Contacts", {"Name": "Replay Ltd", "ContactStatus": "ACTIVE"})
    raw = payload_for(
        [
            event_for(
                "CONTACT",
                "CREATE",
                contact["ContactID"],
                local_env.xero_tenant_id(),
                event_date="2026-03-01T10:00:00.000",
            )
        ]
    )
    for _ in range(20):
        assert local_env.xero_webhook(body=raw)["statusCode"] == 200
    before = len(local_env.xero.requests)
    local_env.drain()
    fetches = [r for r in local_env.xero.requests[before:] if f"/Contacts/{contact['ContactID']}" in r["url"]]
    assert len(fetches) == 1
    # A later change of the same contact is a new event (new eventDateUtc): it is fetched.
    later = payload_for(
        [
            event_for(
                "CONTACT",
                "UPDATE",
                contact["ContactID"],
                local_env.xero_tenant_id(),
                event_date="2026-03-01T11:00:00.000",
            )
        ]
    )
    local_env.xero_webhook(body=later)
    before = len(local_env.xero.requests)
    local_env.drain()
    assert [r for r in local_env.xero.requests[before:] if f"/Contacts/{contact['ContactID']}" in r["url"]]


def test_a_redelivery_of_the_same_queued_message_runs_again(aws: object) -> None:
    """A crash after the seen-marker must not lose the event: the same delivery passes again
    (the marker is the real conditional put on the State table)."""
    from clientary_xero.storage.state import StateStore
    from clientary_xero.usecases.xero_trigger import QueuedEvent, _seen_before

    event = event_for("INVOICE", "UPDATE", "abc", "tenant", event_date="2026-03-01T10:00:00.000")
    state = StateStore()
    first = QueuedEvent.read({"event": event, "delivery_id": "d1"})
    replay = QueuedEvent.read({"event": event, "delivery_id": "d2"})
    assert _seen_before(first, state) is False
    assert _seen_before(first, state) is False  # SQS redelivered d1
    assert _seen_before(replay, state) is True
    # Another change of the record (a later eventDateUtc) is a new event.
    later = {**event, "eventDateUtc": "2026-03-01T10:00:00.001"}
    assert _seen_before(QueuedEvent.read({"event": later, "delivery_id": "d3"}), state) is False


# ------------------------------------------------------------------- point 7: batched fan-out
def test_the_webhook_fan_out_sends_batches_of_ten(
    local_env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.storage.aws import client

    sqs = client("sqs")
    calls: list[str] = []
    for name in ("send_message", "send_message_batch"):
        original = getattr(sqs, name)

        def counting(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(sqs, name, counting)
    tenant = local_env.xero_tenant_id()
    events = [event_for("INVOICE", "UPDATE", f"00000000-0000-0000-0000-{i:012d}", tenant) for i in range(25)]
    assert local_env.xero_webhook(events)["statusCode"] == 200
    assert calls == ["send_message_batch"] * 3
    assert local_env.resources is not None
    assert queue_depth(local_env.resources.xero_event_queue_url) == 25


# -------------------------------------------------------------- point 6: cached key reads
def test_100_unsigned_requests_cost_at_most_one_secret_read_per_route(
    local_env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = count_secret_reads(monkeypatch)
    for i in range(100):
        raw = json.dumps({"id": i}).encode()
        assert push_raw(local_env, raw, signature="t=1,v1=" + "0" * 64)["statusCode"] == 401
        assert local_env.xero_webhook(body=raw, signature="AAAA")["statusCode"] == 401
    assert local_env.resources is not None
    assert reads.count(local_env.resources.clientary_push_secret_id) == 1
    assert reads.count(local_env.resources.xero_webhook_secret_id) == 1
    assert len(reads) == 2


def test_the_rotating_xero_token_is_never_read_from_the_cache(local_env: LocalEnvironment) -> None:
    from clientary_xero.storage.secrets import SecretStore

    assert local_env.resources is not None
    secret_id = local_env.resources.xero_secret_id
    store = SecretStore()
    store.read(secret_id)
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=secret_id, SecretString=json.dumps({"refresh_token": "new"})
    )
    assert store.read(secret_id) == {"refresh_token": "new"}
    cached = SecretStore(max_age=60)
    cached.read(local_env.resources.clientary_push_secret_id)
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=local_env.resources.clientary_push_secret_id,
        SecretString=json.dumps({"clientary_push_key": "b"}),
    )
    assert cached.read(local_env.resources.clientary_push_secret_id) == {
        "clientary_push_key": SAMPLE_PUSH_KEY
    }


def test_the_push_key_secret_holds_only_the_push_key(local_env: LocalEnvironment) -> None:
    from clientary_xero.storage.secrets import SecretStore

    assert local_env.resources is not None
    assert set(SecretStore().read(local_env.resources.clientary_push_secret_id)) == {"clientary_push_key"}
    assert set(SecretStore().read(local_env.resources.xero_webhook_secret_id)) == {"xero_webhook_key"}


def test_a_conflict_from_storage_is_409_not_a_500() -> None:
    from clientary_xero.errors import Conflict
    from clientary_xero.usecases.responses import error_response

    response = error_response(Conflict("ConditionalCheckFailedException"))
    assert response.status == 409 and response.body and response.body["error"]


def test_signed_pushes_read_the_clientary_token_once_a_minute(
    local_env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = count_secret_reads(monkeypatch)
    for i in range(5):
        assert push_raw(local_env, json.dumps({"id": 900 + i}).encode())["statusCode"] == 404
    assert local_env.resources is not None
    assert reads.count(local_env.resources.clientary_secret_id) == 1
    assert reads.count(local_env.resources.clientary_push_secret_id) == 1
