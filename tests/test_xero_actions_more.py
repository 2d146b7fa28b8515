# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
"""Every Xero action of issue #3 against the sandbox: the effect in Xero, validation before any call,
Xero's own validation messages, find found / not found / several, retries that write nothing twice.

The ``recorder`` fixture checks, when each test ends, that every request conforms to Xero's OpenAPI
description, that every write carried an Idempotency-Key and that no credential was recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from clientary_xero.connectors.base import registry
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.errors import PermanentError
from clientary_xero.local.xero_sandbox import XeroSandbox
from tests.conftest_xero import (  # noqa: F401
    AwsEnv,
    FakeClock,
    Recorded,
    aws,
    clock,
    connection,
    make_context,
    make_provider,
    recorder,
    sandbox,
    xero,
)
from tests.xero_contract import validate_requests

GUID = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"


def run(
    client: XeroClient, name: str, fields: dict[str, Any], *, attempt: int = 1, step: str = "step"
) -> Any:
    """Validate ``fields`` with the action's model (as the engine does) and run the action."""
    spec = registry()[name]
    data = spec.input_model.model_validate(fields)
    return spec.run(make_context(client, step_id=step, attempt=attempt), data)


def refused(name: str, fields: dict[str, Any]) -> list[str]:
    """The validation messages the engine would show; nothing reaches Xero."""
    with pytest.raises(ValidationError) as caught:
        registry()[name].input_model.model_validate(fields)
    return [str(e["msg"]) for e in caught.value.errors()]


def writes(recorder: Recorded) -> list[tuple[str, str]]:
    return [
        (r["method"], r["url"].split("?")[0].split("/2.0", 1)[1])
        for r in recorder.records()
        if r["url"].startswith("https://api.xero.com") and r["method"] != "GET"
    ]


@pytest.fixture
def tenant(connection: dict[str, Any]) -> str:
    return str(connection["tenant_id"])


@pytest.fixture
def acme(sandbox: XeroSandbox, tenant: str) -> dict[str, Any]:
    return sandbox.seed_contact(tenant, Name="Acme Ltd", ContactNumber="CL-7", EmailAddress="ap@acme.test")


def authorised_invoice(
    client: XeroClient, contact_id: str, amount: float = 100.0, **extra: Any
) -> dict[str, Any]:
    fields = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Status": "AUTHORISED",
        "Date": "2026-01-10",
        "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": amount, "AccountCode": "200"}],
        **extra,
    }
    return run(client, "xero.create_invoice", fields, step="invoice")


def test_every_action_of_the_issue_is_registered_for_the_xero_queue() -> None:
    names = {
        "xero.create_or_update_contact",
        "xero.find_contact",
        "xero.create_invoice",
        "xero.find_invoice",
        "xero.add_note_to_invoice",
        "xero.create_payment",
        "xero.create_quote",
        "xero.create_purchase_order",
        "xero.find_purchase_order",
        "xero.add_stock_items",
        "xero.create_bank_transfer",
        "xero.create_project",
        "xero.get_balance_sheet",
        "xero.get_profit_and_loss",
    }
    actions = registry()
    assert names <= set(actions)
    for name in names:
        assert actions[name].app == "xero"
        assert actions[name].input_model.model_config.get("extra") == "forbid", name
        assert actions[name].description, name


# ---------------------------------------------------------------- find contact
def test_find_contact_by_number_name_email_and_search_term(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
    recorder: Recorded,
) -> None:
    sandbox.seed_contact(tenant, Name="Acme Holdings", ContactNumber="CL-8")
    by_number = run(xero, "xero.find_contact", {"ContactNumber": "CL-7"})
    assert by_number["found"] is True and by_number["count"] == 1
    assert (by_number["ContactID"], by_number["Name"], by_number["EmailAddress"]) == (
        acme["ContactID"],
        "Acme Ltd",
        "ap@acme.test",
    )
    assert by_number["UpdatedDateUTC"].startswith("2026-01-01T00:00:00")
    assert run(xero, "xero.find_contact", {"Name": "acme ltd"})["ContactID"] == acme["ContactID"]
    assert run(xero, "xero.find_contact", {"EmailAddress": "AP@acme.test"})["ContactID"] == acme["ContactID"]
    assert run(xero, "xero.find_contact", {"ContactID": acme["ContactID"]})["Name"] == "Acme Ltd"
    both = run(xero, "xero.find_contact", {"SearchTerm": "acme"})
    assert (both["count"], [m["Name"] for m in both["matches"]]) == (2, ["Acme Ltd", "Acme Holdings"])
    assert both["ContactID"] == acme["ContactID"]  # the first of several
    with pytest.raises(PermanentError, match="2 Xero contacts match SearchTerm 'acme'"):
        run(xero, "xero.find_contact", {"SearchTerm": "acme", "Multiple": "fail"})
    assert writes(recorder) == []


def test_find_contact_not_found_is_a_success_unless_the_step_asks_to_fail(
    xero: XeroClient,
    acme: dict[str, Any],
) -> None:
    missing = run(xero, "xero.find_contact", {"ContactNumber": "CL-404"})
    assert missing["found"] is False and missing["count"] == 0 and missing["matches"] == []
    assert missing["ContactID"] is None and "Name" in missing  # every field present, null
    unknown_id = run(xero, "xero.find_contact", {"ContactID": GUID})
    assert unknown_id["found"] is False
    with pytest.raises(PermanentError) as caught:
        run(xero, "xero.find_contact", {"ContactNumber": "CL-404", "FailIfNotFound": True})
    assert str(caught.value) == "no Xero contact matches ContactNumber 'CL-404' (FailIfNotFound is true)"


