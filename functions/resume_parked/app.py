"""Parked-run sweeper: every 15 minutes, re-enqueue the steps that waited for Xero's daily limit.

A step that meets Xero's daily limit (429 ``day``, Retry-After often hours) is parked instead of
burning its attempts: its run is WAITING with ``resume_at``. This function puts the due ones back
on their action queue (engine/parked.py ``resume_parked``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from clientary_xero.usecases.parked import resume_parked_steps

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"clientary_xero"})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = resume_parked_steps()
    logger.info("parked steps resumed", extra=result)
    return result
