"""What ``test-workflow`` and ``runs show`` say about a run besides its steps: which side of each
``if`` ran, and whether the event given to ``test-workflow`` looks like the trigger's resource.

A branch decision is on the run (``decisions``: branch id → true for ``then``, engine/plan.py),
with the workflow as the run used it (``workflow``), so the lines come from the run alone. The
resource check compares the event's keys with the keys that mark each resource of the trigger's
service (as the Clientary sandbox and Xero return them): a hint, never a refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Keys that mark a record as one resource and not another of the same service (a client and a lead
# share one shape; a contract has no documented fields, so none mark it).
RESOURCE_MARKS: dict[str, dict[str, tuple[str, ...]]] = {
    "clientary": {
        "invoice": (
            "invoice_items",
            "due_date",
            "balance",
            "paid_date",
            "total_payments",
            "recurring_schedules",
        ),
        "estimate": ("estimate_items",),
        "client": ("website", "address", "address_2", "zip", "city", "invoice_extra_fields"),
        "lead": ("website", "address", "address_2", "zip", "city", "invoice_extra_fields"),
        "payment": ("received_on", "transaction_fee_amount", "transaction_id"),
        "expense": ("incurred_on", "invoice_item_id"),
        "project": (
            "rate",
            "budget",
            "budget_type",
            "project_type",
            "worked_hours",
            "unbilled_hours",
            "start_date",
        ),
        "task": ("complete", "completed_at", "assignee_id"),
        "staff": ("avatar", "mobile", "ext"),
    },
    "xero": {
        "contact": ("ContactID", "ContactStatus", "IsSupplier", "IsCustomer", "ContactPersons", "FirstName"),
        "invoice": ("InvoiceID", "InvoiceNumber", "LineItems", "AmountDue", "DueDate", "LineAmountTypes"),
        "payment": ("PaymentID", "PaymentType", "BankAmount", "IsReconciled"),
    },
}
# Xero's collection envelope around one record, e.g. {"Invoices": [{…}]}.
_ENVELOPES = {"Contacts": "contact", "Invoices": "invoice", "Payments": "payment"}


def resource_warning(source: str, resource: str, trigger: str, record: Any) -> str | None:
    """A warning when ``record`` does not look like a ``resource`` of ``source`` (e.g. an invoice
    given to ``clientary.new_client``); None when it does, or when nothing can be told."""
    marks = RESOURCE_MARKS.get(source, {})
    if source == "xero" and isinstance(record, dict) and len(record) == 1:
        (key,) = record
        if key in _ENVELOPES and isinstance(record[key], list) and record[key]:
            record = record[key][0]
    if not isinstance(record, dict) or not marks:
        return None
    keys = set(record)
    own = [k for k in marks.get(resource, ()) if k in keys]
    if own:
        return None
    scores = {
        other: [k for k in fields if k in keys]
        for other, fields in marks.items()
        if other != resource and fields != marks.get(resource)
    }
    best = max(scores, key=lambda other: len(scores[other]), default=None)
    service = source.capitalize()
    if best is not None and scores[best]:
        found = ", ".join(scores[best][:4])
        return (
            f"the event looks like a {service} {best} (it has {found}), not the {resource} that {trigger} "
            f"delivers: expressions read it as `{resource}.…`, so fields it lacks are missing"
        )
    # Marked as nothing (a hand-written {"id": 1, "name": …}): fine, the trigger reads it as given.
    return None


def _branches(nodes: Any) -> Iterator[dict[str, Any]]:
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict) and ("if" in node or "if_" in node):
            yield node
            yield from _branches(node.get("then"))
            yield from _branches(node.get("else"))


def branch_lines(run: dict[str, Any]) -> list[str]:
    """One line per decided ``if`` of the run, in the workflow's order:
    ``branch if_1: then (invoice.total > 100 was true)``."""
    from clientary_xero.workflows.expressions import expression_source

    decisions = run.get("decisions") or {}
    workflow = run.get("workflow")
    if not decisions or not isinstance(workflow, dict):
        return []
    lines = []
    for branch in _branches(workflow.get("steps")):
        decided = decisions.get(branch.get("id"))
        if decided is None:
            continue
        condition = branch.get("if", branch.get("if_"))
        source = " ".join((expression_source(condition) or str(condition)).split())
        side = "then" if decided else "else"
        empty = "" if branch.get(side) else ", nothing to run"
        lines.append(f"branch {branch.get('id')}: {side} ({source} was {str(bool(decided)).lower()}{empty})")
    return lines
