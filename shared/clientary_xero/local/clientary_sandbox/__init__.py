"""A local, stateful stand-in for one Clientary account, served as an httpx transport.

Install it under the real client (``ClientaryClient(..., transport=sandbox)`` or
``connectors.http.set_transport(sandbox)``) and the real HTTP code runs against it: Basic auth with
the token as user and password, ``Accept: application/json`` (or a ``.json`` path), wrapper keys,
list envelopes with ``page_count``/``page_size``/``total_count``, ``updated_since``, 422 for a
missing required or a duplicate unique field, 426 for plan limits. Records look like Clientary's:
integer ids, dates with slashes (``2011/07/26``), ``created_at``/``updated_at`` timestamps with
the account's UTC offset, invoice totals computed from the items.

Where Clientary is silent (error bodies, status codes of creates, list order) the sandbox makes a
plausible choice and says so in a comment, so tests never rely on more than the real API promises.

Resources are a table (``ResourceSpec``): adding expenses, projects, payments… means adding a spec
with its wrapper key, required and unique fields, default page size, order and a ``build`` hook.

Modules: ``core`` (``ClientarySandbox``: state, host and auth checks, the transport), ``routing``
(paths, JSON negotiation, list envelopes), ``faults`` (Basic auth, injected failures and lost
answers), ``seeding`` (``seed_client``, ``add_invoice``… as in the UI), ``state`` (create, update,
ids, order, the common JSON shape), ``rendering`` (responses and per-resource record shapes),
``fields`` (value parsing, the generic ``build`` hook), ``spec`` (``ResourceSpec``), ``catalog``
(``default_resources``), and one module per resource family: ``clients`` (clients, leads,
contacts, staff), ``invoices`` (invoices, estimates, payments), ``projects`` (projects, hours,
tasks), ``expenses``.

Never imported by a Lambda handler.
"""

from clientary_xero.local.clientary_sandbox.catalog import default_resources
from clientary_xero.local.clientary_sandbox.clients import (
    CLIENT_ATTRIBUTES,
    CONTACT_ATTRIBUTES,
    STAFF_ATTRIBUTES,
)
from clientary_xero.local.clientary_sandbox.core import ClientarySandbox
from clientary_xero.local.clientary_sandbox.expenses import EXPENSE_ATTRIBUTES
from clientary_xero.local.clientary_sandbox.invoices import (
    ESTIMATE_ATTRIBUTES,
    INVOICE_ATTRIBUTES,
    ITEM_ATTRIBUTES,
    PAYMENT_ATTRIBUTES,
)
from clientary_xero.local.clientary_sandbox.projects import (
    HOURS_ATTRIBUTES,
    PROJECT_ATTRIBUTES,
    TASK_ATTRIBUTES,
)
from clientary_xero.local.clientary_sandbox.routing import MAX_PAGE_SIZE
from clientary_xero.local.clientary_sandbox.spec import (
    Clock,
    Record,
    ResourceSpec,
    SandboxValidation,
    _by_name,
    _newest_first,
    _oldest_first,
)

__all__ = [
    "CLIENT_ATTRIBUTES",
    "CONTACT_ATTRIBUTES",
    "ESTIMATE_ATTRIBUTES",
    "EXPENSE_ATTRIBUTES",
    "HOURS_ATTRIBUTES",
    "INVOICE_ATTRIBUTES",
    "ITEM_ATTRIBUTES",
    "MAX_PAGE_SIZE",
    "PAYMENT_ATTRIBUTES",
    "PROJECT_ATTRIBUTES",
    "STAFF_ATTRIBUTES",
    "TASK_ATTRIBUTES",
    "ClientarySandbox",
    "Clock",
    "Record",
    "ResourceSpec",
    "SandboxValidation",
    "_by_name",
    "_newest_first",
    "_oldest_first",
    "default_resources",
]
