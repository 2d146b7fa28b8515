"""Xero trigger Lambda: webhook events from XeroEventQueue (SQS, partial batch failures) and the
15-minute ``xero.new_payment`` poll (EventBridge schedule).

Each queued event names a contact or invoice: it is fetched from Xero, normalised and handed to the
trigger intake. A retryable failure (429, 5xx) delays only its own message by Retry-After.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from clientary_xero.metrics import flushed
from clientary_xero.usecases.sqs_batch import process_partial_response
from clientary_xero.usecases.xero_trigger import EventRecord, handle_payments_poll, run_queued_event

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"clientary_xero"})

_services: dict[str, Any] = {}


def record_handler(record: EventRecord) -> dict[str, Any]:
    logger.set_correlation_id(record.messageId)
    summary = run_queued_event(record.body, receipt_handle=record.receiptHandle, xero=_services.get("xero"))
    logger.info("Xero event processed", extra={k: v for k, v in summary.items() if k != "runs"})
    return summary


@logger.inject_lambda_context(clear_state=True)
@flushed  # the invocation's metrics: one EMF line (clientary_xero/metrics.py)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events":
        return handle_payments_poll()
    from clientary_xero.connectors.xero.client import build_xero_client

    # One client (and token) for the whole batch.
    _services["xero"] = build_xero_client()
    try:
        # Powertools' BatchProcessor's answers, without its ~40 modules (usecases/sqs_batch.py).
        return process_partial_response(event, record_handler, EventRecord.read)
    finally:
        _services.pop("xero").close()
