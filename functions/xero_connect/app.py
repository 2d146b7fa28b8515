"""Xero connect Lambda: ``GET /oauth/xero/connect`` (needs a one-time ticket from
``clientary-xero connect xero --stack NAME``), ``GET /oauth/xero/callback`` and
``GET /oauth/xero/choose`` (when the user connected several organisations).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from clientary_xero.usecases.xero_connect import handle_request, parse_cookies

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"clientary_xero"})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = APIGatewayProxyEventV2(event)
    logger.set_correlation_id(request.request_context.request_id)
    # Payload 2.0 moves Cookie headers into event["cookies"]; a Cookie header is read as well.
    cookies = parse_cookies([*(request.cookies or []), request.headers.get("cookie") or ""])
    response = handle_request(
        path=request.raw_path or request.path,
        query=dict(request.query_string_parameters or {}),
        host=request.request_context.domain_name,
        cookies=cookies,
    )
    # Never log the query or the cookies: they carry the ticket, the state, the code, the binding.
    logger.info("Xero connect request handled", extra={"status": response.status})
    return response.to_api_gateway()
