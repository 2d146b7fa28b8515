"""The Workflows table: one native-attribute item per workflow, a GSI ``by-trigger`` for matching.

Items are human-edited (console or CLI), so loading never trusts them: ``for_trigger`` returns each
item with either its parsed workflow or the problems that make it invalid, and the caller reports
an invalid one on its run while every other workflow keeps running.

``for_trigger`` costs one request: the GSI query, whose projection is ALL, so the items come
with it (an item that came without its definition, from an index projecting less, is read from
the table, strongly). Its answer is kept in the container for ``workflow_cache_seconds`` (default
5): a poll page or a burst of pushes reads the table once, and an edit takes effect within that
time plus the index's own lag (eventually consistent: usually well under a second; the cache is
dropped at once for edits this process makes, ``put``/``delete``). Before issue 8 the items were
read again strongly (a ``BatchGetItem``), which bought nothing the cache did not already give up:
another container keeps its cached answer for the cache time anyway. The cache holds what was
loaded, invalid workflows and their problems included, so an invalid edit is still reported on
each run.

A definition is checked in full (``parse_workflow``: pydantic's shape models and the action input
models) unless its item carries this code's validation stamp of it (``workflows.stamp``): ``put``
writes one, and a load that checked a definition without one writes it back (one ``UpdateItem``
of that attribute alone, best effort: a function not allowed to write simply checks again next
cold start), so an edit made in the console or a new version of the code is checked once and its
later cold starts import no pydantic.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from clientary_xero.errors import PermanentError, RetryableError, WorkflowInvalid
from clientary_xero.settings import get_settings
from clientary_xero.storage.aws import dynamodb, error_code, table
from clientary_xero.workflows import stamp
from clientary_xero.workflows.loader import from_item, to_item
from clientary_xero.workflows.model import Workflow

logger = logging.getLogger(__name__)


@dataclass
class StoredWorkflow:
    id: str
    document: dict[str, Any]
    workflow: Workflow | None
    problems: list[str]
    # The stamp the item should carry and does not (it was checked in full just now), else None.
    unstamped: str | None = None

    @property
    def enabled(self) -> bool:
        if self.workflow is not None:
            return self.workflow.enabled
        return bool(self.document.get("enabled", True))


# BatchGetItem takes at most 100 keys.
BATCH_GET_KEYS = 100

# (table, trigger) -> (monotonic expiry, loaded workflows): per container, shared by invocations.
_cache: dict[tuple[str, str], tuple[float, list[StoredWorkflow]]] = {}
_cache_lock = threading.Lock()
# The cache's clock (a seam for tests: an expiry without waiting).
_monotonic = time.monotonic


def clear_cache() -> None:
    """Forget every cached ``for_trigger`` answer (tests and the local runner switch backends)."""
    with _cache_lock:
        _cache.clear()


class WorkflowStore:
    def __init__(self, table_name: str | None = None, *, cache_seconds: float | None = None) -> None:
        settings = get_settings()
        self.table_name = table_name or settings.workflows_table
        self.cache_seconds = settings.workflow_cache_seconds if cache_seconds is None else cache_seconds

    @property
    def _t(self) -> Any:
        return table(self.table_name)

    def put(self, workflow: Workflow, *, updated_by: str = "cli") -> None:
        """Save a workflow that has already been validated (``parse_workflow``), with its stamp when
        the definition as it will read back (DynamoDB numbers: 2.0 reads back as 2) checks and reads
        alike without the check."""
        from clientary_xero.workflows.validate import parse_workflow

        item = to_item(workflow)
        stored = from_item(item)
        try:
            if _reads_alike(stored, parse_workflow(stored)):
                item[stamp.ATTRIBUTE] = stamp.stamp(stored)
        except WorkflowInvalid:
            pass  # saved as validated, without a stamp: a trigger checks it in full
        item["updated_at"] = int(time.time())
        item["updated_by"] = updated_by
        self._call(self._t.put_item, Item=item)
        self._forget()

    def get(self, workflow_id: str) -> StoredWorkflow | None:
        response = self._call(self._t.get_item, Key={"id": workflow_id}, ConsistentRead=True)
        item = response.get("Item")
        return _load(item) if item else None

    def delete(self, workflow_id: str) -> None:
        self._call(self._t.delete_item, Key={"id": workflow_id})
        self._forget()

    def _forget(self) -> None:
        with _cache_lock:
            for key in [k for k in _cache if k[0] == self.table_name]:
                del _cache[key]

    def for_trigger(self, trigger: str) -> list[StoredWorkflow]:
        """The workflows of a trigger, valid or not, by id (cached: see the module docstring)."""
        key = (self.table_name, trigger)
        now = _monotonic()
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return list(hit[1])
        loaded = self._load_for_trigger(trigger)
        if self.cache_seconds > 0:
            with _cache_lock:
                _cache[key] = (now + self.cache_seconds, loaded)
        return list(loaded)

    def _load_for_trigger(self, trigger: str) -> list[StoredWorkflow]:
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
        # The index projects every attribute: its items are the workflows (a lag of the index is
        # within the cache's own, see the module docstring). One that came without its definition
        # (an index projecting less) is read from the table.
        whole = [i for i in items if "steps" in i]
        partial = sorted({str(i["id"]) for i in items if "steps" not in i})
        loaded = []
        for item in [*whole, *(self._get_many(partial) if partial else [])]:
            stored = _load(item)
            if stored.document.get("trigger") == trigger:
                loaded.append(stored)
                if stored.unstamped is not None:
                    self._remember(stored.id, stored.unstamped)
        return sorted(loaded, key=lambda s: s.id)

    def _remember(self, workflow_id: str, value: str) -> None:
        """Write the stamp of a definition just checked in full onto its item (only that attribute;
        never creating an item deleted meanwhile). Best effort: the stamp binds the definition it
        was computed from, so a racing edit only makes it not match; a refusal (no permission, the
        item gone) costs a full check at the next cold start, nothing else."""
        try:
            self._t.update_item(
                Key={"id": workflow_id},
                UpdateExpression="SET #v = :v",
                ConditionExpression="attribute_exists(#id)",
                ExpressionAttributeNames={"#v": stamp.ATTRIBUTE, "#id": "id"},
                ExpressionAttributeValues={":v": value},
            )
        except Exception as exc:
            logger.info(
                "could not stamp workflow %s as validated (%s): it is checked again next cold start",
                workflow_id,
                error_code(exc) or type(exc).__name__,
            )

    def _get_many(self, ids: list[str]) -> list[dict[str, Any]]:
        """The items of ``ids`` (strongly consistent), in no particular order; missing ones left out."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), BATCH_GET_KEYS):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{"id": i} for i in ids[start : start + BATCH_GET_KEYS]],
                    "ConsistentRead": True,
                }
            }
            for _ in range(10):  # unprocessed keys (throttling) are asked for again
                response = self._call(dynamodb().batch_get_item, RequestItems=request)
                found.extend(response.get("Responses", {}).get(self.table_name, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise RetryableError("DynamoDB did not answer for every workflow (busy)", delay_seconds=5)
        return found

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
    """An item as a workflow: read as checked when it carries this code's stamp of its definition,
    else checked in full (its problems kept, for its runs to report)."""
    document = from_item(item)
    wid = str(document.get("id", "?"))
    if stamp.matches(document, item.get(stamp.ATTRIBUTE)):
        return StoredWorkflow(wid, document, Workflow.from_document(document), [])
    from clientary_xero.workflows.validate import parse_workflow

    try:
        workflow = parse_workflow(document)
    except WorkflowInvalid as exc:
        return StoredWorkflow(wid, document, None, exc.problems)
    except Exception as exc:  # anything else about one item must not stop the trigger's others
        return StoredWorkflow(
            wid, document, None, [f"(top level): could not be checked: {type(exc).__name__}: {exc}"]
        )
    # Stamp it when reading it without the check gives the same workflow (a definition saved by
    # `put` does; one typed in the console with `enabled: "yes"` or an unnamed branch does not, and
    # is checked at each cold start until it is saved with `workflows put`).
    unstamped = stamp.stamp(document) if _reads_alike(document, workflow) else None
    return StoredWorkflow(wid, document, workflow, [], unstamped)


def _reads_alike(document: dict[str, Any], checked: Workflow) -> bool:
    """Whether reading ``document`` without the check gives ``checked``, value for value as JSON
    writes them (``==`` would take ``enabled: 1`` for ``true``)."""
    import json

    def text(workflow: Workflow) -> str:
        return json.dumps(workflow.to_document(), sort_keys=True, allow_nan=False)

    try:
        return text(Workflow.from_document(document)) == text(checked)
    except (PermanentError, TypeError, ValueError):
        return False
