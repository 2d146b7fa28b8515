"""The JSON Schema of a workflow definition, generated from the models (committed as
``schemas/workflow.schema.json``; a test keeps the two in sync). Editors use it for completion."""

from __future__ import annotations

import json
from typing import Any

from clientary_xero.workflows.model import Workflow
from clientary_xero.workflows.triggers import TRIGGERS


def workflow_schema() -> dict[str, Any]:
    from clientary_xero.connectors.base import registry

    schema = Workflow.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/clientary-xero/clientary-xero/schemas/workflow.schema.json"
    schema["title"] = "clientary-xero workflow"
    props = schema["properties"]
    props["trigger"]["enum"] = sorted(TRIGGERS)
    step = schema["$defs"]["Step"]["properties"]
    step["action"]["enum"] = sorted(registry())
    return schema


def schema_text() -> str:
    return json.dumps(workflow_schema(), indent=2, sort_keys=True) + "\n"
