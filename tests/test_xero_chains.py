"""Every Xero action chained in real workflows (examples/) through ``clientary-xero test-workflow``
on the sandboxes, in-process: trigger handler → queue → Xero action handler → Xero sandbox.

Each run records its requests (``--record``); every request to api.xero.com must conform to Xero's
OpenAPI description (0 problems) and every write must carry an Idempotency-Key. The effects are read
from the sandbox and the run's checkpoints just before the local environment closes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.local import environment
from clientary_xero.local.cli import main
from clientary_xero.local.recording import read_records
from tests.xero_contract import validate_requests

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EVENT = EXAMPLES / "events" / "invoice.json"


@dataclass
class Outcome:
    exit_code: int
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_status: str | None = None
    xero: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def snapshots(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """What each LocalEnvironment held when it closed: its run, step outputs and sandbox records."""
    taken: list[dict[str, Any]] = []
    original = environment.LocalEnvironment.__exit__

    def exit_and_keep(self: environment.LocalEnvironment, *exc: object) -> None:
        tenant = self.xero_tenant_id()
        runs = self.state.list_runs()
        taken.append(
            {
                "runs": runs,
                "steps": {s["step_id"]: s for r in runs for s in self.state.get_steps(r["run_id"])},
                "xero": {
                    kind: getattr(self.xero, kind)(tenant)
                    for kind in (
                        "contacts",
                        "invoices",
                        "payments",
                        "quotes",
                        "purchase_orders",
                        "items",
                        "bank_transfers",
                        "projects",
                    )
                },
                "history": {
                    i["InvoiceID"]: self.xero.history(tenant, i["InvoiceID"])
                    for i in self.xero.invoices(tenant)
                },
            }
        )
        original(self, *exc)

    monkeypatch.setattr(environment.LocalEnvironment, "__exit__", exit_and_keep)
    yield taken


def run_example(name: str, tmp_path: Path, snapshots: list[dict[str, Any]]) -> Outcome:
    record = tmp_path / f"{name}.jsonl"
    code = main(
        ["test-workflow", str(EXAMPLES / f"{name}.yaml"), "--event", str(EVENT), "--record", str(record)]
    )
    snap = snapshots[-1]
    (run,) = snap["runs"]
    outcome = Outcome(
        exit_code=code,
        steps={k: v for k, v in snap["steps"].items()},
        run_status=run.get("status"),
        xero=snap["xero"],
        history=snap["history"],
        requests=[r for r in read_records(record) if r["url"].startswith("https://api.xero.com/")],
    )
    assert validate_requests(outcome.requests) == []
    writes = [r for r in outcome.requests if r["method"] in ("POST", "PUT", "PATCH")]
    assert writes and all(r["headers"].get("Idempotency-Key") for r in writes)
    assert "Authorization" not in json.dumps(outcome.requests)
    return outcome


def output(outcome: Outcome, step: str) -> dict[str, Any]:
    assert outcome.steps[step]["status"] == "SUCCEEDED", outcome.steps[step].get("error")
    return dict(outcome.steps[step]["output"])


def test_find_contact_create_invoice_add_note_create_payment(
    tmp_path: Path, snapshots: list[dict[str, Any]]
) -> None:
    out = run_example("xero-invoice-note-payment", tmp_path, snapshots)
    assert (out.exit_code, out.run_status) == (0, "SUCCEEDED")
    contact, found = output(out, "contact"), output(out, "found")
    assert (found["found"], found["ContactID"], found["ContactNumber"]) == (
        True,
        contact["ContactID"],
        "CL-31",
    )
    (invoice,) = out.xero["invoices"]
    assert (invoice["InvoiceNumber"], invoice["Status"], invoice["Total"]) == (
        "CL-1042",
        "AUTHORISED",
        1250.5,
    )
    assert (invoice["AmountPaid"], invoice["AmountDue"]) == (1000.0, 250.5)
    assert [h["Details"] for h in out.history[invoice["InvoiceID"]]] == [
        "Synced from Clientary invoice #1042 (Kitchen renovation)"
    ]
    (payment,) = out.xero["payments"]
    assert (payment["Amount"], payment["Account"]["Code"], payment["Reference"]) == (
        1000.0,
        "090",
        "Clientary invoice 1042",
    )
    check = output(out, "check")
    assert (check["AmountDue"], check["AmountPaid"], check["Status"]) == (250.5, 1000.0, "AUTHORISED")
    assert output(out, "payment")["InvoiceAmountDue"] == 250.5
    calls = [(r["method"], r["url"].split("?")[0].split("/2.0")[1]) for r in out.requests]
    assert ("PUT", f"/Invoices/{invoice['InvoiceID']}/History") in calls and ("PUT", "/Payments") in calls


def test_quote(tmp_path: Path, snapshots: list[dict[str, Any]]) -> None:
    out = run_example("xero-quote", tmp_path, snapshots)
    assert out.exit_code == 0
    (quote,) = out.xero["quotes"]
    assert (quote["QuoteNumber"], quote["LineAmountTypes"], quote["Total"], quote["Title"]) == (
        "QU-CL-1042",
        "EXCLUSIVE",
        1250.5,
        "Kitchen renovation",
    )
    assert output(out, "quote")["ExpiryDate"] == "2026-02-19"


def test_purchase_order_then_find_it(tmp_path: Path, snapshots: list[dict[str, Any]]) -> None:
    out = run_example("xero-purchase-order", tmp_path, snapshots)
    assert out.exit_code == 0
    (order,) = out.xero["purchase_orders"]
    assert (order["Status"], order["Total"], order["Contact"]["Name"]) == (
        "AUTHORISED",
        1250.5,
        "Builders Supply Co",
    )
    lookup = output(out, "lookup")
    assert (lookup["found"], lookup["PurchaseOrderNumber"], lookup["DeliveryDate"]) == (
        True,
        "PO-CL-1042",
        "2026-02-19",
    )


def test_stock_items(tmp_path: Path, snapshots: list[dict[str, Any]]) -> None:
    out = run_example("xero-stock-items", tmp_path, snapshots)
    assert out.exit_code == 0
    items = {i["Code"]: i for i in out.xero["items"]}
    assert set(items) == {"CL-ITEM-1", "CL-ITEM-2", "CABINET-STD"}
    assert items["CABINET-STD"]["IsTrackedAsInventory"] is True
    assert items["CL-ITEM-1"]["SalesDetails"]["UnitPrice"] == 150.25
    assert output(out, "items")["created"] == 2


def test_bank_transfer(tmp_path: Path, snapshots: list[dict[str, Any]]) -> None:
    out = run_example("xero-bank-transfer", tmp_path, snapshots)
    assert out.exit_code == 0
    (transfer,) = out.xero["bank_transfers"]
    assert (transfer["Amount"], transfer["FromBankAccount"]["Code"], transfer["ToBankAccount"]["Code"]) == (
        1000.0,
        "090",
        "091",
    )
    (put,) = [r for r in out.requests if r["method"] == "PUT"]
    assert "summarizeErrors" not in put["url"]


def test_project(tmp_path: Path, snapshots: list[dict[str, Any]]) -> None:
    out = run_example("xero-project", tmp_path, snapshots)
    assert out.exit_code == 0
    (project,) = out.xero["projects"]
    assert (project["name"], project["estimate"]["value"], project["deadlineUtc"]) == (
        "Kitchen renovation",
        1250.5,
        "2026-02-19T00:00:00Z",
    )
    assert any("projects.xro/2.0/Projects" in r["url"] for r in out.requests)


def test_both_reports(tmp_path: Path, snapshots: list[dict[str, Any]]) -> None:
    out = run_example("xero-reports", tmp_path, snapshots)
    assert out.exit_code == 0
    balance, profit = output(out, "balance"), output(out, "profit")
    assert balance["Columns"] == ["19 Feb 2026"]
    assert balance["Totals"]["Total Assets"] == 1250.5 and balance["Totals"]["Net Assets"] == 1250.5
    receivable = next(line for line in balance["Lines"] if line["account"] == "Accounts Receivable")
    assert receivable["account_id"] and receivable["values"] == {"19 Feb 2026": 1250.5}
    assert profit["Totals"]["Net Profit"] == 1250.5
    assert balance["ReportDate"] == date.fromisoformat(balance["ReportDate"]).isoformat()  # ISO
    assert balance["ReportDateText"] and balance["ReportDateText"] != balance["ReportDate"]
    assert profit["Rows"][0]["RowType"] == "Header"


def test_a_failing_step_fails_the_run_with_xeros_message(
    tmp_path: Path, snapshots: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = tmp_path / "pay-a-draft.yaml"
    workflow.write_text(
        """
