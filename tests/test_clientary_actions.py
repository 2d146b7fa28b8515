"""Clientary actions: each runs in `clientary-xero test-workflow` on the sandbox (happy path and
validation failures), and no create is ever sent twice when the first try's outcome is unknown."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.connectors.base import registry
from clientary_xero.connectors.clientary.actions import marker
from clientary_xero.engine.runner import replay
from clientary_xero.local.cli import main
from clientary_xero.settings import reset_settings
from clientary_xero.storage.queue import StepQueue
from clientary_xero.storage.state import StateStore
from clientary_xero.usecases.steps import reset_runner

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

LEAD = {"id": 2500001, "name": "Harbor Lane Bakery", "city": "Portland", "country": "US"}
ESTIMATE = {
    "id": 8100001,
    "number": "E-17",
    "date": "2024/03/10",
    "currency_code": "USD",
    "total_cost": 1200,
    "estimate_items": [{"title": "Design", "quantity": 8, "price": 150}],
}
PROJECT = {"id": 300001, "name": "Website relaunch", "status": 1, "rate": 120, "currency_code": "USD"}
EXPENSE = {"id": 5000001, "amount": "42.50", "description": "", "incurred_on": "2024/03/02"}
INVOICE = {
    "id": 9540001,
    "number": "1001",
    "date": "2024/03/01",
    "due_date": "2024/03/31",
    "currency_code": "USD",
    "status": 1,
    "total_cost": 1500,
    "invoice_items": [{"id": 1, "title": "Build", "quantity": 1, "price": 1500}],
    "payments": [],
}


def run_cli(
    tmp_path: Path, workflow: Path | str, record: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, list[dict[str, Any]]]:
    if isinstance(workflow, str):
        path = tmp_path / "workflow.yaml"
        path.write_text(workflow)
        workflow = path
    event = tmp_path / "event.json"
    event.write_text(json.dumps(record))
    recording = tmp_path / "requests.jsonl"
    code = main(["test-workflow", str(workflow), "--event", str(event), "--record", str(recording)])
    out = capsys.readouterr().out
    requests = [json.loads(line) for line in recording.read_text().splitlines() if line.strip()]
    return code, out, requests


def step_output(out: str, step: str) -> dict[str, Any]:
    """The JSON printed as ``output:`` under ``step <id>:`` by test-workflow."""
    block = out.split(f"  step {step}: ", 1)[1]
    text = block.split("    output: ", 1)[1]
    depth, end = 0, 0
    for i, ch in enumerate(text):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            end = i + 1
            break
    return json.loads(text[:end])  # type: ignore[no-any-return]


def writes(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["method"] in ("POST", "PUT") and "clientary.com" in r["url"]]


def test_all_six_actions_are_registered_for_the_clientary_queue() -> None:
    actions = {name: spec for name, spec in registry().items() if name.startswith("clientary.")}
    assert set(actions) == {
        "clientary.create_client",
        "clientary.create_expense",
        "clientary.update_expense",
        "clientary.create_task",
        "clientary.create_time_entry",
        "clientary.create_invoice_payment",
    }
    assert {spec.app for spec in actions.values()} == {"clientary"}


# ----------------------------------------------------------------------------------- happy paths
def test_create_client_with_a_contact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, requests = run_cli(tmp_path, EXAMPLES / "clientary-lead-to-client.yaml", LEAD, capsys)
    assert code == 0, out
    client = step_output(out, "client")
    assert client["name"] == "Harbor Lane Bakery" and client["created"] is True
    assert client["contact"]["email"] == "accounts+2500001@example.com"
    (post_client, post_contact) = writes(requests)
    assert post_client["url"].endswith("/api/v2/clients") and set(post_client["json"]) == {"client"}
    assert post_client["json"]["client"]["description"].startswith("From lead 2500001\n[cx:")
    assert post_contact["url"].endswith(f"/api/v2/clients/{client['id']}/contacts")
    assert set(post_contact["json"]) == {"client_user"}


def test_create_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, requests = run_cli(tmp_path, EXAMPLES / "clientary-estimate-follow-up.yaml", ESTIMATE, capsys)
    assert code == 0, out
    task = step_output(out, "task")
    assert task["title"] == "Follow up estimate E-17" and task["due_date"] == "2024-03-17"
    (post,) = writes(requests)
    assert post["url"].endswith("/api/v2/tasks") and set(post["json"]) == {"task"}


def test_create_time_entry_and_expense(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, requests = run_cli(tmp_path, EXAMPLES / "clientary-project-kickoff.yaml", PROJECT, capsys)
    assert code == 0, out
    entry, expense = step_output(out, "kickoff"), step_output(out, "setup")
    assert entry["hours"] == 1.5 and entry["cost"] == 180.0 and entry["billed"] is False
    assert entry["project_id"] == PROJECT["id"]
    assert expense["amount"] == 49.9 and expense["project_id"] == PROJECT["id"]
    post_hours, post_expense = writes(requests)
    assert post_hours["url"].endswith(f"/api/v2/projects/{PROJECT['id']}/hours")
    assert set(post_hours["json"]) == {"project_item"}  # Clientary's documented wrapper for hours
    assert post_expense["url"].endswith("/api/v2/expenses") and set(post_expense["json"]) == {"expense"}


def test_update_expense(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, requests = run_cli(tmp_path, EXAMPLES / "clientary-expense-tidy.yaml", EXPENSE, capsys)
    assert code == 0, out
    updated = step_output(out, "update")
    assert updated["description"] == "Expense of 2024-03-02" and updated["amount"] == 42.5
    (put,) = writes(requests)
    assert put["method"] == "PUT" and put["url"].endswith("/api/v2/expenses/5000001")
    assert put["json"] == {"expense": {"description": "Expense of 2024-03-02"}}


def test_create_invoice_payment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, requests = run_cli(tmp_path, EXAMPLES / "clientary-invoice-deposit.yaml", INVOICE, capsys)
    assert code == 0, out
    payment = step_output(out, "deposit")
    assert payment["amount"] == 150.0 and payment["invoice_id"] == INVOICE["id"]
    assert payment["received_on"] == "2024-03-01" and payment["note"].startswith("Deposit (10 %)\n[cx:")
    (post,) = writes(requests)
    assert post["url"].endswith(f"/api/v2/invoices/{INVOICE['id']}/payments")
    assert set(post["json"]) == {"payment"}


def test_create_invoice_payment_by_invoice_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workflow = """
id: by-number
trigger: clientary.new_invoice
steps:
  - id: pay
    action: clientary.create_invoice_payment
    input: { invoice_number: "{% invoice.number %}", amount: 1500 }
