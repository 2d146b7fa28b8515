"""The step runner: one queue message = one step of one run.

load run → claim the step (lease + attempt count) → render input → validate it against the
action's model → call the action → checkpoint the output → choose the next step → enqueue it.

Guarantees:
* a step that SUCCEEDED never executes again (the claim refuses; a duplicate message only
  re-does the cheap "advance" part, whose enqueue is itself deduplicated by the next claim);
* a crash between the action's call and the checkpoint re-runs the action with the same
  Idempotency-Key, and actions look for what an earlier try made before creating (id links,
  find-before-create), so the effect happens once;
* permanent errors fail the run with the service's messages; retryable ones go back to the queue
  with a delay, and on the last attempt the run is FAILED and SQS moves the message to the DLQ.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from clientary_xero.connectors.base import ActionContext, registry
from clientary_xero.engine import runs as R
from clientary_xero.engine.intake import app_for_step
from clientary_xero.engine.plan import find_step, next_step
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
from clientary_xero.storage.state import StateStore
from clientary_xero.workflows import expressions
from clientary_xero.workflows.model import Workflow
from clientary_xero.workflows.validate import pydantic_problems

logger = logging.getLogger(__name__)


@dataclass
class StepOutcome:
    run_id: str
    step_id: str
    status: str  # SUCCEEDED, FAILED, RETRY, SKIPPED
    detail: str = ""
    next_step: str | None = None
    error: dict[str, Any] | None = None


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
        run_id, step_id = str(message["run_id"]), str(message["step_id"])
        generation = int(message.get("generation", 0))
        run = self.state.get_run(run_id)
        if run is None:
            return StepOutcome(run_id, step_id, "SKIPPED", "run not found (expired or never created)")
        if int(run.get("generation", 0)) != generation:
            return StepOutcome(run_id, step_id, "SKIPPED", "message from before a replay")
        if run.get("status") in (R.FAILED, R.FILTERED):
            return StepOutcome(run_id, step_id, "SKIPPED", f"run is {run['status']}")

        try:
            workflow = Workflow.model_validate(run["workflow"])
            step = find_step(workflow, step_id)
        except (PydanticValidationError, PermanentError) as exc:
            return self._fail_run(
                run, step_id, None, {"type": "permanent", "message": str(exc), "messages": []}
            )

        owner = uuid.uuid4().hex
        try:
            claimed = self.state.claim_step(
                run_id,
                step_id,
                owner=owner,
                lease_seconds=self.settings.step_lease_seconds,
                seq=_seq(workflow, step_id),
            )
        except Conflict:
            # Already succeeded (a duplicate message, or a crash after the checkpoint): only advance.
            return self._advance(run, workflow, step_id, duplicate=True)
        except LockBusy as exc:
            raise RetryableError(str(exc), delay_seconds=min(30, self.settings.step_lease_seconds)) from None

        if run.get("status") == R.QUEUED:
            self.state.update_run(run_id, {"status": R.RUNNING, "updated_at": R.now_iso()})
        attempt = int(claimed.get("attempts", 1))
        rendered: Any = None
        try:
            outputs = self._outputs(run_id)
            context = R.build_context(run, outputs)
            rendered = expressions.render(
                step.input,
                context,
                timeout_ms=self.settings.expression_timeout_ms,
                max_depth=self.settings.expression_max_depth,
            )
            spec = registry().get(step.action)
            if spec is None:
                raise ValidationFailed(f"unknown action {step.action!r}")
            try:
                model = spec.input_model.model_validate(rendered)
            except PydanticValidationError as exc:
                problems = pydantic_problems(exc, "input")
                raise ValidationFailed(
                    f"step {step_id!r}: the input for {step.action} is invalid", messages=problems
                ) from None
            actx = ActionContext(
                run_id=run_id,
                step_id=step_id,
                idempotency_key=R.idempotency_key(run_id, step_id, generation),
                attempt=attempt,
                links=self.state,
                services=self.services,
                factories=self.factories,
            )
            output = spec.run(actx, model)
        except PermanentError as exc:
            error = exc.to_dict()
            self.state.finish_step(run_id, step_id, owner=owner, status=R.FAILED, input=rendered, error=error)
            return self._fail_run(run, step_id, rendered, error)
        except ExpressionError as exc:  # pragma: no cover - ExpressionError is a PermanentError
            raise AssertionError from exc
        except Exception as exc:
            retry = exc if isinstance(exc, RetryableError) else _unexpected(exc)
            error = retry.to_dict()
            if receive_count >= self.settings.max_attempts:
                error["message"] = f"gave up after {receive_count} attempts: {error['message']}"
                self.state.finish_step(
                    run_id, step_id, owner=owner, status=R.FAILED, input=rendered, error=error
                )
                self._fail_run(run, step_id, rendered, error)
                # Raising returns the message to the queue once more; SQS then moves it to the DLQ.
                raise retry from None
            self.state.finish_step(
                run_id, step_id, owner=owner, status="RETRYING", input=rendered, error=error
            )
            raise retry from None

        try:
            self.state.finish_step(
                run_id, step_id, owner=owner, status=R.SUCCEEDED, input=rendered, output=output
            )
        except Conflict:
            # Our lease expired and another worker took the step over; it owns the checkpoint.
            return StepOutcome(run_id, step_id, "SKIPPED", "lease lost to another worker")
        return self._advance(run, workflow, step_id, duplicate=False)

    # ------------------------------------------------------------------
    def _outputs(self, run_id: str) -> dict[str, Any]:
        return {
            s["step_id"]: s.get("output")
            for s in self.state.get_steps(run_id)
            if s.get("status") == R.SUCCEEDED
        }

    def _advance(
        self, run: dict[str, Any], workflow: Workflow, step_id: str, *, duplicate: bool
    ) -> StepOutcome:
        run_id = run["run_id"]
        fresh = self.state.get_run(run_id) or run
        decisions = dict(fresh.get("decisions") or {})
        context = R.build_context(fresh, self._outputs(run_id))
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
        except PermanentError as exc:
            return self._fail_run(fresh, step_id, None, exc.to_dict())
        now = R.now_iso()
        if nxt is None:
            if fresh.get("status") != R.SUCCEEDED:
                self.state.update_run(
                    run_id,
                    {
                        "status": R.SUCCEEDED,
                        "decisions": decisions,
                        "updated_at": now,
                        "finished_at": now,
                        "current_step": step_id,
                    },
                )
            return StepOutcome(run_id, step_id, "SUCCEEDED", "duplicate message" if duplicate else "", None)
        # Move the run on and enqueue the next step; a duplicate enqueue is harmless (the claim dedupes).
        self.state.update_run(run_id, {"current_step": nxt.id, "decisions": decisions, "updated_at": now})
        self.queue.send(
            app_for_step(fresh["workflow"], nxt.id),
            {"run_id": run_id, "step_id": nxt.id, "generation": int(fresh.get("generation", 0))},
        )
        return StepOutcome(run_id, step_id, "SUCCEEDED", "duplicate message" if duplicate else "", nxt.id)

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
        )
        logger.warning("run failed", extra={"run_id": run["run_id"], "step_id": step_id, "error": error})
        return StepOutcome(run["run_id"], step_id, "FAILED", str(error.get("message", "")), error=error)


def replay(
    state: StateStore, queue: StepQueue, run_id: str, *, workflow_document: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run a FAILED run again from its failed step. Succeeded steps keep their outputs and never re-run.

    ``workflow_document`` (the current definition, already validated) replaces the run's snapshot,
    so a fixed mapping applies; the failed step must still exist in it.
    """
    run = state.get_run(run_id)
    if run is None:
        raise PermanentError(f"no run {run_id!r}")
    if run.get("status") != R.FAILED:
        raise PermanentError(f"run {run_id} is {run.get('status')}; only FAILED runs can be replayed")
    document = workflow_document or run["workflow"]
    workflow = Workflow.model_validate(document)
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
        find_step(workflow, step_id)
        state.reset_step(run_id, step_id)
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
        expect_status=R.FAILED,
        remove=("error", "failed_step", "finished_at"),
    )
    queue.send(
        app_for_step(workflow.to_document(), step_id),
        {"run_id": run_id, "step_id": step_id, "generation": generation},
    )
    return {"run_id": run_id, "step_id": step_id, "generation": generation}


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
