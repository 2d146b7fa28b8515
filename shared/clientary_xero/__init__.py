"""clientary-xero: exactly-once automation between Clientary and Xero.

The Lambda layer's package. Handlers in ``functions/`` import from here; nothing here imports
``clientary_xero.local`` (the CLI, local runner and sandboxes) except the CLI itself.
"""

import logging

__version__ = "0.1.0"

# Library modules log through logging.getLogger(__name__); the handlers give this package logger
# Powertools' JSON format. Unconfigured (tests, the CLI), nothing is printed by default.
logging.getLogger(__name__).addHandler(logging.NullHandler())
