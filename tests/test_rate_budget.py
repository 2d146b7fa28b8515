"""The shared Xero rate budget (storage/ratelimit.py) under concurrent workers, against the sandbox.

Each worker is built like a separate Lambda: its own token provider, State store, budget and
XeroClient; only DynamoDB (moto) and Xero (the sandbox) are shared. Times are simulated (the tests'
FakeClock, or benchmarks/bench_budget.py's VirtualClock for threads): no test asserts a duration.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from benchmarks.bench_budget import VirtualClock, XeroLog
from botocore.exceptions import ClientError
from moto.core.botocore_stubber import BotocoreStubber

from clientary_xero.connectors.http import use_transport
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.errors import RetryableError
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.local.xero_sandbox import limits as sandbox_limits
from clientary_xero.storage.ratelimit import LEASE_SECONDS, BudgetExceeded, RateBudget, rate_turn
from clientary_xero.storage.state import StateStore
from tests.conftest_xero import (  # noqa: F401
    AwsEnv,
    FakeClock,
    ProviderFactory,
    aws,
    clock,
    connection,
    make_provider,
    sandbox,
)


class Counting(httpx.BaseTransport):
    """The sandbox, counting answers by status (the sandbox's log has no statuses)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.statuses: collections.Counter[int] = collections.Counter()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.host == "api.xero.com":
            with self._lock:
                self.statuses[response.status_code] += 1
        return response


@pytest.fixture
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each request atomically; moto does not between threads. Serialise moto's
    request handling so a conditional write is check-and-set, as in the real service."""
    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def atomic(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", atomic)


def budget(now: Any = time.time, **options: Any) -> RateBudget:
    options.setdefault("wait_seconds", 0)
    return RateBudget(StateStore(clock=now), clock=now, **options)


def run_workers(make_client: Any, *, workers: int, calls: int) -> tuple[list[BaseException], float]:
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def worker() -> None:
        client = make_client()  # one Lambda: its own provider, store, budget, client
        barrier.wait()
        try:
            for _ in range(calls):
                client.request("GET", "/Contacts")
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors, time.monotonic() - started


@pytest.fixture
def live_sandbox(aws: AwsEnv) -> Iterator[tuple[XeroSandbox, Counting]]:  # noqa: F811
    """A sandbox on the real clock with 100 ms latency per call, so calls really overlap."""
    xero = XeroSandbox(latency=0.1)
    aws.write_secret(xero.bootstrap_secret())
    counting = Counting(xero)
    with use_transport(counting):
        yield xero, counting


def twenty_workers(
    aws: AwsEnv,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    *,
    latency: float,
    workers: int = 20,
    steps: int = 5,
) -> tuple[XeroSandbox, XeroLog, list[int]]:
    """20 concurrent workers, 5 steps of one call each (by default), on a simulated clock (``VirtualClock``).
    Each call is in flight ``latency`` s (the sandbox's latency, slept on that clock). A step whose
    turn is far is "re-sent": the worker sleeps the message's delay and runs the step again with
    the reservation, as the runner does. Returns the sandbox, its request log and each step's
    re-sends."""
    sim = VirtualClock()
    xero = XeroSandbox(clock=sim.time, latency=latency)
    monkeypatch.setattr(sandbox_limits, "time", SimpleNamespace(sleep=sim.sleep, time=sim.time))
    aws.write_secret(xero.bootstrap_secret())
    log = XeroLog(xero, sim.time)
    resends: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def worker() -> None:
        client = XeroClient(
            make_provider(clock=sim.time),
            budget=RateBudget(StateStore(clock=sim.time), clock=sim.time, sleep=sim.sleep, wait_seconds=2),
        )
        barrier.wait()
        sim.join()
        try:
            for _ in range(steps):
                reservation, sent = None, 0
                while True:
                    try:
                        with rate_turn(reservation):
                            client.request("GET", "/Contacts")
                        break
                    except BudgetExceeded as exc:  # the runner re-sends the step, delayed
                        sent += 1
                        reservation = exc.reservation.to_message() if exc.reservation else None
                        sim.sleep(exc.delay_seconds)
                resends.append(sent)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)
        finally:
            sim.leave()

    with use_transport(log):
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    return xero, log, resends


def test_twenty_lambdas_reserve_their_own_instants_within_xeros_limits(
    aws: AwsEnv,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    atomic_dynamodb: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The acceptance. Calls of 4 s: about four overlap at the minute's pace.
    xero, log, resends = twenty_workers(aws, make_provider, monkeypatch, latency=4.0)
    assert log.statuses == {200: 100}  # every call made, none refused (no 429)
    assert 2 <= xero.max_in_flight <= 5  # the calls overlapped, never more than Xero's 5
    assert log.most_in_window(61.0) <= 60  # never more than 60 in any 61 s of the request log
    assert len(resends) == 100 and max(resends) <= 1  # each waiter re-sent at most once
    assert sum(resends) > 0  # (and the minute did make callers wait outside the "Lambda")


def test_long_calls_are_held_to_five_in_flight(
    aws: AwsEnv,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    atomic_dynamodb: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ten workers, calls of 8 s: the minute's pace alone would have about eight in flight; the
    # slots hold them to five. (A caller that finds five in flight past its wait is re-sent after
    # 1-3 s, as before reservations: nobody knows when a call ends.)
    xero, log, _ = twenty_workers(aws, make_provider, monkeypatch, latency=8.0, workers=10, steps=2)
    assert log.statuses == {200: 20}
    assert xero.max_in_flight == 5
    assert log.most_in_window(61.0) <= 60


def test_without_the_budget_the_same_load_gets_429s(
    live_sandbox: tuple[XeroSandbox, Counting],
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    # The control for the test above: the sandbox does enforce Xero's limit.
    _, counting = live_sandbox
    errors, _ = run_workers(lambda: XeroClient(make_provider(clock=time.time)), workers=20, calls=3)
    assert counting.statuses[429] > 0
    assert errors and all(isinstance(e, RetryableError) and e.limit is None for e in errors)


def test_each_waiter_learns_its_own_instant_and_is_admitted_on_arrival(
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    sandbox.minute_limit = 5
    counting = Counting(sandbox)
    start = int(clock() * 1000)
    with use_transport(counting):
        # 5 a minute, no burst: one instant every 61 s / 5 = 12.2 s, shared by every worker.
        first, second, third, fourth = (
            XeroClient(make_provider(), budget=budget(clock, per_minute=5, burst=1)) for _ in range(4)
        )
        first.request("GET", "/Contacts")
        waits = []
        for client in (second, third):
            with pytest.raises(BudgetExceeded) as waited:
                client.request("GET", "/Contacts")
            waits.append(waited.value)
        # Each waiter has its own instant, the one after the other's: they will not wake together.
        assert [w.reservation.instants for w in waits if w.reservation] == [
            (start + 12_200,),
            (start + 24_400,),
        ]
        assert [(w.limit, w.delay_seconds) for w in waits] == [("minute", 12), ("minute", 24)]
        assert counting.statuses == {200: 1}  # the waiting calls never reached Xero
        for client, wait in zip((second, third), waits, strict=True):
            clock.advance(12.2)
            assert wait.reservation is not None
            with rate_turn(wait.reservation.to_message()):
                client.request("GET", "/Contacts")  # honoured: no new instant taken
        with pytest.raises(BudgetExceeded) as newcomer:
            fourth.request("GET", "/Contacts")
        assert newcomer.value.reservation is not None
        assert newcomer.value.reservation.instants == (start + 36_600,)  # behind the honoured ones
    assert counting.statuses == {200: 3}


def test_a_short_minute_wait_is_taken_inside_the_lambda(
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    counting = Counting(sandbox)
    with use_transport(counting):
        client = XeroClient(
            make_provider(), budget=budget(clock, per_minute=5, burst=1, wait_seconds=15, sleep=clock.advance)
        )
        client.request("GET", "/Contacts")
        started = clock()
        client.request("GET", "/Contacts")  # sleeps to its instant (the fake clock's sleep), then goes
    assert clock() - started == pytest.approx(12.2)
    assert counting.statuses == {200: 2}


def test_a_step_whose_later_call_must_wait_reserves_an_instant_for_each_of_its_calls(
    aws: AwsEnv,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    # 5 a minute with a burst of 2: one instant every 61 s / 4 = 15.25 s, two may go at once.
    step, other = budget(clock, per_minute=5, burst=2), budget(clock, per_minute=5, burst=2)
    with pytest.raises(BudgetExceeded) as far, rate_turn(None):
        step.acquire("t")  # the step's lookup goes at once
        with rate_turn(None):  # another Lambda's step takes the burst's second call
            other.acquire("t")
        step.acquire("t")  # the step's write must wait 15.25 s: the step will be re-sent
    reservation = far.value.reservation
    assert reservation is not None and len(reservation.instants) == 2  # the lookup is made again too
    clock.advance(far.value.delay_seconds)
    rerun = budget(clock, per_minute=5, burst=2, wait_seconds=20, sleep=clock.advance)
    with rate_turn(reservation.to_message()):
        admitted = [rerun.acquire("t").admitted_ms for _ in range(2)]  # both honoured, in order
    assert admitted == list(reservation.instants)
    with pytest.raises(BudgetExceeded) as newcomer:
        other.acquire("t")
    assert newcomer.value.reservation is not None
    assert newcomer.value.reservation.instants[0] > reservation.instants[-1]


def test_a_reservation_back_more_than_a_window_late_is_not_honoured(
    aws: AwsEnv,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    shared = budget(clock, per_minute=5, burst=1)
    shared.acquire("t")
    with pytest.raises(BudgetExceeded) as far:
        shared.acquire("t")
    assert far.value.reservation is not None
    clock.advance(12.2 + 62)  # the message was stuck: honouring it could crowd one window
    budget(clock, per_minute=5, burst=1).acquire("t")  # someone else takes the instant now
    with pytest.raises(BudgetExceeded), rate_turn(far.value.reservation.to_message()):
        shared.acquire("t")  # a new instant, behind that call


def test_a_slot_held_by_a_crashed_worker_expires(aws: AwsEnv, clock: FakeClock) -> None:  # noqa: F811
    shared = budget(clock, lease_seconds=30, burst=10)  # ten may go back to back: slots are the limit
    crashed = [shared.acquire("tenant-1") for _ in range(5)]  # five Lambdas died mid-call
    assert len({p.owner for p in crashed}) == 5
    with pytest.raises(BudgetExceeded) as busy:
        shared.acquire("tenant-1")
    assert busy.value.limit == "concurrent" and 1 <= busy.value.delay_seconds <= 3
    assert shared.acquire("tenant-2")  # another organisation has its own budget
    clock.advance(31)
    permit = shared.acquire("tenant-1")  # the dead leases ended
    assert shared.snapshot("tenant-1")["in_flight"] == 1
    shared.release(permit)
    shared.release(crashed[0])  # a late release of an expired slot is harmless
    assert shared.snapshot("tenant-1")["in_flight"] == 0


def test_the_budget_learns_calls_it_did_not_admit_from_x_minlimit_remaining(
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    sandbox.minute_limit = 5
    counting = Counting(sandbox)
    with use_transport(counting):
        outsider = XeroClient(make_provider())  # another integration on the same organisation
        for _ in range(3):
            outsider.request("GET", "/Contacts")
        # 5 a minute, all five may go at once: without learning, our third call would be Xero's sixth.
        ours = XeroClient(make_provider(), budget=budget(clock, per_minute=5, burst=5))
        ours.request("GET", "/Contacts")  # Xero answers X-MinLimit-Remaining: 1
        ours.request("GET", "/Contacts")  # the last one Xero allows
        with pytest.raises(BudgetExceeded, match="minute limit"):
            ours.request("GET", "/Contacts")
    assert counting.statuses == {200: 5}


def test_a_429_holds_every_worker_back_until_retry_after(
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    counting = Counting(sandbox)
    with use_transport(counting):
        first, second = (XeroClient(make_provider(), budget=budget(clock)) for _ in range(2))
        sandbox.fail_next(429, headers={"Retry-After": "30", "X-Rate-Limit-Problem": "minute"})
        with pytest.raises(RetryableError) as hit:
            first.request("GET", "/Contacts")
        assert not isinstance(hit.value, BudgetExceeded) and hit.value.delay_seconds == 30
        with pytest.raises(BudgetExceeded) as held:
            second.request("GET", "/Contacts")
        assert (held.value.limit, held.value.delay_seconds) == ("minute", 30)
        clock.advance(31)
        second.request("GET", "/Contacts")

        sandbox.fail_next(429, headers={"Retry-After": "66975", "X-Rate-Limit-Problem": "day"})
        with pytest.raises(RetryableError) as day:
            first.request("GET", "/Contacts")
        assert day.value.limit == "day"
        with pytest.raises(BudgetExceeded) as parked:
            second.request("GET", "/Contacts")
        assert (parked.value.limit, parked.value.delay_seconds) == ("day", 66975)
    assert counting.statuses == {429: 2, 200: 1}  # the held-back calls never reached Xero


class _Throttled:
    """A State table whose every request DynamoDB throttles (after boto3's own retries)."""

    def __getattr__(self, name: str) -> Any:
        def fail(**kwargs: Any) -> Any:
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
            raise ClientError({"Error": error}, name)

        return fail


class ThrottledStore(StateStore):
    @property
    def _t(self) -> Any:
        return _Throttled()


def test_when_dynamodb_throttles_no_call_is_made_and_the_step_retries_later(
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    counting = Counting(sandbox)
    throttled = RateBudget(ThrottledStore(clock=clock), clock=clock, wait_seconds=0)
    with use_transport(counting):
        with pytest.raises(RetryableError, match="DynamoDB is busy") as caught:
            XeroClient(make_provider(), budget=throttled).request("GET", "/Contacts")
        assert not isinstance(caught.value, BudgetExceeded)  # an attempt, not a budget wait
        assert counting.statuses == {}  # fail closed: Xero was not called blind
        # Release and learning are best effort: a throttled release leaves the lease to expire.
        working = budget(clock)
        permit = working.acquire("t")
        throttled.release(permit)
        throttled.blocked("t", "minute", 30)
        assert working.snapshot("t")["in_flight"] == 1
        clock.advance(LEASE_SECONDS + 1)
        assert working.snapshot("t")["in_flight"] == 0
