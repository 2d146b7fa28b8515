"""Clientary records in one predictable shape for workflows (and JSONata).

Clientary is inconsistent about formats (see docs/reference: "Data-format gotchas"):

* dates come as ``2011/07/26`` or ``2011-07-26``; timestamps as ``2012-11-08T21:20:47Z``,
  ``2013-02-06T21:23:21-08:00`` or the older ``2011/06/29 23:01:08 -0700``;
* money is usually a JSON number but sometimes a string (``"49.99"``);
* some boolean keys end in ``?`` (``billed?``, ``taxable?``), which JSONata paths cannot name
  without backquotes.

After normalisation dates are ``YYYY-MM-DD``, timestamps full ISO 8601 with their offset, money a
float that is exact to 2 decimal places (computed with ``Decimal``, so ``0.1 + 0.2`` problems never
reach a total), and every ``foo?`` key is also present as ``foo``. The raw record is not modified.

The helpers ``parse_date``, ``parse_timestamp``, ``to_datetime``, ``to_number`` and
``normalize_record`` are meant for the other Clientary resources as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "INVOICE_STATUS",
    "normalize_client",
    "normalize_contract",
    "normalize_estimate",
    "normalize_expense",
    "normalize_invoice",
    "normalize_lead",
    "normalize_payment",
    "normalize_project",
    "normalize_record",
    "normalize_staff",
    "normalize_task",
    "normalize_time_entry",
    "parse_date",
    "parse_timestamp",
    "to_datetime",
    "to_number",
]

# Documented invoice statuses; 5 (pending) appears on one copy of the docs only.
INVOICE_STATUS: dict[int, str] = {0: "draft", 1: "sent", 2: "viewed", 3: "cancelled", 4: "paid", 5: "pending"}

# Item type values documented by Clientary: 0 = section header, 3 = regular line item.
SECTION_HEADER_ITEM_TYPE = 0

# Keys holding calendar dates (any resource). Keys ending in ``_at`` are timestamps.
DATE_KEYS = frozenset(
    {
        "date",
        "due_date",
        "paid_date",
        "received_on",
        "incurred_on",
        "start_date",
        "end_date",
        "next_date",
        "expiration_date",
        "delivery_date",
    }
)
# Amounts of money: rounded to 2 dp.
MONEY_KEYS = frozenset(
    {
        "subtotal",
        "total_cost",
        "balance",
        "total_payments",
        "total_tax",
        "total_tax2",
        "total_tax3",
        "total_taxes",
        "taxable_subtotal",
        "non_taxable_subtotal",
        "pending_amount",
        "total_late_fees",
        "total_transaction_fees",
        "transaction_balance",
        "transaction_fee_amount",
        "amount",
        "cost",
        "budget",
        "amount_outstanding",
        "unbilled_amount",
        "shipping_amount",
        "total",
    }
)
# Other numbers kept at their own precision (tax rates such as 8.875 %, quantities, unit prices:
# Xero takes unit amounts to 4 dp, so rounding prices to cents here would lose information).
NUMBER_KEYS = frozenset(
    {"tax", "tax2", "tax3", "quantity", "price", "rate", "hours", "worked_hours", "unbilled_hours"}
)


_DATE_RE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_TIMESTAMP_RE = re.compile(
    r"^(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})"
    r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d+))?)?)?"
    r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)


# ---------------------------------------------------------------------------- scalar helpers
def to_datetime(value: Any) -> datetime | None:
    """An aware ``datetime`` from any Clientary date or timestamp form (``None`` for empty).

    A value without an offset is taken as UTC; a bare date is midnight UTC. Raises ``ValueError``
    for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a date or timestamp: {value!r}")
    match = _TIMESTAMP_RE.match(value.strip())
    if not match:
        raise ValueError(f"not a date or timestamp: {value!r}")
    parts = match.groupdict()
    fraction = (parts["f"] or "0")[:6].ljust(6, "0")
    return datetime(
        int(parts["y"]),
        int(parts["m"]),
        int(parts["d"]),
        int(parts["H"] or 0),
        int(parts["M"] or 0),
        int(parts["S"] or 0),
        int(fraction),
        tzinfo=_offset(parts["tz"]),
    )


def _offset(text: str | None) -> timezone:
    if not text or text.upper() in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"not a UTC offset: {text!r}")
    delta = timedelta(hours=hours, minutes=minutes)
    return UTC if not delta else timezone(sign * delta)


