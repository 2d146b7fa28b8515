"""What the notifier still has to tell (usecases/alerts.py), kept in the State table.

=============================  ======================  =================================================
pk                             sk                      what
=============================  ======================  =================================================
``NOTICE``                     ``FAILED#<run>#<gen>``  a run that ended FAILED, not yet in a digest
``NOTICE#FLAG``                ``<name>``              something already told: ``xero-reconnect``,
                                                       ``dlq#<queue>`` (the depth told)
``STREAK#<workflow id>``       ``STREAK``              the workflow's failed runs in a row, ``reported``
=============================  ======================  =================================================

A notice's key is derived from its run and generation, so writing it twice (a retried failure)
leaves one. Notices and streaks are written with the run's FAILED update (one transaction: see
``failed_run_writes``); the notifier deletes the notices it sent.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from clientary_xero.errors import Conflict, RetryableError
from clientary_xero.settings import get_settings
from clientary_xero.storage.aws import dynamodb, error_code, table

NOTICES = "NOTICE"
FLAGS = "NOTICE#FLAG"
RECONNECT_FLAG = "xero-reconnect"
# A notice nobody sent (the notifier broken for weeks: its errors alarm) does not stay forever.
NOTICE_TTL_SECONDS = 14 * 86400


def streak_key(workflow_id: str) -> dict[str, str]:
    return {"pk": f"STREAK#{workflow_id}", "sk": "STREAK"}


class NoticeStore:
    def __init__(self, table_name: str | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.table_name = table_name or get_settings().state_table
        self.clock = clock

    @property
    def _t(self) -> Any:
        return table(self.table_name)

    def _call(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                raise Conflict(code) from None
            if code:
                raise RetryableError(
                    f"DynamoDB refused a notice write or read ({code})", delay_seconds=5
                ) from None
            raise

    # ------------------------------------------------------------- written where runs fail
    def failed_run_writes(self, notice: dict[str, Any]) -> list[dict[str, Any]]:
        """``update_item`` arguments that ride along with the run's FAILED update (one
        transaction, ``StateStore.update_run(also=…)``): the notice, and one more failure in the
        workflow's streak."""
        return [self.notice_write(notice), self.streak_write(str(notice.get("workflow_id") or "?"))]

    def notice_write(self, notice: dict[str, Any]) -> dict[str, Any]:
        now = int(self.clock())
        return {
            "Key": {"pk": NOTICES, "sk": f"FAILED#{notice['run_id']}#{int(notice.get('generation') or 0)}"},
            "UpdateExpression": "SET #k = :k, #d = :d, #a = :a, #t = :t",
            "ExpressionAttributeNames": {"#k": "kind", "#d": "data", "#a": "at", "#t": "ttl"},
            "ExpressionAttributeValues": {
                ":k": "failed",
                ":d": json.dumps(notice),
                ":a": now,
                ":t": now + NOTICE_TTL_SECONDS,
            },
        }

    def streak_write(self, workflow_id: str, failures: int = 1) -> dict[str, Any]:
        """``failures`` more failed runs in the workflow's streak."""
        now = int(self.clock())
        return {
            "Key": streak_key(workflow_id),
            "UpdateExpression": "ADD #f :n SET #a = :a, #t = :t",
            "ExpressionAttributeNames": {"#f": "failures", "#a": "at", "#t": "ttl"},
            "ExpressionAttributeValues": {":n": failures, ":a": now, ":t": now + NOTICE_TTL_SECONDS},
        }

    def reconnect_write(self, source: str, message: str) -> dict[str, Any]:
        """A Xero call that needs a reconnect outside any run (a trigger fetching, a poll): one
        notice per ``source`` until a digest told it."""
        now = int(self.clock())
        data = {"source": source, "message": message, "reconnect": True}
        return {
            "Key": {"pk": NOTICES, "sk": f"RECONNECT#{source}"},
            "UpdateExpression": "SET #k = :k, #d = :d, #a = :a, #t = :t",
            "ExpressionAttributeNames": {"#k": "kind", "#d": "data", "#a": "at", "#t": "ttl"},
            "ExpressionAttributeValues": {
                ":k": "reconnect",
                ":d": json.dumps(data),
                ":a": now,
                ":t": now + NOTICE_TTL_SECONDS,
            },
        }

    def write(self, updates: Iterable[dict[str, Any]]) -> None:
        """The same writes one by one (where no run update carries them: the intake's FAILED runs)."""
        for update in updates:
            self._call(self._t.update_item, **update)

    def streak_reset(self, workflow_id: str) -> dict[str, Any]:
        """``update_item`` arguments for a SUCCEEDED run's transaction: its workflow's streak of
        failures ends (and a new one is reported again). A SET, not a delete: it rides along
        without a condition, and one small item per workflow stays."""
        return {
            "Key": streak_key(workflow_id),
            "UpdateExpression": "SET #f = :zero, #r = :no",
            "ExpressionAttributeNames": {"#f": "failures", "#r": "reported"},
            "ExpressionAttributeValues": {":zero": 0, ":no": False},
        }

    # ------------------------------------------------------------- read and cleared by the notifier
    def pending(self, *, limit: int = 5000) -> list[dict[str, Any]]:
        """Notices not sent yet (at most ``limit``; the next digest takes the rest), oldest first."""
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": NOTICES},
            "ConsistentRead": True,
        }
        while len(found) < limit:
            response = self._call(self._t.query, **kwargs)
            for item in response.get("Items", []):
                found.append(
                    {
                        **json.loads(item["data"]),
                        "kind": item["kind"],
                        "at": int(item["at"]),
                        "sk": item["sk"],
                    }
                )
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(found[:limit], key=lambda n: (n["at"], n["sk"]))

    def delete(self, notices: Iterable[dict[str, Any]]) -> None:
        keys = [{"pk": NOTICES, "sk": notice["sk"]} for notice in notices]
        for start in range(0, len(keys), 25):  # BatchWriteItem takes 25 requests
            request: dict[str, Any] = {
                self.table_name: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            }
            while request:  # what DynamoDB left unprocessed (throttling) is sent again
                response = self._call(dynamodb().batch_write_item, RequestItems=request)
                request = response.get("UnprocessedItems") or {}

    def streaks(self, workflow_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Each workflow's streak ``{failures, reported}`` (absent: no failure since its last success)."""
        ids = sorted(set(workflow_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 100):  # BatchGetItem takes 100 keys
            keys = [streak_key(w) for w in ids[start : start + 100]]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            while request:
                response = self._call(dynamodb().batch_get_item, RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    workflow = str(item["pk"]).removeprefix("STREAK#")
                    found[workflow] = {
                        "failures": int(item.get("failures", 0)),
                        "reported": bool(item.get("reported", False)),
                    }
                request = response.get("UnprocessedKeys") or {}
        return found

    def mark_reported(self, workflow_id: str) -> None:
        """The streak was told; it is told again only after a success ends it and a new one starts."""
        with contextlib.suppress(Conflict):  # a success ended the streak meanwhile: nothing to remember
            self._call(
                self._t.update_item,
                Key=streak_key(workflow_id),
                UpdateExpression="SET reported = :yes",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":yes": True},
            )

    def get_flag(self, name: str) -> dict[str, Any] | None:
        item = self._call(self._t.get_item, Key={"pk": FLAGS, "sk": name}, ConsistentRead=True).get("Item")
        if not item or int(item.get("ttl", 0)) < self.clock():  # TTL deletes lazily
            return None
        return dict(json.loads(item.get("data") or "{}"))

    def set_flag(self, name: str, data: dict[str, Any], *, ttl_seconds: int) -> None:
        self._call(
            self._t.put_item,
            Item={"pk": FLAGS, "sk": name, "data": json.dumps(data), "ttl": int(self.clock()) + ttl_seconds},
        )

    def clear_flag(self, name: str) -> None:
        self._call(self._t.delete_item, Key={"pk": FLAGS, "sk": name})