def test_find_contact_input_is_checked_before_any_call() -> None:
    assert refused("xero.find_contact", {}) == [
        "Value error, give at least one of ContactID, ContactNumber, Name, EmailAddress or SearchTerm"
    ]
    assert refused("xero.find_contact", {"ContactID": "not-a-guid"})[0].startswith(
        "String should match pattern"
    )
    assert refused("xero.find_contact", {"Email": "x@y.test"}) == ["Extra inputs are not permitted"]


# ---------------------------------------------------------------- find invoice
def test_find_invoice_by_id_number_reference_contact_and_status(
    xero: XeroClient,
    acme: dict[str, Any],
    recorder: Recorded,
) -> None:
    first = authorised_invoice(xero, acme["ContactID"], InvoiceNumber="CL-1", Reference="Job 1")
    second = run(
        xero,
        "xero.create_invoice",
        {
            "Contact": {"ContactID": acme["ContactID"]},
            "InvoiceNumber": "CL-2",
            "Reference": "Job 2",
            "LineItems": [{"Description": "More", "Quantity": 2, "UnitAmount": 10}],
        },
        step="invoice2",
    )
    by_id = run(xero, "xero.find_invoice", {"InvoiceID": first["InvoiceID"]})
    assert (by_id["found"], by_id["InvoiceNumber"], by_id["Total"], by_id["AmountPaid"]) == (
        True,
        "CL-1",
        100.0,
        0.0,
    )
    assert by_id["Date"] == "2026-01-10" and by_id["Status"] == "AUTHORISED"
    assert run(xero, "xero.find_invoice", {"InvoiceNumber": "CL-2"})["InvoiceID"] == second["InvoiceID"]
    assert run(xero, "xero.find_invoice", {"Reference": "Job 1"})["InvoiceID"] == first["InvoiceID"]
    drafts = run(xero, "xero.find_invoice", {"ContactID": acme["ContactID"], "Status": "DRAFT"})
    assert (drafts["count"], drafts["InvoiceID"]) == (1, second["InvoiceID"])
    several = run(xero, "xero.find_invoice", {"ContactID": acme["ContactID"]})
    assert several["count"] == 2 and {m["InvoiceNumber"] for m in several["matches"]} == {"CL-1", "CL-2"}
    assert run(xero, "xero.find_invoice", {"InvoiceNumber": "CL-3"})["found"] is False
    assert run(xero, "xero.find_invoice", {"InvoiceID": GUID})["found"] is False
    with pytest.raises(PermanentError, match="no Xero invoice matches"):
        run(xero, "xero.find_invoice", {"Reference": "nope", "FailIfNotFound": True})
    assert refused("xero.find_invoice", {"Type": "ACCREC"}) == [
        "Value error, give at least one of InvoiceID, InvoiceNumber, Reference, ContactID or Status"
    ]
    assert refused("xero.find_invoice", {"Status": "OPEN"})[0].startswith("Input should be")


# ------------------------------------------------------------------ notes
def test_a_note_is_added_to_the_invoice_history(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
    recorder: Recorded,
) -> None:
    invoice = authorised_invoice(xero, acme["ContactID"])
    out = run(
        xero,
        "xero.add_note_to_invoice",
        {"InvoiceID": invoice["InvoiceID"], "Details": "Synced from Clientary #42"},
    )
    assert out == {
        "InvoiceID": invoice["InvoiceID"],
        "NotesAdded": 1,
        "Details": ["Synced from Clientary #42"],
        "Split": False,
        "DateUTC": "2026-01-01T00:00:00+00:00",
        "created": True,
    }
    history = sandbox.history(tenant, invoice["InvoiceID"])
    assert [(h["Details"], h["User"], h["Changes"]) for h in history] == [
        ("Synced from Clientary #42", "System Generated", "Note")
    ]
    (put,) = [r for r in recorder.records() if r["method"] == "PUT" and r["url"].endswith("/History")]
    assert "summarizeErrors" not in put["url"] and put["headers"]["Idempotency-Key"] == "run-1:step:0"


def test_a_long_note_is_split_into_250_character_notes_or_refused(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
    clock: FakeClock,
) -> None:
    invoice = authorised_invoice(xero, acme["ContactID"])
    words = " ".join(f"word{i:03d}" for i in range(70))  # 559 characters
    out = run(xero, "xero.add_note_to_invoice", {"InvoiceID": invoice["InvoiceID"], "Details": words})
    assert out["NotesAdded"] == 3 and out["Split"] is True
    assert all(len(part) <= 250 for part in out["Details"]) and " ".join(out["Details"]) == words
    assert [h["Details"] for h in sandbox.history(tenant, invoice["InvoiceID"])] == out["Details"]
    # A retry after Xero forgot the key adds nothing twice.
    clock.advance(7 * 60)
    again = run(
        xero, "xero.add_note_to_invoice", {"InvoiceID": invoice["InvoiceID"], "Details": words}, attempt=2
    )
    assert (again["created"], again["NotesAdded"]) == (False, 0)
    assert len(sandbox.history(tenant, invoice["InvoiceID"])) == 3

    assert refused(
        "xero.add_note_to_invoice",
        {"InvoiceID": invoice["InvoiceID"], "Details": words, "IfTooLong": "refuse"},
    ) == [
        "Value error, Details has 559 characters; a Xero note holds at most 250 "
        "(IfTooLong is 'refuse'; use 'split' to add it as several notes)"
    ]
    assert refused(
        "xero.add_note_to_invoice", {"InvoiceID": invoice["InvoiceID"], "Details": "x" * 2501}
    ) == ["String should have at most 2500 characters"]


