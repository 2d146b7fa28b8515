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
# Sub-collections: POST /invoices/:id/payments, GET|POST /projects/:id/hours.
_NESTED_RE = re.compile(r"^/api/v2/(?P<parent>[a-z_]+)/(?P<pid>[^/]+)/(?P<child>[a-z_]+)/?$")


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
    # A sub-collection (hours of a project, payments of an invoice): created only under its parent
    # (POST /<parent>/:id/<name>), which sets ``parent_key``.
    parent: str | None = None
    parent_key: str | None = None
    # GET /<name>/:id exists (Clientary documents none for payments).
    get_one: bool = True
    # Clientary offers no create/update (staff).
    read_only: bool = False
    # list_hook(sandbox, records, query) -> (records, extra envelope keys): filters such as
    # projects' ``filter=all`` or expenses' date window; raises SandboxValidation for a bad query.
    list_hook: (
        Callable[[ClientarySandbox, list[Record], dict[str, str]], tuple[list[Record], dict[str, Any]]] | None
    ) = None
    # after_create(sandbox, stored record): side effects (a payment updates its invoice).
    after_create: Callable[[ClientarySandbox, Record], None] | None = None


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
        fiscal_year_start_month: int = 1,
        task_create_path: str = "/tasks",
        ignore_payment_dates: bool = False,
        nest_invoice_client: bool = True,
    ) -> None:
        self.subdomain = subdomain
        # Undocumented behaviour the product checks at run time (README "Unverified against a live
        # Clientary account"): a payment create may drop received_on (today's date instead), and an
        # invoice may come without its nested client (client_id only, as the docs' example shows).
        self.ignore_payment_dates = ignore_payment_dates
        self.nest_invoice_client = nest_invoice_client
        # Which spelling creates a task: the docs say POST /task, every known client POST /tasks;
        # the other one answers 404 (the action falls back from /tasks to /task).
        if task_create_path not in ("/tasks", "/task"):
            raise ValueError("task_create_path is '/tasks' or '/task'")
        self.task_create_path = task_create_path
        self.api_token = api_token or secrets.token_hex(16)
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.tz = timezone(utc_offset)
        self.plan_limits = dict(plan_limits or {})
        # Account setting: the default window of GET /expenses is the current fiscal year.
        self.fiscal_year_start_month = fiscal_year_start_month
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
        self._lost_answers: list[int | None] = []

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

    def lose_next_answer(self, count: int = 1, status: int | None = None) -> None:
        """Carry out the next ``count`` writes (POST/PUT), then lose the answer: a time-out, or
        ``status`` (e.g. 502) instead of the real answer. The outcome a retry must not guess at."""
        with self._lock:
            self._lost_answers.extend([status] * count)

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
                response = self._route(request)
            except SandboxValidation as exc:
                return _json_response(exc.status, {"errors": exc.errors})
            if self._lost_answers and request.method in ("POST", "PUT") and response.is_success:
                lost = self._lost_answers.pop(0)
                if lost is None:
                    raise httpx.ReadTimeout(
                        "the Clientary sandbox wrote, then timed out (as asked)", request=request
                    )
                return _json_response(lost, {"error": _STATUS_TEXT.get(lost, "Error")})
            return response

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
        if not wants_json:
            # Clientary answers HTML unless asked for JSON (docs: Accept header or .json suffix).
            return httpx.Response(406, content=b"Not Acceptable", headers={"Content-Type": "text/plain"})
        nested = _NESTED_RE.match(path)
        if nested:
            return self._route_nested(request, nested["parent"], nested["pid"], nested["child"])
        if request.method == "POST" and path.rstrip("/") in ("/api/v2/task", "/api/v2/tasks"):
            if path.rstrip("/") != "/api/v2" + self.task_create_path:
                return _json_response(404, {"error": "Not Found"})
            path = "/api/v2/tasks"
        match = _PATH_RE.match(path)
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
            if record is None or not spec.get_one:
                return _json_response(404, {"error": "Not Found"})
            return _json_response(200, self._render(spec.name, record))
        if method in ("POST", "PUT") and not spec.read_only:
            body = _json_body(request)
            if body is None:
                return _json_response(400, {"error": "Invalid JSON"})
            fields = self._unwrap(spec, body)
            if method == "POST" and record_id is None and spec.parent is None:
                # Status of a create is undocumented; Rails' respond_with gives 201 + the record.
                return _json_response(201, self._create(spec, fields))
            if method == "PUT" and record_id is not None:
                if int(record_id) not in self._records[spec.name]:
                    return _json_response(404, {"error": "Not Found"})
                if spec.parent_key:
                    fields.pop(spec.parent_key, None)  # a record does not move to another parent
                return _json_response(200, self._update(spec, int(record_id), fields))
        return _json_response(405, {"error": "Method Not Allowed"})

    def _route_nested(self, request: httpx.Request, parent: str, pid: str, child: str) -> httpx.Response:
        spec = self.resources.get(child)
        if spec is None or spec.parent != parent or not pid.isdigit() or spec.parent_key is None:
            return _json_response(404, {"error": "Not Found"})
        if int(pid) not in self._records[parent]:
            return _json_response(404, {"error": "Not Found"})
        if request.method == "GET":
            return self._list(spec, request, parent_id=int(pid))
        if request.method == "POST":
            body = _json_body(request)
            if body is None:
                return _json_response(400, {"error": "Invalid JSON"})
            fields = {**self._unwrap(spec, body), spec.parent_key: int(pid)}
            return _json_response(201, self._create(spec, fields))
        return _json_response(405, {"error": "Method Not Allowed"})

    @staticmethod
    def _unwrap(spec: ResourceSpec, body: dict[str, Any]) -> dict[str, Any]:
        """Fields under the wrapper key; without it, the top-level attributes (Rails wrap_parameters,
        which is why unwrapped bodies work too). Unknown attributes are dropped silently."""
        wrapped = body.get(spec.wrapper)
        source: dict[str, Any] = wrapped if isinstance(wrapped, dict) else body
        return {k: v for k, v in source.items() if k in spec.attributes}

    # ------------------------------------------------------------------ list / create / update
    def _list(
        self, spec: ResourceSpec, request: httpx.Request, parent_id: int | None = None
    ) -> httpx.Response:
        query = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
        records = self._sorted(spec, query.get("sort"))
        if parent_id is not None and spec.parent_key:
            records = [r for r in records if r.get(spec.parent_key) == parent_id]
        if spec.updated_since and query.get("updated_since"):
            since = _parse_day(query["updated_since"])
            if since is None:
                return _json_response(400, {"error": "updated_since must be YYYY-MM-DD"})
            # Date-granular and inclusive here; Clientary documents neither the bound nor the zone.
            records = [r for r in records if r["_updated"].astimezone(self.tz).date() >= since]
        extra: dict[str, Any] = {}
        if spec.list_hook is not None:
            records, extra = spec.list_hook(self, records, query)
        rendered_key = spec.name
        if not spec.paged:
            return _json_response(200, {**extra, rendered_key: [self._render(spec.name, r) for r in records]})
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
                **extra,
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
        if spec.after_create is not None:
            spec.after_create(self, record)
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
        if key == "client_id" and sandbox.nest_invoice_client:
            out["client"] = embedded
    return out


