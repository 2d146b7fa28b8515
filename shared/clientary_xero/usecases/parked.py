"""The parked-run sweeper's use case (functions/resume_parked): re-enqueue the due parked steps.

Its own module, so the sweeper's Lambda imports neither the runner nor the step messages' models
(usecases/steps.py): most of its scheduled invocations find nothing parked.
"""

from __future__ import annotations

from typing import Any


def resume_parked_steps(*, now: float | None = None) -> dict[str, Any]:
    """The sweeper's use case: re-enqueue the steps parked for Xero's daily limit that are due."""
    from clientary_xero.engine.parked import resume_parked
    from clientary_xero.storage.queue import StepQueue
    from clientary_xero.storage.state import StateStore

    resumed = resume_parked(StateStore(), StepQueue(), now=now)
    return {"resumed": len(resumed), "runs": sorted({r["run_id"] for r in resumed})}
