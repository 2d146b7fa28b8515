"""Clientary trigger Lambdas' use cases: the 15-minute poll and the authenticated push route.

Push: ``POST /webhooks/clientary/<name>`` with header ``x-clientary-xero-signature:
sha256=<hex HMAC-SHA256 of the raw body>`` keyed with ``clientary_push_key`` from the webhook
secret, and a JSON body holding the record's ``id``. The body is only a hint: the record is read
again from Clientary's API before anything runs, so a forged or stale body creates nothing.

Checks run in this order and each failure enqueues nothing: unknown trigger → 404, bad or missing
signature → 401, malformed JSON or no id → 400, record not in Clientary → 404.

Push-only triggers (``clientary.new_contract``: Clientary's API has no contracts endpoint) cannot
re-read: for them the signed body is the record, normalised like the polled ones.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from clientary_xero.engine.intake import Intake, TriggerEvent
from clientary_xero.errors import ClientaryXeroError, NotFound, PermanentError
from clientary_xero.settings import get_settings
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.usecases.responses import HttpResponse, error_response
from clientary_xero.usecases.signatures import CLIENTARY_PUSH_HEADER, verify_hex
from clientary_xero.workflows.triggers import get_trigger

logger = logging.getLogger(__name__)

PUSH_PREFIX = "/webhooks/clientary/"


def trigger_from_path(path: str) -> str | None:
    """``/webhooks/clientary/new_invoice`` → ``clientary.new_invoice`` (after any stage prefix)."""
    marker = path.rfind(PUSH_PREFIX)
    if marker < 0:
        return None
    name = path[marker + len(PUSH_PREFIX) :].strip("/")
    return f"clientary.{name}" if name and "/" not in name else None


def handle_push(
    *,
    function_trigger: str,
    path: str,
    headers: dict[str, str],
    raw_body: bytes,
    intake: Intake | None = None,
    secrets: SecretStore | None = None,
    clientary: Any | None = None,
) -> HttpResponse:
    trigger = trigger_from_path(path)
    spec = get_trigger(trigger) if trigger else None
    if spec is None or spec.source != "clientary" or trigger != function_trigger:
        shown = trigger or path
        return HttpResponse(404, {"error": f"unknown trigger {shown!r}"})

    lowered = {k.lower(): v for k, v in headers.items()}
    secrets = secrets or SecretStore()
    try:
        key = str(secrets.read(get_settings().webhook_secret_id).get("clientary_push_key") or "")
    except ClientaryXeroError as exc:
        return error_response(exc)
    if not key:
        return HttpResponse(
            503, {"error": "push is not configured: set clientary_push_key in the webhook secret"}
        )
    if not verify_hex(key, raw_body, lowered.get(CLIENTARY_PUSH_HEADER)):
        return HttpResponse(401, {"error": f"invalid or missing {CLIENTARY_PUSH_HEADER} signature"})

    try:
        body = json.loads(raw_body.decode("utf-8"))
    except UnicodeDecodeError:
        return HttpResponse(400, {"error": "malformed JSON: the body is not UTF-8"})
    except json.JSONDecodeError as exc:
        return HttpResponse(
            400, {"error": f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"}
        )
    record_id = body.get("id") if isinstance(body, dict) else None
    if (
        isinstance(record_id, bool)
        or not isinstance(record_id, (int, str))
        or not str(record_id).strip().isdigit()
    ):
        return HttpResponse(400, {"error": "the body must be a JSON object with the record's numeric 'id'"})

    try:
        source = clientary_source(trigger)
        if source.fetch is None:
            # Push-only (contracts): Clientary has no endpoint to re-read it, so the signed body is
            # the record; the HMAC signature is what vouches for it.
            record = source.normalize({**body, "id": int(str(record_id).strip())})
        else:
            client = clientary or _clientary_client(secrets)
            record = source.fetch(client, str(record_id).strip())
        event = TriggerEvent(trigger=trigger, record=record, record_id=str(record["id"]), delivery="push")
        starts = (intake or Intake.from_settings()).start_runs(event)
    except NotFound:
        return HttpResponse(
            404, {"error": f"{spec.resource} {record_id} was not found in Clientary; nothing was run"}
        )
    except ClientaryXeroError as exc:
        return error_response(exc)
    return HttpResponse(
        202, {"trigger": trigger, "record_id": str(record_id), "runs": [s.to_dict() for s in starts]}
    )


def handle_schedule(
    *,
    trigger: str,
    intake: Intake | None = None,
    secrets: SecretStore | None = None,
    clientary: Any | None = None,
) -> dict[str, Any]:
    """One poll: start runs for every new record, then advance the cursor (never before).

    Records are isolated: one that fails (its filter, its size, its shape) gets a FAILED run and the
    others go on; the cursor passes every record that has a run. A record the intake could not
    decide for a retryable reason (DynamoDB or SQS busy) is held: the cursor stays before it and the
    next poll delivers it again (``retry_later`` in the summary lists them)."""
    spec = get_trigger(trigger)
    if spec is None or spec.source != "clientary":
        raise PermanentError(f"this function serves no Clientary trigger (TRIGGER={trigger!r})")
    source = clientary_source(trigger)
    if not source.pollable:
        raise PermanentError(f"{trigger} is push-only: Clientary's API has nothing to poll for it")
    intake = intake or Intake.from_settings()
    client = clientary or _clientary_client(secrets or SecretStore())
    batch = source.poll(client, intake.state)
    events = [record_event(trigger, record, "poll", batch.problems) for record in batch.records]
    started: list[dict[str, Any]] = []
    retry_later: list[dict[str, str]] = []
    for outcome in intake.start_runs_many(events):
        started.extend(s.to_dict() for s in outcome.starts)
        if outcome.retry is not None:
            batch.hold(outcome.event.record_id)
            retry_later.append({"record_id": outcome.event.record_id, "reason": str(outcome.retry)})
    batch.commit()
    summary = {
        "trigger": trigger,
        "new_records": len(batch.records),
        "runs": started,
        "requests": batch.requests,
        **({"retry_later": retry_later} if retry_later else {}),
    }
    if retry_later:
        logger.warning(
            "poll: %d record(s) held for the next poll: %s",
            len(retry_later),
            "; ".join(f"{r['record_id']}: {r['reason']}" for r in retry_later),
        )
    logger.info("poll finished", extra={k: v for k, v in summary.items() if k not in ("runs", "retry_later")})
    return summary


def record_event(
    trigger: str, record: dict[str, Any], delivery: str, problems: dict[str, str] | None = None
) -> TriggerEvent:
    """A polled or backfilled Clientary record as the intake's event (``problems``: id -> why the
    record could not be normalised; such a record gets a FAILED run)."""
    record_id = str(record["id"])
    return TriggerEvent(
        trigger=trigger,
        record=record,
        record_id=record_id,
        delivery=delivery,
        problem=(problems or {}).get(record_id),
    )


def clientary_source(trigger: str) -> Any:
    from clientary_xero.connectors.clientary.triggers import SOURCES

    try:
        return SOURCES[trigger]
    except KeyError:
        raise PermanentError(f"no Clientary source for trigger {trigger!r}") from None


def _clientary_client(secrets: SecretStore) -> Any:
    from clientary_xero.connectors.clientary.client import build_clientary_client

    return build_clientary_client(secrets, get_settings())
