# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
"""Every collection the product reads can be seeded (issue 10, point 4), through the sandbox's API
(``XeroSandbox.seed``/``seed_many``/``seed_…``) and through ``test-workflow --seed``: a seeded
record goes through the save path the API uses (numbers, totals, tax, links, validation), is served
by the sandbox's GET endpoints and ``where`` filters, and a refused one names its collection and
index and seeds nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from clientary_xero.local.cli import main
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.local.xero_sandbox.seeding import SEED_ORDER, SeedError
from tests.conftest_xero import FakeClock, clock, sandbox  # noqa: F401
from tests.xero_contract import spec_dir, validate_response

ROOT = Path(__file__).resolve().parents[1]
API = "https://api.xero.com/api.xro/2.0"
PROJECTS = "https://api.xero.com/projects.xro/2.0"
KEPT_ID = "3f0c9d52-6a51-4b53-9a3c-2f8f0e6d7a11"


class Org:
    """One organisation, seeded through the sandbox's Python API and read over HTTP."""

    def __init__(self, sandbox: XeroSandbox, country: str = "US") -> None:
        self.sandbox = sandbox
        self.tenant = sandbox.create_tenant(f"Demo Company ({country})", country=country)
        self.secret = sandbox.bootstrap_secret(tenant_id=self.tenant)
        self.http = httpx.Client(transport=sandbox)

    def get(self, url: str, **params: Any) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.secret['access_token']}",
            "xero-tenant-id": self.tenant,
            "Accept": "application/json",
        }
        return self.http.get(url if url.startswith("https:") else API + url, params=params, headers=headers)

    def seed(self, collection: str, *records: dict[str, Any]) -> list[dict[str, Any]]:
        return self.sandbox.seed(self.tenant, collection, list(records))


@pytest.fixture
def org(sandbox: XeroSandbox) -> Org:
    return Org(sandbox)


SUPPLIER = {"Name": "Builders Supply Co", "ContactNumber": "SUP-1"}
TIMBER = [{"Description": "Timber", "Quantity": 10, "UnitAmount": 12.5, "AccountCode": "500"}]
CONSULTING = [{"Description": "Consulting", "Quantity": 2, "UnitAmount": 100, "AccountCode": "200"}]


def _base(org: Org) -> None:
    """What the records below refer to: a contact and an AUTHORISED invoice."""
    org.seed("Contacts", SUPPLIER)
    org.seed(
        "Invoices",
        {
            "Type": "ACCREC",
            "InvoiceNumber": "INV-77",
            "Contact": {"Name": "Builders Supply Co"},
            "Status": "AUTHORISED",
            "LineItems": CONSULTING,
        },
    )


# collection, record, (id field, GET path), a where clause that finds it
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("Contacts", {"Name": "Kea Cafe", "ContactNumber": "KEA-1"}, "ContactID", 'ContactNumber=="KEA-1"'),
    (
        "Invoices",
        {
            "Type": "ACCPAY",
            "InvoiceNumber": "B-1",
            "Contact": {"ContactNumber": "SUP-1"},
            "LineItems": TIMBER,
        },
        "InvoiceID",
        'Type=="ACCPAY"',
    ),
    (
        "Quotes",
        {
            "Contact": {"Name": "Builders Supply Co"},
            "Date": "2026-01-05",
            "QuoteNumber": "QU-9",
            "LineAmountTypes": "EXCLUSIVE",
            "LineItems": CONSULTING,
        },
        "QuoteID",
        'QuoteNumber=="QU-9"',
    ),
    (
        "PurchaseOrders",
        {
            "Contact": {"ContactNumber": "SUP-1"},
            "PurchaseOrderNumber": "PO-CL-1",
            "Status": "AUTHORISED",
            "LineItems": TIMBER,
        },
        "PurchaseOrderID",
        'PurchaseOrderNumber=="PO-CL-1"',
    ),
    (
        "Items",
        {"Code": "WIDGET", "Name": "Widget", "SalesDetails": {"UnitPrice": 9.99}},
        "ItemID",
        'Code=="WIDGET"',
    ),
    (
        "Payments",
        {
            "Invoice": {"InvoiceNumber": "INV-77"},
            "Account": {"Code": "090"},
            "Amount": 50,
            "Date": "2026-01-10",
        },
        "PaymentID",
        "Amount==50",
    ),
    (
        "BankTransfers",
        {
            "FromBankAccount": {"Code": "090"},
            "ToBankAccount": {"Code": "091"},
            "Amount": 25,
            "Reference": "Top up",
        },
        "BankTransferID",
        'Reference=="Top up"',
    ),
    ("Accounts", {"Code": "201", "Name": "Consulting Income", "Type": "REVENUE"}, "AccountID", 'Code=="201"'),
    (
        "TaxRates",
        {"TaxType": "TAX002", "Name": "County Tax", "TaxComponents": [{"Name": "County", "Rate": 1.5}]},
        "TaxType",
        'TaxType=="TAX002"',
    ),
    (
        "TrackingCategories",
        {"Name": "Region", "Options": [{"Name": "North"}, {"Name": "South"}]},
        "TrackingCategoryID",
        'Name=="Region"',
    ),
]


