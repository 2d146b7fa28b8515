"""`clientary-xero workflows validate` and `test-workflow` on files: unreadable files, warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from clientary_xero.local.cli import EXIT_INVALID, main

WORKFLOW = """
id: bills
trigger: clientary.new_invoice
steps:
  - id: supplier
    action: xero.create_or_update_contact
    input:
      Name: "{% 'Supplier ' & invoice.client.name %}"
"""


def missing_line(path: Path) -> str:
    return f"error: cannot read the workflow {path}: No such file or directory\n"


def test_validate_names_a_missing_file_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(WORKFLOW)
    missing = tmp_path / "nonexistent.yaml"
    assert main(["workflows", "validate", str(missing), str(good)]) == EXIT_INVALID
    out, err = capsys.readouterr()
    assert err == missing_line(missing)
    assert f"{good}: ok (bills, trigger clientary.new_invoice)" in out  # the other files are still checked


def test_validate_names_a_directory_given_as_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workflows", "validate", str(tmp_path)]) == EXIT_INVALID
    assert capsys.readouterr().err == f"error: cannot read the workflow {tmp_path}: Is a directory\n"


def test_validate_refuses_a_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "w.yaml"
    binary.write_bytes(b"id: x\n\xff\xfe")
    assert main(["workflows", "validate", str(binary)]) == EXIT_INVALID
    out = capsys.readouterr().out
    assert f"  - {binary}: not UTF-8 text: invalid start byte at byte 6" in out


def test_test_workflow_names_a_missing_workflow_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "invoice.json"
    event.write_text('{"id": 1}')
    missing = tmp_path / "nope.yaml"
    assert main(["test-workflow", str(missing), "--event", str(event)]) == EXIT_INVALID
    assert capsys.readouterr().err == missing_line(missing)


def test_test_workflow_names_a_missing_secrets_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(WORKFLOW)
    event = tmp_path / "invoice.json"
    event.write_text('{"id": 1}')
    secrets = tmp_path / "secrets.json"
    argv = ["test-workflow", str(workflow), "--event", str(event), "--live", "--secrets", str(secrets)]
    assert main(argv) == EXIT_INVALID
    assert capsys.readouterr().err == f"error: cannot read the secrets {secrets}: No such file or directory\n"
    secrets.write_text("{not json")
    assert main(argv) == EXIT_INVALID
    assert capsys.readouterr().err.startswith(f"error: the secrets {secrets} are not valid JSON: ")


def test_put_names_a_missing_file_and_saves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["workflows", "put", str(missing), "--stack", "unused"]) == EXIT_INVALID
    assert capsys.readouterr().err == missing_line(missing)


INVOICE_STEP = """
  - id: invoice
    action: xero.create_invoice
    input:
      Contact: { ContactID: "{% steps.supplier.ContactID %}" }
      LineItems: [{ Description: Work, Quantity: 1, UnitAmount: 5 }]
"""


def test_validate_warns_about_an_invoice_a_late_retry_cannot_find(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW + INVOICE_STEP)
    assert main(["workflows", "validate", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}: ok (bills, trigger clientary.new_invoice)\n"
        "  - WARNING steps[1] (step 'invoice').input: gives neither InvoiceNumber nor Reference, so a "
        "retry more than 6 minutes after a lost answer (when Xero has forgotten its Idempotency-Key) "
        "cannot find the invoice an earlier attempt made and may create it twice; set InvoiceNumber or "
        "Reference from the trigger record\n"
    )


@pytest.mark.parametrize("key", ["InvoiceNumber", "Reference"])
def test_no_warning_when_the_invoice_has_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW + INVOICE_STEP + f'      {key}: "{{% invoice.number %}}"\n')
    assert main(["workflows", "validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok (bills, trigger clientary.new_invoice)\n"


def test_warnings_reach_steps_inside_branches_and_other_create_actions() -> None:
    from clientary_xero.workflows.validate import parse_workflow, warnings

    quote = {
        "id": "q",
        "action": "xero.create_quote",
        "input": {
            "Contact": {"ContactNumber": "CL-1"},
            "Date": "2026-02-01",
            "LineItems": [{"Description": "x", "UnitAmount": 1}],
        },
    }
    workflow = parse_workflow(
        {
            "id": "w",
            "trigger": "clientary.new_invoice",
            "steps": [{"if": "{% true %}", "then": [], "else": [quote]}],
        }
    )
    (remark,) = warnings(workflow)
    assert remark.startswith("steps[0] (branch 'if_1').else[0] (step 'q').input: gives no QuoteNumber, ")


def test_the_warning_for_a_bill_asks_for_its_number_only() -> None:
    from clientary_xero.workflows.validate import parse_workflow, warnings

    bill = {
        "id": "bill",
        "action": "xero.create_invoice",
        "input": {
            "Type": "ACCPAY",
            "Contact": {"ContactNumber": "SUP-1"},
            "LineItems": [{"Description": "x", "UnitAmount": 1}],
        },
    }
    (remark,) = warnings(parse_workflow({"id": "w", "trigger": "clientary.new_invoice", "steps": [bill]}))
    assert "gives no InvoiceNumber" in remark and "Reference" not in remark
