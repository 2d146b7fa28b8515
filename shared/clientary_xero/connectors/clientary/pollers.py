"""Polling Clientary for new records (Clientary publishes no webhooks).

Two phases, so that a Lambda dying half-way loses nothing::

    batch = poll_new_invoices(client, state, now=now)   # reads the cursor, never writes it
    for invoice in batch:                                # oldest first, normalised
        start_runs(invoice)                              # deduped by the trigger intake
    batch.commit(state)                                  # only now does the cursor move

If anything fails before ``commit`` the next poll delivers the same records again; the intake's
dedupe (conditional put per record id) makes that harmless. Always call ``commit``, also for an
empty batch: the first poll and watermark moves are written by it (it writes nothing when the
cursor did not change).

One record never stops the others. A record that cannot be normalised is still in the batch (raw,
with its reason in ``batch.problems``) so that it gets a FAILED run like any record whose filter or
storage failed: once a record has a run, whatever its status, the cursor may pass it. A record the
intake could not decide for a *retryable* reason (DynamoDB throttling, SQS down) is handed back
with ``batch.hold(record_id)``, and ``commit`` then writes a cursor that has not passed it: the
watermark and ``id_floor`` stay where this poll found them (so the window, and every record's
"new" test, stay as they were) and only the ids that were handled are added to ``seen``. The next
poll therefore delivers exactly the held records again, and nothing already handled.

The invoice cursor (one State item per trigger, optimistic ``version``)::

    {"schema": 1,
     "watermark": "2024-03-09T16:05:11-08:00",   # max updated_at seen (first poll: now)
     "seen": {"9540012": 1710028800, …},          # id -> created_at (epoch s) of ids known inside the window
     "id_floor": 9540007,                         # only for records without created_at, see below
     "updated_since": "2024-03-08", "polled_at": "…"}

Why this shape: ``updated_since`` is the only filter Clientary offers, it takes a date, and whether
the bound is inclusive (and in which time zone) is undocumented. So every poll asks for
``updated_since = <watermark's date in its own offset> - 1 day`` and dedupes by id. An invoice is
*new* when its id is not in ``seen`` and it was created no earlier than ``watermark - 1 day``; an
old invoice that was edited comes back from ``updated_since`` but is not new. ``seen`` holds every
id created since ``watermark - 1 day`` that any poll has met (so the window can overlap freely) and
is pruned as the watermark moves: it stays as small as one day of invoices. A record without
``created_at`` (the docs' examples have none) falls back to ids: new when above ``id_floor``, which
rises as ids leave ``seen``.

The watermark also moves with time (to ``now - CLOCK_SLACK`` when that is a later date), so the
window is the last two or three days whatever happened before. An idle poll is one request (page 1
of a window with nothing new) and no write while that window holds at most one page (100) of
updated invoices; a busier window is read page by page. The first poll also reads page 1 and the
last page of the whole list (unfiltered) for the highest id, which becomes ``id_floor``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from clientary_xero.connectors.clientary.normalize import normalize_invoice, to_datetime
from clientary_xero.errors import Conflict, PermanentError, RetryableError

logger = logging.getLogger(__name__)

NEW_INVOICE_TRIGGER = "clientary.new_invoice"
OVERLAP = timedelta(days=1)
PAGE_SIZE = 100
CURSOR_SCHEMA = 1
_COMMIT_ATTEMPTS = 5


class InvoiceSource(Protocol):
    """What the poller needs from ``ClientaryClient`` (tests may pass a fake)."""

    def list_invoices(
        self, *, updated_since: date | None = None, page: int = 1, page_size: int = PAGE_SIZE
    ) -> dict[str, Any]: ...

    def get_invoice(self, invoice_id: int | str) -> dict[str, Any]: ...


class CursorStore(Protocol):
    """The cursor part of ``storage.state.StateStore``."""

    def get_cursor(self, name: str) -> dict[str, Any] | None: ...

    def put_cursor(self, name: str, cursor: dict[str, Any]) -> None: ...


class PollBatch(list[dict[str, Any]]):
    """The new records of one poll (the list itself, oldest first) and the cursor to write after them.

    ``requests`` counts the HTTP requests the poll made; ``first_poll`` is true for the poll that
    only recorded where to start.
    """

    def __init__(
        self,
        records: list[dict[str, Any]],
        *,
        trigger: str,
        cursor: dict[str, Any],
        changed: bool,
        requests: int,
        first_poll: bool = False,
        state: CursorStore | None = None,
        base: dict[str, Any] | None = None,
        stamps: dict[str, int] | None = None,
        problems: dict[str, str] | None = None,
    ) -> None:
        super().__init__(records)
        self.trigger = trigger
        self.cursor = cursor
        self.changed = changed
        self.requests = requests
        self.first_poll = first_poll
        self.committed = False
        self._state = state
        # The cursor as the poll read it, and each delivered record's ``seen`` stamp: what a commit
        # that must not pass a held record is built from.
        self.base = base
        self.stamps = dict(stamps or {})
        # record id -> why it could not be normalised (the record is in the batch raw).
        self.problems = dict(problems or {})
        # record id -> what the run should say about the record (``triggers.ClientarySource``).
        self.warnings: dict[str, list[str]] = {}
        self.held: set[str] = set()

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self)

    def hold(self, record_id: int | str) -> None:
        """Keep this record ahead of the cursor: the next poll delivers it again."""
        self.held.add(str(record_id))

    def cursor_to_write(self) -> dict[str, Any]:
        """The poll's cursor, or, when records are held, the cursor read with only the handled ids
        added to ``seen`` (no watermark move, no pruning, no ``id_floor`` rise)."""
        if not self.held or self.base is None:
            return self.cursor
        seen = {str(k): int(v) for k, v in (self.base.get("seen") or {}).items()}
        seen.update({k: ts for k, ts in self.stamps.items() if k not in self.held})
        return {**self.base, "seen": seen, "polled_at": self.cursor.get("polled_at")}

    def commit(self, state: CursorStore | None = None) -> None:
        """Advance the cursor (see ``commit``); ``state`` defaults to the store the poll read."""
        store = state or self._state
        if store is None:
            raise ValueError("commit needs the state store the poll read its cursor from")
        commit(store, self)


def poll_new_invoices(
    client: InvoiceSource,
    state: CursorStore,
    *,
    now: datetime,
    trigger: str = NEW_INVOICE_TRIGGER,
    page_size: int = PAGE_SIZE,
) -> PollBatch:
    """Invoices created since the last committed poll, normalised, oldest first.

    The cursor is read, never written: call ``commit`` (or ``batch.commit(state)``) once runs are
    started for every record in the batch.

    The first poll after deployment (no cursor) does not replay the account's history: it records
    the watermark = ``now`` and the ids of the invoices currently in the overlap window, and
    delivers nothing. Replaying history is a separate backfill command.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cursor = state.get_cursor(trigger)
    version = int((cursor or {}).get("_version", 0))
    if not cursor or cursor.get("schema") != CURSOR_SCHEMA or not cursor.get("watermark"):
        return _first_poll(client, state, trigger=trigger, now=now, version=version, page_size=page_size)

    watermark_text = str(cursor["watermark"])
    watermark = _aware(watermark_text)
    floor = watermark - OVERLAP
    since = watermark.date() - timedelta(days=1)  # the watermark's date in its own offset
    seen: dict[str, int] = {str(k): int(v) for k, v in (cursor.get("seen") or {}).items()}
    id_floor = int(cursor.get("id_floor") or 0)

    fresh: list[tuple[float, int, dict[str, Any]]] = []
    stamps: dict[str, int] = {}
    problems: dict[str, str] = {}
    window = _Window(client, since, page_size)
    for raw in window:
        record_id = _record_id(raw)
        if record_id is None:
            continue
        updated = _when(raw.get("updated_at"))
        if updated is not None and updated > watermark:
            watermark, watermark_text = updated, updated.isoformat()
        key = str(record_id)
        if key in seen:
            continue
        created = _when(raw.get("created_at"))
        is_new = created >= floor if created is not None else record_id > id_floor
        if not is_new:
            continue  # an older invoice that was edited: not "new"
        stamp = created or updated or now
        seen[key] = stamps[key] = int(stamp.timestamp())
        fresh.append((stamp.timestamp(), record_id, normalized_or_raw(normalize_invoice, raw, key, problems)))

    # Time moves the watermark too, not only the invoices met: else, after a busy day, every idle
    # poll would keep asking for that day (``updated_since`` is a date) and read all its pages for
    # days. What this poll did not list was updated after about now; CLOCK_SLACK absorbs
    # Clientary's clock and a late commit, and the window reaches a day further back anyway. It
    # moves only when that changes the date asked for, so an idle poll within a day writes nothing.
    moved = now.astimezone(watermark.tzinfo) - CLOCK_SLACK
    if moved.date() > watermark.date():
        watermark, watermark_text = moved, moved.isoformat()

    new_floor = int((watermark - OVERLAP).timestamp())
    pruned = {k for k, ts in seen.items() if ts < new_floor}
    for key in pruned:
        id_floor = max(id_floor, int(key))
        del seen[key]

    changed = bool(fresh) or bool(pruned) or watermark_text != str(cursor["watermark"])
    next_cursor = {
        "schema": CURSOR_SCHEMA,
        "watermark": watermark_text,
        "seen": seen,
        "id_floor": id_floor,
        "updated_since": since.isoformat(),
        "polled_at": now.isoformat() if changed else cursor.get("polled_at"),
        "_version": version,
    }
    fresh.sort(key=lambda entry: (entry[0], entry[1]))
    logger.info("poll %s: %d new invoice(s), %d request(s)", trigger, len(fresh), window.requests)
    return PollBatch(
        [record for _, _, record in fresh],
        trigger=trigger,
        cursor=next_cursor,
        changed=changed,
        requests=window.requests,
        state=state,
        base=cursor,
        stamps=stamps,
        problems=problems,
    )


