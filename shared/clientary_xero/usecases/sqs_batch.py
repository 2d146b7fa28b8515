"""SQS partial batch responses for the action Lambdas and the Xero trigger, as Powertools'
``BatchProcessor`` (SQS, a pydantic ``model``, ``raise_on_entire_batch_failure=False``) makes them,
without its import.

Each record is read by ``parse`` (``StepRecord.read``, ``EventRecord.read``: what the models'
validation did, with ``read_record`` and the lax field readers below, without pydantic) and handed
to the handler; a record that does not read, or whose handler raises, is reported in
``batchItemFailures`` by its ``messageId`` (SQS redelivers only those), the others complete.
Importing ``utilities.batch`` costs a first invocation its event classes and parser plumbing (~40
modules); this is the part the handlers use. tests/test_sqs_batch.py runs the same events through
both and compares the answers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clientary_xero.settings import FALSE_WORDS, TRUE_WORDS

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


# ------------------------------------------------------------------ reading records without pydantic
class MalformedRecord(ValueError):
    """An SQS record that is not what its queue carries; the message names each problem,
    pydantic-style (``body.run_id: Field required``), as the models this replaced did."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("not a message of this queue: " + "; ".join(problems))


@dataclass(frozen=True)
class SqsAttributes:
    ApproximateReceiveCount: int


def read_record[B](record: Any, read_body: Callable[[Any], B]) -> tuple[str, str, B, int]:
    """``(messageId, receiptHandle, body, ApproximateReceiveCount)`` of an SQS record whose body is
    JSON read by ``read_body`` (which raises ``MalformedRecord``), checked as Powertools' pydantic
    ``SqsRecordModel`` and a ``Json[…]`` body would be; every problem in one ``MalformedRecord``."""
    if not isinstance(record, dict):
        raise MalformedRecord(["(top level): Input should be a valid dictionary"])
    problems: list[str] = []
    texts: dict[str, str] = {}
    for name in ("messageId", "receiptHandle"):
        if name not in record:
            problems.append(f"{name}: Field required")
            continue
        try:
            texts[name] = text(record[name])
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    body: Any = None
    read = False
    if "body" not in record:
        problems.append("body: Field required")
    elif not isinstance(record["body"], (str, bytes, bytearray)):
        problems.append("body: JSON input should be string, bytes or bytearray")
    else:
        try:
            decoded = json.loads(record["body"])
        except (ValueError, RecursionError) as exc:  # nesting too deep: this record's problem
            problems.append(f"body: Invalid JSON: {type(exc).__name__}: {exc}")
        else:
            try:
                body, read = read_body(decoded), True
            except MalformedRecord as exc:
                problems += exc.problems
    count: int | None = None
    attributes = record.get("attributes")
    if "attributes" not in record:
        problems.append("attributes: Field required")
    elif not isinstance(attributes, dict):
        problems.append("attributes: Input should be a valid dictionary")
    elif "ApproximateReceiveCount" not in attributes:
        problems.append("attributes.ApproximateReceiveCount: Field required")
    else:
        try:
            count = whole(attributes["ApproximateReceiveCount"])
        except ValueError as exc:
            problems.append(f"attributes.ApproximateReceiveCount: {exc}")
    if problems:
        raise MalformedRecord(problems)
    assert read and count is not None
    return texts["messageId"], texts["receiptHandle"], body, count


def read_fields(
    value: dict[str, Any],
    readers: tuple[tuple[str, Callable[[Any], Any], bool], ...],
    place: str,
    problems: list[str],
) -> dict[str, Any]:
    """The fields of ``value`` that ``readers`` name (``(name, reader, required)``, in the order
    pydantic reports them), read; each problem appended as ``<place><name>: reason``."""
    given: dict[str, Any] = {}
    for name, reader, required in readers:
        if name not in value:
            if required:
                problems.append(f"{place}{name}: Field required")
            continue
        try:
            given[name] = reader(value[name])
        except ValueError as exc:
            problems.append(f"{place}{name}: {exc}")
    return given


# Field readers as pydantic's lax mode reads JSON values; each raises ValueError with its reason.
def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    return value


_WHOLE_TEXT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0*)?", re.ASCII)


def whole(value: Any) -> int:
    """An int or a bool, a whole float within 64 bits, ASCII digits in a string ("2", " 2 ",
    "2.0", "1_000")."""
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, str) and _WHOLE_TEXT.fullmatch(value.strip()):
        return int(value.strip().split(".")[0].replace("_", ""))
    raise ValueError("Input should be a valid integer")


def flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in TRUE_WORDS | FALSE_WORDS:
        return value.lower() in TRUE_WORDS
    raise ValueError("Input should be a valid boolean")


def mapping_or_none(value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise ValueError("Input should be a valid dictionary")
    return value
