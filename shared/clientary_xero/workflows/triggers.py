"""The trigger vocabulary: what a workflow's ``trigger`` may name and where its record appears.

The record of a trigger is available to expressions under its resource name (``invoice`` for
``clientary.new_invoice``); trigger metadata under ``trigger``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TriggerSpec:
    name: str
    source: str  # "clientary" or "xero"
    resource: str  # the key the record is exposed under in expressions
    collection: str  # the source API's collection (Clientary: /api/v2/<collection>)
    description: str
    delivery: str  # how records arrive: "poll+push", "push", "webhook", ...


TRIGGERS: dict[str, TriggerSpec] = {
    spec.name: spec
    for spec in (
        TriggerSpec(
            name="clientary.new_invoice",
            source="clientary",
            resource="invoice",
            collection="invoices",
            description="A new invoice in Clientary (polled every 15 minutes; immediate when pushed).",
            delivery="poll+push",
        ),
    )
}

# --- Xero triggers (issue #3): webhooks for contacts and invoices, a 15-minute poll for payments.
# Update triggers pass the record's UpdatedDateUTC as the run's version: each distinct update runs
# once, a redelivered event does not.
TRIGGERS.update(
    {
        spec.name: spec
        for spec in (
            TriggerSpec(
                name="xero.contact_created",
                source="xero",
                resource="contact",
                collection="Contacts",
                description="A contact was created in Xero (webhook; the contact is re-read from Xero).",
                delivery="webhook",
            ),
            TriggerSpec(
                name="xero.contact_updated",
                source="xero",
                resource="contact",
                collection="Contacts",
                description="A contact was updated or archived in Xero (webhook; one run per update).",
                delivery="webhook",
            ),
            TriggerSpec(
                name="xero.invoice_created",
                source="xero",
                resource="invoice",
                collection="Invoices",
                description="An invoice or bill was created in Xero (webhook; re-read from Xero).",
                delivery="webhook",
            ),
            TriggerSpec(
                name="xero.invoice_updated",
                source="xero",
                resource="invoice",
                collection="Invoices",
                description="An invoice or bill was updated in Xero (webhook; one run per update).",
                delivery="webhook",
            ),
            TriggerSpec(
                name="xero.new_payment",
                source="xero",
                resource="payment",
                collection="Payments",
                description="A new payment in Xero (polled with If-Modified-Since every 15 minutes).",
                delivery="poll",
            ),
        )
    }
)

# --- The other Clientary triggers (issue #4). Clientary publishes no webhooks: each is polled every
# 15 minutes and can be pushed through its signed route. Clientary's API has no contracts endpoint,
# so New Contract is push-only (nothing to poll; the signed body is the record).
_POLLED = "(polled every 15 minutes; immediate when pushed)."
TRIGGERS.update(
    {
        f"clientary.new_{resource}": TriggerSpec(
            f"clientary.new_{resource}", "clientary", resource, collection, f"{text} {_POLLED}", "poll+push"
        )
        for resource, collection, text in (
            ("expense", "expenses", "A new expense"),
            ("project", "projects", "A new project (active, completed or billable)"),
            ("client", "clients", "A new client"),
            ("estimate", "estimates", "A new estimate"),
            ("lead", "leads", "A new lead"),
            ("task", "tasks", "A new task"),
            ("payment", "payments", "A new invoice payment"),
            ("staff", "staff", "A new staff user"),
        )
    }
)
TRIGGERS["clientary.new_contract"] = TriggerSpec(
    name="clientary.new_contract",
    source="clientary",
    resource="contract",
    collection="contracts",
    description="A new contract, pushed only: Clientary's API has no contracts endpoint, so nothing can "
    "poll for it; POST the contract (with its id) to the signed push route.",
    delivery="push",
)


def get_trigger(name: str) -> TriggerSpec | None:
    return TRIGGERS.get(name)