def test_every_collection_the_product_reads_is_seedable() -> None:
    assert set(SEED_ORDER) == {c for c, *_ in CASES} | {"Projects"}


@pytest.mark.parametrize(("collection", "record", "id_key", "where"), CASES, ids=[c[0] for c in CASES])
def test_a_seeded_record_is_served_by_the_api(
    org: Org, collection: str, record: dict[str, Any], id_key: str, where: str
) -> None:
    _base(org)
    [seeded] = org.seed(collection, record)
    ident = seeded[id_key]
    listed = org.get(f"/{collection}")
    assert listed.status_code == 200, listed.text
    assert ident in [r[id_key] for r in listed.json()[collection]]
    one = org.get(f"/{collection}/{ident}")
    assert one.status_code == 200, one.text
    assert one.json()[collection] == [seeded]
    found = org.get(f"/{collection}", where=where).json()[collection]
    assert [r[id_key] for r in found] == [ident]
    assert org.get(f"/{collection}", where=where.replace("==", "!=")).json()[collection] == [
        r for r in listed.json()[collection] if r[id_key] != ident
    ]


@pytest.mark.parametrize(("collection", "record", "id_key", "where"), CASES, ids=[c[0] for c in CASES])
def test_a_seeded_record_answers_in_xeros_schema(
    org: Org, collection: str, record: dict[str, Any], id_key: str, where: str
) -> None:
    spec_dir()  # skips where the team's copy of Xero's OpenAPI files is not around
    _base(org)
    [seeded] = org.seed(collection, record)
    answer = org.get(f"/{collection}/{seeded[id_key]}")
    assert validate_response("GET", str(answer.request.url), 200, answer.json()) == []


def test_a_seeded_project_is_served_by_the_projects_api(org: Org) -> None:
    _base(org)
    [project] = org.seed(
        "Projects", {"name": "New Kitchen", "contact": {"Name": "Builders Supply Co"}, "estimateAmount": 9000}
    )
    [closed] = org.seed("Projects", {"name": "Old Deck", "status": "CLOSED"})
    contact_id = org.sandbox.contacts(org.tenant)[0]["ContactID"]
    assert (project["contactId"], project["estimate"]["value"], project["status"]) == (
        contact_id,
        9000.0,
        "INPROGRESS",
    )
    one = org.get(f"{PROJECTS}/projects/{project['projectId']}")
    assert one.status_code == 200 and one.json() == project
    by_contact = org.get(f"{PROJECTS}/projects", contactID=contact_id).json()["items"]
    assert [p["projectId"] for p in by_contact] == [project["projectId"]]
    only_closed = org.get(f"{PROJECTS}/projects", states="CLOSED").json()["items"]
    assert [p["projectId"] for p in only_closed] == [closed["projectId"]]


