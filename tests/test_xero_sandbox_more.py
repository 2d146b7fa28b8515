# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
"""The sandbox's issue-#3 endpoints behave like Xero and answer in the shapes of Xero's OpenAPI
description: accounts, payments, quotes, purchase orders, items, bank transfers, history, the two
reports (computed from the organisation's data) and the Projects API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clientary_xero.local.xero_sandbox import XeroSandbox
from tests.conftest_xero import FakeClock, clock, sandbox  # noqa: F401
from tests.xero_contract import validate_response

API = "https://api.xero.com/api.xro/2.0"
PROJECTS = "https://api.xero.com/projects.xro/2.0"


class Org:
    def __init__(self, sandbox: XeroSandbox) -> None:
        self.sandbox = sandbox
        self.secret = sandbox.bootstrap_secret()
        self.tenant = self.secret["tenant_id"]
        self.http = httpx.Client(transport=sandbox)
        self.keys = 0
        self.checked: list[str] = []  # problems of every answer against the response schemas

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.secret['access_token']}",
            "xero-tenant-id": self.tenant,
            "Accept": "application/json",
            **extra,
        }

    def call(
        self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        extra = dict(headers or {})
        if method != "GET":
            self.keys += 1
            extra["Idempotency-Key"] = f"key-{self.keys}"
        answer = self.http.request(method, url, params=params, json=body, headers=self.headers(**extra))
        if answer.content and answer.status_code in (200, 201, 400):
            full = str(answer.request.url)
            self.checked += validate_response(
                method, full, answer.status_code, answer.json(), request_body=body
            )
        return answer

    def put(self, path: str, body: Any, **params: Any) -> httpx.Response:
        return self.call("PUT", API + path, body, summarizeErrors="false", **params)

    def one(self, path: str, plural: str, element: dict[str, Any], **params: Any) -> dict[str, Any]:
        answer = self.put(path, {plural: [element]}, **params)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()[plural][0])

    def contact(self, name: str = "Acme Ltd") -> str:
        return str(self.one("/Contacts", "Contacts", {"Name": name})["ContactID"])

    def invoice(self, contact_id: str, amount: float, **extra: Any) -> dict[str, Any]:
        element = {
            "Type": "ACCREC",
            "Contact": {"ContactID": contact_id},
            "Status": "AUTHORISED",
            "Date": "2026-01-05",
            "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": amount, "AccountCode": "200"}],
            **extra,
        }
        return self.one("/Invoices", "Invoices", element, unitdp="4")


@pytest.fixture
def org(sandbox: XeroSandbox) -> Org:
    return Org(sandbox)


def errors(element: dict[str, Any]) -> list[str]:
    return [v["Message"] for v in element.get("ValidationErrors", [])]


def test_a_new_organisation_has_a_chart_of_accounts(org: Org) -> None:
    answer = org.call("GET", API + "/Accounts")
    codes = {a["Code"]: a["Type"] for a in answer.json()["Accounts"]}
    assert {
        "090": "BANK",
        "091": "BANK",
        "200": "REVENUE",
        "400": "EXPENSE",
        "630": "INVENTORY",
    }.items() <= codes.items()
    assert {"310": "DIRECTCOSTS", "500": "DIRECTCOSTS"}.items() <= codes.items()
    one = org.call("GET", API + "/Accounts/" + answer.json()["Accounts"][0]["AccountID"])
    assert one.json()["Accounts"][0]["Code"] == "090"
    assert org.checked == []


def test_payments_only_on_authorised_invoices_up_to_the_amount_due(org: Org) -> None:
    contact = org.contact()
    invoice = org.invoice(contact, 100)
    draft = org.invoice(contact, 10, Status="DRAFT")
    payment = {
        "Invoice": {"InvoiceID": invoice["InvoiceID"]},
        "Account": {"Code": "090"},
        "Date": "2026-01-09",
    }
    answer = org.put("/Payments", {"Payments": [payment | {"Amount": 40}, payment | {"Amount": 61}]})
    first, too_much = answer.json()["Payments"]
    assert first["StatusAttributeString"] == "OK" and first["Invoice"]["AmountDue"] == 60.0
    assert errors(too_much) == [
        "Payment amount must be less than or equal to the outstanding amount owing on the invoice."
    ]
    assert too_much["HasValidationErrors"] is True
    on_draft = org.one(
        "/Payments", "Payments", payment | {"Invoice": {"InvoiceID": draft["InvoiceID"]}, "Amount": 1}
    )
    assert errors(on_draft) == ["Payments can only be made against Authorised documents."]
    to_revenue = org.one("/Payments", "Payments", payment | {"Account": {"Code": "200"}, "Amount": 1})
    assert errors(to_revenue)[0].startswith("Payments can only be made to Bank accounts")
    rest = org.one("/Payments", "Payments", payment | {"Amount": 60, "Reference": "final"})
    assert rest["Invoice"]["Status"] == "PAID"
    stored = org.call("GET", f"{API}/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert (stored["Status"], stored["AmountPaid"], stored["AmountDue"], len(stored["Payments"])) == (
        "PAID",
        100.0,
        0.0,
        2,
    )
    # Without summarizeErrors=false a failure is Xero's all-or-nothing 400.
    strict = org.call("PUT", API + "/Payments", {"Payments": [payment | {"Amount": 1}]})
    assert strict.status_code == 400 and strict.json()["Type"] == "ValidationException"
    assert org.checked == []


def test_get_payments_honours_if_modified_since_where_and_paging(org: Org, clock: FakeClock) -> None:
    contact = org.contact()
    invoice = org.invoice(contact, 500)
    payment = {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "090"}}
    org.one("/Payments", "Payments", payment | {"Amount": 10, "Reference": "old"})
    clock.advance(1200)  # inside the access token's 30 minutes
    org.one("/Payments", "Payments", payment | {"Amount": 20, "Reference": "new"})
    org.one("/Payments", "Payments", payment | {"Amount": 30, "Reference": "newer"})
    since = "2026-01-01T00:10:00Z"
    recent = org.call("GET", API + "/Payments", headers={"If-Modified-Since": since}).json()["Payments"]
    assert [p["Reference"] for p in recent] == ["new", "newer"]
    http_date = org.call(
        "GET", API + "/Payments", headers={"If-Modified-Since": "Thu, 01 Jan 2026 00:10:00 GMT"}
    )
    assert len(http_date.json()["Payments"]) == 2
    where = org.call(
        "GET", API + "/Payments", where='Status=="AUTHORISED" AND Amount>=20', order="Amount DESC"
    )
    assert [p["Amount"] for p in where.json()["Payments"]] == [30.0, 20.0]
    by_invoice = org.call(
        "GET", API + "/Payments", where=f'Invoice.InvoiceID==Guid("{invoice["InvoiceID"]}")'
    )
    assert len(by_invoice.json()["Payments"]) == 3
    paged = org.call("GET", API + "/Payments", page=2, pageSize=2).json()
    assert paged["pagination"] == {"page": 2, "pageSize": 2, "pageCount": 2, "itemCount": 3}
    assert [p["Reference"] for p in paged["Payments"]] == ["newer"]
    assert org.checked == []


def test_quotes_want_an_existing_contact_and_upper_case_amount_types(org: Org) -> None:
    contact = org.contact()
    line = {"Description": "Cabinets", "Quantity": 2, "UnitAmount": 300, "AccountCode": "200"}
    quote = org.one(
        "/Quotes",
        "Quotes",
        {
            "Contact": {"ContactID": contact},
            "LineItems": [line],
            "LineAmountTypes": "INCLUSIVE",
            "Date": "2026-02-01",
        },
    )
    assert (quote["QuoteNumber"], quote["Total"], quote["Status"], quote["DateString"]) == (
        "QU-0001",
        600.0,
        "DRAFT",
        "2026-02-01T00:00:00",
    )
    mixed = org.one(
        "/Quotes",
        "Quotes",
        {
            "Contact": {"ContactID": contact},
            "LineItems": [line],
            "LineAmountTypes": "Exclusive",
            "Date": "2026-02-01",
        },
    )
    assert errors(mixed) == [
        "LineAmountTypes 'Exclusive' is not valid for quotes; use EXCLUSIVE, INCLUSIVE or NOTAX."
    ]
    nobody = org.one(
        "/Quotes", "Quotes", {"Contact": {"ContactNumber": "CL-0"}, "LineItems": [line], "Date": "2026-02-01"}
    )
    assert errors(nobody) == ["The Contact with ContactNumber CL-0 could not be found."]
    undated = org.one("/Quotes", "Quotes", {"Contact": {"ContactID": contact}, "LineItems": [line]})
    assert errors(undated) == ["Date is required for a quote."]
    listed = org.call("GET", API + "/Quotes", QuoteNumber="QU-0001", DateFrom="2026-01-01", ContactID=contact)
    assert [q["QuoteID"] for q in listed.json()["Quotes"]] == [quote["QuoteID"]]
    assert org.call("GET", API + "/Quotes", Status="SENT").json()["Quotes"] == []
    assert org.checked == []


def test_purchase_orders_numbers_statuses_dates_and_lookup_by_number(org: Org) -> None:
    contact = org.contact("Supplier Co")
    line = {"Description": "Foobar", "Quantity": 1, "UnitAmount": 20, "AccountCode": "710"}
    first = org.one(
        "/PurchaseOrders",
        "PurchaseOrders",
        {"Contact": {"ContactID": contact}, "LineItems": [line], "Date": "2026-03-13"},
    )
    second = org.one(
        "/PurchaseOrders",
        "PurchaseOrders",
        {
            "Contact": {"ContactID": contact},
            "LineItems": [line],
            "Date": "2026-04-01",
            "Status": "AUTHORISED",
        },
    )
    assert (first["PurchaseOrderNumber"], second["PurchaseOrderNumber"]) == ("PO-0001", "PO-0002")
    no_contact = org.one("/PurchaseOrders", "PurchaseOrders", {"LineItems": [line]})
    assert errors(no_contact) == ["A Contact must be specified for this type of transaction"]
    no_lines = org.one(
        "/PurchaseOrders", "PurchaseOrders", {"Contact": {"ContactID": contact}, "LineItems": []}
    )
    assert errors(no_lines) == ["A PurchaseOrder must have at least one line item."]
    discount = org.one(
        "/PurchaseOrders",
        "PurchaseOrders",
        {"Contact": {"ContactID": contact}, "LineItems": [line | {"DiscountRate": 5}]},
    )
    assert errors(discount) == ["Discounts are only supported on ACCREC invoices."]
    by_number = org.call("GET", API + "/PurchaseOrders/PO-0002").json()["PurchaseOrders"][0]
    assert by_number["PurchaseOrderID"] == second["PurchaseOrderID"]
    assert org.call("GET", API + "/PurchaseOrders/PO-0404").status_code == 404
    april = org.call(
        "GET", API + "/PurchaseOrders", DateFrom="2026-04-01", DateTo="2026-04-30", page=1
    ).json()
    assert [p["PurchaseOrderNumber"] for p in april["PurchaseOrders"]] == ["PO-0002"]
    assert april["pagination"]["itemCount"] == 1
    drafts = org.call("GET", API + "/PurchaseOrders", Status="DRAFT").json()["PurchaseOrders"]
    assert [p["PurchaseOrderNumber"] for p in drafts] == ["PO-0001"]
    assert org.checked == []


def test_items_codes_are_unique_and_tracking_needs_inventory_and_cogs_accounts(org: Org) -> None:
    tracked = {
        "Code": "W1",
        "Name": "Widget",
        "InventoryAssetAccountCode": "630",
        "PurchaseDetails": {"COGSAccountCode": "310", "UnitPrice": 4.1234},
        "SalesDetails": {"UnitPrice": 9.99, "AccountCode": "200"},
    }
    item = org.one("/Items", "Items", tracked, unitdp="4")
    assert (item["IsTrackedAsInventory"], item["QuantityOnHand"], item["PurchaseDetails"]["UnitPrice"]) == (
        True,
        0.0,
        4.1234,
    )
    duplicate = org.one("/Items", "Items", {"Code": "w1"})
    assert errors(duplicate) == ["Item code 'w1' already exists."]
    long_code = org.one("/Items", "Items", {"Code": "X" * 31})
    assert errors(long_code) == ["Item Code must not be more than 30 characters long."]
    no_cogs = org.one("/Items", "Items", {"Code": "W2", "InventoryAssetAccountCode": "630"})
    assert errors(no_cogs) == [
        "A tracked item needs PurchaseDetails.COGSAccountCode (its cost of goods account)."
    ]
    no_code = org.one("/Items", "Items", {"Name": "nameless"})
    assert errors(no_code) == ["Item Code must be specified."]
    updated = org.call(
        "POST",
        API + "/Items",
        {"Items": [{"ItemID": item["ItemID"], "Code": "W1", "Name": "Widget 2"}]},
        summarizeErrors="false",
    )
    assert updated.json()["Items"][0]["Name"] == "Widget 2"
    listed = org.call("GET", API + "/Items", where='Code=="W1" OR Code=="nope"').json()["Items"]
    assert [i["ItemID"] for i in listed] == [item["ItemID"]]
    assert org.call("GET", API + "/Items/W1").json()["Items"][0]["ItemID"] == item["ItemID"]
    assert org.checked == []


def test_bank_transfers_need_two_different_bank_accounts_and_have_no_summarize_errors(org: Org) -> None:
    body = {
        "BankTransfers": [
            {
                "FromBankAccount": {"Code": "090"},
                "ToBankAccount": {"Code": "091"},
                "Amount": 50,
                "Date": "2026-01-31",
            }
        ]
    }
    answer = org.call("PUT", API + "/BankTransfers", body)
    transfer = answer.json()["BankTransfers"][0]
    assert (transfer["Amount"], transfer["Status"], transfer["FromBankAccount"]["Code"]) == (
        50.0,
        "AUTHORISED",
        "090",
    )
    for bad, message in (
        ({"ToBankAccount": {"Code": "200"}}, "ToBankAccount must be a bank account."),
        ({"ToBankAccount": {"Code": "090"}}, "The From and To bank accounts must be different."),
        ({"Amount": 0}, "Amount must be a number greater than zero."),
        ({"FromBankAccount": {"Code": "999"}}, "FromBankAccount could not be found."),
    ):
        refused = org.call("PUT", API + "/BankTransfers", {"BankTransfers": [body["BankTransfers"][0] | bad]})
        assert refused.status_code == 400
        assert refused.json()["Elements"][0]["ValidationErrors"] == [{"Message": message}]
    # summarizeErrors is not a BankTransfers parameter: a failure stays Xero's all-or-nothing 400.
    ignored = org.http.put(
        API + "/BankTransfers",
        params={"summarizeErrors": "false"},
        json={"BankTransfers": [body["BankTransfers"][0] | {"Amount": 0}]},
        headers=org.headers(**{"Idempotency-Key": "ignored"}),
    )
    assert ignored.status_code == 400
    listed = org.call("GET", API + "/BankTransfers", where="Amount==50").json()["BankTransfers"]
    assert [t["BankTransferID"] for t in listed] == [transfer["BankTransferID"]]
    assert len(org.sandbox.bank_transfers(org.tenant)) == 1
    assert org.checked == []


def test_history_notes_are_kept_and_limited_to_250_characters(org: Org) -> None:
    invoice = org.invoice(org.contact(), 10)
    url = f"{API}/Invoices/{invoice['InvoiceID']}/History"
    added = org.call("PUT", url, {"HistoryRecords": [{"Details": "first"}, {"Details": "second"}]})
    assert [r["Details"] for r in added.json()["HistoryRecords"]] == ["first", "second"]
    too_long = org.call("PUT", url, {"HistoryRecords": [{"Details": "x" * 251}]})
    assert too_long.status_code == 400
    assert too_long.json()["Elements"][0]["ValidationErrors"] == [
        {"Message": "The Details of a history note must not be more than 250 characters long."}
    ]
    listed = org.call("GET", url).json()["HistoryRecords"]
    assert [(r["Details"], r["User"]) for r in listed] == [
        ("first", "System Generated"),
        ("second", "System Generated"),
    ]
    unknown = org.call(
        "PUT",
        f"{API}/Invoices/6f9619ff-8b86-d011-b42d-00cf4fc964ff/History",
        {"HistoryRecords": [{"Details": "x"}]},
    )
    assert unknown.status_code == 404
    assert org.checked == []


def test_reports_are_computed_from_the_organisations_data_and_balance(org: Org) -> None:
    contact = org.contact()
    invoice = org.invoice(contact, 250)
    org.one(
        "/Payments",
        "Payments",
        {
            "Invoice": {"InvoiceID": invoice["InvoiceID"]},
            "Account": {"Code": "090"},
            "Amount": 100,
            "Date": "2026-01-20",
        },
    )
    org.one(
        "/Invoices",
        "Invoices",
        {
            "Type": "ACCPAY",
            "Contact": {"ContactID": contact},
            "Status": "AUTHORISED",
            "Date": "2026-01-06",
            "LineItems": [
                {
                    "Description": "Stock",
                    "Quantity": 1,
                    "UnitAmount": 70,
                    "AccountCode": "500",
                    "TaxAmount": 7,
                }
            ],
        },
    )
    org.invoice(contact, 999, Status="DRAFT")  # drafts are not in the books
    org.call(
        "PUT",
        API + "/BankTransfers",
        {
            "BankTransfers": [
                {
                    "FromBankAccount": {"Code": "090"},
                    "ToBankAccount": {"Code": "091"},
                    "Amount": 30,
                    "Date": "2026-01-25",
                }
            ]
        },
    )
    sheet = org.call("GET", API + "/Reports/BalanceSheet", date="2026-01-31").json()["Reports"][0]
    values = {
        cells[0]["Value"]: cells[1]["Value"]
        for section in sheet["Rows"]
        for row in section.get("Rows", [])
        for cells in [row["Cells"]]
    }
    assert values["Checking Account"] == "70.00" and values["Savings Account"] == "30.00"
    assert values["Accounts Receivable"] == "150.00"
    assert values["Total Assets"] == "250.00"
    assert values["Accounts Payable"] == "77.00" and values["Sales Tax"] == "-7.00"
    assert values["Net Assets"] == values["Total Equity"] == "180.00"
    assert "Sales" not in values  # revenue reaches the balance sheet as Current Year Earnings
    bank = next(s for s in sheet["Rows"] if s.get("Title") == "Bank")
    assert bank["Rows"][0]["Cells"][1]["Attributes"][0]["Id"] == "account"
    pnl = org.call("GET", API + "/Reports/ProfitAndLoss", fromDate="2026-01-01", toDate="2026-01-31").json()[
        "Reports"
    ][0]
    lines = {
        row["Cells"][0]["Value"]: row["Cells"][1]["Value"] for s in pnl["Rows"] for row in s.get("Rows", [])
    }
    assert (lines["Sales"], lines["Purchases"], lines["Gross Profit"], lines["Net Profit"]) == (
        "250.00",
        "70.00",
        "180.00",
        "180.00",
    )
    before = org.call("GET", API + "/Reports/BalanceSheet", date="2026-01-04").json()["Reports"][0]
    totals = {
        row["Cells"][0]["Value"]: row["Cells"][1]["Value"]
        for s in before["Rows"]
        for row in s.get("Rows", [])
    }
    assert totals["Total Assets"] == "0.00"
    bad = org.http.get(API + "/Reports/ProfitAndLoss", params={"periods": "13"}, headers=org.headers())
    assert bad.status_code == 400
    assert org.call("GET", API + "/Reports/TrialBalance").status_code == 404
    assert org.checked == []


def test_the_projects_api_answers_201_with_its_own_shapes(org: Org) -> None:
    contact = org.contact()
    created = org.call(
        "POST", PROJECTS + "/Projects", {"contactId": contact, "name": "New Kitchen", "estimateAmount": 99.99}
    )
    assert created.status_code == 201
    project = created.json()
    assert (project["status"], project["estimate"], project["totalInvoiced"]) == (
        "INPROGRESS",
        {"currency": "USD", "value": 99.99},
        {"currency": "USD", "value": 0.0},
    )
    envelope = org.call("POST", PROJECTS + "/Projects", {"Projects": [{"name": "x"}]})
    assert envelope.status_code == 400 and envelope.json()["modelState"] == {
        "name": ["The name field is required."]
    }
    ghost = org.call(
        "POST", PROJECTS + "/Projects", {"name": "Ghost", "contactId": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}
    )
    assert ghost.json() == {
        "message": "The request is invalid.",
        "modelState": {"contactId": ["The contact could not be found."]},
    }
    listed = org.call("GET", PROJECTS + "/Projects", contactID=contact, states="INPROGRESS").json()
    assert [p["projectId"] for p in listed["items"]] == [project["projectId"]]
    assert listed["pagination"] == {"page": 1, "pageSize": 50, "pageCount": 1, "itemCount": 1}
    one = org.call("GET", PROJECTS + "/Projects/" + project["projectId"])
    assert one.json()["name"] == "New Kitchen"
    missing = org.http.get(PROJECTS + "/Projects", headers={"Authorization": org.headers()["Authorization"]})
    assert missing.status_code == 403  # the tenant header is required here too
    assert org.checked == []


def test_idempotency_covers_the_new_writes(org: Org) -> None:
    headers = org.headers(**{"Idempotency-Key": "same"})
    body = {
        "BankTransfers": [{"FromBankAccount": {"Code": "090"}, "ToBankAccount": {"Code": "091"}, "Amount": 5}]
    }
    first = org.http.put(API + "/BankTransfers", json=body, headers=headers)
    again = org.http.put(API + "/BankTransfers", json=body, headers=headers)
    assert (
        first.json()["BankTransfers"][0]["BankTransferID"]
        == again.json()["BankTransfers"][0]["BankTransferID"]
    )
    assert len(org.sandbox.bank_transfers(org.tenant)) == 1
    project = {"name": "Once", "contactId": org.contact()}
    ids = {
        org.http.post(
            PROJECTS + "/Projects", json=project, headers=org.headers(**{"Idempotency-Key": "p"})
        ).json()["projectId"]
        for _ in range(2)
    }
    assert len(ids) == 1 and len(org.sandbox.projects(org.tenant)) == 1


def test_response_validation_can_fail(org: Org) -> None:
    contact = org.contact()
    invoice = org.invoice(contact, 10)
    answer = org.put(
        "/Payments",
        {
            "Payments": [
                {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 1}
            ]
        },
    )
    broken = answer.json()
    broken["Payments"][0]["Amount"] = "one"
    assert validate_response("PUT", f"{API}/Payments", 200, broken) != []
