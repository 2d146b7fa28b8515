"""Whether a record a retry found is the one its step would have written (issue 7, point 8).

A step whose earlier try's outcome is unknown (a time-out, a 5xx, a crash, a replay) looks for what
that try may have made — by a number, a reference, a marker — before writing again. Finding a
record by that key is not proof that it is ours: an invoice number typed in Xero by hand for
another contact, a payment of the same amount someone recorded meanwhile. So a found record is
adopted (``created: false``) only when the fields the step gives match it; otherwise the step
fails permanently and says what differs, and nothing is written.

One comparison for every lookup of both connectors: ``differences`` walks the fields of the step's
validated input (the fields it gives; what it leaves to the service is not compared) against the
found record, and ``adopt`` picks the first candidate without differences or raises the error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, NamedTuple

from pydantic import BaseModel

from clientary_xero.errors import PermanentError

CENT = Decimal("0.01")


class Difference(NamedTuple):
    """One field that differs, each side as shown to a person (``wanted`` empty: not shown)."""

    field: str
    found: str
    wanted: str


def cents(value: Any) -> Decimal | None:
    """A money value rounded to the cent (half up, as Xero rounds), or None when not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return None


def shown(value: Any) -> str:
    """A value as a person reads it in an error: money with thousands separators, text quoted."""
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return f"{cents(value):,.2f}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return repr(str(value))


def _day(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value or "").strip().replace("/", "-")
    return text[:10] or None


def _instant(value: Any) -> float | None:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def same(wanted: Any, found: Any, *, tolerance: Decimal = Decimal(0)) -> bool:
    """Whether ``found`` is what writing ``wanted`` leaves: numbers to the cent (within
    ``tolerance``), dates by day, date-times by instant, text trimmed and case-insensitive."""
    if isinstance(wanted, bool) or isinstance(found, bool):
        return bool(wanted) == bool(found) if isinstance(found, bool) else False
    if isinstance(wanted, (int, float, Decimal)):
        left, right = cents(wanted), cents(found)
        return left is not None and right is not None and abs(left - right) <= tolerance
    if isinstance(wanted, datetime):
        return _instant(wanted) == _instant(found)
    if isinstance(wanted, date):
        return _day(wanted) == _day(found)
    return str(wanted).strip().casefold() == str(found if found is not None else "").strip().casefold()


def compare(field: str, wanted: Any, found: Any, *, tolerance: Decimal = Decimal(0)) -> Difference | None:
    """A Difference when ``found`` is not what writing ``wanted`` leaves; None when it is, or when
    the step does not give the field (``wanted`` None: the service decides it)."""
    if wanted is None or same(wanted, found, tolerance=tolerance):
        return None
    return Difference(field, shown(found), shown(wanted))


def differences(
    data: BaseModel,
    record: Mapping[str, Any] | None,
    keys: Iterable[str],
    *,
    read: Callable[[Mapping[str, Any], str], Any] | None = None,
    prefix: str = "",
) -> list[Difference]:
    """What differs between the fields ``keys`` of the step's input ``data`` and ``record``.

    A field the step does not give (None) is not compared. A value with an ``adoption_difference
    (field, found)`` method (a reference to a contact or an account) compares itself; a nested model
    is compared field by field against the nested record; anything else through ``compare``.
    ``read(record, key)`` reads the found side (default: ``record.get(key)``)."""
    reader = read or (lambda rec, key: rec.get(key))
    found_record: Mapping[str, Any] = record if isinstance(record, Mapping) else {}
    out: list[Difference] = []
    for key in keys:
        wanted = getattr(data, key, None)
        if wanted is None:
            continue
        label = f"{prefix}{key}"
        found = reader(found_record, key)
        check = getattr(wanted, "adoption_difference", None)
        if callable(check):
            difference = check(label, found)
        elif isinstance(wanted, BaseModel):
            given = [k for k in type(wanted).model_fields if getattr(wanted, k) is not None]
            out += differences(wanted, found, given, read=read, prefix=f"{label}.")
            continue
        else:
            difference = compare(label, wanted, found)
        if difference is not None:
            out.append(difference)
    return out


def adopt(
    candidates: Iterable[dict[str, Any]],
    differences_of: Callable[[dict[str, Any]], list[Difference]],
    *,
    service: str,
    what: str,
    name_of: Callable[[dict[str, Any]], str],
    hint: str,
) -> dict[str, Any] | None:
    """The first candidate that matches what the step would write; None when there is no
    candidate (the step writes); a ``PermanentError`` naming what differs when none matches."""
    first: tuple[dict[str, Any], list[Difference]] | None = None
    for candidate in candidates:
        found = differences_of(candidate)
        if not found:
            return candidate
        first = first or (candidate, found)
    if first is None:
        return None
    record, found = first
    title = {"xero": "Xero", "clientary": "Clientary"}.get(service, service)
    has = ", ".join(f"{d.field} {d.found}" for d in found)
    would = ", ".join(f"{d.field} {d.wanted}" for d in found if d.wanted)
    message = f"{title} already has {what} {name_of(record)} ({has})"
    if would:
        message += f"; this step would write {would}"
    message += f" — not adopted: {hint}"
    messages = [
        f"{d.field}: {title} has {d.found}" + (f", this step would write {d.wanted}" if d.wanted else "")
        for d in found
    ]
    raise PermanentError(message, messages=messages, service=service)
