"""Notifier: every 2 minutes, one digest to the alarm topic of what failed since the last one.

Failed runs, a Xero connection to reconnect, new dead-letter messages and workflows that keep
failing, grouped into one message (usecases/alerts.py has the design).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from clientary_xero.metrics import flushed
from clientary_xero.usecases.alerts import send_digest

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"clientary_xero"})


@logger.inject_lambda_context(clear_state=True)
@flushed
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return send_digest()
