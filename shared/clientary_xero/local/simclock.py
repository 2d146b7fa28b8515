"""Simulated time for in-process runs: Xero's 60 calls a minute without waiting for the minutes.

``SimClock`` is real time plus an offset. ``simulated_clocks(sim)`` makes every rate budget, Xero
token provider and State store built meanwhile read it, and a budget that would wait for the minute
window sleeps on it: the clock jumps instead of the process sleeping, so every limit is enforced
exactly as Xero and the budget enforce it, at the pace of the CPU. Used by ``backfill --local``
(``local/rehearsal.py``) and the reliability benchmark.

``release_waiting`` plays the part of SQS's clocks when every queue is idle but messages wait: a
delayed message (a step "come back at T") and, after a crash, a message still in flight (its
visibility time-out) become visible, and the simulated clock jumps past the wait, so the leases and
Xero's windows, which run on it, stay consistent with what SQS did.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from typing import Any


class SimClock:
    """Real time plus an offset that ``sleep``/``advance`` move forward (never backwards)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.offset += max(0.0, float(seconds))


@contextlib.contextmanager
def simulated_clocks(sim: SimClock) -> Iterator[None]:
    """Make every budget, token provider and State store built meanwhile read ``sim``."""
    from clientary_xero.connectors.xero.auth import XeroTokenProvider
    from clientary_xero.storage.ratelimit import RateBudget
    from clientary_xero.storage.state import StateStore

    patched: list[tuple[Any, dict[str, Any]]] = [
        (RateBudget.__init__, {"clock": sim.time, "sleep": sim.sleep}),
        # The token lock's waits stay real: they are short in-Lambda waits, and a simulated sleep
        # would move every thread's clock, expiring the lease of the worker that is refreshing (so
        # a second one refreshes too: an artefact of the simulation, not the product's behaviour).
        (XeroTokenProvider.__init__, {"clock": sim.time}),
        (StateStore.__init__, {"clock": sim.time}),
    ]
    saved = [(fn, dict(fn.__kwdefaults__ or {})) for fn, _ in patched]
    try:
        for fn, values in patched:
            assert fn.__kwdefaults__ is not None
            for name, value in values.items():
                if name in fn.__kwdefaults__:
                    fn.__kwdefaults__[name] = value
        yield
    finally:
        for fn, old in saved:
            fn.__kwdefaults__ = old


def release_waiting(queue_urls: list[str], sim: SimClock, *, in_flight_seconds: float | None = None) -> bool:
    """Make the delayed messages of ``queue_urls`` (moto's) visible and jump ``sim`` by the longest
    delay; with ``in_flight_seconds``, also the messages received and never deleted (a worker that
    died), jumping at least that far (the step lease, so their leases have run out). True when a
    message was released."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import sqs_backends

    now = unix_time_millis()
    longest = 0.0
    released = 0
    names = {url.rstrip("/").rsplit("/", 1)[-1] for url in queue_urls}
    for regions in sqs_backends.values():
        for backend in regions.values():
            for name, queue in backend.queues.items():
                if name not in names:
                    continue
                for message in list(queue._messages):
                    if message.delayed:
                        longest = max(longest, (message.delayed_until - now) / 1000.0)
                        message.delayed_until = 0
                        released += 1
                    elif in_flight_seconds is not None and not message.visible:
                        longest = max(longest, in_flight_seconds)
                        message.visible_at = 0
                        released += 1
    if released:
        sim.advance(math.ceil(longest))
    return released > 0
