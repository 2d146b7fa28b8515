"""Xero's per-organisation rate budget, shared by every Lambda through the State table.

Xero allows, per organisation (tenant): 5 calls in flight, 60 per rolling minute and 5,000 per day
(reference/xero-api.md §4.1). Several Lambdas (action batches, trigger fetches) call the same
organisation at once, so the budget lives in DynamoDB, one item per tenant::

    pk = RATE#xero#<tenant>   sk = BUDGET
    tat      theoretical arrival time (ms): the instant the next caller may have
    since    when the current busy period began (ms), prev_tat: the tat before it
    slots    {owner: lease_until_ms}   calls in flight, each a lease that expires on its own
    minute_blocked_until / day_blocked_until (ms)   learnt from a 429's Retry-After

**Reservations, not retries (GCRA).** The minute limit is a schedule: one instant every
``interval`` = 61 s ÷ (60 - burst + 1) (1.034 s with the default burst of 2), and up to ``burst``
calls back to back after a quiet spell (the tolerance τ = (burst - 1) x interval). A caller takes
the next instant with **one conditional write** that moves ``tat`` on: ``SET tat = tat + :interval``
when the schedule is busy (``tat > now``; the write returns the new ``tat``, so the caller learns
*its own* instant: ``max(now, old tat - τ)``), or ``SET tat = now + interval`` when it is idle
(``tat ≤ now``). Which of the two to try is guessed from the ``tat`` this worker saw last; a wrong
guess fails its condition, and the refusal returns the item as it stands
(``ReturnValuesOnConditionCheckFailure``), so the worker takes the other without reading it.
When the schedule is idle and this worker saw no other call in flight last (or never looked), the
idle form sets the slots outright (``slots = {owner: lease}`` under ``size(slots) = 0``), which
also makes the item when there is none (the first call to an organisation, or the first after the
item's TTL): one write, where making the item first cost three requests more. Instants are at
least ``interval`` apart except for the burst, so any 61 s holds at most ``60 x interval - τ ≥ 61 s``
worth, i.e. at most 60 instants: the window is kept without storing a list of admissions.

A caller whose instant is near (≤ ``wait_seconds``) sleeps in the Lambda until it. One whose
instant is further raises ``BudgetExceeded`` carrying a ``Reservation`` (the instant, or instants:
see below); the engine re-sends the step message **once**, delayed to arrive just before that
instant (``EARLY_SECONDS``), with the reservation in the message (engine/runner.py). On arrival the
reservation is honoured: no new instant is taken, the caller sleeps the last second and calls. So
twenty waiters get twenty different instants and wake one after the other, instead of all waking
together, trying again and being sent back again. A reservation that comes back more than a
window late (a message stuck behind a long outage) is void and a new instant is taken: honouring
it could put more than 60 calls into one window.

**A step with several calls.** A step may call Xero more than once (a lookup, then a write). Its
execution is a *turn* (``rate_turn``, opened by the runner around the action): if a later call of
the turn finds its instant far, the reservation covers the turn's earlier calls too (``n`` instants
in one write: ``tat + n x interval``), because the re-sent step makes them again. A step that knows
it is about to make ``n`` calls says so (``expect_calls``: a new contact's lookup and write), and
its first admission reserves the ``n`` instants in its one write; the later calls honour theirs
and take the slot the earlier call of the same batch no longer uses, still held for the
checkpoint, when its lease outlasts ``MAX_CALL_SECONDS`` from now (so no call outlives the slot it
runs under): no write at all. Such a call does not look at a 429's block another worker recorded
in the second since the first call (Xero's answer teaches it, as any call's does). An instant
reserved and not used (the step failed after its lookup) is simply lost to the schedule. A turn honours
its instants in order, so a step is re-sent once however many calls it makes (unless it makes more
calls on the second run than the first, e.g. a find-before-create after a lost answer: then once
more).

**In flight.** The 5-in-flight limit shares the item and, when the instant is near, the same
write: ``SET slots.<owner> = lease`` under ``size(slots) < 5``. A caller whose instant is far takes
no slot until it comes back (then one conditional write takes it: ``SET slots.<owner>``). Release
removes only the worker's own slot (``REMOVE slots.<owner>``). **A step's call costs one write**:
its release rides along with the step's checkpoint, which is a ``TransactWriteItems`` on the same
table anyway (``slots_ride_along``, opened by engine/batching.py around a batch of steps; the
checkpoint takes ``held_slots()``), so the slot is free the moment the step's outcome is written,
a few milliseconds after the call; at most ``RIDING_SLOTS`` (a step's lookup and write) wait so,
older ones are released at once, so a batch making many calls never waits for its own slots; a
batch call's slot goes with its first member's checkpoint. Other writes of the step may ride
along the same way (``ride_along``: a contact's id link with its lock given up,
storage/state.py). A slot no checkpoint took (a failed
step, a wait, a checkpoint that had to be made without its transaction) is released by a write of
its own once that step has settled, and calls outside a step
(a trigger's fetches) release theirs at once, as before. (Folding the release into the worker's
*next admission* instead would let a finished call hold its slot until the Lambda calls again,
which starves the limit when twenty Lambdas are busy with their own bookkeeping.) An admission
that meets such a transaction on the item (``TransactionConflict``: nothing was written) is a lost
race: it reads and tries again. The condition counts expired slots too (erring on the safe side);
when it fails the worker looks at the item its refusal returned and removes expired ones (each
removal conditional on the lease it saw, so two workers tidying at once cannot remove a live one),
else waits with jittered back-off (nobody knows when a call ends).

**A dead Lambda cannot leak a slot.** A slot is a lease (``lease_seconds``, default 75 s: longer
than any function that calls Xero may run, 60 s, so no call, however slowly its answer trickles in —
httpx's 20 s time-out bounds each read, not the whole call — outlives its slot and lets a sixth call
in). A worker killed mid-call leaves its slot until the lease ends; then the next worker that finds
the budget full removes it. Release is best effort for the same reason. A dead Lambda's reserved
instant is simply not used: the schedule under-uses the minute, never over-uses it.

**Clock skew and lateness.** Instants and leases use each worker's wall clock (Lambda hosts are
NTP-synced to within milliseconds). The window is 61 s rather than Xero's 60: the extra second
covers skew between workers and the time between our instant and Xero counting the call. A call is
never made before its instant; a call made late (a slow write, a late SQS delivery) only shifts it,
and the schedule's spacing protects the calls around it. The write is stamped with the time taken
before it; if it lands late the instant it returns is already past and the call goes at once.

**Learning from Xero.** Other deployments of the app, or another integration with the same
organisation, use the same limits. Every answer's ``X-MinLimit-Remaining`` tells how many calls
Xero counted in its last minute; when that is more than this budget's own instants can explain (an
upper bound from ``tat``, ``since`` and ``prev_tat``), the difference is added to the schedule
(``tat`` moves on by that many intervals), so the budget slows down for those calls. When the
schedule is busy its own calls explain any count, so then only a 429 teaches: a 429 ``minute``
blocks the tenant until its ``Retry-After``; a 429 ``day`` blocks it until the daily reset, and
every worker that asks in the meantime is told to park its run without calling Xero.

**When DynamoDB throttles.** boto3 already retries throttled requests with back-off. If admission
still fails, the call is not made (fail closed: calling Xero blind would only earn a 429) and the
step retries later like any retryable error. A failed release or observation is logged and
ignored: the lease and the schedule repair themselves. One item per organisation is a hot key only
in name: at most 60 admitted calls a minute, each costing a small write and a share of a
checkpoint's transaction, against DynamoDB's 1,000 writes per second per partition.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from clientary_xero.errors import Conflict, RetryableError
from clientary_xero.storage.state import ConditionFailed, StateStore, TransactionConflict

logger = logging.getLogger(__name__)

CONCURRENT_LIMIT = 5
MINUTE_LIMIT = 60
WINDOW_SECONDS = 61.0
# Calls that may go back to back after a quiet spell (a step's lookup and write); each one more
# slows the sustained pace by one call in 61 s (see the module docstring).
BURST = 2
LEASE_SECONDS = 75.0
# The longest a call can last once made: the functions that call Xero time out after 60 s. A
# slot whose lease outlasts it from now may carry one more call of the same step.
MAX_CALL_SECONDS = 60.0
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 1.0
# A re-sent message is due this long before its instant and sleeps the rest in the Lambda: SQS and
# Lambda's poller deliver late, never early, so arriving a little early keeps the call on time.
EARLY_SECONDS = 1.0
# Xero's own window (X-MinLimit-Remaining counts the last 60 s).
XERO_WINDOW_MS = 60_000


@dataclass(frozen=True)
class Reservation:
    """Instants reserved for one organisation, carried by a re-sent message (``to_message``)."""

    scope: str
    instants: tuple[int, ...]  # ms, ascending

    def to_message(self) -> dict[str, Any]:
        return {"scope": self.scope, "instants": list(self.instants)}

    @classmethod
    def from_message(cls, data: Any) -> Reservation | None:
        """The reservation a message carries; anything malformed is no reservation (a new one is taken)."""
        if not isinstance(data, dict) or not isinstance(data.get("scope"), str):
            return None
        instants = data.get("instants")
        if not isinstance(instants, list) or not instants or len(instants) > 50:
            return None
        try:
            values = tuple(sorted(int(v) for v in instants))
        except (TypeError, ValueError):
            return None
        return cls(data["scope"], values)


class BudgetExceeded(RetryableError):
    """The shared budget says wait; no call was made. ``limit``: concurrent, minute or day.

    ``reservation``: the instants this caller holds (send them with the re-sent message)."""

    def __init__(
        self, message: str, *, delay_seconds: int, limit: str, reservation: Reservation | None = None
    ) -> None:
        super().__init__(message, delay_seconds=delay_seconds, service="xero", limit=limit)
        self.reservation = reservation


@dataclass
class _Turn:
    """One step execution's calls (see "A step with several calls")."""

    pending: list[tuple[str, int]] = field(default_factory=list)  # (scope, instant) to honour
    calls: int = 0  # calls admitted in this turn
    expect: int = 0  # calls the step says it is about to make (``expect_calls``)


