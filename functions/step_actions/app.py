"""Action Lambda: runs one workflow step per SQS message, reporting partial batch failures.

Two deployed functions run this code, one per action queue: ``XeroActionFunction`` (``STEP_APP=xero``)
and ``ClientaryActionFunction`` (``STEP_APP=clientary``); they differ in their queue, permissions
and the service their steps call. A retryable failure (429, 5xx, a time-out, a busy lock) delays
only its own message (Retry-After) and is reported in ``batchItemFailures``; the rest of the batch
completes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from clientary_xero.settings import get_settings
from clientary_xero.usecases.sqs_batch import process_partial_response
from clientary_xero.usecases.steps import StepRecord, outcome_fields, run_step

logger = Logger()
# The layer logs through logging.getLogger(__name__): same JSON format, same correlation id.
copy_config_to_registered_loggers(source_logger=logger, include={"clientary_xero"})


def record_handler(record: StepRecord) -> dict[str, Any]:
    message = record.body
    logger.set_correlation_id(message.run_id)
    logger.append_keys(step_id=message.step_id)
    outcome = run_step(
        message,
        app=get_settings().step_app,
        receive_count=record.attributes.ApproximateReceiveCount,
        receipt_handle=record.receiptHandle,
    )
    logger.info("step processed", extra=outcome_fields(outcome))
    return outcome_fields(outcome)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not get_settings().step_app:
        # Without it a retry could not delay its own message (Retry-After): refuse loudly.
        raise RuntimeError("STEP_APP is not set: it names this function's action queue (xero or clientary)")
    logger.append_keys(app=get_settings().step_app)
    # Powertools' BatchProcessor's answers, without its ~40 modules (usecases/sqs_batch.py).
    return process_partial_response(event, record_handler, StepRecord)
