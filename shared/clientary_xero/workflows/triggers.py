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


def get_trigger(name: str) -> TriggerSpec | None:
    return TRIGGERS.get(name)