def _first_poll(
    client: InvoiceSource, state: CursorStore, *, trigger: str, now: datetime, version: int, page_size: int
) -> PollBatch:
    # One day further back than a regular poll: the bound's inclusivity and time zone are unknown,
    # and every invoice created since now - OVERLAP must be in ``seen`` or it would look new later.
    since = (now - OVERLAP).date() - timedelta(days=1)
    floor = now - OVERLAP
    watermark, watermark_text = now, now.isoformat()
    seen: dict[str, int] = {}
    id_floor = 0
    window = _Window(client, since, page_size)
    for raw in window:
        record_id = _record_id(raw)
        if record_id is None:
            continue
        id_floor = max(id_floor, record_id)
        updated = _when(raw.get("updated_at"))
        if updated is not None and updated > watermark:
            watermark, watermark_text = updated, updated.isoformat()
        stamp = _when(raw.get("created_at")) or updated
        if stamp is None or stamp >= floor:
            seen[str(record_id)] = int((stamp or now).timestamp())

    # Records without ``created_at`` are told new by id: everything that exists now is history,
    # not only what was updated lately (an old invoice edited next week must not look new).
    def invoice_page(page: int) -> tuple[list[dict[str, Any]], int]:
        envelope = client.list_invoices(page=page, page_size=page_size)
        items = [item for item in envelope.get("invoices") or [] if isinstance(item, dict)]
        return items, _page_count(envelope, page, len(items), page_size)

    highest, extra_requests = _highest_id(invoice_page)
    id_floor = max(id_floor, highest)
    cursor = {
        "schema": CURSOR_SCHEMA,
        "watermark": watermark_text,
        "seen": seen,
        "id_floor": id_floor,
        "updated_since": since.isoformat(),
        "polled_at": now.isoformat(),
        "_version": version,
    }
    logger.info(
        "poll %s: first poll, watermark %s, %d recent id(s) recorded, nothing delivered",
        trigger,
        watermark_text,
        len(seen),
    )
    return PollBatch(
        [],
        trigger=trigger,
        cursor=cursor,
        changed=True,
        requests=window.requests + extra_requests,
        first_poll=True,
        state=state,
    )


