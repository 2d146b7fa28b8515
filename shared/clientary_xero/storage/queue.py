"""Step messages on the action queues (one message = one step of one run)."""

from __future__ import annotations

import json
import logging
from typing import Any

from clientary_xero.errors import PermanentError, RetryableError
from clientary_xero.settings import get_settings
from clientary_xero.storage.aws import client, error_code

logger = logging.getLogger(__name__)

# SQS caps a visibility timeout (and so a retry delay) at 12 hours.
MAX_VISIBILITY_SECONDS = 43_200
# SendMessageBatch takes at most 10 entries.
SQS_BATCH_SIZE = 10


class StepQueue:
    """Sends step messages to the queue of the app that runs the step's action."""

    def __init__(
        self,
        urls: dict[str, str] | None = None,
        sqs: Any | None = None,
        dead_letter_urls: dict[str, str] | None = None,
    ) -> None:
        settings = get_settings()
        self.urls = (
            urls
            if urls is not None
            else {
                "xero": settings.xero_queue_url,
                "clientary": settings.clientary_queue_url,
            }
        )
        self.dead_letter_urls = (
            dead_letter_urls
            if dead_letter_urls is not None
            else {"xero": settings.xero_dlq_url, "clientary": settings.clientary_dlq_url}
        )
        self._client = sqs

    @property
    def _sqs(self) -> Any:
        if self._client is None:
            self._client = client("sqs")
        return self._client

    def url_for(self, app: str) -> str:
        url = self.urls.get(app)
        if not url:
            raise PermanentError(
                f"no action queue is configured for {app!r} actions (set {app.upper()}_QUEUE_URL)"
            )
        return url

    def send(self, app: str, message: dict[str, Any], *, delay_seconds: int = 0) -> None:
        try:
            self._sqs.send_message(
                QueueUrl=self.url_for(app),
                MessageBody=json.dumps(message),
                DelaySeconds=max(0, min(900, delay_seconds)),
            )
        except (PermanentError, RetryableError):
            raise
        except Exception as exc:
            raise RetryableError(
                f"could not enqueue a step ({error_code(exc) or type(exc).__name__})", delay_seconds=5
            ) from None

    def send_batch(self, app: str, messages: list[dict[str, Any]], *, delay_seconds: int = 0) -> int:
        """Send many messages to one queue with ``SendMessageBatch`` (10 per call, SQS's most).

        Entries SQS refuses are sent once more in the next call; if any is still refused, a
        ``RetryableError`` says how many were sent (the callers' dedupe makes a re-send harmless).
        Returns the number of messages sent."""
        url = self.url_for(app) if messages else ""
        delay = max(0, min(900, delay_seconds))
        pending = [json.dumps(m) for m in messages]
        sent = 0
        for _ in range(2):  # one pass, then one more for the entries SQS refused
            refused: list[str] = []
            for start in range(0, len(pending), SQS_BATCH_SIZE):
                chunk = pending[start : start + SQS_BATCH_SIZE]
                entries = [
                    {"Id": str(i), "MessageBody": body, "DelaySeconds": delay} for i, body in enumerate(chunk)
                ]
                try:
                    answer = self._sqs.send_message_batch(QueueUrl=url, Entries=entries)
                except Exception as exc:
                    raise RetryableError(
                        f"could not enqueue {len(pending) - start} of {len(messages)} messages "
                        f"({error_code(exc) or type(exc).__name__}; {sent} sent)",
                        delay_seconds=5,
                    ) from None
                failed = {str(f["Id"]) for f in answer.get("Failed") or []}
                refused.extend(body for i, body in enumerate(chunk) if str(i) in failed)
                sent += len(chunk) - len(failed)
            pending = refused
            if not pending:
                return sent
        raise RetryableError(
            f"SQS refused {len(pending)} of {len(messages)} messages twice ({sent} sent)", delay_seconds=5
        )

    def delay(self, app: str, receipt_handle: str, seconds: int) -> None:
        """Hide a received message for ``seconds`` before SQS delivers it again (a retry delay).

        If SQS refuses, the message still comes back, after the queue's own visibility timeout.
        """
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.url_for(app),
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=max(0, min(MAX_VISIBILITY_SECONDS, seconds)),
            )
        except Exception as exc:
            logger.warning(
                "could not delay a message; it returns after the queue's visibility timeout",
                extra={"error": error_code(exc) or type(exc).__name__},
            )

    def dead_letter(self, app: str, message: dict[str, Any]) -> bool:
        """Put a step message on its queue's DLQ, as SQS does after maxReceiveCount receives.

        For a re-sent copy of a message (one that waited for rate budget): SQS counts its receives
        from zero, so the runner moves it itself when the step's real attempts are used up. Returns
        False when no DLQ is configured (the run is FAILED either way)."""
        url = self.dead_letter_urls.get(app)
        if not url:
            logger.warning("no dead-letter queue configured for %s steps; the failed run stays visible", app)
            return False
        try:
            self._sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))
        except Exception as exc:
            raise RetryableError(
                f"could not move a step to the dead-letter queue ({error_code(exc) or type(exc).__name__})",
                delay_seconds=5,
            ) from None
        return True


def queue_depth(url: str) -> dict[str, int] | None:
    """A queue's approximate message counts (``visible``, ``in_flight``, ``delayed``); None when the
    queue does not exist."""
    try:
        attributes = client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
    except Exception as exc:
        if error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return None
        raise
    return {
        "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    }
