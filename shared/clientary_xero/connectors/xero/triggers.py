"""Xero as a trigger source: re-reading the record behind a webhook event, and polling payments.

Webhook events are thin, so every contact or invoice is fetched (``GET /Contacts/{id}``,
``GET /Invoices/{id}``) and normalised before a workflow sees it: Xero's ``/Date(…)/`` values
become ISO strings through ``dates.py`` (calendar dates such as ``Date``/``DueDate`` as
``YYYY-MM-DD``, ``…UTC`` instants with their time), everything else is kept as Xero returns it.

Payments have no webhook (reference/xero-api.md §5), so ``xero.new_payment`` polls
``GET /Payments`` with ``If-Modified-Since`` in two phases like the Clientary poller: read the
cursor, deliver, and only then ``commit``. The cursor (one State item, optimistic version)::

    {"schema": 1, "watermark": "2026-01-01T10:00:00+00:00",   # max UpdatedDateUTC seen (first poll: now)
     "seen": {"<PaymentID>": <UpdatedDateUTC epoch s>, …}}     # ids met inside the overlap window

Each poll asks for everything modified since ``watermark - OVERLAP`` (clock skew between Xero and
Lambda, and whether the bound is inclusive, cannot lose a payment) and dedupes by id with ``seen``,
which is pruned as the watermark moves. A payment is *new* when its id is not in ``seen`` and it is
not ``DELETED`` (payments cannot be edited in Xero, only deleted; a deletion is not a new payment).
The first poll after deployment delivers nothing: it records the watermark and the ids already in
the window. An idle poll is one request and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from clientary_xero.connectors.xero.dates import parse_xero_date
from clientary_xero.errors import Conflict, NotFound, PermanentError, RetryableError

logger = logging.getLogger(__name__)

NEW_PAYMENT_TRIGGER = "xero.new_payment"
OVERLAP = timedelta(minutes=10)
PAGE_SIZE = 100
CURSOR_SCHEMA = 1
_COMMIT_ATTEMPTS = 5

# trigger → (collection path, envelope key, id field, query)
_FETCH: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "xero.contact_created": ("Contacts", "Contacts", "ContactID", {}),
    "xero.contact_updated": ("Contacts", "Contacts", "ContactID", {}),
    "xero.invoice_created": ("Invoices", "Invoices", "InvoiceID", {"unitdp": "4"}),
    "xero.invoice_updated": ("Invoices", "Invoices", "InvoiceID", {"unitdp": "4"}),
}
UPDATE_TRIGGERS = frozenset({"xero.contact_updated", "xero.invoice_updated"})


class XeroApi(Protocol):
    """What the trigger code needs from ``XeroClient``."""

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None) -> Any: ...


# ---------------------------------------------------------------------------- normalising
def normalize(value: Any, key: str = "") -> Any:
    """Xero's record with every ``/Date(…)/`` as ISO (dates.py); the rest unchanged."""
    if isinstance(value, dict):
        return {k: normalize(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v, key) for v in value]
    if isinstance(value, str) and value.startswith("/Date("):
        try:
            return parse_xero_date(value, date_only=not key.upper().endswith("UTC"))
        except ValueError:
            return value
    return value


# ------------------------------------------------------------------------------- webhooks
def fetch_record(client: XeroApi, trigger: str, resource_id: str) -> dict[str, Any]:
    """The contact or invoice an event names, normalised. ``NotFound`` when Xero has no such record."""
    try:
        path, key, id_field, query = _FETCH[trigger]
    except KeyError:
        raise PermanentError(f"no Xero record source for trigger {trigger!r}") from None
    try:
        body = client.request("GET", f"{path}/{resource_id}", params=dict(query) or None)
    except PermanentError as exc:
        if exc.status == 404:
            raise NotFound(f"Xero has no {key[:-1].lower()} {resource_id}") from None
        raise
    records = body.get(key) if isinstance(body, dict) else None
    if not records or not isinstance(records[0], dict) or not records[0].get(id_field):
        raise NotFound(f"Xero has no {key[:-1].lower()} {resource_id}")
    record: dict[str, Any] = normalize(records[0])
    return record


def record_version(trigger: str, record: dict[str, Any], event_date: str = "") -> str | None:
    """Update triggers run once per distinct update: the record's UpdatedDateUTC (else the event's date)."""
    if trigger not in UPDATE_TRIGGERS:
        return None
    return str(record.get("UpdatedDateUTC") or event_date or "") or None


# ------------------------------------------------------------------------------- payments
class HeaderTransport(httpx.BaseTransport):
    """Adds ``headers`` to every request it passes on.

    ``XeroClient.request`` has no per-request headers; the poller needs ``If-Modified-Since``.
    Wrapping the transport keeps the client's own behaviour (auth, errors, limits) intact.
    """

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.headers: dict[str, str] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.xero.com":
            for name, value in self.headers.items():
                request.headers[name] = value
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class CursorStore(Protocol):
    def get_cursor(self, name: str) -> dict[str, Any] | None: ...

    def put_cursor(self, name: str, cursor: dict[str, Any]) -> None: ...


@dataclass
class PaymentBatch:
    """New payments of one poll (oldest first) and the cursor to write once runs are started."""

    records: list[dict[str, Any]]
    trigger: str
    cursor: dict[str, Any]
    changed: bool
    requests: int
    first_poll: bool = False
    committed: bool = False
    state: CursorStore | None = field(default=None, repr=False)
    # The cursor as read and each delivered payment's ``seen`` stamp; ``held``: payments to deliver
    # again (the intake failed retryably): the commit then keeps the watermark read and adds only
    # the handled ids to ``seen``, so the next poll's window still holds them (see the Clientary
    # pollers' module docstring: the same rule).
    base: dict[str, Any] | None = field(default=None, repr=False)
    stamps: dict[str, int] = field(default_factory=dict, repr=False)
    held: set[str] = field(default_factory=set)

    def hold(self, payment_id: str) -> None:
        self.held.add(str(payment_id))

    def cursor_to_write(self) -> dict[str, Any]:
        if not self.held or self.base is None:
            return self.cursor
        seen = {str(k): int(v) for k, v in (self.base.get("seen") or {}).items()}
        seen.update({k: ts for k, ts in self.stamps.items() if k not in self.held})
        return {**self.base, "seen": seen}

    def commit(self) -> None:
        if self.committed:
            return
        if not self.changed:
            self.committed = True
            return
        assert self.state is not None
        ours = self.cursor_to_write()
        cursor = ours
        for _ in range(_COMMIT_ATTEMPTS):
            try:
                self.state.put_cursor(self.trigger, cursor)
            except Conflict:
                cursor = _merge(self.state.get_cursor(self.trigger), ours)
                continue
            self.committed = True
            return
        raise RetryableError(f"the {self.trigger} poll cursor keeps changing; try again", delay_seconds=5)