def commit(state: CursorStore, batch: PollBatch) -> None:
    """Write the batch's cursor. Call after runs were started for every record in the batch (and
    ``batch.hold`` for each record that must be delivered again).

    Nothing is written when the cursor did not change. If another poll committed in between
    (optimistic version conflict) the two cursors are merged: the later watermark and the union of
    the ids seen, so neither poll's records are delivered again.
    """
    if batch.committed:
        return
    ours = batch.cursor_to_write()
    if not batch.changed:
        batch.committed = True
        return
    cursor = ours
    for _ in range(_COMMIT_ATTEMPTS):
        try:
            state.put_cursor(batch.trigger, cursor)
        except Conflict:
            cursor = _merge(state.get_cursor(batch.trigger), ours)
            continue
        batch.committed = True
        return
    raise RetryableError(f"the {batch.trigger} poll cursor keeps changing; try again", delay_seconds=5)


def _merge(current: dict[str, Any] | None, ours: dict[str, Any]) -> dict[str, Any]:
    if not current or current.get("schema") != CURSOR_SCHEMA or not current.get("watermark"):
        return {**ours, "_version": int((current or {}).get("_version", 0))}
    mine, theirs = _aware(str(ours["watermark"])), _aware(str(current["watermark"]))
    watermark_text = str(ours["watermark"]) if mine >= theirs else str(current["watermark"])
    floor = int((max(mine, theirs) - OVERLAP).timestamp())
    id_floor = max(int(current.get("id_floor") or 0), int(ours.get("id_floor") or 0))
    seen: dict[str, int] = {}
    for key, ts in {**(current.get("seen") or {}), **(ours.get("seen") or {})}.items():
        if int(ts) >= floor:
            seen[str(key)] = int(ts)
        else:
            id_floor = max(id_floor, int(key))
    return {
        **ours,
        "watermark": watermark_text,
        "seen": seen,
        "id_floor": id_floor,
        "_version": int(current.get("_version", 0)),
    }