_turn: contextvars.ContextVar[_Turn | None] = contextvars.ContextVar("rate_turn", default=None)


@dataclass
class HeldSlots:
    """Slots of calls that are over, whose release rides along with the next step checkpoint
    (see "In flight"): ``updates()`` for its transaction, ``released()`` once it is written.

    Other writes may ride along the same way (``ride_along``: a contact's id link written with its
    lock given up, storage/state.py ``LinkHold.write``), each with the write to make by itself
    when no checkpoint takes it."""

    held: list[tuple[RateBudget, Permit]] = field(default_factory=list)
    writes: list[tuple[dict[str, Any], Callable[[], None]]] = field(default_factory=list)
    _taken: int = 0
    _writes_taken: int = 0

    def updates(self) -> list[dict[str, Any]]:
        """The releases as ``TransactWriteItems`` updates, one per budget item (a transaction takes
        one operation per item; none outside ``slots_ride_along``), and the riding writes."""
        self._taken = len(self.held)
        self._writes_taken = len(self.writes)
        by_item: dict[tuple[str, str], tuple[RateBudget, list[Permit]]] = {}
        for budget, permit in self.held:
            where = (budget.store.table_name, budget._key(permit.scope)["pk"])
            by_item.setdefault(where, (budget, []))[1].append(permit)
        releases = [budget._release_update(permits) for budget, permits in by_item.values()]
        return releases + [update for update, _ in self.writes]

    def released(self) -> None:
        """The transaction with ``updates()`` was written: those slots are free (and those
        writes made)."""
        del self.held[: self._taken]
        del self.writes[: self._writes_taken]
        self._taken = self._writes_taken = 0

    def release_now(self) -> None:
        """Release, each with a write of its own, the slots no checkpoint took; make the riding
        writes no checkpoint took."""
        while self.writes:
            _, write = self.writes.pop(0)
            try:
                write()
            except Exception as exc:  # a lock left behind ends with its lease
                logger.warning("a write riding along with a checkpoint failed (%s)", type(exc).__name__)
        self._writes_taken = 0
        while self.held:
            budget, permit = self.held.pop(0)
            budget._release_now(permit)
        self._taken = 0


