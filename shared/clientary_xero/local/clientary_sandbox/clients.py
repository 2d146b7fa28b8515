"""Clients, leads (same fields as clients), contacts (a client's users) and staff (read-only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clientary_xero.local.clientary_sandbox.fields import _field_builder
from clientary_xero.local.clientary_sandbox.spec import (
    Record,
    ResourceSpec,
    _by_name,
    _newest_first,
    _oldest_first,
)

if TYPE_CHECKING:
    from clientary_xero.local.clientary_sandbox.state import SandboxState

CLIENT_ATTRIBUTES = (
    "number",
    "name",
    "address",
    "address_2",
    "city",
    "state",
    "zip",
    "country",
    "website",
    "description",
    "invoice_extra_fields",
    "currency_code",
)
STAFF_ATTRIBUTES = ("name", "email", "title", "phone", "mobile", "ext", "avatar")
CONTACT_ATTRIBUTES = ("name", "email", "title", "phone", "mobile", "ext", "client_id")


def _build_client(sandbox: SandboxState, fields: dict[str, Any], existing: Record | None) -> Record:
    record: Record = {}
    if existing is None:
        record.update(
            {
                "number": None,
                "name": None,
                "address": "",
                "address_2": "",
                "city": "",
                "state": "",
                "zip": "",
                "country": "",
                "website": "",
                "description": "",
                "invoice_extra_fields": None,
                "currency_code": None,
                "status": 1,
            }
        )
    record.update(fields)
    if record.get("number") is not None:
        record["number"] = str(record["number"])
    return record


def clients_spec() -> ResourceSpec:
    return ResourceSpec(
        name="clients",
        wrapper="client",
        attributes=CLIENT_ATTRIBUTES,
        required=("name",),
        unique=("number",),
        default_page_size=10,
        updated_since=True,
        id_start=2_120_001,
        sorts={None: _by_name, "date": _newest_first},
        build=_build_client,
    )


def leads_spec() -> ResourceSpec:
    return ResourceSpec(
        # Leads: "default is by date, newest first"; sort=oldest / sort=name.
        name="leads",
        wrapper="lead",
        attributes=CLIENT_ATTRIBUTES,
        required=("name",),
        unique=("number",),
        default_page_size=20,
        id_start=2_500_001,
        sorts={None: _newest_first, "oldest": _oldest_first, "name": _by_name},
        build=_build_client,
    )


def contacts_spec() -> ResourceSpec:
    return ResourceSpec(
        name="contacts",
        wrapper="client_user",
        attributes=CONTACT_ATTRIBUTES,
        required=("name", "email"),
        default_page_size=10,
        id_start=3_300_001,
        sorts={None: _by_name},
        parent="clients",
        parent_key="client_id",
        build=_field_builder(
            {
                "name": None,
                "email": None,
                "title": "",
                "phone": "",
                "mobile": "",
                "ext": "",
                "avatar": None,
            },
            refs={"client_id": "clients"},
        ),
    )


def staff_spec() -> ResourceSpec:
    return ResourceSpec(
        # "Creation, deletion and update of Staff users is not supported via the API."
        name="staff",
        wrapper="staff",
        attributes=STAFF_ATTRIBUTES,
        required=("name",),
        paged=False,
        read_only=True,
        id_start=1_001,
        sorts={None: _by_name},
        build=_field_builder(
            {"name": None, "email": "", "title": "", "phone": "", "mobile": "", "ext": "", "avatar": None}
        ),
    )
