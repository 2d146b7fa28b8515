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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clientary_xero import safe_json

SIGNATURE_HEADER = "x-xero-signature"

# (eventCategory, eventType) → trigger name.
EVENT_TRIGGERS: dict[tuple[str, str], str] = {
    ("CONTACT", "CREATE"): "xero.contact_created",
    ("CONTACT", "UPDATE"): "xero.contact_updated",
    ("INVOICE", "CREATE"): "xero.invoice_created",
    ("INVOICE", "UPDATE"): "xero.invoice_updated",
}


class WebhookEvent(BaseModel):
    """One event of a payload (Xero's ``WebhookEvent``); unknown fields are kept out, not refused."""

    model_config = ConfigDict(extra="ignore")

    resourceUrl: str = ""
    # Xero's ids are GUIDs; the bound keeps a signed but hostile value out of URLs and keys.
    resourceId: str = Field(min_length=1, max_length=100)
    eventDateUtc: str = ""
    eventType: str
    eventCategory: str
    tenantId: str = Field(min_length=1, max_length=100)
    tenantType: str = "ORGANISATION"

    @property
    def trigger(self) -> str | None:
        return EVENT_TRIGGERS.get((self.eventCategory.upper(), self.eventType.upper()))


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    events: list[WebhookEvent]
    firstEventSequence: int = 0
    lastEventSequence: int = 0
    entropy: str = ""

    @property
    def is_intent_to_receive(self) -> bool:
        return not self.events


class MalformedPayload(ValueError):
    """A correctly signed body that is not a Xero webhook payload; the message says why."""


def parse_payload(raw_body: bytes) -> WebhookPayload:
    try:
        # Not json.loads: deep nesting, huge integers and NaN become a reason, not an exception.
        data: Any = safe_json.loads(raw_body)
    except safe_json.UnsafeJson as exc:
        raise MalformedPayload(str(exc)) from None
    if not isinstance(data, dict):
        raise MalformedPayload("the body must be a JSON object with an 'events' list")
    try:
        return WebhookPayload.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in errors[:5]
        ) + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else "")
        raise MalformedPayload(f"not a Xero webhook payload: {problems}") from None


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