def _next_number(invoices: Iterable[Record]) -> str:
    numbers = [int(r["number"]) for r in invoices if str(r.get("number") or "").isdigit()]
    return str(max(numbers, default=1000) + 1)


# --------------------------------------------------------------------------- the other resources
def _field_builder(
    defaults: dict[str, Any],
    *,
    dates: tuple[str, ...] = (),
    dash_dates: bool = False,
    numbers: tuple[str, ...] = (),
    integers: tuple[str, ...] = (),
    booleans: tuple[str, ...] = (),
    refs: dict[str, str] | None = None,
    finish: Callable[[ClientarySandbox, Record], None] | None = None,
) -> Callable[[ClientarySandbox, dict[str, Any], Record | None], Record]:
    """A ``build`` hook for a flat resource: typed fields checked like Rails validations would (422)."""
    references = refs or {}

    def build(sandbox: ClientarySandbox, fields: dict[str, Any], existing: Record | None) -> Record:
        errors: dict[str, list[str]] = {}
        record: Record = copy.deepcopy(existing) if existing else copy.deepcopy(defaults)
        for key, value in fields.items():
            if key in dates:
                if _blank(value):
                    record[key] = None
                    continue
                day = _parse_day(value)
                if day is None:
                    errors.setdefault(key, []).append("is invalid")
                    continue
                record[key] = day.isoformat() if dash_dates else sandbox.date_text(day)
            elif key in numbers:
                number = _decimal(value)
                if number is None:
                    errors.setdefault(key, []).append("is not a number")
                    continue
                record[key] = float(number)
            elif key in integers or key in references:
                if value is None:
                    record[key] = None
                    continue
                if isinstance(value, bool) or not str(value).isdigit():
                    errors.setdefault(key, []).append("is not a number")
                    continue
                if key in references and int(value) not in sandbox._records[references[key]]:
                    errors.setdefault(key.removesuffix("_id"), []).append("must exist")
                    continue
                record[key] = int(value)
            elif key in booleans:
                record[key] = value in (True, 1, "1", "true")
            else:
                record[key] = value
        if errors:
            raise SandboxValidation(errors)
        if finish is not None:
            finish(sandbox, record)
        return record

    return build


