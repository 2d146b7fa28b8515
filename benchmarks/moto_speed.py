"""moto's DynamoDB at the cost of what a request touches, not of the whole table: the volume
benchmark's State table holds thousands of runs and steps, and two of moto's operations scale with
all of them (``fast_dynamodb`` fixes both; the answers are moto's own).

**Transactions.** moto (5.2) backs up every table a transaction touches with
``copy.deepcopy(table)``, once per operation, before applying it, so it can roll back: quadratic in
the backlog. The local environment itself now backs up only the items a transaction names
(``clientary_xero.local.moto_transactions``, installed by every ``LocalEnvironment``, so by this
benchmark's too); ``item_level_transactions`` is that, for code that runs moto without one.

**Queries.** A ``Query`` on the table's own key sorts *every* item of the table and then keeps the
partition asked for (``Table.all_items``); the engine reads a run and its steps with one Query per
step execution. ``indexed_queries`` hands moto's query only the partition's items (sorted as
``all_items`` sorts them); a query on an index is moto's, unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from clientary_xero.local.moto_transactions import item_rollback_transactions as item_level_transactions


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
