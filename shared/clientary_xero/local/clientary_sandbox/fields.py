"""Field values: parsing (dates, decimals, blanks) and the generic ``build`` hook of a flat resource
(typed fields checked like Rails validations would, 422)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from clientary_xero.local.clientary_sandbox.spec import Record, SandboxValidation

if TYPE_CHECKING:
    from clientary_xero.local.clientary_sandbox.state import SandboxState

_CENT = Decimal("0.01")


def _field_builder(
    defaults: dict[str, Any],
    *,
    dates: tuple[str, ...] = (),
    dash_dates: bool = False,
    numbers: tuple[str, ...] = (),
    integers: tuple[str, ...] = (),
    booleans: tuple[str, ...] = (),
    refs: dict[str, str] | None = None,
    finish: Callable[[SandboxState, Record], None] | None = None,
) -> Callable[[SandboxState, dict[str, Any], Record | None], Record]:
    """A ``build`` hook for a flat resource: typed fields checked like Rails validations would (422)."""
    references = refs or {}

    def build(sandbox: SandboxState, fields: dict[str, Any], existing: Record | None) -> Record:
        errors: dict[str, list[str]] = {}
        record: Record = copy.deepcopy(existing) if existing else copy.deepcopy(defaults)
        for key, value in fields.items():
            if key in dates:
                if _blank(value):
                    record[key] = None
                    continue
                day = _parse_day(value)
                if day is None:
                    errors.setdefault(key, []).append("is invalid")
                    continue
                record[key] = day.isoformat() if dash_dates else sandbox.date_text(day)
            elif key in numbers:
                number = _decimal(value)
                if number is None:
                    errors.setdefault(key, []).append("is not a number")
                    continue
                record[key] = float(number)
            elif key in integers or key in references:
                if value is None:
                    record[key] = None
                    continue
                if isinstance(value, bool) or not str(value).isdigit():
                    errors.setdefault(key, []).append("is not a number")
                    continue
                if key in references and int(value) not in sandbox._records[references[key]]:
                    errors.setdefault(key.removesuffix("_id"), []).append("must exist")
                    continue
                record[key] = int(value)
            elif key in booleans:
                record[key] = value in (True, 1, "1", "true")
            else:
                record[key] = value
        if errors:
            raise SandboxValidation(errors)
        if finish is not None:
            finish(sandbox, record)
        return record

    return build


def _today(sandbox: SandboxState, record: Record, key: str, dash: bool = False) -> None:
    if not record.get(key):
        day = sandbox.now().date()
        record[key] = day.isoformat() if dash else sandbox.date_text(day)


def _moment(value: Any) -> datetime | None:
    from clientary_xero.connectors.clientary.normalize import to_datetime

    try:
        return to_datetime(value)
    except ValueError:
        return None


def _parse_day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    match = re.fullmatch(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})", str(value or "").strip())
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