def ride_along(update: dict[str, Any], write: Callable[[], None]) -> bool:
    """Within ``slots_ride_along``: let ``update`` (a ``TransactWriteItems`` update) go with the
    next step checkpoint, or ``write()`` once the step settled without one; True. Outside: False
    (the caller writes now)."""
    held = _held.get()
    if held is None:
        return False
    held.writes.append((update, write))
    return True


_held: contextvars.ContextVar[HeldSlots | None] = contextvars.ContextVar("held_slots", default=None)
# The most slots that wait for a checkpoint at once (``RateBudget.release``).
RIDING_SLOTS = 2


@contextlib.contextmanager
def slots_ride_along() -> Iterator[HeldSlots]:
    """Within it, a call's slot is not released by a write of its own when the call ends: the
    next step checkpoint removes it in its own transaction (``held_slots``); a slot no checkpoint
    took is released by ``held_slots().release_now()`` (engine/batching.py, once a step has
    settled) or at the end, as without it."""
    held = HeldSlots()
    token = _held.set(held)
    try:
        yield held
    finally:
        _held.reset(token)
        held.release_now()


def held_slots() -> HeldSlots:
    """The slots waiting for a checkpoint to release them (empty outside ``slots_ride_along``)."""
    return _held.get() or HeldSlots()


@contextlib.contextmanager
def rate_turn(reservation: Any = None) -> Iterator[None]:
    """Run one step's calls as a turn, honouring the reservation its message carries (if any)."""
    held = Reservation.from_message(reservation)
    turn = _Turn(pending=[(held.scope, at) for at in held.instants] if held else [])
    token = _turn.set(turn)
    try:
        yield
    finally:
        _turn.reset(token)


