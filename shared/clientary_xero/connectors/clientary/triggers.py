"""Clientary trigger sources: for each trigger, how to re-read one record and how to poll for new ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clientary_xero.connectors.clientary import pollers


@dataclass(frozen=True)
class ClientarySource:
    trigger: str
    fetch: Callable[[Any, str], dict[str, Any]]
    poll_fn: Callable[..., pollers.PollBatch]

    def poll(self, client: Any, state: Any, *, now: datetime | None = None) -> pollers.PollBatch:
        return self.poll_fn(client, state, now=now or datetime.now(UTC), trigger=self.trigger)


SOURCES: dict[str, ClientarySource] = {
    "clientary.new_invoice": ClientarySource(
        "clientary.new_invoice", pollers.fetch_invoice, pollers.poll_new_invoices
    ),
}
