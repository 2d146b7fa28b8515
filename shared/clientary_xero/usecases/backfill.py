"""A backfill: every record of a Clientary trigger created since a date, handed to the trigger's
workflows like a polled one.

The same code serves the deployed stack (``clientary-xero backfill``) and its rehearsal in-process
against the sandboxes (``--local``, ``local/rehearsal.py``): ``read_history`` lists the records,
``start_runs`` gives them to the intake a chunk at a time and reports progress after each chunk.

**Resumable by construction.** The intake derives a run's id from (workflow, trigger, record) and
creates it with a conditional put, so a record starts a workflow once however often it is handed
over; a run created but not yet enqueued (a backfill killed between the two) is enqueued by the
next delivery of its record. A backfill interrupted anywhere can therefore simply be started again:
what was started is "seen before", the rest starts now, and no step runs twice (step checkpoints,
``Idempotency-Key`` and find-before-create cover a step that was in flight).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clientary_xero.engine.intake import Intake, Outcome, TriggerEvent
from clientary_xero.errors import PermanentError
from clientary_xero.usecases.clientary_trigger import record_event
from clientary_xero.workflows.triggers import TriggerSpec, get_trigger

CHUNK = 100  # records handed to the intake at once (its first-step messages batch by 10)


def backfill_trigger(text: str) -> TriggerSpec:
    """The Clientary trigger a user named (``new_invoice`` or ``clientary.new_invoice``) that has a
    history to read; ``PermanentError`` saying why not otherwise."""
    name = text if "." in text else f"clientary.{text}"
    spec = get_trigger(name)
    if spec is None or spec.source != "clientary":
        raise PermanentError(f"{text!r} is not a Clientary trigger")
    if spec.delivery == "push":
        raise PermanentError(f"{name} is push-only (Clientary has no endpoint to read its history)")
    return spec


def parse_since(text: str) -> datetime:
    """``YYYY-MM-DD`` as UTC midnight; ``PermanentError`` naming the value otherwise."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise PermanentError(f"--since {text!r} is not a date (YYYY-MM-DD)") from None


def read_history(trigger: str, since: datetime) -> list[dict[str, Any]]:
    """Every record of ``trigger`` created since ``since``, normalised, oldest first (Clientary is
    read with the connection in the Clientary secret)."""
    from clientary_xero.connectors.clientary.client import build_clientary_client
    from clientary_xero.connectors.clientary.triggers import SOURCES
    from clientary_xero.settings import get_settings
    from clientary_xero.storage.secrets import SecretStore

    with build_clientary_client(SecretStore(), get_settings()) as client:
        return SOURCES[trigger].backfill(client, since=since)


def events_for(trigger: str, records: list[dict[str, Any]]) -> list[TriggerEvent]:
    problems = getattr(records, "problems", {})
    warnings = getattr(records, "warnings", {})
    return [record_event(trigger, record, "backfill", problems, warnings) for record in records]


@dataclass
class Progress:
    """Where a backfill is, after each chunk: records read, handed to the intake, runs started."""

    read: int
    handed: int = 0
    started: int = 0
    seen_before: int = 0
    retry: int = 0
    started_at: float = field(default_factory=time.monotonic)
    now: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Records handed over per second so far (0 before the first chunk)."""
        elapsed = self.now - self.started_at
        return self.handed / elapsed if elapsed > 0 and self.handed else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until every record is handed over at the rate so far (None: not known yet)."""
        return (self.read - self.handed) / self.rate if self.rate else None


@dataclass
class BackfillResult:
    outcomes: list[Outcome]
    progress: Progress

    @property
    def run_ids(self) -> list[str]:
        return [start.run_id for outcome in self.outcomes for start in outcome.starts]

    @property
    def retry(self) -> list[str]:
        """Records that could not be started now (a retryable failure): run the backfill again."""
        return [outcome.event.record_id for outcome in self.outcomes if outcome.retry is not None]


def start_runs(
    events: Sequence[TriggerEvent],
    *,
    intake: Intake | None = None,
    chunk: int = CHUNK,
    on_chunk: Callable[[Progress, list[Outcome]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BackfillResult:
    """Hand ``events`` to the intake ``chunk`` at a time (one record's failure is its own FAILED
    run); ``on_chunk`` sees the progress and the chunk's outcomes after each."""
    intake = intake or Intake.from_settings()
    progress = Progress(read=len(events), started_at=clock(), now=clock())
    outcomes: list[Outcome] = []
    for first in range(0, len(events), chunk):
        done = intake.start_runs_many(events[first : first + chunk])
        outcomes.extend(done)
        progress.handed += len(done)
        for outcome in done:
            progress.retry += outcome.retry is not None
            for start in outcome.starts:
                progress.started += start.created
                progress.seen_before += not start.created
        progress.now = clock()
        if on_chunk is not None:
            on_chunk(progress, done)
    return BackfillResult(outcomes, progress)
