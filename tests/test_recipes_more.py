"""The recipes beyond client, invoice and payment (recipes/), each run through ``clientary-xero
test-workflow`` on the sandboxes as a user would, with the effects read from the sandboxes:

* ``clientary-estimate-to-xero-quote``: the quote's lines, accounts, tax types and totals;
* ``clientary-expense-to-xero-bill``: the bill (ACCPAY), its supplier and its totals with tax;
* ``clientary-project-to-xero-project``: the Xero project for the client's contact;
* ``xero-contact-to-clientary-client``: the Clientary client's fields and contact person;
* ``xero-payment-to-clientary-payment``: the payment on the right Clientary invoice.

The Clientary → Xero recipes are also run for a client whose contact Xero already has under the
same name (made by hand, no ContactNumber): one contact, adopted and linked, never a second.
Every request to Xero must conform to Xero's OpenAPI description.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from clientary_xero.local import environment
from clientary_xero.local.cli import main
from clientary_xero.local.recording import read_records
from tests.xero_contract import validate_requests

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
EVENTS = RECIPES / "events"
SEEDS = RECIPES / "seeds"
MINE = (
    "clientary-estimate-to-xero-quote",
    "clientary-expense-to-xero-bill",
    "clientary-project-to-xero-project",
    "xero-contact-to-clientary-client",
    "xero-payment-to-clientary-payment",
)
XERO_KINDS = ("contacts", "invoices", "payments", "quotes", "projects")
CLIENTARY_KINDS = ("clients", "contacts", "payments", "invoices")


@dataclass
class Outcome:
    exit_code: int
    printed: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    xero: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    clientary: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        (run,) = self.runs
        return str(run["status"])

    def output(self, step: str) -> dict[str, Any]:
        assert self.steps[step]["status"] == "SUCCEEDED", self.steps[step].get("error")
        return dict(self.steps[step]["output"])


@pytest.fixture
def snapshots(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """What each LocalEnvironment held when test-workflow closed it: runs, steps, sandbox records."""
    taken: list[dict[str, Any]] = []
    original = environment.LocalEnvironment.__exit__

    def exit_and_keep(self: environment.LocalEnvironment, *exc: object) -> None:
        tenant = self.xero_tenant_id()
        runs = self.state.list_runs()
        taken.append(
            {
                "runs": runs,
                "steps": {s["step_id"]: s for r in runs for s in self.state.get_steps(r["run_id"])},
                "xero": {kind: getattr(self.xero, kind)(tenant) for kind in XERO_KINDS},
                "clientary": {kind: self.clientary.all_records(kind) for kind in CLIENTARY_KINDS},
            }
        )
        original(self, *exc)

    monkeypatch.setattr(environment.LocalEnvironment, "__exit__", exit_and_keep)
    yield taken


@pytest.fixture
def run(tmp_path: Path, snapshots: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> Any:
    def go(
        recipe: str, event: Path | dict[str, Any], *, seed: Path | None = None, sets: tuple[str, ...] = ()
    ) -> Outcome:
        if isinstance(event, dict):
            path = tmp_path / f"event-{len(snapshots)}.json"
            path.write_text(json.dumps(event))
            event = path
        record = tmp_path / f"requests-{len(snapshots)}.jsonl"
        argv = [
            "test-workflow",
            str(RECIPES / f"{recipe}.yaml"),
            "--event",
            str(event),
            "--record",
            str(record),
        ]
        if seed is not None:
            argv += ["--seed", str(seed)]
        for assignment in sets:
            argv += ["--set", assignment]
        code = main(argv)
        printed = capsys.readouterr().out
        snap = snapshots[-1]
        outcome = Outcome(
            exit_code=code,
            printed=printed,
            runs=snap["runs"],
            steps=snap["steps"],
            xero=snap["xero"],
            clientary=snap["clientary"],
            requests=[r for r in read_records(record) if r["url"].startswith("https://api.xero.com/")],
        )
        assert validate_requests(outcome.requests) == []
        return outcome

    return go


def event(name: str, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((EVENTS / name).read_text())
    record.update(changes)
    return record


def write_seed(tmp_path: Path, seed: dict[str, Any]) -> Path:
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed))
    return path


# ----------------------------------------------------------------------------------- every recipe
@pytest.mark.parametrize("recipe", MINE)
def test_the_recipe_validates_without_warnings(recipe: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "validate", str(RECIPES / f"{recipe}.yaml")]) == 0
    printed = capsys.readouterr()
    assert "WARNING" not in printed.out + printed.err
    document = yaml.safe_load((RECIPES / f"{recipe}.yaml").read_text())
    assert document["id"] == recipe and document["settings"]


@pytest.mark.parametrize("recipe", MINE)
def test_the_try_it_line_succeeds(
    recipe: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = RECIPES / f"{recipe}.yaml"
    comment = "\n".join(line[1:] for line in path.read_text().splitlines() if line.startswith("#"))
    match = re.search(r"Try it:\s*((?:[^\n]*\\\n)*[^\n]*)", comment)
    assert match, f"{path.name} has no '# Try it:' line"
    argv = shlex.split(match.group(1).replace("\\\n", " "))
    assert argv[:3] == ["clientary-xero", "test-workflow", f"recipes/{recipe}.yaml"]
    monkeypatch.chdir(ROOT)
    assert main(argv[1:]) == 0
    statuses = re.findall(r"→\s+([A-Z]+)\s*$", capsys.readouterr().out, flags=re.M)
    assert statuses == ["SUCCEEDED"]


# ------------------------------------------------------------------------- estimate → Xero quote
QUOTE = "clientary-estimate-to-xero-quote"


def test_an_estimate_becomes_a_quote_with_its_lines_accounts_and_tax(run: Any) -> None:
    estimate = event("estimate.json")
    out = run(QUOTE, estimate, sets=("TaxType=TAX001",))  # the sandbox's 9.5 % sales tax
    assert (out.exit_code, out.status) == (0, "SUCCEEDED")
    (contact,) = out.xero["contacts"]
    assert (contact["Name"], contact["ContactNumber"]) == ("Harbour Lights Ltd", "CL-31")
    assert out.output("contact")["created"] is True
    (quote,) = out.xero["quotes"]
    assert quote["Contact"]["ContactID"] == contact["ContactID"]
    assert (quote["QuoteNumber"], quote["Status"], quote["LineAmountTypes"]) == (
        "QU-CL-1001",
        "DRAFT",
        "EXCLUSIVE",
    )
    assert (quote["Title"], quote["Summary"], quote["Terms"]) == (
        "Shopfront signage",
        "Design and install of two signs",
        "Valid for 30 days.",
    )
    assert quote["Reference"] == "Clientary estimate 1001"
    # the two section headers are skipped; taxable items get TaxType, the untaxed one NoTaxType
    lines = [
        (line["Description"], line["Quantity"], line["UnitAmount"], line["AccountCode"], line["TaxType"])
        for line in quote["LineItems"]
    ]
    assert lines == [
        ("Sign design", 3.0, 150.0, "200", "TAX001"),
        ("Sign panels", 2.0, 450.0, "200", "TAX001"),
        ("Travel", 1.0, 100.0, "200", "NONE"),
    ]
    # Xero's totals equal Clientary's, tax included
    assert (quote["SubTotal"], quote["TotalTax"], quote["Total"]) == (
        estimate["subtotal"],
        estimate["total_tax"],
        estimate["total_cost"],
    )
    quoted = out.output("quote")
    assert (quoted["Date"], quoted["ExpiryDate"]) == ("2026-01-12", "2026-02-11")  # 30 days (ValidDays)


def test_an_estimate_whose_client_xero_has_by_name_uses_that_contact(run: Any) -> None:
    out = run(QUOTE, EVENTS / "estimate.json", seed=SEEDS / "xero-contact-same-name.yaml")
    assert (out.exit_code, out.status) == (0, "SUCCEEDED")
    (contact,) = out.xero["contacts"]  # adopted, not a second "Harbour Lights Ltd"
    assert (contact["Name"], contact["ContactNumber"], contact["EmailAddress"]) == (
        "Harbour Lights Ltd",
        "CL-31",
        "accounts@harbourlights.example",
    )
    assert out.output("contact")["created"] is False
    (quote,) = out.xero["quotes"]
    assert quote["Contact"]["ContactID"] == contact["ContactID"]


def test_the_quote_settings_choose_account_tax_status_and_validity(run: Any) -> None:
    estimate = event("estimate.json")
    sets = ("SalesAccount=260", "QuoteStatus=SENT", "ValidDays=14", "TaxType=TAX001", "NoTaxType=OUTPUT")
    out = run(QUOTE, estimate, sets=sets)
    assert out.exit_code == 0
    (quote,) = out.xero["quotes"]
    assert {line["AccountCode"] for line in quote["LineItems"]} == {"260"}
    assert [line["TaxType"] for line in quote["LineItems"]] == ["TAX001", "TAX001", "OUTPUT"]
    assert (quote["Status"], quote["Total"]) == ("SENT", 1578.25)
    assert out.output("quote")["ExpiryDate"] == "2026-01-26"


def test_the_quote_tax_is_clientarys_to_the_cent_where_xeros_rounding_differs(run: Any) -> None:
    # Clientary: 9.5 % of 3.09 = 0.29; Xero's per-line rounding of 0.09785 would give 0.30.
    items = [
        {"id": n, "item_type": 3, "title": f"Part {n}", "quantity": 1, "price": 1.03, "taxable": True}
        for n in (1, 2, 3)
    ]
    estimate = event("estimate.json", estimate_items=items, subtotal=3.09, total_tax=0.29, total_cost=3.38)
    out = run(QUOTE, estimate, sets=("TaxType=TAX001",))
    (quote,) = out.xero["quotes"]
    assert [line["TaxAmount"] for line in quote["LineItems"]] == [0.1, 0.1, 0.09]
    assert (quote["SubTotal"], quote["TotalTax"], quote["Total"]) == (3.09, 0.29, 3.38)


def test_an_estimate_without_tax_puts_no_tax_on_taxable_items(run: Any) -> None:
    estimate = event("estimate.json", tax=0, total_tax=0, total_cost=1450.0)
    out = run(QUOTE, estimate, sets=("TaxType=TAX001",))
    (quote,) = out.xero["quotes"]
    assert {line["TaxType"] for line in quote["LineItems"]} == {"NONE"}
    assert (quote["TotalTax"], quote["Total"]) == (0.0, 1450.0)


def test_an_estimate_without_a_client_is_filtered(run: Any) -> None:
    estimate = event("estimate.json", client=None, client_id=None)
    out = run(QUOTE, estimate)
    assert (out.exit_code, out.status) == (0, "FILTERED")
    assert out.xero["quotes"] == [] and out.xero["contacts"] == [] and out.requests == []


# --------------------------------------------------------------------------- expense → Xero bill
BILL = "clientary-expense-to-xero-bill"


def test_an_expense_becomes_a_bill_whose_total_is_the_expense_tax_included(run: Any) -> None:
    out = run(BILL, EVENTS / "expense.json", sets=("TaxType=TAX001",))
    assert (out.exit_code, out.status) == (0, "SUCCEEDED")
    (supplier,) = out.xero["contacts"]
    assert (supplier["Name"], supplier["ContactNumber"]) == ("Clientary expenses", "CL-EXPENSES")
    (bill,) = out.xero["invoices"]
    assert (bill["Type"], bill["InvoiceNumber"], bill["Status"], bill["LineAmountTypes"]) == (
        "ACCPAY",
        "CL-EXP-5000002",
        "DRAFT",
        "Inclusive",
    )
    assert bill["Contact"]["ContactID"] == supplier["ContactID"]
    (line,) = bill["LineItems"]
    assert (line["Description"], line["AccountCode"], line["TaxType"]) == (
        "Printer paper and toner (Clientary expense 5000002)",
        "429",
        "TAX001",
    )
    # 109.50 paid, 9.5 % tax included: 100.00 + 9.50
    assert (bill["SubTotal"], bill["TotalTax"], bill["Total"]) == (100.0, 9.5, 109.5)
    assert (out.output("bill")["Date"], out.output("bill")["DueDate"]) == ("2026-01-15", "2026-01-15")


def test_an_expense_whose_supplier_xero_has_by_name_uses_that_contact(run: Any) -> None:
    out = run(BILL, EVENTS / "expense.json", seed=SEEDS / "xero-supplier-same-name.yaml")
    assert (out.exit_code, out.status) == (0, "SUCCEEDED")
    (supplier,) = out.xero["contacts"]
    assert (supplier["Name"], supplier["ContactNumber"]) == ("Clientary expenses", "CL-EXPENSES")
    assert out.output("supplier")["created"] is False
    (bill,) = out.xero["invoices"]
    assert bill["Contact"]["ContactID"] == supplier["ContactID"]
    assert (bill["TotalTax"], bill["Total"]) == (0.0, 109.5)  # INPUT: the US default purchase rate, 0 %


def test_the_bill_settings_choose_supplier_account_amounts_status_and_due_date(run: Any) -> None:
    sets = (
        "Supplier=Sundry suppliers",
        "SupplierNumber=CL-SUNDRY",
        "ExpenseAccount=400",
        "AmountsAre=Exclusive",
        "TaxType=TAX001",
        "BillStatus=AUTHORISED",
        "DueDays=14",
    )
    out = run(BILL, EVENTS / "expense.json", sets=sets)
    assert out.exit_code == 0
    (supplier,) = out.xero["contacts"]
    assert (supplier["Name"], supplier["ContactNumber"]) == ("Sundry suppliers", "CL-SUNDRY")
    (bill,) = out.xero["invoices"]
    assert (bill["Status"], bill["LineItems"][0]["AccountCode"]) == ("AUTHORISED", "400")
    # 109.50 before tax: 10.40 tax (9.5 %, rounded), 119.90 in all
    assert (bill["SubTotal"], bill["TotalTax"], bill["Total"]) == (109.5, 10.4, 119.9)
    assert out.output("bill")["DueDate"] == "2026-01-29"


def test_an_expense_without_description_is_named_and_one_of_zero_is_filtered(run: Any) -> None:
    out = run(BILL, event("expense.json", description=""))
    (bill,) = out.xero["invoices"]
    assert bill["LineItems"][0]["Description"] == "Expense (Clientary expense 5000002)"
    out = run(BILL, event("expense.json", amount=0))
    assert (out.exit_code, out.status) == (0, "FILTERED")
    assert out.xero["invoices"] == []


# ---------------------------------------------------------------------- project → Xero project
PROJECT = "clientary-project-to-xero-project"


def test_a_project_becomes_a_xero_project_for_the_clients_contact(run: Any) -> None:
    out = run(PROJECT, EVENTS / "project.json")
    assert (out.exit_code, out.status) == (0, "SUCCEEDED")
    (contact,) = out.xero["contacts"]
    assert (contact["Name"], contact["ContactNumber"]) == ("Harbour Lights Ltd", "CL-31")
    (project,) = out.xero["projects"]
    assert (project["name"], project["contactId"], project["status"]) == (
        "Shopfront relaunch",
        contact["ContactID"],
        "INPROGRESS",
    )
    assert project["estimate"]["value"] == 6000.0  # 50 budgeted hours at 120
    assert project["deadlineUtc"] == "2026-03-31T00:00:00Z"
    assert any("projects.xro/2.0/Projects" in r["url"] for r in out.requests)


def test_a_project_whose_client_xero_has_by_name_uses_that_contact(run: Any) -> None:
    out = run(PROJECT, EVENTS / "project.json", seed=SEEDS / "xero-contact-same-name.yaml")
    assert (out.exit_code, out.status) == (0, "SUCCEEDED")
    (contact,) = out.xero["contacts"]
    assert (contact["ContactNumber"], contact["EmailAddress"]) == ("CL-31", "accounts@harbourlights.example")
    (project,) = out.xero["projects"]
    assert project["contactId"] == contact["ContactID"]


def test_an_amount_budget_is_the_estimate_and_no_budget_no_estimate(run: Any) -> None:
    out = run(PROJECT, event("project.json", budget_type=1, budget=4500))
    (project,) = out.xero["projects"]
    assert project["estimate"]["value"] == 4500.0
    out = run(PROJECT, event("project.json", budget=0, end_date=None))
    (project,) = out.xero["projects"]
    assert "estimate" not in project and "deadlineUtc" not in project


def test_completed_projects_are_filtered_unless_the_setting_says_otherwise(run: Any) -> None:
    completed = event("project.json", status=2)
    out = run(PROJECT, completed)
    assert (out.status, out.xero["projects"]) == ("FILTERED", [])
    out = run(PROJECT, completed, sets=("SkipCompleted=false",))
    assert out.status == "SUCCEEDED" and len(out.xero["projects"]) == 1


def test_a_project_without_a_client_is_filtered(run: Any) -> None:
    out = run(PROJECT, event("project.json", client=None))
    assert (out.status, out.xero["projects"], out.xero["contacts"]) == ("FILTERED", [], [])


# ------------------------------------------------------------------ Xero contact → Clientary client
CLIENT = "xero-contact-to-clientary-client"


def test_a_xero_contact_becomes_a_clientary_client_with_its_contact_person(run: Any) -> None:
    contact = event("xero-contact.json")
    out = run(CLIENT, EVENTS / "xero-contact.json")
    assert (out.exit_code, out.status) == (0, "SUCCEEDED")
    (client,) = out.clientary["clients"]
    fields = {
        k: client[k] for k in ("name", "address", "address_2", "city", "state", "zip", "country", "website")
    }
    assert fields == {
        "name": "Kea Cafe Ltd",
        "address": "PO Box 4021",  # POBOX, the default AddressType
        "address_2": "",
        "city": "Wellington",
        "state": "",
        "zip": "6140",
        "country": "NZ",
        "website": "https://kea.example",
    }
    assert client["description"].startswith(f"Xero contact {contact['ContactID']}\n[cx:")
    (person,) = out.clientary["contacts"]
    assert {k: person[k] for k in ("name", "email", "phone", "mobile", "client_id")} == {
        "name": "Ana Ruiz",
        "email": "accounts@kea.example",
        "phone": "64 4 555 0101",
        "mobile": "64 21 555 0102",
        "client_id": client["id"],
    }


def test_the_street_address_when_the_setting_says_so(run: Any) -> None:
    out = run(CLIENT, EVENTS / "xero-contact.json", sets=("AddressType=STREET",))
    (client,) = out.clientary["clients"]
    assert {k: client[k] for k in ("address", "address_2", "city", "state", "zip")} == {
        "address": "12 Cuba Street",
        "address_2": "Level 2",
        "city": "Wellington",
        "state": "Wellington",
        "zip": "6011",
    }


def test_a_contact_without_email_or_person_names_gets_no_contact_person(run: Any) -> None:
    out = run(CLIENT, event("xero-contact.json", EmailAddress=None, Addresses=[], Phones=[], Website=None))
    assert out.status == "SUCCEEDED"
    (client,) = out.clientary["clients"]
    assert (client["name"], client["city"], client["website"]) == ("Kea Cafe Ltd", "", "")
    assert out.clientary["contacts"] == []
    # no first or last name: the contact person is named after the contact
    out = run(CLIENT, event("xero-contact.json", FirstName="", LastName=None))
    (person,) = out.clientary["contacts"]
    assert person["name"] == "Kea Cafe Ltd"


def test_a_contact_that_came_from_clientary_is_filtered(run: Any) -> None:
    out = run(CLIENT, event("xero-contact.json", ContactNumber="CL-31"))
    assert (out.status, out.clientary["clients"]) == ("FILTERED", [])
    # another prefix of one's own: CL- contacts pass, CRM- ones do not
    out = run(CLIENT, event("xero-contact.json", ContactNumber="CL-31"), sets=("SkipPrefix=CRM-",))
    assert out.status == "SUCCEEDED" and len(out.clientary["clients"]) == 1


# ---------------------------------------------------------- Xero payment → Clientary invoice payment
PAYMENT = "xero-payment-to-clientary-payment"


def test_a_xero_payment_lands_on_the_linked_clientary_invoice(run: Any) -> None:
    paid = event("xero-payment.json")
    out = run(PAYMENT, EVENTS / "xero-payment.json", seed=SEEDS / "xero-payment-to-clientary-payment.yaml")
    assert (out.exit_code, out.status) == (0, "SUCCEEDED")
    (payment,) = out.clientary["payments"]
    assert (payment["invoice_id"], payment["amount"], payment["received_on"]) == (
        9540002,
        300.0,
        "2026-01-15",
    )
    assert payment["note"].startswith(f"Xero payment {paid['PaymentID']} (EFT 2211)\n[cx:")
    # found by the Xero invoice's Reference "Clientary invoice 9540002": no look-up by number
    assert out.steps["payment"]["input"]["invoice_id"] == 9540002
    assert "invoice_number" not in out.steps["payment"]["input"]
    invoices = {i["id"]: i for i in out.clientary["invoices"]}
    assert (invoices[9540002]["balance"], [p["id"] for p in invoices[9540002]["payments"]]) == (
        900.0,
        [payment["id"]],
    )
    assert (invoices[9540001]["balance"], invoices[9540001].get("payments") or []) == (800, [])


def test_without_the_reference_the_invoice_is_found_by_its_number(run: Any, tmp_path: Path) -> None:
    seed = yaml.safe_load((SEEDS / "xero-payment-to-clientary-payment.yaml").read_text())
    for invoice in seed["xero"]["Invoices"]:
        del invoice["Reference"]  # e.g. typed into Xero by hand with the CL- number
    out = run(PAYMENT, EVENTS / "xero-payment.json", seed=write_seed(tmp_path, seed))
    assert (out.exit_code, out.status) == (0, "SUCCEEDED")
    assert out.steps["payment"]["input"]["invoice_number"] == "1043"
    (payment,) = out.clientary["payments"]
    assert (payment["invoice_id"], payment["amount"]) == (9540002, 300.0)


@pytest.mark.parametrize(
    "changes",
    [
        {"Reference": "Clientary payment 980190001"},  # made by clientary-payment-to-xero-payment
        {
            "Invoice": {**event("xero-payment.json")["Invoice"], "InvoiceNumber": "INV-0007"}
        },  # not from Clientary
        {"Invoice": {**event("xero-payment.json")["Invoice"], "Type": "ACCPAY"}},  # a bill
    ],
    ids=["came-from-clientary", "other-invoice", "bill"],
)
def test_payments_that_are_not_for_a_clientary_invoice_are_filtered(
    run: Any, changes: dict[str, Any]
) -> None:
    out = run(
        PAYMENT, event("xero-payment.json", **changes), seed=SEEDS / "xero-payment-to-clientary-payment.yaml"
    )
    assert (out.exit_code, out.status) == (0, "FILTERED")
    assert out.clientary["payments"] == []


# ------------------------------------------------------------- delivered twice: still one record
def test_a_contact_event_delivered_twice_and_a_payment_polled_twice_act_once(local_env: Any) -> None:
    """What the two reverse recipes promise beyond one test-workflow run: Xero's webhook and the
    payments poll deliver at least once, and Clientary gets one client and one payment."""
    from clientary_xero.workflows.loader import read_document

    env = local_env
    env.put_workflow(read_document(RECIPES / f"{CLIENT}.yaml"))
    env.put_workflow(read_document(RECIPES / f"{PAYMENT}.yaml"))
    seed = yaml.safe_load((SEEDS / "xero-payment-to-clientary-payment.yaml").read_text())
    for collection, records in seed["clientary"].items():
        for record in records:
            env.clientary.load_record(collection, record)
    env.seed_xero(seed["xero"])
    env.poll_xero_payments()  # the first poll records where to start

    contact = env.load_xero_record("Contacts", event("xero-contact.json"))
    for _ in range(2):
        assert env.xero_event("CONTACT", "CREATE", contact["ContactID"])["statusCode"] == 200
        env.drain()
    env.load_xero_record("Payments", event("xero-payment.json"))
    for _ in range(2):
        env.poll_xero_payments()
        env.drain()

    assert sorted(c["name"] for c in env.clientary.all_records("clients")) == [
        "Harbour Lights Ltd",
        "Kea Cafe Ltd",
    ]
    assert len(env.clientary.all_records("contacts")) == 1
    (payment,) = env.clientary.all_records("payments")
    assert (payment["invoice_id"], payment["amount"]) == (9540002, 300.0)
    assert sorted(r["status"] for r in env.state.list_runs()) == ["SUCCEEDED", "SUCCEEDED"]
