"""Workflow YAML reads numbers as YAML 1.2 does: no silent octal or base-60 conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from clientary_xero.workflows.loader import load_workflow_file, read_document
from clientary_xero.workflows.model import Step

WORKFLOW = """
id: numbers
enabled: false
trigger: clientary.new_invoice
steps:
  - id: invoice
    action: xero.create_invoice
    input:
      InvoiceNumber: 00123
      Reference: 1:30
      Contact: { ContactNumber: 0042 }
      LineItems:
        - { Description: Hours, Quantity: 2, UnitAmount: 5.25, DiscountRate: 1.5e+1 }
"""


def test_leading_zeros_and_colons_stay_as_written(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(WORKFLOW)
    workflow = load_workflow_file(path)
    step = workflow.steps[0]
    assert isinstance(step, Step)
    assert step.input["InvoiceNumber"] == "00123"  # YAML 1.1 read 83 (octal)
    assert step.input["Reference"] == "1:30"  # YAML 1.1 read 90 (base 60)
    assert step.input["Contact"] == {"ContactNumber": "0042"}
    assert step.input["LineItems"] == [
        {"Description": "Hours", "Quantity": 2, "UnitAmount": 5.25, "DiscountRate": 15.0}
    ]
    assert workflow.enabled is False
    assert yaml.safe_load(WORKFLOW)["steps"][0]["input"]["InvoiceNumber"] == 83  # what it fixes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("-42", -42),
        ("+7", 7),
        ("0o17", 15),
        ("-0o17", -15),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("-.5", -0.5),
        ("1.0e+3", 1000.0),
        (".inf", float("inf")),
        ("true", True),
        ("false", False),
        ("True", True),
        ("FALSE", False),
        ("NO", "NO"),  # a country code, not false
        ("yes", "yes"),
        ("off", "off"),
        ("y", "y"),
        ("~", None),
        ("00123", "00123"),
        ("0123", "0123"),
        ("-017", "-017"),
        ("1:30", "1:30"),
        ("190:20:30.15", "190:20:30.15"),
        ("0b101", "0b101"),
        ("1_000", "1_000"),
        ("1e3", "1e3"),
        ("'017'", "017"),
        ("!!int 017", 17),
    ],
)
def test_scalars(tmp_path: Path, text: str, expected: Any) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"value: {text}\n")
    assert read_document(path) == {"value": expected}


def test_the_safe_loader_itself_is_unchanged() -> None:
    assert yaml.safe_load("value: 017") == {"value": 15}
