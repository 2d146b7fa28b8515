"""Coalescing (issue 8): the steps of one SQS batch that make the same Xero write share one call.

Xero takes up to 50 contacts or invoices in one ``POST``/``PUT`` and counts it as one call of the
organisation's 60 a minute. ``run_batch`` takes the step executions of one batch
(``StepRunner.steps``, each paused at its action's call) and:

1. prepares each step on its own, as alone: load, claim, render, validate. A step that fails or
   waits there ends there, alone; a step whose action has no batch writer, or that is not on its
   first attempt, finishes at once, alone, exactly as it would have alone (a retry's
   find-before-create is per step);
2. sends the first attempts of the same action (``connectors.base.batched``: contacts, invoices,
   payments, quotes, purchase orders) in calls of up to ``MAX_ELEMENTS``, ``summarizeErrors=false``;
   only steps whose retry can find what the call wrote join (an invoice with a number or a
   reference, a contact with a ContactNumber: ``Batched.when``). One Xero connection per
   function means one organisation per batch;
3. gives each step its own element's outcome, and the step checkpoints and advances as it would
   have alone: an element Xero refuses fails only its own run, with its own ``ValidationErrors``
   (the same error a call of its own gets). Each output says ``batch: {size, call}``: how many
   steps shared the call, and the call's id (the start of its key's digest).

Exactly-once holds per step. The call's ``Idempotency-Key`` is derived from its members' keys (a
digest of them sorted), so the same steps sent again make the same request. A call whose outcome
is unknown (a time-out, a lost answer, a 5xx, an answer that does not match what was sent) is not
checkpointed: the error goes to each step, which is retried alone and, on that second attempt,
looks for what the batch may have written before writing (the actions' find-before-create). A
call Xero refused as a whole before writing (``PermanentError``) is sent again step by step, so a
step fails only for what is wrong with it. A wait for the rate budget goes to each step, as alone.

Every call runs as a rate turn (storage/ratelimit.py ``rate_turn``): a step re-sent after a wait
brings the instants it reserved, and its call honours them. A batch call honours the first
member's reservation; when the budget says wait to a batch, only the first member carries the
reservation back, the others are re-sent with the same delay and reserve anew if they do not
arrive in one batch again (two steps honouring one instant would make two calls in it).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from clientary_xero.errors import PermanentError
from clientary_xero.storage.ratelimit import BudgetExceeded, held_slots, rate_turn, slots_ride_along

if TYPE_CHECKING:  # pragma: no cover
    from clientary_xero.engine.runner import ActionCall, StepExecution, StepOutcome

logger = logging.getLogger(__name__)

# Xero takes at most 50 elements per write (reference/xero-api.md).
MAX_ELEMENTS = 50

Result = Any  # StepOutcome, or the exception the step raised (a retry: its message comes back)


def run_alone(execution: StepExecution) -> StepOutcome:
    """Run one step execution to its outcome, its action called on its own."""
    with slots_ride_along():  # the call's rate slot is released by the step's checkpoint
        try:
            call = next(execution)
        except StopIteration as stop:
            outcome: StepOutcome = stop.value
            return outcome
        return _resume(execution, *_call(call))


# The result of an execution ``run_batch`` did not start (``may_start`` said no).
NOT_STARTED = "not started"


def run_batch(
    executions: Sequence[StepExecution],
    *,
    on_step: Callable[[int], None] | None = None,
    may_start: Callable[[], bool] | None = None,
) -> list[Result]:
    """The outcome of each execution, in order: a ``StepOutcome`` or the exception it raised, or
    ``NOT_STARTED`` for those left untouched once ``may_start()`` said no (the invocation's time
    is running short: the caller sends them again).

    ``on_step(i)`` is called before execution ``i`` runs a part (e.g. to set the log's run id).

    A call's rate slot is released by the next step checkpoint's transaction (storage/ratelimit.py
    ``slots_ride_along``): a batch call's by its first member's."""
    with slots_ride_along():
        return _run_batch(executions, on_step, may_start)


def _run_batch(
    executions: Sequence[StepExecution],
    on_step: Callable[[int], None] | None,
    may_start: Callable[[], bool] | None,
) -> list[Result]:
    from clientary_xero.connectors.base import batch_writer

    results: list[Result] = [None] * len(executions)
    waiting: dict[str, list[tuple[int, ActionCall]]] = {}
    for i, execution in enumerate(executions):
        if may_start is not None and not may_start():
            results[i] = NOT_STARTED
            continue
        if on_step:
            on_step(i)
        try:
            call = next(execution)
        except StopIteration as stop:
            results[i] = stop.value
            continue
        except Exception as exc:
            results[i] = exc
            continue
        writer = batch_writer(call.spec.name)
        if writer is not None and call.ctx.attempt == 1 and writer.when(call.input):
            waiting.setdefault(call.spec.name, []).append((i, call))
        else:
            results[i] = _settle(execution, *_call(call))
    for name, members in waiting.items():
        for chunk in _chunks(members, batch_writer(name)):
            for i, answer in zip(
                [i for i, _ in chunk], _write(name, chunk, executions, on_step), strict=True
            ):
                results[i] = answer
    return results


def _chunks(members: list[tuple[int, ActionCall]], writer: Any) -> list[list[tuple[int, ActionCall]]]:
    """The calls to make: up to ``MAX_ELEMENTS`` elements each, where the steps that write the same
    element (``Batched.same``: a contact's ContactNumber) go together and count once, so 100 steps
    of 20 clients are one contact call of 20, not two of the same contacts."""
    same = getattr(writer, "same", None)
    groups: dict[Any, list[tuple[int, ActionCall]]] = {}
    for n, (i, call) in enumerate(members):
        key = same(call.input) if same is not None else None
        groups.setdefault(("element", key) if key else ("step", n), []).append((i, call))
    chunks: list[list[tuple[int, ActionCall]]] = []
    elements = list(groups.values())
    for start in range(0, len(elements), MAX_ELEMENTS):
        chunks.append([member for group in elements[start : start + MAX_ELEMENTS] for member in group])
    return chunks


def batch_key(calls: Sequence[ActionCall]) -> str:
    """The batch call's Idempotency-Key: the same steps make the same key (≤ 128 characters)."""
    keys = "\n".join(sorted(c.ctx.idempotency_key for c in calls))
    return f"batch:{calls[0].spec.name}:{hashlib.sha256(keys.encode()).hexdigest()}"


def _write(
    name: str,
    chunk: list[tuple[int, ActionCall]],
    executions: Sequence[StepExecution],
    on_step: Callable[[int], None] | None,
) -> list[Result]:
    from clientary_xero.connectors.base import batch_writer

    def resume(i: int, output: Any, error: Exception | None) -> Result:
        if on_step:
            on_step(i)
        return _settle(executions[i], output, error)

    if len(chunk) == 1:  # nothing to share: the step calls as it would alone
        i, call = chunk[0]
        return [resume(i, *_call(call))]
    calls = [call for _, call in chunk]
    key = batch_key(calls)
    info = {"size": len(calls), "call": key.rsplit(":", 1)[1][:12]}
    writer = batch_writer(name)
    assert writer is not None  # the steps joined the batch by it
    reservation = next((c.reservation for c in calls if c.reservation is not None), None)
    try:
        with rate_turn(reservation):
            answers = writer.write([(c.ctx, c.input) for c in calls], key)
    except BudgetExceeded as exc:
        # No call was made: each step waits as alone; one of them holds the reserved instants.
        unreserved = BudgetExceeded(str(exc), delay_seconds=exc.delay_seconds, limit=exc.limit or "minute")
        return [resume(i, None, exc if n == 0 else unreserved) for n, (i, _) in enumerate(chunk)]
    except PermanentError as exc:
        # Refused as a whole before anything was written: each step is sent on its own instead,
        # so a step fails only for what is wrong with it.
        logger.warning("Xero refused a batch of %d %s steps; sending each alone: %s", len(calls), name, exc)
        return [resume(i, *_call(call)) for i, call in chunk]
    except Exception as exc:
        # Unknown outcome: no checkpoint; each step is retried alone and looks before writing.
        logger.warning("a batch of %d %s steps has an unknown outcome: %s", len(calls), name, exc)
        return [resume(i, None, exc) for i, _ in chunk]
    logger.info("%d %s steps shared one Xero call", len(calls), name, extra={"batch": info})
    return [
        resume(i, {**answer, "batch": info}, None) if isinstance(answer, dict) else resume(i, None, answer)
        for (i, _), answer in zip(chunk, answers, strict=True)
    ]


def _call(call: ActionCall) -> tuple[Any, Exception | None]:
    try:
        with rate_turn(call.reservation):
            return call.spec.run(call.ctx, call.input), None
    except Exception as exc:  # the step's own handling decides (as when it called inside)
        return None, exc


def _settle(execution: StepExecution, output: Any, error: Exception | None) -> Result:
    try:
        return _resume(execution, output, error)
    except Exception as exc:
        return exc
    finally:
        # A slot the step's checkpoint did not release (it failed, waits, or was written without
        # its transaction) is not held while the rest of the batch runs.
        held_slots().release_now()


def _resume(execution: StepExecution, output: Any, error: Exception | None) -> StepOutcome:
    try:
        if error is not None:
            execution.throw(error)
        else:
            execution.send(output)
    except StopIteration as stop:
        outcome: StepOutcome = stop.value
        return outcome
    raise RuntimeError("a step execution asked for a second action call")  # pragma: no cover
