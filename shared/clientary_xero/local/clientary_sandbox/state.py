"""The records every resource shares the handling of: storage, ids, timestamps, required and unique
fields, list order, and the common JSON shape (``SandboxState``, the base of ``ClientarySandbox``).

The state itself is set by ``ClientarySandbox.__init__`` (core.py); it is declared here so that the
mixins and the resources' hooks see its types.
"""

from __future__ import annotations

import copy
import itertools
import threading
from datetime import date, datetime, timezone
from typing import Any

import httpx

from clientary_xero.local.clientary_sandbox.fields import _blank
from clientary_xero.local.clientary_sandbox.spec import (
    Clock,
    Record,
    ResourceSpec,
    SandboxValidation,
    _newest_first,
)


class SandboxState(httpx.BaseTransport):
    """One account's state and the create/update/list-order/render rules every resource shares."""

    subdomain: str
    task_create_path: str
    ignore_payment_dates: bool
    nest_invoice_client: bool
    api_token: str
    clock: Clock
    tz: timezone
    plan_limits: dict[str, int]
    fiscal_year_start_month: int
    resources: dict[str, ResourceSpec]
    request_count: int
    requests: list[tuple[str, str]]
    _lock: threading.RLock
    _records: dict[str, dict[int, Record]]
    _next_ids: dict[str, int]
    _item_ids: itertools.count[int]
    _failures: list[tuple[int | None, dict[str, str], Any]]
    _lost_answers: list[int | None]

    def now(self) -> datetime:
        return self.clock().astimezone(self.tz).replace(microsecond=0)

    # ------------------------------------------------------------------ formats
    def timestamp(self, moment: datetime) -> str:
        """Rails' JSON time: ISO 8601 in the account's zone, to the second."""
        return moment.astimezone(self.tz).replace(microsecond=0).isoformat()

    @staticmethod
    def date_text(day: date) -> str:
        return day.strftime("%Y/%m/%d")

    # ------------------------------------------------------------------ create / update / order
    def _sorted(self, spec: ResourceSpec, sort: str | None) -> list[Record]:
        key = spec.sorts.get(sort) or spec.sorts.get(None) or _newest_first
        return sorted(self._records[spec.name].values(), key=key)

    def _create(self, spec: ResourceSpec, fields: dict[str, Any]) -> Record:
        missing = {name: ["can't be blank"] for name in spec.required if _blank(fields.get(name))}
        if missing:
            raise SandboxValidation(missing)
        limit = self.plan_limits.get(spec.name)
        if limit is not None and len(self._records[spec.name]) >= limit:
            raise SandboxValidation({"base": ["must meet plan limits"]}, status=426)
        self._check_unique(spec, fields, None)
        now = self.now()
        record: Record = {"id": self._new_id(spec.name)}
        record.update(spec.build(self, fields, None) if spec.build else fields)
        record["_created"] = record["_updated"] = now
        record["_created_ts"] = now.timestamp()
        self._records[spec.name][record["id"]] = record
        if spec.after_create is not None:
            spec.after_create(self, record)
        return self._render(spec.name, record)

    def _update(self, spec: ResourceSpec, record_id: int, fields: dict[str, Any]) -> Record:
        existing = self._records[spec.name][record_id]
        blanked = {
            name: ["can't be blank"] for name in spec.required if name in fields and _blank(fields[name])
        }
        if blanked:
            raise SandboxValidation(blanked)
        self._check_unique(spec, fields, record_id)
        updated = copy.deepcopy(existing)
        updated.update(spec.build(self, fields, existing) if spec.build else fields)
        updated["_updated"] = self.now()
        updated.pop("_updated_text", None)
        self._records[spec.name][record_id] = updated
        return self._render(spec.name, updated)

    def _check_unique(self, spec: ResourceSpec, fields: dict[str, Any], record_id: int | None) -> None:
        for name in spec.unique:
            value = fields.get(name)
            if _blank(value):
                continue
            for other in self._records[spec.name].values():
                if other["id"] != record_id and str(other.get(name)) == str(value):
                    raise SandboxValidation({name: ["has already been taken"]})

    def _new_id(self, resource: str) -> int:
        record_id = self._next_ids[resource]
        self._next_ids[resource] = record_id + 1
        return record_id

    def _render(self, resource: str, record: Record) -> Record:
        spec = self.resources[resource]
        out = {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}
        out["created_at"] = record.get("_created_text") or self.timestamp(record["_created"])
        out["updated_at"] = record.get("_updated_text") or self.timestamp(record["_updated"])
        return spec.render(self, out) if spec.render else out