def expect_calls(n: int) -> None:
    """The step is about to make ``n`` calls to one organisation, one after the other (a lookup,
    then a write): the next admission reserves ``n`` instants in its one write, and the later
    calls take their instant from the turn and the slot the earlier call held (see "A step with
    several calls"). Outside a turn (``rate_turn``), nothing."""
    turn = _turn.get()
    if turn is not None:
        turn.expect = max(0, n)


@dataclass(frozen=True)
class Permit:
    """One admitted call: release it when the call is over (in ``finally``)."""

    scope: str
    owner: str
    admitted_ms: int
    # The schedule as the admission left it (for ``observe``).
    tat_ms: int = 0
    since_ms: int = 0
    prev_tat_ms: int = 0
    # When the slot's lease ends (0: unknown): a later call of the same step may use the slot.
    lease_until_ms: int = 0


@dataclass
class _View:
    exists: bool
    slots: dict[str, int]  # live ones only
    expired: dict[str, int]
    tat: int
    minute_blocked_until: int
    day_blocked_until: int


_NO_BLOCKS = (
    "(attribute_not_exists(minute_blocked_until) OR minute_blocked_until <= :now) "
    "AND (attribute_not_exists(day_blocked_until) OR day_blocked_until <= :now)"
)


_SLOT_FREE = f"attribute_exists(slots) AND size(slots) < :concurrent AND {_NO_BLOCKS}"


