"""Benchmark rows for the shared Xero rate budget (issue 8 point 3: waits without re-sends).

``rows()`` measures, in-process on the sandboxes with a simulated clock, the same backlog under
the budget before reservations (``benchmarks/baseline_window_budget.py``, the code at the branch
point) and after (``storage/ratelimit.py``), and returns one row per goal::

    {"name": …, "figure": …, "baseline": …, "target": …, "passed": bool}

* "600 invoices arriving at once": simulated wall time against the Xero calls made ÷ 60/min
  (target <= 1.1x), failed runs (0) and 429s (0).
* "Lambda invocations per step in that backlog": deliveries of step messages (each one Lambda's
  handling of the message; a re-send is one more) ÷ steps (target ≤ 1.2).

The backlog runs on ``reliability_harness.stack()`` (LocalEnvironment: moto, the sandboxes, the
real handlers) with the product's own in-Lambda wait (``xero_budget_wait_seconds``, 2 s) instead of
the harness's 120 s, so waits leave the Lambda as they do when deployed. One worker delivers the
queues in order of due time (``deliver_in_time``): when nothing is visible the simulated clock
jumps to the next delayed message, and every other delay is shortened by the same jump, so the
delays stay consistent with the simulated clock (the harness's ``drain`` releases all delayed
messages at once, which would make every reservation late).

``VirtualClock`` is the simulated clock for several threads (tests/test_rate_budget.py): time stands
still while any thread works and jumps to the earliest wake-up when all of them sleep.

    PYTHONPATH=shared:. .venv/bin/python benchmarks/bench_budget.py [--invoices 600]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import importlib.util
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path(__file__).resolve().parent / "baseline_window_budget.py"
# The deployed in-Lambda wait (settings.xero_budget_wait_seconds).
LAMBDA_WAIT_SECONDS = 2.0


class VirtualClock:
    """Simulated time for threads that ``join``: it stands still while any of them runs, and when
    all of them sleep it jumps to the earliest wake-up. A call that sleeps inside (the sandbox's
    latency, patched to this clock) is then in flight for that long in simulated time."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start
        self._cond = threading.Condition()
        self._active = 0
        self._wakes: list[float] = []

    def time(self) -> float:
        return self.now

    def join(self) -> None:
        with self._cond:
            self._active += 1

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            self._advance()

    def sleep(self, seconds: float) -> None:
        with self._cond:
            wake = self.now + max(0.0, float(seconds))
            heapq.heappush(self._wakes, wake)
            self._advance()
            while self.now < wake:
                self._cond.wait()

    def _advance(self) -> None:
        if self._active and len(self._wakes) >= self._active:
            self.now = max(self.now, self._wakes[0])
            while self._wakes and self._wakes[0] <= self.now:
                heapq.heappop(self._wakes)
            self._cond.notify_all()


class XeroLog(httpx.BaseTransport):
    """The sandbox, logging each Xero answer's (simulated time, status)."""

    def __init__(self, inner: httpx.BaseTransport, clock: Any) -> None:
        self.inner = inner
        self.clock = clock
        self.calls: list[tuple[float, int]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        at = self.clock()
        response = self.inner.handle_request(request)
        if request.url.host == "api.xero.com":
            with self._lock:
                self.calls.append((at, response.status_code))
        return response

    @property
    def statuses(self) -> Counter[int]:
        return Counter(status for _, status in self.calls)

    def most_in_window(self, seconds: float = 61.0) -> int:
        """The most calls Xero counted (200s) in any ``seconds`` (half-open) window."""
        times = sorted(at for at, status in self.calls if status != 429)
        best, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= seconds:
                first += 1
            best = max(best, last - first + 1)
        return best


def baseline_budget_class() -> Any:
    """The budget at the branch point (sliding window, re-send on every long wait)."""
    name = "bench_baseline_window_budget"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BASELINE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].RateBudget


