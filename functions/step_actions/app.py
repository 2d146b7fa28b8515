"""Action Lambda: runs the workflow steps of an SQS batch, reporting partial batch failures.

Each message is one step; the first attempts of the same Xero write share one call (contacts,
invoices: engine/batching.py), each step checkpointed on its own.

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

from clientary_xero.metrics import flushed
from clientary_xero.settings import get_settings
from clientary_xero.usecases.sqs_batch import process_partial_response
from clientary_xero.usecases.steps import StepRecord, outcome_fields, run_step, run_steps

logger = Logger()
# The layer logs through logging.getLogger(__name__): same JSON format, same correlation id.
copy_config_to_registered_loggers(source_logger=logger, include={"clientary_xero"})


# The batch's results by message id: the steps run together first (run_steps: the same Xero write
# shares one call), then the processor reports each record's own result.
_results: dict[str, Any] = {}


# A step is not started with less time left than this (its calls have 20 s read timeouts): it is
# re-sent for another invocation, not cut off by the time-out (which would cost it a receive).
START_MARGIN_MS = 20_000


def run_batch(event: dict[str, Any], context: LambdaContext) -> None:
    records: list[StepRecord] = []
    for raw in event.get("Records") or []:
        try:
            records.append(StepRecord.read(raw))
        except Exception as exc:  # MalformedRecord, or anything else about this one record
            # The processor fails it on its own (not a step message: to the DLQ).
            logger.debug("not a step message", extra={"reason": str(exc)[:500]})

    def on_step(i: int) -> None:
        logger.set_correlation_id(records[i].body.run_id)
        logger.append_keys(step_id=records[i].body.step_id)

    _results.clear()
    try:
        results = run_steps(
            [(r.body, r.attributes.ApproximateReceiveCount, r.receiptHandle) for r in records],
            app=get_settings().step_app,
            on_step=on_step,
            may_start=lambda: context.get_remaining_time_in_millis() > START_MARGIN_MS,
        )
    except Exception:
        # Nothing is lost: each record then runs on its own in record_handler (and fails alone).
        logger.exception("the batch could not be run together; running its steps one by one")
        return
    _results.update({r.messageId: result for r, result in zip(records, results, strict=True)})


def record_handler(record: StepRecord) -> dict[str, Any]:
    message = record.body
    logger.set_correlation_id(message.run_id)
    logger.append_keys(step_id=message.step_id)
    result = _results.pop(record.messageId, None)
    if isinstance(result, Exception):
        raise result
    outcome = result or run_step(
        message,
        app=get_settings().step_app,
        receive_count=record.attributes.ApproximateReceiveCount,
        receipt_handle=record.receiptHandle,
    )
    logger.info("step processed", extra=outcome_fields(outcome))
    return outcome_fields(outcome)


@logger.inject_lambda_context(clear_state=True)
@flushed  # the invocation's metrics: one EMF line (clientary_xero/metrics.py)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not get_settings().step_app:
        # Without it a retry could not delay its own message (Retry-After): refuse loudly.
        raise RuntimeError("STEP_APP is not set: it names this function's action queue (xero or clientary)")
    logger.append_keys(app=get_settings().step_app)
    run_batch(event, context)
    # Powertools' BatchProcessor's answers, without its ~40 modules (usecases/sqs_batch.py).
    return process_partial_response(event, record_handler, StepRecord.read)
