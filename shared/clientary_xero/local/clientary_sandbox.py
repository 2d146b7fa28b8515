"""A local, stateful stand-in for one Clientary account, served as an httpx transport.

Install it under the real client (``ClientaryClient(..., transport=sandbox)`` or
``connectors.http.set_transport(sandbox)``) and the real HTTP code runs against it: Basic auth with
the token as user and password, ``Accept: application/json`` (or a ``.json`` path), wrapper keys,
list envelopes with ``page_count``/``page_size``/``total_count``, ``updated_since``, 422 for a
missing required or a duplicate unique field, 426 for plan limits. Records look like Clientary's:
integer ids, dates with slashes (``2011/07/26``), ``created_at``/``updated_at`` timestamps with
the account's UTC offset, invoice totals computed from the items.

Where Clientary is silent (error bodies, status codes of creates, list order) the sandbox makes a
plausible choice and says so in a comment, so tests never rely on more than the real API promises.

Resources are a table (``ResourceSpec``): adding expenses, projects, payments… means adding a spec
with its wrapper key, required and unique fields, default page size, order and a ``build`` hook.

Never imported by a Lambda handler.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import math
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

import httpx

Clock = Callable[[], datetime]
Record = dict[str, Any]

MAX_PAGE_SIZE = 100
_CENT = Decimal("0.01")
_PATH_RE = re.compile(r"^/api/v2/(?P<resource>[a-z_]+)(?:/(?P<id>[^/]+))?/?$")


class SandboxValidation(Exception):
    """A 422 (or, from a helper, a ``ValueError``-like misuse): ``errors`` maps field → messages."""

    def __init__(self, errors: dict[str, list[str]], status: int = 422) -> None:
        super().__init__("; ".join(f"{k} {m}" for k, ms in errors.items() for m in ms))
        self.errors = errors
        self.status = status


# --------------------------------------------------------------------------- resource table
@dataclass(frozen=True)
class ResourceSpec:
    """How one Clientary resource behaves in the sandbox."""

    name: str  # path segment and list envelope key ("invoices")
    wrapper: str  # body key of POST/PUT ("invoice")
    attributes: tuple[str, ...]  # what a POST/PUT may set (Rails strong parameters drop the rest)
    required: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    default_page_size: int = 30
    paged: bool = True
    updated_since: bool = False
    # Orders for ?sort=…; the None entry is the default. Keys sort ascending (negate for newest first).
    sorts: dict[str | None, Callable[[Record], Any]] = field(default_factory=dict)
    id_start: int = 1000
    # build(sandbox, fields, existing) -> the stored record (existing is None on create).
    build: Callable[[ClientarySandbox, dict[str, Any], Record | None], Record] | None = None
    # render(sandbox, stored record) -> what GET returns (embed related records, …).
    render: Callable[[ClientarySandbox, Record], Record] | None = None


def _newest_first(record: Record) -> Any:
    return (-record["_created_ts"], -record["id"])


def _by_name(record: Record) -> Any:
    return (str(record.get("name") or "").lower(), record["id"])


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
INVOICE_ATTRIBUTES = (
    "number",
    "title",
    "date",
    "due_date",
    "client_id",
    "currency_code",
    "note",
    "summary",
    "po",
    "status",
    "tax",
    "tax_label",
    "tax2",
    "tax2_label",
    "tax3",
    "tax3_label",
    "compound_tax",
    "invoice_items_attributes",
)
ITEM_ATTRIBUTES = ("id", "title", "quantity", "price", "taxable", "item_type", "_destroy")


# --------------------------------------------------------------------------- the transport
class ClientarySandbox(httpx.BaseTransport):
    """One Clientary account on ``https://{subdomain}.clientary.com`` (thread-safe)."""

    def __init__(
        self,
        *,
        subdomain: str = "sandbox",
        api_token: str | None = None,
        clock: Clock | None = None,
        utc_offset: timedelta = timedelta(hours=-8),
        plan_limits: dict[str, int] | None = None,
        resources: Iterable[ResourceSpec] | None = None,
    ) -> None:
        self.subdomain = subdomain
        self.api_token = api_token or secrets.token_hex(16)
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.tz = timezone(utc_offset)
        self.plan_limits = dict(plan_limits or {})
        self.resources = {
            spec.name: spec for spec in (resources if resources is not None else default_resources())
        }
        self.request_count = 0
        self.requests: list[tuple[str, str]] = []  # (method, path?query) of every request served
        self._lock = threading.RLock()
        self._records: dict[str, dict[int, Record]] = {name: {} for name in self.resources}
        self._next_ids: dict[str, int] = {name: spec.id_start for name, spec in self.resources.items()}
        self._item_ids = itertools.count(70_000_001)
        self._failures: list[tuple[int | None, dict[str, str], Any]] = []

    def __repr__(self) -> str:
        return f"ClientarySandbox(subdomain={self.subdomain!r})"

    # ------------------------------------------------------------------ test/CLI helpers
    def bootstrap_secret(self) -> dict[str, str]:
        """The Clientary connection secret for this account (``CLIENTARY_SECRET_ID``'s shape)."""
        return {"subdomain": self.subdomain, "api_token": self.api_token}

    def fail_next(
        self, status: int, count: int = 1, headers: dict[str, str] | None = None, body: Any = None
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (after the host check, before auth)."""
        with self._lock:
            for _ in range(count):
                self._failures.append((status, dict(headers or {}), body))

    def timeout_next(self, count: int = 1) -> None:
        """Make the next ``count`` requests time out (``httpx.ReadTimeout``)."""
        with self._lock:
            for _ in range(count):
                self._failures.append((None, {}, None))

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

    def now(self) -> datetime:
        return self.clock().astimezone(self.tz).replace(microsecond=0)

    # ------------------------------------------------------------------ formats
    def timestamp(self, moment: datetime) -> str:
        """Rails' JSON time: ISO 8601 in the account's zone, to the second."""
        return moment.astimezone(self.tz).replace(microsecond=0).isoformat()

    @staticmethod
    def date_text(day: date) -> str:
        return day.strftime("%Y/%m/%d")

    # ------------------------------------------------------------------ transport
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host or ""
        if request.url.scheme != "https" or not host.endswith(".clientary.com"):
            raise httpx.ConnectError(
                f"the Clientary sandbox does not serve {request.url.scheme}://{host}", request=request
            )
        request.read()
        with self._lock:
            self.request_count += 1
            target = request.url.raw_path.decode("ascii", "replace")
            self.requests.append((request.method, target))
            if self._failures:
                status, headers, body = self._failures.pop(0)
                if status is None:
                    raise httpx.ReadTimeout("the Clientary sandbox timed out (as asked)", request=request)
                if body is None:
                    body = {"error": _STATUS_TEXT.get(status, "Error")}
                return _json_response(status, body, headers)
            if host != f"{self.subdomain}.clientary.com":
                # An unknown account: Clientary shows a page; JSON here so the client can show it.
                return _json_response(404, {"error": "Account not found"})
            if not self._authorized(request):
                # Rails' http_basic_authenticate answers exactly this.
                return httpx.Response(
                    401,
                    headers={
                        "WWW-Authenticate": 'Basic realm="Application"',
                        "Content-Type": "text/plain; charset=utf-8",
                    },
                    content=b"HTTP Basic: Access denied.\n",
                )
            try:
                return self._route(request)
            except SandboxValidation as exc:
                return _json_response(exc.status, {"errors": exc.errors})

    def _authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.api_token) and secrets.compare_digest(
            password, self.api_token
        )

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        wants_json = path.endswith(".json") or "application/json" in request.headers.get("accept", "")
        path = path.removesuffix(".json")
        match = _PATH_RE.match(path)
        if not wants_json:
            # Clientary answers HTML unless asked for JSON (docs: Accept header or .json suffix).
            return httpx.Response(406, content=b"Not Acceptable", headers={"Content-Type": "text/plain"})
        if not match or match["resource"] not in self.resources:
            return _json_response(404, {"error": "Not Found"})
        spec = self.resources[match["resource"]]
        record_id = match["id"]
        if record_id is not None and not record_id.isdigit():
            return _json_response(404, {"error": "Not Found"})
        method = request.method
        if method == "GET" and record_id is None:
            return self._list(spec, request)
        if method == "GET":
            record = self._records[spec.name].get(int(record_id or 0))
            if record is None:
                return _json_response(404, {"error": "Not Found"})
            return _json_response(200, self._render(spec.name, record))
        if method in ("POST", "PUT"):
            try:
                body = json.loads(request.content or b"{}")
            except ValueError:
                return _json_response(400, {"error": "Invalid JSON"})
            if not isinstance(body, dict):
                return _json_response(400, {"error": "Invalid JSON"})
            fields = self._unwrap(spec, body)
            if method == "POST" and record_id is None:
                # Status of a create is undocumented; Rails' respond_with gives 201 + the record.
                return _json_response(201, self._create(spec, fields))
            if method == "PUT" and record_id is not None:
                if int(record_id) not in self._records[spec.name]:
                    return _json_response(404, {"error": "Not Found"})
                return _json_response(200, self._update(spec, int(record_id), fields))
        return _json_response(405, {"error": "Method Not Allowed"})

    @staticmethod
    def _unwrap(spec: ResourceSpec, body: dict[str, Any]) -> dict[str, Any]:
        """Fields under the wrapper key; without it, the top-level attributes (Rails wrap_parameters,
        which is why unwrapped bodies work too). Unknown attributes are dropped silently."""
        wrapped = body.get(spec.wrapper)
        source: dict[str, Any] = wrapped if isinstance(wrapped, dict) else body
        return {k: v for k, v in source.items() if k in spec.attributes}

    # ------------------------------------------------------------------ list / create / update
    def _list(self, spec: ResourceSpec, request: httpx.Request) -> httpx.Response:
        query = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
        records = self._sorted(spec, query.get("sort"))
        if spec.updated_since and query.get("updated_since"):
            since = _parse_day(query["updated_since"])
            if since is None:
                return _json_response(400, {"error": "updated_since must be YYYY-MM-DD"})
            # Date-granular and inclusive here; Clientary documents neither the bound nor the zone.
            records = [r for r in records if r["_updated"].astimezone(self.tz).date() >= since]
        rendered_key = spec.name
        if not spec.paged:
            return _json_response(200, {rendered_key: [self._render(spec.name, r) for r in records]})
        page = _positive_int(query.get("page"), 1)
        page_size = min(_positive_int(query.get("page_size"), spec.default_page_size), MAX_PAGE_SIZE)
        total = len(records)
        chunk = records[(page - 1) * page_size : page * page_size]
        return _json_response(
            200,
            {
                "page_count": math.ceil(total / page_size),
                "page_size": page_size,
                "total_count": total,
                rendered_key: [self._render(spec.name, r) for r in chunk],
            },
        )

    def _sorted(self, spec: ResourceSpec, sort: str | None) -> list[Record]:
        key = spec.sorts.get(sort) or spec.sorts.get(None) or _newest_first
        return sorted(self._records[spec.name].values(), key=key)

    def _create(self, spec: ResourceSpec, fields: dict[str, Any]) -> Record:
        missing = {name: ["can't be blank"] for name in spec.required if _blank(fields.get(name))}
        if missing:
            raise SandboxValidation(missing)
        limit = self.plan_limits.get(spec.name)
        if limit is not None and len(self._records[spec.name]) >= limit:
            raise SandboxValidation({"base": ["must meet plan limits"]}, status=426)
        self._check_unique(spec, fields, None)
        now = self.now()
        record: Record = {"id": self._new_id(spec.name)}
        record.update(spec.build(self, fields, None) if spec.build else fields)
        record["_created"] = record["_updated"] = now
        record["_created_ts"] = now.timestamp()
        self._records[spec.name][record["id"]] = record
        return self._render(spec.name, record)

    def _update(self, spec: ResourceSpec, record_id: int, fields: dict[str, Any]) -> Record:
        existing = self._records[spec.name][record_id]
        blanked = {
            name: ["can't be blank"] for name in spec.required if name in fields and _blank(fields[name])
        }
        if blanked:
            raise SandboxValidation(blanked)
        self._check_unique(spec, fields, record_id)
        updated = copy.deepcopy(existing)
        updated.update(spec.build(self, fields, existing) if spec.build else fields)
        updated["_updated"] = self.now()
        updated.pop("_updated_text", None)
        self._records[spec.name][record_id] = updated
        return self._render(spec.name, updated)

    def _check_unique(self, spec: ResourceSpec, fields: dict[str, Any], record_id: int | None) -> None:
        for name in spec.unique:
            value = fields.get(name)
            if _blank(value):
                continue
            for other in self._records[spec.name].values():
                if other["id"] != record_id and str(other.get(name)) == str(value):
                    raise SandboxValidation({name: ["has already been taken"]})

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

    def _new_id(self, resource: str) -> int:
        record_id = self._next_ids[resource]
        self._next_ids[resource] = record_id + 1
        return record_id

    def _render(self, resource: str, record: Record) -> Record:
        spec = self.resources[resource]
        out = {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}
        out["created_at"] = record.get("_created_text") or self.timestamp(record["_created"])
        out["updated_at"] = record.get("_updated_text") or self.timestamp(record["_updated"])
        return spec.render(self, out) if spec.render else out


# --------------------------------------------------------------------------- clients
def _build_client(sandbox: ClientarySandbox, fields: dict[str, Any], existing: Record | None) -> Record:
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


# --------------------------------------------------------------------------- invoices
def _build_invoice(sandbox: ClientarySandbox, fields: dict[str, Any], existing: Record | None) -> Record:
    errors: dict[str, list[str]] = {}
    record: Record = (
        copy.deepcopy(existing)
        if existing
        else {
            "number": None,
            "title": "",
            "date": None,
            "due_date": None,
            "client_id": None,
            "note": "",
            "summary": None,
            "po": "",
            "status": 0,
            "currency_code": None,
            "tax": 0.0,
            "tax_label": "Tax",
            "tax2": 0.0,
            "tax2_label": "",
            "tax3": 0.0,
            "tax3_label": "",
            "compound_tax": False,
            "invoice_items": [],
            "payments": [],
            "recurring_schedules": [],
            "paid_date": None,
        }
    )
    for key, value in fields.items():
        if key == "invoice_items_attributes":
            continue
        if key in ("date", "due_date"):
            day = _parse_day(value)
            if day is None:
                errors.setdefault(key, []).append("is invalid")
                continue
            record[key] = sandbox.date_text(day)
        elif key == "currency_code":
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
                errors.setdefault(key, []).append("is invalid")
                continue
            record[key] = value.upper()
        elif key == "client_id":
            if value is not None and (
                not str(value).isdigit() or int(value) not in sandbox._records["clients"]
            ):
                errors.setdefault("client", []).append("must exist")
                continue
            record[key] = int(value) if value is not None else None
        elif key == "status":
            if not str(value).isdigit() or int(value) not in range(6):
                errors.setdefault(key, []).append("is not included in the list")
                continue
            record[key] = int(value)
        elif key in ("tax", "tax2", "tax3"):
            number = _decimal(value)
            if number is None:
                errors.setdefault(key, []).append("is not a number")
                continue
            record[key] = float(number)
        elif key == "compound_tax":
            record[key] = bool(value)
        elif key == "number":
            record[key] = None if _blank(value) else str(value)
        else:
            record[key] = value
    items = _apply_items(
        sandbox, record.get("invoice_items") or [], fields.get("invoice_items_attributes"), errors
    )
    if errors:
        raise SandboxValidation(errors)
    record["invoice_items"] = items
    if _blank(record.get("number")):
        record["number"] = _next_number(sandbox._records["invoices"].values())
    _compute_totals(sandbox, record)
    return record


def _apply_items(
    sandbox: ClientarySandbox, current: list[Record], attributes: Any, errors: dict[str, list[str]]
) -> list[Record]:
    """Rails nested attributes: an entry with ``id`` updates (or with ``_destroy`` removes) that item,
    one without ``id`` adds an item."""
    items = copy.deepcopy(current)
    if attributes is None:
        return items
    if isinstance(attributes, dict):  # Rails also accepts {"0": {...}, "1": {...}}
        attributes = list(attributes.values())
    if not isinstance(attributes, list):
        errors.setdefault("invoice_items", []).append("is invalid")
        return items
    for raw in attributes:
        if not isinstance(raw, dict):
            errors.setdefault("invoice_items", []).append("is invalid")
            continue
        entry = {k: v for k, v in raw.items() if k in ITEM_ATTRIBUTES}
        if entry.get("id") is not None:
            target = next((i for i in items if str(i["id"]) == str(entry["id"])), None)
            if target is None:
                errors.setdefault("invoice_items", []).append(f"item {entry['id']} not found")
                continue
            if entry.get("_destroy") in (True, 1, "1", "true"):
                items.remove(target)
                continue
        else:
            target = {
                "id": next(sandbox._item_ids),
                "item_type": 3,
                "title": "",
                "quantity": 1.0,
                "price": 0.0,
                "taxable": False,
            }
            items.append(target)
        if "title" in entry:
            target["title"] = entry["title"]
        if "taxable" in entry:
            target["taxable"] = entry["taxable"] in (True, 1, "1", "true")
        if "item_type" in entry:
            if not str(entry["item_type"]).isdigit():
                errors.setdefault("invoice_items.item_type", []).append("is not a number")
                continue
            target["item_type"] = int(entry["item_type"])
        for key in ("quantity", "price"):
            if key in entry:
                number = _decimal(entry[key])
                if number is None:
                    errors.setdefault(f"invoice_items.{key}", []).append("is not a number")
                    continue
                target[key] = float(number)
        if target.get("item_type") == 0:  # a section header has a title only
            target["quantity"], target["price"] = 0.0, 0.0
    return items


def _compute_totals(sandbox: ClientarySandbox, record: Record) -> None:
    subtotal = taxable = Decimal(0)
    for item in record["invoice_items"]:
        if item.get("item_type") == 0:
            continue
        quantity = _decimal(item.get("quantity")) or Decimal(0)
        line = (quantity * (_decimal(item.get("price")) or Decimal(0))).quantize(_CENT, ROUND_HALF_UP)
        subtotal += line
        if item.get("taxable", item.get("taxable?")):
            taxable += line
    rate1, rate2, rate3 = (Decimal(str(record.get(k) or 0)) / 100 for k in ("tax", "tax2", "tax3"))
    tax1 = (taxable * rate1).quantize(_CENT, ROUND_HALF_UP)
    tax2 = ((taxable + tax1 if record.get("compound_tax") else taxable) * rate2).quantize(
        _CENT, ROUND_HALF_UP
    )
    tax3 = (taxable * rate3).quantize(_CENT, ROUND_HALF_UP)
    total = subtotal + tax1 + tax2 + tax3
    paid = sum((_decimal(p.get("amount")) or Decimal(0) for p in record.get("payments") or []), Decimal(0))
    if record.get("status") == 4 and not paid:
        paid = total  # marked paid in the UI: treat it as settled in full
    if record.get("status") == 4 and not record.get("paid_date"):
        record["paid_date"] = sandbox.date_text(sandbox.now().date())
    record.update(
        subtotal=float(subtotal),
        taxable_subtotal=float(taxable),
        non_taxable_subtotal=float(subtotal - taxable),
        total_tax=float(tax1),
        total_tax2=float(tax2),
        total_tax3=float(tax3),
        total_taxes=float(tax1 + tax2 + tax3),
        total_cost=float(total),
        total_payments=float(paid),
        balance=float(total - paid),
    )


def _render_invoice(sandbox: ClientarySandbox, record: Record) -> Record:
    client = sandbox._records["clients"].get(record.get("client_id") or -1)
    embedded = {"id": client["id"], "name": client["name"]} if client else record.get("client")
    out: Record = {}
    for key, value in record.items():
        if key == "client":
            continue
        out[key] = value
        if key == "client_id":
            out["client"] = embedded
    return out


def _next_number(invoices: Iterable[Record]) -> str:
    numbers = [int(r["number"]) for r in invoices if str(r.get("number") or "").isdigit()]
    return str(max(numbers, default=1000) + 1)


def default_resources() -> list[ResourceSpec]:
    """The resources the sandbox serves today (issue 4 adds expenses, projects, tasks, …)."""
    return [
        ResourceSpec(
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
        ),
        ResourceSpec(
            # Clientary does not document the invoice list order; newest first (by creation) here.
            name="invoices",
            wrapper="invoice",
            attributes=INVOICE_ATTRIBUTES,
            required=("date", "due_date", "currency_code"),
            unique=("number",),
            default_page_size=30,
            updated_since=True,
            id_start=9_540_001,
            sorts={None: _newest_first},
            build=_build_invoice,
            render=_render_invoice,
        ),
    ]


# --------------------------------------------------------------------------- small helpers
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


def _moment(value: Any) -> datetime | None:
    from clientary_xero.connectors.clientary.normalize import to_datetime

    try:
        return to_datetime(value)
    except ValueError:
        return None


def _parse_day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    match = re.fullmatch(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})", str(value or "").strip())
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _positive_int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() and int(value) > 0 else default


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