def test_seeded_documents_get_xeros_numbers_tax_totals_and_later_statuses(sandbox: XeroSandbox) -> None:
    nz = Org(sandbox, "NZ")
    nz.seed("Contacts", SUPPLIER)
    [order] = nz.seed(
        "PurchaseOrders", {"Contact": {"ContactNumber": "SUP-1"}, "Status": "BILLED", "LineItems": TIMBER}
    )
    # Numbered, taxed (NZ purchases default to INPUT2, 15 %) and BILLED as Xero would hold it.
    assert order["PurchaseOrderNumber"] == "PO-0001"
    assert order["LineItems"][0]["TaxType"] == "INPUT2"
    assert (order["SubTotal"], order["TotalTax"], order["Total"], order["Status"]) == (
        125.0,
        18.75,
        143.75,
        "BILLED",
    )
    [quote] = nz.seed(
        "Quotes",
        {
            "Contact": {"Name": "builders supply co"},
            "Date": "2026-01-05",
            "Status": "INVOICED",
            "LineItems": CONSULTING,
        },
    )
    assert (quote["QuoteNumber"], quote["Total"], quote["Status"]) == ("QU-0001", 230.0, "INVOICED")
    [voided] = nz.seed(
        "Invoices",
        {
            "Type": "ACCREC",
            "Contact": {"ContactNumber": "SUP-1"},
            "Status": "VOIDED",
            "LineItems": CONSULTING,
        },
    )
    assert (voided["InvoiceNumber"], voided["Status"]) == ("INV-0001", "VOIDED")
    billed = nz.get("/PurchaseOrders", Status="BILLED").json()["PurchaseOrders"]
    assert [o["PurchaseOrderID"] for o in billed] == [order["PurchaseOrderID"]]


def test_a_seeded_payment_pays_down_its_invoice(org: Org) -> None:
    _base(org)
    org.seed(
        "Payments",
        {
            "PaymentID": KEPT_ID,
            "Invoice": {"InvoiceNumber": "INV-77"},
            "Account": {"Code": "090"},
            "Amount": 50,
        },
    )
    invoice = org.get("/Invoices/INV-77").json()["Invoices"][0]
    assert (invoice["AmountPaid"], invoice["AmountDue"], invoice["Status"]) == (50.0, 150.0, "AUTHORISED")
    assert [p["PaymentID"] for p in invoice["Payments"]] == [KEPT_ID]
    payment = org.get(f"/Payments/{KEPT_ID}").json()["Payments"][0]
    assert payment["Invoice"]["InvoiceID"] == invoice["InvoiceID"]
    org.seed("Payments", {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Code": "090", "Amount": 150})
    paid = org.get("/Invoices/INV-77").json()["Invoices"][0]
    assert (paid["AmountDue"], paid["Status"]) == (0.0, "PAID")
    with pytest.raises(SeedError) as refused:
        org.seed("Payments", {"Invoice": {"InvoiceNumber": "INV-77"}, "Code": "090", "Amount": 1})
    assert str(refused.value) == "Payments[0]: Payments can only be made against Authorised documents."


def test_a_refused_record_names_collection_and_index_and_seeds_nothing(org: Org) -> None:
    org.seed("Contacts", SUPPLIER)
    before = {
        name: getattr(org.sandbox, name)(org.tenant) for name in ("contacts", "purchase_orders", "accounts")
    }
    good = {"Contact": {"ContactNumber": "SUP-1"}, "LineItems": TIMBER}
    bad = {"Contact": {"ContactNumber": "SUP-1"}, "LineItems": [{**TIMBER[0], "TaxType": "BOGUS"}]}
    with pytest.raises(SeedError) as refused:
        org.sandbox.seed_many(
            org.tenant,
            {"Accounts": [{"Code": "201", "Name": "New", "Type": "REVENUE"}], "PurchaseOrders": [good, bad]},
        )
    assert str(refused.value) == (
        "PurchaseOrders[1]: The TaxType code 'BOGUS' does not exist or cannot be used for this type of "
        "transaction."
    )
    assert (refused.value.collection, refused.value.index) == ("PurchaseOrders", 1)
    after = {name: getattr(org.sandbox, name)(org.tenant) for name in before}
    assert after == before  # all or nothing: neither the account nor the first order stayed
    with pytest.raises(SeedError, match=r"^Contacts\[0\]: The contact name Builders Supply Co is already"):
        org.seed("Contacts", {"Name": "Builders Supply Co"})
    with pytest.raises(SeedError, match=r"^Invoices\[0\]: An invoice is PAID by its payments"):
        org.seed("Invoices", {"Type": "ACCREC", "Contact": {"Name": "Builders Supply Co"}, "Status": "PAID"})
    with pytest.raises(
        ValueError, match=r"no collection 'PurchaseOrder' to seed; one of: Accounts, .*PurchaseOrders"
    ):
        org.seed("PurchaseOrder", good)


def test_references_resolve_whatever_order_the_collections_are_given_in(org: Org) -> None:
    seeded = org.sandbox.seed_many(
        org.tenant,
        {
            "Payments": [{"Invoice": {"InvoiceNumber": "INV-9"}, "Account": {"Code": "095"}, "Amount": 10}],
            "Projects": [{"name": "Fit-out", "contact": {"ContactNumber": "SUP-1"}}],
            "PurchaseOrders": [{"Contact": {"Name": "Builders Supply Co"}, "LineItems": TIMBER}],
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "InvoiceNumber": "INV-9",
                    "Contact": {"ContactID": KEPT_ID},
                    "Status": "AUTHORISED",
                    "LineItems": CONSULTING,
                }
            ],
            "Contacts": [{**SUPPLIER, "ContactID": KEPT_ID}],
            "Accounts": [
                {"Code": "095", "Name": "Petty Cash", "Type": "BANK", "BankAccountNumber": "12-0001"}
            ],
        },
    )
    assert list(seeded) == ["Payments", "Projects", "PurchaseOrders", "Invoices", "Contacts", "Accounts"]
    assert seeded["Contacts"][0]["ContactID"] == KEPT_ID  # a given id is kept …
    assert seeded["PurchaseOrders"][0]["Contact"]["ContactID"] == KEPT_ID
    assert seeded["Projects"][0]["contactId"] == KEPT_ID
    assert seeded["Payments"][0]["Account"]["AccountID"] == seeded["Accounts"][0]["AccountID"]
    assert org.get(f"/Contacts/{KEPT_ID}").json()["Contacts"][0]["Name"] == "Builders Supply Co"
    with pytest.raises(SeedError, match=rf"^Contacts\[0\]: ContactID {KEPT_ID} is already taken"):  # … once
        org.seed("Contacts", {"Name": "Other", "ContactID": KEPT_ID})
    with pytest.raises(SeedError, match=r"^Items\[0\]: ItemID 'abc' is not a UUID"):
        org.seed("Items", {"Code": "X", "ItemID": "abc"})


