"""Invoices (items, taxes, totals, balance), estimates (invoices without due date or payments) and
payments (created only under an invoice; they lower its balance)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from clientary_xero.local.clientary_sandbox.fields import (
    _CENT,
    _blank,
    _decimal,
    _field_builder,
    _parse_day,
    _today,
)
from clientary_xero.local.clientary_sandbox.rendering import _render_invoice
from clientary_xero.local.clientary_sandbox.spec import Record, ResourceSpec, SandboxValidation, _newest_first

if TYPE_CHECKING:
    from clientary_xero.local.clientary_sandbox.state import SandboxState

INVOICE_ATTRIBUTES = (
    "number",
    "title",
    "date",
    "due_date",
    "client_id",
    "currency_code",
    "note",
    "summary",
    "po",
    "status",
    "tax",
    "tax_label",
    "tax2",
    "tax2_label",
    "tax3",
    "tax3_label",
    "compound_tax",
    "invoice_items_attributes",
)
ITEM_ATTRIBUTES = ("id", "title", "quantity", "price", "taxable", "item_type", "_destroy")


# --------------------------------------------------------------------------- invoices
def _build_invoice(sandbox: SandboxState, fields: dict[str, Any], existing: Record | None) -> Record:
    errors: dict[str, list[str]] = {}
    record: Record = (
        copy.deepcopy(existing)
        if existing
        else {
            "number": None,
            "title": "",
            "date": None,
            "due_date": None,
            "client_id": None,
            "note": "",
            "summary": None,
            "po": "",
            "status": 0,
            "currency_code": None,
            "tax": 0.0,
            "tax_label": "Tax",
            "tax2": 0.0,
            "tax2_label": "",
            "tax3": 0.0,
            "tax3_label": "",
            "compound_tax": False,
            "invoice_items": [],
            "payments": [],
            "recurring_schedules": [],
            "paid_date": None,
        }
    )
    for key, value in fields.items():
        if key == "invoice_items_attributes":
            continue
        if key in ("date", "due_date"):
            day = _parse_day(value)
            if day is None:
                errors.setdefault(key, []).append("is invalid")
                continue
            record[key] = sandbox.date_text(day)
        elif key == "currency_code":
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
                errors.setdefault(key, []).append("is invalid")
                continue
            record[key] = value.upper()
        elif key == "client_id":
            if value is not None and (
                not str(value).isdigit() or int(value) not in sandbox._records["clients"]
            ):
                errors.setdefault("client", []).append("must exist")
                continue
            record[key] = int(value) if value is not None else None
        elif key == "status":
            if not str(value).isdigit() or int(value) not in range(6):
                errors.setdefault(key, []).append("is not included in the list")
                continue
            record[key] = int(value)
        elif key in ("tax", "tax2", "tax3"):
            number = _decimal(value)
            if number is None:
                errors.setdefault(key, []).append("is not a number")
                continue
            record[key] = float(number)
        elif key == "compound_tax":
            record[key] = bool(value)
        elif key == "number":
            record[key] = None if _blank(value) else str(value)
        else:
            record[key] = value
    items = _apply_items(
        sandbox, record.get("invoice_items") or [], fields.get("invoice_items_attributes"), errors
    )
    if errors:
        raise SandboxValidation(errors)
    record["invoice_items"] = items
    if _blank(record.get("number")):
        record["number"] = _next_number(sandbox._records["invoices"].values())
    _compute_totals(sandbox, record)
    return record


def _apply_items(
    sandbox: SandboxState, current: list[Record], attributes: Any, errors: dict[str, list[str]]
) -> list[Record]:
    """Rails nested attributes: an entry with ``id`` updates (or with ``_destroy`` removes) that item,
    one without ``id`` adds an item."""
    items = copy.deepcopy(current)
    if attributes is None:
        return items
    if isinstance(attributes, dict):  # Rails also accepts {"0": {...}, "1": {...}}
        attributes = list(attributes.values())
    if not isinstance(attributes, list):
        errors.setdefault("invoice_items", []).append("is invalid")
        return items
    for raw in attributes:
        if not isinstance(raw, dict):
            errors.setdefault("invoice_items", []).append("is invalid")
            continue
        entry = {k: v for k, v in raw.items() if k in ITEM_ATTRIBUTES}
        if entry.get("id") is not None:
            target = next((i for i in items if str(i["id"]) == str(entry["id"])), None)
            if target is None:
                errors.setdefault("invoice_items", []).append(f"item {entry['id']} not found")
                continue
            if entry.get("_destroy") in (True, 1, "1", "true"):
                items.remove(target)
                continue
        else:
            target = {
                "id": next(sandbox._item_ids),
                "item_type": 3,
                "title": "",
                "quantity": 1.0,
                "price": 0.0,
                "taxable": False,
            }
            items.append(target)
        if "title" in entry:
            target["title"] = entry["title"]
        if "taxable" in entry:
            target["taxable"] = entry["taxable"] in (True, 1, "1", "true")
        if "item_type" in entry:
            if not str(entry["item_type"]).isdigit():
                errors.setdefault("invoice_items.item_type", []).append("is not a number")
                continue
            target["item_type"] = int(entry["item_type"])
        for key in ("quantity", "price"):
            if key in entry:
                number = _decimal(entry[key])
                if number is None:
                    errors.setdefault(f"invoice_items.{key}", []).append("is not a number")
                    continue
                target[key] = float(number)
        if target.get("item_type") == 0:  # a section header has a title only
            target["quantity"], target["price"] = 0.0, 0.0
    return items


def _compute_totals(sandbox: SandboxState, record: Record) -> None:
    subtotal = taxable = Decimal(0)
    for item in record["invoice_items"]:
        if item.get("item_type") == 0:
            continue
        quantity = _decimal(item.get("quantity")) or Decimal(0)
        line = (quantity * (_decimal(item.get("price")) or Decimal(0))).quantize(_CENT, ROUND_HALF_UP)
        subtotal += line
        if item.get("taxable", item.get("taxable?")):
            taxable += line
    rate1, rate2, rate3 = (Decimal(str(record.get(k) or 0)) / 100 for k in ("tax", "tax2", "tax3"))
    tax1 = (taxable * rate1).quantize(_CENT, ROUND_HALF_UP)
    tax2 = ((taxable + tax1 if record.get("compound_tax") else taxable) * rate2).quantize(
        _CENT, ROUND_HALF_UP
    )
    tax3 = (taxable * rate3).quantize(_CENT, ROUND_HALF_UP)
    total = subtotal + tax1 + tax2 + tax3
    paid = sum((_decimal(p.get("amount")) or Decimal(0) for p in record.get("payments") or []), Decimal(0))
    if record.get("status") == 4 and not paid:
        paid = total  # marked paid in the UI: treat it as settled in full
    if record.get("status") == 4 and not record.get("paid_date"):
        record["paid_date"] = sandbox.date_text(sandbox.now().date())
    record.update(
        subtotal=float(subtotal),
        taxable_subtotal=float(taxable),
        non_taxable_subtotal=float(subtotal - taxable),
        total_tax=float(tax1),
        total_tax2=float(tax2),
        total_tax3=float(tax3),
        total_taxes=float(tax1 + tax2 + tax3),
        total_cost=float(total),
        total_payments=float(paid),
        balance=float(total - paid),
    )


def _next_number(invoices: Iterable[Record]) -> str:
    numbers = [int(r["number"]) for r in invoices if str(r.get("number") or "").isdigit()]
    return str(max(numbers, default=1000) + 1)


# --------------------------------------------------------------------------- payments
# Payments: created only under an invoice; received_on with dashes (the docs' example).
PAYMENT_ATTRIBUTES = ("amount", "note", "received_on", "invoice_id")


def _finish_payment(sandbox: SandboxState, record: Record) -> None:
    if sandbox.ignore_payment_dates:
        record["received_on"] = None  # as if Clientary ignored it: the payment gets today's date
    _today(sandbox, record, "received_on", dash=True)
    if record.get("amount") is not None and float(record["amount"]) <= 0:
        raise SandboxValidation({"amount": ["must be greater than 0"]})


def _payment_made(sandbox: SandboxState, payment: Record) -> None:
    """A payment shows in its invoice's ``payments`` and lowers its balance; settled means paid (4)."""
    invoice = sandbox._records["invoices"][payment["invoice_id"]]
    invoice.setdefault("payments", []).append(
        {
            "id": payment["id"],
            "amount": payment["amount"],
            "received_on": payment["received_on"],
            "note": payment.get("note") or "",
            "invoice_id": invoice["id"],
        }
    )
    _compute_totals(sandbox, invoice)
    if invoice["balance"] <= 0 and invoice.get("status") != 4:
        invoice["status"] = 4
        _compute_totals(sandbox, invoice)
    invoice["_updated"] = sandbox.now()
    invoice.pop("_updated_text", None)


