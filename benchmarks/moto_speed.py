"""moto's DynamoDB at the cost of what a request touches, not of the whole table: the volume
benchmark's State table holds thousands of runs and steps, and two of moto's operations scale with
all of them (``fast_dynamodb`` fixes both; the answers are moto's own).

**Transactions.** moto (5.2) backs up every table a transaction touches with
``copy.deepcopy(table)``, once per operation, before applying it, so it can roll back. Since the
engine claims and checkpoints steps in transactions (issue 8 point 4), every step of a backlog
copied the whole State table two or three times: quadratic in the backlog (two thirds of a
100-invoice backlog's CPU already), and with the whole-table sort below the reason the earlier
600-invoice benchmark ran for more than an hour. ``item_level_transactions`` keeps moto's own code
(its checks, conditions and errors) and backs up only the items the transaction names: on any
failure those items are put back as they were (a new one is removed), which is what the
whole-table copy restored, since a transaction writes nothing else.

**Queries.** A ``Query`` on the table's own key sorts *every* item of the table and then keeps the
partition asked for (``Table.all_items``); the engine reads a run and its steps with one Query per
step execution. ``indexed_queries`` hands moto's query only the partition's items (sorted as
``all_items`` sorts them); a query on an index is moto's, unchanged.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def fast_dynamodb() -> Iterator[None]:
    """Both (module docstring)."""
    with item_level_transactions(), indexed_queries():
        yield


@contextlib.contextmanager
def indexed_queries() -> Iterator[None]:
    """While inside, a Query on a table's own key looks at its partition only."""
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = self.items.get(hash_key) or {}
        only = sorted(partition.values(), key=lambda item: (item.hash_key, item.range_key))
        self.all_items = lambda: only  # the instance's, for this query only
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.query = original  # type: ignore[method-assign]


@contextlib.contextmanager
def item_level_transactions() -> Iterator[None]:
    """While inside, moto's transactions back up (and roll back) their items, not their tables."""
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    backend_class = models.DynamoDBBackend
    original = backend_class.transact_write_items

    class _NoTableCopy:
        """``copy`` for moto's module: a table's "backup" is the table (the items are backed up)."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any]] = []
        for entry in transact_items:
            try:
                op_type, op = next(iter(entry.items()))
                table = self.get_table(op["TableName"])
                if op_type == "Put":
                    attrs = op["Item"]
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                hash_key, range_key = self.get_keys_value(table, key)
            except Exception:  # noqa: S112 - moto's own code below raises the proper error
                continue
            item = table.get_item(hash_key, range_key)
            saved.append((table, hash_key, range_key, copy.deepcopy(item)))
        models.copy = _NoTableCopy()  # type: ignore[assignment]
        try:
            original(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, item in reversed(saved):  # the first backup wins
                _restore(table, hash_key, range_key, item)
            raise
        finally:
            models.copy = copy  # type: ignore[assignment]

    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        backend_class.transact_write_items = original  # type: ignore[method-assign]


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    if range_key is not None:
        if item is None:
            table.items.get(hash_key, {}).pop(range_key, None)
        else:
            table.items[hash_key][range_key] = item
    elif item is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = item
