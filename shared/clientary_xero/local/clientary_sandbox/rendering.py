"""What the sandbox sends back: JSON responses, status texts, and the record shapes that differ from
the stored record (an invoice's embedded client, a project's client and hours, a task's UTC times).

The shape every record shares (internal ``_`` keys dropped, ``created_at``/``updated_at`` in the
account's zone) is ``SandboxState._render``; a spec's ``render`` hook adds the rest.
"""

from __future__ import annotations

import json
from datetime import UTC
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from clientary_xero.local.clientary_sandbox.fields import _decimal, _moment
from clientary_xero.local.clientary_sandbox.spec import Record

if TYPE_CHECKING:
    from clientary_xero.local.clientary_sandbox.state import SandboxState

_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    426: "must meet plan limits",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return httpx.Response(status, headers=merged, content=content)


# --------------------------------------------------------------------------- record shapes
def _render_invoice(sandbox: SandboxState, record: Record) -> Record:
    client = sandbox._records["clients"].get(record.get("client_id") or -1)
    embedded = {"id": client["id"], "name": client["name"]} if client else record.get("client")
    out: Record = {}
    for key, value in record.items():
        if key == "client":
            continue
        out[key] = value
        if key == "client_id" and sandbox.nest_invoice_client:
            out["client"] = embedded
    return out


def _render_project(sandbox: SandboxState, record: Record) -> Record:
    # The docs' project JSON embeds the whole client and has no top-level client_id. A project the
    # API made or changed knows its client by client_id (stored, never shown); one loaded in the
    # documented shape (a sample, a recording) has only the nested client: keep that as given.
    out = {k: v for k, v in record.items() if k != "client_id"}
    if "client_id" in record:
        client = sandbox._records["clients"].get(record.get("client_id") or -1)
        out["client"] = sandbox._render("clients", client) if client else None
    hours = [h for h in sandbox._records.get("hours", {}).values() if h.get("project_id") == record["id"]]
    worked = sum((_decimal(h.get("hours")) or Decimal(0) for h in hours), Decimal(0))
    unbilled = sum(
        (_decimal(h.get("hours")) or Decimal(0) for h in hours if not h.get("billed?")), Decimal(0)
    )
    out["worked_hours"], out["unbilled_hours"] = float(worked), float(unbilled)
    return out


def _render_task(sandbox: SandboxState, record: Record) -> Record:
    out = dict(record)
    for key in ("created_at", "updated_at"):
        moment = _moment(out.get(key))
        if moment is not None:
            out[key] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out