def fetch_invoice(client: InvoiceSource, invoice_id: int | str) -> dict[str, Any]:
    """Re-read one invoice and normalise it (the push route treats a pushed body as a hint only)."""
    return normalize_invoice(client.get_invoice(invoice_id))


# ---------------------------------------------------------------------------- helpers
class _Window:
    """Every invoice updated since ``since``, page after page; counts the requests it makes."""

    def __init__(self, client: InvoiceSource, since: date, page_size: int) -> None:
        self.client, self.since, self.page_size = client, since, page_size
        self.requests = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            envelope = self.client.list_invoices(
                updated_since=self.since, page=page, page_size=self.page_size
            )
            self.requests += 1
            items = [item for item in envelope.get("invoices") or [] if isinstance(item, dict)]
            yield from items
            # An empty page is always the last one.
            if not items or page >= _page_count(envelope, page, len(items), self.page_size):
                return
            page += 1


def _page_count(envelope: dict[str, Any], page: int, items: int, page_size: int) -> int:
    page_count = envelope.get("page_count")
    if page_count is not None:
        return int(page_count)
    return page + (1 if items >= page_size else 0)  # without counters a short page is the last one


def _highest_id(fetch_page: Callable[[int], tuple[list[dict[str, Any]], int]]) -> tuple[int, int]:
    """The highest id of a whole collection and the requests it took: page 1 and, when there are
    more, the last page — the highest id is on one of them when the list is newest or oldest first
    (ids increase). The order is undocumented, so page 1 is looked at: in any other order (by
    number, by date) every page is read, once, at the first poll."""
    records, pages = fetch_page(1)
    ids = [i for i in (_record_id(raw) for raw in records) if i is not None]
    requests = 1
    ordered = _order_of(records) in ("asc", "desc")
    for page in ([pages] if ordered else range(2, pages + 1)) if pages > 1 else []:
        records, _ = fetch_page(page)
        ids += [i for i in (_record_id(raw) for raw in records) if i is not None]
        requests += 1
    return max(ids, default=0), requests


def _record_id(raw: dict[str, Any]) -> int | None:
    try:
        return int(raw["id"])
    except (KeyError, TypeError, ValueError):
        logger.warning("skipping a Clientary record without a numeric id")
        return None