def test_a_note_on_an_unknown_invoice_is_a_permanent_404(xero: XeroClient, recorder: Recorded) -> None:
    with pytest.raises(PermanentError) as caught:
        run(xero, "xero.add_note_to_invoice", {"InvoiceID": GUID, "Details": "hello"})
    assert caught.value.status == 404


# ---------------------------------------------------------------- payments
def test_a_payment_settles_an_authorised_invoice(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
    recorder: Recorded,
) -> None:
    invoice = authorised_invoice(xero, acme["ContactID"], amount=150)
    part = run(
        xero,
        "xero.create_payment",
        {
            "Invoice": {"InvoiceID": invoice["InvoiceID"]},
            "Account": {"Code": "090"},
            "Amount": 50,
            "Date": "2026-01-20",
        },
        step="pay1",
    )
    assert part["created"] is True and part["PaymentID"]
    assert (part["Amount"], part["Date"], part["Status"], part["PaymentType"]) == (
        50.0,
        "2026-01-20",
        "AUTHORISED",
        "ACCRECPAYMENT",
    )
    assert (part["InvoiceStatus"], part["InvoiceAmountDue"], part["AccountCode"]) == (
        "AUTHORISED",
        100.0,
        "090",
    )
    rest = run(
        xero,
        "xero.create_payment",
        {
            "Invoice": {"InvoiceID": invoice["InvoiceID"]},
            "Account": {"Code": "090"},
            "Amount": 100,
            "Reference": "Final",
        },
        step="pay2",
    )
    assert (rest["InvoiceStatus"], rest["InvoiceAmountDue"]) == ("PAID", 0.0)
    (stored,) = sandbox.invoices(tenant)
    assert (stored["Status"], stored["AmountPaid"], stored["AmountDue"]) == ("PAID", 150.0, 0.0)
    assert len(sandbox.payments(tenant)) == 2
    put = [r for r in recorder.records() if r["method"] == "PUT" and "/Payments" in r["url"]]
    assert all("summarizeErrors=false" in r["url"] for r in put)
    # Only the ids go to Xero (a full invoice would be validated again).
    assert put[0]["json"]["Payments"][0]["Invoice"] == {"InvoiceID": invoice["InvoiceID"]}
    assert put[0]["json"]["Payments"][0]["Account"] == {"Code": "090"}


def test_xero_refuses_payments_on_drafts_overpayments_and_non_bank_accounts(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
) -> None:
    draft = run(
        xero,
        "xero.create_invoice",
        {"Contact": {"ContactID": acme["ContactID"]}, "LineItems": [{"Description": "x", "UnitAmount": 10}]},
        step="draft",
    )
    approved = authorised_invoice(xero, acme["ContactID"], amount=20)
    cases = [
        (
            {"InvoiceID": draft["InvoiceID"]},
            {"Code": "090"},
            5,
            "Payments can only be made against Authorised documents.",
        ),
        (
            {"InvoiceID": approved["InvoiceID"]},
            {"Code": "090"},
            25,
            "Payment amount must be less than or equal to the outstanding amount owing on the invoice.",
        ),
        (
            {"InvoiceID": approved["InvoiceID"]},
            {"Code": "200"},
            5,
            "Payments can only be made to Bank accounts or accounts with 'Enable payments to this account'.",
        ),
    ]
    for number, (invoice, account, amount, message) in enumerate(cases):
        with pytest.raises(PermanentError) as caught:
            run(
                xero,
                "xero.create_payment",
                {"Invoice": invoice, "Account": account, "Amount": amount},
                step=f"p{number}",
            )
        assert caught.value.messages == [message]
    assert sandbox.payments(tenant) == []


def test_a_retried_payment_after_the_key_expired_is_found_not_repeated(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
    clock: FakeClock,
) -> None:
    invoice = authorised_invoice(xero, acme["ContactID"], amount=80)
    fields = {
        "Invoice": {"InvoiceID": invoice["InvoiceID"]},
        "Account": {"Code": "091"},
        "Amount": 30,
        "Reference": "CL pmt 9",
    }
    first = run(xero, "xero.create_payment", fields)
    clock.advance(7 * 60)
    again = run(xero, "xero.create_payment", fields, attempt=2)
    assert (again["PaymentID"], again["created"]) == (first["PaymentID"], False)
    assert len(sandbox.payments(tenant)) == 1


def test_payment_input_is_checked_before_any_call() -> None:
    base = {"Invoice": {"InvoiceID": GUID}, "Account": {"Code": "090"}, "Amount": 10}
    assert refused("xero.create_payment", base | {"Amount": 0}) == ["Input should be greater than 0"]
    assert refused("xero.create_payment", base | {"Account": {}}) == [
        "Value error, give the account's Code or AccountID"
    ]
    assert refused("xero.create_payment", base | {"Invoice": {"InvoiceID": GUID, "Total": 10}}) == [
        "Extra inputs are not permitted"
    ]
    assert refused("xero.create_payment", {k: v for k, v in base.items() if k != "Invoice"}) == [
        "Field required"
    ]


