"""The test/CLI helpers that put records in the account as if made in the Clientary UI
(``seed_client``, ``add_invoice``, ``add_payment``, ``seed_staff``, ``load_record``, ``touch``…) and
read them back (``get_record``, ``all_records``), with the API's validation but no HTTP."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from clientary_xero.local.clientary_sandbox.fields import _moment
from clientary_xero.local.clientary_sandbox.spec import Record, SandboxValidation
from clientary_xero.local.clientary_sandbox.state import SandboxState


class SeedingMixin(SandboxState):
    """Records as if made in the UI."""

    def seed_client(self, name: str, **fields: Any) -> Record:
        """A client as if created in the Clientary UI."""
        return self._helper_create("clients", {"name": name, **fields})

    def add_invoice(
        self, client_id: int | None, items: Iterable[dict[str, Any]] = (), **fields: Any
    ) -> Record:
        """An invoice as if created in the Clientary UI: today's date, due in 30 days, the client's
        currency (or USD), next number. ``items`` are ``{"title", "quantity", "price", "taxable"?,
        "item_type"?}``; other invoice fields (``status``, ``tax``, ``number``…) go in ``fields``."""
        with self._lock:
            today = self.now().date()
            client = self._records["clients"].get(int(client_id)) if client_id is not None else None
            defaults: dict[str, Any] = {
                "date": today.isoformat(),
                "due_date": (today + timedelta(days=30)).isoformat(),
                "currency_code": (client or {}).get("currency_code") or "USD",
            }
            body = {**defaults, **fields, "client_id": client_id, "invoice_items_attributes": list(items)}
            return self._helper_create("invoices", body)

    def load_record(self, resource: str, record: dict[str, Any]) -> Record:
        """Store a record exactly as given (a sample file, a recording), replacing one with its id.

        It needs an integer ``id``; ``created_at``/``updated_at`` are kept as written (any Clientary
        form) and default to now. Nothing is validated or recomputed: that is the point.
        """
        with self._lock:
            if resource not in self.resources:
                raise KeyError(f"the sandbox serves no {resource!r}")
            stored: Record = copy.deepcopy(dict(record))
            stored["id"] = int(stored["id"])
            now = self.now()
            for key, internal in (("created_at", "_created"), ("updated_at", "_updated")):
                text = stored.pop(key, None)
                moment = _moment(text) if text else None
                stored[internal] = moment or (stored.get("_created") if key == "updated_at" else None) or now
                if moment is not None:
                    stored[f"{internal}_text"] = text
            stored["_created_ts"] = stored["_created"].timestamp()
            self._records[resource][stored["id"]] = stored
            self._next_ids[resource] = max(self._next_ids[resource], stored["id"] + 1)
            return self._render(resource, stored)

    def add_record(self, resource: str, **fields: Any) -> Record:
        """Any record as if created in the Clientary UI (same validation as the API, no HTTP)."""
        return self._helper_create(resource, fields)

    def seed_staff(self, name: str, **fields: Any) -> Record:
        """A staff user (the API cannot create staff; the account owner adds them in the UI)."""
        return self._helper_create("staff", {"name": name, **fields})

    def add_payment(self, invoice_id: int, amount: float, **fields: Any) -> Record:
        """A payment recorded on an invoice in the UI."""
        return self._helper_create("payments", {"invoice_id": int(invoice_id), "amount": amount, **fields})

    def touch(self, resource: str, record_id: int, **changes: Any) -> Record:
        """Edit any record as in the UI (``updated_at`` becomes now)."""
        with self._lock:
            return self._helper_update(resource, record_id, changes)

    def delete_record(self, resource: str, record_id: int) -> None:
        with self._lock:
            del self._records[resource][int(record_id)]

    def touch_invoice(self, invoice_id: int, **changes: Any) -> Record:
        """Edit an invoice as in the UI (``updated_at`` becomes now), optionally changing fields."""
        with self._lock:
            return self._helper_update("invoices", invoice_id, changes)

    def get_record(self, resource: str, record_id: int) -> Record | None:
        with self._lock:
            record = self._records[resource].get(int(record_id))
            return self._render(resource, record) if record else None

    def all_records(self, resource: str) -> list[Record]:
        """Every record of a resource in the API's default order."""
        with self._lock:
            spec = self.resources[resource]
            return [self._render(resource, r) for r in self._sorted(spec, None)]

    def invoices(self) -> list[Record]:
        return self.all_records("invoices")

    def _helper_create(self, resource: str, fields: dict[str, Any]) -> Record:
        with self._lock:
            spec = self.resources[resource]
            try:
                return self._create(spec, {k: v for k, v in fields.items() if k in spec.attributes})
            except SandboxValidation as exc:
                raise ValueError(str(exc)) from None

    def _helper_update(self, resource: str, record_id: int, fields: dict[str, Any]) -> Record:
        spec = self.resources[resource]
        if int(record_id) not in self._records[resource]:
            raise KeyError(f"no {resource} {record_id}")
        unknown = set(fields) - set(spec.attributes)
        if unknown:
            raise ValueError(f"{resource} has no settable fields {sorted(unknown)}")
        try:
            return self._update(spec, int(record_id), fields)
        except SandboxValidation as exc:
            raise ValueError(str(exc)) from None
