"""Trigger intake: a trigger record becomes at most one run per matching workflow.

Order of work for one record and one workflow (each safe to repeat):

1. the run id is derived from (workflow, trigger, record id[, version]) — the dedupe key;
2. the run item is put with ``attribute_not_exists`` — a record starts a workflow once, however
   often poll, push and redelivery hand it over;
3. the first step's message is sent, then the run is marked ``enqueued``. A crash between 2 and 3
   leaves a run that is not enqueued; the next delivery of the same record finds it and enqueues it
   (the step runner ignores a duplicate message), so nothing is lost.

An invalid workflow (edited in the console) gets a FAILED run that says why; the others still run.
A record the filter rejects gets a FILTERED run, so every decision is visible.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from clientary_xero.connectors.base import registry
from clientary_xero.engine import runs as R
from clientary_xero.engine.plan import next_step
from clientary_xero.errors import ClientaryXeroError, ExpressionError, PermanentError
from clientary_xero.settings import Settings, get_settings
from clientary_xero.storage.queue import StepQueue
from clientary_xero.storage.state import StateStore
from clientary_xero.storage.workflows import StoredWorkflow, WorkflowStore
from clientary_xero.workflows import expressions
from clientary_xero.workflows.triggers import get_trigger

logger = logging.getLogger(__name__)


@dataclass
class TriggerEvent:
    trigger: str
    record: dict[str, Any]
    record_id: str
    delivery: str  # "poll", "push", "webhook", "local", "backfill"
    version: str | None = None  # set by update triggers; new-record triggers leave it None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunStart:
    workflow_id: str
    run_id: str
    status: str
    created: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "status": self.status,
            "created": self.created,
            **({"detail": self.detail} if self.detail else {}),
        }


@dataclass
class Intake:
    workflows: WorkflowStore
    state: StateStore
    queue: StepQueue
    settings: Settings

    @classmethod
    def from_settings(cls) -> Intake:
        return cls(WorkflowStore(), StateStore(), StepQueue(), get_settings())

    def start_runs(self, event: TriggerEvent) -> list[RunStart]:
        if get_trigger(event.trigger) is None:
            raise PermanentError(f"unknown trigger {event.trigger!r}")
        starts = []
        for stored in self.workflows.for_trigger(event.trigger):
            if not stored.enabled:
                continue
            starts.append(self._start_one(stored, event))
        if not starts:
            logger.info("no enabled workflow for trigger", extra={"trigger": event.trigger})
        return starts

    # ------------------------------------------------------------------
    def _start_one(self, stored: StoredWorkflow, event: TriggerEvent) -> RunStart:
        run_id = R.run_id_for(stored.id, event.trigger, event.record_id, event.version)
        existing = self.state.get_run(run_id)
        if existing is not None:
            return self._resume_intake(existing)

        now = R.now_iso()
        meta = {
            "name": event.trigger,
            "record_id": event.record_id,
            "delivery": event.delivery,
            "received_at": now,
            "run_id": run_id,
            "workflow_id": stored.id,
            **event.meta,
        }
        run: dict[str, Any] = {
            "run_id": run_id,
            "workflow_id": stored.id,
            "trigger": event.trigger,
            "record_id": event.record_id,
            "created_at": now,
            "updated_at": now,
            "generation": 0,
            "record": event.record,
            "trigger_meta": meta,
            "workflow": stored.document,
            "decisions": {},
            "enqueued": False,
        }
        if stored.workflow is None:
            run.update(
                status=R.FAILED,
                error={
                    "type": "permanent",
                    "message": "the workflow is invalid",
                    "messages": stored.problems,
                },
                enqueued=True,
            )
            created = self.state.create_run(run)
            return RunStart(
                stored.id, run_id, R.FAILED, created, "invalid workflow: " + "; ".join(stored.problems)
            )

        workflow = stored.workflow
        run["workflow"] = workflow.to_document()
        context = R.build_context(run, {})
        bounds = {
            "timeout_ms": self.settings.expression_timeout_ms,
            "max_depth": self.settings.expression_max_depth,
        }
        try:
            if workflow.filter is not None:
                source = expressions.expression_source(workflow.filter) or ""
                try:
                    passed = expressions.truthy(expressions.evaluate(source, context, **bounds))
                except ExpressionError as exc:  # name the place, as a step's input errors do
                    raise ExpressionError(f"filter: {exc}") from None
                if not passed:
                    run.update(status=R.FILTERED, enqueued=True, finished_at=now)
                    created = self.state.create_run(run)
                    return RunStart(stored.id, run_id, R.FILTERED, created, "the filter rejected the record")
            decisions: dict[str, bool] = {}
            first = next_step(
                workflow,
                None,
                decisions,
                lambda cond: expressions.evaluate(
                    expressions.expression_source(cond) or "", context, **bounds
                ),
            )
        except (ExpressionError, PermanentError) as exc:
            run.update(
                status=R.FAILED,
                enqueued=True,
                error={"type": "permanent", "message": str(exc), "messages": []},
                finished_at=now,
            )
            created = self.state.create_run(run)
            return RunStart(stored.id, run_id, R.FAILED, created, str(exc))

        run["decisions"] = decisions
        if first is None:
            run.update(status=R.SUCCEEDED, enqueued=True, finished_at=now)
            created = self.state.create_run(run)
            return RunStart(stored.id, run_id, R.SUCCEEDED, created, "no step on this path")

        run.update(status=R.QUEUED, current_step=first.id)
        if not self.state.create_run(run):
            # A concurrent delivery created it first; make sure it is enqueued.
            existing = self.state.get_run(run_id)
            return self._resume_intake(existing) if existing else RunStart(stored.id, run_id, R.QUEUED, False)
        self._enqueue(run, first.id)
        return RunStart(stored.id, run_id, R.QUEUED, True)

    def _resume_intake(self, run: dict[str, Any]) -> RunStart:
        """The record was seen before: finish an interrupted intake, otherwise do nothing."""
        if not run.get("enqueued") and run.get("status") == R.QUEUED and run.get("current_step"):
            self._enqueue(run, run["current_step"])
            return RunStart(
                run["workflow_id"], run["run_id"], R.QUEUED, False, "re-enqueued an interrupted intake"
            )
        return RunStart(
            run["workflow_id"], run["run_id"], run.get("status", "?"), False, "duplicate delivery"
        )

    def _enqueue(self, run: dict[str, Any], step_id: str) -> None:
        app = app_for_step(run["workflow"], step_id)
        self.queue.send(
            app, {"run_id": run["run_id"], "step_id": step_id, "generation": run.get("generation", 0)}
        )
        self.state.update_run(run["run_id"], {"enqueued": True, "updated_at": R.now_iso()})


def app_for_step(document: dict[str, Any], step_id: str) -> str:
    """Which action queue runs a step (``xero`` or ``clientary``), from the run's workflow snapshot."""
    from clientary_xero.workflows.model import Workflow, iter_steps

    workflow = Workflow.model_validate(document)
    for step in iter_steps(workflow.steps):
        if step.id == step_id:
            spec = registry().get(step.action)
            if spec is None:
                raise PermanentError(f"unknown action {step.action!r}")
            return spec.app
    raise PermanentError(f"no step {step_id!r} in workflow {workflow.id!r}")


__all__ = ["ClientaryXeroError", "Intake", "RunStart", "TriggerEvent", "app_for_step"]
