"""The notifier's AWS calls: publish to the alarm topic (SNS), read a dead-letter queue's depth (SQS)."""

from __future__ import annotations

from clientary_xero.errors import RetryableError
from clientary_xero.storage.aws import client, error_code

# SNS: a subject is under 100 ASCII characters with no line breaks; a message at most 256 KB.
MAX_SUBJECT = 99
MAX_MESSAGE_BYTES = 256 * 1024


def publish(topic_arn: str, subject: str, message: str) -> str:
    """Publish one notice; returns SNS's message id. Any refusal is retryable: the notices stay."""
    subject = "".join(c if 32 <= ord(c) < 127 else " " for c in subject)[:MAX_SUBJECT].strip()
    body = message.encode("utf-8")[: MAX_MESSAGE_BYTES - 1024].decode("utf-8", "ignore")
    try:
        response = client("sns").publish(
            TopicArn=topic_arn, Subject=subject or "clientary-xero", Message=body
        )
    except Exception as exc:
        raise RetryableError(
            f"could not publish to the alarm topic ({error_code(exc) or type(exc).__name__}): check "
            "that it exists and that this function may sns:Publish to it",
            delay_seconds=60,
        ) from None
    return str(response.get("MessageId", ""))


def queue_depth(url: str) -> int:
    """Messages in a queue (visible and in flight): what a dead-letter queue holds."""
    try:
        attributes = client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    except Exception as exc:
        raise RetryableError(
            f"could not read the depth of queue {url.rsplit('/', 1)[-1]} "
            f"({error_code(exc) or type(exc).__name__})",
            delay_seconds=60,
        ) from None
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )
