"""The shared Xero rate budget (storage/ratelimit.py) under concurrent workers, against the sandbox.

Each worker is built like a separate Lambda: its own token provider, State store, budget and
XeroClient; only DynamoDB (moto) and Xero (the sandbox) are shared.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from moto.core.botocore_stubber import BotocoreStubber

from clientary_xero.connectors.http import use_transport
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.errors import RetryableError
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.storage.ratelimit import LEASE_SECONDS, BudgetExceeded, RateBudget
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


def test_twenty_lambdas_never_have_more_than_five_calls_in_flight_and_get_no_429(
    live_sandbox: tuple[XeroSandbox, Counting],
    make_provider: ProviderFactory,  # noqa: F811
    atomic_dynamodb: None,
) -> None:
    xero, counting = live_sandbox

    def lambda_client() -> XeroClient:
        # In-process moto behind one GIL takes up to ~1.3 s for an admission write with twenty
        # threads (measured; DynamoDB takes milliseconds), which the late-admission guard would
        # rightly refuse; that guard has its own test below.
        return XeroClient(
            make_provider(clock=time.time), budget=budget(wait_seconds=30, late_admission_ms=5000)
        )

    errors, _ = run_workers(lambda_client, workers=20, calls=3)
    assert errors == []
    assert counting.statuses == {200: 60}  # every call done, none refused
    # Never more than Xero's 5 at once; and the calls really overlapped (not one at a time).
    assert 3 <= xero.max_in_flight <= 5
    assert budget().snapshot(xero.tenant_ids[0])["in_flight"] == 0  # every slot given back


def test_without_the_budget_the_same_load_gets_429s(
    live_sandbox: tuple[XeroSandbox, Counting],
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    # The control for the test above: the sandbox does enforce Xero's limit.
    _, counting = live_sandbox
    errors, _ = run_workers(lambda: XeroClient(make_provider(clock=time.time)), workers=20, calls=3)
    assert counting.statuses[429] > 0
    assert errors and all(isinstance(e, RetryableError) and e.limit is None for e in errors)


def test_the_minute_limit_is_shared_and_a_long_wait_leaves_the_lambda(
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    sandbox.minute_limit = 5
    counting = Counting(sandbox)
    with use_transport(counting):
        first, second = (XeroClient(make_provider(), budget=budget(clock, per_minute=5)) for _ in range(2))
        for client in (first, second, first, second, first):
            client.request("GET", "/Contacts")
        clock.advance(20)
        with pytest.raises(BudgetExceeded) as waited:
            second.request("GET", "/Contacts")
        assert (waited.value.limit, waited.value.delay_seconds) == ("minute", 42)  # 61 s window - 20 s + 1 ms
        assert counting.statuses == {200: 5}  # the sixth call never reached Xero
        clock.advance(42)
        second.request("GET", "/Contacts")
    assert counting.statuses == {200: 6}


def test_a_short_minute_wait_is_taken_inside_the_lambda(
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    sandbox.minute_limit = 5
    counting = Counting(sandbox)
    with use_transport(counting):
        client = XeroClient(
            make_provider(), budget=budget(clock, per_minute=5, wait_seconds=10, sleep=clock.advance)
        )
        for _ in range(5):
            client.request("GET", "/Contacts")
        clock.advance(55)
        started = clock()
        client.request("GET", "/Contacts")  # waits ~6 s (the fake clock's sleep), then goes
    assert 6 <= clock() - started < 10
    assert counting.statuses == {200: 6}


def test_a_slot_held_by_a_crashed_worker_expires(aws: AwsEnv, clock: FakeClock) -> None:  # noqa: F811
    shared = budget(clock, lease_seconds=30)
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
        ours = XeroClient(make_provider(), budget=budget(clock, per_minute=5))
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


def test_an_admission_that_lands_late_is_given_back_and_taken_again(
    connection: dict[str, Any],  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    shared = budget(clock, wait_seconds=30)
    writes: list[int] = []
    real_admit = RateBudget._admit

    def slow_first_write(self: RateBudget, scope: str, owner: str, now: int) -> int:
        count = real_admit(self, scope, owner, now)
        writes.append(now)
        if len(writes) == 1:
            clock.advance(2)  # boto3 retried a throttled write: it landed 2 s after `now`
        return count

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RateBudget, "_admit", slow_first_write)
        permit = shared.acquire("t")
    # The permit used is the second admission, stamped after the delay; the late one was given
    # back as a slot but still counts in the minute (on the safe side).
    assert len(writes) == 2 and permit.admitted_ms == writes[1] >= writes[0] + 2000
    snapshot = shared.snapshot("t")
    assert (snapshot["in_flight"], snapshot["last_window"]) == (1, 2)


def test_admissions_that_keep_landing_late_are_retaken_twice_then_used(
    connection: dict[str, Any],  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    shared = budget(clock, wait_seconds=30)
    real_admit = RateBudget._admit
    writes: list[int] = []

    def always_late(self: RateBudget, scope: str, owner: str, now: int) -> int:
        count = real_admit(self, scope, owner, now)
        writes.append(now)
        clock.advance(1.5)  # DynamoDB throttled for good: every write lands 1.5 s late
        return count

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RateBudget, "_admit", always_late)
        permit = shared.acquire("t")
    assert len(writes) == 3 and permit.admitted_ms == writes[-1]  # two retakes, then the third used
    assert shared.snapshot("t")["in_flight"] == 1


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
