"""BASELINE for benchmarks/bench_budget.py: the rate budget as it was before reservations (issue 8
point 3), frozen here so one benchmark run can measure before and after. Not used by the product.

Xero's per-organisation rate budget, shared by every Lambda through the State table.

Xero allows, per organisation (tenant): 5 calls in flight, 60 per rolling minute and 5,000 per day
(reference/xero-api.md §4.1). Several Lambdas (action batches, trigger fetches) call the same
organisation at once, so the budget lives in DynamoDB, one item per tenant::

    pk = RATE#xero#<tenant>   sk = BUDGET
    slots    {owner: lease_until_ms}   calls in flight, each a lease that expires on its own
    recent   [admitted_ms, …]          admissions, oldest first (at most the minute limit)
    minute_blocked_until / day_blocked_until (ms)   learnt from a 429's Retry-After

**Admission is one conditional update**, atomic in DynamoDB whatever the number of concurrent
Lambdas: ``SET slots.<owner> = lease, recent = list_append(recent, [now])`` under the condition
``size(slots) < 5 AND size(recent) < 60`` and no block in force. So the item can never hold more
than 5 slots or 60 admissions, and a call is made only with its slot and admission written. The
condition counts entries that have gone stale (an expired lease, an admission older than the
window) too, so the budget errs on the safe side; when the condition fails, the worker reads the
item and, if stale entries are what holds it back, removes them — each removal conditional on what
it read (the lease unchanged; each of the oldest admissions still older than the window), so two
workers tidying at once cannot remove a live entry — and tries again. No version counter: workers
that race for different slots do not make each other retry. Release removes only the worker's
own slot (``REMOVE slots.<owner>``).

**A dead Lambda cannot leak a slot.** A slot is a lease (``lease_seconds``, default 75 s: longer
than any function that calls Xero may run, 60 s, so no call, however slowly its answer trickles in —
httpx's 20 s time-out bounds each read, not the whole call — outlives its slot and lets a sixth call
in). A worker killed mid-call leaves its slot until the lease ends; then the next worker that finds
the budget full removes it. Release is best effort for the same reason: if it fails (DynamoDB
throttled), the lease still expires.

**An admission that lands late is not used.** The admission time is taken before the write; if
the write lands late (boto3 retrying a throttled request), the call would happen later than the
time the window counts it at, and our window could end before Xero's. So an admission whose write
took longer than ``late_admission_ms`` (1 s) gives its slot back and admits again — at most
twice, and not past the wait bound: then the late one is used, and at worst Xero answers 429. The
late entry stays in the window (erring on the safe side).

**Clock skew.** Leases and windows use each worker's wall clock (Lambda hosts are NTP-synced to
within milliseconds). The window is 61 s rather than 60: the extra second covers skew between
workers and the time between our admission and Xero counting the call, so our window never ends
before Xero's does. A lease that another worker's clock sees as expired a little early only matters
after the 75 s lease, beyond any call's duration.

**Learning from Xero.** Other deployments of the app, or another integration with the same
organisation, use the same limits. Every answer's ``X-MinLimit-Remaining`` is compared with our
own count; when Xero has counted more calls than we admitted, the difference is added as
admissions at "now", so the budget slows down for a minute. A 429 ``minute`` blocks the tenant until
its ``Retry-After``; a 429 ``day`` blocks it until the daily reset, and every worker that asks in
the meantime is told to park its run without calling Xero.

**Bounded waiting.** ``acquire`` waits at most ``wait_seconds`` inside the Lambda: until the window
frees when that time is known, otherwise polling with jittered exponential back-off (100 ms to 1 s),
so twenty waiters do not become a storm of reads on one item. If the budget will not free up in
that time it raises ``BudgetExceeded`` (a ``RetryableError`` that says which limit and how long):
the engine then re-sends the step message with that delay instead of counting an attempt (see
engine/runner.py).

**When DynamoDB throttles.** boto3 already retries throttled requests with back-off. If admission
still fails, the call is not made (fail closed: calling Xero blind would only earn a 429) and the
step retries later like any retryable error. A failed release or observation is logged and
ignored: the lease and the window repair themselves. One item per organisation is a hot key only
in name: at most 60 admitted calls a minute, each costing one to a few small requests, against
DynamoDB's 1,000 writes per second per partition.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clientary_xero.errors import Conflict

# The product's exception, so the runner treats this budget's waits as it treats the new one's.
from clientary_xero.storage.ratelimit import BudgetExceeded
from clientary_xero.storage.state import StateStore

logger = logging.getLogger(__name__)

CONCURRENT_LIMIT = 5
MINUTE_LIMIT = 60
WINDOW_SECONDS = 61.0
LEASE_SECONDS = 75.0
# An admission whose write took longer than this is given back (see the module docstring): the
# window's extra second (61 s against Xero's 60) covers a write that lands up to this late.
LATE_ADMISSION_MS = 1000
# How often one acquire retakes a late admission before it uses the late one after all.
MAX_RETAKES = 2
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Permit:
    """One admitted call: release it when the call is over (in ``finally``)."""

    scope: str
    owner: str
    admitted_ms: int
    # Admissions in the window when this one was admitted (itself included).
    count: int


@dataclass
class _View:
    exists: bool
    slots: dict[str, int]  # live ones only
    expired: dict[str, int]
    recent: list[int]  # as stored (append order)
    minute_blocked_until: int
    day_blocked_until: int

    def live_recent(self, cutoff: int) -> list[int]:
        return sorted(v for v in self.recent if v > cutoff)

    def stale_prefix(self, cutoff: int) -> int:
        """How many of the oldest admissions (from the front of the list) left the window."""
        count = 0
        for value in self.recent:
            if value > cutoff:
                break
            count += 1
        return count


class RateBudget:
    """Admission control for one API's per-tenant limits (Xero's by default)."""

    def __init__(
        self,
        store: StateStore | None = None,
        *,
        concurrent: int = CONCURRENT_LIMIT,
        per_minute: int = MINUTE_LIMIT,
        window_seconds: float = WINDOW_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        late_admission_ms: int = LATE_ADMISSION_MS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        service: str = "xero",
    ) -> None:
        self.store = store or StateStore()
        self.concurrent = concurrent
        self.per_minute = per_minute
        self.window_ms = int(window_seconds * 1000)
        self.lease_ms = int(lease_seconds * 1000)
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.late_admission_ms = late_admission_ms
        self.clock = clock
        self.sleep = sleep
        self.service = service

    # ------------------------------------------------------------------ public
    def acquire(self, scope: str) -> Permit:
        """Wait (bounded) for a slot and a place in the minute; raises ``BudgetExceeded``."""
        owner = uuid.uuid4().hex
        deadline = self.clock() + self.wait_seconds
        polls = 0
        retakes = 0
        while True:
            now = self._now_ms()
            try:
                count = self._admit(scope, owner, now)
            except Conflict:
                pass  # full, blocked, untidy or not created yet: look at it
            else:
                permit = Permit(scope, owner, now, count)
                late = self._now_ms() - now > self.late_admission_ms
                if not late or retakes >= MAX_RETAKES or self.clock() >= deadline:
                    # Writes that keep landing late (DynamoDB throttling) would otherwise retake
                    # forever, each late entry using up the minute: then the last one is used, and
                    # at worst Xero answers 429, which waits out its Retry-After like any other.
                    return permit
                logger.info("a rate admission landed late; taking a fresh one")
                self.release(permit)
                owner = uuid.uuid4().hex
                retakes += 1
                continue
            view = self._read(scope, now)
            if not view.exists:
                self._create(scope, now)
                continue
            if view.day_blocked_until > now:
                raise BudgetExceeded(
                    f"Xero's daily limit for this organisation is used up; it resets in "
                    f"{_seconds(view.day_blocked_until - now)} s",
                    delay_seconds=_seconds(view.day_blocked_until - now),
                    limit="day",
                )
            if self._tidy(scope, view, now):
                continue  # expired slots or old admissions were in the way: admit again at once
            limit, wait_ms = self._verdict(view, now)
            if limit is None:
                continue  # a slot freed between the admission and the read
            remaining = deadline - self.clock()
            if wait_ms / 1000 > remaining:
                delay = _seconds(wait_ms) if limit == "minute" else random.randint(1, 3)  # noqa: S311
                raise BudgetExceeded(
                    f"Xero's {limit} limit for this organisation is reached; retry in {delay} s",
                    delay_seconds=delay,
                    limit=limit,
                )
            if limit == "concurrent":
                # Nobody knows when a call ends: poll with jittered exponential back-off, so many
                # waiters do not turn into a storm of reads on one item.
                ceiling = min(MAX_POLL_SECONDS, self.poll_seconds * 2**polls)
                pause = random.uniform(self.poll_seconds / 2, ceiling)  # noqa: S311
                polls += 1
            else:  # the window frees at a known time
                pause = wait_ms / 1000 + random.uniform(0, self.poll_seconds)  # noqa: S311
            self.sleep(min(pause, max(0.001, deadline - self.clock())))

    def release(self, permit: Permit) -> None:
        """Give the slot back. Best effort: if this fails, the lease expires on its own."""
        try:
            self.store.update_raw(
                self._key(permit.scope),
                UpdateExpression="REMOVE slots.#o",
                ConditionExpression="attribute_exists(slots.#o)",
                ExpressionAttributeNames={"#o": permit.owner},
            )
        except Conflict:
            pass  # the lease expired and was tidied away already
        except Exception as exc:
            logger.warning("could not release a rate slot (%s); its lease will expire", type(exc).__name__)

    def observe(self, permit: Permit, minute_remaining: int | None) -> None:
        """Learn from ``X-MinLimit-Remaining``: count calls Xero saw that this budget did not admit."""
        if minute_remaining is None or self.per_minute - minute_remaining <= permit.count:
            return
        for _ in range(3):
            now = self._now_ms()
            try:
                view = self._read(permit.scope, now)
                live = len(view.live_recent(now - self.window_ms))
                missing = min(self.per_minute - minute_remaining, self.per_minute) - live
                if missing <= 0:
                    return
                # Appended only if nobody admitted or tidied meanwhile (else look again).
                self.store.update_raw(
                    self._key(permit.scope),
                    UpdateExpression="SET recent = list_append(recent, :pads)",
                    ConditionExpression="size(recent) = :n",
                    ExpressionAttributeValues={":pads": [now] * missing, ":n": len(view.recent)},
                )
                logger.info("Xero counted %d calls this budget did not admit; slowing down", missing)
                return
            except Conflict:
                continue
            except Exception as exc:
                logger.warning("could not record Xero's remaining minute budget (%s)", type(exc).__name__)
                return

    def blocked(self, scope: str, limit: str | None, retry_after: int) -> None:
        """Xero answered 429: hold every worker back until ``Retry-After`` (minute or day)."""
        field = {"minute": "minute_blocked_until", "day": "day_blocked_until"}.get(limit or "")
        if field is None:
            return
        until = self._now_ms() + max(1, retry_after) * 1000
        try:
            self.store.update_raw(
                self._key(scope),
                UpdateExpression="SET #f = :until, #ttl = :ttl",
                ConditionExpression="attribute_not_exists(#f) OR #f < :until",
                ExpressionAttributeNames={"#f": field, "#ttl": "ttl"},
                ExpressionAttributeValues={":until": until, ":ttl": until // 1000 + 86400},
            )
        except Conflict:
            pass  # someone recorded a later block already
        except Exception as exc:
            logger.warning("could not record Xero's %s block (%s)", limit, type(exc).__name__)

    def lift_blocks(self, scope: str, *, day: bool = False) -> None:
        """Forget a 429's block (the local runner's fast-forward: the wait has "passed")."""
        fields = "minute_blocked_until, day_blocked_until" if day else "minute_blocked_until"
        with contextlib.suppress(Conflict):
            self.store.update_raw(
                self._key(scope),
                UpdateExpression=f"REMOVE {fields}",
                ConditionExpression="attribute_exists(pk)",
            )

    def snapshot(self, scope: str) -> dict[str, Any]:
        """The budget as it stands (for tests, benchmarks and operators)."""
        now = self._now_ms()
        view = self._read(scope, now)
        return {
            "in_flight": len(view.slots),
            "last_window": len(view.live_recent(now - self.window_ms)),
            "minute_blocked_until": view.minute_blocked_until / 1000 or None,
            "day_blocked_until": view.day_blocked_until / 1000 or None,
        }

    # ---------------------------------------------------------------- internals
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _key(self, scope: str) -> dict[str, str]:
        return {"pk": f"RATE#{self.service}#{scope}", "sk": "BUDGET"}

    def _admit(self, scope: str, owner: str, now: int) -> int:
        """The admission: one conditional update, atomic in DynamoDB. Returns the window's count.

        The condition counts every stored slot and admission, expired ones included; ``_tidy``
        removes those when they are in the way, so the limits are never exceeded, only (briefly)
        under-used."""
        response = self.store.update_raw(
            self._key(scope),
            UpdateExpression="SET slots.#o = :lease, recent = list_append(recent, :now), #ttl = :ttl",
            ConditionExpression=(
                "attribute_exists(slots) AND size(slots) < :concurrent AND size(recent) < :per_minute "
                "AND (attribute_not_exists(minute_blocked_until) OR minute_blocked_until <= :nowi) "
                "AND (attribute_not_exists(day_blocked_until) OR day_blocked_until <= :nowi)"
            ),
            ExpressionAttributeNames={"#o": owner, "#ttl": "ttl"},
            ExpressionAttributeValues={
                ":lease": now + self.lease_ms,
                ":now": [now],
                ":nowi": now,
                ":concurrent": self.concurrent,
                ":per_minute": self.per_minute,
                ":ttl": now // 1000 + 86400 * 2,
            },
            ReturnValues="UPDATED_NEW",
        )
        recent = (response.get("Attributes") or {}).get("recent") or []
        return len([v for v in recent if int(v) > now - self.window_ms])

    def _create(self, scope: str, now: int) -> None:
        with contextlib.suppress(Conflict):  # another worker created it first
            self.store.update_raw(
                self._key(scope),
                UpdateExpression="SET slots = :empty_map, recent = :empty_list, #ttl = :ttl",
                ConditionExpression="attribute_not_exists(slots)",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":empty_map": {},
                    ":empty_list": [],
                    ":ttl": now // 1000 + 86400 * 2,
                },
            )

    def _tidy(self, scope: str, view: _View, now: int) -> bool:
        """Drop expired slots and admissions that left the window, if they hold the budget full.

        Each removal is conditional on what was read, so two workers tidying at once cannot remove
        a live entry: expired slots only if their lease is unchanged, the oldest admissions only
        while each of them is still older than the window. Returns True if something was removed."""
        cutoff = now - self.window_ms
        stale = view.stale_prefix(cutoff)
        slots_full = len(view.slots) + len(view.expired) >= self.concurrent and view.expired
        window_full = len(view.recent) >= self.per_minute and stale
        if not (slots_full or window_full):
            return False
        names: dict[str, str] = {}
        values: dict[str, Any] = {":cutoff": cutoff} if stale else {}
        removes: list[str] = []
        conditions: list[str] = []
        for i, (owner, lease) in enumerate(view.expired.items()):
            names[f"#x{i}"] = owner
            values[f":l{i}"] = lease
            removes.append(f"slots.#x{i}")
            conditions.append(f"slots.#x{i} = :l{i}")
        for j in range(stale):
            removes.append(f"recent[{j}]")
            conditions.append(f"recent[{j}] <= :cutoff")
        with contextlib.suppress(Conflict):  # someone tidied (or admitted) meanwhile; read again
            self.store.update_raw(
                self._key(scope),
                UpdateExpression="REMOVE " + ", ".join(removes),
                ConditionExpression=" AND ".join(conditions),
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues=values,
            )
        return True

    def _verdict(self, view: _View, now: int) -> tuple[str | None, int]:
        """What holds the admission back, as its condition sees the item (stored entries, expired
        ones included: ``_tidy`` has removed those it could), and for how long."""
        if view.minute_blocked_until > now:
            return "minute", view.minute_blocked_until - now
        if len(view.slots) + len(view.expired) >= self.concurrent:
            return "concurrent", int(self.poll_seconds * 1000)
        if len(view.recent) >= self.per_minute:
            # The oldest admission (the front of the list) must leave the window first.
            return "minute", max(1, view.recent[0] + self.window_ms - now + 1)
        return None, 0

    def _read(self, scope: str, now: int) -> _View:
        item = self.store.get_raw(self._key(scope))
        if item is None:
            return _View(False, {}, {}, [], 0, 0)
        slots: dict[str, int] = {}
        expired: dict[str, int] = {}
        for owner, lease in (item.get("slots") or {}).items():
            (slots if int(lease) > now else expired)[str(owner)] = int(lease)
        return _View(
            exists="slots" in item,
            slots=slots,
            expired=expired,
            recent=[int(v) for v in item.get("recent") or []],
            minute_blocked_until=int(item.get("minute_blocked_until", 0)),
            day_blocked_until=int(item.get("day_blocked_until", 0)),
        )


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))
