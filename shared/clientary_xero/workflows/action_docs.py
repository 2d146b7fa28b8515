"""``docs/actions.md``: every action's input (fields, types, limits, descriptions), output and an
example, generated from the same input models as ``schemas/workflow.schema.json`` (``make docs``;
a test keeps the committed file in sync). Outputs are read from the actions' own output builders
(called on an empty record), so a field an action adds appears here without a second list.

Run ``python -m clientary_xero.workflows.action_docs > docs/actions.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from clientary_xero.connectors.xero.actions.common import UUID_PATTERN

_FIND = ("found", "count", "matches")

# One example input per action (tests validate each against its model).
EXAMPLES: dict[str, dict[str, Any]] = {
    "xero.create_or_update_contact": {
        "Name": "{% invoice.client.name %}",
        "ContactNumber": "{% 'CL-' & $string(invoice.client_id) %}",
        "EmailAddress": "{% invoice.client.email %}",
        "PaymentTerms": {"Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"}},
        "SalesDefaultAccountCode": "200",
    },
    "xero.find_contact": {
        "ContactNumber": "{% 'CL-' & $string(invoice.client_id) %}",
        "FailIfNotFound": True,
    },
    "xero.create_invoice": {
        "Type": "ACCREC",
        "Contact": {"ContactID": "{% steps.contact.ContactID %}"},
        "InvoiceNumber": "{% invoice.number %}",
        "Date": "{% invoice.date %}",
        "DueDate": "{% invoice.due_date %}",
        "Status": "AUTHORISED",
        "LineItems": "{% invoice.invoice_items.{'Description': title, 'Quantity': quantity, "
        "'UnitAmount': price, 'AccountCode': '200'} %}",
    },
    "xero.find_invoice": {"InvoiceNumber": "{% invoice.number %}", "Type": "ACCREC"},
    "xero.add_note_to_invoice": {
        "InvoiceID": "{% steps.invoice.InvoiceID %}",
        "Details": "{% 'Synced from Clientary invoice ' & invoice.number %}",
    },
    "xero.create_payment": {
        "Invoice": {"InvoiceID": "{% steps.invoice.InvoiceID %}"},
        "Account": {"Code": "090"},
        "Amount": "{% payment.amount %}",
        "Date": "{% payment.received_on %}",
        "Reference": "{% 'Clientary payment ' & $string(payment.id) %}",
    },
    "xero.create_quote": {
        "Contact": {"ContactID": "{% steps.contact.ContactID %}"},
        "Date": "{% estimate.date %}",
        "QuoteNumber": "{% estimate.number %}",
        "LineItems": [{"Description": "Design", "Quantity": 1, "UnitAmount": 1200, "AccountCode": "200"}],
    },
    "xero.create_purchase_order": {
        "Contact": {"ContactNumber": "SUP-1"},
        "PurchaseOrderNumber": "{% 'PO-' & $string(invoice.id) %}",
        "LineItems": [{"Description": "Materials", "Quantity": 10, "UnitAmount": 4.5, "AccountCode": "500"}],
    },
    "xero.find_purchase_order": {"PurchaseOrderNumber": "PO-0004"},
    "xero.add_stock_items": {
        "Items": [
            {
                "Code": "BOLT-10",
                "Name": "Bolt 10 mm",
                "SalesDetails": {"UnitPrice": 0.5, "AccountCode": "200"},
            }
        ]
    },
    "xero.create_bank_transfer": {
        "FromBankAccount": {"Code": "090"},
        "ToBankAccount": {"Code": "091"},
        "Amount": 250,
        "Reference": "{% 'Float ' & $string(invoice.id) %}",
    },
    "xero.create_project": {
        "ContactID": "{% steps.contact.ContactID %}",
        "Name": "{% project.name %}",
        "DeadlineUtc": "{% project.end_date %}",
    },
    "xero.get_balance_sheet": {"Date": "2026-01-31", "Periods": 2, "Timeframe": "MONTH"},
    "xero.get_profit_and_loss": {"FromDate": "2026-01-01", "ToDate": "2026-03-31"},
    "clientary.create_client": {
        "name": "{% contact.Name %}",
        "number": "{% contact.ContactNumber %}",
        "contact": {
            "name": "{% contact.FirstName & ' ' & contact.LastName %}",
            "email": "{% contact.EmailAddress %}",
        },
    },
    "clientary.create_expense": {"amount": 42.5, "description": "Taxi", "incurred_on": "2026-01-05"},
    "clientary.update_expense": {"id": "{% expense.id %}", "amount": 40, "description": "Taxi (corrected)"},
    "clientary.create_task": {"title": "{% 'Kick-off: ' & project.name %}", "project_id": "{% project.id %}"},
    "clientary.create_time_entry": {"project_id": "{% project.id %}", "title": "Kick-off", "hours": 1.5},
    "clientary.create_invoice_payment": {
        "invoice_number": "{% payment.Invoice.InvoiceNumber %}",
        "amount": "{% payment.Amount %}",
        "received_on": "{% payment.Date %}",
    },
}

# What a Clientary action outputs: the record it made (as docs/clientary-records.md shows that
# resource) and the fields it adds.
CLIENTARY_OUTPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "clientary.create_client": ("client", ("created", "contact", "warnings")),
    "clientary.create_expense": ("expense", ("created", "warnings")),
    "clientary.update_expense": ("expense", ()),
    "clientary.create_task": ("task", ("created", "warnings")),
    "clientary.create_time_entry": ("time entry", ("created", "warnings")),
    "clientary.create_invoice_payment": ("payment", ("invoice_id", "created", "warnings")),
}

# What the output fields mean (a field without an entry is shown without a description).
OUTPUT_NOTES = {
    "created": "true when this step made the record; false when it found it (an earlier try, "
    "a link, an existing record).",
    "unchanged": "true when the input equals the last one written and no call was made.",
    "matched_by": "how the existing contact was found (MatchBy): link, ContactNumber, EmailAddress or "
    "Name; null when it was created.",
    "archived": "true when the contact is ARCHIVED in Xero (matched, linked, not updated: see note).",
    "note": "why the step did less than asked (an archived match), else null.",
    "found": "whether anything matched (false: every other field is null).",
    "count": "how many matched.",
    "matches": "every match (one page, at most 100), each with the fields above.",
    "warnings": "present when Clientary's answer differs from what was sent (see README).",
    "contact": "the contact person added to the client (with its own created).",
    "invoice_id": "the Clientary invoice paid.",
    "ContactID": "Xero's contact id.",
    "InvoiceID": "Xero's invoice id.",
    "Total": "tax included.",
    "SubTotal": "tax excluded.",
    "AmountDue": "what is still to pay.",
    "Lines": "the report's rows, flat: {section, account, account_id, values: {column: number}}.",
    "Totals": "the report's totals by name, e.g. Totals.'Total Assets'.",
    "Rows": "Xero's own rows.",
    "ItemIDs": "Code → ItemID.",
    "Items": "each item: ItemID, Code, Name, IsTrackedAsInventory, … , created.",
    "NotesAdded": "how many notes were added (a long note is split).",
    "Split": "whether the note was split.",
}


def _output_builders() -> dict[str, Callable[[], list[str]]]:
    from clientary_xero.connectors.xero.actions import (
        banking,
        contacts,
        documents,
        invoices,
        projects,
        reports,
    )

    return {
        "xero.create_or_update_contact": lambda: list(contacts._contact_output({}, True)),
        "xero.find_contact": lambda: [*contacts.contact_fields({}), *_FIND],
        "xero.create_invoice": lambda: list(invoices._invoice_output({}, True)),
        "xero.find_invoice": lambda: [*invoices.invoice_fields({}), *_FIND],
        "xero.add_note_to_invoice": lambda: list(invoices._note_output("", [], None, created=True)),
        "xero.create_payment": lambda: list(invoices.payment_fields({}, True)),
        "xero.create_quote": lambda: list(documents.quote_fields({}, True)),
        "xero.create_purchase_order": lambda: list(documents.purchase_order_fields({}, True)),
        "xero.find_purchase_order": lambda: [*documents.purchase_order_fields({}), *_FIND],
        "xero.add_stock_items": lambda: ["Items", "ItemIDs", "count", "created", "updated"],
        "xero.create_bank_transfer": lambda: list(banking._transfer_fields({}, True)),
        "xero.create_project": lambda: list(projects._project_fields({}, True)),
        "xero.get_balance_sheet": lambda: list(reports._report_output({"Reports": [{}]}, "BalanceSheet")),
        "xero.get_profit_and_loss": lambda: list(reports._report_output({"Reports": [{}]}, "ProfitAndLoss")),
    }


def output_fields(name: str) -> list[str]:
    if name in CLIENTARY_OUTPUTS:
        return ["id", "…", *CLIENTARY_OUTPUTS[name][1]]
    return _output_builders()[name]()


# ------------------------------------------------------------------ rendering
def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        return f"[{schema['$ref'].rsplit('/', 1)[-1]}](#{_anchor_name(schema['$ref'])})"
    if "anyOf" in schema:
        kinds = [_type(s, defs) for s in schema["anyOf"] if s.get("type") != "null"]
        return " or ".join(kinds)
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}), defs)}"
    if schema.get("format") in ("date", "date-time"):
        return f"{kind} ({schema['format']})"
    return str(kind)


def _anchor_name(ref: str) -> str:
    return "model-" + ref.rsplit("/", 1)[-1].lower()


_LIMITS = (
    ("minLength", "≥ {} characters"),
    ("maxLength", "≤ {} characters"),
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "≥ {} items"),
    ("maxItems", "≤ {} items"),
    ("pattern", "matches `{}`"),
)


def _limits(schema: dict[str, Any]) -> str:
    parts: list[str] = []
    for member in [schema, *schema.get("anyOf", [])]:
        for key, text in _LIMITS:
            if key == "pattern" and member.get(key) == UUID_PATTERN:
                parts.append("a GUID")
            elif key in member:
                value = str(member[key]).replace("|", "\\|")
                parts.append(text.format(value))
    if schema.get("default") is not None:
        parts.append(f"default `{json.dumps(schema['default'])}`")
    return "; ".join(parts)


def _cell(text: Any) -> str:
    return str(text or "").replace("\n", " ").replace("|", "\\|")


def _fields_table(model_schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    required = set(model_schema.get("required", []))
    lines = ["| Field | Type | Required | Limits | Description |", "|---|---|---|---|---|"]
    for name, prop in model_schema.get("properties", {}).items():
        lines.append(
            f"| `{name}` | {_type(prop, defs)} | {'yes' if name in required else ''} | "
            f"{_cell(_limits(prop))} | {_cell(prop.get('description'))} |"
        )
    return lines


def _refs(schema: Any) -> list[str]:
    found: list[str] = []
    if isinstance(schema, dict):
        if "$ref" in schema:
            found.append(schema["$ref"].rsplit("/", 1)[-1])
        for value in schema.values():
            found += _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            found += _refs(value)
    return found


def _nested(root: str, defs: dict[str, Any]) -> list[str]:
    """The models ``root`` uses, in the order they appear, each once."""
    order: list[str] = []
    todo = _refs(defs[root])
    while todo:
        name = todo.pop(0)
        if name not in order and name != root:
            order.append(name)
            todo += _refs(defs[name])
    return order


def actions_markdown() -> str:
    from clientary_xero.connectors.base import registry
    from clientary_xero.workflows.schema import model_definitions

    actions = registry()
    refs, defs = model_definitions({name: spec.input_model for name, spec in actions.items()})
    names = {spec.input_model: refs[name]["$ref"].rsplit("/", 1)[-1] for name, spec in actions.items()}
    out = [
        "# Actions",
        "",
        "<!-- Generated by `make docs` (clientary_xero/workflows/action_docs.py) from the actions' "
        "input models; do not edit by hand. -->",
        "",
        "Every action a workflow step can run: its input (Xero's or Clientary's own field names; "
        "unknown fields are refused), its output (under `steps.<id>`) and an example. Any input value "
        "may be a `{% … %}` JSONata expression; the rendered input is checked against the limits below "
        "before any call. `schemas/workflow.schema.json` gives editors the same inputs.",
        "",
    ]
    for name in sorted(actions):
        out.append(f"- [`{name}`](#{name.replace('.', '')})")
    out.append("")
    shown: set[str] = set()
    for name in sorted(actions):
        spec = actions[name]
        model = names[spec.input_model]
        out += [f"## `{name}`", "", spec.description or "", ""]
        if spec.scopes:
            out += [f"Xero scopes: {', '.join(f'`{s}`' for s in spec.scopes)}.", ""]
        out += ["### Input", "", *_fields_table(defs[model], defs), ""]
        read_only = sorted(getattr(spec.input_model, "READ_ONLY", ()))
        if read_only:
            out += [f"Refused as read-only in Xero: {', '.join(f'`{f}`' for f in read_only)}.", ""]
        for nested in _nested(model, defs):
            if nested in shown:
                out += [f"`{nested}`: see [above](#{_anchor_name(nested)}).", ""]
                continue
            shown.add(nested)
            out += [f'<a id="{_anchor_name(nested)}"></a>', "", f"#### `{nested}`", ""]
            if defs[nested].get("description"):
                out += [_cell(defs[nested]["description"]), ""]
            out += [*_fields_table(defs[nested], defs), ""]
            model_class = next((m for m in _models_below(spec.input_model) if m.__name__ == nested), None)
            nested_read_only = sorted(getattr(model_class, "READ_ONLY", ()))
            if nested_read_only:
                out += [f"Refused as read-only in Xero: {', '.join(f'`{f}`' for f in nested_read_only)}.", ""]
        out += ["### Output", ""]
        if name in CLIENTARY_OUTPUTS:
            record, _ = CLIENTARY_OUTPUTS[name]
            out += [
                f"The {record} as Clientary answers it, normalised as in "
                "[clientary-records.md](clientary-records.md) (ISO dates, numbers for money), plus:",
                "",
            ]
            fields = list(CLIENTARY_OUTPUTS[name][1])
        else:
            fields = output_fields(name)
        if fields:
            out += ["| Field | Description |", "|---|---|"]
            out += [f"| `{f}` | {_cell(OUTPUT_NOTES.get(f, ''))} |" for f in fields]
        out += ["", "### Example", "", "```yaml"]
        step = {"id": name.split(".", 1)[1], "action": name, "input": EXAMPLES[name]}
        out += _yaml([step]).rstrip("\n").split("\n")
        out += ["```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _models_below(model: Any) -> list[Any]:
    from clientary_xero.workflows.validate import _model_leaves

    seen: list[Any] = []
    todo = [model]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        for field in current.model_fields.values():
            todo += _model_leaves(field.annotation)
    return seen


def _yaml(value: Any) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: Any, data: str) -> Any:
        # Expressions as the examples/ write them: double-quoted, so JSONata's quotes stay readable.
        style = '"' if "{%" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    return str(yaml.dump(value, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=300))


if __name__ == "__main__":  # pragma: no cover - make docs
    print(actions_markdown(), end="")
