"""One line for an AWS error the CLI meets: what failed, on which resource, in which region, and
what to check — instead of botocore's traceback.

The resource comes from the last call the process made (``storage.aws.last_call``): a
``ClientError`` names only the operation ("when calling the Query operation").
"""

from __future__ import annotations

from typing import Any

# Error codes → what to check, by kind.
_MISSING = {
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NoSuchBucket",
    "NotFound",
    "404",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_UNKNOWN_KEYS = {"UnrecognizedClientException", "InvalidClientTokenId", "SignatureDoesNotMatch"}
_BUSY = {
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
}


def is_aws_error(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("botocore", "boto3"))


def describe_aws_error(exc: BaseException, context: dict[str, str]) -> str | None:
    """The line for ``exc`` (without ``error: ``); None when it is not an AWS error."""
    if not is_aws_error(exc):
        return None
    from botocore import exceptions as E

    from clientary_xero.storage.aws import last_call

    region = context.get("region") or "?"
    stack = context.get("stack")
    call = last_call()
    target = _target(call)
    where = f"in {region}" + (f" (stack {stack})" if stack and call.get("kind") != "stack" else "")
    kwargs: dict[str, Any] = getattr(exc, "kwargs", {}) or {}

    if isinstance(exc, E.ProfileNotFound):
        return (
            f"the AWS profile {kwargs.get('profile', '')!r} is not in your AWS config: check AWS_PROFILE "
            "(aws configure list-profiles)"
        )
    if isinstance(exc, (E.NoCredentialsError, E.PartialCredentialsError)):
        return (
            f"no usable AWS credentials for {target} {where}: sign in (aws configure, aws sso login) "
            "or set AWS_PROFILE"
        )
    if isinstance(exc, E.NoRegionError):
        return "no AWS region: pass --region, set AWS_REGION, or give your AWS profile one"
    if isinstance(exc, (E.EndpointConnectionError, E.ConnectTimeoutError, E.ReadTimeoutError)):
        return (
            f"cannot reach AWS for {target} {where} ({type(exc).__name__}): check the region name and "
            "your network (or proxy)"
        )
    if isinstance(exc, E.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code = str(error.get("Code", "")) or type(exc).__name__
        message = str(error.get("Message", "")).strip()
        operation = getattr(exc, "operation_name", "") or call.get("operation", "")
        what = f"AWS refused {call.get('service', '') + ' ' if call.get('service') else ''}{operation}"
        head = f"{what.rstrip()} on {target} {where} ({code}{': ' + message if message else ''})"
        return f"{head}: {_hint(code, region)}"
    return f"the AWS call for {target} {where} failed ({type(exc).__name__}: {exc}): check your AWS setup"


def _target(call: dict[str, str]) -> str:
    resource = call.get("resource")
    if not resource:
        return "the stack's resources"
    if resource.startswith("https://") and "/" in resource:  # a queue URL: its name is enough
        resource = resource.rstrip("/").rsplit("/", 1)[-1]
    return f"{call.get('kind', 'resource')} {resource!r}"


def _hint(code: str, region: str) -> str:
    if code in _MISSING:
        return (
            f"it does not exist in {region} — check --region (or your profile's region) and --stack; "
            "the stack's outputs name its resources"
        )
    if code in _DENIED:
        return "your AWS identity is not allowed this call: check the profile's IAM permissions"
    if code in _EXPIRED:
        return "your AWS session expired: sign in again (aws sso login, or a new session token)"
    if code in _UNKNOWN_KEYS:
        return "AWS does not recognise these credentials: check the access keys of your profile"
    if code in _BUSY:
        return "AWS is throttling the account: try again in a minute"
    return "check the stack is deployed in this region and your permissions"
