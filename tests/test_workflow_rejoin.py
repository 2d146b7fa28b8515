"""Issue 11, point 5: branches that rejoin — the same step id once in each branch of one ``if``,
so the step after the branch reads ``steps.<id>`` whichever branch ran."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from clientary_xero.errors import WorkflowInvalid
from clientary_xero.local.environment import LocalEnvironment
from clientary_xero.workflows.validate import parse_workflow
from tests.test_xero_batching import TRIGGER, clients, invoice, outputs, poll, statuses

REJOIN: dict[str, Any] = {
    "id": "rejoin",
    "trigger": TRIGGER,
    "steps": [
        {
            "if": "{% invoice.total > 100 %}",
            "then": [
                {
                    "id": "contact",
                    "action": "xero.create_or_update_contact",
                    "input": {
                        "Name": "{% invoice.client.name & ' (key account)' %}",
                        "ContactNumber": "{% 'KEY-' & $string(invoice.client_id) %}",
                    },
                }
            ],
            "else": [
                {
                    "id": "contact",
                    "action": "xero.create_or_update_contact",
                    "input": {
                        "Name": "{% invoice.client.name %}",
                        "ContactNumber": "{% 'CL-' & $string(invoice.client_id) %}",
                    },
                }
            ],
        },
        {
            "id": "invoice",
            "action": "xero.create_invoice",
            "input": {
                "Type": "ACCREC",
                "Contact": {"ContactID": "{% steps.contact.ContactID %}"},
                "InvoiceNumber": "{% 'CL-' & invoice.number %}",
                "LineItems": "{% [invoice.invoice_items.{'Description': title, 'Quantity': quantity, "
                "'UnitAmount': price, 'AccountCode': '200'}] %}",
            },
        },
    ],
}


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflow(doc)
    return info.value.problems


def test_one_id_in_each_branch_of_one_if_is_valid_and_readable_after_it() -> None:
    workflow = parse_workflow(copy.deepcopy(REJOIN))  # steps.contact after the branch: no problem
    assert workflow.id == "rejoin"


def test_an_id_that_could_run_twice_is_still_refused() -> None:
    doc = copy.deepcopy(REJOIN)
    doc["steps"][1]["id"] = "contact"  # after the branch: runs after either branch's contact
    assert problems(doc) == [
        "steps[1] (step 'contact'): duplicate id 'contact' (first used at steps[0] (branch 'if_1').then[0])"
    ]
    doc = copy.deepcopy(REJOIN)
    doc["steps"][0]["then"].append(copy.deepcopy(doc["steps"][0]["then"][0]))  # twice in one branch
    assert problems(doc) == [
        "steps[0] (branch 'if_1').then[1] (step 'contact'): duplicate id 'contact' "
        "(first used at steps[0] (branch 'if_1').then[0])"
    ]
    doc = copy.deepcopy(REJOIN)
    doc["steps"].insert(0, copy.deepcopy(doc["steps"][0]["then"][0]))  # before the branch
    found = problems(doc)
    assert len(found) == 2 and all("duplicate id 'contact' (first used at steps[0])" in p for p in found)


def test_a_nested_if_may_reuse_the_id_in_its_own_branches_only() -> None:
    doc = copy.deepcopy(REJOIN)
    inner_then = copy.deepcopy(doc["steps"][0]["else"][0])
    doc["steps"][0]["else"] = [{"if": "{% invoice.total > 10 %}", "then": [inner_then], "else": [inner_then]}]
    parse_workflow(copy.deepcopy(doc))  # three `contact`s, at most one of them on any path
    doc["steps"][0]["else"].append(copy.deepcopy(inner_then))  # after the inner if, in the same branch
    assert len(problems(doc)) == 1


@pytest.fixture
def env() -> Iterator[LocalEnvironment]:
    with LocalEnvironment(max_attempts=2) as e:
        e.poll(TRIGGER)
        yield e


def test_the_step_after_the_branch_uses_whichever_contact_ran(env: LocalEnvironment) -> None:
    env.put_workflow(copy.deepcopy(REJOIN))
    small, big = clients(env, 2)
    invoice(env, small, price=40)
    invoice(env, big, price=400)
    runs = poll(env)
    env.drain()
    assert statuses(env, runs.values()) == ["SUCCEEDED", "SUCCEEDED"]
    tenant = env.xero_tenant_id()
    contacts = {c["ContactID"]: c for c in env.xero.contacts(tenant)}
    invoices = {i["InvoiceID"]: i for i in env.xero.invoices(tenant)}
    by_client: dict[str, dict[str, Any]] = {}
    for run_id in runs.values():
        out = outputs(env, run_id)
        invoice_contact = contacts[invoices[out["invoice"]["InvoiceID"]]["Contact"]["ContactID"]]
        # the invoice's contact is the one its own branch wrote (each branch its own input)
        assert invoice_contact["ContactID"] == out["contact"]["ContactID"]
        by_client[invoice_contact["ContactNumber"]] = invoice_contact
    assert by_client[f"KEY-{big['id']}"]["Name"] == f"{big['name']} (key account)"
    assert by_client[f"CL-{small['id']}"]["Name"] == small["name"]