def _when(value: Any) -> datetime | None:
    try:
        return to_datetime(value)
    except ValueError:
        return None


def _aware(text: str) -> datetime:
    parsed = to_datetime(text)
    if parsed is None:
        raise ValueError(f"cursor watermark is empty: {text!r}")
    return parsed


# ============================================================================ every other resource
# Clientary documents ``updated_since`` only for clients and invoices and a sort order only for
# clients (``sort=date``: newest first), leads (default: newest first) and payments
# (``sort=created_at``, direction undocumented). So one poller serves every other collection and
# finds "new" by creation:
#
# * A record is new when its id is not in ``seen`` and it was created no earlier than
#   ``watermark - CREATED_OVERLAP`` (``watermark`` = the later of the newest ``created_at`` met so
#   far and the last committed poll's time minus ``CLOCK_SLACK``; the first poll sets it to now).
#   Without ``created_at`` it is new when its id is above ``id_floor``
#   (Clientary's ids are increasing integers). ``seen`` holds the ids created inside the overlap
#   window and is pruned as the watermark moves: it stays as small as an hour of records.
# * The overlap (one hour) absorbs a record committed a little after a later one was listed and any
#   clock skew between Lambda and Clientary. Records are deduplicated by id, so overlapping costs
#   nothing but a few ids in the cursor.
# * Reading a paginated list, the poller does not trust an undocumented order: it looks at page 1.
#   Newest first (descending created_at/id) → it stops at the first page that reaches records older
#   than the window: an idle poll is one request. Oldest first (ascending) → the new records are at
#   the end: it remembers the last page in the cursor and next time starts there, walking forward
#   to the end and backward until it meets an old record: again one request when idle. Neither
#   (sorted by name, say) → it reads every page (correct, but one request per page).
# * Unpaginated lists (staff, expenses) are one request, always.
CREATED_OVERLAP = timedelta(hours=1)
CLOCK_SLACK = timedelta(minutes=5)
GENERIC_CURSOR_SCHEMA = 1
# Expenses: GET /expenses covers a window of ``incurred_on`` dates and defaults to the current fiscal
# year, so an expense typed in today for a receipt from two years ago would never show in the
# default window. The poller asks for every date Clientary could hold (1970-01-01 to a year ahead,
# for expenses dated in the future): the list is unpaginated, so this stays one request per poll;
# its cost is the size of that one response.
EXPENSES_FROM = date(1970, 1, 1)
EXPENSES_AHEAD = timedelta(days=366)
# The push route re-reads a payment by scanning the newest payments (Clientary documents no
# GET /payments/:id): at most this many pages of 100.
PAYMENT_LOOKUP_PAGES = 10


class RecordSource(Protocol):
    """What the generic poller needs from ``ClientaryClient``: one GET with query parameters."""

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Listing:
    """How to list one Clientary collection when polling it.

    ``params(watermark)`` gives the query parameters (the watermark lets clients ask for
    ``updated_since``); ``paged`` is false for the lists Clientary returns whole.
    """

    collection: str
    params: Callable[[datetime], dict[str, Any]] = field(default=lambda _watermark: {})
    paged: bool = True


def _clients_params(watermark: datetime) -> dict[str, Any]:
    # A new client was updated when it was created: updated_since narrows the list to recent
    # activity, sort=date puts the newest-created first (one day of slack: the bound is date-only).
    return {"sort": "date", "updated_since": (watermark.date() - timedelta(days=1)).isoformat()}


def _expenses_params(watermark: datetime) -> dict[str, Any]:
    ahead = max(watermark, datetime.now(watermark.tzinfo)) + EXPENSES_AHEAD
    return {"from_date": EXPENSES_FROM.isoformat(), "to_date": ahead.date().isoformat()}


LISTINGS: dict[str, Listing] = {
    "clients": Listing("clients", _clients_params),
    "leads": Listing("leads"),  # documented: newest first by default
    "payments": Listing("payments", lambda _w: {"sort": "created_at"}),
    "projects": Listing("projects", lambda _w: {"filter": "all"}),  # default: active + billable only
    "estimates": Listing("estimates"),
    "tasks": Listing("tasks"),
    "expenses": Listing("expenses", _expenses_params, paged=False),
    "staff": Listing("staff", paged=False),
}