def _today(sandbox: ClientarySandbox, record: Record, key: str, dash: bool = False) -> None:
    if not record.get(key):
        day = sandbox.now().date()
        record[key] = day.isoformat() if dash else sandbox.date_text(day)


def _oldest_first(record: Record) -> Any:
    return (record["_created_ts"], record["id"])


def _received_newest_first(record: Record) -> Any:
    day = _parse_day(record.get("received_on"))
    return (-(day.toordinal() if day else 0), -record["_created_ts"], -record["id"])


# Expenses: the list is not paginated and covers a date window (default: the current fiscal year).
EXPENSE_ATTRIBUTES = ("amount", "description", "incurred_on", "client_id", "project_id", "invoice_id")


def _finish_expense(sandbox: ClientarySandbox, record: Record) -> None:
    _today(sandbox, record, "incurred_on")
    if record.get("amount") is not None and float(record["amount"]) <= 0:
        raise SandboxValidation({"amount": ["must be greater than 0"]})


def _expense_window(
    sandbox: ClientarySandbox, records: list[Record], query: dict[str, str]
) -> tuple[list[Record], dict[str, Any]]:
    start_month = sandbox.fiscal_year_start_month
    today = sandbox.now().date()
    year = today.year if today.month >= start_month else today.year - 1
    default_from = date(year, start_month, 1)
    default_to = date(year + 1, start_month, 1) - timedelta(days=1)
    bounds: dict[str, date] = {}
    for key, default in (("from_date", default_from), ("to_date", default_to)):
        text = query.get(key)
        day = _parse_day(text) if text else default
        if day is None:
            raise SandboxValidation({key: ["is invalid"]})
        bounds[key] = day
    chosen = [
        r
        for r in records
        if (day := _parse_day(r.get("incurred_on"))) is not None
        and bounds["from_date"] <= day <= bounds["to_date"]
    ]
    return chosen, {
        "total_count": len(chosen),
        "from_date": sandbox.date_text(bounds["from_date"]),
        "to_date": sandbox.date_text(bounds["to_date"]),
    }


# Projects: the default list has only active (1) and billable (4) projects; ``filter=all`` has all.
PROJECT_ATTRIBUTES = (
    "number",
    "name",
    "description",
    "status",
    "budget_type",
    "project_type",
    "rate",
    "budget",
    "currency_code",
    "start_date",
    "end_date",
    "client_id",
)


def _project_filter(
    sandbox: ClientarySandbox, records: list[Record], query: dict[str, str]
) -> tuple[list[Record], dict[str, Any]]:
    if query.get("filter") == "all":
        return records, {}
    return [r for r in records if r.get("status") in (1, 4)], {}


def _render_project(sandbox: ClientarySandbox, record: Record) -> Record:
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


# Hours (time entries) of a project: body key ``project_item``; not paginated.
HOURS_ATTRIBUTES = ("title", "description", "hours", "date", "rate", "project_id")


def _finish_hours(sandbox: ClientarySandbox, record: Record) -> None:
    _today(sandbox, record, "date")
    if record.get("hours") is not None and float(record["hours"]) <= 0:
        raise SandboxValidation({"hours": ["must be greater than 0"]})
    project = sandbox._records["projects"].get(record.get("project_id") or -1) or {}
    if record.get("rate") is None:
        record["rate"] = float(project.get("rate") or 0)
    cost = (_decimal(record.get("hours")) or Decimal(0)) * (_decimal(record.get("rate")) or Decimal(0))
    record["cost"] = float(cost.quantize(_CENT, ROUND_HALF_UP))


