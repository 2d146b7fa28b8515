# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
"""The sandbox computes tax as Xero does: each organisation has its country's tax rates (GET
/TaxRates), every line gets a TaxType (its own, its account's or the organisation's default) and a
TaxAmount rounded per line, the totals come from the lines, and an unknown, inactive or misapplied
TaxType is refused with Xero's validation error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from clientary_xero.local.xero_sandbox import XeroSandbox
from tests.conftest_xero import FakeClock, clock, sandbox  # noqa: F401
from tests.xero_contract import spec_dir, validate_response

API = "https://api.xero.com/api.xro/2.0"
BOGUS = "The TaxType code 'BOGUS' does not exist or cannot be used for this type of transaction."


class Org:
    """One organisation of a given country, called over HTTP like the product does."""

    def __init__(self, sandbox: XeroSandbox, country: str) -> None:
        self.sandbox = sandbox
        self.tenant = sandbox.create_tenant(f"Demo Company ({country})", country=country)
        self.secret = sandbox.bootstrap_secret(tenant_id=self.tenant)
        self.http = httpx.Client(transport=sandbox)
        self.keys = 0
        self.contact_id = self.one("/Contacts", "Contacts", {"Name": "Acme Ltd"})["ContactID"]

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.secret['access_token']}",
            "xero-tenant-id": self.tenant,
            "Accept": "application/json",
        }
        if method != "GET":
            self.keys += 1
            headers["Idempotency-Key"] = f"key-{self.keys}"
        return self.http.request(method, API + path, params=params, json=body, headers=headers)

    def one(self, path: str, plural: str, element: dict[str, Any]) -> dict[str, Any]:
        answer = self.call("PUT", path, {plural: [element]}, summarizeErrors="false")
        assert answer.status_code == 200, answer.text
        record = dict(answer.json()[plural][0])
        assert "ValidationErrors" not in record, record
        return record

    def invoice(self, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        element = {"Type": "ACCREC", "Contact": {"ContactID": self.contact_id}, "LineItems": lines, **extra}
        return self.one("/Invoices", "Invoices", element)


@pytest.fixture
def nz(sandbox: XeroSandbox) -> Org:
    return Org(sandbox, "NZ")


@pytest.fixture
def us(sandbox: XeroSandbox) -> Org:
    return Org(sandbox, "US")


def totals(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["SubTotal"], record["TotalTax"], record["Total"], record.get("AmountDue"))


# Three lines of 1.03 at 15 %: per line 0.1545 -> 0.15 (0.45 in all), where 15 % of the 3.09 total
# would round to 0.46 (exclusive); inclusive 0.13435 -> 0.13 a line (0.39), not 0.40 of the total.
LINES = [
    {"Description": f"Part {n}", "Quantity": 1, "UnitAmount": 1.03, "AccountCode": "200"} for n in range(3)
]


def test_exclusive_tax_is_rounded_per_line_and_totals_come_from_the_lines(nz: Org) -> None:
    invoice = nz.invoice(LINES, LineAmountTypes="Exclusive")
    assert [(li["TaxType"], li["TaxAmount"]) for li in invoice["LineItems"]] == [("OUTPUT2", 0.15)] * 3
    assert totals(invoice) == (3.09, 0.45, 3.54, 3.54)


def test_inclusive_tax_is_taken_out_of_each_line(nz: Org) -> None:
    invoice = nz.invoice(LINES, LineAmountTypes="Inclusive")
    assert [li["TaxAmount"] for li in invoice["LineItems"]] == [0.13] * 3
    assert totals(invoice) == (2.7, 0.39, 3.09, 3.09)


def test_no_tax_lines_carry_none(nz: Org) -> None:
    invoice = nz.invoice(LINES, LineAmountTypes="NoTax")
    assert [li["TaxAmount"] for li in invoice["LineItems"]] == [0.0] * 3
    assert totals(invoice) == (3.09, 0.0, 3.09, 3.09)


def test_the_spec_example_us_invoice_comes_out_with_its_tax(us: Org) -> None:
    # xero_accounting.yaml's SPEND example: 20.00 Inclusive on account 400 with TAX001 -> 1.74 tax, 18.26 net.
    line = {
        "Description": "Foobar",
        "Quantity": 1,
        "UnitAmount": 20,
        "TaxType": "TAX001",
        "AccountCode": "400",
    }
    invoice = us.one(
        "/Invoices",
        "Invoices",
        {
            "Type": "ACCPAY",
            "Contact": {"ContactID": us.contact_id},
            "LineAmountTypes": "Inclusive",
            "LineItems": [line],
        },
    )
    assert invoice["LineItems"][0]["TaxAmount"] == 1.74
    assert totals(invoice) == (18.26, 1.74, 20.0, 20.0)
    # A US organisation's sales and purchases default to its 0 % system rates.
    plain = us.invoice([{"Description": "Work", "UnitAmount": 100, "AccountCode": "200"}])
    assert (plain["LineItems"][0]["TaxType"], plain["TotalTax"]) == ("OUTPUT", 0.0)


def test_a_line_without_tax_type_takes_its_accounts_then_the_organisations(nz: Org) -> None:
    assert {a["Code"]: a["TaxType"] for a in nz.sandbox.accounts(nz.tenant)}["429"] == "INPUT2"
    bill = nz.one(
        "/Invoices",
        "Invoices",
        {
            "Type": "ACCPAY",
            "Contact": {"ContactID": nz.contact_id},
            "LineItems": [
                {"Description": "Expense", "UnitAmount": 10, "AccountCode": "429"},
                {"Description": "No account", "UnitAmount": 10},
                {"Description": "Own type", "UnitAmount": 10, "AccountCode": "429", "TaxType": "NONE"},
            ],
        },
    )
    assert [(li["TaxType"], li["TaxAmount"]) for li in bill["LineItems"]] == [
        ("INPUT2", 1.5),
        ("INPUT2", 1.5),
        ("NONE", 0.0),
    ]
    sale = nz.invoice([{"Description": "No account", "UnitAmount": 10}])
    assert (sale["LineItems"][0]["TaxType"], sale["TotalTax"], sale["Total"]) == ("OUTPUT2", 1.5, 11.5)


def test_a_given_tax_amount_is_kept(nz: Org) -> None:
    invoice = nz.invoice([{"Description": "Adjusted", "UnitAmount": 100, "TaxAmount": 14.99}])
    assert totals(invoice) == (100.0, 14.99, 114.99, 114.99)


def test_quotes_and_purchase_orders_are_taxed_too(nz: Org) -> None:
    quote = nz.one(
        "/Quotes",
        "Quotes",
        {
            "Contact": {"ContactID": nz.contact_id},
            "Date": "2026-01-05",
            "LineAmountTypes": "INCLUSIVE",
            "LineItems": LINES,
        },
    )
    assert totals(quote)[:3] == (2.7, 0.39, 3.09)
    order = nz.one(
        "/PurchaseOrders",
        "PurchaseOrders",
        {
            "Contact": {"ContactID": nz.contact_id},
            "LineItems": [{"Description": "Stock", "UnitAmount": 10, "AccountCode": "500"}],
        },
    )
    assert (order["LineItems"][0]["TaxType"], totals(order)[:3]) == ("INPUT2", (10.0, 1.5, 11.5))


def test_an_unknown_tax_type_is_refused_with_xeros_validation_error(nz: Org) -> None:
    bogus = {
        "Type": "ACCREC",
        "Contact": {"ContactID": nz.contact_id},
        "LineItems": [{**LINES[0], "TaxType": "BOGUS"}],
    }
    good = {"Type": "ACCREC", "Contact": {"ContactID": nz.contact_id}, "LineItems": LINES}
    whole = nz.call("PUT", "/Invoices", {"Invoices": [bogus, good]})
    assert whole.status_code == 400
    body = whole.json()
    assert (body["Type"], len(body["Elements"])) == ("ValidationException", 1)
    assert body["Elements"][0]["ValidationErrors"] == [{"Message": BOGUS}]
    # Per element: the bad one carries its error, the other is created.
    each = nz.call("PUT", "/Invoices", {"Invoices": [bogus, good]}, summarizeErrors="false")
    assert each.status_code == 200
    first, second = each.json()["Invoices"]
    assert (first["HasErrors"], first["ValidationErrors"]) == (True, [{"Message": BOGUS}])
    assert (second["StatusAttributeString"], second["TotalTax"]) == ("OK", 0.45)
    # summarizeErrors=true created the good one anyway (Xero's all-or-nothing answer hides it).
    assert len(nz.sandbox.invoices(nz.tenant)) == 2


def test_an_archived_or_misapplied_tax_type_is_refused(nz: Org) -> None:
    # A sales rate on an expense account, and a purchases rate on a sale.
    bill = {
        "Type": "ACCPAY",
        "Contact": {"ContactID": nz.contact_id},
        "LineItems": [
            {"Description": "Expense", "UnitAmount": 10, "AccountCode": "429", "TaxType": "OUTPUT2"}
        ],
    }
    answer = nz.call("PUT", "/Invoices", {"Invoices": [bill]}, summarizeErrors="false").json()["Invoices"][0]
    assert answer["ValidationErrors"][0]["Message"].startswith("The TaxType code 'OUTPUT2' does not exist")
    quote = {
        "Contact": {"ContactID": nz.contact_id},
        "Date": "2026-01-05",
        "LineItems": [{"Description": "Work", "UnitAmount": 10, "TaxType": "INPUT2"}],
    }
    answer = nz.call("PUT", "/Quotes", {"Quotes": [quote]}, summarizeErrors="false").json()["Quotes"][0]
    assert "'INPUT2' does not exist" in answer["ValidationErrors"][0]["Message"]
    nz.sandbox.seed_tax_rate(nz.tenant, TaxType="OUTPUT2", Status="ARCHIVED")
    sale = {"Type": "ACCREC", "Contact": {"ContactID": nz.contact_id}, "LineItems": LINES[:1]}
    answer = nz.call("PUT", "/Invoices", {"Invoices": [sale]}, summarizeErrors="false").json()["Invoices"][0]
    assert "'OUTPUT2' does not exist" in answer["ValidationErrors"][0]["Message"]
    assert nz.sandbox.invoices(nz.tenant) == []


def test_a_seeded_rate_sums_its_components_and_applies(us: Org) -> None:
    rate = us.sandbox.seed_tax_rate(
        us.tenant,
        TaxType="TAX002",
        Name="County Tax",
        TaxComponents=[{"Name": "State", "Rate": 4}, {"Name": "County", "Rate": 1.5}],
        CanApplyToExpenses=False,
    )
    assert (rate["EffectiveRate"], rate["DisplayTaxRate"], rate["Status"]) == (5.5, 5.5, "ACTIVE")
    invoice = us.invoice([{"Description": "Work", "UnitAmount": 200, "TaxType": "TAX002"}])
    assert totals(invoice) == (200.0, 11.0, 211.0, 211.0)
    with pytest.raises(ValueError, match="Status"):
        us.sandbox.seed_tax_rate(us.tenant, TaxType="TAX002", Status="GONE")


def test_get_tax_rates_lists_the_organisations_rates(nz: Org, us: Org) -> None:
    listed = nz.call("GET", "/TaxRates").json()["TaxRates"]
    assert [r["TaxType"] for r in listed] == ["INPUT2", "OUTPUT2", "GSTONIMPORTS", "NONE", "ZERORATED"]
    assert {r["TaxType"] for r in us.call("GET", "/TaxRates").json()["TaxRates"]} == {
        "NONE",
        "INPUT",
        "OUTPUT",
        "GSTONIMPORTS",
        "TAX001",
    }
    one = nz.call("GET", "/TaxRates/OUTPUT2").json()["TaxRates"]
    assert [(r["Name"], r["EffectiveRate"]) for r in one] == [("15% GST on Income", 15.0)]
    assert nz.call("GET", "/TaxRates/NOPE").status_code == 404
    nz.sandbox.seed_tax_rate(nz.tenant, TaxType="ZERORATED", Status="ARCHIVED")
    active = nz.call("GET", "/TaxRates", where='Status=="ACTIVE"', order="Name ASC").json()["TaxRates"]
    assert [r["Name"] for r in active] == [
        "15% GST on Expenses",
        "15% GST on Income",
        "GST on Imports",
        "No GST",
    ]
    assert nz.call("GET", "/Organisation").json()["Organisations"][0]["CountryCode"] == "NZ"
    assert nz.call("PUT", "/TaxRates", {"TaxRates": [{"Name": "x"}]}).status_code == 405


def test_tax_rates_match_the_spec_example_and_schema(nz: Org) -> None:
    spec = yaml.safe_load((spec_dir() / "xero_accounting.yaml").read_text())
    example = spec["paths"]["/TaxRates"]["get"]["responses"]["200"]["content"]["application/json"]["example"]
    answer = nz.call("GET", "/TaxRates")
    # The NZ demo company's rates are the spec's own example, field for field.
    assert answer.json()["TaxRates"] == example["TaxRates"]
    assert validate_response("GET", str(answer.request.url), 200, answer.json()) == []
    invoice = nz.call("GET", "/Invoices").json()
    assert validate_response("GET", API + "/Invoices", 200, invoice) == []


def test_a_seed_file_adds_and_changes_tax_rates(local_env: Any, tmp_path: Path) -> None:
    from clientary_xero.local.cli import _load_seed, _read_seed

    path = tmp_path / "seed.json"
    rates = [
        {"TaxType": "TAX009", "TaxComponents": [{"Name": "City", "Rate": 2}]},
        {"TaxType": "TAX001", "Status": "ARCHIVED"},
    ]
    path.write_text(json.dumps({"xero": {"TaxRates": rates}}))
    _load_seed(local_env, _read_seed(str(path)))
    rates = {r["TaxType"]: r for r in local_env.xero.tax_rates(local_env.xero_tenant_id())}
    assert (rates["TAX009"]["EffectiveRate"], rates["TAX001"]["Status"]) == (2.0, "ARCHIVED")


def test_an_update_to_inclusive_computes_the_stored_lines_tax_again(nz: Org) -> None:
    invoice = nz.invoice(LINES, LineAmountTypes="Exclusive")
    answer = nz.call(
        "POST",
        f"/Invoices/{invoice['InvoiceID']}",
        {"Invoices": [{"LineAmountTypes": "Inclusive"}]},
    )
    assert answer.status_code == 200, answer.text
    assert totals(answer.json()["Invoices"][0]) == (2.7, 0.39, 3.09, 3.09)
    status_only = nz.call(
        "POST", f"/Invoices/{invoice['InvoiceID']}", {"Invoices": [{"Status": "AUTHORISED"}]}
    )
    assert totals(status_only.json()["Invoices"][0]) == (2.7, 0.39, 3.09, 3.09)
