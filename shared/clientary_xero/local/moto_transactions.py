"""moto's TransactWriteItems with a rollback of the items it writes, not a copy of the tables.

moto (5.x) backs a transaction out by deep-copying **every table the transaction names, once per
item** before applying it, and putting the copies back if it fails. Our writes are mostly
transactions on the State table (a step's checkpoint, its claim, the contact link riding along), so
each one cost the whole table and a local run of n records O(n²) CPU and memory: the 1,000-invoice
reliability scenario was killed by the kernel at 24 GB, and a ``backfill --local`` of a large seed
slowed down the same way. AWS applies a transaction all or nothing; so does this, by remembering the
items the transaction names (each at most once: DynamoDB refuses two operations on one item) and
writing them back on failure, in reverse order, through moto's own item calls.

``item_rollback_transactions()`` installs it for the life of a local environment (nested uses are
counted); tests/test_moto_transactions.py checks all-or-nothing on Put, Update, Delete and
ConditionCheck, and that no table is copied.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_installed = 0
_saved: dict[str, Any] = {}


class _NoTableCopy:
    """The ``copy`` module as moto's DynamoDB backend sees it while installed: a Table is "copied"
    as itself (its items are rolled back one by one instead); everything else is copied as usual."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    table_name = op.get("TableName")
    if not isinstance(table_name, str) or table_name not in backend.tables:
        return None  # moto refuses it itself
    if op_type == "Put":
        table = backend.tables[table_name]
        item = op.get("Item") or {}
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        if not all(name in item for name in names):
            return None
        return table_name, {name: item[name] for name in names}
    key = op.get("Key")
    return (table_name, key) if isinstance(key, dict) else None


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], Any]]:
    """(table, key, the item's attributes as they were, or None) for each item the transaction names."""
    taken: list[tuple[str, dict[str, Any], Any]] = []
    for entry in transact_items:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        op_type, op = next(iter(entry.items()))
        if op_type not in ("Put", "Update", "Delete") or not isinstance(op, dict):
            continue  # a ConditionCheck writes nothing
        found = _key_of(backend, op_type, op)
        if found is None:
            continue
        table_name, key = found
        try:
            current = backend.get_item(table_name, key)
        except Exception:  # noqa: S112 - a bad key: moto refuses the transaction before writing anything
            continue
        before = copy.deepcopy(current.to_json()["Attributes"]) if current is not None else None
        taken.append((table_name, key, before))
    return taken


def _restore(backend: Any, taken: list[tuple[str, dict[str, Any], Any]]) -> None:
    for table_name, key, before in reversed(taken):
        if before is None:
            if backend.get_item(table_name, key) is not None:
                backend.delete_item(table_name, key)
        else:
            backend.put_item(table_name, before)


@contextlib.contextmanager
def item_rollback_transactions() -> Iterator[None]:
    """moto's transactions roll back by item while the context is open (see the module docstring)."""
    global _installed
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    with _lock:
        if _installed == 0:
            original = models.DynamoDBBackend.transact_write_items
            _saved["original"], _saved["copy"] = original, models.copy

            def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
                taken = _snapshot(self, transact_items) if len(transact_items) <= 100 else []
                try:
                    original(self, transact_items)
                except BaseException:
                    _restore(self, taken)
                    raise

            models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
            models.copy = _NoTableCopy(Table)  # type: ignore[assignment]
        _installed += 1
    try:
        yield
    finally:
        with _lock:
            _installed -= 1
            if _installed == 0:
                models.DynamoDBBackend.transact_write_items = _saved.pop("original")  # type: ignore[method-assign]
                models.copy = _saved.pop("copy")
