"""SQS partial batch responses for the action Lambdas, as Powertools' ``BatchProcessor`` (SQS, a
pydantic ``model``, ``raise_on_entire_batch_failure=False``) makes them, without its import.

Each record is read by ``parse`` (``StepRecord.read``: what the model's validation did, without
pydantic) and handed to the handler; a record that does not read, or whose handler raises, is
reported in ``batchItemFailures`` by its ``messageId`` (SQS
redelivers only those), the others complete. Importing ``utilities.batch`` costs a first
invocation its event classes and parser plumbing (~40 modules); this is the part the handler uses.
tests/test_sqs_batch.py runs the same events through both and compares the answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def process_partial_response[M](
    event: dict[str, Any], record_handler: Callable[[M], Any], parse: Callable[[Any], M]
) -> dict[str, list[dict[str, str]]]:
    """``{"batchItemFailures": [{"itemIdentifier": <messageId>}, …]}`` for the records that failed."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not records or not isinstance(records, list):
        # Powertools refuses an empty batch too (SQS never sends one).
        raise ValueError("Invalid event format: expected an SQS event (a non-empty list of Records)")
    failures: list[dict[str, str]] = []
    for record in records:
        try:
            record_handler(parse(record))
        except Exception as exc:  # one record's failure must not fail the batch
            # Powertools logs the same at debug level; the handler logged the step's own outcome.
            logger.debug("Record processing exception: %s:%s", type(exc), exc)
            failures.append(
                {"itemIdentifier": record.get("messageId", "") if isinstance(record, dict) else ""}
            )
    return {"batchItemFailures": failures}
