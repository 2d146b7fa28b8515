"""The Workflows table: one native-attribute item per workflow, a GSI ``by-trigger`` for matching.

Items are human-edited (console or CLI), so loading never trusts them: ``for_trigger`` returns each
item with either its parsed workflow or the problems that make it invalid, and the caller reports
an invalid one on its run while every other workflow keeps running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from clientary_xero.errors import RetryableError, WorkflowInvalid
from clientary_xero.settings import get_settings
from clientary_xero.storage.aws import error_code, table
from clientary_xero.workflows.loader import from_item, to_item
from clientary_xero.workflows.model import Workflow
from clientary_xero.workflows.validate import parse_workflow


@dataclass
class StoredWorkflow:
    id: str
    document: dict[str, Any]
    workflow: Workflow | None
    problems: list[str]

    @property
    def enabled(self) -> bool:
        if self.workflow is not None:
            return self.workflow.enabled
        return bool(self.document.get("enabled", True))


class WorkflowStore:
    def __init__(self, table_name: str | None = None) -> None:
        self.table_name = table_name or get_settings().workflows_table

    @property
    def _t(self) -> Any:
        return table(self.table_name)

    def put(self, workflow: Workflow, *, updated_by: str = "cli") -> None:
        """Save a workflow that has already been validated (``parse_workflow``)."""
        item = to_item(workflow)
        item["updated_at"] = int(time.time())
        item["updated_by"] = updated_by
        self._call(self._t.put_item, Item=item)

    def get(self, workflow_id: str) -> StoredWorkflow | None:
        response = self._call(self._t.get_item, Key={"id": workflow_id}, ConsistentRead=True)
        item = response.get("Item")
        return _load(item) if item else None

    def delete(self, workflow_id: str) -> None:
        self._call(self._t.delete_item, Key={"id": workflow_id})

    def for_trigger(self, trigger: str) -> list[StoredWorkflow]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "IndexName": "by-trigger",
            "KeyConditionExpression": "#t = :t",
            "ExpressionAttributeNames": {"#t": "trigger"},
            "ExpressionAttributeValues": {":t": trigger},
        }
        while True:
            response = self._call(self._t.query, **kwargs)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        # The GSI is eventually consistent and only has the keys' projection guarantees: read each
        # item strongly so a just-saved edit is what runs.
        loaded = []
        for item in items:
            stored = self.get(str(item["id"]))
            if stored is not None and stored.document.get("trigger") == trigger:
                loaded.append(stored)
        return sorted(loaded, key=lambda s: s.id)

    def list(self) -> list[StoredWorkflow]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            response = self._call(self._t.scan, **kwargs)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted((_load(i) for i in items), key=lambda s: s.id)

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:
            code = error_code(exc)
            if code in {
                "ProvisionedThroughputExceededException",
                "ThrottlingException",
                "InternalServerError",
                "RequestLimitExceeded",
            }:
                raise RetryableError(f"DynamoDB is busy ({code})", delay_seconds=5) from None
            raise


def _load(item: dict[str, Any]) -> StoredWorkflow:
    document = from_item(item)
    wid = str(document.get("id", "?"))
    try:
        return StoredWorkflow(wid, document, parse_workflow(document), [])
    except WorkflowInvalid as exc:
        return StoredWorkflow(wid, document, None, exc.problems)
