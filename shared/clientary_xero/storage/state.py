"""The State table: runs and step checkpoints, poll cursors, id links, lease locks.

Structured payloads (trigger records, step inputs and outputs, workflow snapshots) are stored as
JSON strings: DynamoDB numbers would otherwise come back as ``Decimal`` and floats would need
converting on the way in. Keys and statuses stay native attributes so conditions can use them.

DynamoDB refuses items over 400 KB. With a payload bucket configured (``storage/payloads.py``), a
run whose item would not fit has its biggest payloads (the record first) put in S3 and the item
holds ``<attribute>_ref``; a step's input, output or error over ``OFFLOAD_BYTES`` goes there too.
Reads load them back: ``get_run``, ``list_runs``, ``get_step(s)`` return whole runs and steps.

Round trips (issue 8): a step execution reads its run and steps with one Query
(``get_run_and_steps``: they share the partition key); a step's claim and its checkpoint carry the
run's update (``RunChange``) in one ``TransactWriteItems``, and fall back to the two writes one
after the other when the transaction is refused (the step changed since it was read, a concurrent
write); ``update_runs`` marks a poll page's runs in transactions of 100. A transactional write
costs DynamoDB twice the write units of a plain one: fewer requests, not fewer units. A step
message may carry its run, stamped with the run's ``rev`` (``run_revision``); then the claim is the
step's first round trip (``claim_step``'s ``run_rev``). The rate budget's slot releases ride along
with a checkpoint's transaction (``finish_step``'s ``also``).

An id link's lock lives on the link item (``lock_link``): taking it is one conditional write that
returns the link as it was (or, when the link already holds what the caller would write, takes
no lock and is the read of the unchanged link), and the link is written with the lock given up
in one more write, which rides along with the step's checkpoint. A new contact's link costs two
requests' worth in one: the lock, and a share of the checkpoint (before: read, lock, re-read,
write, unlock). Locks of the token refresh and the like stay ``LOCK#`` items (``acquire_lock``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from clientary_xero.errors import Conflict, LockBusy, PermanentError, RetryableError
from clientary_xero.settings import get_settings
from clientary_xero.storage.aws import error_code, table
from clientary_xero.storage.payloads import PayloadStore

Clock = Callable[[], float]

# A link lock's lease: the action functions' timeout (60 s), so a holder cannot outlive its lease
# (a Lambda that dies holding it frees it when the lease ends, not never).
LINK_LOCK_SECONDS = 60
# How long a writer waits in-process for a link lock before giving up with LockBusy (a create
# takes one or two Xero calls; the step's retry is a wait, not an attempt).
LINK_LOCK_WAIT_SECONDS = 5.0

_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "TransactionConflictException",
}

RUN_FIELDS_JSON = ("record", "workflow", "trigger_meta", "decisions", "error")
STEP_FIELDS_JSON = ("input", "output", "error")

# DynamoDB refuses an item over 400 KB (attribute names and values, UTF-8). A run item grows after
# creation (status, error, decisions, a parked reason), so creation keeps some room for that.
MAX_ITEM_BYTES = 400 * 1024
RUN_ITEM_HEADROOM = 16 * 1024
# A payload written by an update (a step's input/output, a run's record) goes to S3 above this size:
# an update cannot see how big the rest of the item is.
OFFLOAD_BYTES = 64 * 1024
# TransactWriteItems takes at most 100 items.
TRANSACTION_ITEMS = 100


@dataclass(frozen=True)
class RunChange:
    """An update of a run item that rides along with a step's write (one transaction).

    Every update of a run drops its ``rev`` (the revision a step message may carry, see
    ``run_revision``) unless it sets a new one in ``fields`` or ``keep_rev`` says it changes
    nothing a message carries."""

    fields: dict[str, Any]
    expect_status: str | list[str] | None = None
    remove: tuple[str, ...] = ()
    # More update_item arguments of this table in the same transaction (``update_run``'s ``also``).
    also: tuple[dict[str, Any], ...] = ()
    keep_rev: bool = False


# The most a step message carries of its run (engine/runner.py): SendMessageBatch takes 256 KB for
# its 10 messages.
CARRY_BYTES = 20_000


def run_revision(content: Any) -> str:
    """The ``rev`` of a run whose state a step message carries: a digest of that content (JSON).

    The writer stores it on the run with the write that made the content true; the receiver's
    claim checks the run still has the digest of what the message says (``claim_step``'s
    ``run_rev``), so a message is trusted only for exactly what its writer wrote, and only while
    nothing else has written the run since."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ConditionFailed(Conflict):
    """A conditional write refused, asked to return the item as it stands
    (``ReturnValuesOnConditionCheckFailure=ALL_OLD``): ``item``, None when there is none. The
    caller learns why without a read."""

    def __init__(self, message: str, item: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.item = item


class TransactionConflict(RetryableError):
    """A write met another request's transaction on the same item (nothing was written): it may
    be sent again at once (storage/ratelimit.py does, for the budget item the checkpoints'
    transactions also touch)."""


class ItemTooLarge(PermanentError):
    """A run item would not fit in DynamoDB's 400 KB item limit. ``sizes`` are bytes per attribute."""

    def __init__(self, message: str, *, size: int, sizes: dict[str, int]) -> None:
        super().__init__(message, service="dynamodb")
        self.size = size
        self.sizes = sizes


def item_sizes(item: dict[str, Any]) -> dict[str, int]:
    """About what DynamoDB counts for each attribute: its name plus its value's UTF-8 bytes."""
    sizes: dict[str, int] = {}
    for key, value in item.items():
        if isinstance(value, str):
            size = len(value.encode("utf-8"))
        elif isinstance(value, bool) or value is None:
            size = 1
        else:
            size = len(str(value).encode("utf-8"))
        sizes[key] = len(key.encode("utf-8")) + size
    return sizes


def _payload_key(prefix: str, name: str, text: str) -> str:
    """Named by content: a duplicate delivery's put (before its conditional write loses) can never
    change what an existing run's ref points at."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{prefix}/{name}-{digest}.json"


def kilobytes(size: int) -> str:
    return f"{(size + 1023) // 1024} KB"


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _encode(item: dict[str, Any], json_fields: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if value is None:
            continue
        out[key] = _dump(value) if key in json_fields else value
    return out


def _decode(item: dict[str, Any] | None, json_fields: tuple[str, ...]) -> dict[str, Any] | None:
    if item is None:
        return None
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key in json_fields and isinstance(value, str):
            out[key] = json.loads(value)
        elif hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
            out[key] = int(value) if value == int(value) else float(value)  # Decimal from DynamoDB
        else:
            out[key] = value
    return out


class StateStore:
    def __init__(
        self,
        table_name: str | None = None,
        *,
        clock: Clock = time.time,
        retention_days: int | None = None,
        payloads: PayloadStore | None = None,
    ) -> None:
        settings = get_settings()
        self.table_name = table_name or settings.state_table
        self.clock = clock
        self.retention_days = retention_days if retention_days is not None else settings.run_retention_days
        self.payloads = payloads or PayloadStore()

    # ------------------------------------------------------ large payloads (S3)
    def _offload_to_fit(self, item: dict[str, Any], json_fields: tuple[str, ...], prefix: str) -> None:
        """Move the biggest JSON attributes to the payload bucket until the item fits (in place)."""
        if not self.payloads.enabled:
            return
        sizes = item_sizes(item)
        total = sum(sizes.values())
        for name in sorted((f for f in json_fields if isinstance(item.get(f), str)), key=lambda f: -sizes[f]):
            if total <= MAX_ITEM_BYTES - RUN_ITEM_HEADROOM:
                return
            text = item.pop(name)
            ref = self.payloads.put(_payload_key(prefix, name, text), text)
            item[f"{name}_ref"] = ref
            total += item_sizes({f"{name}_ref": ref})[f"{name}_ref"] - sizes[name]

    def _payload_update(
        self, fields: dict[str, Any], json_fields: tuple[str, ...], prefix: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Fields of an update with big JSON texts replaced by S3 refs; and what to REMOVE (the
        inline copy of an offloaded field, the stale ref of one written inline)."""
        out: dict[str, Any] = {}
        remove: list[str] = []
        for key, value in fields.items():
            if key in json_fields and isinstance(value, str):
                if self.payloads.enabled and len(value.encode("utf-8")) > OFFLOAD_BYTES:
                    out[f"{key}_ref"] = self.payloads.put(_payload_key(prefix, key, value), value)
                    remove.append(key)
                    continue
                remove.append(f"{key}_ref")
            out[key] = value
        return out, remove

    def _load(self, item: dict[str, Any] | None, json_fields: tuple[str, ...]) -> dict[str, Any] | None:
        """A stored item with its offloaded payloads loaded back, decoded (an inline copy wins)."""
        if item is None:
            return None
        for name in json_fields:
            ref = item.pop(f"{name}_ref", None)
            if ref and name not in item:
                item[name] = self.payloads.get(str(ref))
        return _strip(_decode(item, json_fields))

    @property
    def _t(self) -> Any:
        return table(self.table_name)

    def _ttl(self) -> int:
        return int(self.clock()) + self.retention_days * 86400

    def _call(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                if kwargs.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                    raw = (getattr(exc, "response", None) or {}).get("Item")
                    raise ConditionFailed(code, _from_wire(raw) if raw else None) from None
                raise Conflict(code) from None
            if code == "TransactionConflictException":
                raise TransactionConflict(f"DynamoDB is busy ({code})", delay_seconds=5) from None
            if code in _THROTTLED:
                raise RetryableError(f"DynamoDB is busy ({code})", delay_seconds=5) from None
            if code == "ValidationException" and "size" in str(exc).lower():
                # "Item size has exceeded the maximum allowed size": our estimate missed it.
                raise ItemTooLarge(
                    f"DynamoDB refused the item as over its 400 KB item limit ({code})", size=0, sizes={}
                ) from None
            raise

    def _transact(self, updates: list[dict[str, Any]]) -> list[str] | None:
        """Several ``update_item``s of this table as one ``TransactWriteItems``: all or none, one
        round trip. None when done; else the cancellation code of each update ("None" for those
        that were fine, "ConditionalCheckFailed", "TransactionConflict", …)."""
        # The resource's client serializes the values itself (boto3's DynamoDB transformation), as
        # the table's calls do.
        fields = (
            "Key",
            "UpdateExpression",
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        )
        items = [
            {
                u.get("Operation", "Update"): {
                    "TableName": u.get("TableName", self.table_name),
                    **{f: u[f] for f in fields if u.get(f)},
                }
            }
            for u in updates
        ]
        try:
            self._call(self._t.meta.client.transact_write_items, TransactItems=items)
        except Exception as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
            return [str(r.get("Code", "None")) for r in reasons] or ["Unknown"] * len(updates)
        return None

    # ---------------------------------------------------------------- runs
    def create_run(self, run: dict[str, Any]) -> bool:
        """Put a run if its id is new. Returns False when it already exists (the dedupe).

        Raises ``ItemTooLarge`` (permanent, before any call) when the item would not fit DynamoDB's
        400 KB limit with room to grow: the intake then stores a compacted run that says so."""
        item = _encode(run, RUN_FIELDS_JSON)
        item.update(
            pk=f"RUN#{run['run_id']}",
            sk="RUN",
            gsi1pk="RUNS",
            gsi1sk=f"{run['created_at']}#{run['run_id']}",
            ttl=self._ttl(),
        )
        self._offload_to_fit(item, RUN_FIELDS_JSON, f"runs/{run['run_id']}")
        sizes = item_sizes(item)
        size = sum(sizes.values())
        if size > MAX_ITEM_BYTES - RUN_ITEM_HEADROOM:
            biggest = max(sizes, key=lambda k: sizes[k])
            raise ItemTooLarge(
                f"the {biggest} is {kilobytes(sizes[biggest])} (the run item {kilobytes(size)}), over "
                f"DynamoDB's 400 KB item limit",
                size=size,
                sizes=sizes,
            )
        try:
            self._call(self._t.put_item, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except Conflict:
            return False
        return True

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        response = self._call(self._t.get_item, Key={"pk": f"RUN#{run_id}", "sk": "RUN"}, ConsistentRead=True)
        return self._load(response.get("Item"), RUN_FIELDS_JSON)

    def get_run_and_steps(self, run_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The run and its steps with one strongly consistent Query (they share the partition key):
        what a step execution needs, in one round trip instead of a GetItem and a Query."""
        run: dict[str, Any] | None = None
        steps: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": f"RUN#{run_id}"},
            "ConsistentRead": True,
        }
        while True:  # a page holds 1 MB: a run with many big steps takes several
            response = self._call(self._t.query, **kwargs)
            for item in response.get("Items", []):
                if item.get("sk") == "RUN":
                    run = self._load(item, RUN_FIELDS_JSON)
                elif str(item.get("sk", "")).startswith("STEP#"):
                    step = self._load(item, STEP_FIELDS_JSON)
                    if step:
                        steps.append(step)
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return run, sorted(steps, key=lambda s: (s.get("seq", 0), s.get("started_at", 0)))

    def update_run(
        self,
        run_id: str,
        fields: dict[str, Any],
        *,
        expect_status: str | list[str] | None = None,
        remove: tuple[str, ...] = (),
        also: list[dict[str, Any]] | None = None,
    ) -> None:
        """``also``: more ``update_item`` arguments of this table written in the same transaction
        (a FAILED run's notice, storage/notices.py); refused for another reason than the run's
        condition (a concurrent write to one of them), the run's update goes alone, then each."""
        update = self._run_update(run_id, RunChange(fields, expect_status, remove))
        if not also:
            self._call(self._t.update_item, **update)
            return
        refused = self._transact([update, *also])
        if refused is None:
            return
        if refused[0] == "ConditionalCheckFailed":
            raise Conflict(f"run {run_id}: its update's condition failed")
        self._call(self._t.update_item, **update)
        for other in also:
            self._call(self._t.update_item, **other)

    def update_runs(self, changes: list[tuple[str, RunChange]]) -> list[tuple[str, Exception]]:
        """Several runs' updates (a poll page's "enqueued" marks): one ``TransactWriteItems`` per
        100, and one by one for a transaction that is refused (a run written meanwhile by its first
        step, a condition). Returns the runs whose update failed, with the error; never raises."""
        failed: list[tuple[str, Exception]] = []
        for start in range(0, len(changes), TRANSACTION_ITEMS):
            chunk = changes[start : start + TRANSACTION_ITEMS]
            if len(chunk) > 1:
                try:
                    if self._transact([self._run_update(rid, change) for rid, change in chunk]) is None:
                        continue
                except Exception:  # noqa: S110 - made one by one below, each failure reported
                    pass
            for run_id, change in chunk:
                try:
                    self._call(self._t.update_item, **self._run_update(run_id, change))
                except Exception as exc:
                    failed.append((run_id, exc))
        return failed

    def _run_update(self, run_id: str, change: RunChange) -> dict[str, Any]:
        """``update_item``'s arguments for ``update_run``."""
        fields, expect_status, remove = change.fields, change.expect_status, change.remove
        if "rev" not in fields and not change.keep_rev:
            remove = (*remove, "rev")  # what a message carried of the run is stale from here
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets: list[str] = []
        dumped = {key: _dump(value) if key in RUN_FIELDS_JSON else value for key, value in fields.items()}
        dumped, removed = self._payload_update(dumped, RUN_FIELDS_JSON, f"runs/{run_id}")
        remove = tuple(
            dict.fromkeys([*remove, *removed, *(f"{k}_ref" for k in remove if k in RUN_FIELDS_JSON)])
        )
        for i, (key, value) in enumerate(dumped.items()):
            names[f"#f{i}"] = key
            values[f":v{i}"] = value
            sets.append(f"#f{i} = :v{i}")
        expression = "SET " + ", ".join(sets)
        if remove:
            for j, key in enumerate(remove):
                names[f"#r{j}"] = key
            expression += " REMOVE " + ", ".join(f"#r{j}" for j in range(len(remove)))
        condition = "attribute_exists(pk)"
        if expect_status is not None:
            statuses = [expect_status] if isinstance(expect_status, str) else expect_status
            names["#status"] = "status"
            for j, status in enumerate(statuses):
                values[f":s{j}"] = status
            condition += " AND #status IN (" + ", ".join(f":s{j}" for j in range(len(statuses))) + ")"
        return {
            "Key": {"pk": f"RUN#{run_id}", "sk": "RUN"},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def list_runs(self, *, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        runs: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": "RUNS"},
            "ScanIndexForward": False,
        }
        while True:
            response = self._call(self._t.query, **kwargs)
            for item in response.get("Items", []):
                if status is not None and item.get("status") != status:
                    continue
                run = self._load(item, RUN_FIELDS_JSON)
                if run:
                    runs.append(run)
                    if len(runs) >= limit:
                        return runs
            if "LastEvaluatedKey" not in response:
                return runs
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # --------------------------------------------------------------- steps
    def get_step(self, run_id: str, step_id: str) -> dict[str, Any] | None:
        response = self._call(
            self._t.get_item, Key={"pk": f"RUN#{run_id}", "sk": f"STEP#{step_id}"}, ConsistentRead=True
        )
        return self._load(response.get("Item"), STEP_FIELDS_JSON)

    def get_steps(self, run_id: str) -> list[dict[str, Any]]:
        response = self._call(
            self._t.query,
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={":p": f"RUN#{run_id}", ":s": "STEP#"},
            ConsistentRead=True,
        )
        steps = [self._load(item, STEP_FIELDS_JSON) for item in response.get("Items", [])]
        return sorted((s for s in steps if s), key=lambda s: (s.get("seq", 0), s.get("started_at", 0)))

    def claim_step(
        self,
        run_id: str,
        step_id: str,
        *,
        owner: str,
        lease_seconds: int,
        seq: int,
        start_run: RunChange | None = None,
        attempts_before: int = 0,
        run_rev: str | None = None,
    ) -> dict[str, Any]:
        """Take the step's lease and count an attempt.

        Raises ``Conflict`` when the step already succeeded and ``LockBusy`` while another worker's
        lease is live. Returns the step item after the update (with ``start_run``: its attempts).

        ``start_run``: the run's update that goes with the claim (QUEUED → RUNNING), written in the
        same transaction, provided the step still has ``attempts_before`` attempts (what the caller
        read: so the attempt number is known without reading the item back). If the step changed
        since, or the transaction meets a concurrent write, the claim and the run's update are made
        one after the other, as without ``start_run``.

        ``run_rev``: the claim of a step whose message carries its run (``run_revision`` of what it
        carries): made only if the step was never claimed and the run still has that ``rev``, in
        one transaction (with ``start_run``); ``Conflict`` otherwise, and nothing is written (the
        caller reads the run and claims as without it)."""
        now = self.clock()
        claim = self._claim_update(
            run_id, step_id, owner=owner, lease_seconds=lease_seconds, seq=seq, now=now
        )
        if run_rev is not None:
            claim["ConditionExpression"] = (
                f"({claim['ConditionExpression']}) AND attribute_not_exists(attempts)"
            )
            if start_run is not None:
                check = self._run_update(run_id, start_run)
                check["ConditionExpression"] += " AND #rev = :rev"
            else:
                check = {
                    "Operation": "ConditionCheck",
                    "Key": {"pk": f"RUN#{run_id}", "sk": "RUN"},
                    "ConditionExpression": "#rev = :rev",
                    "ExpressionAttributeNames": {},
                    "ExpressionAttributeValues": {},
                }
            check["ExpressionAttributeNames"]["#rev"] = "rev"
            check["ExpressionAttributeValues"][":rev"] = run_rev
            if self._transact([claim, check]) is not None:
                raise Conflict("the run changed since its message was sent, or the step was claimed")
            return {"run_id": run_id, "step_id": step_id, "status": "RUNNING", "attempts": 1}
        if start_run is not None:
            claim["ConditionExpression"] = f"({claim['ConditionExpression']}) AND " + (
                "(attribute_not_exists(attempts) OR attempts = :before)"
                if attempts_before == 0
                else "attempts = :before"
            )
            claim["ExpressionAttributeValues"][":before"] = attempts_before
            if self._transact([claim, self._run_update(run_id, start_run)]) is None:
                return {
                    "run_id": run_id,
                    "step_id": step_id,
                    "status": "RUNNING",
                    "attempts": attempts_before + 1,
                }
        claimed = self._claim(run_id, step_id, lease_seconds=lease_seconds, seq=seq, owner=owner, now=now)
        if start_run is not None:
            self.update_run(
                run_id, start_run.fields, expect_status=start_run.expect_status, remove=start_run.remove
            )
        return claimed

    def _claim(
        self, run_id: str, step_id: str, *, owner: str, lease_seconds: int, seq: int, now: float
    ) -> dict[str, Any]:
        try:
            response = self._call(
                self._t.update_item,
                **self._claim_update(
                    run_id, step_id, owner=owner, lease_seconds=lease_seconds, seq=seq, now=now
                ),
                ReturnValues="ALL_NEW",
            )
        except Conflict:
            current = self.get_step(run_id, step_id)
            if current and current.get("status") == "SUCCEEDED":
                raise Conflict("step already succeeded") from None
            # Retry once the holder's lease has ended: it has finished (or died) by then.
            until = int((current or {}).get("lease_until") or 0)
            raise LockBusy(f"step {run_id}/{step_id}", delay_seconds=max(1, until - int(now) + 1)) from None
        return self._load(response["Attributes"], STEP_FIELDS_JSON) or {}

    def _claim_update(
        self, run_id: str, step_id: str, *, owner: str, lease_seconds: int, seq: int, now: float
    ) -> dict[str, Any]:
        """``update_item``'s arguments for a claim."""
        return {
            "Key": {"pk": f"RUN#{run_id}", "sk": f"STEP#{step_id}"},
            "UpdateExpression": (
                "SET #status = :running, lease_owner = :owner, lease_until = :until, "
                "attempts = if_not_exists(attempts, :zero) + :one, "
                "started_at = if_not_exists(started_at, :now), "
                "updated_at = :now, step_id = :step, run_id = :run, seq = :seq, #ttl = :ttl"
            ),
            "ConditionExpression": (
                "attribute_not_exists(pk) OR (#status <> :succeeded AND "
                "(attribute_not_exists(lease_until) OR lease_until < :nowi))"
            ),
            "ExpressionAttributeNames": {"#status": "status", "#ttl": "ttl"},
            "ExpressionAttributeValues": {
                ":running": "RUNNING",
                ":owner": owner,
                ":until": int(now) + lease_seconds,
                ":zero": 0,
                ":one": 1,
                ":now": int(now),
                ":nowi": int(now),
                ":succeeded": "SUCCEEDED",
                ":step": step_id,
                ":run": run_id,
                ":seq": seq,
                ":ttl": self._ttl(),
            },
        }

    def finish_step(
        self,
        run_id: str,
        step_id: str,
        *,
        owner: str,
        status: str,
        input: Any = None,
        output: Any = None,
        error: Any = None,
        then_run: RunChange | None = None,
        also: Sequence[dict[str, Any]] = (),
    ) -> bool:
        """Checkpoint a step; only the lease owner may (``Conflict`` otherwise). ``status`` is
        SUCCEEDED, FAILED or RETRYING.

        ``then_run``: the run's update that follows the checkpoint (the next step, or SUCCEEDED),
        written in the same transaction; if that meets a concurrent write or the run's condition,
        the two are made one after the other, as without ``then_run``.

        ``also``: more updates for the same transaction that may be left out (the rate budget's
        slot releases, storage/ratelimit.py ``held_slots``). Returns True when they were written,
        False when the checkpoint was made without them (the caller then writes them itself)."""
        update = self._finish_update(
            run_id, step_id, owner=owner, status=status, input=input, output=output, error=error
        )
        # The run's change and what goes with it (a failure's notice, storage/notices.py) first;
        # then the optional extras.
        run_part = [self._run_update(run_id, then_run), *then_run.also] if then_run is not None else []
        extra = run_part + list(also)
        if extra:
            try:
                refused = self._transact([update, *extra])
            except Exception:
                if not also:
                    raise
                # Whatever the extras did to the transaction, the checkpoint goes without them.
                return self.finish_step(
                    run_id,
                    step_id,
                    owner=owner,
                    status=status,
                    input=input,
                    output=output,
                    error=error,
                    then_run=then_run,
                )
            if refused is None:
                return bool(also)
            if refused[0] == "ConditionalCheckFailed":
                raise Conflict("the step's lease is another worker's")
        self._call(self._t.update_item, **update)
        if then_run is not None:
            self.update_run(
                run_id,
                then_run.fields,
                expect_status=then_run.expect_status,
                remove=then_run.remove,
                also=list(then_run.also),
            )
        return False

    def _finish_update(
        self,
        run_id: str,
        step_id: str,
        *,
        owner: str,
        status: str,
        input: Any,
        output: Any,
        error: Any,
    ) -> dict[str, Any]:
        """``update_item``'s arguments for ``finish_step``."""
        fields: dict[str, Any] = {"status": status, "updated_at": int(self.clock())}
        if input is not None:
            fields["input"] = _dump(input)
        if output is not None:
            fields["output"] = _dump(output)
        if error is not None:
            fields["error"] = _dump(error)
        if status in ("SUCCEEDED", "FAILED"):
            fields["finished_at"] = int(self.clock())
        fields, removed = self._payload_update(fields, STEP_FIELDS_JSON, f"runs/{run_id}/steps/{step_id}")
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": v for i, v in enumerate(fields.values())}
        values[":owner"] = owner
        drop = ["lease_until"] if status != "RUNNING" else []
        if status == "SUCCEEDED":
            drop += ["error", "error_ref"]
        drop = list(dict.fromkeys([*drop, *removed]))
        names.update({f"#d{j}": name for j, name in enumerate(drop)})
        remove = (" REMOVE " + ", ".join(f"#d{j}" for j in range(len(drop)))) if drop else ""
        return {
            "Key": {"pk": f"RUN#{run_id}", "sk": f"STEP#{step_id}"},
            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))) + remove,
            "ConditionExpression": "lease_owner = :owner",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def reset_step(self, run_id: str, step_id: str) -> None:
        """Make a FAILED step runnable again (replay). A SUCCEEDED step is never reset.

        ``attempts`` keeps counting: the replayed execution is attempt > 1, so actions look for what
        the failed execution may have made (a write whose answer was lost) before writing again.

        Nor is a step whose lease is live (``Conflict``): a replay working from a stale read of the
        run (two redriven copies of one message at once) would take the lease from the worker that
        runs the replayed step now, losing its checkpoint or letting a copy run it a second time.
        """
        self._call(
            self._t.update_item,
            Key={"pk": f"RUN#{run_id}", "sk": f"STEP#{step_id}"},
            UpdateExpression="SET #status = :pending REMOVE lease_until, lease_owner",
            ConditionExpression=(
                "attribute_exists(pk) AND #status <> :succeeded "
                "AND (attribute_not_exists(lease_until) OR lease_until < :now)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pending": "PENDING",
                ":succeeded": "SUCCEEDED",
                ":now": int(self.clock()),
            },
        )

    # ------------------------------------------------------------- cursors
    def get_cursor(self, name: str) -> dict[str, Any] | None:
        response = self._call(
            self._t.get_item, Key={"pk": f"CURSOR#{name}", "sk": "CURSOR"}, ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        cursor = json.loads(item["cursor"])
        cursor["_version"] = int(item.get("version", 0))
        return cursor

    def put_cursor(self, name: str, cursor: dict[str, Any]) -> None:
        """Write a cursor read by ``get_cursor``; raises ``Conflict`` if another poll moved it meanwhile."""
        version = int(cursor.get("_version", 0))
        body = {k: v for k, v in cursor.items() if k != "_version"}
        condition = "attribute_not_exists(pk)" if version == 0 else "version = :expected"
        values: dict[str, Any] = {":c": _dump(body), ":v": version + 1, ":now": int(self.clock())}
        if version:
            values[":expected"] = version
        self._call(
            self._t.update_item,
            Key={"pk": f"CURSOR#{name}", "sk": "CURSOR"},
            UpdateExpression="SET #c = :c, version = :v, updated_at = :now",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#c": "cursor"},
            ExpressionAttributeValues=values,
        )

    # --------------------------------------------------------------- links
    def get_link(self, kind: str, source_id: str) -> dict[str, Any] | None:
        response = self._call(self._t.get_item, Key=_link_key(kind, source_id), ConsistentRead=True)
        item = response.get("Item")
        # An item holding only a lock (a writer creating the record right now) is no link yet.
        return json.loads(item["target"]) if item and "target" in item else None

    def put_link(self, kind: str, source_id: str, target: dict[str, Any]) -> None:
        self._call(
            self._t.put_item,
            Item={
                **_link_key(kind, source_id),
                "kind": kind,
                "source_id": source_id,
                "target": _dump(target),
                "updated_at": int(self.clock()),
            },
        )

    def delete_link(self, kind: str, source_id: str) -> None:
        self._call(self._t.delete_item, Key=_link_key(kind, source_id))

    @contextlib.contextmanager
    def lock_link(
        self,
        kind: str,
        source_id: str,
        *,
        unless: str | None = None,
        wait_seconds: float | None = None,
        poll_seconds: float = 0.1,
    ) -> Iterator[LinkHold]:
        """Hold the lease lock of one link key while finding, creating and linking its record.

        Two writers of the same source record (two invoices of one client at once) would otherwise
        both find nothing and both create. The lock is held **on the link item itself**
        (``lock_owner``, ``lock_until_ms``: a lease of ``LINK_LOCK_SECONDS``), so one conditional
        write takes it and returns the link as it was (``LinkHold.link``: the re-read under the
        lock costs nothing), and ``LinkHold.write`` writes the link and gives the lock up in one
        write (riding along with the step's checkpoint when there is one:
        storage/ratelimit.py ``slots_ride_along``). Leaving the block without ``write`` gives the
        lock up (a write). A holder that dies leaves its lease, which ends on its own.

        ``unless``: the link's ``version`` (what the caller would write) — when the link already
        holds it, no lock is taken and the hold says ``unchanged`` (its ``link`` is the current
        one): the same single request serves as the read of an unchanged link.

        Waits up to ``wait_seconds`` for another holder, then raises ``LockBusy`` (retryable: the
        step waits and comes back). Polls back off (doubling, at most 1 s apart): a holder writing
        a batch of contacts holds for seconds, and each poll is a DynamoDB write."""
        name = f"link#{kind}#{source_id}"
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + (LINK_LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds)
        pause = poll_seconds
        while True:
            taken, item = self._claim_link(kind, source_id, owner, unless)
            link = json.loads(item["target"]) if item and "target" in item else None
            if taken:
                break
            if unless is not None and item and item.get("version") == unless and link is not None:
                yield LinkHold(
                    self, kind, source_id, owner, link, unchanged=True, version=unless, found=item["target"]
                )
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockBusy(name, delay_seconds=2)
            time.sleep(min(pause, left))
            pause = min(pause * 2, max(poll_seconds, 1.0))
        hold = LinkHold(self, kind, source_id, owner, link)
        try:
            yield hold
        finally:
            if not hold.written:
                self.release_link_lock(kind, source_id, owner, empty=link is None)

    def take_link_lock(self, kind: str, source_id: str, owner: str) -> bool:
        """Take a link key's lock for ``owner`` (as ``lock_link`` does; tests and tools). False
        while another holder's lease lasts."""
        taken, _ = self._claim_link(kind, source_id, owner, None)
        return taken

    def release_link_lock(self, kind: str, source_id: str, owner: str, *, empty: bool = False) -> None:
        """Give up ``owner``'s lock of a link key, leaving the link as it is. ``empty``: there was
        no link when the lock was taken; an item that still holds only the lock is deleted."""
        if empty:
            with contextlib.suppress(Conflict):  # a link was written meanwhile, or the lock is not ours
                self._call(
                    self._t.delete_item,
                    Key=_link_key(kind, source_id),
                    ConditionExpression="lock_owner = :o AND attribute_not_exists(#t)",
                    ExpressionAttributeNames={"#t": "target"},
                    ExpressionAttributeValues={":o": owner},
                )
                return
        # Conflict: the lease expired and someone else took it; nothing of ours to release.
        with contextlib.suppress(Conflict):
            self._call(
                self._t.update_item,
                Key=_link_key(kind, source_id),
                UpdateExpression="REMOVE lock_owner, lock_until_ms",
                ConditionExpression="lock_owner = :o",
                ExpressionAttributeValues={":o": owner},
            )

    def _claim_link(
        self, kind: str, source_id: str, owner: str, unless: str | None
    ) -> tuple[bool, dict[str, Any] | None]:
        """One conditional write: take the lock if it is free (or expired, or ours), unless the
        link holds ``unless``. Returns (taken, the item as it was before)."""
        now_ms = int(self.clock() * 1000)
        condition = "(attribute_not_exists(lock_until_ms) OR lock_until_ms < :now OR lock_owner = :o)"
        values: dict[str, Any] = {
            ":o": owner,
            ":now": now_ms,
            ":until": now_ms + LINK_LOCK_SECONDS * 1000,
            ":k": kind,
            ":s": source_id,
        }
        if unless is not None:
            condition += " AND (attribute_not_exists(#v) OR #v <> :v)"
            values[":v"] = unless
        try:
            response = self._call(
                self._t.update_item,
                Key=_link_key(kind, source_id),
                UpdateExpression="SET lock_owner = :o, lock_until_ms = :until, #k = :k, #s = :s",
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    "#k": "kind",
                    "#s": "source_id",
                    **({"#v": "version"} if unless else {}),
                },
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as refused:
            return False, refused.item
        return True, response.get("Attributes") or None

    def _link_write(self, hold: LinkHold, target: dict[str, Any], version: str | None) -> dict[str, Any]:
        """``update_item``'s arguments: the link written and the holder's lock given up, if the
        lock is still the holder's."""
        names = {"#t": "target", "#k": "kind", "#s": "source_id", "#u": "updated_at"}
        values: dict[str, Any] = {
            ":t": _dump(target),
            ":k": hold.kind,
            ":s": hold.source_id,
            ":u": int(self.clock()),
            ":o": hold.owner,
        }
        sets = "#t = :t, #k = :k, #s = :s, #u = :u"
        if version is not None:
            names["#v"] = "version"
            values[":v"] = version
            sets += ", #v = :v"
        return {
            "TableName": self.table_name,
            "Key": _link_key(hold.kind, hold.source_id),
            "UpdateExpression": f"SET {sets} REMOVE lock_owner, lock_until_ms",
            "ConditionExpression": "lock_owner = :o",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def amend_link(self, hold: LinkHold, target: dict[str, Any]) -> bool:
        """Rewrite an unchanged link's target (a detail added to what it holds: the hash of the
        rendered input that matched it) without its lock: only while the link is still exactly as
        the hold found it (target and version) and nobody holds its lock, else nothing (the next
        writer writes it anyway). One write, by itself (a refusal must not fail a step's
        checkpoint). True when written."""
        try:
            self._call(
                self._t.update_item,
                Key=_link_key(hold.kind, hold.source_id),
                UpdateExpression="SET #t = :t",
                ConditionExpression=(
                    "#t = :found AND #v = :v"
                    " AND (attribute_not_exists(lock_until_ms) OR lock_until_ms < :now)"
                ),
                ExpressionAttributeNames={"#t": "target", "#v": "version"},
                ExpressionAttributeValues={
                    ":t": _dump(target),
                    ":found": hold.found,
                    ":v": hold.version,
                    ":now": int(self.clock() * 1000),
                },
            )
        except Conflict:
            return False
        return True

    def _write_link_now(self, update: dict[str, Any]) -> None:
        """The link write by itself. If the lock is no longer ours (a lease that ran out: not
        within one function run), the link is still written (it names what Xero has), and the
        other holder's lock is left alone."""
        arguments = {k: v for k, v in update.items() if k != "TableName"}
        try:
            self._call(self._t.update_item, **arguments)
        except Conflict:
            values = {k: v for k, v in arguments["ExpressionAttributeValues"].items() if k != ":o"}
            self._call(
                self._t.update_item,
                Key=arguments["Key"],
                UpdateExpression=arguments["UpdateExpression"].split(" REMOVE ")[0],
                ExpressionAttributeNames=arguments["ExpressionAttributeNames"],
                ExpressionAttributeValues=values,
            )

    # --------------------------------------------------------------- locks
    def acquire_lock(self, name: str, owner: str, lease_seconds: float) -> bool:
        """Take a lease if it is free or expired. Returns False while someone else holds it."""
        now = self.clock()
        try:
            self._call(
                self._t.put_item,
                Item={
                    "pk": f"LOCK#{name}",
                    "sk": "LOCK",
                    "owner": owner,
                    "lease_until_ms": int((now + lease_seconds) * 1000),
                    "ttl": int(now + lease_seconds) + 3600,
                },
                ConditionExpression="attribute_not_exists(pk) OR lease_until_ms < :now OR #o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": int(now * 1000), ":owner": owner},
            )
        except Conflict:
            return False
        return True

    def release_lock(self, name: str, owner: str) -> None:
        # Conflict: the lease expired and someone else took it; nothing of ours to release.
        with contextlib.suppress(Conflict):
            self._call(
                self._t.delete_item,
                Key={"pk": f"LOCK#{name}", "sk": "LOCK"},
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": owner},
            )

    # -------------------------------------------------------- generic items
    def put_item_if_absent(self, pk: str, sk: str, attributes: dict[str, Any], ttl_seconds: int) -> bool:
        """Conditional put for one-shot records (OAuth state, dedupe markers). False if it exists."""
        item = {"pk": pk, "sk": sk, "ttl": int(self.clock()) + ttl_seconds, "data": _dump(attributes)}
        try:
            self._call(self._t.put_item, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except Conflict:
            return False
        return True

    def take_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        """Delete and return a one-shot record, or None if absent or expired (TTL is lazy, so check it)."""
        try:
            response = self._call(
                self._t.delete_item,
                Key={"pk": pk, "sk": sk},
                ReturnValues="ALL_OLD",
                ConditionExpression="attribute_exists(pk)",
            )
        except Conflict:
            return None
        item = response.get("Attributes")
        if not item or int(item.get("ttl", 0)) < self.clock():
            return None
        return json.loads(item["data"])

    # ------------------------------------ rate budgets, waiting steps, parked runs (issue #3)
    # Used by storage/ratelimit.py (the shared Xero budget) and engine/runner.py (parking).
    def get_raw(self, key: dict[str, str]) -> dict[str, Any] | None:
        """One item as stored (strongly consistent), or None."""
        item: dict[str, Any] | None = self._call(self._t.get_item, Key=key, ConsistentRead=True).get("Item")
        return item

    def update_raw(self, key: dict[str, str], **kwargs: Any) -> Any:
        """``update_item`` with the store's error translation (``Conflict``, ``RetryableError``)."""
        return self._call(self._t.update_item, Key=key, **kwargs)

    def wait_step(
        self, run_id: str, step_id: str, *, owner: str, input: Any = None, error: Any = None
    ) -> None:
        """The step did not run because of a rate limit: status WAITING, and the attempt is refunded."""
        fields: dict[str, Any] = {"status": "WAITING", "updated_at": int(self.clock())}
        if input is not None:
            fields["input"] = _dump(input)
        if error is not None:
            fields["error"] = _dump(error)
        fields, removed = self._payload_update(fields, STEP_FIELDS_JSON, f"runs/{run_id}/steps/{step_id}")
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        names.update({f"#d{j}": name for j, name in enumerate(removed)})
        values: dict[str, Any] = {f":v{i}": v for i, v in enumerate(fields.values())}
        values.update({":owner": owner, ":one": 1, ":zero": 0})
        self._call(
            self._t.update_item,
            Key={"pk": f"RUN#{run_id}", "sk": f"STEP#{step_id}"},
            UpdateExpression="SET "
            + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
            + ", attempts = if_not_exists(attempts, :one) - :one REMOVE lease_until"
            + "".join(f", #d{j}" for j in range(len(removed))),
            ConditionExpression="lease_owner = :owner AND attempts > :zero",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def put_parked(self, message: dict[str, Any], *, app: str, resume_at: float) -> str:
        """Remember a parked step message until ``resume_at`` (epoch seconds). Returns its marker key.

        Markers share one partition (``pk = PARKED``) sorted by due time, so the sweeper finds the
        due ones with one query; there are few (one per run waiting for Xero's daily limit)."""
        marker = f"{int(resume_at * 1000):015d}#{message['run_id']}#{message['step_id']}"
        self._call(
            self._t.put_item,
            Item={
                "pk": "PARKED",
                "sk": marker,
                "app": app,
                "message": _dump(message),
                "resume_at": int(resume_at),
                "ttl": self._ttl(),
            },
        )
        return marker

    def due_parked(self, now: float, *, limit: int = 500) -> list[dict[str, Any]]:
        """Parked step messages due at ``now``, oldest first: ``{marker, app, message, resume_at}``."""
        response = self._call(
            self._t.query,
            KeyConditionExpression="pk = :p AND sk <= :due",
            ExpressionAttributeValues={":p": "PARKED", ":due": f"{int(now * 1000):015d}#~"},
            ConsistentRead=True,
            Limit=limit,
        )
        return [
            {
                "marker": item["sk"],
                "app": item["app"],
                "message": json.loads(item["message"]),
                "resume_at": int(item["resume_at"]),
            }
            for item in response.get("Items", [])
        ]

    def delete_parked(self, marker: str) -> None:
        self._call(self._t.delete_item, Key={"pk": "PARKED", "sk": marker})


@dataclass
class LinkHold:
    """A link key's lock, held on the link item (``StateStore.lock_link``).

    ``link``: the link as it was when the lock was taken (None: none yet). ``unchanged``: no lock
    was taken because the link already holds the caller's ``unless`` version; then ``link`` is the
    current link and there is nothing to write."""

    store: StateStore
    kind: str
    source_id: str
    owner: str
    link: dict[str, Any] | None
    unchanged: bool = False
    written: bool = False
    # The version and the stored target an unchanged hold found (``amend`` writes only while the
    # link is still exactly that).
    version: str | None = None
    found: str | None = None

    def write(self, target: dict[str, Any], *, version: str | None = None) -> None:
        """Write the link (and its ``version``) and give the lock up, in one write. Within
        ``slots_ride_along`` (an engine step) the write rides along with the step's checkpoint
        transaction, else (a checkpoint without it, a failed step) it is made by itself once the
        step has settled; outside, it is made at once."""
        from clientary_xero.storage.ratelimit import ride_along

        if self.unchanged:
            raise RuntimeError("an unchanged link holds no lock to write under")
        update = self.store._link_write(self, target, version)
        self.written = True
        if not ride_along(update, lambda: self.store._write_link_now(update)):
            self.store._write_link_now(update)

    def amend(self, target: dict[str, Any]) -> bool:
        """An unchanged hold's link rewritten with ``target`` (``StateStore.amend_link``)."""
        if not self.unchanged:
            raise RuntimeError("amend is for an unchanged link; a held lock writes with write()")
        return self.store.amend_link(self, target)


def _link_key(kind: str, source_id: str) -> dict[str, str]:
    return {"pk": f"LINK#{kind}#{source_id}", "sk": "LINK"}


def _from_wire(raw: dict[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB's wire format (as a ``ConditionalCheckFailedException`` returns it)."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in raw.items()}


def _strip(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    for key in ("pk", "sk", "gsi1pk", "gsi1sk"):
        item.pop(key, None)
    return item
