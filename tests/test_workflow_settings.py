"""Issue 11, point 4: ``settings:`` instead of literals — declared, read as ``settings.NAME``,
overridden by ``--set``, checked on validation, and what a run and a replay use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.errors import WorkflowInvalid
from clientary_xero.local.cli import EXIT_INVALID, main
from clientary_xero.workflows.settings import apply_settings
from clientary_xero.workflows.validate import parse_workflow

WORKFLOW = """
id: invoices
trigger: clientary.new_invoice
settings:
  SalesAccount: "200"
  TaxType: OUTPUT
  DaysToPay: 14
  Draft: false
steps:
  - id: contact
    action: xero.create_or_update_contact
    input:
      Name: "{% invoice.client.name %}"
      ContactNumber: "{% 'CL-' & $string(invoice.client_id) %}"
  - id: invoice
    action: xero.create_invoice
    input:
      Type: ACCREC
      Contact: { ContactID: "{% steps.contact.ContactID %}" }
      InvoiceNumber: "{% 'CL-' & invoice.number %}"
      Status: "{% settings.Draft ? 'DRAFT' : 'AUTHORISED' %}"
      LineItems: >-
        {% [invoice.invoice_items.{'Description': title, 'Quantity': quantity, 'UnitAmount': price,
        'AccountCode': $$.settings.SalesAccount}] %}
"""


def document(text: str = WORKFLOW) -> dict[str, Any]:
    import yaml

    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflow(doc)
    return info.value.problems


def test_declared_settings_validate_and_are_kept_in_the_stored_definition() -> None:
    workflow = parse_workflow(document())
    assert workflow.settings == {"SalesAccount": "200", "TaxType": "OUTPUT", "DaysToPay": 14, "Draft": False}
    assert workflow.to_document()["settings"] == workflow.settings


def test_an_undeclared_setting_is_reported_with_its_place_and_a_suggestion() -> None:
    doc = document(WORKFLOW.replace("$$.settings.SalesAccount", "$$.settings.SaleAccount"))
    (problem,) = problems(doc)
    assert problem == (
        "steps[1] (step 'invoice').input.LineItems: refers to settings.SaleAccount, which the workflow "
        "does not declare (did you mean settings.SalesAccount?) "
        "(declared: DaysToPay, Draft, SalesAccount, TaxType)"
    )
    without = document()
    del without["settings"]
    found = problems(without)
    assert any("settings.Draft, which the workflow does not declare (it declares none)" in p for p in found)
    assert any(
        p.startswith("steps[1] (step 'invoice').input.Status: refers to settings.Draft") for p in found
    )


def test_a_filter_and_a_branch_condition_are_checked_too() -> None:
    doc = document()
    doc["filter"] = "{% invoice.total > settings.Minimum %}"
    doc["steps"] = [{"if": "{% settings.Big %}", "then": doc["steps"]}]
    found = problems(doc)
    assert any(p.startswith("filter: refers to settings.Minimum") for p in found), found
    assert any(p.startswith("steps[0] (branch 'if_1').if: refers to settings.Big") for p in found), found


def test_a_setting_name_must_be_a_jsonata_name() -> None:
    doc = document()
    doc["settings"]["sales account"] = "200"
    assert any(p.startswith("settings.sales account") for p in problems(doc))


def test_set_overrides_a_default_read_as_the_defaults_type() -> None:
    out = apply_settings(document(), ["SalesAccount=0200", "DaysToPay=30", "Draft=TRUE", "TaxType=NONE"])
    assert out["settings"] == {"SalesAccount": "0200", "TaxType": "NONE", "DaysToPay": 30, "Draft": True}
    assert document()["settings"]["SalesAccount"] == "200"  # the given document is left alone


def test_set_refuses_what_the_workflow_does_not_declare_or_cannot_take() -> None:
    with pytest.raises(WorkflowInvalid) as info:
        apply_settings(document(), ["SaleAccount=200", "DaysToPay=soon", "Draft=maybe", "oops"])
    assert info.value.problems == [
        "--set SaleAccount: the workflow declares no setting 'SaleAccount' (did you mean SalesAccount?) "
        "(declared: DaysToPay, Draft, SalesAccount, TaxType)",
        "--set DaysToPay: its default is the whole number 14, so it takes one, not 'soon'",
        "--set Draft: its default is false, so it takes true or false, not 'maybe'",
        "--set 'oops': write NAME=VALUE (e.g. --set SalesAccount=200)",
    ]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    workflow = tmp_path / "invoices.yaml"
    workflow.write_text(WORKFLOW)
    event = tmp_path / "invoice.json"
    event.write_text(
        json.dumps(
            {
                "id": 501,
                "number": "1001",
                "client_id": 7,
                "client": {"id": 7, "name": "Harbour Lights Ltd"},
                "currency_code": "USD",
                "date": "2026-11-30",
                "due_date": "2026-12-30",
                "invoice_items": [{"title": "Design", "quantity": 2, "price": 50}],
            }
        )
    )
    return workflow, event


def sent_invoices(record: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    return [
        invoice
        for r in lines
        if r["method"] == "PUT" and r["url"].split("?")[0].endswith("/Invoices")
        for invoice in r["json"]["Invoices"]
    ]


def test_test_workflow_runs_with_the_defaults_and_with_set(files: tuple[Path, Path], tmp_path: Path) -> None:
    workflow, event = files
    record = tmp_path / "defaults.jsonl"
    assert main(["test-workflow", str(workflow), "--event", str(event), "--record", str(record)]) == 0
    (sent,) = sent_invoices(record)
    assert [line["AccountCode"] for line in sent["LineItems"]] == ["200"] and sent["Status"] == "AUTHORISED"
    record = tmp_path / "set.jsonl"
    argv = ["test-workflow", str(workflow), "--event", str(event), "--record", str(record)]
    assert main([*argv, "--set", "SalesAccount=260", "--set", "Draft=true"]) == 0
    (sent,) = sent_invoices(record)
    assert [line["AccountCode"] for line in sent["LineItems"]] == ["260"] and sent["Status"] == "DRAFT"


def test_test_workflow_refuses_an_unknown_setting_before_running(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    workflow, event = files
    assert main(["test-workflow", str(workflow), "--event", str(event), "--set", "Acount=1"]) == EXIT_INVALID
    assert "--set Acount: the workflow declares no setting 'Acount'" in capsys.readouterr().err


def test_workflows_put_stores_the_chosen_values(aws: Any, files: tuple[Path, Path]) -> None:
    from clientary_xero.storage.workflows import WorkflowStore

    workflow, _ = files
    assert main(["workflows", "put", str(workflow), "--set", "SalesAccount=260"]) == 0
    stored = WorkflowStore().get("invoices")
    assert stored is not None
    assert stored.workflow is not None and stored.workflow.settings["SalesAccount"] == "260"
