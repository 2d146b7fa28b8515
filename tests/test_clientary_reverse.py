"""Reverse workflows, end to end on the sandboxes: Xero → Clientary.

* a contact created in Xero (webhook) becomes one Clientary client with a contact person;
* a payment entered in Xero on an invoice that came from Clientary (polled) becomes one payment on
  that Clientary invoice — the full round trip Clientary invoice → Xero invoice → Xero payment →
  Clientary payment.

The example workflows in examples/ are the ones under test.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.workflows.loader import read_document
from clientary_xero.workflows.triggers import get_trigger

ROOT = Path(__file__).resolve().parents[1]
CONTACT_WORKFLOW = ROOT / "examples" / "clientary-from-xero-contact.yaml"
PAYMENT_WORKFLOW = ROOT / "examples" / "clientary-from-xero-payment.yaml"


def _needs(trigger: str) -> None:
    if get_trigger(trigger) is None:
        pytest.skip(f"{trigger} is not registered yet (the Xero triggers of issue #3)")


def _contact(**fields: Any) -> dict[str, Any]:
    return {
        "ContactID": str(uuid.uuid4()),
        "Name": "Kea Cafe",
        "EmailAddress": "accounts@kea.example",
        "FirstName": "Ana",
        "LastName": "Ruiz",
        "ContactStatus": "ACTIVE",
        "Addresses": [{"AddressType": "POBOX", "City": "Wellington", "Country": "NZ"}],
        **fields,
    }


def test_a_xero_contact_becomes_one_clientary_client(local_env: Any) -> None:
    _needs("xero.contact_created")
    env = local_env
    env.put_workflow(read_document(CONTACT_WORKFLOW))
    contact = env.load_xero_record("Contacts", _contact())

    assert env.xero_event("CONTACT", "CREATE", contact["ContactID"])["statusCode"] == 200
    env.drain()
    # Xero delivers webhooks at least once: the same event again changes nothing.
    assert env.xero_event("CONTACT", "CREATE", contact["ContactID"])["statusCode"] == 200
    env.drain()

    (client,) = env.clientary.all_records("clients")
    assert client["name"] == "Kea Cafe" and client["city"] == "Wellington" and client["country"] == "NZ"
    assert client["description"].startswith(f"Xero contact {contact['ContactID']}\n[cx:")
    (person,) = env.clientary.all_records("contacts")
    assert person == {
        **person,
        "name": "Ana Ruiz",
        "email": "accounts@kea.example",
        "client_id": client["id"],
    }
    (run,) = env.state.list_runs()
    assert run["status"] == "SUCCEEDED"


def test_a_contact_that_came_from_clientary_is_not_sent_back(local_env: Any) -> None:
    _needs("xero.contact_created")
    env = local_env
    env.put_workflow(read_document(CONTACT_WORKFLOW))
    contact = env.load_xero_record("Contacts", _contact(ContactNumber="CL-2120001", EmailAddress=None))
    env.xero_event("CONTACT", "CREATE", contact["ContactID"])
    env.drain()
    assert env.clientary.all_records("clients") == []
    (run,) = env.state.list_runs()
    assert run["status"] == "FILTERED"


CONTACT_NUMBER = "{% 'CL-' & $string(invoice.client_id) %}"
LINES = "{% [invoice.invoice_items.{'Description': title, 'Quantity': quantity, 'UnitAmount': price, 'AccountCode': '200'}] %}"  # noqa: E501
FORWARD = {
    "id": "invoice-to-xero",
    "trigger": "clientary.new_invoice",
    "steps": [
        {
            "id": "contact",
            "action": "xero.create_or_update_contact",
            "input": {"Name": "{% invoice.client.name %}", "ContactNumber": CONTACT_NUMBER},
        },
        {
            "id": "invoice",
            "action": "xero.create_invoice",
            "input": {
                "Type": "ACCREC",
                "Contact": {"ContactID": "{% steps.contact.ContactID %}"},
                "InvoiceNumber": "{% 'CL-' & invoice.number %}",
                "Status": "AUTHORISED",
                "LineItems": LINES,
            },
        },
    ],
}


def _pay_in_xero(env: Any, invoice_id: str, amount: float) -> dict[str, Any]:
    from clientary_xero.connectors.xero.client import build_xero_client

    client = build_xero_client()
    body = {
        "Payments": [
            {
                "Invoice": {"InvoiceID": invoice_id},
                "Account": {"Code": "090"},
                "Amount": amount,
                "Date": datetime.now(UTC).date().isoformat(),
                "Reference": "EFT 42",
            }
        ]
    }
    answer = client.request("PUT", "/Payments", json=body, idempotency_key=str(uuid.uuid4()))
    payment: dict[str, Any] = answer["Payments"][0]
    return payment


def test_a_xero_payment_is_recorded_on_the_clientary_invoice(local_env: Any) -> None:
    _needs("xero.new_payment")
    env = local_env
    env.put_workflow(FORWARD)
    env.put_workflow(read_document(PAYMENT_WORKFLOW))
    env.poll("clientary.new_invoice")  # first polls: record where to start
    env.poll_xero_payments()

    # Clientary invoice → Xero invoice (the forward direction)
    customer = env.clientary.seed_client("Kea Cafe")
    invoice = env.clientary.add_invoice(
        customer["id"], [{"title": "Catering", "quantity": 1, "price": 500}], status=1
    )
    env.poll("clientary.new_invoice")
    env.drain()
    (xero_invoice,) = env.xero.invoices(env.xero_tenant_id())
    assert (
        xero_invoice["InvoiceNumber"] == f"CL-{invoice['number']}" and xero_invoice["Status"] == "AUTHORISED"
    )

    # A payment entered in Xero → the Clientary invoice (the reverse direction)
    paid = _pay_in_xero(env, xero_invoice["InvoiceID"], 200)
    summary = env.poll_xero_payments()
    assert summary["new_records"] == 1
    env.drain()
    env.poll_xero_payments()  # a later poll does not deliver it again
    env.drain()

    (payment,) = env.clientary.all_records("payments")
    assert payment["invoice_id"] == invoice["id"] and payment["amount"] == 200.0
    assert payment["note"].startswith(f"Xero payment {paid['PaymentID']} (EFT 42)\n[cx:")
    assert payment["received_on"] == datetime.now(UTC).date().isoformat()
    assert env.clientary.get_record("invoices", invoice["id"])["balance"] == 300.0
    runs = {r["workflow_id"]: r for r in env.state.list_runs()}
    assert runs["xero-payment-to-clientary"]["status"] == "SUCCEEDED"
    steps = env.state.get_steps(runs["xero-payment-to-clientary"]["run_id"])
    assert json.dumps(steps[0]["input"]).count("invoice_number") == 1
