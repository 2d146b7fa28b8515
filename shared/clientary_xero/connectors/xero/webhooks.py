"""Xero webhooks: the signed payload, its events, and which trigger each event starts.

Facts (reference/xero-api.md §5): Xero POSTs ``{"events": [...], "firstEventSequence",
"lastEventSequence", "entropy"}`` signed with ``x-xero-signature`` = base64(HMAC-SHA256(webhook
key, raw body)). Events are thin (``resourceId``, ``tenantId``, ``eventCategory``, ``eventType``):
the record is fetched afterwards. The intent-to-receive check sends the same shape with no events,
some correctly and some incorrectly signed; only the signature decides the answer.

Only CONTACT and INVOICE events start workflows; CREDITNOTE and SUBSCRIPTION events are
acknowledged and dropped (no trigger exists for them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from clientary_xero import safe_json

SIGNATURE_HEADER = "x-xero-signature"

# (eventCategory, eventType) → trigger name.
EVENT_TRIGGERS: dict[tuple[str, str], str] = {
    ("CONTACT", "CREATE"): "xero.contact_created",
    ("CONTACT", "UPDATE"): "xero.contact_updated",
    ("INVOICE", "CREATE"): "xero.invoice_created",
    ("INVOICE", "UPDATE"): "xero.invoice_updated",
}


# Bound on the ids: Xero's ids are GUIDs; the bound keeps a signed but hostile value out of URLs and keys.
ID_MAX_LENGTH = 100


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event of a payload (Xero's ``WebhookEvent``); unknown fields are kept out, not refused.

    A dataclass read by ``WebhookEvent.parse``, not a pydantic model: the webhook route's first
    request then imports no pydantic (~60 ms of CPU of its cold start, most of what it would import).
    The field order is Xero's, and ``as_dict`` writes them in it."""

    resourceId: str
    eventType: str
    eventCategory: str
    tenantId: str
    resourceUrl: str = ""
    eventDateUtc: str = ""
    tenantType: str = "ORGANISATION"

    @property
    def trigger(self) -> str | None:
        return EVENT_TRIGGERS.get((self.eventCategory.upper(), self.eventType.upper()))

    def as_dict(self) -> dict[str, str]:
        return {
            "resourceUrl": self.resourceUrl,
            "resourceId": self.resourceId,
            "eventDateUtc": self.eventDateUtc,
            "eventType": self.eventType,
            "eventCategory": self.eventCategory,
            "tenantId": self.tenantId,
            "tenantType": self.tenantType,
        }

    @classmethod
    def parse(cls, data: Any, where: str = "") -> WebhookEvent:
        """``data`` as an event, or ``MalformedPayload`` whose ``problems`` say what is wrong, each
        ``where.field: reason``."""
        if not isinstance(data, dict):
            raise MalformedPayload(problems=[f"{where or 'event'}: Input should be a valid dictionary"])
        problems: list[str] = []
        values: dict[str, str] = {}
        for name, required, bounded in _EVENT_FIELDS:
            at = f"{where}.{name}" if where else name
            if name not in data:
                if required:
                    problems.append(f"{at}: Field required")
                continue
            value = data[name]
            if not isinstance(value, str):
                problems.append(f"{at}: Input should be a valid string")
            elif bounded and not value:
                problems.append(f"{at}: String should have at least 1 character")
            elif bounded and len(value) > ID_MAX_LENGTH:
                problems.append(f"{at}: String should have at most {ID_MAX_LENGTH} characters")
            else:
                values[name] = value
        if problems:
            raise MalformedPayload(problems=problems)
        return cls(**values)


# (field, required, an id bounded to 1..ID_MAX_LENGTH characters), in Xero's order.
_EVENT_FIELDS = (
    ("resourceUrl", False, False),
    ("resourceId", True, True),
    ("eventDateUtc", False, False),
    ("eventType", True, False),
    ("eventCategory", True, False),
    ("tenantId", True, True),
    ("tenantType", False, False),
)


@dataclass(frozen=True, slots=True)
class WebhookPayload:
    events: list[WebhookEvent]
    firstEventSequence: int = 0
    lastEventSequence: int = 0
    entropy: str = ""

    @property
    def is_intent_to_receive(self) -> bool:
        return not self.events


class MalformedPayload(ValueError):
    """A correctly signed body that is not a Xero webhook payload; the message says why (the first
    five problems, and how many more there are)."""

    def __init__(self, message: str = "", *, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if not message:
            shown = "; ".join(self.problems[:5])
            more = len(self.problems) - 5
            message = f"not a Xero webhook payload: {shown}" + (f" (and {more} more)" if more > 0 else "")
        super().__init__(message)


def parse_payload(raw_body: bytes) -> WebhookPayload:
    try:
        # Not json.loads: deep nesting, huge integers and NaN become a reason, not an exception.
        data: Any = safe_json.loads(raw_body)
    except safe_json.UnsafeJson as exc:
        raise MalformedPayload(str(exc)) from None
    if not isinstance(data, dict):
        raise MalformedPayload("the body must be a JSON object with an 'events' list")
    problems: list[str] = []
    events: list[WebhookEvent] = []
    raw_events = data.get("events")
    if "events" not in data:
        problems.append("events: Field required")
    elif not isinstance(raw_events, list):
        problems.append("events: Input should be a valid list")
    else:
        for i, raw in enumerate(raw_events):
            try:
                events.append(WebhookEvent.parse(raw, f"events.{i}"))
            except MalformedPayload as exc:
                problems.extend(exc.problems)
    sequences: dict[str, int] = {}
    for name in ("firstEventSequence", "lastEventSequence"):
        value = data.get(name, 0)
        # JSON integers only (a bool is not one; an integral float is, as pydantic took it).
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            problems.append(f"{name}: Input should be a valid integer")
        else:
            sequences[name] = int(value)
    entropy = data.get("entropy", "")
    if not isinstance(entropy, str):
        problems.append("entropy: Input should be a valid string")
    if problems:
        raise MalformedPayload(problems=problems)
    return WebhookPayload(events, entropy=entropy, **sequences)


def payload_for(events: list[dict[str, Any]], *, entropy: str = "LOCALENTROPY") -> bytes:
    """A payload as Xero sends it (for the local runner and the tests)."""
    body = {
        "events": events,
        "firstEventSequence": 1 if events else 0,
        "lastEventSequence": len(events),
        "entropy": entropy,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def event_for(
    category: str, event_type: str, resource_id: str, tenant_id: str, *, event_date: str = ""
) -> dict[str, Any]:
    """One event as Xero writes it."""
    collection = {"CONTACT": "Contacts", "INVOICE": "Invoices"}.get(category.upper(), category.title() + "s")
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/{collection}/{resource_id}",
        "resourceId": resource_id,
        "eventDateUtc": event_date or "2026-01-01T00:00:00.000",
        "eventType": event_type.upper(),
        "eventCategory": category.upper(),
        "tenantId": tenant_id,
        "tenantType": "ORGANISATION",
    }