def poll_new_records(
    client: RecordSource,
    state: CursorStore,
    *,
    now: datetime,
    trigger: str,
    listing: Listing,
    normalize: Callable[[dict[str, Any]], dict[str, Any]],
    page_size: int = PAGE_SIZE,
) -> PollBatch:
    """Records of ``listing`` created since the last committed poll, normalised, oldest first.

    Same contract as ``poll_new_invoices``: the cursor is only read; ``batch.commit()`` after the
    runs are started. The first poll (no cursor) delivers nothing and records where to start.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cursor = state.get_cursor(trigger) or {}
    version = int(cursor.get("_version", 0))
    first = cursor.get("schema") != GENERIC_CURSOR_SCHEMA or not cursor.get("watermark")
    if first:
        watermark, watermark_text = now, now.isoformat()
        seen: dict[str, int] = {}
        id_floor = 0
    else:
        watermark_text = str(cursor["watermark"])
        watermark = _aware(watermark_text)
        seen = {str(k): int(v) for k, v in (cursor.get("seen") or {}).items()}
        id_floor = int(cursor.get("id_floor") or 0)
    floor = watermark - CREATED_OVERLAP

    def is_old(raw: dict[str, Any]) -> bool:
        created = _when(raw.get("created_at"))
        if created is not None:
            return created < floor
        record_id = _record_id(raw)
        return record_id is not None and id_floor > 0 and record_id <= id_floor

    walker = _Walker(
        client,
        listing,
        listing.params(watermark),
        page_size,
        is_old=is_old,
        order=None if first else cursor.get("order"),
        last_page=int(cursor.get("last_page") or 0),
    )
    fresh: list[tuple[float, int, dict[str, Any]]] = []
    stamps: dict[str, int] = {}
    problems: dict[str, str] = {}
    max_id = id_floor
    new_watermark, new_watermark_text = watermark, watermark_text
    for raw in walker:
        record_id = _record_id(raw)
        if record_id is None:
            continue
        max_id = max(max_id, record_id)
        created = _when(raw.get("created_at"))
        if created is not None and created > new_watermark:
            new_watermark, new_watermark_text = created, created.isoformat()
        key = str(record_id)
        if key in seen:
            continue
        if first:
            if created is not None and created >= floor:
                seen[key] = int(created.timestamp())
            continue
        is_new = created >= floor if created is not None else record_id > id_floor
        if not is_new:
            continue
        stamp = created or now
        seen[key] = stamps[key] = int(stamp.timestamp())
        fresh.append((stamp.timestamp(), record_id, normalized_or_raw(normalize, raw, key, problems)))
    if first:
        id_floor = max_id  # without created_at, everything listed now is history
        if "updated_since" in walker.params:
            # The list was narrowed to recent updates: the rest of the collection is history too.
            whole = _Walker(
                client,
                listing,
                {k: v for k, v in walker.params.items() if k != "updated_since"},
                page_size,
                is_old=is_old,
                order=None,
                last_page=0,
            )
            highest, _ = _highest_id(whole._page)
            id_floor = max(id_floor, highest)
            walker.requests += whole.requests
    else:
        # Time moves the window too (else a burst of records would keep every later idle poll
        # reading past page one): whatever this poll did not list was created after about now,
        # give or take Clientary's clock and a late commit, which CLOCK_SLACK and the overlap absorb.
        # The watermark is only written by commit, so a failing poll does not move it.
        moved = now - CLOCK_SLACK
        if moved > new_watermark:
            new_watermark, new_watermark_text = moved, moved.isoformat()

    new_floor = int((new_watermark - CREATED_OVERLAP).timestamp())
    pruned = {k for k, ts in seen.items() if ts < new_floor}
    for key in pruned:
        id_floor = max(id_floor, int(key))
        del seen[key]

    changed = (
        first
        or bool(fresh)
        or bool(pruned)
        or new_watermark_text != watermark_text
        or walker.order != cursor.get("order")
        or walker.last_page != int(cursor.get("last_page") or 0)
    )
    next_cursor = {
        "schema": GENERIC_CURSOR_SCHEMA,
        "watermark": new_watermark_text,
        "seen": seen,
        "id_floor": id_floor,
        "order": walker.order,
        "last_page": walker.last_page,
        "polled_at": now.isoformat() if changed else cursor.get("polled_at"),
        "_version": version,
    }
    fresh.sort(key=lambda entry: (entry[0], entry[1]))
    if first:
        logger.info(
            "poll %s: first poll, watermark %s, %d recent id(s) recorded, nothing delivered",
            trigger,
            new_watermark_text,
            len(seen),
        )
    else:
        logger.info("poll %s: %d new record(s), %d request(s)", trigger, len(fresh), walker.requests)
    return PollBatch(
        [record for _, _, record in fresh],
        trigger=trigger,
        cursor=next_cursor,
        changed=changed,
        requests=walker.requests,
        first_poll=first,
        state=state,
        base=None if first else cursor,
        stamps=stamps,
        problems=problems,
    )


def list_created_since(
    client: RecordSource,
    *,
    since: datetime,
    listing: Listing,
    normalize: Callable[[dict[str, Any]], dict[str, Any]],
    page_size: int = PAGE_SIZE,
) -> list[dict[str, Any]]:
    """Every record of ``listing`` created at or after ``since``, normalised, oldest first (backfill).

    Records without ``created_at`` are all returned: without a date there is no way to tell.
    """

    def is_old(raw: dict[str, Any]) -> bool:
        created = _when(raw.get("created_at"))
        return created is not None and created < since

    params = listing.params(since)
    walker = _Walker(client, listing, params, page_size, is_old=is_old, order=None, last_page=0)
    found: dict[int, tuple[float, dict[str, Any]]] = {}
    problems: dict[str, str] = {}
    for raw in walker:
        record_id = _record_id(raw)
        if record_id is None or is_old(raw):
            continue
        created = _when(raw.get("created_at"))
        record = normalized_or_raw(normalize, raw, str(record_id), problems)
        found[record_id] = (created.timestamp() if created else 0.0, record)
    return Records(
        [record for _, (_, record) in sorted(found.items(), key=lambda kv: (kv[1][0], kv[0]))],
        problems=problems,
    )


class Records(list[dict[str, Any]]):
    """Normalised records (a backfill's); ``problems``: record id -> why it is raw (see PollBatch)."""

    def __init__(self, records: list[dict[str, Any]], *, problems: dict[str, str] | None = None) -> None:
        super().__init__(records)
        self.problems = dict(problems or {})
        self.warnings: dict[str, list[str]] = {}  # record id -> what its run should say


def normalized_or_raw(
    normalize: Callable[[dict[str, Any]], dict[str, Any]],
    raw: dict[str, Any],
    key: str,
    problems: dict[str, str],
) -> dict[str, Any]:
    """``normalize(raw)``; an odd record that breaks it is kept raw, its reason in ``problems``, so
    it gets a FAILED run saying why instead of failing the whole poll."""
    try:
        return normalize(raw)
    except Exception as exc:
        reason = f"normalising Clientary record {key} failed: {type(exc).__name__}: {exc}"
        logger.warning("%s", reason)
        problems[key] = reason
        return {**raw, "id": int(key)}


class _Walker:
    """The records of one listing, page by page, in whichever order Clientary returns them."""

    def __init__(
        self,
        client: RecordSource,
        listing: Listing,
        params: dict[str, Any],
        page_size: int,
        *,
        is_old: Callable[[dict[str, Any]], bool],
        order: str | None,
        last_page: int,
    ) -> None:
        self.client, self.listing, self.params, self.page_size = client, listing, params, page_size
        self.is_old = is_old
        self.order = order if listing.paged else "whole"
        self.last_page = last_page if listing.paged else 0
        self.requests = 0

    def _page(self, page: int | None) -> tuple[list[dict[str, Any]], int]:
        params = dict(self.params)
        if page is not None:
            params.update(page=page, page_size=self.page_size)
        envelope = self.client.get(f"/{self.listing.collection}", params)
        self.requests += 1
        items = envelope.get(self.listing.collection)
        if not isinstance(items, list):
            raise PermanentError(
                f"Clientary answered GET /{self.listing.collection} without a "
                f"'{self.listing.collection}' list",
                service="clientary",
            )
        records = [item for item in items if isinstance(item, dict)]
        return records, _page_count(envelope, page or 1, len(records), self.page_size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.listing.paged:
            records, _ = self._page(None)
            yield from records
            return
        if self.order == "asc" and self.last_page > 1:
            yield from self._ascending(self.last_page)
            return
        records, pages = self._page(1)
        order = _order_of(records)
        if order == "asc" and pages > 1:
            self.order = "asc"
            yield from records
            yield from self._ascending(pages, skip=1)
            return
        self.order = "mixed" if order == "mixed" else ("asc" if order == "asc" else "desc")
        self.last_page = pages if self.order == "asc" else 0
        page = 1
        while True:
            yield from records
            if not records or page >= pages:
                return
            if self.order != "mixed" and self.is_old(records[-1]):
                return  # newest first: everything after this is older still
            page += 1
            records, pages = self._page(page)

    def _ascending(self, start: int, skip: int = 0) -> Iterator[dict[str, Any]]:
        """Oldest first: new records are at the end. Read from ``start`` to the last page, then back
        until a page begins with an old record (deletions move records to earlier pages)."""
        records, pages = self._page(start)
        if start > max(pages, 1):  # the list shrank: its end is on an earlier page now
            start = max(pages, 1)
            records, pages = self._page(start)
        yield from records
        earliest = records
        for page in range(start + 1, pages + 1):
            more, pages = self._page(page)
            yield from more
        page = start - 1
        while page > skip and (not earliest or not self.is_old(earliest[0])):
            earliest, _ = self._page(page)
            yield from earliest
            page -= 1
        self.last_page = max(pages, 1)


def _order_of(records: list[dict[str, Any]]) -> str:
    """``desc`` (newest first), ``asc`` (oldest first), ``mixed`` or ``unknown`` (fewer than two)."""
    keys = []
    for raw in records:
        created = _when(raw.get("created_at"))
        record_id = _record_id(raw)
        keys.append((created.timestamp() if created else 0.0, record_id or 0))
    if len(keys) < 2:
        return "unknown"
    pairs = list(itertools.pairwise(keys))
    if all(a >= b for a, b in pairs):
        return "desc"
    if all(a <= b for a, b in pairs):
        return "asc"
    return "mixed"


def fetch_record(client: RecordSource, collection: str, record_id: int | str) -> dict[str, Any]:
    """``GET /<collection>/:id`` (raises ``ClientaryNotFound`` for an unknown id)."""
    text = str(record_id).strip()
    if not text.isdigit():
        raise PermanentError(f"not a Clientary id: {record_id!r}", service="clientary")
    return client.get(f"/{collection}/{text}")


def fetch_payment(client: RecordSource, payment_id: int | str) -> dict[str, Any]:
    """A payment by id: Clientary has no ``GET /payments/:id``, so the newest payments are scanned
    (``sort=created_at``; its direction is undocumented, so page 1 says which end is the newest)."""
    from clientary_xero.connectors.clientary.client import ClientaryNotFound

    wanted = str(payment_id).strip()

    def page_of(page: int) -> tuple[list[dict[str, Any]], int]:
        envelope = client.get("/payments", {"sort": "created_at", "page": page, "page_size": PAGE_SIZE})
        items = [raw for raw in envelope.get("payments") or [] if isinstance(raw, dict)]
        return items, _page_count(envelope, page, len(items), PAGE_SIZE)

    records, pages = page_of(1)
    order = [1]
    if pages > 1:
        newest_last = _order_of(records) == "asc"
        order = ([1, *range(pages, 1, -1)] if newest_last else list(range(1, pages + 1)))[
            :PAYMENT_LOOKUP_PAGES
        ]
    for page in order:
        if page != 1:
            records, _ = page_of(page)
        for raw in records:
            if str(raw.get("id")) == wanted:
                return raw
    raise ClientaryNotFound(
        f"payment {wanted} is not among Clientary's newest payments", status=404, service="clientary"
    )
