"""Xero's dates: the one place they are parsed (and formatted).

The Accounting API answers in Microsoft's JSON date form, ``"/Date(1551399321043+0000)/"``: the
number is milliseconds since the Unix epoch in UTC (negative before 1970), and the optional
``+hhmm``/``-hhmm`` suffix names the organisation's offset, which only changes how the instant is
written, never which instant it is. Some fields (``DateString``, ``UpdatedDateUTCString``, the
Projects API) are already ISO 8601; they pass through unchanged.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

_MS_DATE = re.compile(r"^/Date\((?P<ms>-?\d+)(?:(?P<sign>[+-])(?P<hh>\d{2})(?P<mm>\d{2}))?\)/$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_xero_date(value: str | None, *, date_only: bool = False) -> str | None:
    """``"/Date(1551399321043+0000)/"`` → ``"2019-03-01T00:15:21.043+00:00"``.

    ``date_only=True`` gives ``"2019-03-01"`` (invoice and due dates carry no time of day).
    ISO input passes through (cut to its date part with ``date_only``); ``None`` and ``""`` give
    ``None``. Anything else raises ``ValueError``.
    """
    if value is None or value == "":
        return None
    text = value.strip()
    match = _MS_DATE.match(text)
    if match is None:
        if _ISO_DATE.match(text):
            return text[:10] if date_only else text
        raise ValueError(f"not a Xero date: {value[:40]!r}")
    offset = timedelta(0)
    if match["sign"]:
        offset = timedelta(hours=int(match["hh"]), minutes=int(match["mm"]))
        if match["sign"] == "-":
            offset = -offset
    # timedelta arithmetic rather than fromtimestamp(): it handles negative values on every platform.
    try:
        instant = _EPOCH + timedelta(milliseconds=int(match["ms"]))
        local = instant.astimezone(timezone(offset))
    except (OverflowError, ValueError):  # outside datetime's years 1 to 9999
        raise ValueError(f"Xero date out of range: {value[:40]!r}") from None
    if date_only:
        return local.date().isoformat()
    spec = "milliseconds" if local.microsecond else "seconds"
    return local.isoformat(timespec=spec)


def parse_report_date(value: str | None) -> str | None:
    """A report's ``ReportDate`` (``"30 November 2026"``, English month names) → ``"2026-11-30"``;
    ``None`` when absent or in another form (the text stays in the output's ``ReportDateText``)."""
    try:
        return datetime.strptime(str(value).strip(), "%d %B %Y").date().isoformat() if value else None
    except ValueError:
        return None


def to_xero_date(value: datetime | date) -> str:
    """The inverse, as Xero writes it: ``/Date(<ms since epoch>+0000)/`` (a ``date`` is UTC midnight)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    ms = (value - _EPOCH) // timedelta(milliseconds=1)
    return f"/Date({ms}+0000)/"