# Tasks: POST /tasks with {"task": {...}}; timestamps in UTC with a Z (the docs' example).
TASK_ATTRIBUTES = ("title", "description", "due_date", "project_id", "client_id", "assignee_id", "complete")


def _finish_task(sandbox: ClientarySandbox, record: Record) -> None:
    if record.get("complete") and not record.get("completed_at"):
        record["completed_at"] = sandbox.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not record.get("complete"):
        record["completed_at"] = None


def _render_task(sandbox: ClientarySandbox, record: Record) -> Record:
    out = dict(record)
    for key in ("created_at", "updated_at"):
        moment = _moment(out.get(key))
        if moment is not None:
            out[key] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


# Payments: created only under an invoice; received_on with dashes (the docs' example).
PAYMENT_ATTRIBUTES = ("amount", "note", "received_on", "invoice_id")


def _finish_payment(sandbox: ClientarySandbox, record: Record) -> None:
    if sandbox.ignore_payment_dates:
        record["received_on"] = None  # as if Clientary ignored it: the payment gets today's date
    _today(sandbox, record, "received_on", dash=True)
    if record.get("amount") is not None and float(record["amount"]) <= 0:
        raise SandboxValidation({"amount": ["must be greater than 0"]})


def _payment_made(sandbox: ClientarySandbox, payment: Record) -> None:
    """A payment shows in its invoice's ``payments`` and lowers its balance; settled means paid (4)."""
    invoice = sandbox._records["invoices"][payment["invoice_id"]]
    invoice.setdefault("payments", []).append(
        {
            "id": payment["id"],
            "amount": payment["amount"],
            "received_on": payment["received_on"],
            "note": payment.get("note") or "",
            "invoice_id": invoice["id"],
        }
    )
    _compute_totals(sandbox, invoice)
    if invoice["balance"] <= 0 and invoice.get("status") != 4:
        invoice["status"] = 4
        _compute_totals(sandbox, invoice)
    invoice["_updated"] = sandbox.now()
    invoice.pop("_updated_text", None)


# Estimates: like invoices without due date, payments or balance; items under ``estimate_items``.
ESTIMATE_ATTRIBUTES = (
    "number",
    "title",
    "date",
    "client_id",
    "currency_code",
    "note",
    "summary",
    "status",
    "tax",
    "tax_label",
    "tax2",
    "tax2_label",
    "tax3",
    "tax3_label",
    "compound_tax",
    "estimate_items_attributes",
)
_INVOICE_ONLY = (
    "due_date",
    "payments",
    "balance",
    "total_payments",
    "po",
    "recurring_schedules",
    "paid_date",
)


def _build_estimate(sandbox: ClientarySandbox, fields: dict[str, Any], existing: Record | None) -> Record:
    status = fields.get("status")
    if status is not None and (not str(status).isdigit() or int(status) not in range(8)):
        raise SandboxValidation({"status": ["is not included in the list"]})
    as_invoice = {
        k: v for k, v in fields.items() if k not in ("estimate_items_attributes", "status", "number")
    }
    as_invoice["due_date"] = fields.get("date") or (existing or {}).get("date") or sandbox.now().date()
    if "estimate_items_attributes" in fields:
        as_invoice["invoice_items_attributes"] = fields["estimate_items_attributes"]
    previous = None
    if existing is not None:
        previous = {**existing, "invoice_items": existing.get("estimate_items") or [], "status": 0}
    record = _build_invoice(sandbox, as_invoice, previous)
    record["estimate_items"] = record.pop("invoice_items")
    for key in _INVOICE_ONLY:
        record.pop(key, None)
    record["status"] = int(status) if status is not None else (existing or {}).get("status", 0)
    number = fields.get("number")
    if not _blank(number):
        record["number"] = str(number)
    elif existing is not None:
        record["number"] = existing["number"]
    else:
        record["number"] = _next_number(sandbox._records["estimates"].values())
    return record


STAFF_ATTRIBUTES = ("name", "email", "title", "phone", "mobile", "ext", "avatar")
CONTACT_ATTRIBUTES = ("name", "email", "title", "phone", "mobile", "ext", "client_id")