def parse_date(value: Any) -> str | None:
    """``YYYY-MM-DD`` from ``2011/07/26``, ``2011-07-26`` or a timestamp (its date in its own offset)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        match = _DATE_RE.match(value.strip())
        if match:
            return date(int(match[1]), int(match[2]), int(match[3])).isoformat()
    parsed = to_datetime(value)
    return parsed.date().isoformat() if parsed else None


def parse_timestamp(value: Any) -> str | None:
    """Full ISO 8601 with the offset Clientary gave (``+00:00`` for ``Z``/none)."""
    parsed = to_datetime(value)
    return parsed.isoformat() if parsed else None


def to_number(value: Any, places: int | None = None) -> float | None:
    """A float from a JSON number or a numeric string; rounded half-up to ``places`` when given.

    The arithmetic goes through ``Decimal(str(value))`` so ``"49.99"`` and ``49.99`` give the same
    float, and a float rounded to 2 places prints as exactly 2 places. ``None``/``""`` give ``None``;
    anything else that is not a number raises ``ValueError``.
    """
    decimal = _to_decimal(value)
    if decimal is None:
        return None
    if places is not None:
        try:
            decimal = decimal.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        except InvalidOperation:  # over Decimal's 28 digits once rounded (1e308): no amount
            raise ValueError(f"not a number: {value!r} has too many digits") from None
    number = float(decimal)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"not a number: {value!r} is too large")
    return number


def _to_decimal(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        decimal = value
    elif isinstance(value, (int, float, str)):
        try:
            decimal = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    else:
        raise ValueError(f"not a number: {value!r}")
    if not decimal.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return decimal


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "t", "y")
    return bool(value)


# ---------------------------------------------------------------------------- records
def normalize_record(
    raw: Mapping[str, Any],
    *,
    date_keys: Iterable[str] = DATE_KEYS,
    money_keys: Iterable[str] = MONEY_KEYS,
    number_keys: Iterable[str] = NUMBER_KEYS,
) -> dict[str, Any]:
    """A normalised copy of any Clientary object, nested objects and lists included.

    Keys in ``date_keys`` become ``YYYY-MM-DD``, keys ending in ``_at`` ISO timestamps, keys in
    ``money_keys`` floats exact to 2 dp, keys in ``number_keys`` floats. A value that does not
    parse is kept as Clientary sent it (a workflow can still see it; one odd field must not stop a
    poll). Every ``key?`` is also exposed as ``key`` unless the record already has that key.
    """
    dates, money, numbers = frozenset(date_keys), frozenset(money_keys), frozenset(number_keys)
    return _normalize_mapping(raw, dates, money, numbers)


def _normalize_mapping(
    raw: Mapping[str, Any], dates: frozenset[str], money: frozenset[str], numbers: frozenset[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out[key] = _normalize_value(str(key), value, dates, money, numbers)
    for key in list(out):
        if key.endswith("?") and len(key) > 1 and key[:-1] not in out:
            out[key[:-1]] = out[key]
    return out


def _normalize_value(
    key: str, value: Any, dates: frozenset[str], money: frozenset[str], numbers: frozenset[str]
) -> Any:
    if isinstance(value, Mapping):
        return _normalize_mapping(value, dates, money, numbers)
    if isinstance(value, list):
        return [_normalize_value(key, v, dates, money, numbers) for v in value]
    try:
        if key in dates:
            return parse_date(value)
        if key.endswith("_at"):
            return parse_timestamp(value)
        if key in money:
            return to_number(value, 2)
        if key in numbers:
            return to_number(value)
    except ValueError:
        return value
    return value


def normalize_invoice(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One invoice shape for workflows.

    On top of ``normalize_record``:

    * ``status`` stays Clientary's integer; ``status_name`` is ``draft``, ``sent``, ``viewed``,
      ``cancelled``, ``paid``, ``pending`` or ``unknown``;
    * ``total`` repeats ``total_cost`` (the name workflows reach for first);
    * ``client_id`` is filled from the nested ``client`` when only that is present;
    * ``invoice_items`` always exists; each item has ``title``, ``quantity``, ``price``,
      ``taxable`` (from ``taxable`` or ``taxable?``), ``amount`` = quantity * price rounded to
      2 dp, and ``is_section_header``.

    Section-header rule: Clientary documents item types 0 (section header) and 3 (regular line);
    other values occur, so with an ``item_type`` present an item is a header exactly when it is 0.
    Without an ``item_type`` (the invoice JSON in Clientary's docs has none) an item is a header
    when it has neither a price nor a quantity (both missing or zero): a free line with a quantity
    (price 0, quantity 1) stays a real line. Headers have ``amount`` 0 and should not become
    accounting lines.
    """
    invoice = normalize_record(raw)
    status = invoice.get("status")
    try:
        status_code: int | None = int(status) if status is not None and not isinstance(status, bool) else None
    except (TypeError, ValueError):
        status_code = None
    if status_code is not None:
        invoice["status"] = status_code
    invoice["status_name"] = (
        INVOICE_STATUS.get(status_code, "unknown") if status_code is not None else "unknown"
    )

    if "total" not in raw and "total_cost" in invoice:
        invoice["total"] = invoice["total_cost"]
    client = invoice.get("client")
    if invoice.get("client_id") is None and isinstance(client, dict) and client.get("id") is not None:
        invoice["client_id"] = client["id"]

    items = invoice.get("invoice_items") or []
    invoice["invoice_items"] = [_normalize_item(item) for item in items if isinstance(item, dict)]
    return invoice


