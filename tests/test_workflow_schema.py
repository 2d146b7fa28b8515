"""The workflow schema gives each step's ``input`` its action's input schema (issue 11, point 3):
what an editor completes and flags is what validation accepts and refuses, expressions included."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from clientary_xero.connectors.base import registry
from clientary_xero.workflows.loader import read_document
from clientary_xero.workflows.schema import schema_text

ROOT = Path(__file__).resolve().parents[1]
GUID = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def workflow(action: str, given: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "w",
        "trigger": "clientary.new_invoice",
        "steps": [{"id": "s", "action": action, "input": given}],
    }


def problems(validator: Any, document: dict[str, Any]) -> list[str]:
    return [error.message for error in validator.iter_errors(document)]


INVOICE = {
    "Contact": {"ContactID": GUID},
    "LineItems": [{"Description": "Work", "Quantity": 2, "UnitAmount": 50}],
}


def test_every_example_and_sample_fits_the_schema(validator: Any) -> None:
    files = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("shared/clientary_xero/local/samples/*.yaml")])
    assert files
    for path in files:
        assert problems(validator, read_document(path)) == [], path.name


def test_every_action_has_its_input_schema(validator: Any) -> None:
    step = validator.schema["$defs"]["Step"]
    conditioned = {rule["if"]["properties"]["action"]["const"] for rule in step["allOf"]}
    assert conditioned == set(registry())


@pytest.mark.parametrize(
    "change",
    [
        lambda i: i.update(Referense="x"),  # not a field
        lambda i: i.update(Type="accrec"),  # not one of Xero's
        lambda i: i.update(Total=100),  # read-only in Xero
        lambda i: i.pop("Contact"),  # required
        lambda i: i["LineItems"][0].update(Quantiy=1),  # nested, not a field
        lambda i: i["LineItems"][0].update(DiscountRate=120),  # over Xero's limit
        lambda i: i.update(InvoiceNumber="x" * 256),  # over maxLength
        lambda i: i.update(LineItems=[]),  # at least one line
    ],
)
def test_what_validation_refuses_the_editor_flags(validator: Any, change: Any) -> None:
    given = copy.deepcopy(INVOICE)
    change(given)
    with pytest.raises(ValidationError):  # the model refuses it too
        registry()["xero.create_invoice"].input_model.model_validate(given)
    assert problems(validator, workflow("xero.create_invoice", given)) != []


def test_an_expression_stands_for_any_value(validator: Any) -> None:
    given = {
        "Contact": "{% steps.contact %}",
        "LineItems": [
            {"Description": "{% line.title %}", "Quantity": "{% line.quantity %}", "UnitAmount": 10},
            "{% $extra %}",
        ],
        "Type": "{% invoice.kind %}",
        "Date": "{% invoice.date %}",
        "Status": "{% 'AUTHORISED' %}",
    }
    assert problems(validator, workflow("xero.create_invoice", given)) == []
    given["LineItems"] = "{% invoice.lines.{'Description': title} %}"
    assert problems(validator, workflow("xero.create_invoice", given)) == []


def test_a_string_that_is_not_an_expression_is_not_a_number(validator: Any) -> None:
    given = copy.deepcopy(INVOICE)
    given["LineItems"][0]["Quantity"] = "two"
    assert problems(validator, workflow("xero.create_invoice", given)) != []


def test_an_input_is_checked_against_its_own_action_only(validator: Any) -> None:
    # The contact's Name belongs to create_or_update_contact, not to find_invoice.
    assert problems(validator, workflow("xero.create_or_update_contact", {"Name": "A"})) == []
    assert problems(validator, workflow("xero.find_invoice", {"Name": "A"})) != []
    assert problems(validator, workflow("clientary.create_client", {"Name": "A"})) != []
