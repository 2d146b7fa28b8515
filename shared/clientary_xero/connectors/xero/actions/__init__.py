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
a misspelt one); outputs are flat (ids, numbers, statuses, amounts as numbers, ISO dates).

Importing this package imports none of them: ``connectors.base.find_action`` imports the one module
an action lives in (``ACTION_MODULES``), ``load_all()`` (``registry()``) every module, and the names
below import their module on first use (a step's first invocation builds only its own models).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

MODULES = ("banking", "contacts", "documents", "inventory", "invoices", "projects", "reports")

# The module each action is registered by (tests/test_cold_imports.py checks it against the registry).
ACTION_MODULES = {
    "xero.create_or_update_contact": "contacts",
    "xero.find_contact": "contacts",
    "xero.create_invoice": "invoices",
    "xero.find_invoice": "invoices",
    "xero.add_note_to_invoice": "invoices",
    "xero.create_payment": "invoices",
    "xero.create_quote": "documents",
    "xero.create_purchase_order": "documents",
    "xero.find_purchase_order": "documents",
    "xero.add_stock_items": "inventory",
    "xero.create_bank_transfer": "banking",
    "xero.create_project": "projects",
    "xero.get_balance_sheet": "reports",
    "xero.get_profit_and_loss": "reports",
}

# Actions that can answer from what is stored before their input is validated (connectors/base.py
# ``shortcut``): the function, in a module that builds no input model.
SHORTCUTS = {
    "xero.create_or_update_contact": f"{__name__}.contact_links:unchanged_contact",
}

# Re-exported names and the module that defines each.
_EXPORTS = {
    "ContactRef": "common",
    "LineItem": "common",
    **dict.fromkeys(
        ("CONTACT_LINK", "ContactInput", "FindContactInput", "create_or_update_contact", "find_contact"),
        "contacts",
    ),
    **dict.fromkeys(
        (
            "FindInvoiceInput",
            "InvoiceInput",
            "InvoiceNoteInput",
            "PaymentInput",
            "add_note_to_invoice",
            "create_invoice",
            "create_payment",
            "find_invoice",
        ),
        "invoices",
    ),
}


def load_action(name: str) -> None:
    """Register the action ``name`` (every action when it is not in the index)."""
    module = ACTION_MODULES.get(name)
    if module is None:
        load_all()
    else:
        import_module(f"{__name__}.{module}")


def load_all() -> None:
    for module in MODULES:
        import_module(f"{__name__}.{module}")


def __getattr__(name: str) -> Any:
    if name in MODULES:
        return import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