def test_seeded_settings_follow_xeros_rules(org: Org) -> None:
    with pytest.raises(
        SeedError, match=r"^Accounts\[0\]: Please enter a unique Code\.; Please enter a unique Name\."
    ):
        org.seed(
            "Accounts", {"Code": "090", "Name": "Checking Account", "Type": "BANK", "BankAccountNumber": "1"}
        )
    with pytest.raises(SeedError, match=r"^Accounts\[0\]: Account Type 'BOGUS' is not valid"):
        org.seed("Accounts", {"Code": "999", "Name": "X", "Type": "BOGUS"})
    [income] = org.seed("Accounts", {"Code": "201", "Name": "Consulting Income", "Type": "REVENUE"})
    assert (income["Class"], income["TaxType"]) == ("REVENUE", "OUTPUT")
    with pytest.raises(SeedError, match=r"^TaxRates\[0\]: The Rate of tax component 'City' must be a number"):
        org.seed("TaxRates", {"TaxType": "TAX003", "TaxComponents": [{"Name": "City", "Rate": "lots"}]})
    org.seed("TrackingCategories", {"Name": "Region", "Options": [{"Name": "North"}]}, {"Name": "Team"})
    with pytest.raises(
        SeedError, match=r"^TrackingCategories\[0\]: An organisation can have at most 2 active"
    ):
        org.seed("TrackingCategories", {"Name": "Third"})
    [old] = org.seed("TrackingCategories", {"Name": "Old", "Status": "ARCHIVED"})
    active = org.get("/TrackingCategories").json()["TrackingCategories"]
    assert [c["Name"] for c in active] == ["Region", "Team"]
    assert active[0]["Options"][0]["Name"] == "North" and active[0]["Options"][0]["Status"] == "ACTIVE"
    every = org.get("/TrackingCategories", includeArchived="true").json()["TrackingCategories"]
    assert old["TrackingCategoryID"] in [c["TrackingCategoryID"] for c in every]
    with pytest.raises(SeedError, match=r"^TrackingCategories\[0\]: Please enter a unique Name\."):
        org.seed("TrackingCategories", {"Name": "region", "Status": "ARCHIVED"})