id: pay-a-draft
trigger: clientary.new_invoice
steps:
  - id: contact
    action: xero.create_or_update_contact
    input: { Name: "{% invoice.client.name %}" }
  - id: invoice
    action: xero.create_invoice
    input:
      Contact: { ContactID: "{% steps.contact.ContactID %}" }
      LineItems: [ { Description: Work, UnitAmount: 10, AccountCode: "200" } ]
  - id: payment
    action: xero.create_payment
    input:
      Invoice: { InvoiceID: "{% steps.invoice.InvoiceID %}" }
      Account: { Code: "090" }
      Amount: 10
"""
    )
    code = main(["test-workflow", str(workflow), "--event", str(EVENT)])
    assert code == 1
    assert "Payments can only be made against Authorised documents." in capsys.readouterr().out
    assert snapshots[-1]["xero"]["payments"] == []


def test_an_invalid_rendered_input_fails_the_step_before_any_call_to_xero(
    tmp_path: Path, snapshots: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = tmp_path / "bad-note.yaml"
    workflow.write_text(
        """
id: bad-note
trigger: clientary.new_invoice
steps:
  - id: note
    action: xero.add_note_to_invoice
    input:
      InvoiceID: 6f9619ff-8b86-d011-b42d-00cf4fc964ff
      Details: "{% $join([1..100].$string($), ' ') & ' ' & invoice.title %}"
      IfTooLong: refuse