"""
    code, out, _ = run_cli(tmp_path, workflow, INVOICE, capsys)
    assert code == 0, out
    assert step_output(out, "pay")["invoice_id"] == INVOICE["id"]


# ---------------------------------------------------------------------------- validation failures
FAILURES = [
    pytest.param(
        "clientary.new_lead",
        LEAD,
        [
            ("a", "clientary.create_client", {"name": "One", "number": "C-1"}),
            ("b", "clientary.create_client", {"name": "Two", "number": "C-1"}),
        ],
        "Clientary rejected the data (422) (POST /clients): number has already been taken",
        id="create_client-duplicate-number",
    ),
    pytest.param(
        "clientary.new_lead",
        LEAD,
        [("a", "clientary.create_client", {"name": "   "})],
        "input.name: String should have at least 1 character",
        id="create_client-blank-name",
    ),
    pytest.param(
        "clientary.new_project",
        PROJECT,
        [("a", "clientary.create_expense", {"amount": 10, "client_id": 4242})],
        "Clientary rejected the data (422) (POST /expenses): client must exist",
        id="create_expense-unknown-client",
    ),
    pytest.param(
        "clientary.new_project",
        PROJECT,
        [("a", "clientary.create_expense", {"amount": "{% -3 %}"})],  # literal -3: see validate test
        "input.amount: Input should be greater than 0",
        id="create_expense-negative",
    ),
    pytest.param(
        "clientary.new_expense",
        EXPENSE,
        [("a", "clientary.update_expense", {"id": "{% expense.id %}"})],
        "give at least one field to change besides id",
        id="update_expense-nothing",
    ),
    pytest.param(
        "clientary.new_expense",
        EXPENSE,
        [("a", "clientary.update_expense", {"id": 77, "amount": 5})],
        "not found in Clientary (404) (PUT /expenses/77)",
        id="update_expense-unknown",
    ),
    pytest.param(
        "clientary.new_estimate",
        ESTIMATE,
        [("a", "clientary.create_task", {"title": "Call", "assignee_id": 999})],
        "Clientary rejected the data (422) (POST /tasks): assignee must exist",
        id="create_task-unknown-assignee",
    ),
    pytest.param(
        "clientary.new_project",
        PROJECT,
        [
            (
                "a",
                "clientary.create_time_entry",
                {"project_id": "{% project.id %}", "title": "Work", "hours": "{% 0 %}"},
            )
        ],
        "input.hours: Input should be greater than 0",
        id="create_time_entry-zero-hours",
    ),
    pytest.param(
        "clientary.new_project",
        PROJECT,
        [("a", "clientary.create_time_entry", {"project_id": 1, "title": "Work", "hours": 2})],
        "not found in Clientary (404) (POST /projects/1/hours)",
        id="create_time_entry-unknown-project",
    ),
    pytest.param(
        "clientary.new_invoice",
        INVOICE,
        [("a", "clientary.create_invoice_payment", {"invoice_number": "X-9", "amount": 5})],
        "no Clientary invoice is numbered 'X-9'",
        id="create_invoice_payment-unknown-number",
    ),
    pytest.param(
        "clientary.new_invoice",
        INVOICE,
        [("a", "clientary.create_invoice_payment", {"amount": 5})],
        "give the invoice's invoice_id or invoice_number",
        id="create_invoice_payment-no-invoice",
    ),
]


@pytest.mark.parametrize(("trigger", "record", "steps", "message"), FAILURES)
def test_validation_failures_fail_the_run_with_the_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trigger: str,
    record: dict[str, Any],
    steps: list[tuple[str, str, dict[str, Any]]],
    message: str,
) -> None:
    document = {
        "id": "fails",
        "trigger": trigger,
        "steps": [{"id": sid, "action": action, "input": data} for sid, action, data in steps],
    }
    code, out, requests = run_cli(tmp_path, json.dumps(document), record, capsys)
    assert code == 1
    assert "→  FAILED" in out and message in out, out
    if message.startswith("input.") or message.startswith("give"):
        assert writes(requests) == []  # refused before any call


def test_invalid_literal_inputs_are_refused_by_validate_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Written out in full, a value is checked on validate (and on save); from an expression, when
    # the step renders it (the test above).
    path = tmp_path / "literal.yaml"
    path.write_text(
        "id: literal\ntrigger: clientary.new_project\nsteps:\n"
        "  - { id: a, action: clientary.create_expense, input: { amount: -3 } }\n"
        "  - { id: b, action: clientary.create_time_entry,"
        " input: { project_id: '{% project.id %}', title: Work, hours: 0 } }\n"
    )
    assert main(["workflows", "validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "steps[0] (step 'a').input.amount: Input should be greater than 0" in out
    assert "steps[1] (step 'b').input.hours: Input should be greater than 0" in out


def test_plan_limits_fail_the_run_with_clientarys_message(local_env: Any) -> None:
    env = local_env
    env.clientary.plan_limits["clients"] = 1  # the invoice's client is the one the plan allows
    run = _run(env, "clientary.create_client", {"name": "One too many"})
    assert run["status"] == "FAILED"
    assert run["error"]["message"] == (
        "the Clientary plan's limits are reached (426) (POST /clients): must meet plan limits"
    )


# ---------------------------------------------------------------------------------- never resend
def _run(
    env: Any,
    action: str,
    data: dict[str, Any],
    *,
    before_drain: Callable[[], None] | None = None,
    **drain: Any,
) -> dict[str, Any]:
    """Push a new invoice through a one-step workflow running ``action``; drain; the run.

    ``before_drain`` runs after the push (whose re-read of the invoice is a request too), before
    the step does: the place to make the sandbox fail the step's own requests."""
    env.put_workflow(
        {
            "id": "one",
            "trigger": "clientary.new_invoice",
            "steps": [{"id": "s", "action": action, "input": data}],
        }
    )
    customer = env.clientary.seed_client("Acme")
    invoice = env.clientary.add_invoice(customer["id"], [{"title": "W", "quantity": 1, "price": 300}])
    response = env.push("clientary.new_invoice", invoice["id"])
    assert response["statusCode"] == 202
    if before_drain:
        before_drain()
    env.drain(**drain)
    (run,) = env.state.list_runs()
    return dict(run)


