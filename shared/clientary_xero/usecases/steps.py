"""Run one step message from an action queue (the action Lambdas' use case)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from clientary_xero.engine.runner import StepOutcome, StepRunner
from clientary_xero.errors import RetryableError
from clientary_xero.usecases.parked import resume_parked_steps as resume_parked_steps
from clientary_xero.usecases.sqs_batch import MalformedRecord as MalformedRecord
from clientary_xero.usecases.sqs_batch import (
    SqsAttributes,
    flag,
    mapping_or_none,
    read_fields,
    read_record,
    text,
    whole,
)

_runner: StepRunner | None = None


@dataclass(frozen=True)
class StepMessage:
    """A step message's body. Read field by field (``read``): no pydantic on the first event of a
    step (its import and models are ~0.3x the floor of a cold start). tests/test_sqs_batch.py
    checks the reader accepts and refuses what the pydantic models did on a corpus of bodies (ours,
    and malformed ones); odd encodings nobody sends (UTF-16 bodies, bytes ids) may differ."""

    run_id: str
    step_id: str
    generation: int = 0
    # Only on copies re-sent while waiting for Xero's rate limits (engine/runner.py): the real
    # attempts earlier copies used, and the waits so far.
    retries: int = 0
    waits: int = 0
    # The Xero instants the rate budget reserved for this step (storage/ratelimit.py Reservation).
    reservation: dict[str, Any] | None = None
    # Set on the copy the runner moves to the DLQ when a step gives up (engine/runner.py): a DLQ
    # redrive of it resumes a run that failed on retryable errors.
    dead_lettered: bool = False
    # The run and the outputs so far, as the sender wrote them (engine/runner.py): the step's
    # claim checks the run is unchanged since, and the step then need not read it.
    carried: dict[str, Any] | None = None

    @classmethod
    def read(cls, value: Any, where: str = "") -> StepMessage:
        """The message in ``value`` (a decoded body), or ``MalformedRecord`` naming every problem."""
        problems: list[str] = []
        if not isinstance(value, dict):
            raise MalformedRecord([f"{where or '(top level)'}: Input should be a valid dictionary"])
        known = {f.name for f in fields(cls)}
        place = f"{where}." if where else ""
        problems += [f"{place}{key}: Extra inputs are not permitted" for key in value if key not in known]
        given = read_fields(value, _MESSAGE_FIELDS, place, problems)
        if problems:
            raise MalformedRecord(problems)
        return cls(**given)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepRecord:
    """One SQS record of an action queue, parsed as Powertools' BatchProcessor would (usecases/sqs_batch.py).

    The fields a step needs, checked as Powertools' ``SqsRecordModel`` would; that model's
    package imports every event model Powertools has (~75 ms of each cold start), this does not.
    A body that is not a step message fails its own record only, and ends in the DLQ.
    """

    # SQS's own field names: Powertools reads ``messageId`` to report a batch item failure.
    messageId: str
    receiptHandle: str
    body: StepMessage
    attributes: SqsAttributes

    @classmethod
    def read(cls, record: Any) -> StepRecord:
        """The record, or ``MalformedRecord`` naming every problem."""
        message_id, handle, body, count = read_record(record, lambda value: StepMessage.read(value, "body"))
        return cls(message_id, handle, body, SqsAttributes(count))


# (field, reader, required): the order pydantic reported them in.
_MESSAGE_FIELDS: tuple[tuple[str, Callable[[Any], Any], bool], ...] = (
    ("run_id", text, True),
    ("step_id", text, True),
    ("generation", whole, False),
    ("retries", whole, False),
    ("waits", whole, False),
    ("reservation", mapping_or_none, False),
    ("dead_lettered", flag, False),
    ("carried", mapping_or_none, False),
)


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
        return runner.execute(message.as_dict(), receive_count=receive_count)
    except RetryableError as exc:
        runner.queue.delay(app, receipt_handle, exc.delay_seconds)
        raise


def run_steps(
    messages: list[tuple[StepMessage, int, str]],
    *,
    app: str,
    runner: StepRunner | None = None,
    on_step: Callable[[int], None] | None = None,
    may_start: Callable[[], bool] | None = None,
) -> list[StepOutcome | Exception]:
    """Execute the steps of one SQS batch, ``(message, receive count, receipt handle)`` each, the
    first attempts of the same Xero write sharing one call (engine/batching.py). Each result is
    the step's outcome, or the exception ``run_step`` would have raised (its message's next
    delivery already delayed), in order. ``may_start()`` False: the steps not started yet are re-sent
    for another invocation instead (the Lambda's time is running short)."""
    from clientary_xero.engine.batching import NOT_STARTED, run_batch

    runner = runner or get_runner()
    executions = [runner.steps(m.as_dict(), receive_count=count) for m, count, _ in messages]
    results: list[Any] = run_batch(executions, on_step=on_step, may_start=may_start)
    for i, ((message, count, handle), result) in enumerate(zip(messages, results, strict=True)):
        if isinstance(result, RetryableError):
            runner.queue.delay(app, handle, result.delay_seconds)
        elif result is NOT_STARTED:
            # Too little time left to start it: a copy comes back at once, this receive not counted
            # as an attempt (as a wait's copy: ``retries`` carries the real attempts so far).
            copy = {**message.as_dict(), "retries": message.retries + count - 1}
            try:
                runner.queue.send(app, copy)
            except RetryableError as exc:  # no copy: this message itself comes back
                runner.queue.delay(app, handle, exc.delay_seconds)
                results[i] = exc
                continue
            results[i] = StepOutcome(
                message.run_id, message.step_id, "DELAYED", "not started: the invocation's time ran short"
            )
    return results


def outcome_fields(outcome: StepOutcome) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id,
        "step_id": outcome.step_id,
        "status": outcome.status,
        "detail": outcome.detail,
        "next_step": outcome.next_step,
    }
