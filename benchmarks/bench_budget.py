"""Benchmark rows for the shared Xero rate budget (issue 8 point 3: waits without re-sends).

``rows()`` measures, in-process on the sandboxes with a simulated clock, the same backlog under
the budget before reservations (``benchmarks/baseline_window_budget.py``, the code at the branch
point) and after (``storage/ratelimit.py``), and returns one row per goal::

    {"name": …, "figure": …, "baseline": …, "target": …, "passed": bool}

* "600 invoices arriving at once": simulated wall time against the Xero calls made ÷ 60/min
  (target <= 1.1x), failed runs (0) and 429s (0).
* "Lambda invocations per step in that backlog": deliveries of step messages (each one Lambda's
  handling of the message; a re-send is one more) ÷ steps (target ≤ 1.2).

The backlog is benchmarks/bench_backlog.py's (``backlog``): the product's batches and its own
in-Lambda wait (``xero_budget_wait_seconds``, 2 s), so waits leave the Lambda as they do when
deployed; every clock, SQS's included, simulated, each message delivered at its own instant.
``_budget`` swaps the budget for the frozen one there.

``VirtualClock`` is the simulated clock for several threads (tests/test_rate_budget.py): time stands
still while any thread works and jumps to the earliest wake-up when all of them sleep.

    PYTHONPATH=shared:. .venv/bin/python benchmarks/bench_budget.py [--invoices 600]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import importlib.util
import os
import sys
import threading
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


def rows(invoices: int = 600) -> list[dict[str, Any]]:
    """The benchmark's rows (measured now, before and after, in this process)."""
    return rows_from(*measure(invoices))


def measure(invoices: int = 600) -> tuple[Any, Any]:
    """The backlog under the budget before reservations and after (bench_backlog.Volume each)."""
    from benchmarks import bench_backlog

    _aws_env()
    return bench_backlog.backlog(invoices, budget="before"), bench_backlog.backlog(invoices)


def rows_from(before: Any, after: Any) -> list[dict[str, Any]]:
    """The wall-time and invocations-per-step rows (bench_backlog.backlog_rows, old budget as baseline)."""
    from benchmarks import bench_backlog

    return bench_backlog.backlog_rows(after, before)[:2]


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
    for v in (before, after):
        print(f"{v.name}: {v.minutes:.2f} simulated min, Xero {v.xero_by_kind}, runs {v.runs}")
    for row in rows_from(before, after):
        print(
            f"{'PASS' if row['passed'] else 'FAIL'}  {row['name']}: {row['figure']} "
            f"(baseline: {row['baseline']}; target {row['target']})"
        )


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "shared"), str(ROOT)]
    main()
