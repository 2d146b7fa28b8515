"""Which step runs next: a walk over the step tree that records each branch decision once.

Branch conditions are evaluated when the walk first reaches them and the decision is stored on the
run, so a redelivered message or a replay follows the same path even if the condition would now
evaluate differently (``$now()``, an edited workflow).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from clientary_xero.connectors.base import action_app
from clientary_xero.errors import ExpressionError, PermanentError
from clientary_xero.workflows.expressions import truthy
from clientary_xero.workflows.model import Branch, Step, Workflow

Evaluate = Callable[[str], Any]


def _walk(nodes: list[Any], decisions: dict[str, bool], evaluate: Evaluate) -> Iterator[Step]:
    for node in nodes:
        if isinstance(node, Step):
            yield node
        elif isinstance(node, Branch):
            assert node.id is not None
            if node.id not in decisions:
                try:
                    decisions[node.id] = truthy(evaluate(node.if_))
                except ExpressionError as exc:  # name the branch, as filter and input errors do
                    raise ExpressionError(
                        f"branch {node.id!r}.if: {exc}", messages=exc.messages, service=exc.service
                    ) from None
            yield from _walk(node.then if decisions[node.id] else node.else_, decisions, evaluate)


def next_step(
    workflow: Workflow, after: str | None, decisions: dict[str, bool], evaluate: Evaluate
) -> Step | None:
    """The step to run after ``after`` (the first step when None); None when the run is complete.

    ``decisions`` is updated in place with any branch decided on the way.
    """
    passed = after is None
    for step in _walk(workflow.steps, decisions, evaluate):
        if passed:
            return step
        if step.id == after:
            passed = True
    if not passed:
        raise PermanentError(f"step {after!r} is not on this run's path through workflow {workflow.id!r}")
    return None


def find_step(workflow: Workflow, step_id: str, decisions: dict[str, bool] | None = None) -> Step:
    """The step ``step_id`` on the run's path. The same id may be used once in each branch of one
    ``if`` (branches that rejoin): the run's ``decisions`` say which of them it is."""
    for step in decided_steps(workflow.steps, decisions or {}):
        if step.id == step_id:
            return step
    raise PermanentError(f"workflow {workflow.id!r} has no step {step_id!r}")


def decided_steps(nodes: list[Any], decisions: dict[str, bool]) -> Iterator[Step]:
    """The steps of the branches taken (both sides of a branch not decided yet), in order."""
    for node in nodes:
        if isinstance(node, Step):
            yield node
        elif isinstance(node, Branch):
            decided = decisions.get(node.id) if node.id is not None else None
            if decided is None or decided:
                yield from decided_steps(node.then, decisions)
            if decided is None or not decided:
                yield from decided_steps(node.else_, decisions)


def app_for_step(document: dict[str, Any], step_id: str, decisions: dict[str, bool] | None = None) -> str:
    """Which action queue runs a step (``xero`` or ``clientary``), from the run's workflow snapshot
    and its branch ``decisions`` (a step id may be used once in each branch of one ``if``)."""
    workflow = Workflow.from_document(document)
    for step in decided_steps(workflow.steps, decisions or {}):
        if step.id == step_id:
            app = action_app(step.action)
            if app is None:
                raise PermanentError(f"unknown action {step.action!r}")
            return app
    raise PermanentError(f"no step {step_id!r} in workflow {workflow.id!r}")
