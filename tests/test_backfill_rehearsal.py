"""``clientary-xero backfill``: the confirmation before it writes, its progress, the rehearsal on the
sandboxes (``--local``) and its figures, and resuming an interrupted backfill (issue 8 point 5).

The rehearsal's figures are checked against the sandboxes' own logs (the Xero sandbox's request
log, the ``--record`` file), never against numbers written here: batching (issue 8 point 1) changes
how many calls a backfill makes, not whether the rehearsal counts them right.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

SAMPLE_WORKFLOW = (
    Path(__file__).resolve().parents[1] / "shared/clientary_xero/local/samples/invoice_to_xero.yaml"
)
TRIGGER = "clientary.new_invoice"


def sample_workflow() -> dict[str, Any]:
    from clientary_xero.workflows.loader import read_document

    return {**read_document(SAMPLE_WORKFLOW), "enabled": True}


def seed_document(invoices: int, clients: int, *, zero_total: int = 0) -> dict[str, Any]:
    """A --seed: ``clients`` Clientary clients, ``invoices`` invoices over them (the last
    ``zero_total`` of them with nothing to bill: the sample workflow's filter drops those)."""
    customers = [{"id": 700 + i, "name": f"Client {i:02d} Ltd"} for i in range(clients)]
    records = []
    for i in range(invoices):
        price = "0.00" if i >= invoices - zero_total else "95.00"
        records.append(
            {
                "id": 9100 + i,
                "number": str(3000 + i),
                "title": f"Survey {i}",
                "date": "2024-03-01",
                "due_date": "2024-03-31",
                "client_id": customers[i % clients]["id"],
                "status": 2,
                "currency_code": "USD",
                "subtotal": str(2 * float(price)),
                "total_cost": f"{2 * float(price):.2f}",
                "balance": f"{2 * float(price):.2f}",
                "invoice_items": [
                    {"id": 81000 + i, "item_type": 3, "title": "Survey", "quantity": 2, "price": price}
                ],
                "created_at": f"2024-03-{1 + i % 28:02d}T09:00:00Z",
                "updated_at": f"2024-03-{1 + i % 28:02d}T09:00:00Z",
            }
        )
    return {"clientary": {"clients": customers, "invoices": records}}


def add_invoices(env: Any, count: int) -> list[dict[str, Any]]:
    client = env.clientary.seed_client("Harbour Lights Ltd")
    return [
        env.clientary.add_invoice(client["id"], [{"title": "Survey", "quantity": 2, "price": 95}], status=1)
        for _ in range(count)
    ]


def api_calls(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The organisation's Accounting API calls in a request log (what Xero's limits count)."""
    return [
        r
        for r in requests
        if r["url"].startswith("https://api.xero.com/")
        and "xero-tenant-id" in {name.lower() for name in r.get("headers") or {}}
    ]


class Terminal(io.StringIO):
    """A stdin that is a terminal, with the user's answer typed in."""

    def isatty(self) -> bool:
        return True


# ------------------------------------------------------------------ on the stack: asking first
def test_backfill_refuses_to_start_runs_without_yes_when_no_terminal_can_confirm(
    local_env: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.local.cli import main

    env = local_env
    env.put_workflow(sample_workflow())
    invoices = add_invoices(env, 3)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # piped: a "y" there is not a person's answer

    assert main(["backfill", "new_invoice", "--since", "2000-01-01"]) == 2
    err = capsys.readouterr().err
    assert "stdin is not a terminal" in err and "pass --yes" in err
    assert env.state.list_runs() == []  # nothing written

    assert main(["backfill", "new_invoice", "--since", "2000-01-01", "--yes"]) == 0
    captured = capsys.readouterr()
    assert "3 run(s) started, 0 record/workflow pair(s) seen before" in captured.out
    assert "backfill: 3 records read, 3 handed to the workflows, 3 run(s) started" in captured.err  # progress
    assert "records/s" in captured.err
    assert sorted(run["record_id"] for run in env.state.list_runs()) == sorted(str(i["id"]) for i in invoices)


@pytest.mark.parametrize(("answer", "code", "runs"), [("n\n", 1, 0), ("\n", 1, 0), ("yes\n", 0, 2)])
def test_backfill_asks_on_a_terminal_and_starts_only_on_yes(
    answer: str,
    code: int,
    runs: int,
    local_env: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from clientary_xero.local.cli import main

    env = local_env
    env.put_workflow(sample_workflow())
    add_invoices(env, 2)
    monkeypatch.setattr("sys.stdin", Terminal(answer))

    assert main(["backfill", "new_invoice", "--since", "2000-01-01"]) == code
    err = capsys.readouterr().err
    assert "for 2 record(s) on stack" in err and "(invoice-to-xero)" in err and "[y/N]" in err
    assert len(env.state.list_runs()) == runs


def test_backfill_outside_local_refuses_the_rehearsal_options(capsys: pytest.CaptureFixture[str]) -> None:
    from clientary_xero.local.cli import main

    assert main(["backfill", "new_invoice", "--since", "2024-01-01", "--seed", "s.json"]) == 2
    assert "--seed go(es) with --local" in capsys.readouterr().err


# ------------------------------------------------------------------ --local: the rehearsal
def test_a_rehearsal_counts_runs_and_xero_calls_from_the_sandboxes_logs(tmp_path: Path) -> None:
    from clientary_xero.local.cli import _load_seed
    from clientary_xero.local.rehearsal import rehearsal_environment, rehearse, report
    from clientary_xero.usecases.backfill import parse_since

    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(seed_document(7, 3, zero_total=1)))
    with rehearsal_environment() as env:
        assert _load_seed(env, json.loads(seed.read_text()))
        env.put_workflow(sample_workflow())
        before = len(env.xero.requests)
        rehearsal = rehearse(env, TRIGGER, parse_since("2024-01-01"), chunk=3)
        made = api_calls(env.xero.requests[before:])
        runs = [env.state.get_run(run_id) for run_id in rehearsal.result.run_ids]
        in_xero = env.xero.invoices(env.xero_tenant_id())

    assert rehearsal.records == 7
    assert rehearsal.statuses == dict(Counter(run["status"] for run in runs))
    assert rehearsal.statuses == {"SUCCEEDED": 6, "FILTERED": 1}  # the sample's filter: nothing to bill
    assert sorted(i["InvoiceNumber"] for i in in_xero) == [f"CL-{3000 + i}" for i in range(6)]
    assert rehearsal.xero_total == len(made) > 0
    assert rehearsal.xero_calls["PUT /Invoices"] == sum(
        r["method"] == "PUT" and "/Invoices" in r["url"] for r in made
    )
    lines = report(rehearsal)
    assert f"Xero calls: {len(made)} (" in lines[2]
    assert f"Xero quota: {len(made) / 60:.1f} min at 60 calls/min" in lines[3]
    assert f"{len(made) / 5000:.1%} of the organisation's 5,000 calls/day" in lines[3]
    assert lines[1] == "runs by status: FILTERED 1, SUCCEEDED 6"


def test_backfill_local_prints_the_figures_of_the_requests_it_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.local.cli import main

    seed, record = tmp_path / "seed.json", tmp_path / "requests.jsonl"
    seed.write_text(json.dumps(seed_document(5, 2)))
    argv = ["backfill", "new_invoice", "--since", "2024-01-01", "--local"]
    argv += ["--workflow", str(SAMPLE_WORKFLOW), "--seed", str(seed), "--record", str(record)]

    assert main(argv) == 0  # no --yes needed: nothing leaves the process
    out = capsys.readouterr().out
    recorded = api_calls([json.loads(line) for line in record.read_text().splitlines()])
    assert "records: 5 read, 5 run(s) started" in out
    assert "runs by status: SUCCEEDED 5" in out
    shown = re.search(r"^Xero calls: (\d+)", out, re.M)
    assert shown is not None and int(shown.group(1)) == len(recorded) > 0
    assert f"Xero quota: {len(recorded) / 60:.1f} min" in out
    assert f"recorded requests: {record}" in out


def test_backfill_local_refuses_a_workflow_of_another_trigger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.local.cli import main

    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(seed_document(1, 1)))
    argv = ["backfill", "new_client", "--since", "2024-01-01", "--local"]
    assert main([*argv, "--workflow", str(SAMPLE_WORKFLOW), "--seed", str(seed)]) == 2
    assert "the workflow's trigger is clientary.new_invoice, the backfill's clientary.new_client" in (
        capsys.readouterr().err
    )
    assert main(argv) == 2
    assert "--local needs --workflow FILE and --seed FILE" in capsys.readouterr().err


# ------------------------------------------------------------------ resuming
def _interrupt_while_starting(env: Any, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Ctrl-C while the second chunk's first-step messages are being sent (its runs exist, not
    enqueued): the state the intake's own recovery is for. Nothing reached Xero yet."""
    from clientary_xero.storage.queue import StepQueue

    real = StepQueue.send_batch
    calls = [0]

    def send_batch(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(StepQueue, "send_batch", send_batch)
    return set()


def _interrupt_while_draining(env: Any, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The process dies right after Xero created invoice CL-3005 (alone or in a batch), before the
    answer is read: the invoices of that call exist in Xero, their steps do not know it (returned)."""
    real = env.xero.handle_request
    lost: set[str] = set()

    def handle_request(request: Any) -> Any:
        response = real(request)
        if request.method in ("PUT", "POST") and request.url.path.endswith("/Invoices"):
            sent = {i.get("InvoiceNumber") for i in json.loads(request.content).get("Invoices", [])}
            if "CL-3005" in sent:
                lost.update(sent)
                raise KeyboardInterrupt
        return response

    monkeypatch.setattr(env.xero, "handle_request", handle_request)
    return lost


@pytest.mark.parametrize("interrupt", [_interrupt_while_starting, _interrupt_while_draining])
def test_an_interrupted_backfill_started_again_sends_nothing_twice(
    interrupt: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.local.cli import _load_seed
    from clientary_xero.local.rehearsal import rehearsal_environment, rehearse
    from clientary_xero.usecases.backfill import parse_since

    record = tmp_path / "requests.jsonl"
    document = seed_document(8, 3)
    numbers = {f"CL-{i['number']}": i for i in document["clientary"]["invoices"]}
    since = parse_since("2024-01-01")
    with rehearsal_environment(record=str(record)) as env:
        assert _load_seed(env, document)
        env.put_workflow(sample_workflow())
        with monkeypatch.context() as patch:
            lost = interrupt(env, patch)
            with pytest.raises(KeyboardInterrupt):
                rehearse(env, TRIGGER, since, chunk=3)
        first_lines = len(record.read_text().splitlines())
        runs_then = {run["run_id"]: run for run in env.state.list_runs(limit=100)}
        done = {numbers_of(env, run) for run in runs_then.values() if run["status"] == "SUCCEEDED"}
        assert len(runs_then) < 8 or done != set(numbers)  # it really stopped midway

        again = rehearse(env, TRIGGER, since, chunk=3)
        runs_now = {run["run_id"]: run for run in env.state.list_runs(limit=100)}
        in_xero = env.xero.invoices(env.xero_tenant_id())
        contacts = env.xero.contacts(env.xero_tenant_id())

    # Same runs: the ones the first attempt created kept their ids, one run per record, all done.
    assert set(runs_then) <= set(runs_now) == set(again.result.run_ids)
    assert sorted(run["record_id"] for run in runs_now.values()) == sorted(
        str(i["id"]) for i in document["clientary"]["invoices"]
    )
    assert again.statuses == {"SUCCEEDED": 8}
    assert again.result.progress.started == 8 - len(runs_then)
    assert again.result.progress.seen_before == len(runs_then)
    # Nothing twice in Xero: one invoice per record, one contact per client.
    assert sorted(i["InvoiceNumber"] for i in in_xero) == sorted(numbers)
    assert sorted(c["ContactNumber"] for c in contacts if c.get("ContactNumber")) == [
        f"CL-{c['id']}" for c in document["clientary"]["clients"]
    ]
    # The second attempt wrote only what the first had not finished.
    second = [json.loads(line) for line in record.read_text().splitlines()[first_lines:]]
    written = [
        element["InvoiceNumber"]
        for r in second
        if r["method"] in ("PUT", "POST") and r["url"].split("?")[0].endswith("/Invoices")
        for element in (r.get("json") or {}).get("Invoices", [])
    ]
    assert set(written).isdisjoint(done)
    # …and all of it, but what the lost answer had created: found in Xero, not created again.
    assert set(numbers) - done - set(written) <= lost
    assert again.xero_total == len(api_calls(second))


def numbers_of(env: Any, run: dict[str, Any]) -> str:
    """The Xero invoice number a run of the sample workflow writes."""
    return f"CL-{run['record']['number']}"


def test_a_backfill_interrupted_on_the_stack_says_how_to_resume_and_resumes(
    local_env: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.local.cli import main

    env = local_env
    env.put_workflow(sample_workflow())
    invoices = add_invoices(env, 3)
    monkeypatch.setattr("clientary_xero.usecases.backfill.CHUNK", 1)
    argv = ["backfill", "new_invoice", "--since", "2000-01-01", "--yes"]
    with monkeypatch.context() as patch:
        _interrupt_while_starting(env, patch)  # Ctrl-C while the second record's message goes out
        assert main(argv) == 130
    assert "interrupted: run the same command again" in capsys.readouterr().err

    assert main(argv) == 0
    assert "1 run(s) started, 2 record/workflow pair(s) seen before" in capsys.readouterr().out
    env.drain()
    in_xero = env.xero.invoices(env.xero_tenant_id())
    assert sorted(i["InvoiceNumber"] for i in in_xero) == sorted(f"CL-{i['number']}" for i in invoices)