@contextlib.contextmanager
def _budget(kind: str, sim: Any) -> Iterator[None]:
    """Make every Xero client built meanwhile use the ``kind`` budget on the simulated clock."""
    from clientary_xero.connectors.xero import client as xero_client
    from clientary_xero.storage.ratelimit import RateBudget

    original = xero_client._budget
    budget_class = RateBudget if kind == "after" else baseline_budget_class()

    def build(state: Any, settings: Any) -> Any:
        return budget_class(
            state, wait_seconds=settings.xero_budget_wait_seconds, clock=sim.time, sleep=sim.sleep
        )

    xero_client._budget = build  # type: ignore[assignment]
    try:
        yield
    finally:
        xero_client._budget = original  # type: ignore[assignment]


class _SimDelays:
    """The simulated instant each delayed message is due (captured at ``StepQueue.send``)."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.due: dict[str, float] = {}

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        from clientary_xero.storage.queue import StepQueue

        original = StepQueue.send
        delays = self

        def send(queue: Any, app: str, message: dict[str, Any], *, delay_seconds: int = 0) -> None:
            if delay_seconds > 0:
                delays.due[json.dumps(message)] = delays.sim.time() + min(900, delay_seconds)
            original(queue, app, message, delay_seconds=delay_seconds)

        StepQueue.send = send  # type: ignore[method-assign]
        try:
            yield
        finally:
            StepQueue.send = original  # type: ignore[method-assign]


def _freeze(sim: Any) -> None:
    """Take real time out of the harness's clock: it moves only by sleeps and jumps, so the
    simulated wall time measures the schedule, not how fast moto runs on this machine."""
    from benchmarks.reliability_harness import SimClock

    class Frozen(SimClock):
        @property  # type: ignore[override]
        def offset(self) -> float:
            return float(self._base + self._moved - time.time())

        @offset.setter
        def offset(self, value: float) -> None:
            self._moved = value - (self._base - time.time())

    base = sim.time()
    sim.__class__ = Frozen
    sim._base, sim._moved = base, 0.0


def _delayed(queue_names: set[str]) -> list[Any]:
    from moto.sqs.models import sqs_backends

    found = []
    for regions in sqs_backends.values():
        backend = regions.get("us-east-1")
        if backend is None:
            continue
        for name, queue in backend.queues.items():
            if name in queue_names:
                found.extend(m for m in list(queue._messages) if m.delayed)
    return found


def deliver_in_time(s: Any, deliveries: Counter[str], delays: _SimDelays, max_batches: int = 100_000) -> int:
    """Deliver every queue's messages, batches of up to 5, in order of due time (see the module
    docstring). Counts deliveries per step (run:step) in ``deliveries``. Returns the batches."""
    import boto3
    from benchmarks.reliability_harness import QUEUE_APPS, _pending, deliver
    from moto.core.utils import unix_time_millis

    from clientary_xero.settings import reset_settings

    sqs = boto3.client("sqs", region_name="us-east-1")
    resources = s.env.resources
    queues = [(app, getattr(resources, attr)) for app, attr in QUEUE_APPS if getattr(resources, attr, "")]
    names = {url.rsplit("/", 1)[-1] for _, url in queues}
    batches = 0
    current = [""]
    while batches < max_batches:
        progressed = False
        for app, url in queues:
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=5, AttributeNames=["All"]).get(
                "Messages", []
            )
            if not received:
                continue
            progressed = True
            for message in received:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    body = json.loads(message["Body"])
                    if "step_id" in body:
                        deliveries[f"{body['run_id']}:{body['step_id']}"] += 1
            if app != "xero_events" and app != current[0]:
                s.env._set_env({"STEP_APP": app})
                reset_settings()  # the handler reads STEP_APP through the cached settings
                current[0] = app
            failed = deliver(s, 0, app, received, url)
            batches += 1
            for message in received:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if progressed:
            continue
        delayed = _delayed(names)
        if not delayed:
            if _pending(sqs, queues) == 0:
                return batches
            time.sleep(0.05)
            continue
        # Due in simulated time: hold every delayed message, release the earliest (jumping to it).
        due = {id(m): delays.due.get(m.body, s.sim.time()) for m in delayed}
        earliest = min(due.values())
        s.sim.advance(max(0.0, earliest - s.sim.time()))
        held = unix_time_millis() + 10**9
        for message in delayed:
            message.delayed_until = 0 if due[id(message)] <= s.sim.time() + 1e-6 else held
    raise RuntimeError(f"the queues did not drain in {max_batches} batches")


def backlog(kind: str, invoices: int = 600) -> dict[str, Any]:
    """``invoices`` new invoices pushed at once; delivered in time by one worker."""
    from benchmarks.reliability_harness import seed_invoices, stack, statuses

    from clientary_xero.connectors import http
    from clientary_xero.settings import reset_settings
    from clientary_xero.usecases.steps import reset_runner

    with stack() as s, _budget(kind, s.sim):
        s.env._set_env({"XERO_BUDGET_WAIT_SECONDS": str(LAMBDA_WAIT_SECONDS)})
        reset_settings()
        reset_runner()
        routed = http.get_transport()
        assert routed is not None  # the environment's routing to the sandboxes
        log = XeroLog(routed, s.sim.time)
        seeded = seed_invoices(s, invoices)
        _freeze(s.sim)
        delays = _SimDelays(s.sim)
        with http.use_transport(log), delays.capture():
            started = s.sim.time()
            for invoice in seeded:
                s.push(invoice["id"])
            deliveries: Counter[str] = Counter()
            batches = deliver_in_time(s, deliveries, delays)
            minutes = (s.sim.time() - started) / 60
        runs = s.runs()
        calls = sum(1 for _, status in log.calls if status != 429)
        return {
            "budget": kind,
            "invoices": invoices,
            "runs": statuses(runs),
            "failed_runs": sum(1 for r in runs if r.get("status") != "SUCCEEDED"),
            "xero_calls": calls,
            "429s": log.statuses[429],
            "simulated_minutes": round(minutes, 2),
            "ideal_minutes": round(calls / 60, 2),
            "most_in_61s": log.most_in_window(),
            "steps": len(deliveries),
            "deliveries": sum(deliveries.values()),
            "per_step": round(sum(deliveries.values()) / max(1, len(deliveries)), 2),
            "most_per_step": max(deliveries.values(), default=0),
            "lambda_batches": batches,
        }


def rows(invoices: int = 600) -> list[dict[str, Any]]:
    """The benchmark's rows (measured now, before and after, in this process)."""
    return rows_from(*measure(invoices))


