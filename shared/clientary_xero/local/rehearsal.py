"""``backfill --local``: the same backfill the stack runs, in-process against the sandboxes, to see
what it will cost before it costs anything.

The records come from the Clientary sandbox (filled from the seed's ``clientary:`` collections),
the organisation's state from the seed's ``xero:`` collections. ``rehearse`` reads the history,
starts the runs through the intake exactly as ``clientary-xero backfill`` does on the stack
(``usecases.backfill``), then drains every queue through the action handlers on a simulated clock
(``local.simclock``: Xero's 60 calls a minute are enforced, but the minutes pass at once). What it
counts comes from the sandboxes' own request logs: the Xero calls the real backfill will make, and
so the share of the organisation's quota it takes (60 calls a minute, 5,000 a day:
reference/xero-api.md §limits) — the real backfill cannot go faster than ``calls ÷ 60`` minutes.

Rehearsing again in the same environment resumes: what is done is seen before, the rest runs.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clientary_xero.engine.intake import Outcome
from clientary_xero.usecases import backfill as B

XERO_CALLS_PER_MINUTE = 60  # per organisation (Xero's minute limit)
XERO_CALLS_PER_DAY = 5_000  # per organisation (Xero's daily limit)


@dataclass
class Rehearsal:
    """What one rehearsal did and measured."""

    records: int
    result: B.BackfillResult
    statuses: dict[str, int]
    # api.xero.com calls the backfill made (the organisation's quota counts these), by "METHOD /Path"
    xero_calls: Counter[str] = field(default_factory=Counter)
    clientary_calls: int = 0
    simulated_seconds: float = 0.0

    @property
    def xero_total(self) -> int:
        return sum(self.xero_calls.values())

    @property
    def quota_minutes(self) -> float:
        """The least time the real backfill takes in Xero: its calls at 60 a minute."""
        return self.xero_total / XERO_CALLS_PER_MINUTE

    @property
    def day_share(self) -> float:
        """The share of the organisation's 5,000 daily calls (1.0 = all of them)."""
        return self.xero_total / XERO_CALLS_PER_DAY


@contextlib.contextmanager
def rehearsal_environment(*, record: str | None = None, max_attempts: int = 5) -> Iterator[Any]:
    """A ``LocalEnvironment`` on the sandboxes with a simulated clock that every store, budget and
    token provider reads (see ``local.simclock``)."""
    from clientary_xero.local.environment import LocalEnvironment
    from clientary_xero.local.simclock import SimClock, simulated_clocks
    from clientary_xero.settings import reset_settings
    from clientary_xero.usecases.steps import reset_runner

    sim = SimClock()
    with simulated_clocks(sim), LocalEnvironment(sim=sim, record=record, max_attempts=max_attempts) as env:
        # The budget may wait for Xero's minute window as long as it takes: its sleep jumps the
        # clock, so the rehearsal spends simulated minutes, not real ones.
        env._set_env({"XERO_BUDGET_WAIT_SECONDS": "120"})
        reset_settings()
        reset_runner()
        yield env


def rehearse(
    env: Any,
    trigger: str,
    since: datetime,
    *,
    chunk: int = B.CHUNK,
    on_chunk: Callable[[B.Progress, list[Outcome]], None] | None = None,
    max_seconds: float = 600.0,
) -> Rehearsal:
    """Backfill ``trigger`` since ``since`` in ``env`` (a ``LocalEnvironment`` on the sandboxes with
    a ``SimClock``, its workflows put), drain the queues, and count."""
    from clientary_xero.local.simclock import release_waiting
    from clientary_xero.settings import get_settings

    assert env.xero is not None and env.sim is not None, "a rehearsal runs on the sandboxes, simulated"
    xero_mark = len(env.xero.requests)
    clientary_mark = env.clientary.request_count
    sim_mark = env.sim.time()
    # Resuming after an interruption in this process: a step message that was being processed when
    # it stopped is still in flight; SQS makes it visible once its visibility time-out passes.
    resources = env.resources
    queues = [resources.xero_queue_url, resources.xero_event_queue_url, resources.clientary_queue_url]
    release_waiting(queues, env.sim, in_flight_seconds=get_settings().step_lease_seconds + 1)

    records = B.read_history(trigger, since)
    result = B.start_runs(B.events_for(trigger, records), chunk=chunk, on_chunk=on_chunk)
    env.drain(max_seconds=max_seconds)

    state = env.state
    statuses: Counter[str] = Counter()
    for run_id in dict.fromkeys(result.run_ids):
        run = state.get_run(run_id)
        statuses[run.get("status", "?") if run else "missing"] += 1
    calls: Counter[str] = Counter()
    for request in env.xero.requests[xero_mark:]:
        kind = xero_call(request)
        if kind is not None:
            calls[kind] += 1
    return Rehearsal(
        records=len(records),
        result=result,
        statuses=dict(statuses),
        xero_calls=calls,
        clientary_calls=env.clientary.request_count - clientary_mark,
        simulated_seconds=env.sim.time() - sim_mark,
    )


def xero_call(request: dict[str, Any]) -> str | None:
    """``"PUT /Invoices"`` for a call to the Accounting API of an organisation (what its limits
    count), None for anything else (token requests at identity.xero.com, ``/connections``)."""
    from urllib.parse import urlsplit

    url = urlsplit(request["url"])
    headers = {name.lower() for name in request.get("headers") or {}}
    if url.hostname != "api.xero.com" or "xero-tenant-id" not in headers:
        return None
    path = url.path.removeprefix("/api.xro/2.0")
    collection = "/" + path.strip("/").split("/", 1)[0]
    return f"{request['method']} {collection}"


def report(rehearsal: Rehearsal) -> list[str]:
    """The lines ``backfill --local`` prints after the runs."""
    p = rehearsal.result.progress
    lines = [
        f"records: {rehearsal.records} read, {p.started} run(s) started, "
        f"{p.seen_before} record/workflow pair(s) seen before",
        "runs by status: "
        + (", ".join(f"{status} {n}" for status, n in sorted(rehearsal.statuses.items())) or "none"),
        f"Xero calls: {rehearsal.xero_total}"
        + (
            " (" + ", ".join(f"{kind} {n}" for kind, n in sorted(rehearsal.xero_calls.items())) + ")"
            if rehearsal.xero_calls
            else ""
        ),
        f"Xero quota: {rehearsal.quota_minutes:.1f} min at {XERO_CALLS_PER_MINUTE} calls/min "
        f"(the real backfill takes at least this long), {rehearsal.day_share:.1%} of the "
        f"organisation's {XERO_CALLS_PER_DAY:,} calls/day",
        f"Clientary calls: {rehearsal.clientary_calls}; simulated time: "
        f"{rehearsal.simulated_seconds / 60:.1f} min",
    ]
    if rehearsal.xero_total > XERO_CALLS_PER_DAY:
        days = rehearsal.xero_total / XERO_CALLS_PER_DAY
        lines.append(
            f"more than one day's Xero calls: about {days:.1f} days; runs past the daily limit wait "
            "(WAITING) and resume the next day"
        )
    return lines
