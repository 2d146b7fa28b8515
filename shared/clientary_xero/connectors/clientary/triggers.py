"""Clientary trigger sources: for each trigger, how to re-read one record, how to poll for new ones
and how to list history for a backfill.

Every trigger but ``clientary.new_contract`` polls (Clientary publishes no webhooks). Clientary's
API has no contracts endpoint, so New Contract is push-only: nothing to poll, nothing to re-read;
the signed push body is the record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clientary_xero.connectors.clientary import normalize as N
from clientary_xero.connectors.clientary import pollers

Normalizer = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class ClientarySource:
    trigger: str
    # Re-read one record by id, as Clientary returns it, for the push route; None: the pushed body
    # is the record (contracts).
    fetch_raw: Callable[[Any, str], dict[str, Any]] | None
    poll_fn: Callable[..., pollers.PollBatch] | None
    normalize: Normalizer = N.normalize_record
    listing: pollers.Listing | None = None

    @property
    def pollable(self) -> bool:
        return self.poll_fn is not None

    @property
    def push_only(self) -> bool:
        return self.fetch_raw is None

    def fetch(self, client: Any, record_id: str) -> dict[str, Any]:
        """One record re-read from Clientary, normalised."""
        if self.fetch_raw is None:
            raise ValueError(f"{self.trigger} is push-only: Clientary has no endpoint to re-read it")
        return self.normalize(self.fetch_raw(client, record_id))

    def pushed(self, client: Any, body: dict[str, Any], record_id: str) -> tuple[dict[str, Any], str | None]:
        """The record a push names (re-read, or the body itself when push-only), normalised, and
        the problem when an odd record breaks normalisation: then it is kept raw and the intake
        gives it a FAILED run saying why, as a poll does (never a 500)."""
        raw = {**body, "id": int(record_id)} if self.fetch_raw is None else self.fetch_raw(client, record_id)
        problems: dict[str, str] = {}
        record = pollers.normalized_or_raw(self.normalize, raw, record_id, problems)
        return record, problems.get(record_id)

    def poll(self, client: Any, state: Any, *, now: datetime | None = None) -> pollers.PollBatch:
        if self.poll_fn is None:
            raise ValueError(f"{self.trigger} is push-only: Clientary has nothing to poll for it")
        return self.poll_fn(client, state, now=now or datetime.now(UTC), trigger=self.trigger)

    def backfill(self, client: Any, *, since: datetime) -> list[dict[str, Any]]:
        """Every record created since ``since``, normalised, oldest first."""
        if self.listing is None:
            raise ValueError(f"{self.trigger} is push-only: Clientary has no history to read for it")
        return pollers.list_created_since(client, since=since, listing=self.listing, normalize=self.normalize)


def _poller(listing: pollers.Listing, normalize: Normalizer) -> Callable[..., pollers.PollBatch]:
    def poll(client: Any, state: Any, *, now: datetime, trigger: str) -> pollers.PollBatch:
        return pollers.poll_new_records(
            client, state, now=now, trigger=trigger, listing=listing, normalize=normalize
        )

    return poll


def _fetcher(collection: str) -> Callable[[Any, str], dict[str, Any]]:
    def fetch(client: Any, record_id: str) -> dict[str, Any]:
        return pollers.fetch_record(client, collection, record_id)

    return fetch


def _fetch_invoice(client: Any, record_id: str) -> dict[str, Any]:
    return dict(client.get_invoice(record_id))


def _source(trigger: str, collection: str, normalize: Normalizer) -> ClientarySource:
    listing = pollers.LISTINGS[collection]
    return ClientarySource(trigger, _fetcher(collection), _poller(listing, normalize), normalize, listing)


# Invoices created since a date were updated since that date: the backfill lists that window.
_INVOICE_HISTORY = pollers.Listing(
    "invoices", lambda since: {"updated_since": (since.date() - timedelta(days=1)).isoformat()}
)

SOURCES: dict[str, ClientarySource] = {
    "clientary.new_invoice": ClientarySource(
        "clientary.new_invoice",
        _fetch_invoice,
        pollers.poll_new_invoices,
        N.normalize_invoice,
        _INVOICE_HISTORY,
    ),
    "clientary.new_client": _source("clientary.new_client", "clients", N.normalize_client),
    "clientary.new_lead": _source("clientary.new_lead", "leads", N.normalize_lead),
    "clientary.new_project": _source("clientary.new_project", "projects", N.normalize_project),
    "clientary.new_estimate": _source("clientary.new_estimate", "estimates", N.normalize_estimate),
    "clientary.new_task": _source("clientary.new_task", "tasks", N.normalize_task),
    "clientary.new_expense": _source("clientary.new_expense", "expenses", N.normalize_expense),
    "clientary.new_staff": _source("clientary.new_staff", "staff", N.normalize_staff),
    "clientary.new_payment": ClientarySource(
        "clientary.new_payment",
        pollers.fetch_payment,
        _poller(pollers.LISTINGS["payments"], N.normalize_payment),
        N.normalize_payment,
        pollers.LISTINGS["payments"],
    ),
    # No contracts endpoint in Clientary's API: push-only, the signed body is the record.
    "clientary.new_contract": ClientarySource("clientary.new_contract", None, None, N.normalize_contract),
}