def _received_newest_first(record: Record) -> Any:
    day = _parse_day(record.get("received_on"))
    return (-(day.toordinal() if day else 0), -record["_created_ts"], -record["id"])


# --------------------------------------------------------------------------- estimates
# Estimates: like invoices without due date, payments or balance; items under ``estimate_items``.
ESTIMATE_ATTRIBUTES = (
    "number",
    "title",
    "date",
    "client_id",
    "currency_code",
    "note",
    "summary",
    "status",
    "tax",
    "tax_label",
    "tax2",
    "tax2_label",
    "tax3",
    "tax3_label",
    "compound_tax",
    "estimate_items_attributes",
)
_INVOICE_ONLY = (
    "due_date",
    "payments",
    "balance",
    "total_payments",
    "po",
    "recurring_schedules",
    "paid_date",
)


def _build_estimate(sandbox: SandboxState, fields: dict[str, Any], existing: Record | None) -> Record:
    status = fields.get("status")
    if status is not None and (not str(status).isdigit() or int(status) not in range(8)):
        raise SandboxValidation({"status": ["is not included in the list"]})
    as_invoice = {
        k: v for k, v in fields.items() if k not in ("estimate_items_attributes", "status", "number")
    }
    as_invoice["due_date"] = fields.get("date") or (existing or {}).get("date") or sandbox.now().date()
    if "estimate_items_attributes" in fields:
        as_invoice["invoice_items_attributes"] = fields["estimate_items_attributes"]
    previous = None
    if existing is not None:
        previous = {**existing, "invoice_items": existing.get("estimate_items") or [], "status": 0}
    record = _build_invoice(sandbox, as_invoice, previous)
    record["estimate_items"] = record.pop("invoice_items")
    for key in _INVOICE_ONLY:
        record.pop(key, None)
    record["status"] = int(status) if status is not None else (existing or {}).get("status", 0)
    number = fields.get("number")
    if not _blank(number):
        record["number"] = str(number)
    elif existing is not None:
        record["number"] = existing["number"]
    else:
        record["number"] = _next_number(sandbox._records["estimates"].values())
    return record


