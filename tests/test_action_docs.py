"""docs/actions.md is generated from the actions' input models (issue 11, point 3): the committed
file is what the generator writes, every action is in it with its input, output and an example
that validation accepts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from clientary_xero.connectors.base import registry
from clientary_xero.workflows import action_docs
from clientary_xero.workflows.schema import schema_text
from clientary_xero.workflows.validate import _check_input_keys

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_docs_are_what_the_generator_writes() -> None:
    committed = (ROOT / "docs" / "actions.md").read_text(encoding="utf-8")
    assert committed == action_docs.actions_markdown(), "run `make schema` and commit docs/actions.md"


def test_every_action_is_documented_and_nothing_else() -> None:
    actions = set(registry())
    assert set(action_docs.EXAMPLES) == actions
    assert set(action_docs.CLIENTARY_OUTPUTS) == {a for a in actions if a.startswith("clientary.")}
    text = action_docs.actions_markdown()
    for name in actions:
        assert f"## `{name}`" in text


@pytest.mark.parametrize("name", sorted(action_docs.EXAMPLES))
def test_each_example_passes_validation(name: str) -> None:
    given = action_docs.EXAMPLES[name]
    problems: list[str] = []
    _check_input_keys(given, registry()[name].input_model, "input", problems)
    assert problems == []
    document = {
        "id": "w",
        "trigger": "clientary.new_invoice",
        "steps": [{"id": "s", "action": name, "input": given}],
    }
    schema = json.loads(schema_text())
    assert [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(document)] == []


def test_every_input_field_with_its_limits_is_in_the_docs() -> None:
    text = action_docs.actions_markdown()
    contact = text.split("## `xero.create_or_update_contact`", 1)[1].split("\n## ", 1)[0]
    assert "| `CompanyNumber` | string |  | ≤ 50 characters | Company registration number. |" in contact
    assert "| `ContactStatus` | `ACTIVE` \\| `ARCHIVED` \\| `GDPRREQUEST` |" in contact
    assert "#### `ContactPaymentTerms`" in contact
    assert "Refused as read-only in Xero: " in contact and "`IsCustomer`" in contact


def test_the_outputs_are_the_actions_own() -> None:
    # The invoice output builder, called on an empty answer, names what a step's output holds.
    fields = action_docs.output_fields("xero.create_invoice")
    assert fields[:2] == ["InvoiceID", "InvoiceNumber"] and "created" in fields
    assert action_docs.output_fields("xero.find_contact")[-3:] == ["found", "count", "matches"]
    text = action_docs.actions_markdown()
    for name in registry():
        section = text.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
        assert "### Output" in section and "### Example" in section
        if name.startswith("xero."):
            for field in action_docs.output_fields(name):
                assert f"| `{field}` |" in section, (name, field)
