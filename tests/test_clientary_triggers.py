"""Every Clientary trigger: new records delivered once, idle polls cheap, push and poll run once.

The pollers run against the Clientary sandbox (one fake clock for both) with their cursor in a
moto State table; the push/poll dedupe runs through the trigger Lambda in the local runner.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from clientary_xero.connectors.clientary.pollers import PollBatch
from clientary_xero.connectors.clientary.triggers import SOURCES
from clientary_xero.local.clientary_sandbox import ClientarySandbox
from clientary_xero.workflows.triggers import TRIGGERS
from tests.clientary_fixtures import FakeClock, moto_aws, sandbox_and_client, state_store

Maker = Callable[["Env", int], dict[str, Any]]


def _client(env: Env, n: int) -> dict[str, Any]:
    return env.sandbox.seed_client(f"Client {n}")


def _lead(env: Env, n: int) -> dict[str, Any]:
    return env.sandbox.add_record("leads", name=f"Lead {n}")


def _project(env: Env, n: int) -> dict[str, Any]:
    # Every other project is completed: only filter=all lists those.
    return env.sandbox.add_record(
        "projects", name=f"Project {n}", client_id=env.customer["id"], rate=120, status=2 if n % 2 else 1
    )


def _estimate(env: Env, n: int) -> dict[str, Any]:
    return env.sandbox.add_record(
        "estimates",
        date="2024-03-10",
        currency_code="USD",
        client_id=env.customer["id"],
        estimate_items_attributes=[{"title": "Design", "quantity": 2, "price": 50 + n}],
    )


def _task(env: Env, n: int) -> dict[str, Any]:
    return env.sandbox.add_record("tasks", title=f"Task {n}")


def _payment(env: Env, n: int) -> dict[str, Any]:
    invoice = env.sandbox.add_invoice(env.customer["id"], [{"title": "Work", "quantity": 1, "price": 500}])
    # Back-dated receipts: the default order (received_on) would hide them; sort=created_at does not.
    return env.sandbox.add_payment(invoice["id"], 10 + n, received_on="2023-01-0" + str(1 + n % 9))


def _expense(env: Env, n: int) -> dict[str, Any]:
    # Entered today for a receipt from years ago: outside the default (fiscal-year) window.
    return env.sandbox.add_record("expenses", amount=12.5 + n, incurred_on=f"20{10 + n % 10}-06-30")


def _staff(env: Env, n: int) -> dict[str, Any]:
    return env.sandbox.seed_staff(f"Staff {n}", email=f"s{n}@example.com")


MAKERS: dict[str, Maker] = {
    "clientary.new_client": _client,
    "clientary.new_lead": _lead,
    "clientary.new_project": _project,
    "clientary.new_estimate": _estimate,
    "clientary.new_task": _task,
    "clientary.new_payment": _payment,
    "clientary.new_expense": _expense,
    "clientary.new_staff": _staff,
}
POLLED = sorted(MAKERS)


class Env:
    def __init__(self, trigger: str) -> None:
        self.trigger = trigger
        self.clock = FakeClock()
        self.sandbox, self.client = sandbox_and_client(self.clock)
        self.state = state_store()
        self.customer = self.sandbox.seed_client("Harbor Lane Bakery")

    def make(self, n: int) -> dict[str, Any]:
        record = MAKERS[self.trigger](self, n)
        self.clock.advance(seconds=1)
        return record

    def poll(self) -> PollBatch:
        return SOURCES[self.trigger].poll(self.client, self.state, now=self.clock())

    def poll_and_commit(self) -> list[int]:
        batch = self.poll()
        batch.commit()
        return [r["id"] for r in batch]


@pytest.fixture(params=POLLED)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    with moto_aws():
        yield Env(request.param)


def test_every_clientary_trigger_has_a_source_and_a_record_name() -> None:
    clientary = {name for name, spec in TRIGGERS.items() if spec.source == "clientary"}
    assert clientary == set(SOURCES)
    assert {TRIGGERS[t].resource for t in clientary} == {
        "invoice", "expense", "project", "client", "estimate", "lead", "task", "payment", "staff", "contract",
    }  # fmt: skip
    assert TRIGGERS["clientary.new_contract"].delivery == "push"
    assert "no contracts endpoint" in TRIGGERS["clientary.new_contract"].description


def test_records_created_between_two_polls_are_each_delivered_once(env: Env) -> None:
    # Given history before the first poll
    history = [env.make(n)["id"] for n in range(3)]
    env.clock.advance(hours=3)
    first = env.poll()
    assert list(first) == [] and first.first_poll
    first.commit()

    # When records are created between two polls
    env.clock.advance(minutes=5)
    made = [env.make(n)["id"] for n in range(3, 6)]
    env.clock.advance(minutes=5)

    # Then each is delivered once, oldest first, normalised, and the history never is
    batch = env.poll()
    assert [r["id"] for r in batch] == made
    assert not set(history) & {r["id"] for r in batch}
    for record in batch:
        assert all(not key.endswith("?") or key[:-1] in record for key in record)
        assert record["created_at"].endswith(("+00:00", "-08:00"))
    batch.commit()
    env.clock.advance(minutes=15)
    assert env.poll_and_commit() == []
    later = env.make(9)["id"]
    env.clock.advance(minutes=15)
    assert env.poll_and_commit() == [later]


def test_an_idle_poll_makes_one_request_and_writes_nothing(env: Env) -> None:
    env.make(0)
    env.poll().commit()
    env.clock.advance(minutes=5)
    env.make(1)
    env.clock.advance(minutes=5)
    assert len(env.poll_and_commit()) == 1
    env.clock.advance(minutes=15)
    env.poll().commit()

    env.clock.advance(minutes=15)
    before = env.sandbox.request_count
    batch = env.poll()
    assert env.sandbox.request_count - before == 1 == batch.requests
    assert list(batch) == []
    batch.commit()


def test_a_poll_that_dies_before_commit_redelivers(env: Env) -> None:
    env.poll().commit()
    env.clock.advance(minutes=5)
    made = [env.make(1)["id"], env.make(2)["id"]]
    assert [r["id"] for r in env.poll()] == made  # no commit: the Lambda died
    env.clock.advance(minutes=15)
    assert env.poll_and_commit() == made
    assert env.poll_and_commit() == []


# ------------------------------------------------------------------------------ resource specifics
@pytest.fixture
def plain() -> Iterator[tuple[FakeClock, ClientarySandbox, Any]]:
    with moto_aws():
        clock = FakeClock()
        sandbox, client = sandbox_and_client(clock)
        yield clock, sandbox, client


def _poll(trigger: str, client: Any, clock: FakeClock) -> PollBatch:
    batch = SOURCES[trigger].poll(client, state_store(), now=clock())
    batch.commit()
    return batch


@pytest.mark.parametrize(
    ("trigger", "resource", "fields"),
    [
        ("clientary.new_task", "tasks", {"title": "T"}),  # oldest first in the sandbox
        ("clientary.new_lead", "leads", {"name": "L"}),  # newest first (documented)
    ],
)
def test_many_pages_in_either_order_and_an_idle_poll_of_one_request(
    plain: tuple[FakeClock, ClientarySandbox, Any], trigger: str, resource: str, fields: dict[str, Any]
) -> None:
    clock, sandbox, client = plain
    for _ in range(250):
        sandbox.add_record(resource, **fields)
    clock.advance(hours=2)
    _poll(trigger, client, clock)
    clock.advance(minutes=1)
    made = [sandbox.add_record(resource, **fields)["id"] for _ in range(130)]
    clock.advance(minutes=1)
    batch = _poll(trigger, client, clock)
    assert [r["id"] for r in batch] == made
    for _ in range(5):  # the burst stays inside the one-hour overlap for a while
        clock.advance(minutes=15)
        assert list(_poll(trigger, client, clock)) == []
    clock.advance(minutes=15)
    idle = _poll(trigger, client, clock)
    assert list(idle) == [] and idle.requests == 1


def test_an_oldest_first_list_that_shrank_still_yields_its_new_records(
    plain: tuple[FakeClock, ClientarySandbox, Any],
) -> None:
    clock, sandbox, client = plain
    old = [sandbox.add_record("tasks", title="old")["id"] for _ in range(230)]
    clock.advance(hours=2)
    _poll("clientary.new_task", client, clock)
    clock.advance(hours=2)
    _poll("clientary.new_task", client, clock)  # remembers: oldest first, last page 3
    for task_id in old[:150]:
        sandbox.delete_record("tasks", task_id)  # 80 left: the list is one page now
    clock.advance(minutes=1)
    made = [sandbox.add_record("tasks", title="new")["id"] for _ in range(3)]
    clock.advance(minutes=1)
    assert [r["id"] for r in _poll("clientary.new_task", client, clock)] == made


class ByName:
    """A list in neither creation order (sorted by name): the poller must read every page."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = params or {}
        size, page = int(params["page_size"]), int(params["page"])
        ordered = sorted(self.records, key=lambda r: r["title"])
        return {
            "page_count": -(-len(ordered) // size),
            "total_count": len(ordered),
            "tasks": ordered[(page - 1) * size : page * size],
        }


def test_a_list_in_no_creation_order_is_read_whole(plain: tuple[FakeClock, ClientarySandbox, Any]) -> None:
    clock, _, _ = plain
    now = clock()
    records = [
        {"id": i, "title": f"{(i * 7919) % 1000:04d}", "created_at": (now - timedelta(days=3)).isoformat()}
        for i in range(1, 251)
    ]
    source = ByName(records)
    _poll("clientary.new_task", source, clock)
    records.append({"id": 999, "title": "9999", "created_at": (now + timedelta(minutes=1)).isoformat()})
    records.append({"id": 998, "title": "0000", "created_at": (now + timedelta(minutes=1)).isoformat()})
    clock.advance(minutes=2)
    batch = _poll("clientary.new_task", source, clock)
    assert sorted(r["id"] for r in batch) == [998, 999] and batch.requests == 3


def test_projects_are_polled_with_filter_all(plain: tuple[FakeClock, ClientarySandbox, Any]) -> None:
    clock, sandbox, client = plain
    _poll("clientary.new_project", client, clock)
    done = sandbox.add_record("projects", name="Finished", status=2, rate=90)
    clock.advance(minutes=1)
    assert [r["id"] for r in _poll("clientary.new_project", client, clock)] == [done["id"]]
    assert "filter=all" in sandbox.requests[-1][1]
    # Clientary's default list would not have shown it:
    assert client.get("/projects")["projects"] == []


def test_an_expense_entered_late_is_found_by_the_wide_window(
    plain: tuple[FakeClock, ClientarySandbox, Any],
) -> None:
    clock, sandbox, client = plain
    _poll("clientary.new_expense", client, clock)
    late = sandbox.add_record("expenses", amount=80, incurred_on="2019-02-03", description="Old receipt")
    future = sandbox.add_record(
        "expenses", amount=5, incurred_on=(clock().date() + timedelta(days=40)).isoformat()
    )
    clock.advance(minutes=1)
    batch = _poll("clientary.new_expense", client, clock)
    assert [r["id"] for r in batch] == [late["id"], future["id"]]
    assert batch[0]["incurred_on"] == "2019-02-03" and batch[0]["amount"] == 80.0
    assert batch.requests == 1
    # Clientary's default window (the fiscal year) would have missed the late one:
    assert [e["id"] for e in client.get("/expenses")["expenses"]] == [future["id"]]


def test_normalised_shapes(plain: tuple[FakeClock, ClientarySandbox, Any]) -> None:
    _, sandbox, client = plain
    customer = sandbox.seed_client("Acme")
    project = sandbox.add_record("projects", name="Site", client_id=customer["id"], rate="150.50")
    sandbox.add_record("hours", project_id=project["id"], title="Setup", hours=2)
    fetched = SOURCES["clientary.new_project"].fetch(client, str(project["id"]))  # type: ignore[misc]
    assert fetched["client_id"] == customer["id"] and fetched["status_name"] == "active"
    assert fetched["rate"] == 150.5 and fetched["worked_hours"] == 2.0
    task = sandbox.add_record("tasks", title="Call", due_date="2024/03/20")
    fetched = SOURCES["clientary.new_task"].fetch(client, str(task["id"]))  # type: ignore[misc]
    assert fetched["due_date"] == "2024-03-20" and fetched["created_at"] == "2024-03-10T18:00:00+00:00"
    estimate = sandbox.add_record(
        "estimates",
        date="2024/03/01",
        currency_code="EUR",
        estimate_items_attributes=[{"title": "A", "quantity": 3, "price": "9.99"}],
    )
    fetched = SOURCES["clientary.new_estimate"].fetch(client, str(estimate["id"]))  # type: ignore[misc]
    assert fetched["total"] == 29.97 and fetched["estimate_items"][0]["amount"] == 29.97
    assert fetched["status_name"] == "draft" and fetched["date"] == "2024-03-01"


def test_a_payment_is_reread_from_the_list(plain: tuple[FakeClock, ClientarySandbox, Any]) -> None:
    _, sandbox, client = plain
    customer = sandbox.seed_client("Acme")
    invoice = sandbox.add_invoice(customer["id"], [{"title": "W", "quantity": 1, "price": 100}])
    payment = sandbox.add_payment(invoice["id"], 40, note="Cheque")
    fetched = SOURCES["clientary.new_payment"].fetch(client, str(payment["id"]))  # type: ignore[misc]
    assert fetched["amount"] == 40.0 and fetched["invoice_id"] == invoice["id"]
    assert fetched["received_on"] == "2024-03-10"
    from clientary_xero.connectors.clientary.client import ClientaryNotFound

    with pytest.raises(ClientaryNotFound):
        SOURCES["clientary.new_payment"].fetch(client, "123")  # type: ignore[misc]


def test_backfill_lists_history_since_a_date(plain: tuple[FakeClock, ClientarySandbox, Any]) -> None:
    clock, sandbox, client = plain
    old = sandbox.add_record("leads", name="Old")
    clock.advance(days=10)
    recent = [sandbox.add_record("leads", name=f"R{n}")["id"] for n in range(3)]
    since = clock() - timedelta(days=1)
    found = SOURCES["clientary.new_lead"].backfill(client, since=since)
    assert [r["id"] for r in found] == recent and old["id"] not in recent


class ClientsWithoutCreatedAt:
    """The real client, but clients as Clientary's docs show them: no ``created_at``/``updated_at``."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get(path, params)
        for record in body.get("clients") or []:
            record.pop("created_at", None)
            record.pop("updated_at", None)
        return body


def test_without_created_at_an_old_client_edited_after_a_quiet_first_poll_is_not_new(
    plain: tuple[FakeClock, ClientarySandbox, Any],
) -> None:
    clock, sandbox, client = plain
    source, state = ClientsWithoutCreatedAt(client), state_store()
    old = sandbox.seed_client("Old Customer Ltd")
    clock.advance(days=30)
    SOURCES["clientary.new_client"].poll(source, state, now=clock()).commit()  # nothing updated lately

    clock.advance(minutes=15)
    sandbox.touch("clients", old["id"], city="Portland")
    created = sandbox.seed_client("New Customer Ltd")
    clock.advance(minutes=1)
    batch = SOURCES["clientary.new_client"].poll(source, state, now=clock())
    assert [r["id"] for r in batch] == [created["id"]]


def test_contract_is_push_only() -> None:
    source = SOURCES["clientary.new_contract"]
    assert not source.pollable and source.push_only
    with pytest.raises(ValueError, match="push-only"):
        source.poll(object(), object())
    with pytest.raises(ValueError, match="push-only"):
        source.fetch(object(), "7")
    record = source.normalize({"id": 7, "signed_on": "2024/03/01", "client": {"id": 5}, "value": "10.5"})
    assert record["client_id"] == 5


# ------------------------------------------------------------------------------ through the Lambdas
TASK_WORKFLOW = {
    "id": "to-task",
    "steps": [
        {
            "id": "task",
            "action": "clientary.create_task",
            "input": {"title": "{% 'New: ' & $string(trigger.record_id) %}"},
        }
    ],
}


POLLED = [name for name, spec in sorted(SOURCES.items()) if spec.pollable]


@pytest.mark.parametrize("trigger", [t for t in POLLED if t != "clientary.new_invoice"])
def test_a_record_seen_by_push_and_by_poll_runs_once(local_env: Any, trigger: str) -> None:
    env = local_env
    env.put_workflow({**TASK_WORKFLOW, "trigger": trigger})
    env.poll(trigger)  # first poll: records where to start
    customer = env.clientary.seed_client("Acme")
    invoice = env.clientary.add_invoice(customer["id"], [{"title": "W", "quantity": 1, "price": 100}])
    record = {
        "clientary.new_client": lambda: env.clientary.seed_client("Brand new"),
        "clientary.new_payment": lambda: env.clientary.add_payment(invoice["id"], 25),
        "clientary.new_expense": lambda: env.clientary.add_record(
            "expenses", amount=9, incurred_on="2015-01-01"
        ),
        "clientary.new_project": lambda: env.clientary.add_record("projects", name="P", rate=1, status=2),
        "clientary.new_estimate": lambda: env.clientary.add_record(
            "estimates", date="2024-03-10", currency_code="USD"
        ),
        "clientary.new_lead": lambda: env.clientary.add_record("leads", name="L"),
        "clientary.new_task": lambda: env.clientary.add_record("tasks", title="seed"),
        "clientary.new_staff": lambda: env.clientary.seed_staff("S"),
    }[trigger]()
    pushed = env.push(trigger, record["id"])
    assert pushed["statusCode"] == 202
    assert [r["created"] for r in json.loads(pushed["body"])["runs"]] == [True]
    polled = env.poll(trigger)
    # The invoice's client is new too; a new task is one (the workflow's own tasks come later).
    expected_new = 2 if trigger == "clientary.new_client" else 1
    assert polled["new_records"] == expected_new
    assert [
        r["created"] for r in polled["runs"] if r["run_id"] == json.loads(pushed["body"])["runs"][0]["run_id"]
    ] == [False]
    env.drain()
    tasks = [t for t in env.clientary.all_records("tasks") if t["title"] == f"New: {record['id']}"]
    assert len(tasks) == 1


def test_contract_push_runs_a_workflow_with_the_pushed_record(local_env: Any) -> None:
    env = local_env
    env.put_workflow(
        {
            **TASK_WORKFLOW,
            "trigger": "clientary.new_contract",
            "steps": [
                {
                    "id": "task",
                    "action": "clientary.create_task",
                    "input": {
                        "title": "{% 'Countersign ' & contract.title %}",
                        "due_date": "{% contract.start_date %}",
                    },
                }
            ],
        }
    )
    body = json.dumps({"id": 31, "title": "Retainer 2024", "start_date": "2024/04/01"}).encode()
    first = env.push("clientary.new_contract", 31, body=body)
    again = env.push("clientary.new_contract", 31, body=body)
    assert first["statusCode"] == 202 and again["statusCode"] == 202
    env.drain()
    (task,) = env.clientary.all_records("tasks")
    assert task["title"] == "Countersign Retainer 2024" and task["due_date"] == "2024/04/01"
    with pytest.raises(Exception, match="push-only"):
        env.poll("clientary.new_contract")


def test_the_first_poll_through_the_lambda_replays_no_history(local_env: Any) -> None:
    env = local_env
    env.put_workflow({**TASK_WORKFLOW, "trigger": "clientary.new_lead"})
    env.clientary.add_record("leads", name="Old lead")
    first = env.poll("clientary.new_lead")
    assert first["new_records"] == 0 and first["requests"] == 1
    idle = env.poll("clientary.new_lead")
    assert idle == {**idle, "new_records": 0, "runs": [], "requests": 1}


# ------------------------------------------------------------------------------ backfill command
def test_backfill_command_runs_history_once(local_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from clientary_xero.local.cli import main

    env = local_env
    env.put_workflow({**TASK_WORKFLOW, "trigger": "clientary.new_lead"})
    old = env.clientary.add_record("leads", name="Old lead")
    assert env.poll("clientary.new_lead")["new_records"] == 0  # the first poll replays nothing

    assert main(["backfill", "new_lead", "--since", "2000-01-01", "--dry-run"]) == 0
    assert f"  {old['id']}  created " in capsys.readouterr().out
    assert main(["backfill", "clientary.new_lead", "--since", "2000-01-01", "--yes"]) == 0
    assert "1 run(s) started, 0 record/workflow pair(s) seen before" in capsys.readouterr().out
    assert main(["backfill", "clientary.new_lead", "--since", "2000-01-01", "--yes"]) == 0
    assert "0 run(s) started, 1 record/workflow pair(s) seen before" in capsys.readouterr().out
    env.drain()
    assert [t["title"] for t in env.clientary.all_records("tasks")] == [f"New: {old['id']}"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backfill", "new_contract", "--since", "2024-01-01"], "push-only"),
        (["backfill", "xero.new_payment", "--since", "2024-01-01"], "is not a Clientary trigger"),
        (["backfill", "new_lead", "--since", "last week"], "is not a date"),
    ],
)
def test_backfill_refuses_what_it_cannot_do(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.local.cli import main

    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_test_workflow_drives_the_push_only_contract_trigger(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.local.cli import main

    workflow = tmp_path / "wf.json"
    workflow.write_text(
        json.dumps(
            {
                "id": "contract-task",
                "trigger": "clientary.new_contract",
                "steps": [
                    {"id": "t", "action": "clientary.create_task", "input": {"title": "{% contract.title %}"}}
                ],
            }
        )
    )
    event = tmp_path / "contract.json"
    event.write_text(json.dumps({"id": 12, "title": "Signed: MSA", "signed_on": "2024/03/01"}))
    assert main(["test-workflow", str(workflow), "--event", str(event)]) == 0
    out = capsys.readouterr().out
    assert "→  SUCCEEDED" in out and '"title": "Signed: MSA"' in out


def test_the_readme_lists_every_clientary_trigger_and_action() -> None:
    from pathlib import Path

    from clientary_xero.connectors.base import registry

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    triggers = readme.split("## Triggers", 1)[1].split("\n## ", 1)[0]
    actions = readme.split("## Actions", 1)[1].split("\n## ", 1)[0]
    for name, spec in TRIGGERS.items():
        if spec.source == "clientary":
            assert f"| `{name}` |" in triggers, name
    for name in registry():
        if name.startswith("clientary."):
            assert f"| `{name}` |" in actions, name


def test_the_sample_contract_push_event_starts_a_run(local_env: Any) -> None:
    from pathlib import Path

    events = Path(__file__).resolve().parents[1] / "events"
    env = local_env
    env.put_workflow({**TASK_WORKFLOW, "trigger": "clientary.new_contract"})
    event = json.loads((events / "clientary_push_new_contract.json").read_text())
    response = env.invoke_trigger("clientary.new_contract", event)
    assert response["statusCode"] == 202, response
    (run,) = env.state.list_runs()
    assert run["record"] == {**run["record"], "id": 31, "client_id": 2120001, "start_date": "2024-04-01"}
    # The same body with a bad signature is refused and starts nothing.
    event["headers"]["x-clientary-xero-signature"] = "sha256=" + "0" * 64
    assert env.invoke_trigger("clientary.new_contract", event)["statusCode"] == 401
    assert len(env.state.list_runs()) == 1


class StaffWithoutDates:
    """Staff as Clientary documents it: no created_at at all, one unpaginated list."""

    def __init__(self) -> None:
        self.staff = [{"id": 1001, "name": "Owner"}, {"id": 1002, "name": "Designer"}]
        self.calls = 0

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert path == "/staff" and not params
        self.calls += 1
        return {"staff": list(self.staff)}


def test_staff_without_created_at_is_new_by_id(plain: tuple[FakeClock, ClientarySandbox, Any]) -> None:
    clock, _, _ = plain
    source = StaffWithoutDates()
    assert list(_poll("clientary.new_staff", source, clock)) == []
    source.staff.append({"id": 1003, "name": "New hire"})
    clock.advance(minutes=15)
    assert [r["id"] for r in _poll("clientary.new_staff", source, clock)] == [1003]
    for _ in range(6):  # hours later, long after 1003 left the seen set
        clock.advance(minutes=15)
        assert list(_poll("clientary.new_staff", source, clock)) == []
    assert source.calls == 8


@pytest.mark.parametrize("trigger", POLLED)
def test_a_push_for_an_unknown_record_is_404_and_runs_nothing(local_env: Any, trigger: str) -> None:
    env = local_env
    env.put_workflow({**TASK_WORKFLOW, "trigger": trigger})
    response = env.push(trigger, 424242)
    assert response["statusCode"] == 404
    resource = TRIGGERS[trigger].resource
    assert json.loads(response["body"]) == {
        "error": f"{resource} 424242 was not found in Clientary; nothing was run"
    }
    assert env.state.list_runs() == []


@pytest.mark.parametrize("newest_first", [True, False], ids=["newest-first", "oldest-first"])
def test_a_payment_is_found_among_many_whichever_way_created_at_sorts(
    plain: tuple[FakeClock, ClientarySandbox, Any], newest_first: bool
) -> None:
    # Clientary does not document the direction of sort=created_at: with more payments than the
    # scan reads (10 pages of 100), the newest one must be found either way.
    import dataclasses

    from clientary_xero.local import clientary_sandbox as cs

    clock, sandbox, client = plain
    spec = sandbox.resources["payments"]
    by_creation = cs._newest_first if newest_first else cs._oldest_first
    sandbox.resources["payments"] = dataclasses.replace(spec, sorts={**spec.sorts, "created_at": by_creation})
    customer = sandbox.seed_client("Acme")
    invoice = sandbox.add_invoice(customer["id"], [{"title": "W", "quantity": 1, "price": 100_000}])
    for _ in range(1_050):
        sandbox.add_payment(invoice["id"], 1)
        clock.advance(seconds=1)
    newest = sandbox.add_payment(invoice["id"], 7)
    before = sandbox.request_count
    fetched = SOURCES["clientary.new_payment"].fetch(client, str(newest["id"]))  # type: ignore[misc]
    assert fetched["id"] == newest["id"] and fetched["amount"] == 7.0
    assert sandbox.request_count - before <= 2  # page 1, then (oldest first) the last page