CREATES: list[tuple[str, dict[str, Any], Callable[[Any], list[dict[str, Any]]]]] = [
    (
        "clientary.create_client",
        {"name": "New Co"},
        lambda sb: [c for c in sb.all_records("clients") if c["name"] == "New Co"],
    ),
    ("clientary.create_expense", {"amount": 12}, lambda sb: sb.all_records("expenses")),
    ("clientary.create_task", {"title": "Chase"}, lambda sb: sb.all_records("tasks")),
    (
        "clientary.create_time_entry",
        {"project_id": "{% $number($string(invoice.client_id)) %}", "title": "Work", "hours": 2},
        lambda sb: sb.all_records("hours"),
    ),
    (
        "clientary.create_invoice_payment",
        {"invoice_id": "{% invoice.id %}", "amount": 100},
        lambda sb: sb.all_records("payments"),
    ),
]


@pytest.mark.parametrize("lost", [None, 502], ids=["timeout", "502"])
@pytest.mark.parametrize(("action", "data", "made"), CREATES, ids=[c[0] for c in CREATES])
def test_a_create_whose_answer_was_lost_is_found_not_sent_again(
    local_env: Any,
    action: str,
    data: dict[str, Any],
    made: Callable[[Any], list[dict[str, Any]]],
    lost: int | None,
) -> None:
    env = local_env
    if action == "clientary.create_time_entry":
        # The project id is the invoice's client id here: make a project with that id.
        env.clientary.load_record("projects", {"id": 2_120_001, "name": "P", "status": 1, "rate": 100})
    # Clientary carries out the first POST, but the answer never arrives (time-out or 502).
    env.clientary.lose_next_answer(status=lost)
    run = _run(env, action, data)
    assert run["status"] == "SUCCEEDED", run.get("error")
    records = made(env.clientary)
    assert len(records) == 1, records  # one record, not two
    (step,) = env.state.get_steps(run["run_id"])
    assert step["attempts"] == 2 and step["output"]["created"] is False
    assert step["output"]["id"] == records[0]["id"]
    posts = [p for m, p in env.clientary.requests if m == "POST"]
    assert len(posts) == 1, posts


