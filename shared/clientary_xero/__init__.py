"""clientary-xero: exactly-once automation between Clientary and Xero.

The Lambda layer's package. Handlers in ``functions/`` import from here; nothing here imports
``clientary_xero.local`` (the CLI, local runner and sandboxes) except the CLI itself.
"""

import logging

__version__ = "0.1.0"

# Library modules log through logging.getLogger(__name__); the handlers give this package logger
# Powertools' JSON format. Unconfigured (tests, the CLI), nothing is printed by default.
logging.getLogger(__name__).addHandler(logging.NullHandler())

# Libraries that print credentials at DEBUG: botocore logs every request and response body
# (SecretString of GetSecretValue and PutSecretValue; 161 occurrences in one measured run with the
# root logger at DEBUG), urllib3 and httpcore the wire exchanges (httpcore the response headers,
# Set-Cookie included), authlib token grants. A root logger at DEBUG (Lambda's
# ApplicationLogLevel=DEBUG) must not turn any of that on, so they are pinned at WARNING on import
# of the package, which every handler does first. Their warnings and errors still show.
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "httpcore", "authlib")
for _name in QUIET_LOGGERS:
    logging.getLogger(_name).setLevel(logging.WARNING)
