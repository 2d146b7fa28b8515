"""Metrics as CloudWatch embedded metric format (EMF) lines: JSON log lines that CloudWatch Logs
turns into metrics, with no call to CloudWatch and nothing to wait for.

The layer counts as it goes (``count``, ``observe``: module state, one set per process); each
handler flushes once per invocation (``@flushed``), which prints one line for the stack-wide
values and one per workflow for the few metrics broken down by workflow. The namespace is
``POWERTOOLS_METRICS_NAMESPACE`` (the template sets one per stack); outside Lambda (tests, the
local runner, the CLI) nothing is printed unless a writer is given.

Why not Powertools' ``Metrics``: its import is free here (the package's ``__init__`` imports it
already for the handlers' ``Logger``: measured with ``python -X importtime``, 0 ms more), but it
publishes every metric of a flush under one dimension set plus ``service``. A batch of steps of
several workflows needs the per-workflow ``RunsFailed`` *and* the stack-wide total that the alarm
and the dashboard read: several ``single_metric`` lines, and a ``service`` dimension on every
alarm. The EMF document is small (``_aws.CloudWatchMetrics``: Namespace, Dimensions, Metrics),
so it is written here, with an empty dimension set for the stack-wide values.

Dimensions stay few on purpose: each metric and dimension value is a custom metric CloudWatch
bills monthly, so only ``RunsFailed`` is broken down by workflow (to see which one fails).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

COUNT, SECONDS, MILLISECONDS = "Count", "Seconds", "Milliseconds"
DEFAULT_NAMESPACE = "ClientaryXero"
# EMF takes at most 100 metrics per document and 100 values per metric.
MAX_METRICS, MAX_VALUES = 100, 100

# Every metric the layer records (the template's alarms and dashboard read these names).
METRICS = frozenset(
    {
        "RunsStarted",
        "RunsSucceeded",
        "RunsFailed",
        "RunsFiltered",
        "RunsWaiting",  # runs, by status
        "StepRetries",
        "BudgetWaits",  # a step's retry (an attempt), a wait for Xero's budget (none)
        "XeroCalls",
        "Xero429Minute",
        "Xero429Day",  # every call Xero answered; its 429s by limit
        "TriggerLag",
        "PollDuration",  # record created → run (s); one poll (ms)
        "DeadLetterMessages",
        "NoticesSent",  # the notifier: messages in the DLQs; digests sent
    }
)

# (workflow or "", metric name) -> [unit, summed count | list of observations]
_values: dict[tuple[str, str], list[Any]] = {}


def count(name: str, value: float = 1, *, workflow: str | None = None) -> None:
    """Add to a count (summed per flush); with ``workflow`` also to that workflow's own."""
    _known(name)
    for key in {("", name), (workflow or "", name)}:
        entry = _values.setdefault(key, [COUNT, 0.0])
        entry[1] += value


def observe(name: str, value: float, unit: str) -> None:
    """Record one observation (a lag, a duration): each value is kept, for percentiles."""
    _known(name)
    entry = _values.setdefault(("", name), [unit, []])
    entry[1].append(float(value))


def _known(name: str) -> None:
    if name not in METRICS:  # a typo would be a metric no alarm or dashboard reads
        raise ValueError(f"unknown metric {name!r}: add it to clientary_xero.metrics.METRICS")


def documents(namespace: str | None = None, *, now: float | None = None) -> list[dict[str, Any]]:
    """The EMF documents of what was recorded since the last flush (not cleared)."""
    namespace = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
    timestamp = int((time.time() if now is None else now) * 1000)
    by_workflow: dict[str, list[tuple[str, str, list[float]]]] = {}
    for (workflow, name), (unit, value) in sorted(_values.items()):
        values = value if isinstance(value, list) else [value]
        for start in range(0, len(values), MAX_VALUES):
            by_workflow.setdefault(workflow, []).append((name, unit, values[start : start + MAX_VALUES]))
    docs: list[dict[str, Any]] = []
    for workflow, metrics in by_workflow.items():
        dimensions = [["workflow"]] if workflow else [[]]
        chunk: dict[str, Any] = {}
        for name, unit, values in metrics:
            if name in chunk or len(chunk) >= MAX_METRICS:  # a repeated name needs its own document
                docs.append(_document(namespace, timestamp, dimensions, workflow, chunk))
                chunk = {}
            chunk[name] = (unit, values)
        if chunk:
            docs.append(_document(namespace, timestamp, dimensions, workflow, chunk))
    return docs


def _document(
    namespace: str, timestamp: int, dimensions: list[list[str]], workflow: str, metrics: dict[str, Any]
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": dimensions,
                    "Metrics": [{"Name": name, "Unit": unit} for name, (unit, _) in metrics.items()],
                }
            ],
        }
    }
    if workflow:
        doc["workflow"] = workflow
    for name, (_, values) in metrics.items():
        doc[name] = values[0] if len(values) == 1 else values
    return doc


def flush(write: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """Print the recorded metrics as EMF lines and start afresh. Printed to stdout in Lambda (its
    log group), to ``write`` when given, nowhere otherwise (a CLI's output stays its own)."""
    docs = documents()
    _values.clear()
    if write is None and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        write = _stdout
    if write is not None:
        for doc in docs:
            write(json.dumps(doc, separators=(",", ":")))
    return docs


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def reset() -> None:
    _values.clear()


def flushed[F: Callable[..., Any]](handler: F) -> F:
    """A Lambda handler that flushes the metrics once per invocation, whatever it returns or raises."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            flush()

    return wrapper  # type: ignore[return-value]
