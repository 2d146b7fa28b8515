"""Reading workflow files (YAML or JSON) and turning definitions into Workflows-table items."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clientary_xero.errors import WorkflowInvalid
from clientary_xero.workflows.model import Workflow


def read_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file (JSON is YAML, but a .json file gets JSON's clearer errors).

    A file that cannot be opened raises ``OSError`` (the CLI names it on one line); one that opens
    but is not UTF-8 text is an invalid workflow like any other unreadable content.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise WorkflowInvalid(None, [f"{p}: not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
    if p.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowInvalid(
                None, [f"{p}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"]
            ) from None
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise WorkflowInvalid(None, [yaml_problem(p, exc)]) from None


def yaml_problem(path: Path, exc: Any) -> str:
    """``file:line:column: not valid YAML: what (while …, from line N)``: the file named, not
    PyYAML's ``"<unicode string>"``, and one line an editor can jump to."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return f"{path}: not valid YAML: {exc}"
    where = f"{path}:{mark.line + 1}:{mark.column + 1}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    why = ""
    if context:
        why = f" ({context}" + (f", from line {context_mark.line + 1}" if context_mark else "") + ")"
    return f"{where}: not valid YAML: {problem}{why}"


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
# Booleans too: YAML 1.1 reads yes/no/on/off/y/n as booleans (Country: NO → false); 1.2 only
# true and false.
_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
# YAML 1.2's core schema, where YAML 1.1 and 1.2 agree: a plain scalar is a number only when both
# read it as the same number. Gone are 1.1's octal (00123 → 83: an InvoiceNumber silently became
# "83"), sexagesimal (1:30 → 90) and binary, and underscores (1_000). A decimal with a leading zero
# stays a string: a number like 00123 is an identifier, whose zeros matter. 0o17 and 0x1F, which
# nobody writes by accident, are numbers as in YAML 1.2.
_INT_12 = re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|[-+]?0o[0-7]+|[-+]?0x[0-9a-fA-F]+)$")
_FLOAT_12 = re.compile(
    r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_loader_class: Any = None


def _loader() -> Any:
    """``yaml.SafeLoader`` with the YAML 1.2 core schema's numbers and booleans."""
    global _loader_class
    if _loader_class is None:
        import yaml

        class WorkflowLoader(yaml.SafeLoader):
            yaml_implicit_resolvers = {
                first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _BOOL)]
                for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
            }

            def construct_yaml_int(self, node: Any) -> int:
                text = str(self.construct_scalar(node))
                sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.removeprefix("+"))
                base = 8 if digits.startswith("0o") else 16 if digits.startswith("0x") else 10
                try:
                    return sign * int(digits, base)
                except ValueError:  # only reachable with an explicit !!int tag
                    raise yaml.constructor.ConstructorError(
                        None, None, f"{text!r} is not an integer", node.start_mark
                    ) from None

        WorkflowLoader.add_implicit_resolver(_BOOL, _BOOL_12, list("tTfF"))
        WorkflowLoader.add_implicit_resolver(_INT, _INT_12, list("-+0123456789"))
        WorkflowLoader.add_implicit_resolver(_FLOAT, _FLOAT_12, list("-+0123456789."))
        WorkflowLoader.add_constructor(_INT, WorkflowLoader.construct_yaml_int)
        _loader_class = WorkflowLoader
    return _loader_class


def load_workflow_file(path: str | Path, settings: Sequence[str] = ()) -> Workflow:
    """The workflow in ``path``, its declared settings overridden by ``NAME=VALUE`` assignments."""
    from clientary_xero.workflows.settings import apply_settings
    from clientary_xero.workflows.validate import parse_workflow

    return parse_workflow(apply_settings(read_document(path), settings))


def to_item(workflow: Workflow) -> dict[str, Any]:
    """The Workflows-table item: the definition as native attributes, so it is editable in the console."""
    return _to_dynamo(workflow.to_document())


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A Workflows-table item back to a plain definition (DynamoDB numbers → int/float), without
    the attributes the table adds (when and by whom it was saved, its validation stamp)."""
    doc = _from_dynamo(item)
    for key in ("updated_at", "updated_by", "validated"):
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
