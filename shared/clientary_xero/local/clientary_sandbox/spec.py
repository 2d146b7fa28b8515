"""The resource table's row (``ResourceSpec``), the validation error, and the shared list orders.

Resources are a table: adding one means adding a spec with its wrapper key, required and unique
fields, default page size, order and a ``build`` hook (``catalog.default_resources`` lists them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clientary_xero.local.clientary_sandbox.state import SandboxState

Clock = Callable[[], datetime]
Record = dict[str, Any]


class SandboxValidation(Exception):
    """A 422 (or, from a helper, a ``ValueError``-like misuse): ``errors`` maps field → messages."""

    def __init__(self, errors: dict[str, list[str]], status: int = 422) -> None:
        super().__init__("; ".join(f"{k} {m}" for k, ms in errors.items() for m in ms))
        self.errors = errors
        self.status = status


# --------------------------------------------------------------------------- resource table
@dataclass(frozen=True)
class ResourceSpec:
    """How one Clientary resource behaves in the sandbox."""

    name: str  # path segment and list envelope key ("invoices")
    wrapper: str  # body key of POST/PUT ("invoice")
    attributes: tuple[str, ...]  # what a POST/PUT may set (Rails strong parameters drop the rest)
    required: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    default_page_size: int = 30
    paged: bool = True
    updated_since: bool = False
    # Orders for ?sort=…; the None entry is the default. Keys sort ascending (negate for newest first).
    sorts: dict[str | None, Callable[[Record], Any]] = field(default_factory=dict)
    id_start: int = 1000
    # build(sandbox, fields, existing) -> the stored record (existing is None on create).
    build: Callable[[SandboxState, dict[str, Any], Record | None], Record] | None = None
    # render(sandbox, stored record) -> what GET returns (embed related records, …).
    render: Callable[[SandboxState, Record], Record] | None = None
    # A sub-collection (hours of a project, payments of an invoice): created only under its parent
    # (POST /<parent>/:id/<name>), which sets ``parent_key``.
    parent: str | None = None
    parent_key: str | None = None
    # GET /<name>/:id exists (Clientary documents none for payments).
    get_one: bool = True
    # Clientary offers no create/update (staff).
    read_only: bool = False
    # list_hook(sandbox, records, query) -> (records, extra envelope keys): filters such as
    # projects' ``filter=all`` or expenses' date window; raises SandboxValidation for a bad query.
    list_hook: (
        Callable[[SandboxState, list[Record], dict[str, str]], tuple[list[Record], dict[str, Any]]] | None
    ) = None
    # after_create(sandbox, stored record): side effects (a payment updates its invoice).
    after_create: Callable[[SandboxState, Record], None] | None = None


# --------------------------------------------------------------------------- list orders
def _newest_first(record: Record) -> Any:
    return (-record["_created_ts"], -record["id"])


def _by_name(record: Record) -> Any:
    return (str(record.get("name") or "").lower(), record["id"])


def _oldest_first(record: Record) -> Any:
    return (record["_created_ts"], record["id"])
