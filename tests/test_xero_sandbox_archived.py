# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
"""The sandbox refuses an invoice or a bill for an ARCHIVED contact as Xero does ("The contact with
the specified contact details has been archived. The contact must be un-archived before creating
new invoices or credit notes.", the answer integrations quote from Xero, see
local/xero_sandbox/contacts.py), and takes it again once the contact is restored. Quotes and
purchase orders are not refused: Xero's message names invoices and credit notes only."""

from __future__ import annotations

from typing import Any

import pytest

from clientary_xero.local.xero_sandbox import XeroSandbox
from tests.conftest_xero import FakeClock, clock, sandbox  # noqa: F401
from tests.test_xero_sandbox_more import API, Org, errors

REFUSAL = (
    "The contact with the specified contact details has been archived. "
    "The contact must be un-archived before creating new invoices or credit notes."
)
LINE = {"Description": "Work", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}


@pytest.fixture
def org(sandbox: XeroSandbox) -> Org:
    return Org(sandbox)


def set_status(org: Org, contact_id: str, status: str) -> None:
    answer = org.call(
        "POST",
        API + "/Contacts",
        {"Contacts": [{"ContactID": contact_id, "ContactStatus": status}]},
        summarizeErrors="false",
    )
    assert answer.json()["Contacts"][0]["StatusAttributeString"] == "OK", answer.text


def invoice(contact: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "Contact": contact,
        "Status": "AUTHORISED",
        "Date": "2026-01-05",
        "LineItems": [LINE],
        **extra,
    }


def stored_invoices(org: Org) -> list[dict[str, Any]]:
    return list(org.call("GET", API + "/Invoices").json()["Invoices"])


def test_an_invoice_or_bill_for_an_archived_contact_is_refused_until_it_is_restored(org: Org) -> None:
    contact = org.one("/Contacts", "Contacts", {"Name": "Old Ltd", "ContactNumber": "CL-7"})
    contact_id = contact["ContactID"]
    set_status(org, contact_id, "ARCHIVED")

    by_id = org.one("/Invoices", "Invoices", invoice({"ContactID": contact_id}, InvoiceNumber="CL-1"))
    assert errors(by_id) == [REFUSAL]
    assert (by_id["HasErrors"], by_id["StatusAttributeString"]) == (True, "ERROR")
    by_number = org.one("/Invoices", "Invoices", invoice({"ContactNumber": "CL-7"}))
    assert errors(by_number) == [REFUSAL]
    bill = org.one("/Invoices", "Invoices", invoice({"ContactID": contact_id}, Type="ACCPAY"))
    assert errors(bill) == [REFUSAL]
    # Without summarizeErrors=false: Xero's all-or-nothing 400 with the element's error
    strict = org.call("PUT", API + "/Invoices", {"Invoices": [invoice({"ContactID": contact_id})]})
    assert strict.status_code == 400
    body = strict.json()
    assert (body["ErrorNumber"], body["Type"]) == (10, "ValidationException")
    assert [e["Message"] for e in body["Elements"][0]["ValidationErrors"]] == [REFUSAL]
    assert stored_invoices(org) == []  # nothing was made

    set_status(org, contact_id, "ACTIVE")  # restored
    made = org.one("/Invoices", "Invoices", invoice({"ContactID": contact_id}, InvoiceNumber="CL-1"))
    assert errors(made) == [] and made["StatusAttributeString"] == "OK"
    assert made["Contact"]["ContactID"] == contact_id
    assert [i["InvoiceNumber"] for i in stored_invoices(org)] == ["CL-1"]
    assert org.checked == []


def test_a_draft_of_a_contact_archived_since_cannot_be_approved_but_can_be_voided(org: Org) -> None:
    contact_id = org.contact("Later Ltd")
    draft = org.one("/Invoices", "Invoices", invoice({"ContactID": contact_id}, Status="DRAFT"))
    other = org.one("/Invoices", "Invoices", invoice({"ContactID": contact_id}, Status="DRAFT"))
    set_status(org, contact_id, "ARCHIVED")

    def post(element: dict[str, Any]) -> dict[str, Any]:
        answer = org.call("POST", API + "/Invoices", {"Invoices": [element]}, summarizeErrors="false")
        return dict(answer.json()["Invoices"][0])

    approve = post({"InvoiceID": draft["InvoiceID"], "Status": "AUTHORISED"})
    assert errors(approve) == [REFUSAL]
    kept = org.call("GET", f"{API}/Invoices/{draft['InvoiceID']}").json()["Invoices"][0]
    assert kept["Status"] == "DRAFT"
    deleted = post({"InvoiceID": other["InvoiceID"], "Status": "DELETED"})
    assert errors(deleted) == [] and deleted["Status"] == "DELETED"
    assert org.checked == []


def test_quotes_and_purchase_orders_for_an_archived_contact_are_not_refused(org: Org) -> None:
    # Xero's message names "invoices or credit notes"; no source reports a quote or a purchase order
    # refused for an archived contact, so the sandbox takes them (see xero_sandbox/contacts.py).
    contact_id = org.contact("Old Supplier")
    set_status(org, contact_id, "ARCHIVED")
    quote = org.one(
        "/Quotes", "Quotes", {"Contact": {"ContactID": contact_id}, "LineItems": [LINE], "Date": "2026-02-01"}
    )
    order = org.one(
        "/PurchaseOrders", "PurchaseOrders", {"Contact": {"ContactID": contact_id}, "LineItems": [LINE]}
    )
    assert (errors(quote), errors(order)) == ([], [])
    assert (quote["QuoteNumber"], order["PurchaseOrderNumber"]) == ("QU-0001", "PO-0001")
    assert org.checked == []
