"""The resource table: every resource the sandbox serves, in one list."""

from __future__ import annotations

from clientary_xero.local.clientary_sandbox.clients import clients_spec, contacts_spec, leads_spec, staff_spec
from clientary_xero.local.clientary_sandbox.expenses import expenses_spec
from clientary_xero.local.clientary_sandbox.invoices import estimates_spec, invoices_spec, payments_spec
from clientary_xero.local.clientary_sandbox.projects import hours_spec, projects_spec, tasks_spec
from clientary_xero.local.clientary_sandbox.spec import ResourceSpec


def default_resources() -> list[ResourceSpec]:
    """Every resource the Clientary API documents (reference/clientary-api.md §2), contracts aside:
    Clientary has no contracts endpoint."""
    return [
        clients_spec(),
        invoices_spec(),
        leads_spec(),
        contacts_spec(),
        estimates_spec(),
        projects_spec(),
        hours_spec(),
        tasks_spec(),
        payments_spec(),
        expenses_spec(),
        staff_spec(),
    ]