def measure(invoices: int = 600) -> tuple[dict[str, Any], dict[str, Any]]:
    _aws_env()
    return backlog("before", invoices), backlog("after", invoices)


def rows_from(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    invoices = after["invoices"]
    ratio = after["simulated_minutes"] / max(after["ideal_minutes"], 1e-9)
    ratio_before = before["simulated_minutes"] / max(before["ideal_minutes"], 1e-9)
    return [
        {
            "name": f"{invoices} invoices arriving at once: wall time (simulated) vs calls / 60/min",
            "figure": (
                f"{after['simulated_minutes']} min for {after['xero_calls']} calls = {ratio:.2f}x "
                f"(ideal {after['ideal_minutes']} min); failed runs {after['failed_runs']}; "
                f"429s {after['429s']}; most calls in 61 s {after['most_in_61s']}"
            ),
            "baseline": (
                f"{before['simulated_minutes']} min for {before['xero_calls']} calls = {ratio_before:.2f}x; "
                f"failed runs {before['failed_runs']}; 429s {before['429s']}"
            ),
            "target": "<= 1.1x, 0 failed runs, 0 x 429",
            "passed": ratio <= 1.1 and after["failed_runs"] == 0 and after["429s"] == 0,
        },
        {
            "name": "Lambda invocations per step in that backlog",
            "figure": f"{after['per_step']} (most for one step: {after['most_per_step']})",
            "baseline": f"{before['per_step']} (most for one step: {before['most_per_step']})",
            "target": "<= 1.2",
            "passed": after["per_step"] <= 1.2,
        },
    ]


def _aws_env() -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(key, value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=600)
    args = parser.parse_args()
    before, after = measure(args.invoices)
    print("before:", before)
    print("after: ", after)
    for row in rows_from(before, after):
        print(
            f"{'PASS' if row['passed'] else 'FAIL'}  {row['name']}: {row['figure']} "
            f"(before: {row['baseline']}; target {row['target']})"
        )


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "shared"), str(ROOT)]
    main()