def default_resources() -> list[ResourceSpec]:
    """Every resource the Clientary API documents (reference/clientary-api.md §2), contracts aside:
    Clientary has no contracts endpoint."""
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
        ResourceSpec(
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
        ),
        ResourceSpec(
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
        ),
        ResourceSpec(
            # Clientary does not document the estimate list order; newest first here (like invoices).
            name="estimates",
            wrapper="estimate",
            attributes=ESTIMATE_ATTRIBUTES,
            required=("date", "currency_code"),
            unique=("number",),
            default_page_size=30,
            id_start=8_100_001,
            sorts={None: _newest_first},
            build=_build_estimate,
            render=_render_invoice,
        ),
        ResourceSpec(
            # Undocumented order: oldest first here, so the pollers cannot rely on newest-first lists.
            name="projects",
            wrapper="project",
            attributes=PROJECT_ATTRIBUTES,
            required=("name",),
            unique=("number",),
            default_page_size=20,
            id_start=300_001,
            sorts={None: _oldest_first},
            build=_field_builder(
                {
                    "number": None,
                    "name": None,
                    "description": "",
                    "status": 1,
                    "budget_type": 0,
                    "project_type": 0,
                    "rate": 0.0,
                    "budget": 0.0,
                    "cost": 0.0,
                    "currency_code": "USD",
                    "start_date": None,
                    "end_date": None,
                    "client_id": None,
                },
                dates=("start_date", "end_date"),
                numbers=("rate", "budget"),
                integers=("status", "budget_type", "project_type"),
                refs={"client_id": "clients"},
            ),
            render=_render_project,
            list_hook=_project_filter,
        ),
        ResourceSpec(
            name="hours",
            wrapper="project_item",
            attributes=HOURS_ATTRIBUTES,
            required=("hours", "title"),
            paged=False,
            id_start=61_000_001,
            sorts={None: _oldest_first},
            parent="projects",
            parent_key="project_id",
            build=_field_builder(
                {
                    "title": None,
                    "description": "",
                    "hours": None,
                    "date": None,
                    "rate": None,
                    "user_id": 1,
                    "billed?": False,
                },
                dates=("date",),
                numbers=("hours", "rate"),
                finish=_finish_hours,
            ),
        ),
        ResourceSpec(
            # Undocumented order (the docs' example shows page_size 50): oldest first here.
            name="tasks",
            wrapper="task",
            attributes=TASK_ATTRIBUTES,
            required=("title",),
            default_page_size=50,
            id_start=44_000_001,
            sorts={None: _oldest_first},
            build=_field_builder(
                {
                    "title": None,
                    "description": None,
                    "complete": False,
                    "completed_at": None,
                    "due_date": None,
                    "project_id": None,
                    "client_id": None,
                    "assignee_id": None,
                    "user_id": 1,
                },
                dates=("due_date",),
                booleans=("complete",),
                refs={"project_id": "projects", "client_id": "clients", "assignee_id": "staff"},
                finish=_finish_task,
            ),
            render=_render_task,
        ),
        ResourceSpec(
            # Default order: newest received_on first; sort=created_at: newest created first.
            name="payments",
            wrapper="payment",
            attributes=PAYMENT_ATTRIBUTES,
            required=("amount",),
            default_page_size=30,
            id_start=980_190_001,
            sorts={None: _received_newest_first, "created_at": _newest_first},
            parent="invoices",
            parent_key="invoice_id",
            get_one=False,
            build=_field_builder(
                {
                    "amount": None,
                    "note": "",
                    "received_on": None,
                    "invoice_id": None,
                    "transaction_fee_amount": 0.0,
                    "transaction_id": None,
                },
                dates=("received_on",),
                dash_dates=True,
                numbers=("amount",),
                finish=_finish_payment,
            ),
            after_create=_payment_made,
        ),
        ResourceSpec(
            name="expenses",
            wrapper="expense",
            attributes=EXPENSE_ATTRIBUTES,
            required=("amount",),
            paged=False,
            id_start=5_000_001,
            sorts={None: _oldest_first},
            build=_field_builder(
                {
                    "amount": None,
                    "description": "",
                    "incurred_on": None,
                    "client_id": None,
                    "project_id": None,
                    "invoice_id": None,
                    "invoice_item_id": None,
                    "user_id": 1,
                },
                dates=("incurred_on",),
                numbers=("amount",),
                refs={"client_id": "clients", "project_id": "projects", "invoice_id": "invoices"},
                finish=_finish_expense,
            ),
            list_hook=_expense_window,
        ),
        ResourceSpec(
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


def _json_body(request: httpx.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


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