def _normalize_item(item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    out["title"] = "" if item.get("title") is None else str(item["title"])
    quantity = _number_or_none(item.get("quantity"))
    price = _number_or_none(item.get("price"))
    out["quantity"] = quantity
    out["price"] = price
    taxable = item.get("taxable", item.get("taxable?"))
    out["taxable"] = _to_bool(taxable) if taxable is not None else False

    item_type = item.get("item_type")
    if item_type is not None and not isinstance(item_type, bool):
        try:
            header = int(item_type) == SECTION_HEADER_ITEM_TYPE
        except (TypeError, ValueError):
            header = False
    else:
        header = not quantity and not price
    out["is_section_header"] = header

    if header or quantity is None or price is None:
        out["amount"] = 0.0
    else:
        product = (_to_decimal(quantity) or Decimal(0)) * (_to_decimal(price) or Decimal(0))
        try:
            out["amount"] = to_number(product, 2)
        except ValueError:  # too big to round to cents (1e20 x 1e20): no amount, not an exception
            out["amount"] = None
    return out


def _number_or_none(value: Any) -> float | None:
    try:
        return to_number(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------------- the other resources
# Documented status codes (reference/clientary-api.md §2). Unknown values read ``unknown``.
CLIENT_STATUS: dict[int, str] = {1: "active", 2: "archived"}
PROJECT_STATUS: dict[int, str] = {1: "active", 2: "completed", 4: "billable"}
ESTIMATE_STATUS: dict[int, str] = {
    0: "draft",
    1: "sent",
    2: "viewed",
    3: "cancelled",
    4: "declined",
    5: "revised",
    6: "accepted",
    7: "archived",
}


def _with_status(record: dict[str, Any], names: Mapping[int, str]) -> dict[str, Any]:
    status = record.get("status")
    code: int | None = None
    if status is not None and not isinstance(status, bool):
        try:
            code = int(status)
        except (TypeError, ValueError):
            code = None
    if code is not None:
        record["status"] = code
    record["status_name"] = names.get(code, "unknown") if code is not None else "unknown"
    return record


def _client_id_from_nested(record: dict[str, Any]) -> dict[str, Any]:
    client = record.get("client")
    if record.get("client_id") is None and isinstance(client, dict) and client.get("id") is not None:
        record["client_id"] = client["id"]
    return record


def normalize_client(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A client: ``status_name`` (active, archived; ``unknown`` when Clientary sends no status)."""
    return _with_status(normalize_record(raw), CLIENT_STATUS)


def normalize_lead(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A lead has a client's shape (a lead can be converted to a client)."""
    return normalize_record(raw)


def normalize_project(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A project: ``status_name`` (active, completed, billable) and ``client_id`` from the embedded client."""
    return _client_id_from_nested(_with_status(normalize_record(raw), PROJECT_STATUS))


def normalize_estimate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An estimate: like an invoice (items under ``estimate_items``, each with ``amount`` and
    ``is_section_header``), ``status_name`` from the estimate statuses, ``total`` = ``total_cost``."""
    estimate = _client_id_from_nested(_with_status(normalize_record(raw), ESTIMATE_STATUS))
    if "total" not in raw and "total_cost" in estimate:
        estimate["total"] = estimate["total_cost"]
    items = estimate.get("estimate_items") or []
    estimate["estimate_items"] = [_normalize_item(item) for item in items if isinstance(item, dict)]
    return estimate


def normalize_task(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A task: ``complete`` always a boolean."""
    task = normalize_record(raw)
    task["complete"] = _to_bool(task.get("complete", task.get("completed", False)))
    return task


def normalize_payment(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A payment: ``amount`` and ``transaction_fee_amount`` numbers, ``received_on`` ISO."""
    return normalize_record(raw)


def normalize_expense(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An expense: ``amount`` a number, ``incurred_on`` ISO."""
    return normalize_record(raw)


def normalize_staff(raw: Mapping[str, Any]) -> dict[str, Any]:
    return normalize_record(raw)


def normalize_time_entry(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A time entry (Clientary "hours"): ``billed`` next to ``billed?``; hours, rate and cost numbers."""
    entry = normalize_record(raw)
    entry["billed"] = _to_bool(entry.get("billed", False))
    return entry


def normalize_contract(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A pushed contract (Clientary's API has none to read): dates, money and ``?`` keys as elsewhere."""
    return _client_id_from_nested(normalize_record(raw))
