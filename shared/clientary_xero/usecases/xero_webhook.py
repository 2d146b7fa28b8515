"""``POST /webhooks/xero``: verify Xero's signature, enqueue the events, acknowledge.

Xero wants an answer within 5 seconds, an empty body, 200 for a correctly signed request and 401
for an incorrectly signed one (reference/xero-api.md §5). So this route does no Xero call at all:
it checks the signature over the raw bytes (constant time), puts one message per CONTACT/INVOICE
event on ``XeroEventQueue`` (``SendMessageBatch``, 10 per call) and answers. The Xero trigger
Lambda fetches the records later, after dropping events it has already seen (a replayed body
costs no Xero call: ``usecases.xero_trigger``). The key is read from its own secret (no other
function can read it), cached for a minute in the container.

Answers, in the order they are decided (every refusal enqueues nothing); the handler has already
answered 405 (not POST), 413 (over 256 KB) and 400 (not base64) in ``usecases.http_request``:

* ``503`` (JSON reason) — the webhook key is not configured or the secret cannot be read: Xero
  retries, and its intent-to-receive check fails until ``xero_webhook_key`` is set.
* ``401`` (empty) — missing or wrong ``x-xero-signature``. Intent-to-receive included.
* ``400`` (JSON reason) — correctly signed but not a Xero payload (malformed or hostile JSON —
  nested too deep, a 5,000-digit number — or no ``events``).
  Xero itself never sends that; only a holder of the key can, and the reason helps them.
* ``200`` (empty) — intent-to-receive (no events), or every event enqueued.
* ``503`` (JSON reason) — SQS refused a message: Xero delivers the payload again later; the
  trigger intake's dedupe makes the part already enqueued harmless.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from clientary_xero.connectors.xero.webhooks import SIGNATURE_HEADER, MalformedPayload, parse_payload
from clientary_xero.errors import ClientaryXeroError, NotFound
from clientary_xero.settings import get_settings
from clientary_xero.storage.queue import StepQueue
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.usecases.responses import HttpResponse
from clientary_xero.usecases.signatures import verify_base64

logger = logging.getLogger(__name__)

EVENT_QUEUE = "xero_events"


def event_queue() -> StepQueue:
    """The Xero event queue through the SQS adapter (``XERO_EVENT_QUEUE_URL``)."""
    return StepQueue(urls={EVENT_QUEUE: get_settings().xero_event_queue_url})


def handle_webhook(
    *,
    headers: dict[str, str],
    raw_body: bytes,
    secrets: SecretStore | None = None,
    queue: StepQueue | None = None,
) -> HttpResponse:
    lowered = {k.lower(): v for k, v in headers.items()}
    settings = get_settings()
    store = secrets or SecretStore(max_age=settings.secret_cache_seconds)
    try:
        key = str(store.read(settings.xero_webhook_secret_id).get("xero_webhook_key") or "")
    except NotFound:
        key = ""
    except ClientaryXeroError as exc:
        logger.warning("cannot read the webhook key: %s", exc)
        return HttpResponse(503, {"error": "the webhook key cannot be read now; try again"})
    if not key:
        return HttpResponse(
            503,
            {"error": "Xero webhooks are not configured: set xero_webhook_key in the Xero webhook secret"},
        )
    if not verify_base64(key, raw_body, lowered.get(SIGNATURE_HEADER)):
        logger.info("refused a Xero webhook: missing or wrong %s", SIGNATURE_HEADER)
        return HttpResponse(401)
    try:
        payload = parse_payload(raw_body)
    except MalformedPayload as exc:
        return HttpResponse(400, {"error": str(exc)})
    if payload.is_intent_to_receive:
        logger.info("Xero intent-to-receive: correctly signed")
        return HttpResponse(200)

    queue = queue or event_queue()
    received_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    # delivery_id tells the trigger an SQS redelivery of this message (which must run again) from
    # a replay of the same event in another delivery (dropped before it costs a Xero call).
    messages: list[dict[str, Any]] = [
        {"event": event.as_dict(), "received_at": received_at, "delivery_id": uuid.uuid4().hex}
        for event in payload.events
        if event.trigger is not None
    ]
    ignored = len(payload.events) - len(messages)
    try:
        enqueued = queue.send_batch(EVENT_QUEUE, messages)
    except ClientaryXeroError as exc:
        logger.warning("could not enqueue Xero events: %s", exc)
        return HttpResponse(503, {"error": "could not accept the events now; Xero will deliver them again"})
    logger.info(
        "Xero webhook accepted",
        extra={"events": len(payload.events), "enqueued": enqueued, "ignored": ignored},
    )
    return HttpResponse(200)
