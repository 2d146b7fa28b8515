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

An idle poll is one request (page 1 of a window with nothing new) and no write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from clientary_xero.connectors.clientary.normalize import normalize_invoice, to_datetime
from clientary_xero.errors import Conflict, RetryableError

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
    ) -> None:
        super().__init__(records)
        self.trigger = trigger
        self.cursor = cursor
        self.changed = changed
        self.requests = requests
        self.first_poll = first_poll
        self.committed = False
        self._state = state

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self)

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
        seen[key] = int(stamp.timestamp())
        fresh.append((stamp.timestamp(), record_id, normalize_invoice(raw)))

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
        requests=window.requests,
        first_poll=True,
        state=state,
    )


def commit(state: CursorStore, batch: PollBatch) -> None:
    """Write the batch's cursor. Call after runs were started for every record in the batch.

    Nothing is written when the cursor did not change. If another poll committed in between
    (optimistic version conflict) the two cursors are merged: the later watermark and the union of
    the ids seen, so neither poll's records are delivered again.
    """
    if batch.committed:
        return
    if not batch.changed:
        batch.committed = True
        return
    cursor = batch.cursor
    for _ in range(_COMMIT_ATTEMPTS):
        try:
            state.put_cursor(batch.trigger, cursor)
        except Conflict:
            cursor = _merge(state.get_cursor(batch.trigger), batch.cursor)
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
            page_count = envelope.get("page_count")
            # Without counters a short page is the last one; an empty page always is.
            more = page < int(page_count) if page_count is not None else len(items) >= self.page_size
            if not items or not more:
                return
            page += 1


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
