"""The step runner: one queue message = one step of one run.

load run and steps (one Query) → claim the step (lease + attempt count; the run's move to RUNNING
in the same transaction) → render input → validate it against the action's model → call the
action → choose the next step → checkpoint the output with the run's move (one transaction) →
enqueue it.

A message may carry its run (``R.carried``: the run and the outputs so far, as the write that sent
it left them; the intake's and each checkpoint's). Its first delivery then skips the read: the
claim is one transaction that also checks the run's ``rev`` is the digest of what the message
carries (storage/state.py ``run_revision``; every other write of the run drops it) and that the
step was never claimed. Any mismatch writes nothing and the step reads and claims as above.

Guarantees:
* a step that SUCCEEDED never executes again (the claim refuses; a duplicate message only
  re-does the cheap "advance" part, whose enqueue is itself deduplicated by the next claim);
* a crash between the action's call and the checkpoint re-runs the action with the same
  Idempotency-Key, and actions look for what an earlier try made before creating (id links,
  find-before-create), so the effect happens once;
* permanent errors fail the run with the service's messages; retryable ones go back to the queue
  with a delay, and on the last attempt the run is FAILED and the runner moves the message to the
  DLQ itself, marked ``dead_lettered`` (SQS's own redrive policy stays the net for messages that
  crash or time out on every receive).

DLQ redrive (issue #7): redriving the DLQ from the SQS console sends those messages back to the
action queue with their bodies. A marked message of a run that is still FAILED at that step and
generation resumes the run as ``runs replay`` does (``replay``: a new generation, the failed step
reset, succeeded steps kept) when it failed on retryable errors; a run that failed permanently
stays FAILED (acknowledged, with a log line: fix the cause, then ``runs replay``). Only the mark
tells a redrive from a stale copy of the message, which never resumes anything. A message of a
SUCCEEDED run or an older generation is acknowledged and dropped, except a marked one whose run it
resumed and that came back because the resumed step's message could not be sent: it sends it.

Busy leases are waits, not attempts (issue #7): a copy of a step whose lease another worker holds
(the holder's own message carries the step on) and a step that meets a busy lock in its action (a
contact being created by another run) are re-sent with a delay like a budget wait, so duplicates
never burn receives into the DLQ; once the step succeeded, the copies are acknowledged.

Rate limits (issue #3) are waits, not failures:
* the shared Xero budget (storage/ratelimit.py) said "not now" (``BudgetExceeded``: no call was
  made): the step's attempt is refunded, the message is **re-sent** with ``DelaySeconds`` (≤ 900;
  a longer wait just waits again) and the current one acknowledged. The copy carries the instants
  the budget reserved for the step (``reservation``), so on arrival it calls without queueing
  again. SQS counts every receive toward ``maxReceiveCount``, so failing the record would burn an
  attempt per wait; a fresh copy starts
  at zero. The copy carries ``retries`` (real attempts used by earlier copies) so a step that both
  fails and waits still gets exactly ``max_attempts`` real attempts; when a copy uses the last one
  the runner moves it to the DLQ itself (SQS would not: the copy's own receive count is lower).
* Xero's **daily** limit (a 429 ``day``, or the budget remembering one) **parks** the run: the step
  is WAITING (attempt refunded), the run WAITING with ``resume_at`` = now + Retry-After, a marker
  in the State table, the message acknowledged. ``resume_parked`` (a scheduled sweeper, every 15
  minutes) re-enqueues due steps. Retry-After for the day limit can be hours: neither a sleeping
  Lambda nor SQS (12 h visibility, 5 attempts) is the place to wait for it.
* a **minute** 429 from Xero itself (the budget did not know; someone else used the quota) stays an
  ordinary retry after Retry-After (SQS visibility), and the budget holds everyone back meanwhile.
* ``max_rate_waits`` bounds the waits of one step: beyond it a wait counts as an attempt.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from clientary_xero import metrics
from clientary_xero.connectors import base as connectors
from clientary_xero.connectors.base import ActionContext, ActionSpec, find_action
from clientary_xero.engine import notify
from clientary_xero.engine import runs as R
from clientary_xero.engine.parked import MAX_SWEEP_PAGES as MAX_SWEEP_PAGES
from clientary_xero.engine.parked import resume_parked as resume_parked
from clientary_xero.engine.plan import app_for_step, find_step, next_step
from clientary_xero.errors import (
    Conflict,
    ExpressionError,
    LockBusy,
    PermanentError,
    RetryableError,
    ValidationFailed,
)
from clientary_xero.settings import Settings, get_settings
from clientary_xero.storage.queue import StepQueue
from clientary_xero.storage.ratelimit import BudgetExceeded, held_slots
from clientary_xero.storage.state import RunChange, StateStore, run_revision
from clientary_xero.workflows import expressions
from clientary_xero.workflows.model import Workflow

logger = logging.getLogger(__name__)
# How far Xero's or Clientary's clock may be behind ours when telling records a run made from older ones.
CLOCK_SKEW_SECONDS = 300

# SQS's largest DelaySeconds; a longer rate wait is taken in steps of at most this.
MAX_SEND_DELAY = 900
# One sweep re-enqueues at most this many pages of due parked steps (the next sweep takes the rest).


@dataclass(frozen=True)
class RateWait:
    owner: str
    rendered: Any
    error: RetryableError
    retries: int  # real attempts used so far (this receive was not one)
    waits: int


@dataclass
class StepOutcome:
    run_id: str
    step_id: str
    # SUCCEEDED, FAILED, RETRY, SKIPPED; DELAYED (re-sent: rate budget, busy lease or lock),
    # WAITING (parked), RESUMED (a DLQ redrive resumed the FAILED run)
    status: str
    detail: str = ""
    next_step: str | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class ActionCall:
    """A step paused at its action's call (``StepRunner.steps``): engine/batching.py makes it."""

    spec: ActionSpec
    ctx: ActionContext
    input: Any
    reservation: Any = None  # the re-sent message's reserved Xero instants (storage/ratelimit.py)


