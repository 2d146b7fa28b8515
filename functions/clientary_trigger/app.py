"""Clientary trigger Lambda (one deployed function per trigger, selected by the TRIGGER env var).

Two event sources: the EventBridge ``rate(15 minutes)`` schedule (poll) and the HTTP API push route
``POST /webhooks/clientary/<name>`` (HMAC-signed hint, re-read from the API).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from clientary_xero.metrics import flushed
from clientary_xero.settings import get_settings
from clientary_xero.usecases.clientary_trigger import handle_push, handle_schedule
from clientary_xero.usecases.http_request import RequestRefused, read_request, request_id

logger = Logger()
# The layer logs through logging.getLogger(__name__): same JSON format, same correlation id.
copy_config_to_registered_loggers(source_logger=logger, include={"clientary_xero"})


@logger.inject_lambda_context(clear_state=True)
@flushed  # the invocation's metrics: one EMF line (clientary_xero/metrics.py)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = get_settings().trigger
    logger.append_keys(trigger=trigger)
    if "requestContext" in event:
        logger.set_correlation_id(request_id(event))
        try:
            # Method, size (413 before any secret read), base64 and encoding: one place for all routes.
            http = read_request(event, methods=("POST",))
        except RequestRefused as refused:
            response = refused.response
        else:
            response = handle_push(
                function_trigger=trigger, path=http.path, headers=http.headers, raw_body=http.body
            )
        logger.info("push handled", extra={"status": response.status})
        return response.to_api_gateway()
    if event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events":
        logger.set_correlation_id(event.get("id"))  # EventBridge's event id
        return handle_schedule(trigger=trigger)
    raise ValueError("unsupported event: expected an HTTP API request or an EventBridge scheduled event")
