"""Xero webhook Lambda: ``POST /webhooks/xero``.

Verifies ``x-xero-signature`` over the raw body, answers Xero's intent-to-receive check, enqueues
the events on XeroEventQueue and returns 200 with an empty body — no Xero call, well inside Xero's
5 seconds. The Xero trigger Lambda fetches the records.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from clientary_xero.usecases.http_request import RequestRefused, read_request, request_id
from clientary_xero.usecases.xero_webhook import handle_webhook

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"clientary_xero"})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(request_id(event))
    try:
        # The signature covers the exact bytes Xero sent: read_request undoes API Gateway's base64
        # (refusing what is not base64) and refuses a body over 256 KB before the key is read.
        http = read_request(event, methods=("POST",))
    except RequestRefused as refused:
        response = refused.response
    else:
        response = handle_webhook(headers=http.headers, raw_body=http.body)
    logger.info("Xero webhook handled", extra={"status": response.status})
    return response.to_api_gateway()