StepExecution = Generator[ActionCall, Any, StepOutcome]


@dataclass
class StepRunner:
    state: StateStore
    queue: StepQueue
    settings: Settings
    factories: dict[str, Any] = field(default_factory=dict)
    # Shared by the steps one Lambda invocation runs (e.g. one Xero client and its token).
    services: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls) -> StepRunner:
        state = StateStore()
        return cls(state, StepQueue(), get_settings(), default_factories(state))

    def execute(self, message: dict[str, Any], *, receive_count: int = 1) -> StepOutcome:
        """Run one step to its outcome (its action called alone)."""
        from clientary_xero.engine.batching import run_alone

        return run_alone(self.steps(message, receive_count=receive_count))

    def steps(self, message: dict[str, Any], *, receive_count: int = 1) -> StepExecution:
        """The step's execution, paused at its action's call (engine/batching.py): it yields one
        ``ActionCall`` and takes the action's output (``send``) or its exception (``throw``), then
        checkpoints and advances as a call inside it would; ends with the ``StepOutcome``."""
        run_id, step_id = str(message["run_id"]), str(message["step_id"])
        generation = int(message.get("generation", 0))
        # Set on re-sent copies of a message (rate waits): real attempts used before, waits so far.
        carried = max(0, int(message.get("retries", 0)))
        waits = max(0, int(message.get("waits", 0)))
        owner = uuid.uuid4().hex
        # A first delivery that carries its run claims with a check that the run is as carried,
        # and saves the read; else the run and its steps in one read (the outputs serve the
        # rendering and the advance).
        first = receive_count == 1 and not waits and not message.get("dead_lettered")
        early = self._claim_carried(message, owner) if first else None
        claimed: dict[str, Any] | None = None
        steps: list[dict[str, Any]] = []
        if early is not None:
            run, outputs, claimed = early
        else:
            loaded, steps = self.state.get_run_and_steps(run_id)
            if loaded is None:
                return StepOutcome(run_id, step_id, "SKIPPED", "run not found (expired or never created)")
            run, outputs = loaded, _succeeded(steps)
        if message.get("dead_lettered") and int(run.get("generation", 0)) == generation + 1:
            return self._redriven_again(run, step_id)
        if int(run.get("generation", 0)) != generation:
            return StepOutcome(run_id, step_id, "SKIPPED", "message from before a replay")
        if run.get("status") == R.SUCCEEDED:
            return StepOutcome(run_id, step_id, "SKIPPED", "run already SUCCEEDED (a duplicate message)")
        if run.get("status") == R.FAILED and message.get("dead_lettered"):
            return self._redrive(run, step_id)
        if run.get("status") in (R.FAILED, R.FILTERED):
            return StepOutcome(run_id, step_id, "SKIPPED", f"run is {run['status']}")

        try:
            workflow = Workflow.from_document(run["workflow"])
            step = find_step(workflow, step_id, run.get("decisions"))
        except PermanentError as exc:
            return self._fail_run(
                run, step_id, None, {"type": "permanent", "message": str(exc), "messages": []}
            )

        # The run's QUEUED/WAITING → RUNNING rides along with the claim (one transaction).
        start_run = _start_run(run)
        known = next((s for s in steps if s.get("step_id") == step_id), {})
        try:
            claimed = claimed or self.state.claim_step(
                run_id,
                step_id,
                owner=owner,
                lease_seconds=self.settings.step_lease_seconds,
                seq=_seq(workflow, step_id),
                start_run=start_run,
                attempts_before=int(known.get("attempts") or 0),
            )
        except Conflict:
            # Already succeeded (a duplicate message, or a crash after the checkpoint): only advance.
            return self._advance(run, workflow, step_id, duplicate=True, outputs=outputs)
        except LockBusy as exc:
            return self._lease_busy(
                run, step_id, generation, exc, retries=receive_count + carried - 1, waits=waits
            )
        if start_run is not None:  # the run as written (the next step's message carries it)
            run = {**run, **start_run.fields}
            for name in start_run.remove:
                run.pop(name, None)

        attempt = int(claimed.get("attempts", 1))
        rendered: Any = None
        try:
            context = R.build_context(run, outputs)
            rendered = expressions.render(
                step.input,
                context,
                timeout_ms=self.settings.expression_timeout_ms,
                max_depth=self.settings.expression_max_depth,
            )
            actx = ActionContext(
                run_id=run_id,
                step_id=step_id,
                idempotency_key=R.idempotency_key(run_id, step_id, generation),
                effect_key=f"{run_id}:{step_id}",
                not_before=R.epoch(run.get("created_at")) - CLOCK_SKEW_SECONDS,
                attempt=attempt,
                links=self.state,
                services=self.services,
                factories=self.factories,
                input_sha256=rendered_digest(step.action, rendered),
            )
            # The first step of its action in this container may be answered from what is stored
            # before its module (and pydantic) is imported: an unchanged linked contact
            # (connectors/xero/actions/contact_links.py). Warm, the action's own check decides.
            quick = connectors.shortcut(step.action) if not connectors.loaded(step.action) else None
            output = quick(actx, rendered) if quick is not None else None
            if output is None:
                output = yield self._call(step_id, step.action, actx, rendered, message.get("reservation"))
        except PermanentError as exc:
            error = exc.to_dict()
            self.state.finish_step(run_id, step_id, owner=owner, status=R.FAILED, input=rendered, error=error)
            return self._fail_run(run, step_id, rendered, error)
        except ExpressionError as exc:  # pragma: no cover - ExpressionError is a PermanentError
            raise AssertionError from exc
        except Exception as exc:
            retry = exc if isinstance(exc, RetryableError) else _unexpected(exc)
            error = retry.to_dict()
            # A busy lock in the action (another run creating the same contact) is a wait as well.
            rate_wait = isinstance(retry, (BudgetExceeded, LockBusy)) or retry.limit == "day"
            if rate_wait and waits < self.settings.max_rate_waits:
                wait = RateWait(owner, rendered, retry, receive_count + carried - 1, waits + 1)
                return self._rate_wait(run, step_id, generation, wait)
            attempt_no = receive_count + carried
            if attempt_no >= self.settings.max_attempts:
                error["message"] = f"gave up after {attempt_no} attempts: {error['message']}"
                self.state.finish_step(
                    run_id, step_id, owner=owner, status=R.FAILED, input=rendered, error=error
                )
                # The runner moves the message to the DLQ itself, marked, so a redrive can be told
                # from a stale copy (see the module docstring). Before failing the run: if the move
                # fails, the raise returns the message and the next receive gives up (and moves) again.
                moved = self.queue.dead_letter(
                    app_for_step(run["workflow"], step_id, run.get("decisions")),
                    {"run_id": run_id, "step_id": step_id, "generation": generation, "dead_lettered": True},
                )
                outcome = self._fail_run(run, step_id, rendered, error)
                if not moved and receive_count >= self.settings.max_attempts:
                    # No DLQ configured here: raising returns the message once more; SQS then moves it.
                    raise retry from None
                return outcome
            self.state.finish_step(
                run_id, step_id, owner=owner, status="RETRYING", input=rendered, error=error
            )
            metrics.count("StepRetries")
            raise retry from None

        # The checkpoint is written with the run's move to the next step (one transaction).
        checkpoint = {"owner": owner, "input": rendered, "output": output}
        return self._advance(
            run,
            workflow,
            step_id,
            duplicate=False,
            outputs={**outputs, step_id: output},
            checkpoint=checkpoint,
        )

    def _call(
        self, step_id: str, action: str, actx: ActionContext, rendered: Any, reservation: Any
    ) -> ActionCall:
        """The action call of a step: its input validated against the action's model."""
        spec = find_action(action)
        if spec is None:
            from clientary_xero.workflows.validate import unknown_action

            raise ValidationFailed(unknown_action(action))
        from pydantic import ValidationError as PydanticValidationError

        from clientary_xero.workflows.validate import pydantic_problems

        try:
            model = spec.input_model.model_validate(rendered)
        except PydanticValidationError as exc:
            problems = pydantic_problems(exc, "input", spec.input_model)
            raise ValidationFailed(
                f"step {step_id!r}: the input for {action} is invalid", messages=problems
            ) from None
        # A re-sent step brings the Xero instants it reserved (storage/ratelimit.py): the call
        # honours them (engine/batching.py opens the turn around the action or the batch call).
        return ActionCall(spec, actx, model, reservation)

    # ------------------------------------------------------------------
    def _claim_carried(
        self, message: dict[str, Any], owner: str
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        """Claim a step whose message carries its run (``R.carried``), provided the run is still
        exactly as carried (its ``rev``) and the step was never claimed: the run, the outputs
        and the claim. None (nothing written) for anything else: the step reads and claims as
        without it."""
        payload = message.get("carried")
        if not isinstance(payload, dict):
            return None
        run, outputs = payload.get("run"), payload.get("outputs")
        if not isinstance(run, dict) or not isinstance(outputs, dict):
            return None
        run_id, step_id = str(message["run_id"]), str(message["step_id"])
        if (
            run.get("run_id") != run_id
            or run.get("status") not in (R.QUEUED, R.RUNNING)
            or run.get("generation") != message.get("generation", 0)
        ):
            return None
        try:
            workflow = Workflow.from_document(run.get("workflow"))
            find_step(workflow, step_id, run.get("decisions"))
            claimed = self.state.claim_step(
                run_id,
                step_id,
                owner=owner,
                lease_seconds=self.settings.step_lease_seconds,
                seq=_seq(workflow, step_id),
                start_run=_start_run(run),
                run_rev=run_revision(payload),
            )
        except (PermanentError, Conflict):
            return None
        return run, outputs, claimed

    def _rate_wait(self, run: dict[str, Any], step_id: str, generation: int, wait: RateWait) -> StepOutcome:
        """Wait for Xero's limits without using an attempt: re-send with a delay, or park the run."""
        run_id = run["run_id"]
        exc = wait.error
        try:
            self.state.wait_step(run_id, step_id, owner=wait.owner, input=wait.rendered, error=exc.to_dict())
        except Conflict:
            return StepOutcome(run_id, step_id, "SKIPPED", "lease lost to another worker")
        app = app_for_step(run["workflow"], step_id, run.get("decisions"))
        message = {
            "run_id": run_id,
            "step_id": step_id,
            "generation": generation,
            "retries": wait.retries,
            "waits": wait.waits,
        }
        if isinstance(exc, BudgetExceeded) and exc.reservation is not None:
            message["reservation"] = exc.reservation.to_message()  # honoured on arrival, not re-queued
        if exc.limit == "day":
            resume_at = self.state.clock() + exc.delay_seconds
            self.state.put_parked(message, app=app, resume_at=resume_at)
            with contextlib.suppress(Conflict):  # the run moved on meanwhile (e.g. FAILED): leave it
                self.state.update_run(
                    run_id,
                    {
                        "status": R.WAITING,
                        "resume_at": R.iso(resume_at),
                        "wait_reason": str(exc),
                        "current_step": step_id,
                        "updated_at": R.now_iso(),
                    },
                    expect_status=[R.QUEUED, R.RUNNING, R.WAITING],
                )
            logger.info("run parked for Xero's daily limit", extra={"run_id": run_id, "step_id": step_id})
            metrics.count("RunsWaiting")
            return StepOutcome(run_id, step_id, "WAITING", f"parked until {R.iso(resume_at)}: {exc}")
        delay = max(1, min(MAX_SEND_DELAY, exc.delay_seconds))
        self.queue.send(app, message, delay_seconds=delay)
        if isinstance(exc, BudgetExceeded):
            metrics.count("BudgetWaits")
        return StepOutcome(
            run_id, step_id, "DELAYED", f"{exc}; re-sent with a {delay} s delay (not counted as an attempt)"
        )

    def _lease_busy(
        self, run: dict[str, Any], step_id: str, generation: int, exc: LockBusy, *, retries: int, waits: int
    ) -> StepOutcome:
        """Another worker holds the step's lease: this message is a copy (SQS at-least-once, a
        re-sent wait, a duplicate "advance"). The holder's own message carries the step on (it
        comes back if the holder dies), so failing this copy would only burn its receives towards
        the DLQ: a false alarm for a step that then succeeds. Re-send it instead, due when the
        lease ends: it then finds the step succeeded (acknowledged) or takes over a dead holder."""
        run_id = run["run_id"]
        if waits >= self.settings.max_rate_waits:
            raise RetryableError(str(exc), delay_seconds=exc.delay_seconds) from None
        delay = max(1, min(MAX_SEND_DELAY, exc.delay_seconds))
        message = {
            "run_id": run_id,
            "step_id": step_id,
            "generation": generation,
            "retries": retries,
            "waits": waits + 1,
        }
        self.queue.send(
            app_for_step(run["workflow"], step_id, run.get("decisions")), message, delay_seconds=delay
        )
        return StepOutcome(
            run_id, step_id, "DELAYED", f"{exc}; re-sent with a {delay} s delay (not counted as an attempt)"
        )

    def _redrive(self, run: dict[str, Any], step_id: str) -> StepOutcome:
        """A message the runner dead-lettered came back (a DLQ redrive) while its run is FAILED."""
        run_id = run["run_id"]
        error = run.get("error") or {}
        where = {"run_id": run_id, "step_id": step_id}
        if run.get("failed_step") != step_id:
            return StepOutcome(run_id, step_id, "SKIPPED", "redriven, but the run failed at another step")
        if error.get("type") != "retryable":
            logger.warning(
                "a redriven step message was dropped: its run failed permanently; fix the cause, "
                "then run `clientary-xero runs replay %s`",
                run_id,
                extra=where,
            )
            return StepOutcome(
                run_id,
                step_id,
                "SKIPPED",
                "redriven, but the run failed permanently: fix the cause, then `runs replay` it",
            )
        try:
            resumed = replay(self.state, self.queue, run_id)
        except Conflict:  # another copy of the redriven message resumed it first
            return StepOutcome(run_id, step_id, "SKIPPED", "redriven; the run was resumed meanwhile")
        except PermanentError as exc:
            logger.warning("a redriven step message could not resume its run: %s", exc, extra=where)
            return StepOutcome(run_id, step_id, "SKIPPED", f"redriven, not resumed: {exc}")
        logger.info("a redriven step message resumed its run", extra={**where, **resumed})
        return StepOutcome(
            run_id,
            step_id,
            "RESUMED",
            f"redriven from the dead-letter queue: the run resumes (generation {resumed['generation']})",
            next_step=step_id,
        )

    def _redriven_again(self, run: dict[str, Any], step_id: str) -> StepOutcome:
        """A redriven message of a run resumed since (``replay``: one generation on).

        ``replay`` writes the run before it sends the resumed step's message; if that send failed,
        this message came back for another try and is the only trace left of the resumed step. While
        the run still waits at that step (QUEUED), send its message (again): a duplicate is harmless,
        the step's claim dedupes it."""
        run_id = run["run_id"]
        if run.get("status") != R.QUEUED or run.get("current_step") != step_id:
            return StepOutcome(run_id, step_id, "SKIPPED", "message from before a replay")
        generation = int(run.get("generation", 0))
        self.queue.send(
            app_for_step(run["workflow"], step_id, run.get("decisions")),
            {"run_id": run_id, "step_id": step_id, "generation": generation},
        )
        return StepOutcome(
            run_id,
            step_id,
            "RESUMED",
            f"redriven: the resumed step is queued (generation {generation})",
            next_step=step_id,
        )

    def _advance(
        self,
        run: dict[str, Any],
        workflow: Workflow,
        step_id: str,
        *,
        duplicate: bool,
        outputs: dict[str, Any],
        checkpoint: dict[str, Any] | None = None,
    ) -> StepOutcome:
        """Choose the next step, move the run on and enqueue it. ``checkpoint`` (``finish_step``'s
        owner, input, output): the step's SUCCEEDED checkpoint, still to write with the run's move."""
        run_id = run["run_id"]
        fresh = run
        if step_id not in outputs:
            # The step succeeded after this execution read the run (another worker's checkpoint
            # between our read and our claim): read again, for its output and the run's decisions.
            again, steps = self.state.get_run_and_steps(run_id)
            fresh, outputs = again or run, _succeeded(steps)
        decisions = dict(fresh.get("decisions") or {})
        context = R.build_context(fresh, outputs)
        bounds = {
            "timeout_ms": self.settings.expression_timeout_ms,
            "max_depth": self.settings.expression_max_depth,
        }
        try:
            nxt = next_step(
                workflow,
                step_id,
                decisions,
                lambda cond: expressions.evaluate(
                    expressions.expression_source(cond) or "", context, **bounds
                ),
            )
        except Exception as exc:  # the step did succeed: its checkpoint first, whatever comes next
            if not self._checkpoint(run_id, step_id, checkpoint, None):
                return StepOutcome(run_id, step_id, "SKIPPED", "lease lost to another worker")
            if not isinstance(exc, PermanentError):
                raise
            return self._fail_run(fresh, step_id, None, exc.to_dict())
        now = R.now_iso()
        if nxt is None:
            done = None
            if fresh.get("status") != R.SUCCEEDED:
                done = RunChange(
                    {
                        "status": R.SUCCEEDED,
                        "decisions": decisions,
                        "updated_at": now,
                        "finished_at": now,
                        "current_step": step_id,
                    },
                    # The workflow's streak of failed runs ends (usecases/alerts.py), in the same write.
                    also=tuple(notify.succeeded_writes(self.state, fresh)),
                )
            if not self._checkpoint(run_id, step_id, checkpoint, done):
                return StepOutcome(run_id, step_id, "SKIPPED", "lease lost to another worker")
            if done is not None:
                notify.run_succeeded(fresh)
            return StepOutcome(run_id, step_id, "SUCCEEDED", "duplicate message" if duplicate else "", None)
        # Move the run on and enqueue the next step; a duplicate enqueue is harmless (the claim dedupes).
        moved = RunChange({"current_step": nxt.id, "decisions": decisions, "updated_at": now})
        message: dict[str, Any] = {
            "run_id": run_id,
            "step_id": nxt.id,
            "generation": int(fresh.get("generation", 0)),
        }
        # The next step's message carries the run as this write leaves it, stamped with its rev.
        carry = R.carried({**fresh, **moved.fields}, outputs)
        if carry is not None:
            moved = RunChange({**moved.fields, "rev": run_revision(carry)})
            message["carried"] = carry
        if not self._checkpoint(run_id, step_id, checkpoint, moved):
            return StepOutcome(run_id, step_id, "SKIPPED", "lease lost to another worker")
        self.queue.send(app_for_step(fresh["workflow"], nxt.id, decisions), message)
        return StepOutcome(run_id, step_id, "SUCCEEDED", "duplicate message" if duplicate else "", nxt.id)

    def _checkpoint(
        self, run_id: str, step_id: str, checkpoint: dict[str, Any] | None, change: RunChange | None
    ) -> bool:
        """Write the step's SUCCEEDED checkpoint (if still due) and the run's ``change``, in one
        transaction when both are. False: our lease expired and another worker took the step over;
        it owns the checkpoint (and the run's move)."""
        if checkpoint is None:
            if change is not None:
                self.state.update_run(run_id, change.fields, remove=change.remove, also=list(change.also))
            return True
        # The rate budget's slots of the calls just made are released by the same transaction.
        slots = held_slots()
        try:
            carried = self.state.finish_step(
                run_id, step_id, status=R.SUCCEEDED, then_run=change, also=slots.updates(), **checkpoint
            )
        except Conflict:
            return False
        if carried:
            slots.released()
        return True

    def _fail_run(
        self, run: dict[str, Any], step_id: str, rendered: Any, error: dict[str, Any]
    ) -> StepOutcome:
        now = R.now_iso()
        self.state.update_run(
            run["run_id"],
            {
                "status": R.FAILED,
                "failed_step": step_id,
                "current_step": step_id,
                "error": error,
                "updated_at": now,
                "finished_at": now,
            },
            # Its notice for the next digest and the workflow's streak, in the same transaction.
            also=notify.failed_writes(self.state, run, step_id, error),
        )
        notify.run_failed(run)
        logger.warning("run failed", extra={"run_id": run["run_id"], "step_id": step_id, "error": error})
        return StepOutcome(run["run_id"], step_id, "FAILED", str(error.get("message", "")), error=error)


def replay(
    state: StateStore,
    queue: StepQueue,
    run_id: str,
    *,
    workflow_document: dict[str, Any] | None = None,
    stuck: bool = False,
) -> dict[str, Any]:
    """Run a FAILED run again from its failed step. Succeeded steps keep their outputs and never re-run.

    ``workflow_document`` (the current definition, already validated) replaces the run's snapshot,
    so a fixed mapping applies; the failed step must still exist in it.

    A SKIPPED run (its record arrived while the workflow was disabled) is started as the intake
    would have: filter, branches and first step of ``workflow_document`` (or its snapshot).

    ``stuck``: also take a QUEUED or RUNNING run whose step message is gone (a Lambda that kept
    timing out until SQS moved the message to the DLQ): it is run again from its current step,
    provided no worker holds that step's lease and the step has not succeeded.
    """
    run = state.get_run(run_id)
    if run is None:
        raise PermanentError(f"no run {run_id!r}")
    status = run.get("status")
    if status == R.SKIPPED:  # arrived while its workflow was disabled: start it now, from the top
        from clientary_xero.engine.intake import start_skipped

        return start_skipped(state, queue, run, workflow_document)
    expected = [R.FAILED]
    if stuck and status in (R.QUEUED, R.RUNNING):
        current = run.get("current_step")
        step = state.get_step(run_id, current) if current else None
        if step is not None and step.get("status") == R.SUCCEEDED:
            raise PermanentError(f"run {run_id}: step {current!r} succeeded; the run is moving on, not stuck")
        if step is not None and int(step.get("lease_until") or 0) > state.clock():
            raise PermanentError(f"run {run_id}: step {current!r} is running now (its lease is live)")
        run["failed_step"] = current
        expected = [status]
    elif status != R.FAILED:
        hint = " (add --stuck if its message went to the DLQ)" if status in (R.QUEUED, R.RUNNING) else ""
        raise PermanentError(f"run {run_id} is {status}; only FAILED runs can be replayed{hint}")
    document = workflow_document or run["workflow"]
    workflow = Workflow.from_document(document)
    step_id = run.get("failed_step")
    generation = int(run.get("generation", 0)) + 1
    decisions = dict(run.get("decisions") or {})
    if step_id is None:
        # Failed before any step (an invalid workflow or a failing filter): start from the top.
        context = R.build_context(run, {})
        first = next_step(
            workflow,
            None,
            decisions,
            lambda cond: expressions.evaluate(expressions.expression_source(cond) or "", context),
        )
        if first is None:
            raise PermanentError("the workflow has no step to run for this record")
        step_id = first.id
    else:
        find_step(workflow, step_id, decisions)
        if state.get_step(run_id, step_id) is not None:
            try:
                state.reset_step(run_id, step_id)
            except Conflict:  # succeeded or leased since the run was read: another replay won
                raise Conflict(
                    f"run {run_id}: step {step_id!r} was resumed meanwhile (it is running or done)"
                ) from None
    state.update_run(
        run_id,
        {
            "status": R.QUEUED,
            "generation": generation,
            "current_step": step_id,
            "workflow": workflow.to_document(),
            "decisions": decisions,
            "updated_at": R.now_iso(),
        },
        expect_status=expected,
        remove=("error", "failed_step", "finished_at"),
    )
    queue.send(
        app_for_step(workflow.to_document(), step_id, decisions),
        {"run_id": run_id, "step_id": step_id, "generation": generation},
    )
    return {"run_id": run_id, "step_id": step_id, "generation": generation}


def _start_run(run: dict[str, Any]) -> RunChange | None:
    """The run's move to RUNNING that goes with its step's claim (None: it is RUNNING already)."""
    if run.get("status") not in (R.QUEUED, R.WAITING):
        return None
    return RunChange(
        {"status": R.RUNNING, "updated_at": R.now_iso()},
        remove=("resume_at", "wait_reason") if run.get("status") == R.WAITING else (),
    )


def _succeeded(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The outputs of a run's succeeded steps, by step id."""
    return {s["step_id"]: s.get("output") for s in steps if s.get("status") == R.SUCCEEDED}


def _seq(workflow: Workflow, step_id: str) -> int:
    from clientary_xero.workflows.model import iter_steps

    for i, step in enumerate(iter_steps(workflow.steps)):
        if step.id == step_id:
            return i
    return 0


def _unexpected(exc: BaseException) -> RetryableError:
    """An exception no adapter classified: count it as retryable (it may be transient) and log it."""
    logger.exception("unexpected error in a step", exc_info=exc)
    return RetryableError(f"unexpected error: {type(exc).__name__}: {exc}", delay_seconds=30)


def rendered_digest(action: str, rendered: Any) -> str:
    """``<code>:<sha256>``: SHA-256 of a step's rendered input, its action's name and the code that
    validates and runs it (workflows/stamp.py ``code_digest``, whose first 16 hex digits lead, so a
    link can tell a hash of this code from another version's): equal digests, equal inputs to the
    same code. "" for an input JSON cannot write (then nothing may answer for it)."""
    import hashlib
    import json

    from clientary_xero.workflows.stamp import code_digest

    try:
        text = json.dumps(
            rendered, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError):
        return ""
    code = code_digest()
    return f"{code[:16]}:" + hashlib.sha256(f"{code}\0{action}\0{text}".encode()).hexdigest()


def default_factories(state: StateStore) -> dict[str, Any]:
    """Service clients, built on first use by the actions that need them."""

    def xero() -> Any:
        from clientary_xero.connectors.xero.client import build_xero_client
        from clientary_xero.storage.secrets import SecretStore

        return build_xero_client(SecretStore(), state, get_settings())

    def clientary() -> Any:
        from clientary_xero.connectors.clientary.client import build_clientary_client
        from clientary_xero.storage.secrets import SecretStore

        return build_clientary_client(SecretStore(), get_settings())

    return {"xero": xero, "clientary": clientary}
