"""The JSON Schema of a workflow definition, generated from the models (committed as
``schemas/workflow.schema.json``; a test keeps the two in sync). Editors use it for completion.

Each step's ``input`` gets the schema of its action's input model (``if action = … then input:
…``), with a ``{% … %}`` expression allowed in place of any value, as the engine renders them
(``workflows.expressions.render``): a whole object, a list, a number or a constrained string can
come from an expression; the rendered value is validated against the model before the call.
"""

from __future__ import annotations

import json
from typing import Any

from clientary_xero.workflows.shape import Workflow
from clientary_xero.workflows.triggers import TRIGGERS

EXPRESSION = "Expression"
_EXPRESSION_REF = {"$ref": f"#/$defs/{EXPRESSION}"}
_META = ("title", "description", "default", "examples")


def workflow_schema() -> dict[str, Any]:
    from clientary_xero.connectors.base import registry

    schema = Workflow.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/clientary-xero/clientary-xero/schemas/workflow.schema.json"
    schema["title"] = "clientary-xero workflow"
    props = schema["properties"]
    props["trigger"]["enum"] = sorted(TRIGGERS)
    actions = registry()
    step = schema["$defs"]["Step"]
    step["properties"]["action"]["enum"] = sorted(actions)
    refs, defs = input_schemas({name: spec.input_model for name, spec in actions.items()})
    clash = sorted(set(defs) & set(schema["$defs"]))
    if clash:  # pragma: no cover - a model named like the workflow's own definitions
        raise RuntimeError(f"input models named like workflow definitions: {clash}")
    schema["$defs"].update(defs)
    step["allOf"] = [
        {
            "if": {"properties": {"action": {"const": name}}, "required": ["action"]},
            "then": {"properties": {"input": refs[name]}},
        }
        for name in sorted(actions)
    ]
    return schema


def input_schemas(models: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Action name → a ``$ref`` to its input's schema, and the definitions they refer to (every
    value of which may be an expression)."""
    refs, defs = model_definitions(models)
    for definition in defs.values():
        _expressions_allowed(definition)
    defs[EXPRESSION] = {
        "description": "A '{% … %}' JSONata expression, in place of any value; its result is "
        "checked against the field's type and limits when the step runs.",
        "pattern": r"^\s*\{%[\s\S]*%\}\s*$",
        "type": "string",
    }
    return refs, defs


def model_definitions(models: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Name → a ``$ref`` to that model's JSON Schema, and the definitions (as validated)."""
    from pydantic.json_schema import models_json_schema

    unique = sorted(set(models.values()), key=lambda m: (m.__module__, m.__qualname__))
    keys, top = models_json_schema([(m, "validation") for m in unique], ref_template="#/$defs/{model}")
    defs: dict[str, Any] = top.get("$defs", {})
    refs = {name: dict(keys[(model, "validation")]) for name, model in models.items()}
    # Two models of one name (each connector's ContactInput) get pydantic's module path as their
    # name: call them by their connector instead (XeroContactInput).
    renames = {
        name: f"{name.split('__connectors__', 1)[1].split('__', 1)[0].capitalize()}{name.rsplit('__', 1)[1]}"
        for name in defs
        if "__connectors__" in name
    }
    if renames:
        text = json.dumps([refs, defs])
        for old, new in renames.items():
            text = text.replace(f'"#/$defs/{old}"', f'"#/$defs/{new}"')
        refs, defs = json.loads(text)
        defs = {renames.get(name, name): value for name, value in defs.items()}
    return refs, defs


def _expressions_allowed(schema: dict[str, Any]) -> None:
    """Let every value below ``schema`` (an object's properties, a list's items) be an expression."""
    for key in ("anyOf", "oneOf", "allOf"):
        for member in schema.get(key, []):
            _expressions_allowed(member)
    for name, value in list(schema.get("properties", {}).items()):
        schema["properties"][name] = _or_expression(value)
    if isinstance(schema.get("items"), dict):
        schema["items"] = _or_expression(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = _or_expression(schema["additionalProperties"])


def _or_expression(schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    _expressions_allowed(schema)
    if schema.get("type") == "string" and not set(schema) - {"type", *_META}:
        return schema  # any string: an expression is one already
    meta = {key: schema.pop(key) for key in _META if key in schema}
    if set(schema) == {"anyOf"}:
        return {"anyOf": [*schema["anyOf"], _EXPRESSION_REF], **meta}
    return {"anyOf": [schema, _EXPRESSION_REF], **meta}


def schema_text() -> str:
    return json.dumps(workflow_schema(), indent=2, sort_keys=True) + "\n"
