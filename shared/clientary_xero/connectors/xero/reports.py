"""Xero's reports (``ReportWithRows``) flattened for workflows.

Xero answers a report as nested rows: a ``Header`` row with the column titles, ``Section`` rows with
a title and their own ``Row``/``SummaryRow`` children, every value a **string**, the account id in
a cell's ``Attributes`` (``{"Id": "account", "Value": "<uuid>"}``). A workflow wants to say "Total
Assets" instead, so ``flatten_report`` gives:

* ``Columns``: the column titles (e.g. ``["30 Nov 2026", "31 Oct 2026"]``);
* ``Lines``: one ``{section, account, account_id, row_type, values: {column: number}, value}`` per
  row, ``value`` being the first column's number (``None`` for an empty cell);
* ``Totals``: ``{label: first-column number}`` for the rows that carry no account (totals such as
  ``Total Assets``, ``Net Assets``, ``Gross Profit``, ``Net Profit``) — the first one wins if a
  label repeats.

Xero marks a computed equity line (``Current Year Earnings``) with the nil account id
``00000000-0000-0000-0000-000000000000`` and ``fromDate``/``toDate`` attributes: it is a line, not
a total, but no account either, so its ``account_id`` is ``None`` (a workflow that reads the
account by that id would get a 404).

In JSONata: ``steps.bs.Totals.'Total Assets'`` or ``steps.bs.Lines[account='Sales'].value``.
"""

from __future__ import annotations

from typing import Any


def report_number(value: Any) -> float | None:
    """``"1,234.50"`` → 1234.5, ``"(12.00)"`` → -12.0, ``""`` → None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().replace(",", "")
    negative = text.startswith("(") and text.endswith(")")
    if negative:
        text = text[1:-1]
    try:
        number = float(text)
    except ValueError:
        return None
    return -number if negative else number


_NIL_ACCOUNT = "00000000-0000-0000-0000-000000000000"


def _account_attribute(cells: list[dict[str, Any]]) -> str | None:
    for cell in cells:
        for attribute in cell.get("Attributes") or []:
            if isinstance(attribute, dict) and str(attribute.get("Id", "")).lower() == "account":
                return str(attribute.get("Value"))
    return None


def _line(section: str, row: dict[str, Any], columns: list[str]) -> tuple[dict[str, Any], bool] | None:
    """The flat line and whether the row names an account at all (totals name none)."""
    cells = [c for c in row.get("Cells") or [] if isinstance(c, dict)]
    if not cells:
        return None
    account = _account_attribute(cells)
    numbers = [report_number(c.get("Value")) for c in cells[1:]]
    titles = columns if len(columns) == len(numbers) else [f"Column {i + 1}" for i in range(len(numbers))]
    line: dict[str, Any] = {
        "section": section,
        "account": str(cells[0].get("Value") or ""),
        "account_id": None if account is None or account == _NIL_ACCOUNT else account,
        "row_type": row.get("RowType"),
        "values": dict(zip(titles, numbers, strict=True)),
        "value": numbers[0] if numbers else None,
    }
    return line, account is not None


def flatten_report(report: dict[str, Any]) -> dict[str, Any]:
    columns: list[str] = []
    lines: list[tuple[dict[str, Any], bool]] = []
    for row in report.get("Rows") or []:
        kind = row.get("RowType")
        if kind == "Header":
            columns = [str(c.get("Value") or "") for c in (row.get("Cells") or [])[1:]]
        elif kind == "Section":
            for child in row.get("Rows") or []:
                found = _line(str(row.get("Title") or ""), child, columns)
                if found is not None:
                    lines.append(found)
        elif kind in ("Row", "SummaryRow"):
            found = _line("", row, columns)
            if found is not None:
                lines.append(found)
    totals: dict[str, float | None] = {}
    for entry, names_account in lines:
        if not names_account and entry["account"] and entry["account"] not in totals:
            totals[entry["account"]] = entry["value"]
    return {"Columns": columns, "Lines": [entry for entry, _ in lines], "Totals": totals}
