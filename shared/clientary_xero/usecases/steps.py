"""Run one step message from an action queue (the action Lambdas' use case)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from clientary_xero.engine.runner import StepOutcome, StepRunner
from clientary_xero.errors import RetryableError

_runner: StepRunner | None = None


class StepMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    step_id: str
    generation: int = 0


def get_runner() -> StepRunner:
    """One runner per Lambda container: its service clients (and Xero token) survive warm starts."""
    global _runner
    if _runner is None:
        _runner = StepRunner.from_settings()
    return _runner


def reset_runner() -> None:
    global _runner
    _runner = None


def run_step(
    message: StepMessage,
    *,
    app: str,
    receive_count: int,
    receipt_handle: str,
    runner: StepRunner | None = None,
) -> StepOutcome:
    """Execute the step; on a retryable error delay the message's next delivery, then re-raise.

    The re-raise marks this record as a batch item failure, so SQS delivers it again after the
    delay (``Retry-After`` when the service gave one) without holding up the other records.
    """
    runner = runner or get_runner()
    try:
        return runner.execute(message.model_dump(), receive_count=receive_count)
    except RetryableError as exc:
        runner.queue.delay(app, receipt_handle, exc.delay_seconds)
        raise


def outcome_fields(outcome: StepOutcome) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id,
        "step_id": outcome.step_id,
        "status": outcome.status,
        "detail": outcome.detail,
        "next_step": outcome.next_step,
    }
