"""Reading workflow files (YAML or JSON) and turning definitions into Workflows-table items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clientary_xero.errors import WorkflowInvalid
from clientary_xero.workflows.model import Workflow
from clientary_xero.workflows.validate import parse_workflow


def read_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file (JSON is YAML, but a .json file gets JSON's clearer errors).

    A file that cannot be opened raises ``OSError`` (the CLI names it on one line); one that opens
    but is not UTF-8 text is an invalid workflow like any other unreadable content.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise WorkflowInvalid(None, [f"{p.name}: not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
    if p.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowInvalid(None, [f"{p.name}: not valid JSON: {exc}"]) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkflowInvalid(None, [f"{p.name}: not valid YAML: {exc}"]) from None


def load_workflow_file(path: str | Path) -> Workflow:
    return parse_workflow(read_document(path))


def to_item(workflow: Workflow) -> dict[str, Any]:
    """The Workflows-table item: the definition as native attributes, so it is editable in the console."""
    return _to_dynamo(workflow.to_document())


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A Workflows-table item back to a plain definition (DynamoDB numbers → int/float)."""
    doc = _from_dynamo(item)
    for key in ("updated_at", "updated_by"):
        doc.pop(key, None)
    return doc


def _to_dynamo(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return sorted(_from_dynamo(v) for v in value)
    return value