class RateBudget:
    """Admission control for one API's per-tenant limits (Xero's by default)."""

    def __init__(
        self,
        store: StateStore | None = None,
        *,
        concurrent: int = CONCURRENT_LIMIT,
        per_minute: int = MINUTE_LIMIT,
        window_seconds: float = WINDOW_SECONDS,
        burst: int = BURST,
        lease_seconds: float = LEASE_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        early_seconds: float = EARLY_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        service: str = "xero",
    ) -> None:
        self.store = store or StateStore()
        self.concurrent = concurrent
        self.per_minute = per_minute
        self.window_ms = int(window_seconds * 1000)
        self.burst = max(1, min(burst, per_minute))
        # Rounded up, so per_minute instants always span more than the window.
        self.interval_ms = math.ceil(self.window_ms / (per_minute - self.burst + 1))
        self.tolerance_ms = (self.burst - 1) * self.interval_ms
        self.lease_ms = int(lease_seconds * 1000)
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.early_ms = int(min(early_seconds, wait_seconds) * 1000)
        self.clock = clock
        self.sleep = sleep
        self.service = service
        # The tat this worker saw last, per scope: which form of the admission to try first; and
        # whether it saw no other call in flight (the fresh form).
        self._seen_tat: dict[str, int] = {}
        self._seen_empty: dict[str, bool] = {}

    # ------------------------------------------------------------------ public
    def acquire(self, scope: str) -> Permit:
        """An instant and a slot for one call, waiting (bounded) in the Lambda; else ``BudgetExceeded``."""
        turn = _turn.get()
        deadline = self.clock() + self.wait_seconds
        owner = uuid.uuid4().hex
        held = self._honoured(turn, scope)
        if held is not None:
            permit = self._wait_and_take_slot(scope, owner, held, deadline, turn)
        else:
            permit = self._reserve(scope, owner, deadline, turn)
        if turn is not None:
            turn.calls += 1
            turn.expect = 0
        return permit

    def release(self, permit: Permit) -> None:
        """Give the slot back (the call is over); within ``slots_ride_along`` the release waits
        for the step's checkpoint. Best effort: if this fails, the lease expires on its own."""
        held = _held.get()
        if held is not None:
            held.held.append((self, permit))
            # At most a step's two calls (lookup, write) wait for a checkpoint: a batch that makes
            # more before its next checkpoint (a contact batch adopting contacts by name) would
            # otherwise hold every slot itself and wait for its own.
            while len(held.held) > RIDING_SLOTS:
                budget, older = held.held.pop(0)
                held._taken = max(0, held._taken - 1)
                budget._release_now(older)
            return
        self._release_now(permit)

    def _release_update(self, permits: list[Permit]) -> dict[str, Any]:
        """The releases of one scope's slots as an update in another write's transaction. No
        condition on the slots (a refused condition would refuse the checkpoint with it): removing
        a slot that expired and was tidied away is a no-op, and an owner is one call's, so it
        frees no one else's."""
        return {
            "TableName": self.store.table_name,
            "Key": self._key(permits[0].scope),
            "UpdateExpression": "REMOVE " + ", ".join(f"slots.#o{i}" for i in range(len(permits))),
            "ConditionExpression": "attribute_exists(slots)",
            "ExpressionAttributeNames": {f"#o{i}": p.owner for i, p in enumerate(permits)},
        }

    def _release_now(self, permit: Permit) -> None:
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

    def own_calls_bound(self, permit: Permit, now: int) -> int:
        """At most how many of this budget's instants fall in Xero's last minute, from the schedule."""
        start = now - XERO_WINDOW_MS
        t, tau = self.interval_ms, self.tolerance_ms
        if permit.since_ms >= start:
            # This busy period: each instant moved tat on by one interval; those up to now count.
            current = min(
                max(1, round((permit.tat_ms - permit.since_ms) / t)),
                (now - permit.since_ms + tau) // t + 1,
            )
            # The busy period before it ended (its last instant) at prev_tat - interval.
            last_before = permit.prev_tat_ms - t
            before = (last_before - start + tau) // t + 1 if last_before >= start else 0
        else:
            current, before = (now - start + tau) // t + 1, 0
        return int(min(self.per_minute, current + before))

    def observe(self, permit: Permit, minute_remaining: int | None) -> None:
        """Learn from ``X-MinLimit-Remaining``: count calls Xero saw that this budget did not admit."""
        if minute_remaining is None:
            return
        now = self._now_ms()
        missing = (self.per_minute - minute_remaining) - self.own_calls_bound(permit, now)
        if missing <= 0:
            return
        push = missing * self.interval_ms
        try:
            for busy in (permit.tat_ms > now, permit.tat_ms <= now):
                try:
                    self._write_tat(permit.scope, now, push, busy=busy)
                except Conflict:
                    continue  # the schedule turned busy (or idle) meanwhile: the other form
                logger.info("Xero counted %d calls this budget did not admit; slowing down", missing)
                return
        except Exception as exc:
            logger.warning("could not record Xero's remaining minute budget (%s)", type(exc).__name__)

    def blocked(self, scope: str, limit: str | None, retry_after: int) -> None:
        """Xero answered 429: hold every worker back until ``Retry-After`` (minute or day)."""
        field_name = {"minute": "minute_blocked_until", "day": "day_blocked_until"}.get(limit or "")
        if field_name is None:
            return
        until = self._now_ms() + max(1, retry_after) * 1000
        try:
            self.store.update_raw(
                self._key(scope),
                UpdateExpression="SET #f = :until, #ttl = :ttl",
                ConditionExpression="attribute_not_exists(#f) OR #f < :until",
                ExpressionAttributeNames={"#f": field_name, "#ttl": "ttl"},
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
            # Seconds until the next free instant (0: a call may go now).
            "next_free_in": max(0.0, (view.tat - self.tolerance_ms - now) / 1000),
            "minute_blocked_until": view.minute_blocked_until / 1000 or None,
            "day_blocked_until": view.day_blocked_until / 1000 or None,
        }

    # ---------------------------------------------------------------- internals
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _key(self, scope: str) -> dict[str, str]:
        return {"pk": f"RATE#{self.service}#{scope}", "sk": "BUDGET"}

    def _honoured(self, turn: _Turn | None, scope: str) -> int | None:
        """The next instant the turn's message reserved for ``scope``, unless it is void (too late)."""
        if turn is None:
            return None
        for i, (held_scope, at) in enumerate(turn.pending):
            if held_scope == scope:
                del turn.pending[i]
                if self._now_ms() - at > self.window_ms:
                    logger.info("a reserved rate instant came back too late; taking a new one")
                    turn.pending = [(s, a) for s, a in turn.pending if s != scope]
                    return None
                return at
        return None

    def _reserve(self, scope: str, owner: str, deadline: float, turn: _Turn | None) -> Permit:
        """Take the next instant (and, when it is near, a slot) with one conditional write."""
        polls = misses = 0
        while True:
            now = self._now_ms()
            seen = self._seen_tat.get(scope, 0)
            busy = seen > now
            # Idle, and no call in flight when this worker looked last (or never looked): the
            # admission may set the slots outright, which also makes a missing item.
            fresh = not busy and self._seen_empty.get(scope, True)
            near = max(now, seen - self.tolerance_ms) - now <= self._wait_ms(deadline)
            # Far: the re-sent step makes this turn's earlier calls again, so reserve for them too.
            # Near: the calls the step says it will make now (``expect_calls``), in one write.
            count = (max(1, turn.expect) if near else 1 + turn.calls) if turn is not None else 1
            try:
                attrs = self._admit(scope, owner, now, count=count, busy=busy, slot=near, fresh=fresh)
            except Conflict as exc:
                view = self._refused(exc, scope, now)
                self._seen_empty[scope] = not (view.slots or view.expired)
                if not view.exists:
                    if fresh:  # a 429's block on an item without slots: made as before, honoured below
                        self._create(scope, now)
                    self._seen_tat[scope] = view.tat  # no schedule: the idle (fresh) form next
                    continue
                self._raise_if_blocked(view, now, deadline, None)
                if view.minute_blocked_until > now:
                    self._pause(view.minute_blocked_until - now, deadline)
                    continue
                if (view.tat > now) != busy:
                    self._seen_tat[scope] = view.tat  # the other form
                    continue
                if near and len(view.slots) + len(view.expired) >= self.concurrent:
                    if self._tidy(scope, view):
                        continue
                    self._wait_for_slot(deadline, polls, None)
                    polls += 1
                    continue
                self._seen_tat[scope] = view.tat  # changed between the write and the read
                misses += 1
                if misses > 10:  # many workers racing for the same form: let them pass
                    self._wait_for_slot(deadline, polls, None)
                    polls += 1
                continue
            tat = int(attrs["tat"])
            self._seen_tat[scope] = tat
            self._seen_empty[scope] = not any(o != owner for o in attrs.get("slots") or {})
            start = tat - count * self.interval_ms if busy else now
            instants = [max(now, start + i * self.interval_ms - self.tolerance_ms) for i in range(count)]
            if instants[0] - self._now_ms() > self._wait_ms(deadline):
                if near:  # the guess was wrong: the slot is not needed for a while
                    self.release(Permit(scope, owner, now))
                    if turn is not None and turn.calls:  # and the turn's earlier calls need instants
                        instants += self._more_instants(scope, turn.calls)
                raise self._far(scope, sorted(instants))
            if turn is not None:
                turn.pending.extend((scope, at) for at in instants[1:])
            permit = Permit(
                scope,
                owner,
                instants[0],
                tat,
                int(attrs.get("since", now)),
                int(attrs.get("prev_tat", 0)),
                now + self.lease_ms if near else 0,
            )
            if near:
                self._sleep_until(instants[0])
                return permit
            # The instant turned out near, but the write took no slot: take one at the instant.
            return self._wait_and_take_slot(scope, owner, instants[0], deadline, None, permit)

    def _more_instants(self, scope: str, count: int) -> list[int]:
        """``count`` more instants behind the schedule (no slot); none if the schedule turned idle."""
        now = self._now_ms()
        try:
            tat = int(self._admit(scope, "", now, count=count, busy=True, slot=False)["tat"])
        except Conflict:
            return []  # the step is then re-sent once more for the calls it lacks
        self._seen_tat[scope] = tat
        start = tat - count * self.interval_ms
        return [max(now, start + i * self.interval_ms - self.tolerance_ms) for i in range(count)]

    def _wait_and_take_slot(
        self,
        scope: str,
        owner: str,
        instant: int,
        deadline: float,
        turn: _Turn | None,
        permit: Permit | None = None,
    ) -> Permit:
        """A reserved instant: wait for it (if near), then take a slot (one conditional write)."""
        reservation = Reservation(
            scope, (instant, *(a for s, a in (turn.pending if turn else []) if s == scope))
        )
        if instant - self._now_ms() > self._wait_ms(deadline):
            if turn is not None:  # it goes with the message again, as it came
                turn.pending = [(s, a) for s, a in turn.pending if s != scope]
            raise self._far(scope, list(reservation.instants))
        self._sleep_until(instant)
        reused = self._reuse_slot(scope)
        if reused is not None:
            # The slot of this step's earlier call (over, its release waiting for the checkpoint):
            # its lease outlasts any call this function run can still make. No write.
            base = permit or reused
            return dataclasses.replace(
                base, owner=reused.owner, admitted_ms=instant, lease_until_ms=reused.lease_until_ms
            )
        polls = 0
        while True:
            now = self._now_ms()
            try:
                attrs = (
                    self._update(
                        self._key(scope),
                        UpdateExpression="SET slots.#o = :lease, #ttl = :ttl",
                        ConditionExpression=_SLOT_FREE,
                        ExpressionAttributeNames={"#o": owner, "#ttl": "ttl"},
                        ExpressionAttributeValues={
                            ":lease": now + self.lease_ms,
                            ":now": now,
                            ":concurrent": self.concurrent,
                            ":ttl": now // 1000 + 86400 * 2,
                        },
                        ReturnValues="ALL_NEW",
                    ).get("Attributes")
                    or {}
                )
            except Conflict as exc:
                view = self._refused(exc, scope, now)
                if not view.exists:
                    self._create(scope, now)
                    continue
                self._raise_if_blocked(view, now, deadline, reservation)
                if view.minute_blocked_until > now:
                    self._pause(view.minute_blocked_until - now, deadline)
                    continue
                if len(view.slots) + len(view.expired) >= self.concurrent:
                    if self._tidy(scope, view):
                        continue
                    self._wait_for_slot(deadline, polls, reservation)
                    polls += 1
                continue
            if permit is not None:
                return dataclasses.replace(permit, lease_until_ms=now + self.lease_ms)
            return Permit(
                scope,
                owner,
                instant,
                int(attrs.get("tat", 0)),
                int(attrs.get("since", 0)),
                int(attrs.get("prev_tat", 0)),
                now + self.lease_ms,
            )

    def _reuse_slot(self, scope: str) -> Permit | None:
        """A slot of this organisation that a call of this batch no longer uses, waiting for a
        checkpoint to release it, whose lease outlasts ``MAX_CALL_SECONDS`` from now; taken out of
        the held ones (the call that takes it releases it)."""
        held = _held.get()
        if held is None:
            return None
        now = self._now_ms()
        for i, (budget, permit) in enumerate(held.held):
            same = budget.store.table_name == self.store.table_name and budget._key(
                permit.scope
            ) == self._key(scope)
            if same and permit.lease_until_ms - now > MAX_CALL_SECONDS * 1000:
                del held.held[i]
                if i < held._taken:
                    held._taken -= 1
                return permit
        return None

    def _admit(
        self, scope: str, owner: str, now: int, *, count: int, busy: bool, slot: bool, fresh: bool = False
    ) -> dict[str, Any]:
        """The admission: one conditional update, atomic in DynamoDB. Returns the item as written.
        ``fresh`` (idle only): no call is in flight, so the slots are set outright (``slots =
        {owner: lease}``), which also makes the item when there is none yet (a first call, or one
        after the item's TTL)."""
        names: dict[str, str] = {"#ttl": "ttl"}
        values: dict[str, Any] = {":now": now, ":ttl": now // 1000 + 86400 * 2}
        if fresh and not busy:
            values.update({":tat": now + count * self.interval_ms, ":zero": 0})
            values[":slots"] = {owner: now + self.lease_ms} if slot else {}
            response = self._update(
                self._key(scope),
                UpdateExpression="SET prev_tat = if_not_exists(tat, :zero), tat = :tat, since = :now, "
                "slots = :slots, #ttl = :ttl REMOVE recent",
                ConditionExpression="(attribute_not_exists(slots) OR size(slots) = :zero) "
                f"AND (attribute_not_exists(tat) OR tat <= :now) AND {_NO_BLOCKS}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
            written: dict[str, Any] = response.get("Attributes") or {}
            return written
        if busy:
            sets = ["tat = tat + :step"]
            condition = f"tat > :now AND {_NO_BLOCKS}"
            values[":step"] = count * self.interval_ms
            removes = ""
        else:
            # A new busy period: remember where it starts and where the last one ended (observe).
            sets = ["prev_tat = if_not_exists(tat, :zero)", "tat = :tat", "since = :now"]
            condition = (
                f"attribute_exists(slots) AND (attribute_not_exists(tat) OR tat <= :now) AND {_NO_BLOCKS}"
            )
            values.update({":tat": now + count * self.interval_ms, ":zero": 0})
            removes = " REMOVE recent"  # the admissions list of the budget before reservations
        if slot:
            sets.append("slots.#o = :lease")
            condition += " AND size(slots) < :concurrent"
            names["#o"] = owner
            values.update({":lease": now + self.lease_ms, ":concurrent": self.concurrent})
        response = self._update(
            self._key(scope),
            UpdateExpression="SET " + ", ".join([*sets, "#ttl = :ttl"]) + removes,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        attrs: dict[str, Any] = response.get("Attributes") or {}
        return attrs

    def _update(self, key: dict[str, str], **kwargs: Any) -> Any:
        """An admission's write. A refused one returns the item as it stands (``ConditionFailed``),
        so the caller learns why without reading it. One that meets a checkpoint's transaction
        releasing slots of the same item (``HeldSlots``) was not written: it counts as a lost race
        (``Conflict``), so the caller reads the item and tries again, instead of failing the step."""
        try:
            return self.store.update_raw(key, ReturnValuesOnConditionCheckFailure="ALL_OLD", **kwargs)
        except TransactionConflict:
            raise Conflict("the budget item was in another request's transaction") from None

    def _refused(self, exc: Conflict, scope: str, now: int) -> _View:
        """The budget as a refused admission found it: returned with the refusal, else read."""
        if isinstance(exc, ConditionFailed):
            return self._view(exc.item, now)
        return self._read(scope, now)

    def _write_tat(self, scope: str, now: int, push: int, *, busy: bool) -> None:
        """Move the schedule on by ``push`` ms (calls Xero counted that this budget did not make)."""
        if busy:
            expression, condition = "SET tat = tat + :push", "tat > :now"
            values = {":push": push, ":now": now}
        else:
            expression = "SET tat = :tat"
            condition = "attribute_exists(slots) AND (attribute_not_exists(tat) OR tat <= :now)"
            values = {":tat": now + push, ":now": now}
        self.store.update_raw(
            self._key(scope),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )

    def _far(self, scope: str, instants: list[int]) -> BudgetExceeded:
        wait_ms = instants[0] - self._now_ms()
        delay = max(1, math.floor((wait_ms - self.early_ms) / 1000))
        return BudgetExceeded(
            f"Xero's minute limit for this organisation is reserved ahead; this call's turn is in "
            f"{_seconds(wait_ms)} s",
            delay_seconds=delay,
            limit="minute",
            reservation=Reservation(scope, tuple(instants)),
        )

    def _raise_if_blocked(self, view: _View, now: int, deadline: float, held: Reservation | None) -> None:
        if view.day_blocked_until > now:
            raise BudgetExceeded(
                f"Xero's daily limit for this organisation is used up; it resets in "
                f"{_seconds(view.day_blocked_until - now)} s",
                delay_seconds=_seconds(view.day_blocked_until - now),
                limit="day",
            )
        wait_ms = view.minute_blocked_until - now
        if wait_ms > 0 and wait_ms / 1000 > deadline - self.clock():
            raise BudgetExceeded(
                f"Xero's minute limit for this organisation is reached; retry in {_seconds(wait_ms)} s",
                delay_seconds=_seconds(wait_ms),
                limit="minute",
                reservation=held,  # honoured after the block, not queued behind newer callers
            )

    def _wait_for_slot(self, deadline: float, polls: int, held: Reservation | None) -> None:
        """Five calls in flight: nobody knows when one ends. Poll with jittered exponential
        back-off (so many waiters do not turn into a storm of reads on one item), or leave."""
        if deadline - self.clock() < self.poll_seconds / 2:
            delay = random.randint(1, 3)  # noqa: S311
            raise BudgetExceeded(
                f"Xero's concurrent limit for this organisation is reached; retry in {delay} s",
                delay_seconds=delay,
                limit="concurrent",
                reservation=held,
            )
        ceiling = min(MAX_POLL_SECONDS, self.poll_seconds * 2**polls)
        pause = random.uniform(self.poll_seconds / 2, ceiling)  # noqa: S311
        self.sleep(min(pause, max(0.001, deadline - self.clock())))

    def _pause(self, wait_ms: int, deadline: float) -> None:
        self.sleep(min(wait_ms / 1000 + 0.001, max(0.001, deadline - self.clock())))

    def _sleep_until(self, instant: int) -> None:
        wait_ms = instant - self._now_ms()
        if wait_ms > 0:
            self.sleep(wait_ms / 1000)

    def _wait_ms(self, deadline: float) -> int:
        return max(0, int((deadline - self.clock()) * 1000))

    def _create(self, scope: str, now: int) -> None:
        with contextlib.suppress(Conflict):  # another worker created it first
            self.store.update_raw(
                self._key(scope),
                UpdateExpression="SET slots = :empty_map, #ttl = :ttl",
                ConditionExpression="attribute_not_exists(slots)",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":empty_map": {}, ":ttl": now // 1000 + 86400 * 2},
            )

    def _tidy(self, scope: str, view: _View) -> bool:
        """Drop expired slots when they hold the budget full, each only if its lease is unchanged
        (two workers tidying at once cannot remove a live one). True if something was removed."""
        if not view.expired:
            return False
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        removes: list[str] = []
        conditions: list[str] = []
        for i, (owner, lease) in enumerate(view.expired.items()):
            names[f"#x{i}"] = owner
            values[f":l{i}"] = lease
            removes.append(f"slots.#x{i}")
            conditions.append(f"slots.#x{i} = :l{i}")
        with contextlib.suppress(Conflict):  # someone tidied (or admitted) meanwhile; read again
            self.store.update_raw(
                self._key(scope),
                UpdateExpression="REMOVE " + ", ".join(removes),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        return True

    def _read(self, scope: str, now: int) -> _View:
        return self._view(self.store.get_raw(self._key(scope)), now)

    def _view(self, item: dict[str, Any] | None, now: int) -> _View:
        if item is None:
            return _View(False, {}, {}, 0, 0, 0)
        slots: dict[str, int] = {}
        expired: dict[str, int] = {}
        for owner, lease in (item.get("slots") or {}).items():
            (slots if int(lease) > now else expired)[str(owner)] = int(lease)
        return _View(
            exists="slots" in item,
            slots=slots,
            expired=expired,
            tat=int(item.get("tat", 0)),
            minute_blocked_until=int(item.get("minute_blocked_until", 0)),
            day_blocked_until=int(item.get("day_blocked_until", 0)),
        )


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))
