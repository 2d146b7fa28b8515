"""clientary-xero: exactly-once automation between Clientary and Xero.

The Lambda layer's package. Handlers in ``functions/`` import from here; nothing here imports
``clientary_xero.local`` (the CLI, local runner and sandboxes) except the CLI itself.
"""

__version__ = "0.1.0"
