"""Where runs end, what the engine tells: metrics (``clientary_xero.metrics``) and, for a run that
ends FAILED, a notice for the notifier's next digest (storage/notices.py; the design is in
usecases/alerts.py).

The step runner's FAILED update carries the notice and the workflow's streak in one transaction
(``failed_writes``), so a run never ends FAILED without its notice. The intake writes the notices
of the runs it fails right after creating them (``intake_finished``); if that write fails the run
is FAILED all the same and its ``RunsFailed`` metric (and so the alarm on it) still tells.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from clientary_xero import metrics
from clientary_xero.engine import runs as R
from clientary_xero.storage.notices import NoticeStore

if TYPE_CHECKING:  # pragma: no cover
    from clientary_xero.engine.intake import Outcome

logger = logging.getLogger(__name__)

# A service's message in a notice: enough to act on, never a whole response body.
MAX_MESSAGE_CHARS = 500
MAX_MESSAGES = 5

_STARTED = {R.QUEUED: None, R.FILTERED: "RunsFiltered", R.FAILED: "RunsFailed", R.SUCCEEDED: "RunsSucceeded"}


def notice_of(run: dict[str, Any], step_id: str | None, error: dict[str, Any]) -> dict[str, Any]:
    """What a digest says about one FAILED run (no record contents: ids and the service's message)."""
    messages = [str(m)[:MAX_MESSAGE_CHARS] for m in (error.get("messages") or [])[:MAX_MESSAGES]]
    return {
        "run_id": run["run_id"],
        "generation": int(run.get("generation") or 0),
        "workflow_id": str(run.get("workflow_id") or "?"),
        "trigger": str(run.get("trigger") or ""),
        "record_id": str(run.get("record_id") or ""),
        "step_id": step_id,
        "type": error.get("type") or "permanent",
        "message": str(error.get("message") or "")[:MAX_MESSAGE_CHARS],
        "messages": messages,
        "service": error.get("service"),
        # errors.ReauthorizationRequired: the Xero connection must be made again.
        "reconnect": bool(error.get("reconnect")),
    }


def failed_writes(
    state: Any, run: dict[str, Any], step_id: str | None, error: dict[str, Any]
) -> list[dict[str, Any]]:
    """The notice and streak writes that ride along with a run's FAILED update."""
    return NoticeStore(state.table_name, clock=state.clock).failed_run_writes(notice_of(run, step_id, error))


def run_failed(run: dict[str, Any]) -> None:
    metrics.count("RunsFailed", workflow=str(run.get("workflow_id") or "?"))


def succeeded_writes(state: Any, run: dict[str, Any]) -> list[dict[str, Any]]:
    """The write that rides along with a run's SUCCEEDED update: its workflow's failure streak ends."""
    return [NoticeStore(state.table_name, clock=state.clock).streak_reset(str(run.get("workflow_id") or "?"))]


def run_succeeded(run: dict[str, Any]) -> None:
    metrics.count("RunsSucceeded")


def intake_finished(state: Any, outcomes: Sequence[Outcome], *, now: float | None = None) -> None:
    """Count the runs an intake created, their trigger lag, and write the FAILED ones' notices."""
    now = time.time() if now is None else now
    writes: list[dict[str, Any]] = []
    streaks: dict[str, int] = {}  # one streak write per workflow, not per record of a poll page
    store = NoticeStore(state.table_name, clock=state.clock)
    for outcome in outcomes:
        event = outcome.event
        for start in outcome.starts:
            if not start.created or start.status not in _STARTED:
                continue
            metrics.count("RunsStarted")
            name = _STARTED[start.status]
            if name == "RunsFailed":
                metrics.count(name, workflow=start.workflow_id)
                run = {
                    "run_id": start.run_id,
                    "workflow_id": start.workflow_id,
                    "trigger": event.trigger,
                    "record_id": event.record_id,
                }
                writes.append(store.notice_write(notice_of(run, None, {"message": start.detail})))
                streaks[start.workflow_id] = streaks.get(start.workflow_id, 0) + 1
            elif name:
                metrics.count(name)
            lag = trigger_lag(event, now)
            if lag is not None:
                metrics.observe("TriggerLag", lag, metrics.SECONDS)
    if writes:
        try:
            store.write([*writes, *(store.streak_write(w, n) for w, n in streaks.items())])
        except Exception:
            logger.exception("could not write the notices of runs that failed at intake (their metric tells)")


def reconnect_needed(state: Any, source: str, error: Exception) -> None:
    """Xero needs reconnecting and no run failed for it (a trigger's fetch, a poll): told all the
    same, in the next digest's reconnect section. Best effort: the caller raises on (its function's
    errors alarm, and its queue's DLQ, tell too)."""
    store = NoticeStore(state.table_name, clock=state.clock)
    try:
        store.write([store.reconnect_write(source, str(error)[:MAX_MESSAGE_CHARS])])
    except Exception:
        logger.exception("could not write the reconnect notice")


def trigger_lag(event: Any, now: float) -> float | None:
    """Seconds from the record's creation (or, for an update trigger, its update; for a Xero
    webhook, the event) to its run. None when the record says no time, or for a backfill (old
    records on purpose)."""
    if event.delivery == "backfill":
        return None
    record = event.record if isinstance(event.record, dict) else {}
    for value in (
        (event.meta or {}).get("event_date"),
        event.version,
        record.get("created_at"),
        record.get("CreatedDateUTC"),
    ):
        when = _instant(value)
        if when is not None:
            return max(0.0, now - when)
    return None


def _instant(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 time or Xero's ``/Date(ms+zzzz)/``; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.startswith("/Date("):
        digits = text[6:].split(")")[0].split("+")[0]
        try:
            return int(digits) / 1000.0
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
