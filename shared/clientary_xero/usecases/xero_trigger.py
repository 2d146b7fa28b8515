"""The Xero trigger Lambda's use cases: one queued webhook event, and the 15-minute payments poll.

An event (enqueued by ``POST /webhooks/xero``) names a tenant and a contact or invoice. The record
is fetched from Xero (the event is only a hint), normalised, and handed to the trigger intake,
which dedupes by (workflow, trigger, record id[, version]): a redelivered event starts nothing new,
an update with a new ``UpdatedDateUTC`` runs again.

* An event for another organisation than the connected one is acknowledged and skipped: one Xero
  app's webhook reports every organisation connected to the app, and this stack acts on one.
* A record Xero no longer has (deleted between event and fetch) is acknowledged and skipped.
* An event already seen (the same tenant, category, type, resource and ``eventDateUtc`` in another
  delivery: a replayed or re-sent webhook body) is dropped before it costs a Xero call: one
  conditional put of a marker (kept ``EVENT_SEEN_DAYS``) per event. The marker names the delivery
  that wrote it, so an SQS redelivery of that same message (after a crash or a retryable failure)
  still runs. A new change to the record has a new ``eventDateUtc`` and runs.
* Retryable failures (429, 5xx, a busy token lock) raise ``RetryableError``: ``run_queued_event``
  delays that message by ``delay_seconds`` and re-raises, so it is reported as a batch item failure.
* Waiting for the shared Xero rate budget is not a failure: the event is sent again with a delay and
  this copy is acknowledged, so waits never spend the receives that lead to the DLQ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from clientary_xero import metrics
from clientary_xero.connectors.xero.webhooks import MalformedPayload, WebhookEvent
from clientary_xero.engine.intake import Intake, TriggerEvent
from clientary_xero.errors import NotFound, PermanentError, ReauthorizationRequired, RetryableError
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.usecases.sqs_batch import (
    MalformedRecord,
    SqsAttributes,
    mapping_or_none,
    read_fields,
    read_record,
    text,
)

logger = logging.getLogger(__name__)

# Days an event's seen-marker lives: Xero retries an unacknowledged delivery for about a day.
EVENT_SEEN_DAYS = 3


@dataclass(frozen=True)
class QueuedEvent:
    """The body of a message on XeroEventQueue (written by ``usecases.xero_webhook``). A dataclass
    read by ``read`` (the event with the webhook route's own reader), not a pydantic model: the
    trigger's first event imports neither pydantic nor Powertools' batch utility."""

    event: WebhookEvent
    received_at: str = ""
    # Set by the webhook route per message; kept when this message is re-sent after a rate wait.
    delivery_id: str = ""
    # On a copy re-sent after a rate wait: the Xero instants reserved for it (storage/ratelimit.py).
    reservation: dict[str, Any] | None = None

    @classmethod
    def read(cls, value: Any, where: str = "") -> QueuedEvent:
        """The queued event in ``value`` (unknown fields ignored), or ``MalformedRecord``."""
        place = f"{where}." if where else ""
        if not isinstance(value, dict):
            raise MalformedRecord([f"{where or '(top level)'}: Input should be a valid dictionary"])
        problems: list[str] = []
        event: WebhookEvent | None = None
        if "event" not in value:
            problems.append(f"{place}event: Field required")
        else:
            try:
                event = WebhookEvent.parse(value["event"], f"{place}event")
            except MalformedPayload as exc:
                problems += exc.problems or [str(exc)]
        given = read_fields(value, _QUEUED_FIELDS, place, problems)
        if problems:
            raise MalformedRecord(problems)
        assert event is not None
        return cls(event, **given)

    def as_dict(self) -> dict[str, Any]:
        """The message body as the webhook route writes it."""
        return {
            "event": self.event.as_dict(),
            "received_at": self.received_at,
            "delivery_id": self.delivery_id,
            "reservation": self.reservation,
        }


_QUEUED_FIELDS = (
    ("received_at", text, False),
    ("delivery_id", text, False),
    ("reservation", mapping_or_none, False),
)


@dataclass(frozen=True)
class EventRecord:
    """One SQS record of XeroEventQueue: the fields the handler needs, checked as Powertools'
    ``SqsRecordModel`` would (usecases/sqs_batch.py ``read_record``)."""

    messageId: str
    receiptHandle: str
    body: QueuedEvent
    attributes: SqsAttributes

    @classmethod
    def read(cls, record: Any) -> EventRecord:
        message_id, handle, body, count = read_record(record, lambda value: QueuedEvent.read(value, "body"))
        return cls(message_id, handle, body, SqsAttributes(count))


def handle_event(
    queued: QueuedEvent,
    *,
    intake: Intake | None = None,
    xero: Any | None = None,
    secrets: SecretStore | None = None,
) -> dict[str, Any]:
    from clientary_xero.connectors.xero.triggers import fetch_record, record_version

    event = queued.event
    trigger = event.trigger
    summary: dict[str, Any] = {"trigger": trigger, "record_id": event.resourceId, "runs": []}
    if trigger is None:
        summary["skipped"] = f"no trigger for {event.eventCategory} {event.eventType}"
        return summary
    intake = intake or Intake.from_settings()
    if _seen_before(queued, intake.state):
        logger.info("dropping a Xero event already seen", extra={"trigger": trigger})
        summary["skipped"] = "this event was already received (a repeated webhook delivery)"
        return summary
    client = xero or _xero_client(secrets)
    connected = _connected_tenant(client)
    if connected and connected.lower() != event.tenantId.lower():
        logger.info("skipping an event of another organisation", extra={"trigger": trigger})
        summary["skipped"] = "the event belongs to an organisation this stack is not connected to"
        return summary
    try:
        record = fetch_record(client, trigger, event.resourceId)
    except NotFound as exc:
        summary["skipped"] = str(exc)
        return summary
    start = TriggerEvent(
        trigger=trigger,
        record=record,
        record_id=event.resourceId,
        delivery="webhook",
        version=record_version(trigger, record, event.eventDateUtc),
        meta={"tenant_id": event.tenantId, "event_date": event.eventDateUtc},
    )
    starts = intake.start_runs(start)
    summary["runs"] = [s.to_dict() for s in starts]
    return summary


def _seen_before(queued: QueuedEvent, state: Any) -> bool:
    """Mark the event as seen by this delivery; True when another delivery marked it first."""
    event = queued.event
    if not event.eventDateUtc:
        return False  # without its date an event cannot be told from the record's next change
    identity = "|".join(
        (
            event.tenantId.lower(),
            event.eventCategory.upper(),
            event.eventType.upper(),
            event.resourceId.lower(),
            event.eventDateUtc,
        )
    )
    pk = "XEROEVENT#" + hashlib.sha256(identity.encode()).hexdigest()
    if state.put_item_if_absent(pk, "SEEN", {"delivery_id": queued.delivery_id}, EVENT_SEEN_DAYS * 86400):
        return False
    item = state.get_raw({"pk": pk, "sk": "SEEN"}) or {}
    try:
        owner = json.loads(item.get("data") or "{}").get("delivery_id", "")
    except ValueError:
        owner = None
    # The same delivery again (SQS redelivery, DLQ redrive, rate-wait re-send): it runs again.
    return owner != queued.delivery_id


def run_queued_event(
    queued: QueuedEvent, *, receipt_handle: str, xero: Any | None = None, queue: Any | None = None
) -> dict[str, Any]:
    """``handle_event`` for one SQS record, with the retry policy of the Xero event queue."""
    from clientary_xero.storage.ratelimit import BudgetExceeded, rate_turn
    from clientary_xero.usecases.xero_webhook import EVENT_QUEUE, event_queue

    queue = queue or event_queue()
    try:
        with rate_turn(queued.reservation):  # a re-sent event's reserved instants are honoured
            return handle_event(queued, xero=xero)
    except BudgetExceeded as exc:
        delay = min(900, max(1, exc.delay_seconds))  # SQS DelaySeconds ≤ 15 minutes; a day wait loops
        reservation = exc.reservation.to_message() if exc.reservation else None
        body = replace(queued, reservation=reservation).as_dict()
        queue.send(EVENT_QUEUE, body, delay_seconds=delay)
        return {
            "trigger": queued.event.trigger,
            "record_id": queued.event.resourceId,
            "runs": [],
            "rate_wait": {"limit": exc.limit, "seconds": delay},
        }
    except RetryableError as exc:
        queue.delay(EVENT_QUEUE, receipt_handle, exc.delay_seconds)
        raise
    except ReauthorizationRequired as exc:  # no run fails for it: the notice tells (usecases/alerts.py)
        from clientary_xero.engine.notify import reconnect_needed
        from clientary_xero.storage.state import StateStore

        reconnect_needed(StateStore(), "the Xero webhook events (contacts, invoices)", exc)
        raise


def handle_payments_poll(
    *,
    trigger: str = "xero.new_payment",
    intake: Intake | None = None,
    secrets: SecretStore | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One poll: start runs for every new payment, then advance the cursor (never before)."""
    from clientary_xero.connectors.http import get_transport
    from clientary_xero.connectors.xero.client import build_xero_client
    from clientary_xero.connectors.xero.triggers import HeaderTransport, poll_new_payments

    started_at = time.monotonic()
    intake = intake or Intake.from_settings()
    headers = HeaderTransport(get_transport())
    client = build_xero_client(secrets, intake.state, transport=headers)
    try:
        batch = poll_new_payments(
            client, headers, intake.state, now=now or datetime.now(UTC), trigger=trigger
        )
    except ReauthorizationRequired as exc:  # no run fails for it: the notice tells (usecases/alerts.py)
        from clientary_xero.engine.notify import reconnect_needed

        reconnect_needed(intake.state, "the Xero payments poll", exc)
        raise
    finally:
        client.close()
    events = []
    for record in batch.records:
        problem = record.pop("_problem", None)  # a payment that could not be normalised: FAILED run
        events.append(
            TriggerEvent(
                trigger=trigger,
                record=record,
                record_id=str(record["PaymentID"]),
                delivery="poll",
                problem=problem,
            )
        )
    started: list[dict[str, Any]] = []
    retry_later: list[dict[str, str]] = []
    # One payment's failure is its own FAILED run; a retryable one holds that payment before the
    # cursor (see PaymentBatch.hold) and the next poll delivers it again.
    for outcome in intake.start_runs_many(events):
        started.extend(s.to_dict() for s in outcome.starts)
        if outcome.retry is not None:
            batch.hold(outcome.event.record_id)
            retry_later.append({"record_id": outcome.event.record_id, "reason": str(outcome.retry)})
    batch.commit()
    summary = {
        "trigger": trigger,
        "first_poll": batch.first_poll,
        "new_records": len(batch.records),
        "runs": started,
        "requests": batch.requests,
        **({"retry_later": retry_later} if retry_later else {}),
    }
    if retry_later:
        logger.warning("poll: %d payment(s) held for the next poll", len(retry_later))
    logger.info("poll finished", extra={k: v for k, v in summary.items() if k not in ("runs", "retry_later")})
    metrics.observe("PollDuration", (time.monotonic() - started_at) * 1000, metrics.MILLISECONDS)
    return summary


def _connected_tenant(client: Any) -> str:
    """The connection's tenant id ("" for a custom connection that names none), from the client's
    token provider: one secret read per batch, shared with the fetches."""
    try:
        return str(client.tokens.tenant_id())
    except NotFound:
        raise PermanentError("the Xero connection secret does not exist: connect Xero first") from None


def _xero_client(secrets: SecretStore | None) -> Any:
    from clientary_xero.connectors.xero.client import build_xero_client

    return build_xero_client(secrets)
