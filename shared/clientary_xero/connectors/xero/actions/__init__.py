"""Xero actions a workflow step can run (issue #3), one module per kind of record:

* ``contacts``: ``xero.create_or_update_contact``, ``xero.find_contact``
* ``invoices``: ``xero.create_invoice``, ``xero.find_invoice``, ``xero.add_note_to_invoice``,
  ``xero.create_payment``
* ``documents``: ``xero.create_quote``, ``xero.create_purchase_order``, ``xero.find_purchase_order``
* ``inventory``: ``xero.add_stock_items``
* ``banking``: ``xero.create_bank_transfer``
* ``projects``: ``xero.create_project`` (the Projects API)
* ``reports``: ``xero.get_balance_sheet``, ``xero.get_profit_and_loss``

Inputs use Xero's own field names (PascalCase) and refuse unknown fields (Xero would silently ignore
a misspelt one); outputs are flat (ids, numbers, statuses, amounts as numbers, ISO dates). Importing
this package registers every action and is cheap: models only; HTTP clients load on first use.
"""

from __future__ import annotations

from clientary_xero.connectors.xero.actions import banking, documents, inventory, projects, reports
from clientary_xero.connectors.xero.actions.common import ContactRef, LineItem
from clientary_xero.connectors.xero.actions.contacts import (
    CONTACT_LINK,
    ContactInput,
    FindContactInput,
    create_or_update_contact,
    find_contact,
)
from clientary_xero.connectors.xero.actions.invoices import (
    FindInvoiceInput,
    InvoiceInput,
    InvoiceNoteInput,
    PaymentInput,
    add_note_to_invoice,
    create_invoice,
    create_payment,
    find_invoice,
)

__all__ = [
    "CONTACT_LINK",
    "ContactInput",
    "ContactRef",
    "FindContactInput",
    "FindInvoiceInput",
    "InvoiceInput",
    "InvoiceNoteInput",
    "LineItem",
    "PaymentInput",
    "add_note_to_invoice",
    "banking",
    "create_invoice",
    "create_or_update_contact",
    "create_payment",
    "documents",
    "find_contact",
    "find_invoice",
    "inventory",
    "projects",
    "reports",
]