"""
    )
    record = tmp_path / "bad.jsonl"
    code = main(["test-workflow", str(workflow), "--event", str(EVENT), "--record", str(record)])
    printed = capsys.readouterr().out
    assert code == 1
    assert "the input for xero.add_note_to_invoice is invalid" in printed
    assert "input: Value error, Details has 310 characters; a Xero note holds at most 250" in printed
    assert [r for r in read_records(record) if r["url"].startswith("https://api.xero.com/")] == []


def test_the_readme_shows_every_xero_action_in_one_step_and_the_steps_run(
    tmp_path: Path, snapshots: list[dict[str, Any]]
) -> None:
    from clientary_xero.connectors.base import registry

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Actions") :]
    section = section[: section.index("\n## ", 1)]
    block = section[section.index("```yaml\n- id: contact") + len("```yaml\n") :]
    block = block[: block.index("```")]
    workflow = tmp_path / "readme.yaml"
    workflow.write_text(
        "id: readme-actions\ntrigger: clientary.new_invoice\nsteps:\n"
        + "".join(f"  {line}\n" for line in block.splitlines())
    )
    xero_actions = {name for name in registry() if name.startswith("xero.")}
    assert {name for name in xero_actions if f"action: {name}" in block} == xero_actions
    assert all(f"`{name}`" in section for name in xero_actions)
    record = tmp_path / "readme.jsonl"
    assert main(["test-workflow", str(workflow), "--event", str(EVENT), "--record", str(record)]) == 0
    assert {s["status"] for s in snapshots[-1]["steps"].values()} == {"SUCCEEDED"}
    assert (
        validate_requests([r for r in read_records(record) if r["url"].startswith("https://api.xero.com/")])
        == []
    )
