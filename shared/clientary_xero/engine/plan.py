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
from clientary_xero.workflows.model import Branch, Step, Workflow, iter_steps

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


def find_step(workflow: Workflow, step_id: str) -> Step:
    for step in iter_steps(workflow.steps):
        if step.id == step_id:
            return step
    raise PermanentError(f"workflow {workflow.id!r} has no step {step_id!r}")


def app_for_step(document: dict[str, Any], step_id: str) -> str:
    """Which action queue runs a step (``xero`` or ``clientary``), from the run's workflow snapshot."""
    workflow = Workflow.model_validate(document)
    for step in iter_steps(workflow.steps):
        if step.id == step_id:
            app = action_app(step.action)
            if app is None:
                raise PermanentError(f"unknown action {step.action!r}")
            return app
    raise PermanentError(f"no step {step_id!r} in workflow {workflow.id!r}")
