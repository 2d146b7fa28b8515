"""A small real action for engine tests (it records its calls) and queue helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from pydantic import BaseModel, ConfigDict

from clientary_xero.connectors import base
from clientary_xero.connectors.base import ActionContext, ActionSpec
from clientary_xero.errors import PermanentError, RetryableError


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any = None
    fail: str | None = None
    count: int = 0


class Echo:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.fail_plan: dict[str, list[str]] = {}

    def __call__(self, ctx: ActionContext, data: EchoInput) -> dict[str, Any]:
        self.calls.append((ctx.step_id, ctx.idempotency_key, ctx.attempt))
        planned = self.fail_plan.get(ctx.step_id)
        mode = planned.pop(0) if planned else data.fail
        if mode == "permanent":
            raise PermanentError("the service refused", messages=["Amount must be positive"], status=400)
        if mode == "retry":
            raise RetryableError("rate limited", delay_seconds=7, status=429, limit="minute")
        if mode == "crash":
            raise RuntimeError("boom")
        return {"value": data.value, "step": ctx.step_id, "count": data.count + 1}


@contextmanager
def echo_action() -> Iterator[Echo]:
    echo = Echo()
    registry = base.registry()
    registry["test.echo"] = ActionSpec("test.echo", "xero", EchoInput, echo)
    try:
        yield echo
    finally:
        registry.pop("test.echo", None)


def queued(url: str) -> list[dict[str, Any]]:
    """Receive (and delete) every visible message on a queue."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    out: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        for message in messages:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
