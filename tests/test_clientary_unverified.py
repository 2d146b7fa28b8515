"""What the product relies on that Clientary does not document is checked at run time.

README "Unverified against a live Clientary account": a payment's ``received_on`` on create, the
invoice's nested ``client`` and the retry marker ``[cx:…]`` kept in descriptions and notes. The
Clientary sandbox has a switch for each way Clientary could differ (``ignore_payment_dates``,
``nest_invoice_client``; the marker is stripped from answers by a wrapper here), and each test
shows what the product does then.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from clientary_xero.connectors.clientary.triggers import SOURCES
from tests.clientary_fixtures import FakeClock, moto_aws, sandbox_and_client, state_store

SENT_DAY = "2024-03-01"  # never "today" where these tests run: the sandbox's clock is the real one


def _run(env: Any, steps: list[dict[str, Any]], *, invoice: dict[str, Any] | None = None) -> dict[str, Any]:
    """Push one new invoice (of a seeded client unless ``invoice`` is given) through a workflow
    of ``steps``; drain; the run."""
    env.put_workflow({"id": "unverified", "trigger": "clientary.new_invoice", "steps": steps})
    if invoice is None:
        customer = env.clientary.seed_client("Acme Ltd")
        invoice = env.clientary.add_invoice(customer["id"], [{"title": "W", "quantity": 1, "price": 300}])
    response = env.push("clientary.new_invoice", invoice["id"])
    assert response["statusCode"] == 202, response
    env.drain()
    (run,) = env.state.list_runs()
    return dict(run)


def _pay(received_on: str | None = SENT_DAY) -> list[dict[str, Any]]:
    data: dict[str, Any] = {"invoice_id": "{% invoice.id %}", "amount": 100}
    if received_on:
        data["received_on"] = received_on
    return [{"id": "pay", "action": "clientary.create_invoice_payment", "input": data}]


def _output(env: Any, run: dict[str, Any], step: str) -> dict[str, Any]:
    found = {s["step_id"]: s for s in env.state.get_steps(run["run_id"])}
    return dict(found[step]["output"])


# ------------------------------------------------------------------ 1. a payment's received_on
class _Heard(logging.Handler):
    """Every record of one logger, whether or not it propagates (Powertools' loggers may not)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def action_log() -> Iterator[_Heard]:
    heard = _Heard()
    logger = logging.getLogger("clientary_xero.connectors.clientary.actions")
    logger.addHandler(heard)
    try:
        yield heard
    finally:
        logger.removeHandler(heard)


def test_a_payment_date_clientary_ignored_succeeds_once_with_a_warning(
    local_env: Any, action_log: _Heard
) -> None:
    env = local_env
    env.clientary.ignore_payment_dates = True  # Clientary keeps today's date, whatever was sent
    run = _run(env, _pay())

    assert run["status"] == "SUCCEEDED", run.get("error")
    (payment,) = env.clientary.all_records("payments")  # it exists, once
    output = _output(env, run, "pay")
    recorded = output["received_on"]
    assert recorded != SENT_DAY and output["created"] is True
    (warning,) = output["warnings"]
    assert warning.startswith(f"Clientary recorded the payment {payment['id']} on invoice ")
    assert f"on {recorded}, not {SENT_DAY} as sent: it may ignore received_on" in warning
    assert "fix the date in Clientary" in warning
    # The warning log line says the same, and no secret.
    logged = [(r.levelno, r.getMessage()) for r in action_log.records]
    assert (logging.WARNING, warning) in logged
    assert not any(env.clientary.api_token in message for _, message in logged)


def test_a_payment_date_clientary_kept_gives_no_warning(local_env: Any) -> None:
    env = local_env
    run = _run(env, _pay())
    output = _output(env, run, "pay")
    assert output["received_on"] == SENT_DAY and "warnings" not in output


def test_a_retried_payment_whose_date_was_ignored_is_found_not_made_twice(local_env: Any) -> None:
    env = local_env
    env.clientary.ignore_payment_dates = True
    env.clientary.lose_next_answer(status=502)  # Clientary records it; the answer is lost
    run = _run(env, _pay())
    assert run["status"] == "SUCCEEDED", run.get("error")
    assert len(env.clientary.all_records("payments")) == 1  # the date differs: still the same one
    output = _output(env, run, "pay")
    assert output["created"] is False
    assert any("not 2024-03-01 as sent" in w for w in output["warnings"])


def _answers_dated_today(sandbox: Any, field: str) -> Callable[[httpx.Request], httpx.Response]:
    """The sandbox's transport, but a create's answer carries today's date in ``field`` (as if
    Clientary ignored the date sent)."""
    serve = sandbox.handle_request

    def handle(request: httpx.Request) -> httpx.Response:
        response: httpx.Response = serve(request)
        if request.method != "POST" or not response.is_success:
            return response
        body = json.loads(response.read())
        if field in body:
            body[field] = sandbox.date_text(sandbox.now().date())
        return httpx.Response(response.status_code, json=body)

    return handle


DATED = [
    (
        "clientary.create_time_entry",
        {"project_id": 2_120_001, "title": "Work", "hours": 2},
        "date",
        "time entry",
    ),
    ("clientary.create_expense", {"amount": 12}, "incurred_on", "expense"),
]


@pytest.mark.parametrize(("action", "data", "field", "what"), DATED, ids=[d[0] for d in DATED])
def test_a_time_entry_or_expense_date_clientary_ignored_gives_a_warning(
    local_env: Any, monkeypatch: pytest.MonkeyPatch, action: str, data: dict[str, Any], field: str, what: str
) -> None:
    env = local_env
    env.clientary.load_record("projects", {"id": 2_120_001, "name": "P", "status": 1, "rate": 100})
    monkeypatch.setattr(env.clientary, "handle_request", _answers_dated_today(env.clientary, field))
    run = _run(env, [{"id": "s", "action": action, "input": {**data, field: SENT_DAY}}])

    assert run["status"] == "SUCCEEDED", run.get("error")
    output = _output(env, run, "s")
    (warning,) = output["warnings"]
    assert warning == (
        f"Clientary recorded the {what} {output['id']} on {output[field]}, not {SENT_DAY} as sent: it "
        f"may ignore {field} (undocumented on create) and use the day it was recorded; fix the date "
        "in Clientary"
    )


# ------------------------------------------------------------------ 3. the retry marker
CREATES = [
    ("clientary.create_client", {"name": "New Co"}, "client", "description"),
    ("clientary.create_expense", {"amount": 12}, "expense", "description"),
    ("clientary.create_task", {"title": "Chase"}, "task", "description"),
    (
        "clientary.create_time_entry",
        {"project_id": 2_120_001, "title": "Work", "hours": 2},
        "time entry",
        "description",
    ),
    (
        "clientary.create_invoice_payment",
        {"invoice_id": "{% invoice.id %}", "amount": 100},
        "payment",
        "note",
    ),
]
MARKER = re.compile(r"\n?\[cx:[0-9a-f]{12}\]")


def _strip_markers_from_answers(sandbox: Any) -> Callable[[httpx.Request], httpx.Response]:
    """The sandbox's transport, but a create's answer comes back without the marker (as if
    Clientary shortened or cleaned the text)."""
    serve = sandbox.handle_request

    def handle(request: httpx.Request) -> httpx.Response:
        response: httpx.Response = serve(request)
        if request.method != "POST" or not response.is_success:
            return response
        body = json.loads(response.read())
        for field in ("description", "note"):
            if isinstance(body.get(field), str):
                body[field] = MARKER.sub("", body[field])
        return httpx.Response(response.status_code, json=body)

    return handle


@pytest.mark.parametrize(("action", "data", "what", "field"), CREATES, ids=[c[0] for c in CREATES])
def test_a_record_created_without_its_retry_marker_gets_a_warning(
    local_env: Any, monkeypatch: pytest.MonkeyPatch, action: str, data: dict[str, Any], what: str, field: str
) -> None:
    env = local_env
    env.clientary.load_record("projects", {"id": 2_120_001, "name": "P", "status": 1, "rate": 100})
    monkeypatch.setattr(env.clientary, "handle_request", _strip_markers_from_answers(env.clientary))
    run = _run(env, [{"id": "s", "action": action, "input": data}])

    assert run["status"] == "SUCCEEDED", run.get("error")
    output = _output(env, run, "s")
    (warning,) = output["warnings"]
    assert warning.startswith(
        f"Clientary returned the new {what} {output['id']} without this step's retry marker [cx:"
    )
    assert f"in its {field}: Clientary may not keep that text as sent" in warning
    assert "a retry after a lost answer could not find" in warning


@pytest.mark.parametrize(("action", "data", "what", "field"), CREATES, ids=[c[0] for c in CREATES])
def test_a_record_that_kept_its_marker_gives_no_warning(
    local_env: Any, action: str, data: dict[str, Any], what: str, field: str
) -> None:
    env = local_env
    env.clientary.load_record("projects", {"id": 2_120_001, "name": "P", "status": 1, "rate": 100})
    run = _run(env, [{"id": "s", "action": action, "input": data}])
    output = _output(env, run, "s")
    assert MARKER.search(output[field]) and "warnings" not in output


# ------------------------------------------------------------------ 2. the invoice's nested client
@pytest.fixture
def aws() -> Iterator[None]:
    with moto_aws():
        yield


def _poll_new_invoices(nest: bool) -> tuple[list[dict[str, Any]], Any, list[str]]:
    """Two clients' invoices, one with two invoices, polled after a first poll; the records, the
    batch and the client reads (GET /clients/:id) the poll made."""
    clock = FakeClock()
    sandbox, client = sandbox_and_client(clock, nest_invoice_client=nest)
    state = state_store()
    source = SOURCES["clientary.new_invoice"]
    source.poll(client, state, now=clock()).commit()
    clock.advance(minutes=5)
    one, two = sandbox.seed_client("Harbor Lane Bakery"), sandbox.seed_client("Timber & Co")
    for customer in (one, two, one):
        sandbox.add_invoice(customer["id"], [{"title": "Work", "quantity": 1, "price": 100}])
        clock.advance(seconds=1)
    clock.advance(minutes=5)
    before = len(sandbox.requests)
    batch = source.poll(client, state, now=clock())
    reads = [path for method, path in sandbox.requests[before:] if re.fullmatch(r"/api/v2/clients/\d+", path)]
    return list(batch), batch, reads


def test_an_invoice_without_a_nested_client_reads_as_one_with_it(aws: None) -> None:
    nested, nested_batch, nested_reads = _poll_new_invoices(nest=True)
    flat, batch, flat_reads = _poll_new_invoices(nest=False)

    assert len(flat) == 3
    assert [r["client"] for r in flat] == [r["client"] for r in nested]
    assert flat[0]["client"] == {"id": flat[0]["client_id"], "name": "Harbor Lane Bakery"}
    assert [r["client_id"] for r in flat] == [r["client_id"] for r in nested]
    assert nested_reads == []  # nested: nothing more to read
    # Not nested: one read per invoice at most (never per field); a client met twice is read once.
    assert sorted(flat_reads) == sorted({f"/api/v2/clients/{r['client_id']}" for r in flat})
    assert len(flat_reads) == 2
    assert batch.requests == nested_batch.requests + 2  # the poll counts its client reads
    assert batch.warnings == {}


def test_the_workflow_sees_the_same_client_either_way() -> None:
    from clientary_xero.local.environment import LocalEnvironment

    steps = [
        {
            "id": "task",
            "action": "clientary.create_task",
            "input": {
                "title": "{% 'Call ' & invoice.client.name & ' (' & $string(invoice.client.id) & ')' %}"
            },
        }
    ]
    seen: dict[bool, tuple[Any, str, int]] = {}
    for nest in (True, False):
        with LocalEnvironment(max_attempts=3) as env:
            env.clientary.nest_invoice_client = nest
            before = len(env.clientary.requests)
            run = _run(env, steps)
            assert run["status"] == "SUCCEEDED", run.get("error")
            reads = [p for m, p in env.clientary.requests[before:] if re.fullmatch(r"/api/v2/clients/\d+", p)]
            seen[nest] = (run["record"]["client"], _output(env, run, "task")["title"], len(reads))
    assert seen[True][:2] == seen[False][:2]
    assert seen[False][0]["name"] == "Acme Ltd" and seen[False][1].startswith("Call Acme Ltd (")
    assert (seen[True][2], seen[False][2]) == (0, 1)  # not nested: one client read


def test_an_invoice_that_names_no_client_says_so_in_the_run(local_env: Any, capsys: Any) -> None:
    env = local_env
    invoice = env.clientary.load_record(
        "invoices", {"id": 9_540_777, "number": "1777", "date": "2024/03/01", "currency_code": "USD"}
    )
    run = _run(
        env, [{"id": "task", "action": "clientary.create_task", "input": {"title": "Check"}}], invoice=invoice
    )

    assert run["status"] == "SUCCEEDED", run.get("error")  # a workflow that needs no client runs on
    assert run["record"]["client"] is None
    (warning,) = run["trigger_meta"]["warnings"]
    assert warning == (
        "Clientary invoice 9540777 names no client (neither a nested client nor client_id): "
        "invoice.client is null"
    )
    from clientary_xero.local.cli import print_run

    print_run(run, [], verbose=False)
    assert f"  warning: {warning}" in capsys.readouterr().out


def test_an_invoice_whose_client_is_gone_says_so_in_the_run(local_env: Any) -> None:
    env = local_env
    env.clientary.nest_invoice_client = False
    invoice = env.clientary.load_record(
        "invoices",
        {"id": 9_540_778, "number": "1778", "date": "2024/03/01", "currency_code": "USD", "client_id": 4242},
    )
    run = _run(
        env, [{"id": "task", "action": "clientary.create_task", "input": {"title": "Check"}}], invoice=invoice
    )
    assert run["status"] == "SUCCEEDED", run.get("error")
    assert run["record"]["client"] is None and run["record"]["client_id"] == 4242
    assert run["trigger_meta"]["warnings"] == [
        "Clientary invoice 9540778 has no nested client and its client_id 4242 is not a client in "
        "Clientary: invoice.client is null"
    ]


def test_a_client_the_token_may_not_read_does_not_stop_the_poll(aws: None) -> None:
    clock = FakeClock()
    sandbox, client = sandbox_and_client(clock, nest_invoice_client=False)
    serve = sandbox.handle_request

    def forbid_clients(request: httpx.Request) -> httpx.Response:
        if re.fullmatch(r"/api/v2/clients/\d+", request.url.path):
            return httpx.Response(403, json={"error": "You are not permitted to view clients"})
        return serve(request)

    sandbox.handle_request = forbid_clients  # type: ignore[method-assign]
    state = state_store()
    source = SOURCES["clientary.new_invoice"]
    source.poll(client, state, now=clock()).commit()
    clock.advance(minutes=5)
    customer = sandbox.seed_client("Harbor Lane Bakery")
    made = [
        sandbox.add_invoice(customer["id"], [{"title": "W", "quantity": 1, "price": 1}]) for _ in range(2)
    ]
    clock.advance(minutes=5)
    batch = source.poll(client, state, now=clock())

    assert [r["id"] for r in batch] == [m["id"] for m in made]  # both delivered, client null
    assert all(r["client"] is None for r in batch)
    assert batch.warnings[str(made[0]["id"])] == [
        f"Clientary invoice {made[0]['id']} has no nested client and its client_id {customer['id']} "
        "could not be read: the Clientary API token lacks permission (403) "
        f"(GET /clients/{customer['id']}): You are not permitted to view clients: invoice.client is null"
    ]
    assert str(made[1]["id"]) in batch.warnings


def test_a_backfill_completes_the_client_too(aws: None) -> None:
    clock = FakeClock()
    sandbox, client = sandbox_and_client(clock, nest_invoice_client=False)
    customer = sandbox.seed_client("Harbor Lane Bakery")
    made = sandbox.add_invoice(customer["id"], [{"title": "Work", "quantity": 1, "price": 100}])
    orphan = sandbox.load_record("invoices", {"id": 9_540_900, "date": "2024/03/10", "currency_code": "USD"})
    records = SOURCES["clientary.new_invoice"].backfill(client, since=clock() - timedelta(days=1))
    by_id = {r["id"]: r for r in records}
    assert by_id[made["id"]]["client"] == {"id": customer["id"], "name": "Harbor Lane Bakery"}
    assert by_id[orphan["id"]]["client"] is None
    assert list(getattr(records, "warnings", {})) == [str(orphan["id"])]


# ------------------------------------------------------------------ the README's list
def test_the_readmes_probe_shows_a_field_clientary_sent(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from clientary_xero.local.cli import main

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Unverified against a live Clientary account") :]
    section = section[: section.index("\n## ")]
    for point in ("`received_on`", "nested `client`", "`[cx:…]`", "`created_at`"):
        assert point in section, point
    block = section[section.index("```yaml\n") + len("```yaml\n") :]
    block = block[: block.index("```")]
    workflow = tmp_path / "probe.yaml"
    workflow.write_text(
        "id: probe\ntrigger: clientary.new_project\nsteps:\n"
        + "".join(f"  {line}\n" for line in block.splitlines())
    )
    code = main(
        ["test-workflow", str(workflow), "--event", str(root / "examples" / "events" / "project.json")]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r'"SearchTerm": "\d{4}-\d\d-\d\dT', out), out  # the sandbox sends created_at