# ------------------------------------------------------------------ quotes
def test_create_quote_sends_upper_case_line_amount_types(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
    recorder: Recorded,
) -> None:
    out = run(
        xero,
        "xero.create_quote",
        {
            "Contact": {"ContactNumber": "CL-7"},
            "Date": "2026-02-01",
            "ExpiryDate": "2026-03-01",
            "Title": "Kitchen",
            "LineAmountTypes": "Exclusive",  # the invoice spelling is accepted and sent as Xero wants
            "LineItems": [
                {
                    "Description": "Cabinets",
                    "Quantity": 2,
                    "UnitAmount": 300,
                    "AccountCode": "200",
                    "DiscountRate": 10,
                }
            ],
        },
    )
    assert {
        k: out[k] for k in ("QuoteNumber", "Status", "ContactID", "Date", "ExpiryDate", "Total", "created")
    } == {
        "QuoteNumber": "QU-0001",
        "Status": "DRAFT",
        "ContactID": acme["ContactID"],
        "Date": "2026-02-01",
        "ExpiryDate": "2026-03-01",
        "Total": 540.0,
        "created": True,
    }
    (put,) = [r for r in recorder.records() if r["method"] == "PUT"]
    assert put["json"]["Quotes"][0]["LineAmountTypes"] == "EXCLUSIVE"
    assert "summarizeErrors=false" in put["url"]
    assert [q["QuoteID"] for q in sandbox.quotes(tenant)] == [out["QuoteID"]]


def test_quote_errors_before_and_from_xero(xero: XeroClient, sandbox: XeroSandbox, tenant: str) -> None:
    base = {
        "Contact": {"ContactNumber": "CL-404"},
        "Date": "2026-02-01",
        "LineItems": [{"Description": "x", "UnitAmount": 1}],
    }
    assert refused("xero.create_quote", {k: v for k, v in base.items() if k != "Date"}) == ["Field required"]
    assert refused("xero.create_quote", base | {"LineAmountTypes": "GROSS"})[0].startswith(
        "Input should be 'EXCLUSIVE', 'INCLUSIVE' or 'NOTAX'"
    )
    assert refused("xero.create_quote", base | {"Title": "x" * 101}) == [
        "String should have at most 100 characters"
    ]
    assert refused("xero.create_quote", base | {"LineItems": []}) == [
        "List should have at least 1 item after validation, not 0"
    ]
    with pytest.raises(PermanentError) as caught:
        run(xero, "xero.create_quote", base)
    assert caught.value.messages == ["The Contact with ContactNumber CL-404 could not be found."]
    assert sandbox.quotes(tenant) == []


# --------------------------------------------------------- purchase orders
def test_a_purchase_order_is_created_then_found_by_number_status_and_dates(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
    recorder: Recorded,
) -> None:
    order = run(
        xero,
        "xero.create_purchase_order",
        {
            "Contact": {"ContactID": acme["ContactID"]},
            "Date": "2026-03-13",
            "DeliveryDate": "2026-03-20",
            "DeliveryInstructions": "Back door",
            "LineItems": [{"Description": "Foobar", "Quantity": 1, "UnitAmount": 20, "AccountCode": "710"}],
        },
        step="po1",
    )
    assert (order["PurchaseOrderNumber"], order["Status"], order["Total"], order["DeliveryDate"]) == (
        "PO-0001",
        "DRAFT",
        20.0,
        "2026-03-20",
    )
    run(
        xero,
        "xero.create_purchase_order",
        {
            "Contact": {"ContactID": acme["ContactID"]},
            "Date": "2026-04-02",
            "Status": "AUTHORISED",
            "LineItems": [{"Description": "Bolts", "Quantity": 10, "UnitAmount": 1.5, "AccountCode": "500"}],
        },
        step="po2",
    )
    by_number = run(xero, "xero.find_purchase_order", {"PurchaseOrderNumber": "PO-0001"})
    assert (by_number["found"], by_number["PurchaseOrderID"]) == (True, order["PurchaseOrderID"])
    assert (
        run(xero, "xero.find_purchase_order", {"PurchaseOrderID": order["PurchaseOrderID"]})["Total"] == 20.0
    )
    april = run(xero, "xero.find_purchase_order", {"DateFrom": "2026-04-01", "DateTo": "2026-04-30"})
    assert (april["count"], april["PurchaseOrderNumber"], april["Total"]) == (1, "PO-0002", 15.0)
    both = run(xero, "xero.find_purchase_order", {"DateFrom": "2026-01-01"})
    assert both["count"] == 2 and both["PurchaseOrderNumber"] == "PO-0001"
    assert run(xero, "xero.find_purchase_order", {"Status": "BILLED"})["found"] is False
    assert run(xero, "xero.find_purchase_order", {"PurchaseOrderNumber": "PO-0009"})["found"] is False
    with pytest.raises(PermanentError, match="Multiple is 'fail'"):
        run(xero, "xero.find_purchase_order", {"DateFrom": "2026-01-01", "Multiple": "fail"})
    assert len(sandbox.purchase_orders(tenant)) == 2
    # A find by number reads the list (GET /PurchaseOrders/{number} shares its template with the
    # uuid read): no request puts a number in the path, and every request conforms.
    records = [r for r in recorder.records() if r["url"].startswith("https://api.xero.com")]
    assert not any("/PurchaseOrders/PO-" in r["url"] for r in records)
    assert any("order=Date+DESC" in r["url"] for r in records)
    assert validate_requests(records) == []


