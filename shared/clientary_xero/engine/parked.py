"""The parked-run sweeper's work: re-enqueue the steps that waited for Xero's daily limit.

A step that meets Xero's daily limit is parked by the runner (engine/runner.py): its run WAITING
with ``resume_at``, a marker in the State table. ``resume_parked`` puts the due ones back on their
action queue. Apart from the runner so the sweeper's Lambda (functions/resume_parked), which on
most schedules finds nothing parked, imports only the State table and the queue: no workflow
model, no actions, no pydantic.
"""

from __future__ import annotations

import contextlib
from typing import Any

from clientary_xero.engine import runs as R
from clientary_xero.errors import Conflict
from clientary_xero.storage.queue import StepQueue
from clientary_xero.storage.state import StateStore

# Pages of ``limit`` due markers one sweep takes at most (the next sweep takes the rest).
MAX_SWEEP_PAGES = 20


def resume_parked(
    state: StateStore, queue: StepQueue, *, now: float | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Re-enqueue every parked step that is due (the sweeper's work). Safe to run concurrently or
    twice: the order is send → mark the run QUEUED → delete the marker, so a crash at any point at
    worst sends a duplicate message, which the step's claim makes harmless."""
    now = state.clock() if now is None else now
    resumed: list[dict[str, Any]] = []
    for _ in range(MAX_SWEEP_PAGES):
        due = state.due_parked(now, limit=limit)
        resumed.extend(_resume(state, queue, parked) for parked in due)
        if len(due) < limit:
            break
    return [r for r in resumed if r]


def _resume(state: StateStore, queue: StepQueue, parked: dict[str, Any]) -> dict[str, Any]:
    """Re-enqueue one parked step (unless its run moved on); the marker goes either way."""
    message = parked["message"]
    run = state.get_run(str(message["run_id"]))
    stale = (
        run is None
        or run.get("status") in R.TERMINAL
        or int(run.get("generation", 0)) != int(message.get("generation", 0))
    )
    if stale:
        state.delete_parked(parked["marker"])
        return {}
    queue.send(parked["app"], message)
    with contextlib.suppress(Conflict):
        state.update_run(
            str(message["run_id"]),
            {"status": R.QUEUED, "updated_at": R.now_iso()},
            expect_status=R.WAITING,
            remove=("resume_at", "wait_reason"),
        )
    state.delete_parked(parked["marker"])
    return {"run_id": message["run_id"], "step_id": message["step_id"]}
