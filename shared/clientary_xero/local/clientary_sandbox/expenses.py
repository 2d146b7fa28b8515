"""Expenses: not paginated; the list covers a date window (default: the account's fiscal year)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from clientary_xero.local.clientary_sandbox.fields import _field_builder, _parse_day, _today
from clientary_xero.local.clientary_sandbox.spec import Record, ResourceSpec, SandboxValidation, _oldest_first

if TYPE_CHECKING:
    from clientary_xero.local.clientary_sandbox.state import SandboxState

# Expenses: the list is not paginated and covers a date window (default: the current fiscal year).
EXPENSE_ATTRIBUTES = ("amount", "description", "incurred_on", "client_id", "project_id", "invoice_id")


def _finish_expense(sandbox: SandboxState, record: Record) -> None:
    _today(sandbox, record, "incurred_on")
    if record.get("amount") is not None and float(record["amount"]) <= 0:
        raise SandboxValidation({"amount": ["must be greater than 0"]})


def _expense_window(
    sandbox: SandboxState, records: list[Record], query: dict[str, str]
) -> tuple[list[Record], dict[str, Any]]:
    start_month = sandbox.fiscal_year_start_month
    today = sandbox.now().date()
    year = today.year if today.month >= start_month else today.year - 1
    default_from = date(year, start_month, 1)
    default_to = date(year + 1, start_month, 1) - timedelta(days=1)
    bounds: dict[str, date] = {}
    for key, default in (("from_date", default_from), ("to_date", default_to)):
        text = query.get(key)
        day = _parse_day(text) if text else default
        if day is None:
            raise SandboxValidation({key: ["is invalid"]})
        bounds[key] = day
    chosen = [
        r
        for r in records
        if (day := _parse_day(r.get("incurred_on"))) is not None
        and bounds["from_date"] <= day <= bounds["to_date"]
    ]
    return chosen, {
        "total_count": len(chosen),
        "from_date": sandbox.date_text(bounds["from_date"]),
        "to_date": sandbox.date_text(bounds["to_date"]),
    }


def expenses_spec() -> ResourceSpec:
    return ResourceSpec(
        name="expenses",
        wrapper="expense",
        attributes=EXPENSE_ATTRIBUTES,
        required=("amount",),
        paged=False,
        id_start=5_000_001,
        sorts={None: _oldest_first},
        build=_field_builder(
            {
                "amount": None,
                "description": "",
                "incurred_on": None,
                "client_id": None,
                "project_id": None,
                "invoice_id": None,
                "invoice_item_id": None,
                "user_id": 1,
            },
            dates=("incurred_on",),
            numbers=("amount",),
            refs={"client_id": "clients", "project_id": "projects", "invoice_id": "invoices"},
            finish=_finish_expense,
        ),
        list_hook=_expense_window,
    )
