"""The `clientary-xero` CLI: validate, test-workflow (sandboxes, --record), runs, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.local.cli import main

WORKFLOW = """
id: bills
trigger: clientary.new_invoice
steps:
  - id: supplier
    action: xero.create_or_update_contact
    input:
      Name: "{% 'Supplier ' & invoice.client.name %}"
  - id: bill
    action: xero.create_invoice
    input:
      Type: ACCPAY
      Contact: { ContactID: "{% steps.supplier.ContactID %}" }
      LineItems: >-
        {% invoice.invoice_items.{'Description': title, 'Quantity': quantity, 'UnitAmount': price} %}
"""

INVOICE: dict[str, Any] = {
    "id": 777,
    "number": "5001",
    "title": "Materials",
    "date": "2026/11/20",
    "due_date": "2026/12/20",
    "client_id": 31,
    "client": {"id": 31, "name": "Timber & Co"},
    "status": 1,
    "currency_code": "NZD",
    "subtotal": 150.5,
    "tax": 0,
    "total_cost": 150.5,
    "balance": 150.5,
    "payments": [],
    "invoice_items": [
        {"id": 1, "title": "Pine boards", "price": "50.25", "quantity": 2, "taxable": False},
        {"id": 2, "title": "Nails", "price": 50, "quantity": 1, "taxable": False},
    ],
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(WORKFLOW)
    event = tmp_path / "invoice.json"
    event.write_text(json.dumps(INVOICE))
    return workflow, event


def test_test_workflow_runs_every_step_and_records_requests(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.xero_contract import validate_requests

    workflow, event = files
    record = tmp_path / "requests.jsonl"
    assert main(["test-workflow", str(workflow), "--event", str(event), "--record", str(record)]) == 0
    out = capsys.readouterr().out
    assert "→  SUCCEEDED" in out
    assert "step supplier: SUCCEEDED" in out and "step bill: SUCCEEDED" in out
    assert '"Description": "Pine boards"' in out and '"Total": 150.5' in out
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert {tuple(sorted(r)) for r in lines} == {("headers", "json", "method", "url")}
    assert any(r["url"].startswith("https://sandbox.clientary.com/api/v2/invoices/777") for r in lines)
    xero = [r for r in lines if r["url"].startswith("https://api.xero.com/")]
    assert [r["method"] for r in xero] == ["GET", "POST", "PUT"]  # the contact is matched first
    assert all("authorization" not in {h.lower() for h in r["headers"]} for r in lines)
    assert validate_requests(xero) == []


def test_test_workflow_exits_non_zero_when_the_run_fails(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    workflow, event = files
    broken = dict(INVOICE, invoice_items=[{"id": 1, "title": "", "price": 5, "quantity": 1}])
    event.write_text(json.dumps(broken))
    assert main(["test-workflow", str(workflow), "--event", str(event)]) == 1
    out = capsys.readouterr().out
    assert "→  FAILED" in out and "step bill: FAILED" in out


def test_test_workflow_refuses_an_invalid_workflow_before_running(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    workflow, event = files
    workflow.write_text(WORKFLOW.replace("steps.supplier.ContactID", "steps.bill.ContactID"))
    assert main(["test-workflow", str(workflow), "--event", str(event)]) == 2
    assert "refers to steps.bill, which has not run at this point" in capsys.readouterr().err


def test_validate_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(WORKFLOW.replace("xero.create_invoice", "xero.create_invoise").replace("Name:", "Nme:"))
    assert main(["workflows", "validate", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "unknown action 'xero.create_invoise'" in out
    assert "input.Nme: not a field of this action's input (did you mean 'Name'?)" in out
    assert "missing required field 'Name'" in out


def test_workflows_and_runs_commands_against_a_stack(
    aws: Any, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    workflow, _ = files
    assert main(["workflows", "put", str(workflow)]) == 0
    assert main(["workflows", "list"]) == 0
    out = capsys.readouterr().out
    assert "saved bills" in out and "bills" in out.splitlines()[-1] and "enabled" in out.splitlines()[-1]
    assert main(["runs", "list"]) == 0
    assert "no runs" in capsys.readouterr().out
    assert main(["runs", "show", "r-nope"]) == 1


def test_schema_command_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "schema"]) == 0
    committed = (Path(__file__).resolve().parents[1] / "schemas" / "workflow.schema.json").read_text()
    assert capsys.readouterr().out == committed
