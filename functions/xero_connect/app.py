"""Xero connect Lambda: ``GET /oauth/xero/connect`` (needs a one-time ticket from
``clientary-xero connect xero --stack NAME``), ``GET /oauth/xero/callback`` and
``GET /oauth/xero/choose`` (when the user connected several organisations).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from clientary_xero.usecases.http_request import RequestRefused, read_request, request_id
from clientary_xero.usecases.xero_connect import handle_request, parse_cookies

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"clientary_xero"})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(request_id(event))
    try:
        # A query or path that is not UTF-8 (an unpaired surrogate) is a 400 here, not a crash later.
        http = read_request(event, methods=("GET",))
    except RequestRefused as refused:
        logger.info("Xero connect request refused", extra={"status": refused.response.status})
        return refused.response.to_api_gateway()
    # Payload 2.0 moves Cookie headers into event["cookies"]; a Cookie header is read as well.
    sent = [c for c in event.get("cookies") or [] if isinstance(c, str)]
    cookies = parse_cookies([*sent, http.headers.get("cookie", "")])
    response = handle_request(path=http.path, query=http.query, host=http.host, cookies=cookies)
    # Never log the query or the cookies: they carry the ticket, the state, the code, the binding.
    logger.info("Xero connect request handled", extra={"status": response.status})
    return response.to_api_gateway()