def test_a_purchase_order_number_with_slashes_and_hashes_is_found(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, acme: dict[str, Any]
) -> None:
    made = run(
        xero,
        "xero.create_purchase_order",
        {
            "Contact": {"ContactID": acme["ContactID"]},
            "PurchaseOrderNumber": "2025/11 #7?x",
            "LineItems": [{"Description": "Timber", "Quantity": 1, "UnitAmount": 9, "AccountCode": "500"}],
        },
    )
    found = run(xero, "xero.find_purchase_order", {"PurchaseOrderNumber": "2025/11 #7?x"})
    assert (found["found"], found["PurchaseOrderID"]) == (True, made["PurchaseOrderID"])


def test_a_find_by_number_beyond_the_scanned_pages_fails_instead_of_saying_not_found(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from clientary_xero.connectors.xero.actions import documents

    # Given more orders than the scan reads (one page here), none numbered PO-OLD
    monkeypatch.setattr(documents, "NUMBER_SCAN_PAGES", 1)
    order = run(
        xero,
        "xero.create_purchase_order",
        {
            "Contact": {"ContactID": acme["ContactID"]},
            "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "500"}],
        },
    )
    stored = next(
        o for o in sandbox.purchase_orders(tenant) if o["PurchaseOrderID"] == order["PurchaseOrderID"]
    )
    with sandbox._lock:  # a hundred more, straight into the organisation (no 60-calls budget)
        table = sandbox._tenants[tenant].purchase_orders
        for n in range(100):
            copy = {
                **stored,
                "PurchaseOrderID": f"00000000-0000-4000-8000-{n:012d}",
                "PurchaseOrderNumber": f"PO-X{n}",
            }
            table[copy["PurchaseOrderID"]] = copy
    # Then the step fails and says how to narrow the search
    with pytest.raises(PermanentError, match=r"not among the newest 100 purchase orders.*DateFrom/DateTo"):
        run(xero, "xero.find_purchase_order", {"PurchaseOrderNumber": "PO-OLD"})
    # and a narrower search that reads every page answers found: false
    narrow = run(
        xero, "xero.find_purchase_order", {"PurchaseOrderNumber": "PO-OLD", "DateFrom": "2099-01-01"}
    )
    assert narrow["found"] is False


def test_purchase_orders_need_an_existing_contact_and_no_discounts(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
) -> None:
    line = {"Description": "x", "Quantity": 1, "UnitAmount": 5}
    with pytest.raises(PermanentError) as caught:
        run(xero, "xero.create_purchase_order", {"Contact": {"ContactID": GUID}, "LineItems": [line]})
    assert caught.value.messages == [f"The Contact with ContactID {GUID} could not be found."]
    with pytest.raises(PermanentError) as bad_code:
        run(
            xero,
            "xero.create_purchase_order",
            {"Contact": {"ContactID": acme["ContactID"]}, "LineItems": [line | {"AccountCode": "999"}]},
            step="po-bad",
        )
    assert bad_code.value.messages == ["Account code '999' is not a valid code for this document."]
    assert refused(
        "xero.create_purchase_order",
        {"Contact": {"ContactID": GUID}, "LineItems": [line | {"DiscountRate": 5}]},
    ) == ["Extra inputs are not permitted"]
    assert refused("xero.find_purchase_order", {"DateFrom": "2026-05-01", "DateTo": "2026-04-01"}) == [
        "Value error, DateFrom is after DateTo"
    ]
    assert sandbox.purchase_orders(tenant) == []


# ------------------------------------------------------------------- items
TRACKED = {
    "Code": "WIDGET-1",
    "Name": "Widget",
    "InventoryAssetAccountCode": "630",
    "PurchaseDetails": {"COGSAccountCode": "310", "UnitPrice": 4.25},
    "SalesDetails": {"UnitPrice": 9.99, "AccountCode": "200"},
}


def test_stock_items_are_created_then_updated_by_code(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    recorder: Recorded,
) -> None:
    first = run(
        xero, "xero.add_stock_items", {"Items": [TRACKED, {"Code": "SERVICE", "Name": "Hourly work"}]}
    )
    assert (first["count"], first["created"], first["updated"]) == (2, 2, 0)
    widget = first["Items"][0]
    assert (
        widget["IsTrackedAsInventory"],
        widget["InventoryAssetAccountCode"],
        widget["SalesUnitPrice"],
    ) == (
        True,
        "630",
        9.99,
    )
    assert set(first["ItemIDs"]) == {"WIDGET-1", "SERVICE"}
    second = run(
        xero,
        "xero.add_stock_items",
        {"Items": [TRACKED | {"Name": "Widget v2"}, {"Code": "NEW", "IsSold": False}]},
        step="again",
    )
    assert (second["created"], second["updated"]) == (1, 1)
    assert second["ItemIDs"]["WIDGET-1"] == first["ItemIDs"]["WIDGET-1"]
    items = {i["Code"]: i for i in sandbox.items(tenant)}
    assert set(items) == {"WIDGET-1", "SERVICE", "NEW"} and items["WIDGET-1"]["Name"] == "Widget v2"
    posts = [r for r in recorder.records() if r["method"] == "POST"]
    assert all("summarizeErrors=false" in r["url"] and "unitdp=4" in r["url"] for r in posts)
    assert posts[1]["json"]["Items"][0]["ItemID"] == first["ItemIDs"]["WIDGET-1"]


def test_an_upsert_retried_inside_the_key_window_updates_instead_of_failing(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    clock: FakeClock,
) -> None:
    first = run(xero, "xero.add_stock_items", {"Items": [{"Code": "NEW-1", "Name": "New"}]})
    clock.advance(60)  # the first answer was lost; the retry comes well inside Xero's 6-minute window
    again = run(xero, "xero.add_stock_items", {"Items": [{"Code": "NEW-1", "Name": "New"}]}, attempt=2)
    assert again["ItemIDs"] == first["ItemIDs"] and (again["created"], again["updated"]) == (0, 1)
    assert [i["Code"] for i in sandbox.items(tenant)] == ["NEW-1"]


def test_create_mode_refuses_an_existing_code_with_xeros_message(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
) -> None:
    run(xero, "xero.add_stock_items", {"Items": [{"Code": "A1"}], "Mode": "create"})
    with pytest.raises(PermanentError) as caught:
        run(xero, "xero.add_stock_items", {"Items": [{"Code": "a1"}], "Mode": "create"}, step="dup")
    assert caught.value.messages == ["Item code 'a1' already exists."]
    with pytest.raises(PermanentError) as wrong:
        run(
            xero,
            "xero.add_stock_items",
            {"Items": [TRACKED | {"Code": "B2", "InventoryAssetAccountCode": "200"}], "Mode": "create"},
            step="wrong",
        )
    assert wrong.value.messages == ["InventoryAssetAccountCode must be the code of an Inventory account."]
    assert [i["Code"] for i in sandbox.items(tenant)] == ["A1"]


def test_item_input_is_checked_before_any_call() -> None:
    assert refused("xero.add_stock_items", {"Items": [{"Code": "X" * 31}]}) == [
        "String should have at most 30 characters"
    ]
    assert refused("xero.add_stock_items", {"Items": [{"Name": "no code"}]}) == ["Field required"]
    assert refused(
        "xero.add_stock_items", {"Items": [{"Code": "T", "InventoryAssetAccountCode": "630"}]}
    ) == [
        "Value error, item 'T': a tracked item (InventoryAssetAccountCode) needs "
        "PurchaseDetails.COGSAccountCode"
    ]
    assert refused("xero.add_stock_items", {"Items": [{"Code": "A"}, {"Code": "a"}]}) == [
        "Value error, item code 'a' appears twice"
    ]
    assert refused("xero.add_stock_items", {"Items": []}) == [
        "List should have at least 1 item after validation, not 0"
    ]


# ---------------------------------------------------------- bank transfers
def test_a_bank_transfer_moves_money_between_bank_accounts(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    recorder: Recorded,
) -> None:
    out = run(
        xero,
        "xero.create_bank_transfer",
        {
            "FromBankAccount": {"Code": "090"},
            "ToBankAccount": {"Code": "091"},
            "Amount": 50,
            "Date": "2026-01-31",
            "Reference": "Sub 098801",
        },
    )
    assert {
        k: out[k] for k in ("Amount", "Date", "FromBankAccountCode", "ToBankAccountCode", "Status", "created")
    } == {
        "Amount": 50.0,
        "Date": "2026-01-31",
        "FromBankAccountCode": "090",
        "ToBankAccountCode": "091",
        "Status": "AUTHORISED",
        "created": True,
    }
    assert out["FromBankTransactionID"] and out["ToBankTransactionID"]
    (put,) = [r for r in recorder.records() if r["method"] == "PUT"]
    assert "summarizeErrors" not in put["url"]  # BankTransfers take no summarizeErrors
    assert len(sandbox.bank_transfers(tenant)) == 1


def test_a_retried_transfer_does_not_take_last_months_with_the_same_reference_for_its_own(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    import dataclasses
    import time

    from clientary_xero.connectors.base import registry

    monthly = {
        "FromBankAccount": {"Code": "090"},
        "ToBankAccount": {"Code": "091"},
        "Amount": 50,
        "Reference": "Savings",
    }
    last_month = run(xero, "xero.create_bank_transfer", monthly)
    # This month's run began after last month's transfer was made (Xero dates transfers by
    # CreatedDateUTC, their only timestamp); its first PUT was lost, so the step is on attempt 2.
    spec = registry()["xero.create_bank_transfer"]
    context = dataclasses.replace(
        make_context(xero, run_id="run-december", attempt=2), not_before=time.time() + 3600
    )
    again = spec.run(context, spec.input_model.model_validate(monthly))
    assert again["created"] is True and again["BankTransferID"] != last_month["BankTransferID"]
    assert len(sandbox.bank_transfers(tenant)) == 2
    # …while a retry within the same run does find the transfer its earlier try made
    context = dataclasses.replace(make_context(xero, run_id="run-december", attempt=3), not_before=1.0)
    assert spec.run(context, spec.input_model.model_validate(monthly))["created"] is False
    assert len(sandbox.bank_transfers(tenant)) == 2


def test_bank_transfer_errors_before_and_from_xero(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    assert refused(
        "xero.create_bank_transfer",
        {"FromBankAccount": {"Code": "090"}, "ToBankAccount": {"Code": "090"}, "Amount": 5},
    ) == ["Value error, FromBankAccount and ToBankAccount must be different accounts"]
    assert refused(
        "xero.create_bank_transfer",
        {"FromBankAccount": {"Code": "090"}, "ToBankAccount": {"Code": "091"}, "Amount": -5},
    ) == ["Input should be greater than 0"]
    with pytest.raises(PermanentError) as caught:
        run(
            xero,
            "xero.create_bank_transfer",
            {"FromBankAccount": {"Code": "090"}, "ToBankAccount": {"Code": "200"}, "Amount": 5},
        )
    assert caught.value.status == 400 and caught.value.messages == ["ToBankAccount must be a bank account."]
    assert sandbox.bank_transfers(tenant) == []


# ----------------------------------------------------------------- projects
def test_a_project_is_created_through_the_projects_api(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
    recorder: Recorded,
) -> None:
    out = run(
        xero,
        "xero.create_project",
        {
            "ContactID": acme["ContactID"],
            "Name": "New Kitchen",
            "DeadlineUtc": "2026-12-10",
            "EstimateAmount": 99.99,
        },
    )
    assert {
        k: out[k]
        for k in ("ContactID", "Name", "Status", "Estimate", "DeadlineUtc", "CurrencyCode", "created")
    } == {
        "ContactID": acme["ContactID"],
        "Name": "New Kitchen",
        "Status": "INPROGRESS",
        "Estimate": 99.99,
        "DeadlineUtc": "2026-12-10T00:00:00Z",
        "CurrencyCode": "USD",
        "created": True,
    }
    (post,) = [r for r in recorder.records() if r["method"] == "POST" and "projects.xro" in r["url"]]
    assert post["json"] == {
        "contactId": acme["ContactID"],
        "name": "New Kitchen",
        "deadlineUtc": "2026-12-10T00:00:00Z",
        "estimateAmount": 99.99,
    }  # one unwrapped object, camelCase
    assert [p["projectId"] for p in sandbox.projects(tenant)] == [out["ProjectID"]]


def test_project_errors_carry_the_projects_api_messages(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
) -> None:
    with pytest.raises(PermanentError) as caught:
        run(xero, "xero.create_project", {"ContactID": GUID, "Name": "Ghost"})
    assert caught.value.messages == ["The request is invalid.", "contactId: The contact could not be found."]
    assert refused("xero.create_project", {"Name": "No contact"}) == ["Field required"]
    assert refused("xero.create_project", {"ContactID": GUID, "Name": "x", "EstimateAmount": -1}) == [
        "Input should be greater than or equal to 0"
    ]
    assert sandbox.projects(tenant) == []


# ------------------------------------------------------------------ reports
def test_balance_sheet_and_profit_and_loss_give_rows_and_flat_totals(
    xero: XeroClient,
    acme: dict[str, Any],
    recorder: Recorded,
) -> None:
    invoice = authorised_invoice(xero, acme["ContactID"], amount=300)
    run(
        xero,
        "xero.create_payment",
        {
            "Invoice": {"InvoiceID": invoice["InvoiceID"]},
            "Account": {"Code": "090"},
            "Amount": 120,
            "Date": "2026-01-15",
        },
        step="pay",
    )
    run(
        xero,
        "xero.create_invoice",
        {
            "Type": "ACCPAY",
            "Contact": {"ContactID": acme["ContactID"]},
            "Status": "AUTHORISED",
            "Date": "2026-01-12",
            "LineItems": [{"Description": "Ads", "Quantity": 1, "UnitAmount": 80, "AccountCode": "400"}],
        },
        step="bill",
    )
    sheet = run(xero, "xero.get_balance_sheet", {"Date": "2026-01-31"}, step="bs")
    assert sheet["Columns"] == ["31 Jan 2026"]
    assert sheet["Totals"]["Total Assets"] == 300.0  # 120 in the bank + 180 receivable
    assert sheet["Totals"]["Total Liabilities"] == 80.0
    assert sheet["Totals"]["Net Assets"] == 220.0
    bank = next(line for line in sheet["Lines"] if line["account"] == "Checking Account")
    assert (bank["section"], bank["values"], bank["value"]) == ("Bank", {"31 Jan 2026": 120.0}, 120.0)
    assert bank["account_id"] and sheet["Rows"][0]["RowType"] == "Header"

    pnl = run(xero, "xero.get_profit_and_loss", {"FromDate": "2026-01-01", "ToDate": "2026-01-31"}, step="pl")
    assert (
        pnl["Totals"]["Total Income"],
        pnl["Totals"]["Total Operating Expenses"],
        pnl["Totals"]["Net Profit"],
    ) == (
        300.0,
        80.0,
        220.0,
    )
    assert pnl["ReportName"] == "Profit and Loss"
    gets = [r["url"] for r in recorder.records() if "/Reports/" in r["url"]]
    assert gets[0].endswith("/Reports/BalanceSheet?date=2026-01-31")
    assert "fromDate=2026-01-01" in gets[1] and "toDate=2026-01-31" in gets[1]


def test_report_periods_add_comparison_columns(xero: XeroClient, acme: dict[str, Any]) -> None:
    authorised_invoice(xero, acme["ContactID"], amount=100)
    out = run(xero, "xero.get_balance_sheet", {"Date": "2026-02-28", "Periods": 1, "Timeframe": "MONTH"})
    assert out["Columns"] == ["28 Feb 2026", "31 Jan 2026"]
    receivable = next(line for line in out["Lines"] if line["account"] == "Accounts Receivable")
    assert receivable["values"] == {"28 Feb 2026": 100.0, "31 Jan 2026": 100.0}
    assert refused("xero.get_profit_and_loss", {"FromDate": "2026-02-01", "ToDate": "2026-01-01"}) == [
        "Value error, FromDate is after ToDate"
    ]
    assert refused("xero.get_balance_sheet", {"Periods": 13}) == ["Input should be less than or equal to 12"]


# ------------------------------------------------------------- dates, models
def test_every_action_model_forbids_unknown_fields() -> None:
    for name, spec in registry().items():
        if not name.startswith("xero."):
            continue
        model: type[BaseModel] = spec.input_model
        with pytest.raises(ValidationError):
            model.model_validate({"NotAXeroField": 1})


def test_xero_dates_are_parsed_in_one_place_negative_values_included() -> None:
    from clientary_xero.connectors.xero.dates import parse_xero_date, to_xero_date

    assert parse_xero_date("/Date(1551399321043+0000)/") == "2019-03-01T00:15:21.043+00:00"
    assert parse_xero_date("/Date(-86400000+0000)/", date_only=True) == "1969-12-31"
    assert parse_xero_date("/Date(-2208988800000)/") == "1900-01-01T00:00:00+00:00"
    assert parse_xero_date("/Date(1769817600000+1300)/", date_only=True) == "2026-01-31"
    assert parse_xero_date("2026-01-31T00:00:00", date_only=True) == "2026-01-31"
    assert to_xero_date(datetime(1969, 12, 31, tzinfo=UTC)) == "/Date(-86400000+0000)/"
    with pytest.raises(ValueError):
        parse_xero_date("31/01/2026")
    with pytest.raises(ValueError, match="out of range"):  # before year 1: not an OverflowError
        parse_xero_date("/Date(-62135596800000-0500)/")


def test_a_reports_date_is_iso_with_its_text_kept() -> None:
    from clientary_xero.connectors.xero.dates import parse_report_date

    assert parse_report_date("30 November 2026") == "2026-11-30"
    assert parse_report_date("1 March 2024") == "2024-03-01"
    assert parse_report_date("") is None and parse_report_date("Q3 2026") is None


def test_report_values_are_flattened_to_numbers() -> None:
    from clientary_xero.connectors.xero.reports import flatten_report, report_number

    assert [report_number(v) for v in ("1,234.50", "(12.00)", "", "n/a", 3)] == [
        1234.5,
        -12.0,
        None,
        None,
        3.0,
    ]
    flat = flatten_report(
        {
            "Rows": [
                {
                    "RowType": "Header",
                    "Cells": [{"Value": ""}, {"Value": "31 Jan 2026"}, {"Value": "31 Dec 2025"}],
                },
                {
                    "RowType": "Section",
                    "Title": "Bank",
                    "Rows": [
                        {
                            "RowType": "Row",
                            "Cells": [
                                {"Value": "Checking", "Attributes": [{"Id": "account", "Value": GUID}]},
                                {"Value": "10.00", "Attributes": [{"Id": "account", "Value": GUID}]},
                                {"Value": ""},
                            ],
                        },
                        {
                            "RowType": "SummaryRow",
                            "Cells": [{"Value": "Total Bank"}, {"Value": "10.00"}, {"Value": "0"}],
                        },
                    ],
                },
            ]
        }
    )
    assert flat["Columns"] == ["31 Jan 2026", "31 Dec 2025"]
    assert flat["Lines"][0] == {
        "section": "Bank",
        "account": "Checking",
        "account_id": GUID,
        "row_type": "Row",
        "values": {"31 Jan 2026": 10.0, "31 Dec 2025": None},
        "value": 10.0,
    }
    assert flat["Totals"] == {"Total Bank": 10.0}


@pytest.mark.parametrize(
    ("name", "fields", "records"),
    [
        (
            "xero.create_quote",
            {
                "QuoteNumber": "QU-77",
                "Date": "2026-02-01",
                "LineItems": [{"Description": "x", "UnitAmount": 5, "AccountCode": "200"}],
            },
            "quotes",
        ),
        (
            "xero.create_purchase_order",
            {
                "PurchaseOrderNumber": "PO-77",
                "Date": "2026-01-01",
                "LineItems": [{"Description": "x", "UnitAmount": 5}],
            },
            "purchase_orders",
        ),
        (
            "xero.create_bank_transfer",
            {
                "FromBankAccount": {"Code": "090"},
                "ToBankAccount": {"Code": "091"},
                "Amount": 5,
                "Reference": "R-77",
            },
            "bank_transfers",
        ),
        ("xero.create_project", {"Name": "Deck"}, "projects"),
        ("xero.add_stock_items", {"Items": [{"Code": "I-77"}], "Mode": "create"}, "items"),
    ],
)
def test_a_step_retried_after_xero_forgot_its_key_creates_nothing_twice(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    acme: dict[str, Any],
    clock: FakeClock,
    recorder: Recorded,
    name: str,
    fields: dict[str, Any],
    records: str,
) -> None:
    if name in ("xero.create_quote", "xero.create_purchase_order"):
        fields = fields | {"Contact": {"ContactID": acme["ContactID"]}}
    if name == "xero.create_project":
        fields = fields | {"ContactID": acme["ContactID"]}
    first = run(xero, name, fields)
    clock.advance(7 * 60)  # past Xero's 6-minute idempotency window: the key is new again
    again = run(xero, name, fields, attempt=2)
    assert len(getattr(sandbox, records)(tenant)) == 1
    if name == "xero.add_stock_items":
        assert (again["created"], again["ItemIDs"]) == (0, first["ItemIDs"])
    else:
        assert again["created"] is False
        assert {k: v for k, v in again.items() if k != "created"} == {
            k: v for k, v in first.items() if k != "created"
        }