def if_modified_since(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def poll_new_payments(
    client: XeroApi,
    headers: HeaderTransport,
    state: CursorStore,
    *,
    now: datetime,
    trigger: str = NEW_PAYMENT_TRIGGER,
    page_size: int = PAGE_SIZE,
) -> PaymentBatch:
    """Payments created since the last committed poll, normalised; the cursor is read, not written."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cursor = state.get_cursor(trigger)
    version = int((cursor or {}).get("_version", 0))
    first = not cursor or cursor.get("schema") != CURSOR_SCHEMA or not cursor.get("watermark")
    watermark = now if first else _instant(str(cursor["watermark"]))  # type: ignore[index]
    seen: dict[str, int] = {} if first else {str(k): int(v) for k, v in (cursor.get("seen") or {}).items()}  # type: ignore[union-attr]
    pages = _Pages(client, headers, watermark - OVERLAP, page_size)
    fresh: list[tuple[float, dict[str, Any]]] = []
    stamps: dict[str, int] = {}
    for raw in pages:
        payment_id = str(raw.get("PaymentID") or "")
        if not payment_id:
            continue
        try:
            record = normalize(raw)
            updated = (
                _instant(str(record.get("UpdatedDateUTC") or "")) if record.get("UpdatedDateUTC") else now
            )
        except Exception as exc:  # one odd payment must not stop the poll: it gets a FAILED run
            logger.warning("payment %s could not be normalised: %s", payment_id, exc)
            record = {
                **raw,
                "_problem": f"normalising Xero payment {payment_id} failed: {type(exc).__name__}: {exc}",
            }
            updated = now
        if updated > watermark:
            watermark = updated
        if payment_id in seen:
            continue
        seen[payment_id] = stamps[payment_id] = int(updated.timestamp())
        if first or str(record.get("Status", "")).upper() == "DELETED":
            continue
        fresh.append((updated.timestamp(), record))
    floor = int((watermark - OVERLAP).timestamp())
    pruned = [k for k, ts in seen.items() if ts < floor]
    for key in pruned:
        del seen[key]
    old_watermark = None if first else str(cursor["watermark"])  # type: ignore[index]
    changed = first or bool(fresh) or bool(pruned) or watermark.isoformat() != old_watermark
    next_cursor = {
        "schema": CURSOR_SCHEMA,
        "watermark": watermark.isoformat(),
        "seen": seen,
        "_version": version,
    }
    fresh.sort(key=lambda entry: entry[0])
    logger.info(
        "poll %s: %s, %d request(s)",
        trigger,
        "first poll, nothing delivered" if first else f"{len(fresh)} new payment(s)",
        pages.requests,
    )
    return PaymentBatch(
        [record for _, record in fresh],
        trigger,
        next_cursor,
        changed,
        pages.requests,
        first_poll=first,
        state=state,
        base=None if first else cursor,
        stamps=stamps,
    )


class _Pages:
    def __init__(self, client: XeroApi, headers: HeaderTransport, since: datetime, page_size: int) -> None:
        self.client, self.headers, self.since, self.page_size = client, headers, since, page_size
        self.requests = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        page = 1
        self.headers.headers["If-Modified-Since"] = if_modified_since(self.since)
        try:
            while True:
                body = self.client.request(
                    "GET",
                    "Payments",
                    params={"page": page, "pageSize": self.page_size, "order": "UpdatedDateUTC ASC"},
                )
                self.requests += 1
                items = (
                    [p for p in (body.get("Payments") or []) if isinstance(p, dict)]
                    if isinstance(body, dict)
                    else []
                )
                yield from items
                pagination = body.get("pagination") if isinstance(body, dict) else None
                page_count = pagination.get("pageCount") if isinstance(pagination, dict) else None
                more = page < int(page_count) if page_count is not None else len(items) >= self.page_size
                if not items or not more:
                    return
                page += 1
        finally:
            self.headers.headers.pop("If-Modified-Since", None)


def _instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _merge(current: dict[str, Any] | None, ours: dict[str, Any]) -> dict[str, Any]:
    if not current or current.get("schema") != CURSOR_SCHEMA or not current.get("watermark"):
        return {**ours, "_version": int((current or {}).get("_version", 0))}
    mine, theirs = _instant(str(ours["watermark"])), _instant(str(current["watermark"]))
    latest = max(mine, theirs)
    floor = int((latest - OVERLAP).timestamp())
    seen = {
        str(k): int(v)
        for k, v in {**(current.get("seen") or {}), **(ours.get("seen") or {})}.items()
        if int(v) >= floor
    }
    return {
        **ours,
        "watermark": latest.isoformat(),
        "seen": seen,
        "_version": int(current.get("_version", 0)),
    }
