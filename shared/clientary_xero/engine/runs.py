"""Run records: ids, statuses, the evaluation context."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from clientary_xero.workflows.triggers import get_trigger

QUEUED = "QUEUED"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
FILTERED = "FILTERED"
# Parked until Xero's daily limit resets (``resume_at``); the sweeper re-enqueues it when due.
WAITING = "WAITING"
# The record arrived while its workflow was disabled: recorded (record kept, nothing enqueued) so
# ``runs replay`` or a backfill after re-enabling can start it. Not terminal: it can still start.
SKIPPED = "SKIPPED"
TERMINAL = (SUCCEEDED, FAILED, FILTERED)


def run_id_for(workflow_id: str, trigger: str, record_id: str, version: str | None = None) -> str:
    """Deterministic: the same record for the same workflow always maps to the same run (the dedupe key)."""
    key = "\n".join([workflow_id, trigger, record_id, version or ""])
    return "r" + hashlib.sha256(key.encode()).hexdigest()[:24]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso(epoch_seconds: float) -> str:
    """An epoch time in the same ISO form as ``now_iso`` (e.g. a parked run's ``resume_at``)."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def epoch(iso_text: Any) -> float:
    """``now_iso``'s form back to epoch seconds (0.0 for a missing or unreadable value)."""
    try:
        return datetime.fromisoformat(str(iso_text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def idempotency_key(run_id: str, step_id: str, generation: int) -> str:
    """Xero's Idempotency-Key for a step's writes (≤ 128 chars). A replay is a new generation: Xero
    caches failed responses under a key too, so a replay must not reuse the failed attempt's key."""
    return f"{run_id}:{step_id}:{generation}"


def build_context(run: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """What expressions see: the record under its resource name, ``trigger``, ``steps.<id>`` and
    ``settings.<name>`` (the run's definition's: a replay takes the current definition's)."""
    spec = get_trigger(run["trigger"])
    resource = spec.resource if spec else "record"
    workflow = run.get("workflow")
    settings = workflow.get("settings") if isinstance(workflow, dict) else None
    return {
        resource: run.get("record"),
        "trigger": run.get("trigger_meta", {}),
        "steps": outputs,
        "settings": settings if isinstance(settings, dict) else {},
    }


# What a step message carries of its run (``carried``): the fields a step execution reads.
CARRIED_FIELDS = (
    "run_id",
    "workflow_id",
    "trigger",
    "record_id",
    "created_at",
    "generation",
    "status",
    "current_step",
    "record",
    "trigger_meta",
    "workflow",
    "decisions",
)


def carried(run: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any] | None:
    """The run and its steps' outputs as the next step's message carries them, so that step need
    not read them (engine/runner.py); None when they would not fit a message (``CARRY_BYTES``).
    JSON as it arrives, so sender and receiver digest the same thing (``run_revision``)."""
    import json

    from clientary_xero.storage.state import CARRY_BYTES

    snapshot = {key: run[key] for key in CARRIED_FIELDS if run.get(key) is not None}
    text = json.dumps({"run": snapshot, "outputs": outputs}, default=str)
    if len(text.encode("utf-8")) > CARRY_BYTES:
        return None
    content: dict[str, Any] = json.loads(text)
    return content
