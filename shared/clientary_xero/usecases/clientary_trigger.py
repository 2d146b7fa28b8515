"""Clientary trigger Lambdas' use cases: the 15-minute poll and the authenticated push route.

Push: ``POST /webhooks/clientary/<name>`` with header ``x-clientary-xero-signature:
t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` keyed with ``clientary_push_key`` from
the Clientary push secret (``usecases.signatures``), and a JSON body holding the record's ``id``.
The body is only a hint: the record is read again from Clientary's API before anything runs, so a
forged or stale body creates nothing.

Checks run in this order and each failure enqueues nothing (the function's handler has already
answered 405/413/400 for the method, the size and the encoding, ``usecases.http_request``): unknown
trigger → 404, push key not set → 503, bad, missing or stale signature (``t`` over 5 minutes from
now) → 401, malformed or hostile JSON, or no ASCII-digit id → 400, record not in Clientary → 404.

Push-only triggers (``clientary.new_contract``: Clientary's API has no contracts endpoint) cannot
re-read: for them the signed body is the record, normalised like the polled ones.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from clientary_xero import metrics
from clientary_xero.engine.intake import Intake, TriggerEvent
from clientary_xero.errors import ClientaryXeroError, NotFound, PermanentError
from clientary_xero.settings import get_settings
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.usecases.http_request import RequestRefused, parse_json
from clientary_xero.usecases.responses import HttpResponse, error_response
from clientary_xero.usecases.signatures import CLIENTARY_PUSH_HEADER, verify_push
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
        return HttpResponse(404, {"error": f"unknown trigger {shown[:200]!r}"})

    settings = get_settings()
    lowered = {k.lower(): v for k, v in headers.items()}
    # Cached for a minute: an unsigned flood costs one Secrets Manager read, not one per request.
    secrets = secrets or SecretStore(max_age=settings.secret_cache_seconds)
    try:
        key = str(secrets.read(settings.clientary_push_secret_id).get("clientary_push_key") or "")
    except NotFound:
        key = ""
    except ClientaryXeroError as exc:
        return error_response(exc)
    if not key:
        return HttpResponse(
            503, {"error": "push is not configured: set clientary_push_key in the Clientary push secret"}
        )
    refused = verify_push(
        key,
        raw_body,
        lowered.get(CLIENTARY_PUSH_HEADER),
        tolerance_seconds=settings.clientary_push_signature_tolerance_seconds,
        legacy=settings.clientary_push_legacy_signatures,
    )
    if refused is not None:
        return HttpResponse(
            401, {"error": f"invalid or missing {CLIENTARY_PUSH_HEADER} signature: {refused}"}
        )

    try:
        body = parse_json(raw_body)
    except RequestRefused as exc:
        return exc.response
    record_id = _record_id(body)
    if record_id is None:
        return HttpResponse(
            400,
            {"error": "the body must be a JSON object with the record's numeric 'id' (ASCII digits, ≤ 18)"},
        )

    try:
        source = clientary_source(trigger)
        # Push-only (contracts): Clientary has no endpoint to re-read it, so the signed body is the
        # record; the HMAC signature is what vouches for it. Otherwise the body is only a hint.
        client = None if source.push_only else clientary or _clientary_client(secrets)
        record, problem, warnings = source.pushed(client, body, record_id)
        event = TriggerEvent(
            trigger=trigger,
            record=record,
            record_id=record_id,
            delivery="push",
            problem=problem,
            meta={"warnings": warnings} if warnings else {},
        )
        starts = (intake or Intake.from_settings()).start_runs(event)
    except NotFound:
        return HttpResponse(
            404, {"error": f"{spec.resource} {record_id} was not found in Clientary; nothing was run"}
        )
    except ClientaryXeroError as exc:
        return error_response(exc)
    return HttpResponse(
        202, {"trigger": trigger, "record_id": record_id, "runs": [s.to_dict() for s in starts]}
    )


# A Clientary id: ASCII digits only (str.isdigit() also accepts "²", which int() refuses), and short
# enough to be an id rather than a 4,000-digit number.
_RECORD_ID = re.compile(r"[0-9]{1,18}")


def _record_id(body: Any) -> str | None:
    """The pushed record's id as a canonical digit string, or None when the body names none."""
    value = body.get("id") if isinstance(body, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not _RECORD_ID.fullmatch(value.strip()):
        return None
    return str(int(value.strip()))


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
    started_at = time.monotonic()
    intake = intake or Intake.from_settings()
    client = clientary or _clientary_client(secrets or SecretStore())
    batch = source.poll(client, intake.state)
    events = [
        record_event(trigger, record, "poll", batch.problems, batch.warnings) for record in batch.records
    ]
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
    metrics.observe("PollDuration", (time.monotonic() - started_at) * 1000, metrics.MILLISECONDS)
    return summary


def record_event(
    trigger: str,
    record: dict[str, Any],
    delivery: str,
    problems: dict[str, str] | None = None,
    warnings: dict[str, list[str]] | None = None,
) -> TriggerEvent:
    """A polled or backfilled Clientary record as the intake's event (``problems``: id -> why the
    record could not be normalised, such a record gets a FAILED run; ``warnings``: id -> what its
    run's ``trigger.warnings`` says, e.g. an invoice that names no client)."""
    record_id = str(record["id"])
    said = (warnings or {}).get(record_id)
    return TriggerEvent(
        trigger=trigger,
        record=record,
        record_id=record_id,
        delivery=delivery,
        problem=(problems or {}).get(record_id),
        meta={"warnings": list(said)} if said else {},
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
