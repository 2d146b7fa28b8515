"""Issue 11, point 5: what `test-workflow` (and `runs show`) tell about a run besides its steps —
which side of each `if` ran, why a run was FILTERED (the filter, its value and the fields it read),
and a warning when the event does not look like the trigger's resource."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.local.cli import main
from clientary_xero.local.environment import LocalEnvironment
from tests.test_cli import INVOICE

BRANCHED = """
id: sized
trigger: clientary.new_invoice
steps:
  - id: big
    if: "{% invoice.total > 1000 %}"
    then:
      - id: contact
        action: xero.create_or_update_contact
        input: { Name: "{% invoice.client.name & ' (key account)' %}" }
    else:
      - id: contact
        action: xero.create_or_update_contact
        input: { Name: "{% invoice.client.name %}" }
  - if: "{% invoice.currency_code = 'NZD' %}"
    then: []
    else:
      - id: note
        action: xero.create_or_update_contact
        input: { Name: "{% 'Foreign ' & invoice.client.name %}" }
"""

FILTERED = """
id: paid-only
trigger: clientary.new_invoice
filter: "{% invoice.status_name = 'paid' and invoice.total > 0 %}"
steps:
  - id: contact
    action: xero.create_or_update_contact
    input: { Name: "{% invoice.client.name %}" }
"""

CLIENT_WORKFLOW = """
id: clients
trigger: clientary.new_client
steps:
  - id: contact
    action: xero.create_or_update_contact
    input: { Name: "{% client.name %}" }
