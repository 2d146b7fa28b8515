"""The Xero actions against the sandbox: effects in Xero, links, retries that create nothing twice."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from clientary_xero.connectors.base import registry
from clientary_xero.connectors.xero.actions import (
    ContactInput,
    InvoiceInput,
    create_invoice,
    create_or_update_contact,
)
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.errors import PermanentError
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.storage.state import StateStore
from tests.conftest_xero import (  # noqa: F401
    AwsEnv,
    FakeClock,
    Recorded,
    aws,
    clock,
    connection,
    leaked,
    make_context,
    make_provider,
    recorder,
    sandbox,
    xero,
)
from tests.xero_contract import validate_requests


def _contact(client: XeroClient, run: str = "run-1", attempt: int = 1, **fields: Any) -> dict[str, Any]:
    return create_or_update_contact(make_context(client, run_id=run, attempt=attempt), ContactInput(**fields))


def _invoice(client: XeroClient, run: str = "run-1", attempt: int = 1, **fields: Any) -> dict[str, Any]:
    return create_invoice(
        make_context(client, run_id=run, step_id="invoice", attempt=attempt), InvoiceInput(**fields)
    )


def _api(recorder: Recorded) -> list[dict[str, Any]]:  # noqa: F811
    return [r for r in recorder.records() if r["url"].startswith("https://api.xero.com")]


def test_both_actions_are_registered_for_the_xero_queue() -> None:
    actions = registry()
    assert actions["xero.create_or_update_contact"].app == "xero"
    assert actions["xero.create_invoice"].input_model is InvoiceInput


# ------------------------------------------------------------------ contacts
def test_a_new_client_becomes_one_contact_and_later_runs_update_it(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    recorder: Recorded,  # noqa: F811
) -> None:
    first = _contact(xero, Name="Acme Ltd", ContactNumber="CL-7", EmailAddress="ap@acme.test")
    assert first["created"] is True
    assert first == {
        "ContactID": first["ContactID"],
        "Name": "Acme Ltd",
        "ContactNumber": "CL-7",
        "EmailAddress": "ap@acme.test",
        "ContactStatus": "ACTIVE",
        "created": True,
        "unchanged": False,
        "matched_by": None,
        "archived": False,
        "note": None,
    }
    link = StateStore().get_link("xero.contact", "CL-7")
    assert link is not None
    assert (link["ContactID"], link["tenant"]) == (first["ContactID"], connection["tenant_id"])

    second = _contact(
        xero, run="run-2", Name="Acme Limited", ContactNumber="CL-7", EmailAddress="billing@acme.test"
    )
    assert (second["ContactID"], second["created"], second["Name"]) == (
        first["ContactID"],
        False,
        "Acme Limited",
    )
    contacts = sandbox.contacts(connection["tenant_id"])
    assert [(c["Name"], c["EmailAddress"]) for c in contacts] == [("Acme Limited", "billing@acme.test")]

    calls = [(r["method"], r["url"].split("?")[0].rsplit("/", 1)[-1]) for r in _api(recorder)]
    assert calls == [
        ("GET", "Contacts"),
        ("POST", "Contacts"),
        ("POST", "Contacts"),
    ]  # the link spared a search
    assert all(r["headers"].get("Idempotency-Key") for r in _api(recorder) if r["method"] == "POST")
    assert _api(recorder)[-1]["json"]["Contacts"][0]["ContactID"] == first["ContactID"]
    assert validate_requests(recorder.records()) == []


def test_a_link_made_for_another_organisation_is_not_used(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    recorder: Recorded,  # noqa: F811
) -> None:
    # Before a reconnection, CL-9 was linked to a contact of the previous organisation.
    StateStore().put_link(
        "xero.contact",
        "CL-9",
        {"ContactID": "0f0f0f0f-0000-4000-8000-000000000009", "tenant": "previous-organisation"},
    )
    made = _contact(xero, Name="Nine Ltd", ContactNumber="CL-9")
    assert made["created"] is True
    assert [c["Name"] for c in sandbox.contacts(connection["tenant_id"])] == ["Nine Ltd"]
    link = StateStore().get_link("xero.contact", "CL-9")
    assert link is not None
    assert (link["ContactID"], link["tenant"]) == (made["ContactID"], connection["tenant_id"])


def test_a_contact_made_earlier_is_found_by_contact_number(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
) -> None:
    existing = sandbox.seed_contact(connection["tenant_id"], Name="Beta Inc", ContactNumber="CL-8")
    out = _contact(xero, Name="Beta Inc", ContactNumber="CL-8", FirstName="Bea")
    assert (out["ContactID"], out["created"]) == (existing["ContactID"], False)
    assert StateStore().get_link("xero.contact", "CL-8")["ContactID"] == existing["ContactID"]  # type: ignore[index]
    assert len(sandbox.contacts(connection["tenant_id"])) == 1


def test_a_retry_after_a_crash_before_the_link_updates_instead_of_duplicating(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    recorder: Recorded,  # noqa: F811
) -> None:
    class CrashingHold:
        link = None
        unchanged = False

        def write(self, target: dict[str, Any], *, version: str | None = None) -> None:
            raise RuntimeError("Lambda timed out")

    class CrashingLinks:
        def get_link(self, kind: str, source_id: str) -> None:
            return None

        def put_link(self, kind: str, source_id: str, target: dict[str, Any]) -> None:
            raise RuntimeError("Lambda timed out")

        def lock_link(
            self, kind: str, source_id: str, *, unless: str | None = None
        ) -> contextlib.nullcontext[CrashingHold]:
            return contextlib.nullcontext(CrashingHold())

    fields = ContactInput(Name="Gamma LLC", ContactNumber="CL-9")
    with pytest.raises(RuntimeError):
        create_or_update_contact(make_context(xero, links=CrashingLinks()), fields)
    out = create_or_update_contact(make_context(xero, attempt=2), fields)  # same step, same key
    assert out["created"] is False
    assert len(sandbox.contacts(connection["tenant_id"])) == 1
    keys = [r["headers"]["Idempotency-Key"] for r in _api(recorder) if r["method"] == "POST"]
    assert keys == ["run-1:step:0:create", "run-1:step:0:update"]  # never one key for two bodies


def test_a_same_named_contact_without_a_number_is_adopted(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    recorder: Recorded,  # noqa: F811
) -> None:
    manual = sandbox.seed_contact(connection["tenant_id"], Name="Delta Co")
    out = _contact(xero, Name="Delta Co", ContactNumber="CL-10")
    assert (out["ContactID"], out["created"], out["ContactNumber"]) == (manual["ContactID"], False, "CL-10")
    assert len(sandbox.contacts(connection["tenant_id"])) == 1
    assert validate_requests(recorder.records()) == []


def test_a_name_held_by_another_client_is_a_permanent_error_with_xeros_message(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
) -> None:
    sandbox.seed_contact(connection["tenant_id"], Name="Epsilon", ContactNumber="CL-1")
    with pytest.raises(PermanentError) as caught:
        _contact(xero, Name="Epsilon", ContactNumber="CL-2")
    assert caught.value.messages == [
        "The contact name Epsilon is already assigned to another contact. "
        "The contact name must be unique across all active contacts."
    ]
    with pytest.raises(PermanentError) as email:
        _contact(xero, run="run-2", Name="Zeta", EmailAddress="not-an-email")
    assert email.value.messages == ["Email address must be valid."]
    assert StateStore().get_link("xero.contact", "CL-2") is None
    assert len(sandbox.contacts(connection["tenant_id"])) == 1
    assert leaked(str(caught.value) + str(email.value), sandbox) == []


def test_contact_input_is_checked_before_anything_is_sent() -> None:
    with pytest.raises(ValidationError):
        ContactInput(Name="")
    with pytest.raises(ValidationError):
        ContactInput(Name="A", ContactNumber="x" * 51)
    with pytest.raises(ValidationError):
        ContactInput(Name="A", Email="typo@field.test")  # Xero would have dropped it silently
    assert ContactInput(Name=" Acme ", ContactNumber=42).model_dump(exclude_none=True) == {
        "Name": "Acme",
        "ContactNumber": "42",
        "MatchBy": ["link", "ContactNumber", "EmailAddress", "Name"],
    }


# ------------------------------------------------------------------ invoices
INVOICE = {
    "Type": "ACCREC",
    "LineItems": [
        {"Description": "Design", "Quantity": 3, "UnitAmount": 33.3333, "AccountCode": "200"},
        {"Description": "Hosting", "Quantity": 1, "UnitAmount": 20, "DiscountRate": 10},
    ],
    "Date": "2026-01-31T09:30:00Z",
    "DueDate": "2026-02-28",
    "Reference": "Clientary #42",
}


@pytest.fixture
def contact_id(connection: dict[str, Any], sandbox: XeroSandbox) -> str:  # noqa: F811
    return sandbox.seed_contact(connection["tenant_id"], Name="Acme Ltd", ContactNumber="CL-7")["ContactID"]


def test_create_invoice_makes_one_invoice_and_returns_flat_numbers(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    recorder: Recorded,  # noqa: F811
    contact_id: str,
) -> None:
    out = _invoice(xero, Contact={"ContactID": contact_id}, **INVOICE)
    assert out == {
        "InvoiceID": out["InvoiceID"],
        "InvoiceNumber": "INV-0001",
        "Type": "ACCREC",
        "Status": "DRAFT",
        "ContactID": contact_id,
        "Date": "2026-01-31",
        "DueDate": "2026-02-28",
        "SubTotal": 118.0,
        "TotalTax": 0.0,
        "Total": 118.0,
        "AmountDue": 118.0,
        "CurrencyCode": "USD",
        "Reference": "Clientary #42",
        "created": True,
    }
    invoices = sandbox.invoices(connection["tenant_id"])
    assert [i["InvoiceID"] for i in invoices] == [out["InvoiceID"]]
    (put,) = [r for r in _api(recorder) if r["method"] == "PUT"]
    assert "summarizeErrors=false" in put["url"] and "unitdp=4" in put["url"]
    assert put["headers"]["Idempotency-Key"] == "run-1:invoice:0"
    assert put["json"]["Invoices"][0]["Contact"] == {"ContactID": contact_id}
    assert put["json"]["Invoices"][0]["Date"] == "2026-01-31"
    assert validate_requests(recorder.records()) == []


def test_a_redelivered_step_gets_the_same_invoice_not_a_second_one(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    contact_id: str,
) -> None:
    first = _invoice(xero, Contact={"ContactID": contact_id}, LineItems=INVOICE["LineItems"])
    clock.advance(60)
    again = _invoice(xero, attempt=2, Contact={"ContactID": contact_id}, LineItems=INVOICE["LineItems"])
    assert again["InvoiceID"] == first["InvoiceID"]
    assert len(sandbox.invoices(connection["tenant_id"])) == 1


def test_a_retry_after_the_idempotency_window_finds_the_invoice_by_number(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    recorder: Recorded,  # noqa: F811
    contact_id: str,
) -> None:
    fields = {"Contact": {"ContactNumber": "CL-7"}, "InvoiceNumber": "CL-INV-42", **INVOICE}
    first = _invoice(xero, **fields)
    clock.advance(7 * 60)  # Xero forgot the key
    again = _invoice(xero, attempt=2, **fields)
    assert (again["InvoiceID"], again["created"]) == (first["InvoiceID"], False)
    assert len(sandbox.invoices(connection["tenant_id"])) == 1
    # Without the lookup a second PUT would be refused (ACCREC numbers are unique).
    with pytest.raises(PermanentError) as caught:
        _invoice(xero, run="run-9", **fields)
    assert caught.value.messages == ["Invoice # must be unique."]
    assert validate_requests(recorder.records()) == []


def test_a_retried_bill_is_found_by_its_supplier_invoice_number(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    recorder: Recorded,  # noqa: F811
    contact_id: str,
) -> None:
    bill = {
        "Type": "ACCPAY",
        "Contact": {"ContactID": contact_id},
        "InvoiceNumber": "SUP-77",  # bills are not unique by number: the lookup adds the contact
        "LineItems": [{"Description": "Parts", "Quantity": 2, "UnitAmount": 12.5}],
    }
    first = _invoice(xero, **bill)
    clock.advance(7 * 60)
    again = _invoice(xero, attempt=2, **bill)
    assert (again["InvoiceID"], again["created"], again["Total"]) == (first["InvoiceID"], False, 25.0)
    assert len(sandbox.invoices(connection["tenant_id"])) == 1
    assert validate_requests(recorder.records()) == []


def test_a_bill_with_a_reference_is_refused_before_any_call() -> None:
    from pydantic import ValidationError

    from clientary_xero.connectors.base import registry

    model = registry()["xero.create_invoice"].input_model
    line = {"Description": "Parts", "Quantity": 1, "UnitAmount": 5}
    bill = {"Type": "ACCPAY", "Contact": {"ContactID": str(uuid.uuid4())}, "LineItems": [line]}
    with pytest.raises(ValidationError, match="put the supplier's reference in InvoiceNumber"):
        model.model_validate({**bill, "Reference": "PO-77"})
    assert model.model_validate({**bill, "Type": "ACCREC", "Reference": "PO-77"}).Reference == "PO-77"


def test_invoice_validation_errors_carry_xeros_messages(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
) -> None:
    with pytest.raises(PermanentError) as caught:
        _invoice(xero, Contact={"ContactNumber": "CL-404"}, LineItems=[{"Description": "x"}])
    assert caught.value.messages == ["The Contact with ContactNumber CL-404 could not be found."]
    assert sandbox.invoices(connection["tenant_id"]) == []


def test_invoice_input_is_checked_before_anything_is_sent() -> None:
    base = {
        "Contact": {"ContactID": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"},
        "LineItems": [{"Description": "x"}],
    }
    InvoiceInput(**base)
    for bad in (
        {"Contact": {}},
        {"LineItems": []},
        {"Type": "ACCRECCREDIT"},
        {"Status": "PAID"},
        {"Date": "31/01/2026"},
        {"LineItems": [{"Description": "x", "Amount": 3}]},
        {"Contact": {"ContactID": "6f9619ff-8b86-d011-b42d-00cf4fc964ff", "Name": "Acme"}},
    ):
        with pytest.raises(ValidationError):
            InvoiceInput(**(base | bad))
    both = InvoiceInput(
        **(base | {"Contact": {"ContactID": base["Contact"]["ContactID"], "ContactNumber": "CL-1"}})
    )
    assert both.body()["Contact"] == {"ContactID": base["Contact"]["ContactID"]}
    assert InvoiceInput(**(base | {"Date": "/Date(1769817600000+0000)/"})).body()["Date"] == "2026-01-31"