def test_a_crash_after_the_create_is_found_through_the_id_link(
    local_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = local_env
    real_finish = StateStore.finish_step
    crashed: list[str] = []

    def crash_once(self: StateStore, run_id: str, step_id: str, **kwargs: Any) -> None:
        if kwargs.get("status") == "SUCCEEDED" and not crashed:
            crashed.append(step_id)
            raise RuntimeError("the Lambda died after Clientary answered")
        real_finish(self, run_id, step_id, **kwargs)

    monkeypatch.setattr(StateStore, "finish_step", crash_once)
    monkeypatch.setenv("STEP_LEASE_SECONDS", "1")  # the dead worker's lease expires quickly here
    reset_settings()
    reset_runner()
    run = _run(
        env,
        "clientary.create_task",
        {"title": "Once"},
        on_batch=lambda b: time.sleep(1.1) if b["failed"] else None,
    )
    assert crashed == ["s"] and run["status"] == "SUCCEEDED"
    (task,) = env.clientary.all_records("tasks")
    (step,) = env.state.get_steps(run["run_id"])
    assert step["output"]["id"] == task["id"] and step["output"]["created"] is False
    # Found through the link (a GET of that task), not by searching the task list.
    assert ("GET", f"/api/v2/tasks/{task['id']}") in env.clientary.requests


def test_a_rate_limited_create_waits_and_then_creates_once(local_env: Any) -> None:
    env = local_env
    env.put_workflow(
        {
            "id": "one",
            "trigger": "clientary.new_invoice",
            "steps": [{"id": "s", "action": "clientary.create_task", "input": {"title": "T"}}],
        }
    )
    customer = env.clientary.seed_client("Acme")
    invoice = env.clientary.add_invoice(customer["id"], [{"title": "W", "quantity": 1, "price": 300}])
    assert env.push("clientary.new_invoice", invoice["id"])["statusCode"] == 202
    env.clientary.fail_next(429, headers={"Retry-After": "7"})  # the step's POST is refused
    env.drain()
    (run,) = env.state.list_runs()
    assert run["status"] == "SUCCEEDED"
    assert len(env.clientary.all_records("tasks")) == 1
    (step,) = env.state.get_steps(run["run_id"])
    assert step["attempts"] == 2


EDITED: dict[str, tuple[str, str, Any, str]] = {
    # action: (collection, field someone changes between the tries, its new value, as shown)
    "clientary.create_client": ("clients", "name", "Renamed Co", "'Renamed Co'"),
    "clientary.create_expense": ("expenses", "amount", "99.00", "99.00"),
    "clientary.create_task": ("tasks", "title", "Something else", "'Something else'"),
    "clientary.create_time_entry": ("hours", "hours", "5.0", "5.00"),
    "clientary.create_invoice_payment": ("payments", "amount", "90.00", "90.00"),
}


@pytest.mark.parametrize(("action", "data"), [c[:2] for c in CREATES], ids=[c[0] for c in CREATES])
def test_a_record_with_the_marker_that_is_no_longer_what_the_step_writes_fails_the_step(
    local_env: Any, action: str, data: dict[str, Any]
) -> None:
    """Given the first try's create was carried out but its answer lost, and the record's key field
    changed before the retry (or the marker was copied onto another record), when the retry finds
    the marker, then it does not adopt the record: the step fails with what differs."""
    env = local_env
    if action == "clientary.create_time_entry":
        env.clientary.load_record("projects", {"id": 2_120_001, "name": "P", "status": 1, "rate": 100})
    collection, field, value, shown = EDITED[action]
    env.clientary.lose_next_answer()

    def marked(records: Any) -> list[dict[str, Any]]:
        return [r for r in records if "[cx:" in str(r.get("description") or r.get("note") or "")]

    def edit_after_the_first_try(batch: dict[str, Any]) -> None:
        if batch["failed"]:
            with env.clientary._lock:
                invoices = env.clientary._records["invoices"].values()
                embedded = [p for i in invoices for p in i.get("payments") or []]  # an invoice's copy
                for record in marked([*env.clientary._records[collection].values(), *embedded]):
                    record[field] = value

    run = _run(env, action, data, on_batch=edit_after_the_first_try)
    assert run["status"] == "FAILED"
    message = run["error"]["message"]
    assert message.startswith("Clientary already has "), message
    assert f"({field} {shown}); this step would write {field} " in message
    assert "— not adopted: it carries this step's retry marker" in message
    assert len(marked(env.clientary.all_records(collection))) == 1  # nothing created a second time
    assert len([p for m, p in env.clientary.requests if m == "POST"]) == 1


@pytest.mark.parametrize(("action", "data", "made"), CREATES, ids=[c[0] for c in CREATES])
def test_a_replay_after_a_lost_last_attempt_finds_the_record_instead_of_creating_it_again(
    local_env: Any,
    action: str,
    data: dict[str, Any],
    made: Callable[[Any], list[dict[str, Any]]],
) -> None:
    """Given the last attempt's create was carried out but its answer was lost (the run FAILED),
    when the user replays the run (a new generation, a new Xero Idempotency-Key),
    then the replay finds the record the failed generation made and creates nothing."""
    env = local_env
    if action == "clientary.create_time_entry":
        env.clientary.load_record("projects", {"id": 2_120_001, "name": "P", "status": 1, "rate": 100})

    # Attempt 1: the POST gets a 502 (nothing written); attempt 2: the marker search gets a 502;
    # attempt 3, the last: Clientary writes the record, the answer is lost → the run fails.
    def fail_every_attempt() -> None:
        env.clientary.fail_next(502, count=2)
        env.clientary.lose_next_answer(status=502)

    run = _run(env, action, data, before_drain=fail_every_attempt)
    assert run["status"] == "FAILED"
    (made_by_failed_run,) = made(env.clientary)

    replay(env.state, StepQueue(), run["run_id"])  # what `clientary-xero runs replay` does
    env.drain()
    (run,) = env.state.list_runs()
    assert run["status"] == "SUCCEEDED", run.get("error")
    assert made(env.clientary) == [made_by_failed_run]
    (step,) = env.state.get_steps(run["run_id"])
    assert step["output"]["id"] == made_by_failed_run["id"] and step["output"]["created"] is False


def test_the_marker_is_stable_per_step_and_short() -> None:
    # The marker is derived from the effect key (run id + step id), never from the replay
    # generation, so every try and every replay of a step carries the same one.
    assert marker("r1:s") == marker("r1:s") != marker("r1:t")
    assert len(marker("anything")) == len("[cx:") + 12 + 1
    assert json.dumps(marker("x")).isascii()


def test_the_clientary_action_lambda_handles_the_sample_sqs_event(local_env: Any) -> None:
    from clientary_xero.local.environment import FakeLambdaContext, load_handler

    event = json.loads((ROOT / "events" / "sqs_clientary_step.json").read_text())
    local_env.use_action_function("clientary")  # functions/step_actions as ClientaryActionFunction
    module = load_handler("step_actions")
    # The sample's run does not exist here: the step is skipped, and the message is not failed.
    assert module.lambda_handler(event, FakeLambdaContext("step_actions")) == {"batchItemFailures": []}


def test_the_readme_shows_every_clientary_action_and_its_project_workflow_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Clientary actions") :]
    section = section[: section.index("\n## ", 1)]
    clientary_actions = {name for name in registry() if name.startswith("clientary.")}
    assert {name for name in clientary_actions if f"action: {name}" in section} == clientary_actions
    block = section[section.index("```yaml\n- id: task") + len("```yaml\n") :]
    block = block[: block.index("```")]
    workflow = "id: readme-project\ntrigger: clientary.new_project\nsteps:\n" + "".join(
        f"  {line}\n" for line in block.splitlines()
    )
    code, out, requests = run_cli(
        tmp_path, workflow, json.loads((EXAMPLES / "events" / "project.json").read_text()), capsys
    )
    assert code == 0, out
    writes = [
        (r["method"], r["url"].split("/api/v2")[1].split("?")[0]) for r in requests if r["method"] != "GET"
    ]
    assert writes[:3] == [("POST", "/tasks"), ("POST", "/projects/300001/hours"), ("POST", "/expenses")]
    assert len(writes) == 4 and writes[3][0] == "PUT" and writes[3][1].startswith("/expenses/")
    assert "Venue hire: Website relaunch" in out  # the update's description, rendered and sent


@pytest.mark.parametrize("served", ["/tasks", "/task"])
def test_a_task_is_created_whichever_spelling_the_account_serves(local_env: Any, served: str) -> None:
    # Clientary's docs say POST /task; clients in the wild use POST /tasks.
    env = local_env
    env.clientary.task_create_path = served
    run = _run(env, "clientary.create_task", {"title": "Chase"})
    assert run["status"] == "SUCCEEDED", run.get("error")
    (task,) = env.clientary.all_records("tasks")
    assert task["title"] == "Chase"
    posts = [path for method, path in env.clientary.requests if method == "POST"]
    assert posts == (["/api/v2/tasks"] if served == "/tasks" else ["/api/v2/tasks", "/api/v2/task"])
