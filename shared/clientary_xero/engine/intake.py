"""Trigger intake: a trigger record becomes at most one run per matching workflow.

Order of work for one record and one workflow (each safe to repeat):

1. the run id is derived from (workflow, trigger, record id[, version]) — the dedupe key;
2. the run item is put with ``attribute_not_exists`` — a record starts a workflow once, however
   often poll, push and redelivery hand it over;
3. the first step's message is sent, then the run is marked ``enqueued``. A crash between 2 and 3
   leaves a run that is not enqueued; the next delivery of the same record finds it and enqueues it
   (the step runner ignores a duplicate message), so nothing is lost.

``start_runs_many`` does 2 for every record of a poll page or backfill first, then 3 with
``SendMessageBatch`` (10 messages a call) per action queue, then marks the runs enqueued: the same
order per run, so the same recovery.

Isolation: one record never stops the others. Whatever goes wrong for one record and one workflow
(a filter or branch that raises anything at all, an unknown action, a record too big for a run
item, a storage refusal) becomes that record's FAILED run with the reason, and the intake goes on.
Only a *retryable* failure (DynamoDB throttling, SQS down) leaves a record without a decision: its
``Outcome.retry`` is set, and a poller must not move its cursor past that record (the next poll
delivers it again; the dedupe above makes the part already done harmless).

An invalid workflow (edited in the console) gets a FAILED run that says why; the others still run.
A record the filter rejects gets a FILTERED run, so every decision is visible. A record that arrives
while its workflow is disabled gets a SKIPPED run (the record kept, nothing evaluated or enqueued):
``runs replay`` starts it once the workflow is enabled again, and so does a later delivery of the
same record (a backfill, a redelivery) to the enabled workflow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clientary_xero.engine import notify
from clientary_xero.engine import runs as R
from clientary_xero.engine.plan import app_for_step, next_step
from clientary_xero.errors import (
    ClientaryXeroError,
    Conflict,
    ExpressionError,
    PermanentError,
    RetryableError,
)
from clientary_xero.settings import Settings, get_settings
from clientary_xero.storage.queue import StepQueue
from clientary_xero.storage.state import ItemTooLarge, RunChange, StateStore, kilobytes, run_revision
from clientary_xero.storage.workflows import StoredWorkflow, WorkflowStore
from clientary_xero.workflows import expressions
from clientary_xero.workflows.model import Workflow
from clientary_xero.workflows.triggers import get_trigger

logger = logging.getLogger(__name__)

SKIP_REASON = "the workflow was disabled when the record arrived"


@dataclass
class TriggerEvent:
    trigger: str
    record: dict[str, Any]
    record_id: str
    delivery: str  # "poll", "push", "webhook", "local", "backfill"
    version: str | None = None  # set by update triggers; new-record triggers leave it None
    meta: dict[str, Any] = field(default_factory=dict)
    # Set when the record could not be read as the trigger's shape (a normalisation failure): each
    # enabled workflow gets a FAILED run with this reason and the raw record, nothing is evaluated.
    problem: str | None = None


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
class Outcome:
    """What the intake did with one record: a run per matching workflow, or ``retry``.

    ``retry`` (a ``ClientaryXeroError``) means some workflow's run for this record may not be
    created or enqueued: deliver the record again later (a poll keeps it ahead of its cursor)."""

    event: TriggerEvent
    starts: list[RunStart] = field(default_factory=list)
    retry: ClientaryXeroError | None = None


@dataclass
class _Enqueue:
    outcome: Outcome
    run_id: str
    app: str
    message: dict[str, Any]


@dataclass
class Decision:
    """Where a run goes at intake: QUEUED (``step_id``, ``app``), FILTERED, SUCCEEDED or FAILED."""

    status: str
    detail: str = ""
    decisions: dict[str, bool] = field(default_factory=dict)
    step_id: str | None = None
    app: str = ""
    error: dict[str, Any] | None = None
    filter_reason: str = ""  # FILTERED: ``filter <expression> was false (<field> is <value>, …)``

    def fields(self, now: str) -> dict[str, Any]:
        """The run attributes this decision sets."""
        out: dict[str, Any] = {"status": self.status, "decisions": self.decisions, "updated_at": now}
        if self.filter_reason:
            out["filter_reason"] = self.filter_reason
        if self.status == R.QUEUED:
            out.update(current_step=self.step_id, enqueued=False)
        else:
            out.update(enqueued=True, finished_at=now)
        if self.error is not None:
            out["error"] = self.error
        return out


def describe(exc: BaseException) -> str:
    """An exception as a reason a person can read (our own errors carry one; others get their type)."""
    if isinstance(exc, ClientaryXeroError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _failed(message: str, messages: list[str] | None = None, *, detail: str = "") -> Decision:
    return Decision(
        R.FAILED,
        detail or message,
        error={"type": "permanent", "message": message, "messages": messages or []},
    )


def decide(
    workflow: Workflow | None,
    problems: list[str],
    run: dict[str, Any],
    *,
    timeout_ms: int,
    max_depth: int,
) -> Decision:
    """Filter, branch conditions and the first step for a run at intake. Never raises: anything
    that goes wrong for this record is a FAILED decision naming where (``filter: …``)."""
    if workflow is None:
        return _failed("the workflow is invalid", problems, detail="invalid workflow: " + "; ".join(problems))
    problem = (run.get("trigger_meta") or {}).get("problem")
    if problem:
        return _failed(f"the record could not be read: {problem}")
    context = R.build_context(run, {})
    bounds = {"timeout_ms": timeout_ms, "max_depth": max_depth}

    def condition(cond: str) -> Any:
        try:
            return expressions.evaluate(expressions.expression_source(cond) or "", context, **bounds)
        except ExpressionError:
            raise
        except Exception as exc:  # the evaluator's own surprises (OSError, OverflowError, …)
            raise ExpressionError(describe(exc)) from None

    try:
        if workflow.filter is not None:
            try:
                value = condition(workflow.filter)
            except Exception as exc:  # name the place, as a step's input errors do
                raise ExpressionError(f"filter: {describe(exc)}") from None
            if not expressions.truthy(value):
                # Why, on the run (``filter_reason``): the filter, its value and the fields it read.
                source = expressions.expression_source(workflow.filter) or ""
                reason = "filter " + expressions.explain(source, context, value, **bounds)
                return Decision(R.FILTERED, "the filter rejected the record", filter_reason=reason)
        decisions: dict[str, bool] = {}
        first = next_step(workflow, None, decisions, condition)
        if first is None:
            return Decision(R.SUCCEEDED, "no step on this path", decisions)
        app = app_for_step(workflow.to_document(), first.id, decisions)
    except Exception as exc:
        return _failed(describe(exc))
    return Decision(R.QUEUED, "", decisions, first.id, app)


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
        """One record (the push route, a webhook event). Raises the retryable failure, if any."""
        (outcome,) = self.start_runs_many([event])
        if outcome.retry is not None:
            raise outcome.retry
        return outcome.starts

    def start_runs_many(self, events: Sequence[TriggerEvent]) -> list[Outcome]:
        """Every record of a poll or backfill: an ``Outcome`` each, in order; never raises for one
        record (see the module docstring). First-step messages go out in batches of 10."""
        for trigger in {event.trigger for event in events}:
            if get_trigger(trigger) is None:
                raise PermanentError(f"unknown trigger {trigger!r}")
        workflows: dict[str, list[StoredWorkflow]] = {}
        outcomes: list[Outcome] = []
        pending: list[_Enqueue] = []
        for event in events:
            outcome = Outcome(event)
            outcomes.append(outcome)
            try:
                if event.trigger not in workflows:
                    workflows[event.trigger] = self.workflows.for_trigger(event.trigger)
            except ClientaryXeroError as exc:
                outcome.retry = exc
                continue
            for stored in workflows[event.trigger]:
                try:
                    start, enqueue = self._start_one(stored, event)
                except RetryableError as exc:
                    outcome.retry = exc
                    continue
                except Exception as exc:
                    try:
                        start = self._record_failure(stored, event, exc)
                    except Exception as again:  # the failure itself cannot be stored: try again later
                        logger.warning(
                            "could not record a failed run; the record will be delivered again",
                            extra={"trigger": event.trigger, "record_id": event.record_id},
                        )
                        outcome.retry = (
                            again
                            if isinstance(again, ClientaryXeroError)
                            else RetryableError(describe(again), delay_seconds=5)
                        )
                        continue
                    enqueue = None
                outcome.starts.append(start)
                if enqueue is not None:
                    pending.append(_Enqueue(outcome, start.run_id, enqueue[0], enqueue[1]))
            if not workflows[event.trigger]:
                logger.info("no workflow for trigger", extra={"trigger": event.trigger})
        self._send(pending)
        notify.intake_finished(self.state, outcomes)  # metrics; the FAILED runs' notices
        return outcomes

    # ------------------------------------------------------------------
    def _bounds(self) -> dict[str, int]:
        return {
            "timeout_ms": self.settings.expression_timeout_ms,
            "max_depth": self.settings.expression_max_depth,
        }

    def _new_run(self, stored: StoredWorkflow, event: TriggerEvent, run_id: str) -> dict[str, Any]:
        now = R.now_iso()
        meta = {
            "name": event.trigger,
            "record_id": event.record_id,
            "delivery": event.delivery,
            "received_at": now,
            "run_id": run_id,
            "workflow_id": stored.id,
            **event.meta,
            **({"problem": event.problem} if event.problem else {}),
        }
        return {
            "run_id": run_id,
            "workflow_id": stored.id,
            "trigger": event.trigger,
            "record_id": event.record_id,
            "created_at": now,
            "updated_at": now,
            "generation": 0,
            "record": event.record,
            "trigger_meta": meta,
            "workflow": stored.workflow.to_document() if stored.workflow else stored.document,
            "decisions": {},
            "enqueued": False,
        }

    def _start_one(
        self, stored: StoredWorkflow, event: TriggerEvent
    ) -> tuple[RunStart, tuple[str, dict[str, Any]] | None]:
        """The run of one record for one workflow, and the first-step message still to send."""
        run_id = R.run_id_for(stored.id, event.trigger, event.record_id, event.version)
        if not stored.enabled:
            return self._skip(stored, event, run_id), None
        # Create first, read only when the run exists (a redelivery): a new record, the common
        # case, then costs one conditional put instead of a read and a put.
        run = self._new_run(stored, event, run_id)
        decision = decide(stored.workflow, stored.problems, run, **self._bounds())
        run.update(decision.fields(run["created_at"]))
        # The first step's message carries the run as created: that step need not read it.
        carry = R.carried(run, {}) if decision.status == R.QUEUED else None
        if carry is not None:
            run["rev"] = run_revision(carry)
        created, too_big = self._create(run)
        if not created:
            # Delivered before (or by a concurrent delivery): finish its intake if need be.
            existing = self.state.get_run(run_id)
            if existing is None:
                return RunStart(stored.id, run_id, R.QUEUED, False), None
            if existing.get("status") == R.SKIPPED:
                return self._start_skipped(stored, existing, event)
            return self._resume_intake(existing)
        if too_big:
            return RunStart(stored.id, run_id, R.FAILED, True, too_big), None
        start = RunStart(stored.id, run_id, decision.status, True, decision.detail)
        if decision.status != R.QUEUED:
            return start, None
        message = _message(run_id, decision.step_id or "", 0)
        return start, (decision.app, {**message, "carried": carry} if carry else message)

    def _skip(self, stored: StoredWorkflow, event: TriggerEvent, run_id: str) -> RunStart:
        """A disabled workflow: a SKIPPED run (cheap: one conditional put, nothing evaluated)."""
        run = self._new_run(stored, event, run_id)
        run.update(status=R.SKIPPED, enqueued=True, skip_reason=SKIP_REASON)
        created, too_big = self._create(run)
        if created:
            return RunStart(
                stored.id, run_id, R.FAILED if too_big else R.SKIPPED, True, too_big or SKIP_REASON
            )
        existing = self.state.get_run(run_id) or {}
        return RunStart(stored.id, run_id, existing.get("status", "?"), False, "duplicate delivery")

    def _start_skipped(
        self, stored: StoredWorkflow, run: dict[str, Any], event: TriggerEvent
    ) -> tuple[RunStart, tuple[str, dict[str, Any]] | None]:
        """The record was skipped while the workflow was disabled; it is enabled now: start it."""
        try:
            decision = begin_skipped(
                self.state, run, stored.workflow, stored.problems, record=event.record, **self._bounds()
            )
        except Conflict:  # a concurrent delivery or a replay started it first
            again = self.state.get_run(run["run_id"])
            return self._resume_intake(again or run)
        detail = "started a run skipped while the workflow was disabled"
        start = RunStart(stored.id, run["run_id"], decision.status, True, decision.detail or detail)
        if decision.status != R.QUEUED:
            return start, None
        generation = int(run.get("generation", 0))
        return start, (decision.app, _message(run["run_id"], decision.step_id or "", generation))

    def _create(self, run: dict[str, Any]) -> tuple[bool, str]:
        """``create_run``; a run too big for DynamoDB is stored compacted as FAILED, and the reason
        is returned (else "")."""
        try:
            return self.state.create_run(run), ""
        except ItemTooLarge as exc:
            compact = _compacted(run, exc)
            logger.warning("a record is too big for a run item: %s", compact["error"]["message"])
            return self.state.create_run(compact), compact["error"]["message"]

    def _record_failure(self, stored: StoredWorkflow, event: TriggerEvent, exc: BaseException) -> RunStart:
        """Anything unexpected for this record and workflow: its FAILED run, with the reason."""
        run_id = R.run_id_for(stored.id, event.trigger, event.record_id, event.version)
        reason = describe(exc)
        logger.warning(
            "a record failed at intake",
            extra={"trigger": event.trigger, "record_id": event.record_id, "reason": reason},
        )
        run = self._new_run(stored, event, run_id)
        run.update(_failed(reason).fields(run["created_at"]))
        created, too_big = self._create(run)
        if created:
            return RunStart(stored.id, run_id, R.FAILED, True, too_big or reason)
        existing = self.state.get_run(run_id) or {}
        return RunStart(stored.id, run_id, existing.get("status", "?"), False, "duplicate delivery")

    def _resume_intake(self, run: dict[str, Any]) -> tuple[RunStart, tuple[str, dict[str, Any]] | None]:
        """The record was seen before: finish an interrupted intake, otherwise do nothing."""
        if not run.get("enqueued") and run.get("status") == R.QUEUED and run.get("current_step"):
            message = _message(run["run_id"], run["current_step"], int(run.get("generation", 0)))
            start = RunStart(
                run["workflow_id"], run["run_id"], R.QUEUED, False, "re-enqueued an interrupted intake"
            )
            return start, (app_for_step(run["workflow"], run["current_step"], run.get("decisions")), message)
        return RunStart(
            run["workflow_id"], run["run_id"], run.get("status", "?"), False, "duplicate delivery"
        ), None

    def _send(self, pending: list[_Enqueue]) -> None:
        """Send the first-step messages (SendMessageBatch per queue), then mark the runs enqueued."""
        by_app: dict[str, list[_Enqueue]] = {}
        for item in pending:
            by_app.setdefault(item.app, []).append(item)
        for app, items in by_app.items():
            try:
                self.queue.send_batch(app, [item.message for item in items])
            except Exception as exc:
                # Which of them went out is unknown: every one stays "not enqueued", so the next
                # delivery of its record sends it again (a duplicate message is harmless).
                failure = (
                    exc
                    if isinstance(exc, ClientaryXeroError)
                    else RetryableError(describe(exc), delay_seconds=5)
                )
                for item in items:
                    item.outcome.retry = failure
                continue
            # The marks of a poll page go in transactions of 100 (one round trip, not one a run).
            # The mark keeps the run's rev: it changes nothing a step message carries.
            mark = RunChange({"enqueued": True, "updated_at": R.now_iso()}, keep_rev=True)
            for run_id, problem in self.state.update_runs([(item.run_id, mark) for item in items]):
                # The message is out: the run will run; only the flag is stale, which at worst
                # makes a later delivery send a duplicate message.
                logger.warning(
                    "could not mark a run enqueued: %s", describe(problem), extra={"run_id": run_id}
                )


def begin_skipped(
    state: StateStore,
    run: dict[str, Any],
    workflow: Workflow | None,
    problems: list[str],
    *,
    record: dict[str, Any] | None = None,
    timeout_ms: int,
    max_depth: int,
) -> Decision:
    """Turn a SKIPPED run into a started one: filter, branches and first step with ``workflow``
    (the current definition) and ``record`` (a fresher copy, when a delivery brings one). The run
    is updated only while it is still SKIPPED (``Conflict`` otherwise: someone started it). A QUEUED
    decision leaves the run not enqueued: the caller sends the message, then marks it."""
    if record is not None:
        run = {**run, "record": record}
    decision = decide(workflow, problems, run, timeout_ms=timeout_ms, max_depth=max_depth)
    fields = decision.fields(R.now_iso())
    if record is not None:
        fields["record"] = record
    if workflow is not None:
        fields["workflow"] = workflow.to_document()
    state.update_run(run["run_id"], fields, expect_status=R.SKIPPED, remove=("skip_reason",))
    return decision


def start_skipped(
    state: StateStore, queue: StepQueue, run: dict[str, Any], workflow_document: dict[str, Any] | None
) -> dict[str, Any]:
    """``runs replay`` of a SKIPPED run: decide with ``workflow_document`` (the current definition,
    validated; else the run's snapshot), send the first step, mark the run enqueued. Returns
    ``{run_id, step_id, generation, status, detail}``; ``step_id`` is None when nothing runs
    (FILTERED, FAILED, or no step on this path)."""
    from clientary_xero.workflows.validate import parse_workflow

    settings = get_settings()
    document = workflow_document or run.get("workflow") or {}
    try:
        workflow, problems = parse_workflow(document), []
    except Exception as exc:  # a snapshot that no longer validates: the run fails, saying why
        workflow, problems = None, list(getattr(exc, "problems", None) or [describe(exc)])
    try:
        decision = begin_skipped(
            state,
            run,
            workflow,
            problems,
            timeout_ms=settings.expression_timeout_ms,
            max_depth=settings.expression_max_depth,
        )
    except Conflict:
        raise PermanentError(f"run {run['run_id']} was started meanwhile; it is SKIPPED no more") from None
    generation = int(run.get("generation", 0))
    if decision.status == R.QUEUED and decision.step_id:
        queue.send(decision.app, _message(run["run_id"], decision.step_id, generation))
        state.update_run(run["run_id"], {"enqueued": True, "updated_at": R.now_iso()})
    return {
        "run_id": run["run_id"],
        "step_id": decision.step_id,
        "generation": generation,
        "status": decision.status,
        "detail": decision.detail,
    }


def _message(run_id: str, step_id: str, generation: int) -> dict[str, Any]:
    return {"run_id": run_id, "step_id": step_id, "generation": generation}


def _compacted(run: dict[str, Any], exc: ItemTooLarge) -> dict[str, Any]:
    """The run without its record (only the id stays), FAILED with the reason: the trigger goes on."""
    record_size = exc.sizes.get("record", 0)
    what = f"the record is {kilobytes(record_size)}" if record_size else str(exc)
    message = (
        f"{what}, over DynamoDB's 400 KB item limit for a run: the run keeps only the record's id "
        f"and did not start"
    )
    return {
        **run,
        "record": {"id": run.get("record_id")},
        "record_omitted": True,
        **_failed(message).fields(str(run.get("created_at") or R.now_iso())),
    }


__all__ = [
    "ClientaryXeroError",
    "Decision",
    "Intake",
    "Outcome",
    "RunStart",
    "TriggerEvent",
    "app_for_step",
    "begin_skipped",
    "decide",
    "start_skipped",
]