"""


def run_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workflow: str, event: dict[str, Any]
) -> tuple[int, str]:
    path, event_path = tmp_path / "wf.yaml", tmp_path / "event.json"
    path.write_text(workflow)
    event_path.write_text(json.dumps(event))
    capsys.readouterr()
    code = main(["test-workflow", str(path), "--event", str(event_path)])
    return code, capsys.readouterr().out


# ------------------------------------------------------------------------------ branches
def test_the_then_side_is_named_with_the_condition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = dict(INVOICE, total_cost=1500.0, subtotal=1500.0, balance=1500.0)
    code, out = run_cli(tmp_path, capsys, BRANCHED, big)
    assert code == 0 and "→  SUCCEEDED" in out
    assert "  branch big: then (invoice.total > 1000 was true)\n" in out
    assert "  branch if_2: then (invoice.currency_code = 'NZD' was true, nothing to run)\n" in out
    assert '"Name": "Timber & Co (key account)"' in out and "step note" not in out


def test_the_else_side_is_named_with_the_condition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = dict(INVOICE, currency_code="USD")  # total 150.5
    code, out = run_cli(tmp_path, capsys, BRANCHED, small)
    assert code == 0 and "→  SUCCEEDED" in out
    assert "  branch big: else (invoice.total > 1000 was false)\n" in out
    assert "  branch if_2: else (invoice.currency_code = 'NZD' was false)\n" in out
    assert '"Name": "Timber & Co"' in out and "step note: SUCCEEDED" in out


# ------------------------------------------------------------------------------ FILTERED
def test_a_filtered_run_says_the_filter_its_value_and_the_fields_it_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(tmp_path, capsys, FILTERED, dict(INVOICE, status=0))  # a draft
    assert code == 0 and "→  FILTERED" in out
    assert (
        "  filtered: filter invoice.status_name = 'paid' and invoice.total > 0 was false "
        '(invoice.status_name is "draft", invoice.total is 150.5)\n'
    ) in out
    assert "step contact" not in out


def test_a_filter_that_is_not_a_boolean_shows_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = FILTERED.replace("invoice.status_name = 'paid' and invoice.total > 0", "invoice.po")
    code, out = run_cli(tmp_path, capsys, workflow, dict(INVOICE, po=""))
    assert code == 0 and "→  FILTERED" in out
    assert '  filtered: filter invoice.po was "" (false) (invoice.po is "")\n' in out
    code, out = run_cli(tmp_path, capsys, workflow.replace("invoice.po", "status = 5"), INVOICE)
    # a field read from the wrong place (the record is `invoice`): the missing value says so
    assert "  filtered: filter status = 5 was false (status is null or missing)\n" in out


def test_runs_show_and_runs_list_on_the_stack_say_why_a_run_was_filtered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalEnvironment() as env:
        client = env.clientary.seed_client("Harbour Lights Ltd")
        invoice = env.clientary.add_invoice(
            client["id"], [{"title": "Plan", "quantity": 1, "price": 9.0}], status=0
        )
        env.put_workflow(document(tmp_path, FILTERED))
        response = env.push("clientary.new_invoice", invoice["id"])
        (start,) = json.loads(response["body"])["runs"]
        env.drain()
        run = env.state.get_run(start["run_id"])
        assert run is not None and run["status"] == "FILTERED"
        reason = run["filter_reason"]
        assert reason.startswith("filter invoice.status_name = 'paid' and invoice.total > 0 was false")
        assert '(invoice.status_name is "draft", invoice.total is 9' in reason
        capsys.readouterr()
        assert main(["runs", "show", start["run_id"]]) == 0
        assert f"  filtered: {reason}\n" in capsys.readouterr().out
        assert main(["runs", "list"]) == 0
        assert reason in capsys.readouterr().out


def document(tmp_path: Path, text: str) -> dict[str, Any]:
    from clientary_xero.workflows.loader import read_document

    path = tmp_path / "stored.yaml"
    path.write_text(text)
    loaded: dict[str, Any] = read_document(path)
    return loaded


def test_runs_show_names_the_branch_a_stored_run_took(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalEnvironment() as env:
        client = env.clientary.seed_client("Acme Builders")
        invoice = env.clientary.add_invoice(
            client["id"], [{"title": "Survey", "quantity": 4, "price": 95.0}], status=1
        )
        env.put_workflow(document(tmp_path, BRANCHED))
        (start,) = json.loads(env.push("clientary.new_invoice", invoice["id"])["body"])["runs"]
        env.drain()
        capsys.readouterr()
        assert main(["runs", "show", start["run_id"]]) == 0
        out = capsys.readouterr().out
    assert "  branch big: else (invoice.total > 1000 was false)\n" in out
    assert "step contact: SUCCEEDED" in out


# ------------------------------------------------------------------------------ the event's shape
def test_an_invoice_given_to_a_new_client_workflow_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = run_cli(tmp_path, capsys, CLIENT_WORKFLOW, INVOICE)
    warning = next(line for line in out.splitlines() if line.startswith("warning: "))
    assert warning.endswith(
        "event.json: the event looks like a Clientary invoice (it has invoice_items, due_date, balance), "
        "not the client that clientary.new_client delivers: expressions read it as `client.…`, so "
        "fields it lacks are missing"
    )


def test_a_client_given_to_a_new_client_workflow_is_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = {
        "id": 31,
        "name": "Timber & Co",
        "city": "Nelson",
        "website": "https://timber.example",
        "status": 1,
    }
    code, out = run_cli(tmp_path, capsys, CLIENT_WORKFLOW, client)
    assert code == 0 and "→  SUCCEEDED" in out
    assert "warning" not in out
    # nor a bare record that is marked as nothing in particular
    code, out = run_cli(tmp_path, capsys, CLIENT_WORKFLOW, {"id": 32, "name": "Solo Design"})
    assert code == 0 and "warning" not in out


def test_the_right_invoice_is_not_warned_about_and_a_xero_contact_for_an_invoice_trigger_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = run_cli(tmp_path, capsys, FILTERED, INVOICE)
    assert "warning" not in out
    xero_workflow = (
        FILTERED.replace("clientary.new_invoice", "xero.invoice_created")
        .replace("filter: \"{% invoice.status_name = 'paid' and invoice.total > 0 %}\"\n", "")
        .replace("invoice.client.name", "invoice.Contact.Name")
    )
    contact = {
        "Contacts": [
            {
                "ContactID": "6d42f03b-181f-43e3-93fb-2025c012de92",
                "Name": "Kea Cafe",
                "ContactStatus": "ACTIVE",
            }
        ]
    }
    _, out = run_cli(tmp_path, capsys, xero_workflow, contact)
    assert (
        "the event looks like a Xero contact (it has ContactID, ContactStatus), not the invoice that "
        "xero.invoice_created delivers"
    ) in out