def test_a_seeded_payment_is_seen_by_the_payments_poll(local_env: Any) -> None:
    env = local_env
    env.poll_xero_payments()  # the first poll records where to start
    env.seed_xero(
        {
            "Contacts": [{"Name": "Kea Cafe"}],
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "InvoiceNumber": "INV-5",
                    "Contact": {"Name": "Kea Cafe"},
                    "Status": "AUTHORISED",
                    "LineItems": CONSULTING,
                }
            ],
            "Payments": [{"Invoice": {"InvoiceNumber": "INV-5"}, "Account": {"Code": "090"}, "Amount": 20}],
        }
    )
    assert env.poll_xero_payments()["new_records"] == 1


# ------------------------------------------------------------------- --seed
def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def test_a_purchase_order_workflow_runs_on_a_seeded_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README-style: find the purchase order raised for a Clientary invoice, then bill it."""
    workflow = ROOT / "examples" / "xero-purchase-order-bill.yaml"
    event = ROOT / "examples" / "events" / "invoice.json"
    seed = ROOT / "examples" / "events" / "xero-purchase-order-seed.json"
    code, out, err = _run(
        ["test-workflow", str(workflow), "--event", str(event), "--seed", str(seed)], capsys
    )
    assert code == 0, out + err
    assert "seeded the sandboxes: 1 xero.Contacts, 1 xero.PurchaseOrders" in out
    assert re.findall(r"step (\w+): (\w+)", out) == [("order", "SUCCEEDED"), ("bill", "SUCCEEDED")]
    # The bill is for the seeded order's subtotal (5 x 150.25 + 499.25), computed by the sandbox.
    assert '"UnitAmount": 1250.5' in out and '"InvoiceNumber": "PO-CL-1042"' in out
    # Without the seeded order the same workflow finds nothing and fails.
    code, out, _ = _run(["test-workflow", str(workflow), "--event", str(event)], capsys)
    assert code != 0 and "step order: FAILED" in out


def test_a_seed_file_names_an_unknown_xero_collection_with_the_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"xero": {"PurchaseOrder": [{}]}}))
    workflow, event = (
        ROOT / "examples" / "xero-purchase-order.yaml",
        ROOT / "examples" / "events" / "invoice.json",
    )
    code, _, err = _run(["test-workflow", str(workflow), "--event", str(event), "--seed", str(seed)], capsys)
    assert code == 2
    assert f"{seed}: xero has no collection 'PurchaseOrder' to seed; one of: {', '.join(SEED_ORDER)}" in err


def test_a_bad_seed_record_is_refused_naming_collection_and_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "xero:\n"
        "  PurchaseOrders:\n"
        "    - { Contact: { Name: Builders Supply Co }, LineItems: [{ Description: Wood, UnitAmount: 5 }] }\n"
        "    - { Contact: { Name: Nobody Ltd }, LineItems: [ { Description: Wood, UnitAmount: 5 } ] }\n"
        "  Contacts:\n"
        "    - { Name: Builders Supply Co }\n"
    )
    workflow = ROOT / "examples" / "xero-purchase-order-bill.yaml"
    event = ROOT / "examples" / "events" / "invoice.json"
    code, out, err = _run(
        ["test-workflow", str(workflow), "--event", str(event), "--seed", str(seed)], capsys
    )
    assert code == 2
    assert (
        f"error: {seed}: xero.PurchaseOrders[1]: The Contact with Name Nobody Ltd could not be found." in err
    )
    assert "run " not in out  # nothing ran


def test_the_readme_seed_example_seeds(sandbox: XeroSandbox) -> None:
    import yaml

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**The `--seed` file**") :]
    block = re.search(r"```yaml\n(.*?)```", section, flags=re.S)
    assert block, "the README's --seed section has no YAML example"
    document = yaml.safe_load(block.group(1))
    org = Org(sandbox)
    seeded = sandbox.seed_many(org.tenant, document["xero"])
    assert len(seeded) >= 5 and all(len(records) >= 1 for records in seeded.values())
    invoice = org.get("/Invoices/INV-77").json()["Invoices"][0]
    assert invoice["AmountDue"] == invoice["Total"] - sum(p["Amount"] for p in seeded["Payments"])
