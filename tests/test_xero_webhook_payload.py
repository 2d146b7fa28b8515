"""Reading a signed Xero webhook body (connectors/xero/webhooks.py ``parse_payload``): a payload
Xero sends is read field by field; anything else is refused with the fields that are wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clientary_xero.connectors.xero.webhooks import (
    ID_MAX_LENGTH,
    MalformedPayload,
    WebhookEvent,
    event_for,
    parse_payload,
    payload_for,
)


def _refused(body: Any) -> str:
    with pytest.raises(MalformedPayload) as raised:
        parse_payload(json.dumps(body).encode())
    return str(raised.value)


def test_a_payload_as_xero_sends_it_is_read_with_every_field() -> None:
    event = event_for("CONTACT", "UPDATE", "c-1", "t-1", event_date="2026-03-01T10:00:00.000")
    payload = parse_payload(payload_for([event], entropy="ABC"))
    assert payload.entropy == "ABC" and (payload.firstEventSequence, payload.lastEventSequence) == (1, 1)
    assert not payload.is_intent_to_receive
    (read,) = payload.events
    assert read.as_dict() == event  # every field, in Xero's order
    assert list(read.as_dict()) == list(event)
    assert read.trigger == "xero.contact_updated"


def test_unknown_fields_are_left_out_and_missing_optional_ones_take_defaults() -> None:
    body = {
        "events": [
            {"resourceId": "i-1", "eventType": "create", "eventCategory": "invoice", "tenantId": "t", "x": 1}
        ],
        "extra": True,
    }
    (event,) = parse_payload(json.dumps(body).encode()).events
    assert event == WebhookEvent(resourceId="i-1", eventType="create", eventCategory="invoice", tenantId="t")
    assert event.tenantType == "ORGANISATION" and event.trigger == "xero.invoice_created"
    assert "x" not in event.as_dict()


def test_an_intent_to_receive_has_no_events() -> None:
    assert parse_payload(payload_for([])).is_intent_to_receive


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "events: Field required"),
        ({"events": {}}, "events: Input should be a valid list"),
        ({"events": ["x"]}, "events.0: Input should be a valid dictionary"),
        (
            {
                "events": [
                    {"resourceId": 5, "eventType": "CREATE", "eventCategory": "INVOICE", "tenantId": "t"}
                ]
            },
            "events.0.resourceId: Input should be a valid string",
        ),
        (
            {
                "events": [
                    {"resourceId": "", "eventType": "CREATE", "eventCategory": "INVOICE", "tenantId": "t"}
                ]
            },
            "events.0.resourceId: String should have at least 1 character",
        ),
        (
            {
                "events": [
                    {
                        "resourceId": "r",
                        "eventType": "CREATE",
                        "eventCategory": "INVOICE",
                        "tenantId": "t" * 101,
                    }
                ]
            },
            f"events.0.tenantId: String should have at most {ID_MAX_LENGTH} characters",
        ),
        ({"events": [], "firstEventSequence": "one"}, "firstEventSequence: Input should be a valid integer"),
        ({"events": [], "lastEventSequence": True}, "lastEventSequence: Input should be a valid integer"),
        ({"events": [], "entropy": 7}, "entropy: Input should be a valid string"),
    ],
)
def test_a_body_that_is_not_a_payload_is_refused_saying_which_field(
    body: dict[str, Any], reason: str
) -> None:
    assert _refused(body) == f"not a Xero webhook payload: {reason}"


def test_every_problem_is_found_and_the_message_shows_five_and_counts_the_rest() -> None:
    events = [{"eventType": "CREATE"} for _ in range(3)]  # each lacks resourceId, eventCategory, tenantId
    message = _refused({"events": events})
    assert message.startswith("not a Xero webhook payload: events.0.resourceId: Field required; ")
    assert message.count("Field required") == 5 and message.endswith("(and 4 more)")


def test_the_event_reader_is_the_queue_messages_reader_too() -> None:
    # The Xero trigger reads the events the route queued with the same checks (usecases/xero_trigger.py).
    from clientary_xero.usecases.sqs_batch import MalformedRecord
    from clientary_xero.usecases.xero_trigger import QueuedEvent

    queued = QueuedEvent.read({"event": event_for("INVOICE", "CREATE", "i-2", "t-2"), "delivery_id": "d"})
    assert isinstance(queued.event, WebhookEvent) and queued.event.resourceId == "i-2"
    assert queued.as_dict()["event"] == event_for("INVOICE", "CREATE", "i-2", "t-2")
    assert QueuedEvent.read(queued.as_dict()) == queued  # a re-sent copy reads back the same
    with pytest.raises(MalformedRecord, match=r"event\.resourceId: Field required"):
        QueuedEvent.read({"event": {"eventType": "CREATE", "eventCategory": "INVOICE", "tenantId": "t"}})
    with pytest.raises(MalformedRecord, match="event: Field required"):
        QueuedEvent.read({"delivery_id": "d"})
    with pytest.raises(MalformedRecord, match="delivery_id: Input should be a valid string"):
        QueuedEvent.read({"event": event_for("INVOICE", "CREATE", "i-2", "t-2"), "delivery_id": 3})