# --------------------------------------------------------------------------- specs
def invoices_spec() -> ResourceSpec:
    return ResourceSpec(
        # Clientary does not document the invoice list order; newest first (by creation) here.
        name="invoices",
        wrapper="invoice",
        attributes=INVOICE_ATTRIBUTES,
        required=("date", "due_date", "currency_code"),
        unique=("number",),
        default_page_size=30,
        updated_since=True,
        id_start=9_540_001,
        sorts={None: _newest_first},
        build=_build_invoice,
        render=_render_invoice,
    )


def estimates_spec() -> ResourceSpec:
    return ResourceSpec(
        # Clientary does not document the estimate list order; newest first here (like invoices).
        name="estimates",
        wrapper="estimate",
        attributes=ESTIMATE_ATTRIBUTES,
        required=("date", "currency_code"),
        unique=("number",),
        default_page_size=30,
        id_start=8_100_001,
        sorts={None: _newest_first},
        build=_build_estimate,
        render=_render_invoice,
    )


def payments_spec() -> ResourceSpec:
    return ResourceSpec(
        # Default order: newest received_on first; sort=created_at: newest created first.
        name="payments",
        wrapper="payment",
        attributes=PAYMENT_ATTRIBUTES,
        required=("amount",),
        default_page_size=30,
        id_start=980_190_001,
        sorts={None: _received_newest_first, "created_at": _newest_first},
        parent="invoices",
        parent_key="invoice_id",
        get_one=False,
        build=_field_builder(
            {
                "amount": None,
                "note": "",
                "received_on": None,
                "invoice_id": None,
                "transaction_fee_amount": 0.0,
                "transaction_id": None,
            },
            dates=("received_on",),
            dash_dates=True,
            numbers=("amount",),
            finish=_finish_payment,
        ),
        after_create=_payment_made,
    )
