"""A filter or branch condition that fails says so: its run's error starts with ``filter:`` or
``branch '<id>'.if:``, as step errors name their input."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from clientary_xero.engine.intake import Intake
from clientary_xero.settings import get_settings
from tests.engine_helpers import echo_action
from tests.test_engine import Harness, workflow


@pytest.fixture
def h(aws: Any) -> Iterator[Harness]:
    with echo_action() as echo:
        harness = Harness(aws, echo)
        bounds = {"expression_timeout_ms": 200, "expression_max_depth": 10_000}
        harness.intake = Intake(
            harness.workflows, harness.state, harness.queue, dataclasses.replace(get_settings(), **bounds)
        )
        yield harness


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "($f := function($n){ $f($n + 1) }; $f(0))",
            "filter: expression ran longer than its time bound (200 ms)",
        ),
        (
            "$number(invoice.number) > 0",
            "filter: expression failed: could not convert string to float: 'A-1'",
        ),
    ],
)
def test_a_failing_filter_is_named_in_the_failed_run(h: Harness, condition: str, message: str) -> None:
    h.put(workflow(filter="{% " + condition + " %}"))
    (start,) = h.deliver()
    run = h.state.get_run(start.run_id)
    assert run is not None
    assert (start.status, start.detail) == ("FAILED", message)
    assert run["error"] == {"type": "permanent", "message": message, "messages": []}
    assert h.messages() == []


def test_only_the_filter_is_called_the_filter(h: Harness) -> None:
    doc = workflow()
    doc["steps"].insert(0, {"if": "{% $number('x') %}", "then": []})
    h.put(doc)
    (start,) = h.deliver()
    assert start.status == "FAILED"
    assert "could not convert string to float: 'x'" in start.detail
    assert not start.detail.startswith("filter:")


def test_a_failing_branch_condition_names_its_branch(local_env: Any) -> None:
    env = local_env
    env.put_workflow(
        {
            "id": "branchy",
            "trigger": "clientary.new_invoice",
            "steps": [
                {
                    "id": "check",
                    "if": "{% $number('not a number') > 0 %}",
                    "then": [{"id": "task", "action": "clientary.create_task", "input": {"title": "T"}}],
                }
            ],
        }
    )
    customer = env.clientary.seed_client("Acme")
    invoice = env.clientary.add_invoice(customer["id"], [{"title": "W", "quantity": 1, "price": 1}])
    assert env.push("clientary.new_invoice", invoice["id"])["statusCode"] == 202
    env.drain()
    (run,) = env.state.list_runs()
    assert run["status"] == "FAILED"
    assert run["error"]["message"].startswith("branch 'check'.if: "), run["error"]
