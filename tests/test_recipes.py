"""Issue 11, point 6: the recipes in ``recipes/``.

Every file there (whoever wrote it) follows recipes/README.md's layout, validates without warnings,
is listed by ``recipes list`` and its "Try it" command succeeds on the sandboxes. The three
Clientary → Xero recipes of this file are then run through ``test-workflow`` on the sandboxes: a
client or invoice whose contact already exists in Xero under the same name, invoices with tax,
section headers and discounts whose Xero total equals Clientary's to the cent, a payment applied
to the linked invoice into the bank account of the settings, and a setting Xero refuses.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from clientary_xero.local.cli import main
from tests.test_examples import try_it

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
CLIENT = ROOT / "recipes" / "clientary-client-to-xero-contact.yaml"
INVOICE = ROOT / "recipes" / "clientary-invoice-to-xero-invoice.yaml"
PAYMENT = ROOT / "recipes" / "clientary-payment-to-xero-payment.yaml"
INVOICE_EVENT = ROOT / "examples" / "events" / "invoice.json"  # Clientary invoice 1042, Timber & Co
CLIENT_EVENT = ROOT / "recipes" / "events" / "client.json"  # client 2123, Harbour Lights Ltd
PAYMENT_EVENT = ROOT / "recipes" / "events" / "payment.json"  # 250.50 on invoice 1042
HAND_MADE = "8d3f3c1e-5b7a-4d2e-9f10-2a6b4c8e0d11"  # a contact entered in Xero by hand
LINKED = "5e0a9b7c-1d2f-4e3a-8b4c-6d5e7f8a9b0c"  # the Xero invoice made for Clientary invoice 1042


def header(path: Path) -> list[str]:
    """The comment block a recipe starts with (its lines without the leading ``#``)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:])
    return lines


def document(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def steps_of(out: str) -> dict[str, dict[str, Any]]:
    """Each step ``test-workflow`` printed: its status and, as JSON, its input, output and error."""
    steps: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        started = re.match(r"^  step (\w+): ([A-Z]+) ", line)
        if started:
            current = steps[started.group(1)] = {"status": started.group(2)}
        labelled = re.match(r"^    (input|output|error): (.*)$", line)
        if labelled and current is not None:
            text = [labelled.group(2)]
            while text[0] in ("{", "[") and i + 1 < len(lines) and not re.match(r"^    [}\]]$", lines[i]):
                i += 1
                text.append(lines[i][4:])
            current[labelled.group(1)] = json.loads("\n".join(text))
        i += 1
    return steps


def recorded(path: Path, method: str, endpoint: str) -> list[dict[str, Any]]:
    """The JSON bodies of the recorded requests ``method`` to Xero's ``/endpoint``."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        r.get("json") or {}
        for r in records
        if r["method"] == method and r["url"].split("?")[0].endswith(f"/{endpoint}")
    ]


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, dict[str, dict[str, Any]]]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr().out
    return code, out, steps_of(out)


def write_seed(tmp_path: Path, seed: dict[str, Any]) -> Path:
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed, allow_unicode=True))
    return path


def clientary_invoice(
    tmp_path: Path, client: str, items: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    """An invoice as Clientary computes it (its totals rounded as Clientary rounds), saved as an
    event file; the file's path is under ``"_path"``."""
    from clientary_xero.local.clientary_sandbox import ClientarySandbox

    sandbox = ClientarySandbox()
    invoice: dict[str, Any] = sandbox.add_invoice(sandbox.seed_client(client)["id"], items, **fields)
    path = tmp_path / f"invoice-{invoice['id']}.json"
    path.write_text(json.dumps(invoice))
    return {**invoice, "_path": path}


# ------------------------------------------------------------ every recipe
def test_the_recipes_of_issue_11_are_there() -> None:
    names = {p.stem for p in RECIPES}
    assert {CLIENT.stem, INVOICE.stem, PAYMENT.stem} <= names


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_follows_the_layout(path: Path) -> None:
    doc = document(path)
    assert doc["id"] == path.stem, "the workflow's id is the file's name"
    lines = header(path)
    assert lines, f"{path.name} starts with no comment block"
    assert lines[0].strip() == f"Recipe: {doc['name']}", "the first line is '# Recipe: <name:>'"
    text = "\n".join(lines)
    assert len([line for line in lines[1:] if line.strip()]) >= 3, "it says what it does"
    settings = doc.get("settings") or {}
    assert isinstance(settings, dict)
    marker = next((i for i, line in enumerate(lines) if line.strip().startswith("Settings")), None)
    assert marker is not None, f"{path.name} has no '# Settings' part"
    if not settings:
        assert lines[marker].strip() == "Settings: none"
    for name in settings:
        assert any(re.match(rf"^\s+{re.escape(name)}\s+\S", line) for line in lines[marker + 1 :]), (
            f"{path.name}: the Settings part does not explain {name}"
        )
    store = re.search(r"^ Store it: (.*)$", text, flags=re.M)
    assert store, f"{path.name} has no '# Store it:' line"
    assert store.group(1).startswith(f"clientary-xero workflows put recipes/{path.name}")
    for assignment in re.findall(r"--set (\S+)", store.group(1)):
        assert assignment.split("=", 1)[0] in settings, f"{path.name}: Store it sets {assignment}"
    argv = try_it(path)
    assert argv[:3] == ["clientary-xero", "test-workflow", f"recipes/{path.name}"], argv
    for option in ("--event", "--seed"):
        if option in argv:
            assert (ROOT / argv[argv.index(option) + 1]).is_file(), f"{path.name}: {option} file missing"


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_validates_without_warnings(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "validate", str(path)]) == 0
    printed = capsys.readouterr()
    assert "WARNING" not in printed.out + printed.err, printed.out


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_s_try_it_command_succeeds(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    code = main(try_it(path)[1:])
    out = capsys.readouterr().out
    assert code == 0, out
    statuses = re.findall(r"→\s+([A-Z]+)\s*$", out, flags=re.M)
    assert statuses and set(statuses) <= {"SUCCEEDED", "FILTERED"}, out
    assert "SUCCEEDED" in statuses, out


# ------------------------------------------------------------ recipes list / show
def test_recipes_list_shows_every_recipe_with_its_trigger_actions_and_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["recipes", "list", "--json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(listed) == {p.stem for p in RECIPES}
    for path in RECIPES:
        doc, shown = document(path), listed[path.stem]
        assert "problem" not in shown
        assert shown["title"] == doc["name"] and shown["trigger"] == doc["trigger"]
        assert shown["settings"] == (doc.get("settings") or {})
        assert shown["actions"] and all(a.startswith(("xero.", "clientary.")) for a in shown["actions"])
    assert listed[INVOICE.stem]["actions"] == ["xero.create_or_update_contact", "xero.create_invoice"]
    assert listed[PAYMENT.stem]["actions"] == ["xero.find_invoice", "xero.create_payment"]
    assert listed[PAYMENT.stem]["settings"] == {"BankAccount": "090"}

    assert main(["recipes", "list"]) == 0
    table = capsys.readouterr().out
    for path in RECIPES:
        assert path.stem in table and document(path)["name"] in table
    assert "TaxType=OUTPUT" in table and "DiscountAccount=(empty)" in table
    assert f"{len(RECIPES)} recipes in {ROOT / 'recipes'}" in table
    assert "workflows put" in table and "--set" in table


def test_recipes_are_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # not the checkout: the folder is found from the package
    assert main(["recipes", "show", INVOICE.stem]) == 0
    assert capsys.readouterr().out == INVOICE.read_text(encoding="utf-8")
    assert main(["recipes", "show", PAYMENT.name]) == 0  # the file name works too
    assert capsys.readouterr().out == PAYMENT.read_text(encoding="utf-8")
    assert main(["recipes", "list"]) == 0
    assert f"workflows put {ROOT / 'recipes'}/NAME.yaml" in capsys.readouterr().out


def test_recipes_show_names_the_nearest_recipe_for_a_typo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes", "show", "clientary-invoice-to-xero-invoce"]) == 1
    err = capsys.readouterr().err
    assert (
        "no recipe 'clientary-invoice-to-xero-invoce' (did you mean clientary-invoice-to-xero-invoice?)"
        in err
    )
    assert CLIENT.stem in err and PAYMENT.stem in err


def test_another_recipes_folder_and_an_unreadable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.yaml").write_text(PAYMENT.read_text(encoding="utf-8"))
    (tmp_path / "broken.yaml").write_text("id: broken\nsteps: [\n")
    (tmp_path / "notes.txt").write_text("not a recipe")
    monkeypatch.setenv("CLIENTARY_XERO_RECIPES", str(tmp_path))
    assert main(["recipes", "list", "--json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(listed) == {"mine", "broken"}
    assert listed["mine"]["trigger"] == "clientary.new_payment"
    assert "broken.yaml:" in listed["broken"]["problem"] and "not valid YAML" in listed["broken"]["problem"]
    monkeypatch.setenv("CLIENTARY_XERO_RECIPES", str(tmp_path / "nowhere"))
    assert main(["recipes", "list"]) == 1
    assert "CLIENTARY_XERO_RECIPES is" in capsys.readouterr().err


def test_workflows_put_stores_a_recipe_with_the_chosen_settings(
    aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.storage.workflows import WorkflowStore

    monkeypatch.chdir(ROOT)
    argv = [
        "workflows",
        "put",
        f"recipes/{INVOICE.name}",
        "--set",
        "SalesAccount=0260",
        "--set",
        "TaxType=TAX001",
    ]
    assert main(argv) == 0
    assert f"saved {INVOICE.stem} (clientary.new_invoice, enabled)" in capsys.readouterr().out
    stored = WorkflowStore().get(INVOICE.stem)
    assert stored is not None and stored.workflow is not None
    assert stored.workflow.settings == {
        "SalesAccount": "0260",  # text stays text: the leading zero is kept
        "DiscountAccount": "",
        "TaxType": "TAX001",
        "NoTaxType": "NONE",
        "Status": "AUTHORISED",
    }
    # A setting the recipe does not declare is refused with the declared names; nothing changes.
    assert main(["workflows", "put", f"recipes/{PAYMENT.name}", "--set", "BankAcount=091"]) == 2
    printed = capsys.readouterr()
    out = printed.out + printed.err
    assert (
        "--set BankAcount: the workflow declares no setting 'BankAcount' (did you mean BankAccount?)" in out
    )
    assert WorkflowStore().get(PAYMENT.stem) is None


# ------------------------------------------------------------ client → contact
def test_client_recipe_creates_a_contact_with_the_client_s_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requests = tmp_path / "requests.jsonl"
    code, out, steps = run(capsys, "test-workflow", CLIENT, "--event", CLIENT_EVENT, "--record", requests)
    assert code == 0, out
    contact = steps["contact"]
    assert contact["status"] == "SUCCEEDED" and contact["output"]["created"] is True
    assert (
        contact["output"]["ContactNumber"] == "CL-2123" and contact["output"]["Name"] == "Harbour Lights Ltd"
    )
    sent = recorded(requests, "POST", "Contacts")[-1]["Contacts"][0]
    assert sent["SalesDefaultAccountCode"] == "200" and "AccountsReceivableTaxType" not in sent
    assert sent["Addresses"] == [
        {
            "AddressType": "POBOX",
            "AddressLine1": "12 Quay Street",
            "AddressLine2": "Unit 4",
            "City": "Portland",
            "Region": "ME",
            "PostalCode": "04101",
            "Country": "US",
        }
    ]


def test_client_recipe_takes_over_a_contact_with_the_same_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = write_seed(
        tmp_path,
        {
            "xero": {
                "Contacts": [
                    {"ContactID": HAND_MADE, "Name": "Harbour Lights Ltd", "EmailAddress": "a@hl.example"}
                ]
            }
        },
    )
    requests = tmp_path / "requests.jsonl"
    code, out, steps = run(
        capsys,
        "test-workflow", CLIENT, "--event", CLIENT_EVENT, "--seed", seed, "--record", requests,
        "--set", "SalesTaxType=TAX001",
    )  # fmt: skip
    assert code == 0, out
    output = steps["contact"]["output"]
    assert output["ContactID"] == HAND_MADE and output["created"] is False
    assert output["ContactNumber"] == "CL-2123"  # linked: the next change of this client updates it
    assert output["EmailAddress"] == "a@hl.example"  # what the client does not have is left alone
    update = recorded(requests, "POST", "Contacts")[-1]["Contacts"][0]
    assert update["ContactID"] == HAND_MADE and update["AccountsReceivableTaxType"] == "TAX001"
    assert update["Addresses"][0]["City"] == "Portland"


# ------------------------------------------------------------ invoice → invoice
def test_invoice_recipe_bills_the_contact_that_exists_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = write_seed(tmp_path, {"xero": {"Contacts": [{"ContactID": HAND_MADE, "Name": "Timber & Co"}]}})
    code, out, steps = run(capsys, "test-workflow", INVOICE, "--event", INVOICE_EVENT, "--seed", seed)
    assert code == 0, out
    assert (
        steps["contact"]["output"]["ContactID"] == HAND_MADE
        and steps["contact"]["output"]["created"] is False
    )
    invoice = steps["invoice"]["output"]
    assert steps["invoice"]["status"] == "SUCCEEDED" and invoice["ContactID"] == HAND_MADE
    assert invoice["InvoiceNumber"] == "CL-1042" and invoice["Reference"] == "Clientary invoice 1042"
    assert invoice["Status"] == "AUTHORISED" and invoice["Total"] == 1250.5  # Clientary's total_cost


def test_invoice_with_tax_a_section_header_and_a_discount_totals_clientary_s_to_the_cent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = clientary_invoice(
        tmp_path,
        "Harbour Lights Ltd",
        [
            {"title": "Design", "item_type": 0},  # a section header
            {"title": "Lighting plan", "quantity": 3, "price": 333.33, "taxable": True},
            {"title": "Fittings", "quantity": 7, "price": 12.345, "taxable": True},  # 86.415: half a cent
            {"title": "Travel", "quantity": 1, "price": 45, "taxable": False},
            {"title": "Loyalty discount", "quantity": 1, "price": -100.01, "taxable": True},
        ],
        status=2,
        tax=9.5,
        tax2=1.25,
        compound_tax=True,
    )
    requests = tmp_path / "requests.jsonl"
    code, out, steps = run(
        capsys,
        "test-workflow", INVOICE, "--event", source["_path"], "--record", requests,
        "--set", "TaxType=TAX001", "--set", "DiscountAccount=260",
    )  # fmt: skip
    assert code == 0, out
    xero = steps["invoice"]["output"]
    assert source["total_taxes"] > 0 and source["total_cost"] == 1138.61
    assert xero["Total"] == source["total_cost"]  # to the cent, tax included
    assert xero["TotalTax"] == source["total_taxes"] and xero["SubTotal"] == source["subtotal"]
    lines = recorded(requests, "PUT", "Invoices")[-1]["Invoices"][0]["LineItems"]
    assert [line["Description"] for line in lines] == [
        "Lighting plan",
        "Fittings",
        "Travel",
        "Loyalty discount",
    ]
    by_title = {line["Description"]: line for line in lines}
    assert (
        by_title["Loyalty discount"]["AccountCode"] == "260"
        and by_title["Loyalty discount"]["UnitAmount"] == -100.01
    )
    assert by_title["Lighting plan"]["AccountCode"] == "200"
    assert by_title["Travel"]["TaxType"] == "NONE" and by_title["Travel"]["TaxAmount"] == 0
    assert {by_title[t]["TaxType"] for t in ("Lighting plan", "Fittings", "Loyalty discount")} == {"TAX001"}


@pytest.mark.parametrize(
    ("items", "fields"),
    [
        # three taxes, not compound, on prices with four decimals and fractional quantities
        (
            [
                {"title": "Hours", "quantity": 12.75, "price": 87.3333, "taxable": True},
                {"title": "Licence", "quantity": 3, "price": 19.99, "taxable": True},
                {"title": "Printing", "quantity": 0.5, "price": 0.25, "taxable": True},
            ],
            {"tax": 7.25, "tax2": 2.5, "tax3": 0.35},
        ),
        # a discount bigger than one taxed line, taxed and untaxed lines mixed, a header between
        (
            [
                {"title": "Phase 1", "item_type": 0},
                {"title": "Workshop", "quantity": 1, "price": 0.01, "taxable": True},
                {"title": "Report", "quantity": 1, "price": 1999.995, "taxable": False},
                {"title": "Phase 2", "item_type": 0},
                {"title": "Coaching", "quantity": 3, "price": 33.335, "taxable": True},
                {"title": "Early-payment discount", "quantity": 2, "price": -25.005, "taxable": True},
            ],
            {"tax": 15},
        ),
        # one line, compound taxes whose rate is not the tax type's (TAX001 is 9.5 %)
        (
            [{"title": "Retainer", "quantity": 7.75, "price": 321.835, "taxable": True}],
            {"tax": 7.25, "tax2": 1.5, "compound_tax": True},
        ),
        # no tax on the invoice although its lines are taxable: no tax type of tax
        ([{"title": "Retainer", "quantity": 1, "price": 1500, "taxable": True}], {"tax": 0}),
    ],
    ids=["three-taxes", "discount-and-headers", "one-line", "taxable-without-tax"],
)
def test_invoice_totals_equal_clientary_s(
    items: list[dict[str, Any]], fields: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = clientary_invoice(tmp_path, "Solo Design", items, status=1, **fields)
    requests = tmp_path / "requests.jsonl"
    code, out, steps = run(
        capsys,
        "test-workflow",
        INVOICE,
        "--event",
        source["_path"],
        "--record",
        requests,
        "--set",
        "TaxType=TAX001",
    )
    assert code == 0, out
    xero = steps["invoice"]["output"]
    assert (xero["Total"], xero["TotalTax"]) == (source["total_cost"], source["total_taxes"])
    lines = recorded(requests, "PUT", "Invoices")[-1]["Invoices"][0]["LineItems"]
    assert len(lines) == sum(1 for i in items if i.get("item_type") != 0)
    if not source["total_taxes"]:
        assert {line["TaxType"] for line in lines} == {"NONE"}


def test_a_draft_stays_a_draft_and_status_is_a_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = clientary_invoice(
        tmp_path, "Solo Design", [{"title": "Plan", "quantity": 1, "price": 10}], status=0
    )
    code, out, steps = run(capsys, "test-workflow", INVOICE, "--event", draft["_path"])
    assert code == 0, out
    assert steps["invoice"]["output"]["Status"] == "DRAFT"
    sent = clientary_invoice(
        tmp_path, "Solo Design", [{"title": "Plan", "quantity": 1, "price": 10}], status=1
    )
    code, out, steps = run(
        capsys, "test-workflow", INVOICE, "--event", sent["_path"], "--set", "Status=DRAFT"
    )
    assert code == 0, out
    assert steps["invoice"]["output"]["Status"] == "DRAFT"


def test_an_account_code_xero_does_not_have_fails_with_xero_s_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, steps = run(
        capsys, "test-workflow", INVOICE, "--event", INVOICE_EVENT, "--set", "SalesAccount=4100"
    )
    assert code == 1
    assert steps["contact"]["status"] == "SUCCEEDED" and steps["invoice"]["status"] == "FAILED"
    assert "Account code '4100' is not a valid code for this document." in out


def test_many_invoices_through_the_engine_total_what_clientary_says(local_env: Any) -> None:
    # The recipe stored with its settings and run by the poller for invoices with random lines,
    # taxes and discounts: each Xero invoice's total, tax included, is Clientary's to the cent.
    from clientary_xero.workflows.loader import read_document
    from clientary_xero.workflows.settings import apply_settings

    env = local_env
    env.put_workflow(apply_settings(read_document(INVOICE), ["TaxType=TAX001", "DiscountAccount=260"]))
    env.poll("clientary.new_invoice")
    rng = random.Random(11)
    clients = [env.clientary.seed_client(name)["id"] for name in ("Acme Builders", "Solo Design", "Nord AS")]
    made = []
    for n in range(16):
        items: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.15:
                items.append({"title": "Section", "item_type": 0})
            items.append(
                {
                    "title": f"Line {len(items) + 1}",
                    "quantity": rng.choice([1, 2, 3, 0.5, 1.25, 7.75, 10]),
                    "price": round(rng.uniform(0.01, 900), rng.choice([2, 2, 3, 4])),
                    "taxable": rng.random() < 0.7,
                }
            )
        if rng.random() < 0.4:
            items.append(
                {"title": "Discount", "quantity": 1, "price": -round(rng.uniform(1, 50), 2), "taxable": True}
            )
        taxes = rng.choice(
            [{}, {"tax": 9.5}, {"tax": 7.25, "tax2": 1.5, "compound_tax": n % 2 == 0}, {"tax": 20}]
        )
        made.append(env.clientary.add_invoice(clients[n % 3], items, status=1, **taxes))
    env.poll("clientary.new_invoice")
    env.drain()
    runs = env.state.list_runs(limit=100)
    expected = {"SUCCEEDED" if i["total_cost"] > 0 else "FILTERED" for i in made}
    assert {r["status"] for r in runs} == expected and len(runs) == len(made)
    xero = {i["InvoiceNumber"]: i for i in env.xero.invoices(env.xero_tenant_id())}
    billed = [i for i in made if i["total_cost"] > 0]
    assert len(xero) == len(billed) and sum(1 for i in billed if i["total_taxes"]) >= 4
    for invoice in billed:
        ours = xero[f"CL-{invoice['number']}"]
        assert (ours["Total"], ours["TotalTax"]) == (invoice["total_cost"], invoice["total_taxes"]), invoice


# ------------------------------------------------------------ payment → payment
def test_payment_recipe_pays_the_linked_invoice_into_the_bank_account_of_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = yaml.safe_load((ROOT / "recipes" / "seeds" / f"{PAYMENT.stem}.yaml").read_text())
    seed["xero"]["Invoices"][0]["InvoiceID"] = LINKED
    other = {**seed["xero"]["Invoices"][0], "InvoiceNumber": "CL-1043", "Reference": "Clientary invoice 1043"}
    seed["xero"]["Invoices"].append({k: v for k, v in other.items() if k != "InvoiceID"})
    code, out, steps = run(
        capsys,
        "test-workflow", PAYMENT, "--event", PAYMENT_EVENT, "--seed", write_seed(tmp_path, seed),
        "--set", "BankAccount=091",
    )  # fmt: skip
    assert code == 0, out
    assert steps["invoice"]["output"]["InvoiceID"] == LINKED and steps["invoice"]["output"]["count"] == 1
    paid = steps["payment"]["output"]
    assert paid["InvoiceID"] == LINKED and paid["AccountCode"] == "091" and paid["Amount"] == 250.5
    assert paid["Date"] == "2026-02-03" and paid["Reference"] == "Clientary payment 980190001"
    assert paid["InvoiceAmountDue"] == 1000.0  # 1250.50 less this payment


def test_a_payment_that_came_from_xero_is_not_sent_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # xero-payment-to-clientary-payment records Xero's payments in Clientary with this note: the
    # payment recipe must not pay the Xero invoice a second time.
    event = {**json.loads(PAYMENT_EVENT.read_text()), "note": "Xero payment 3f6c0b5e (Bank transfer)"}
    path = tmp_path / "payment.json"
    path.write_text(json.dumps(event))
    code, out, steps = run(capsys, "test-workflow", PAYMENT, "--event", path)
    assert code == 0, out
    assert "FILTERED" in out and steps == {}


def test_a_payment_whose_invoice_is_not_in_xero_fails_saying_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, steps = run(capsys, "test-workflow", PAYMENT, "--event", PAYMENT_EVENT)
    assert code == 1
    assert steps["invoice"]["status"] == "FAILED" and "payment" not in steps
    assert "no Xero invoice matches Reference 'Clientary invoice 1042'" in out


def test_invoice_and_payment_recipes_together(local_env: Any) -> None:
    # Invoices sent by the invoice recipe, then paid in Clientary: the payment recipe records each
    # payment on the Xero invoice of its Clientary invoice.
    from clientary_xero.workflows.loader import read_document
    from clientary_xero.workflows.settings import apply_settings

    env = local_env
    env.put_workflow(apply_settings(read_document(INVOICE), ["TaxType=TAX001"]))
    env.put_workflow(apply_settings(read_document(PAYMENT), ["BankAccount=091"]))
    env.poll("clientary.new_invoice")
    env.poll("clientary.new_payment")
    client = env.clientary.seed_client("Acme Builders")["id"]
    first = env.clientary.add_invoice(
        client, [{"title": "Survey", "quantity": 4, "price": 95.0, "taxable": True}], status=1, tax=9.5
    )
    second = env.clientary.add_invoice(client, [{"title": "Report", "quantity": 1, "price": 250.0}], status=1)
    env.poll("clientary.new_invoice")
    env.drain()
    env.clientary.add_payment(first["id"], 100.0, received_on="2026-03-02")
    env.clientary.add_payment(second["id"], 250.0, received_on="2026-03-03")
    env.clientary.add_payment(first["id"], first["total_cost"] - 100.0, received_on="2026-03-09")
    env.poll("clientary.new_payment")
    env.drain()
    runs = env.state.list_runs(limit=20)
    assert len(runs) == 5 and {r["status"] for r in runs} == {"SUCCEEDED"}
    xero = {i["InvoiceNumber"]: i for i in env.xero.invoices(env.xero_tenant_id())}
    assert (
        xero[f"CL-{first['number']}"]["Status"] == "PAID" and xero[f"CL-{first['number']}"]["Total"] == 416.1
    )
    assert xero[f"CL-{second['number']}"]["Status"] == "PAID"
    payments = env.xero.payments(env.xero_tenant_id())
    assert len(payments) == 3 and {p["Account"]["Code"] for p in payments} == {"091"}


def test_the_readme_lists_every_recipe_with_its_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.partition("### Start from a recipe")[2].partition("\n### ")[0]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z0-9-]+)` \|.*\|$", section, flags=re.M)}
    assert set(rows) >= {p.stem for p in RECIPES}
    for path in RECIPES:
        settings = document(path).get("settings") or {}
        for name, default in settings.items():
            shown = f"`{default}`" if default not in ("", None) else "empty"
            if isinstance(default, bool):
                shown = f"`{str(default).lower()}`"
            assert f"`{name}` ({shown}" in rows[path.stem], (path.stem, name)
    assert "recipes list" in section and "recipes show" in section and "workflows put recipes/" in section


def test_what_the_three_recipes_send_validates_against_xero_s_openapi_description(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.xero_contract import validate_requests

    taxed = clientary_invoice(
        tmp_path,
        "Harbour Lights Ltd",
        [
            {"title": "Design", "item_type": 0},
            {"title": "Lighting plan", "quantity": 3, "price": 333.33, "taxable": True},
            {"title": "Loyalty discount", "quantity": 1, "price": -100.01, "taxable": True},
        ],
        status=1,
        tax=9.5,
    )
    same_name = write_seed(tmp_path, {"xero": {"Contacts": [{"Name": "Harbour Lights Ltd"}]}})
    runs = [
        [CLIENT, "--event", CLIENT_EVENT, "--seed", same_name],
        [INVOICE, "--event", taxed["_path"], "--set", "TaxType=TAX001", "--set", "DiscountAccount=260"],
        [PAYMENT, "--event", PAYMENT_EVENT, "--seed", ROOT / "recipes" / "seeds" / f"{PAYMENT.stem}.yaml"],
    ]
    records: list[dict[str, Any]] = []
    for n, argv in enumerate(runs):
        requests = tmp_path / f"requests-{n}.jsonl"
        code, out, _ = run(capsys, "test-workflow", *argv, "--record", requests)
        assert code == 0, out
        records += [json.loads(line) for line in requests.read_text().splitlines() if line.strip()]
    writes = [r for r in records if "xero.com" in r["url"] and r["method"] in ("POST", "PUT")]
    assert {r["url"].split("?")[0].rsplit("/", 1)[1] for r in writes} >= {"Contacts", "Invoices", "Payments"}
    assert validate_requests(records) == []
