"""Error wording in one style (issue 11, point 3): an unknown key reads "not a field of … (did you
mean …?)" at any depth, in the static check and when a rendered input is validated alike; a
read-only Xero property says so; an unknown action or trigger gets the nearest name; a file that
is not valid YAML or JSON is named with the line and column of the problem."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from clientary_xero.connectors.base import registry
from clientary_xero.errors import WorkflowInvalid
from clientary_xero.workflows.loader import read_document
from clientary_xero.workflows.validate import parse_workflow, pydantic_problems

GUID = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
WORKFLOW: dict[str, Any] = {
    "id": "w",
    "trigger": "clientary.new_invoice",
    "steps": [
        {
            "id": "contact",
            "action": "xero.create_or_update_contact",
            "input": {"Name": "{% invoice.client.name %}", "ContactNumber": "CL-1"},
        },
        {
            "id": "invoice",
            "action": "xero.create_invoice",
            "input": {
                "Contact": {"ContactID": "{% steps.contact.ContactID %}"},
                "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 10}],
            },
        },
    ],
}


def problems_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        parse_workflow(document)
    return caught.value.problems


def test_a_nested_unknown_key_gets_the_top_level_wording_and_a_suggestion() -> None:
    doc = copy.deepcopy(WORKFLOW)
    doc["steps"][0]["input"]["Phones"] = [{"PhoneNumbr": "555"}]
    doc["steps"][0]["input"]["PaymentTerms"] = {"Sales": {"Dya": 20, "Type": "OFCURRENTMONTH"}}
    doc["steps"][1]["input"]["LineItems"][0]["Quantiy"] = 2
    problems = problems_of(doc)
    assert (
        "steps[0] (step 'contact').input.Phones[0].PhoneNumbr: "
        "not a field of Phones[0] (did you mean 'PhoneNumber'?)" in problems
    )
    assert (
        "steps[0] (step 'contact').input.PaymentTerms.Sales.Dya: "
        "not a field of PaymentTerms.Sales (did you mean 'Day'?)" in problems
    )
    assert (
        "steps[1] (step 'invoice').input.LineItems[0].Quantiy: "
        "not a field of LineItems[0] (did you mean 'Quantity'?)" in problems
    )
    assert not any("Extra inputs are not permitted" in p for p in problems)


def test_a_rendered_input_is_worded_as_the_static_check_words_it() -> None:
    model = registry()["xero.create_invoice"].input_model
    with pytest.raises(ValidationError) as caught:
        model.model_validate(
            {
                "Contact": {"ContactID": GUID, "ContactNumbr": "x"},
                "LineItems": [{"Description": "x", "Quantiy": 1}],
                "Refrence": "r",
            }
        )
    assert sorted(pydantic_problems(caught.value, "input", model)) == [
        "input.Contact.ContactNumbr: not a field of Contact (did you mean 'ContactNumber'?)",
        "input.LineItems[0].Quantiy: not a field of LineItems[0] (did you mean 'Quantity'?)",
        "input.Refrence: not a field of this action's input (did you mean 'Reference'?)",
    ]


def test_a_workflows_own_misspelt_keys_name_their_kind() -> None:
    doc = copy.deepcopy(WORKFLOW)
    doc["steps"][1]["actoin"] = doc["steps"][1]["action"]
    doc["steps"].append({"if": "{% true %}", "then": [], "els": []})
    doc["trigers"] = []
    problems = problems_of(doc)
    assert "steps[1].actoin: not a field of a step (did you mean 'action'?)" in problems
    assert "steps[2].els: not a field of a branch (did you mean 'else'?)" in problems
    assert "trigers: not a field of a workflow (did you mean 'trigger'?)" in problems


def test_a_read_only_property_is_refused_as_such_before_any_run() -> None:
    doc = copy.deepcopy(WORKFLOW)
    doc["steps"][0]["input"]["IsCustomer"] = True
    doc["steps"][1]["input"]["LineItems"][0]["Tracking"] = [{"Name": "Region", "Option": "N", "Id": 1}]
    problems = problems_of(doc)
    assert (
        "steps[0] (step 'contact').input.IsCustomer: "
        "read-only in Xero: Xero sets it, a request cannot (leave it out)" in problems
    )
    assert any(p.endswith("Tracking[0].Id: not a field of LineItems[0].Tracking[0]") for p in problems), (
        problems
    )


def test_an_unknown_action_and_trigger_get_the_nearest_name() -> None:
    doc = copy.deepcopy(WORKFLOW)
    doc["trigger"] = "clientary.new_invoise"
    doc["steps"][1]["action"] = "xero.create_invoce"
    assert problems_of(doc) == [
        "trigger: unknown trigger 'clientary.new_invoise' (did you mean 'clientary.new_invoice'?)",
        "steps[1] (step 'invoice').action: unknown action 'xero.create_invoce' "
        "(did you mean 'xero.create_invoice'?)",
    ]


def test_nothing_close_lists_nothing_made_up() -> None:
    doc = copy.deepcopy(WORKFLOW)
    doc["steps"][1]["action"] = "sage.post_journal"
    assert problems_of(doc) == ["steps[1] (step 'invoice').action: unknown action 'sage.post_journal'"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "id: x\nsteps:\n  - id: a\n   action: b\n",
            ":4:4: not valid YAML: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block collection, from line 3)",
        ),
        ("id: x\nname: a: b\n", ":2:8: not valid YAML: mapping values are not allowed here"),
    ],
)
def test_a_yaml_error_names_the_file_line_and_column(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    with pytest.raises(WorkflowInvalid) as caught:
        read_document(path)
    assert caught.value.problems == [f"{path}{problem}"]
    assert "<unicode string>" not in caught.value.problems[0]


def test_a_json_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    path.write_text('{"id": "x",\n "steps": [}\n')
    with pytest.raises(WorkflowInvalid) as caught:
        read_document(path)
    assert caught.value.problems == [f"{path}:2:12: not valid JSON: Expecting value"]
