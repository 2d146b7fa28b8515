"""Clientary trigger sources: for each trigger, how to re-read one record, how to poll for new ones
and how to list history for a backfill.

Every trigger but ``clientary.new_contract`` polls (Clientary publishes no webhooks). Clientary's
API has no contracts endpoint, so New Contract is push-only: nothing to poll, nothing to re-read;
the signed push body is the record.

A source may *complete* its records with reads once they are normalised: an invoice without the
nested ``client`` gets it from ``GET /clients/:id`` (``complete_invoice_client``), so a workflow
sees the same record whether or not Clientary nests it. What completing could not do is a warning
per record id (``batch.warnings``): the run's ``trigger.warnings`` says it, next to a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clientary_xero.connectors.clientary import normalize as N
from clientary_xero.connectors.clientary import pollers

logger = logging.getLogger(__name__)

Normalizer = Callable[[Any], dict[str, Any]]
# Fills in, with reads, what a normalised record lacks: (client, record, cache) -> warnings. The
# cache lives for one poll, push or backfill, so each related record is read at most once.
Completer = Callable[[Any, dict[str, Any], dict[Any, Any]], list[str]]

# The invoice's nested client as Clientary's invoices show it (third-party references; the docs'
# own example has only client_id): the fallback builds exactly this shape.
INVOICE_CLIENT_FIELDS = ("id", "name")


def complete_invoice_client(client: Any, invoice: dict[str, Any], cache: dict[Any, Any]) -> list[str]:
    """Give ``invoice`` its nested ``client`` ({id, name}) when Clientary sent only ``client_id``.

    One ``GET /clients/:id`` per client (``cache``), never per field. Without either, or when the
    client cannot be read (not found, not permitted), ``client`` is null and the warning returned
    says so: one invoice's client must not stop a poll. A retryable failure (429, 5xx) propagates:
    the poll is tried again, the cursor unmoved."""
    from clientary_xero.connectors.clientary.client import ClientaryNotFound
    from clientary_xero.errors import PermanentError

    nested = invoice.get("client")
    if isinstance(nested, dict) and nested.get("id") is not None:
        return []
    client_id = invoice.get("client_id")
    invoice["client"] = None
    if client_id is None or client_id == "":
        return [
            f"Clientary invoice {invoice.get('id')} names no client (neither a nested client nor "
            "client_id): invoice.client is null"
        ]
    key = str(client_id).strip()
    if not key.isdigit():
        return [f"Clientary invoice {invoice.get('id')} has a client_id that is not an id: {key[:40]!r}"]
    if key not in cache:
        try:
            cache[key] = pollers.fetch_record(client, "clients", key)
        except ClientaryNotFound:
            cache[key] = "is not a client in Clientary"
        except PermanentError as exc:
            cache[key] = f"could not be read: {exc}"
        logger.info("invoice %s has no nested client: read client %s", invoice.get("id"), key)
    found = cache[key]
    if not isinstance(found, dict):
        return [
            f"Clientary invoice {invoice.get('id')} has no nested client and its client_id {key} "
            f"{found}: invoice.client is null"
        ]
    invoice["client"] = {field: found.get(field) for field in INVOICE_CLIENT_FIELDS}
    return []


@dataclass(frozen=True)
class ClientarySource:
    trigger: str
    # Re-read one record by id, as Clientary returns it, for the push route; None: the pushed body
    # is the record (contracts).
    fetch_raw: Callable[[Any, str], dict[str, Any]] | None
    poll_fn: Callable[..., pollers.PollBatch] | None
    normalize: Normalizer = N.normalize_record
    listing: pollers.Listing | None = None
    complete: Completer | None = None

    @property
    def pollable(self) -> bool:
        return self.poll_fn is not None

    @property
    def push_only(self) -> bool:
        return self.fetch_raw is None

    def fetch(self, client: Any, record_id: str) -> dict[str, Any]:
        """One record re-read from Clientary, normalised (and completed)."""
        if self.fetch_raw is None:
            raise ValueError(f"{self.trigger} is push-only: Clientary has no endpoint to re-read it")
        record = self.normalize(self.fetch_raw(client, record_id))
        self.completed(client, [record], {})
        return record

    def pushed(
        self, client: Any, body: dict[str, Any], record_id: str
    ) -> tuple[dict[str, Any], str | None, list[str]]:
        """The record a push names (re-read, or the body itself when push-only), normalised and
        completed; the problem when an odd record breaks normalisation (then it is kept raw and
        the intake gives it a FAILED run saying why, as a poll does: never a 500); its warnings."""
        raw = {**body, "id": int(record_id)} if self.fetch_raw is None else self.fetch_raw(client, record_id)
        problems: dict[str, str] = {}
        record = pollers.normalized_or_raw(self.normalize, raw, record_id, problems)
        warnings, _ = self.completed(client, [record], problems)
        return record, problems.get(record_id), warnings.get(record_id, [])

    def poll(self, client: Any, state: Any, *, now: datetime | None = None) -> pollers.PollBatch:
        if self.poll_fn is None:
            raise ValueError(f"{self.trigger} is push-only: Clientary has nothing to poll for it")
        batch = self.poll_fn(client, state, now=now or datetime.now(UTC), trigger=self.trigger)
        warnings, reads = self.completed(client, batch, batch.problems)
        batch.warnings.update(warnings)
        batch.requests += reads
        return batch

    def backfill(self, client: Any, *, since: datetime) -> list[dict[str, Any]]:
        """Every record created since ``since``, normalised (and completed), oldest first."""
        if self.listing is None:
            raise ValueError(f"{self.trigger} is push-only: Clientary has no history to read for it")
        records = pollers.list_created_since(
            client, since=since, listing=self.listing, normalize=self.normalize
        )
        warnings, _ = self.completed(client, records, getattr(records, "problems", {}))
        if isinstance(records, pollers.Records):
            records.warnings.update(warnings)
        return records

    def completed(
        self, client: Any, records: Iterable[dict[str, Any]], problems: dict[str, str]
    ) -> tuple[dict[str, list[str]], int]:
        """Complete each normalised record in place (raw ones, in ``problems``, are left as they
        are): record id -> warnings, and how many reads it took."""
        if self.complete is None:
            return {}, 0
        cache: dict[Any, Any] = {}
        warnings: dict[str, list[str]] = {}
        for record in records:
            key = str(record.get("id"))
            if key in problems:
                continue
            said = self.complete(client, record, cache)
            if said:
                warnings[key] = said
                for warning in said:
                    logger.warning("%s: %s", self.trigger, warning)
        return warnings, len(cache)


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
        complete_invoice_client,
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
