"""Workflow definitions: shape, whole-definition validation, loading, the committed JSON Schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.errors import WorkflowInvalid
from clientary_xero.workflows.loader import from_item, load_workflow_file, to_item
from clientary_xero.workflows.model import Branch, Step
from clientary_xero.workflows.schema import schema_text
from clientary_xero.workflows.validate import parse_workflow

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "shared" / "clientary_xero" / "local" / "samples" / "invoice_to_xero.yaml"

VALID: dict[str, Any] = {
    "id": "invoice-to-xero",
    "trigger": "clientary.new_invoice",
    "filter": "{% invoice.total_cost > 0 %}",
    "steps": [
        {
            "id": "contact",
            "action": "xero.create_or_update_contact",
            "input": {
                "Name": "{% invoice.client.name %}",
                "ContactNumber": "{% $string(invoice.client_id) %}",
            },
        },
        {
            "if": "{% invoice.status = 4 %}",
            "then": [
                {
                    "id": "paid_invoice",
                    "action": "xero.create_invoice",
                    "input": {
                        "Contact": {"ContactID": "{% steps.contact.ContactID %}"},
                        "Status": "AUTHORISED",
                        "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5}],
                    },
                }
            ],
            "else": [
                {
                    "if": "{% invoice.total_cost > 1000 %}",
                    "then": [
                        {
                            "id": "big_invoice",
                            "action": "xero.create_invoice",
                            "input": {
                                "Contact": {"ContactID": "{% steps.contact.ContactID %}"},
                                "LineItems": "{% [] %}",
                            },
                        }
                    ],
                }
            ],
        },
    ],
}


def problems_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflow(document)
    return info.value.problems


def test_valid_workflow_parses_with_nested_branches() -> None:
    workflow = parse_workflow(copy.deepcopy(VALID))
    assert isinstance(workflow.steps[0], Step)
    branch = workflow.steps[1]
    assert isinstance(branch, Branch)
    assert branch.id == "if_1" and isinstance(branch.else_[0], Branch) and branch.else_[0].id == "if_1_1"
    assert workflow.to_document()["steps"][1]["else"][0]["then"][0]["id"] == "big_invoice"


def test_unknown_action_is_named_with_its_place() -> None:
    doc = copy.deepcopy(VALID)
    doc["steps"][0]["action"] = "xero.create_contact"
    assert problems_of(doc) == [
        "steps[0] (step 'contact').action: unknown action 'xero.create_contact' "
        "(did you mean 'xero.create_or_update_contact'?)"
    ]


def test_expression_that_does_not_parse() -> None:
    doc = copy.deepcopy(VALID)
    doc["steps"][0]["input"]["Name"] = "{% invoice.client.name & %}"
    (problem,) = problems_of(doc)
    assert problem.startswith("steps[0] (step 'contact').input.Name: expression does not parse")


def test_step_used_before_it_exists() -> None:
    doc = copy.deepcopy(VALID)
    doc["steps"][0]["input"]["Name"] = "{% steps.paid_invoice.InvoiceNumber %}"
    assert problems_of(doc) == [
        "steps[0] (step 'contact').input.Name: refers to steps.paid_invoice, which has not run at this point"
    ]


def test_step_of_the_other_branch_is_not_available() -> None:
    doc = copy.deepcopy(VALID)
    doc["steps"][1]["else"][0]["then"][0]["input"]["Reference"] = "{% steps.paid_invoice.InvoiceNumber %}"
    (problem,) = problems_of(doc)
    assert "refers to steps.paid_invoice" in problem and "else[0]" in problem


def test_duplicate_ids() -> None:
    doc = copy.deepcopy(VALID)
    doc["steps"][1]["then"][0]["id"] = "contact"
    (problem,) = problems_of(doc)
    assert "duplicate id 'contact' (first used at steps[0])" in problem


def test_unknown_trigger_and_misspelt_input_field_together() -> None:
    doc = copy.deepcopy(VALID)
    doc["trigger"] = "clientary.new_widget"
    doc["steps"][0]["input"]["ContactNumbr"] = "x"
    problems = problems_of(doc)
    assert any(p.startswith("trigger: unknown trigger 'clientary.new_widget'") for p in problems)
    assert any(
        "input.ContactNumbr: not a field of this action's input (did you mean 'ContactNumber'?)" in p
        for p in problems
    )


def test_missing_required_input_field() -> None:
    doc = copy.deepcopy(VALID)
    del doc["steps"][0]["input"]["Name"]
    assert problems_of(doc) == ["steps[0] (step 'contact').input: missing required field 'Name'"]


def test_shape_errors_are_reported_by_place() -> None:
    doc = copy.deepcopy(VALID)
    doc["steps"][0]["id"] = "bad id!"
    doc["enabled"] = "sometimes"
    problems = problems_of(doc)
    assert any(p.startswith("enabled:") for p in problems)
    assert any(p.startswith("steps[0].id:") for p in problems)


def test_filter_must_be_an_expression() -> None:
    doc = copy.deepcopy(VALID)
    doc["filter"] = "invoice.total_cost > 0"
    assert problems_of(doc)[0].startswith("filter: must be a JSONata expression")


def test_dynamodb_item_round_trip_keeps_numbers() -> None:
    doc = copy.deepcopy(VALID)
    doc["steps"][1]["then"][0]["input"]["LineItems"][0]["UnitAmount"] = 5.25
    workflow = parse_workflow(doc)
    item = to_item(workflow)
    again = parse_workflow(from_item(item))
    assert again.to_document() == workflow.to_document()


def test_sample_workflow_file_is_valid() -> None:
    workflow = load_workflow_file(SAMPLE)
    assert workflow.trigger == "clientary.new_invoice"


def test_yaml_and_json_files_both_load(tmp_path: Path) -> None:
    (tmp_path / "w.json").write_text(json.dumps(VALID))
    assert load_workflow_file(tmp_path / "w.json").id == "invoice-to-xero"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(WorkflowInvalid, match="not valid JSON"):
        load_workflow_file(tmp_path / "bad.json")


def test_committed_schema_is_in_sync_with_the_models() -> None:
    committed = (ROOT / "schemas" / "workflow.schema.json").read_text()
    assert committed == schema_text(), "run `make schema` and commit schemas/workflow.schema.json"


def test_schema_accepts_the_sample_and_rejects_a_bad_step() -> None:
    import jsonschema  # openapi-core brings it

    schema = json.loads(schema_text())
    workflow = load_workflow_file(SAMPLE)
    jsonschema.validate(workflow.to_document(), schema)
    bad = workflow.to_document()
    bad["steps"][0]["action"] = "xero.nope"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_the_readme_workflow_example_is_valid() -> None:
    import yaml

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Writing a workflow") :]
    block = section[section.index("```yaml\n") + len("```yaml\n") :]
    workflow = parse_workflow(yaml.safe_load(block[: block.index("```")]))
    assert workflow.id == "invoice-to-xero"


def test_shape_errors_do_not_hide_the_other_problems() -> None:
    doc = copy.deepcopy(VALID)
    doc["trigger"] = "clientary.new_invoic"
    doc["steps"][0]["extra"] = 1
    doc["steps"][1]["then"][0]["action"] = "xero.create_invoise"
    doc["steps"][1]["else"][0]["then"][0]["input"]["Referense"] = "x"
    problems = problems_of(doc)
    assert problems[1] == (
        "trigger: unknown trigger 'clientary.new_invoic' (did you mean 'clientary.new_invoice'?)"
    )
    assert problems[:1] + problems[2:] == [
        "steps[0].extra: not a field of a step",
        "steps[1] (branch 'if_1').then[0] (step 'paid_invoice').action: unknown action 'xero.create_invoise' "
        "(did you mean 'xero.create_invoice'?)",
        "steps[1] (branch 'if_1').else[0] (branch 'if_1_1').then[0] (step 'big_invoice').input.Referense: "
        "not a field of this action's input (did you mean 'Reference'?)",
    ]


def test_what_the_shape_errors_name_is_not_reported_twice() -> None:
    doc = copy.deepcopy(VALID)
    doc["trigger"] = 5
    doc["filter"] = ["not", "text"]
    doc["steps"][0]["action"] = None
    doc["steps"][0]["input"] = "Name"
    doc["steps"][1]["if"] = None
    doc["steps"][1]["then"][0]["id"] = "contact"  # found although the shape is wrong elsewhere
    doc["steps"].append("not a step")
    problems = problems_of(doc)
    assert problems == [
        "trigger: Input should be a valid string",
        "filter: Input should be a valid string",
        "steps[0].action: Input should be a valid string",
        "steps[0].input: Input should be a valid dictionary",
        "steps[1].if: Input should be a valid string",
        "steps[2]: Input should be a valid dictionary or instance of Step",
        "steps[1] (branch 'if_1').then[0] (step 'contact'): duplicate id 'contact' (first used at steps[0])",
    ]


def test_generated_branch_ids_avoid_the_ids_the_user_wrote() -> None:
    doc = copy.deepcopy(VALID)
    doc["steps"][0]["id"] = "if_1"
    doc["steps"][1]["then"][0]["input"]["Contact"]["ContactID"] = "{% steps.if_1.ContactID %}"
    doc["steps"][1]["else"][0]["then"][0]["input"]["Contact"]["ContactID"] = "{% steps.if_1.ContactID %}"
    doc["steps"][1]["else"][0]["id"] = "if_2_1"  # a user-named branch inside the generated one
    doc["steps"][1]["else"].append(
        {"if": "{% true %}", "then": [{"id": "n", "action": "xero.find_contact", "input": {"Name": "x"}}]}
    )
    workflow = parse_workflow(doc)  # was: steps[1] (branch 'if_1'): duplicate id 'if_1'
    branch = workflow.steps[1]
    assert isinstance(branch, Branch) and branch.id == "if_2"
    assert [n.id for n in branch.else_] == ["if_2_1", "if_2_2"]


def test_a_branch_the_user_named_like_a_generated_id_is_a_duplicate_they_wrote() -> None:
    doc = copy.deepcopy(VALID)
    doc["steps"][1]["id"] = "contact"
    (problem,) = problems_of(doc)
    assert problem == "steps[1] (branch 'contact'): duplicate id 'contact' (first used at steps[0])"
