"""Clientary actions a workflow step can run (the Xero → Clientary direction).

Inputs use Clientary's own field names (snake_case, as in its API docs); unknown fields are refused.
Bodies carry the documented wrapper keys (``client``, ``expense``, ``task``, ``project_item`` for
time entries, ``payment``). Clientary's 422 (a required field missing, a unique one taken) and 426
(plan limits) fail the run with Clientary's own message; 429 and 5xx retry later (the client maps
them, see ``client.py``). Outputs are the created record, normalised like the trigger records
(ISO dates, numbers for money), plus ``created``.

Writes are never re-sent blindly. Clientary has no idempotency keys, so every create carries a
*marker* derived from the step's effect key (run id + step id, the same for every try and every
replay of the step) — ``[cx:<12 hex>]``, a SHA-256 prefix, appended
to a free-text field Clientary stores and returns (a client's or task's ``description``, an
expense's or time entry's ``description``, a payment's ``note``). Then:

1. after a create the record's id is linked to the effect key (State table), so a retry or a
   replay after a lost checkpoint finds it without searching;
2. when the outcome of an earlier try is unknown (``ctx.attempt > 1``: that try timed out, got a
   5xx after Clientary may have written, or the Lambda died), the action first looks where the first
   try would have put the record — the newest clients or tasks, the expenses of that day, the
   project's hours, the invoice's payments — for the marker, and returns what it finds instead of
   creating a second one, provided its key fields are still the step's (a client's name, a task's
   title, an amount, hours, a date: ``connectors.adoption``); a record that carries the marker but
   differs (copied, or edited since) fails the step with what differs;
3. only when neither finds anything is the POST sent.

The marker is needed because a create's answer can be lost (a time-out, a 5xx after the write, a
Lambda that died): then no id was linked, and the marker is the only way the retry can tell its
own record from anyone else's. That Clientary stores the text unchanged is not documented, so
every create checks its answer: a record that comes back without the marker gets a ``warnings``
entry in the step output (and a warning log line): this record is safe (its id is linked), but a
later create whose answer is lost could not be found and might be made twice. Likewise a payment
whose answer carries another ``received_on`` than the one sent (Clientary does not document that
field on create and may use today) still succeeds, once, with a warning saying which date
Clientary recorded; so do a time entry's ``date`` and an expense's ``incurred_on``. See README
"Unverified against a live Clientary account".

``clientary.update_expense`` is a PUT of the same fields: repeating it leaves the same expense, so
it is simply sent again.

Importing this module is cheap: models only; the HTTP client is built on first use.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import date as Day
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clientary_xero.connectors.adoption import Difference, adopt, differences
from clientary_xero.connectors.base import ActionContext, action
from clientary_xero.errors import PermanentError

logger = logging.getLogger(__name__)

APP = "clientary"
CREATED_LINK = "clientary.created"  # idempotency key -> {"collection", "id"} of what a step created
# How far back a retry looks for the record an earlier try made (steps retry within hours).
LOOKBACK = timedelta(days=2)
INVOICE_LOOKUP_PAGES = 20  # invoice_number → id: at most this many pages of 100 invoices


def marker(idempotency_key: str) -> str:
    """The tag a create leaves in a free-text field so a retry can recognise its own record."""
    return "[cx:" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:12] + "]"


def _with_marker(text: str | None, tag: str) -> str:
    return f"{text.rstrip()}\n{tag}" if text and text.strip() else tag


def _has_marker(record: dict[str, Any], field: str, tag: str) -> bool:
    return tag in str(record.get(field) or "")


def _marker_kept(record: dict[str, Any], field: str, tag: str, what: str, created: bool) -> list[str]:
    """A warning when a record this step just created came back without its retry marker."""
    if not created or _has_marker(record, field, tag):
        return []
    warning = (
        f"Clientary returned the new {what} {record.get('id')} without this step's retry marker "
        f"{tag} in its {field}: Clientary may not keep that text as sent (undocumented), so a retry "
        f"after a lost answer could not find a record made by a create like this one and might make "
        f"it twice; this {what} is safe (its id is linked to the step)"
    )
    logger.warning("%s", warning)
    return [warning]


def _with_warnings(output: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    # Only when there is something to say: ``warnings`` in a step output means "look at this".
    return {**output, "warnings": warnings} if warnings else output


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True)


Id = int  # Clientary ids are integers


# ---------------------------------------------------------------------------------------- helpers
def _client(ctx: ActionContext) -> Any:
    return ctx.service("clientary")


def _effect_key(ctx: ActionContext) -> str:
    # Not the Idempotency-Key: that one changes with each replay generation (Xero caches failed
    # answers under it), while a replay must still find what an earlier generation created.
    return ctx.effect_key or f"{ctx.run_id}:{ctx.step_id}"


def _linked(ctx: ActionContext) -> dict[str, Any] | None:
    return ctx.links.get_link(CREATED_LINK, _effect_key(ctx))


def _link(ctx: ActionContext, collection: str, record_id: Any, **extra: Any) -> None:
    ctx.links.put_link(
        CREATED_LINK, _effect_key(ctx), {"collection": collection, "id": int(record_id), **extra}
    )


def _create_once(
    ctx: ActionContext,
    *,
    collection: str,
    post: Callable[[], dict[str, Any]],
    read: Callable[[int], dict[str, Any] | None],
    find: Callable[[], dict[str, Any] | None],
    data: BaseModel,
    keys: tuple[str, ...],
) -> tuple[dict[str, Any], bool]:
    """The find-before-create protocol (module docstring): link, then marker search, then POST.

    A record found by its marker is adopted only when the fields ``keys`` of ``data`` match it.
    The id link needs no such check: it is written only after this step's own create answered."""
    link = _linked(ctx)
    if link and link.get("id") is not None:
        record = read(int(link["id"]))
        if record is not None:
            logger.info("%s %s was made by an earlier try of this step (id link)", collection, link["id"])
            return record, False
    if ctx.attempt > 1:
        found = find()
        if found is not None:
            _check_found(collection, data, keys, found)
            logger.info("%s %s was made by an earlier try of this step (marker)", collection, found.get("id"))
            _link(ctx, collection, found["id"])
            return found, False
    record = post()
    if record.get("id") is None:
        raise PermanentError(f"Clientary answered the {collection} create without an id", service=APP)
    _link(ctx, collection, record["id"])
    return record, True


def _check_found(collection: str, data: BaseModel, keys: tuple[str, ...], found: dict[str, Any]) -> None:
    """Raise (a PermanentError naming what differs) unless ``found`` is what the step would write."""
    from clientary_xero.connectors.clientary.normalize import normalize_record

    def compared(record: dict[str, Any]) -> list[Difference]:
        return differences(data, normalize_record(record), keys)

    adopt(
        [found],
        compared,
        service=APP,
        what=collection.removesuffix("s") if collection != "hours" else "time entry",
        name_of=lambda record: str(record.get("id")),
        hint="it carries this step's retry marker but is not what the step would write; correct or "
        "remove it in Clientary, then replay the run",
    )


def _recent(ctx: ActionContext, listing_name: str, field: str, tag: str) -> dict[str, Any] | None:
    """The record carrying ``tag`` among those created in the last ``LOOKBACK``."""
    from clientary_xero.connectors.clientary.pollers import LISTINGS, list_created_since

    since = datetime.now(UTC) - LOOKBACK
    for record in list_created_since(
        _client(ctx), since=since, listing=LISTINGS[listing_name], normalize=dict
    ):
        if _has_marker(record, field, tag):
            return record
    return None


def _get_or_none(ctx: ActionContext, path: str) -> dict[str, Any] | None:
    from clientary_xero.connectors.clientary.client import ClientaryNotFound

    try:
        return _client(ctx).get(path)
    except ClientaryNotFound:
        return None


# ----------------------------------------------------------------------------------------- clients
class ContactInput(_Input):
    name: str = Field(min_length=1, max_length=255, description="The contact person's name.")
    email: str = Field(min_length=3, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$", description="Their email.")
    title: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=50)
    mobile: str | None = Field(default=None, max_length=50)


class CreateClientInput(_Input):
    name: str = Field(min_length=1, max_length=255, description="The client (company) name. Required.")
    number: str | None = Field(default=None, max_length=50, description="Unique client number.")
    address: str | None = None
    address_2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    website: str | None = None
    description: str | None = Field(
        default=None, description="Free text; the action appends its retry marker [cx:…] here."
    )
    # No currency_code: it is not a documented client field (Clientary would drop it silently).
    contact: ContactInput | None = Field(
        default=None,
        description="A contact person (email, phone) to add to the new client: a Clientary client "
        "has no email of its own (POST /clients/:id/contacts, body key client_user).",
    )


@action("clientary.create_client", app=APP, input_model=CreateClientInput)
def create_client(ctx: ActionContext, data: CreateClientInput) -> dict[str, Any]:
    """Create a Clientary client (POST /clients), optionally with a contact person."""
    from clientary_xero.connectors.clientary.normalize import normalize_client

    client = _client(ctx)
    tag = marker(_effect_key(ctx))
    fields = data.model_dump(exclude_none=True, exclude={"contact"})
    fields["description"] = _with_marker(data.description, tag)
    record, created = _create_once(
        ctx,
        collection="clients",
        post=lambda: client.post("/clients", {"client": fields}),
        read=lambda record_id: _get_or_none(ctx, f"/clients/{record_id}"),
        find=lambda: _recent(ctx, "clients", "description", tag),
        data=data,
        keys=("name",),
    )
    output = normalize_client(record)
    output["created"] = created
    if data.contact is not None:
        output["contact"] = _add_contact(ctx, int(record["id"]), data.contact)
    return _with_warnings(output, _marker_kept(record, "description", tag, "client", created))


def _add_contact(ctx: ActionContext, client_id: int, contact: ContactInput) -> dict[str, Any]:
    """The client's contact with this email, created unless an earlier try already made it."""
    client = _client(ctx)
    existing = client.get(f"/clients/{client_id}/contacts", {"page_size": 100})
    for person in existing.get("contacts") or []:
        if str(person.get("email") or "").lower() == contact.email.lower():
            return {**person, "created": False}
    made = client.post(
        f"/clients/{client_id}/contacts", {"client_user": contact.model_dump(exclude_none=True)}
    )
    return {**made, "created": True}


# ---------------------------------------------------------------------------------------- expenses
class CreateExpenseInput(_Input):
    amount: float = Field(gt=0, allow_inf_nan=False, description="Required; in the account's currency.")
    description: str | None = Field(
        default=None, description="Free text; the action appends its retry marker [cx:…] here."
    )
    incurred_on: Day | None = Field(default=None, description="The expense's date; Clientary uses today.")
    client_id: Id | None = None
    project_id: Id | None = None
    invoice_id: Id | None = None


def _expense_on(ctx: ActionContext, day: Day | None, tag: str) -> dict[str, Any] | None:
    # Expenses are listed by incurred_on (unpaginated): look at the days around the one asked for.
    center = day or datetime.now(UTC).date()
    window = {
        "from_date": (center - timedelta(days=2)).isoformat(),
        "to_date": (center + timedelta(days=2)).isoformat(),
    }
    listed = _client(ctx).get("/expenses", window)
    return next((e for e in listed.get("expenses") or [] if _has_marker(e, "description", tag)), None)


@action("clientary.create_expense", app=APP, input_model=CreateExpenseInput)
def create_expense(ctx: ActionContext, data: CreateExpenseInput) -> dict[str, Any]:
    """Create a Clientary expense (POST /expenses)."""
    from clientary_xero.connectors.clientary.normalize import normalize_expense

    client = _client(ctx)
    tag = marker(_effect_key(ctx))
    fields = data.model_dump(exclude_none=True, exclude={"incurred_on"})
    fields["description"] = _with_marker(data.description, tag)
    if data.incurred_on:
        fields["incurred_on"] = data.incurred_on.isoformat()
    record, created = _create_once(
        ctx,
        collection="expenses",
        post=lambda: client.post("/expenses", {"expense": fields}),
        read=lambda record_id: _get_or_none(ctx, f"/expenses/{record_id}"),
        find=lambda: _expense_on(ctx, data.incurred_on, tag),
        data=data,
        keys=("amount", "incurred_on"),
    )
    output = {**normalize_expense(record), "created": created}
    warnings = _marker_kept(record, "description", tag, "expense", created)
    if data.incurred_on is not None:
        warnings += _date_kept(output, "incurred_on", data.incurred_on, "expense")
    return _with_warnings(output, warnings)


class UpdateExpenseInput(_Input):
    id: Id = Field(description="The expense to change.")
    amount: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    description: str | None = None
    incurred_on: Day | None = None
    client_id: Id | None = None
    project_id: Id | None = None
    invoice_id: Id | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateExpenseInput:
        if not self.model_dump(exclude_none=True, exclude={"id"}):
            raise ValueError("give at least one field to change besides id")
        return self


@action("clientary.update_expense", app=APP, input_model=UpdateExpenseInput)
def update_expense(ctx: ActionContext, data: UpdateExpenseInput) -> dict[str, Any]:
    """Change fields of a Clientary expense (PUT /expenses/:id; sending it twice changes nothing more)."""
    from clientary_xero.connectors.clientary.normalize import normalize_expense

    fields = data.model_dump(exclude_none=True, exclude={"id", "incurred_on"})
    if data.incurred_on:
        fields["incurred_on"] = data.incurred_on.isoformat()
    record = _client(ctx).put(f"/expenses/{data.id}", {"expense": fields})
    return normalize_expense(record)


# ------------------------------------------------------------------------------------------- tasks
class CreateTaskInput(_Input):
    title: str = Field(min_length=1, max_length=255, description="Required.")
    description: str | None = Field(
        default=None, description="Free text; the action appends its retry marker [cx:…] here."
    )
    due_date: Day | None = None
    project_id: Id | None = None
    client_id: Id | None = None
    assignee_id: Id | None = Field(default=None, description="A staff user's id.")


@action("clientary.create_task", app=APP, input_model=CreateTaskInput)
def create_task(ctx: ActionContext, data: CreateTaskInput) -> dict[str, Any]:
    """Create a Clientary task (POST /tasks; POST /task, as the docs spell it, on a 404)."""
    from clientary_xero.connectors.clientary.normalize import normalize_task

    client = _client(ctx)
    tag = marker(_effect_key(ctx))
    fields = data.model_dump(exclude_none=True, exclude={"due_date"})
    fields["description"] = _with_marker(data.description, tag)
    if data.due_date:
        fields["due_date"] = data.due_date.isoformat()

    def post() -> dict[str, Any]:
        # Clientary's docs write the create as POST /api/v2/task (singular) while every other
        # task route, and every third-party client, uses /tasks. A 404 creates nothing, so the
        # documented spelling is tried when the plural one is not there.
        from clientary_xero.connectors.clientary.client import ClientaryNotFound

        try:
            answer: dict[str, Any] = client.post("/tasks", {"task": fields})
        except ClientaryNotFound:
            answer = client.post("/task", {"task": fields})
        return answer

    record, created = _create_once(
        ctx,
        collection="tasks",
        post=post,
        read=lambda record_id: _get_or_none(ctx, f"/tasks/{record_id}"),
        find=lambda: _recent(ctx, "tasks", "description", tag),
        data=data,
        keys=("title",),
    )
    warnings = _marker_kept(record, "description", tag, "task", created)
    return _with_warnings({**normalize_task(record), "created": created}, warnings)


# ------------------------------------------------------------------------------------ time entries
class CreateTimeEntryInput(_Input):
    project_id: Id = Field(description="The project the time is logged on. Required.")
    title: str = Field(min_length=1, max_length=255, description="Required.")
    hours: float = Field(gt=0, le=24 * 31, allow_inf_nan=False, description="Required, e.g. 1.5.")
    date: Day | None = Field(default=None, description="The day worked; Clientary uses today.")
    description: str | None = Field(
        default=None, description="Free text; the action appends its retry marker [cx:…] here."
    )
    rate: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="Default: the project's.")


@action("clientary.create_time_entry", app=APP, input_model=CreateTimeEntryInput)
def create_time_entry(ctx: ActionContext, data: CreateTimeEntryInput) -> dict[str, Any]:
    """Log time on a Clientary project (POST /projects/:id/hours, body key project_item).

    Clientary attributes the entry to the user who owns the API token.
    """
    from clientary_xero.connectors.clientary.normalize import normalize_time_entry

    client = _client(ctx)
    tag = marker(_effect_key(ctx))
    fields = data.model_dump(exclude_none=True, exclude={"project_id", "date"})
    fields["description"] = _with_marker(data.description, tag)
    if data.date:
        fields["date"] = data.date.isoformat()
    path = f"/projects/{data.project_id}/hours"

    def find() -> dict[str, Any] | None:
        listed = client.get(path)
        return next((h for h in listed.get("hours") or [] if _has_marker(h, "description", tag)), None)

    record, created = _create_once(
        ctx,
        collection="hours",
        post=lambda: client.post(path, {"project_item": fields}),
        read=lambda record_id: _get_or_none(ctx, f"/hours/{record_id}"),
        find=find,
        data=data,
        keys=("title", "hours", "date"),
    )
    output = {**normalize_time_entry(record), "created": created}
    warnings = _marker_kept(record, "description", tag, "time entry", created)
    if data.date is not None:
        warnings += _date_kept(output, "date", data.date, "time entry")
    return _with_warnings(output, warnings)


# ---------------------------------------------------------------------------------------- payments
class CreateInvoicePaymentInput(_Input):
    invoice_id: Id | None = Field(default=None, description="The Clientary invoice paid.")
    invoice_number: str | None = Field(
        default=None,
        max_length=50,
        description="Instead of invoice_id: the invoice's number (looked up among the newest "
        f"{INVOICE_LOOKUP_PAGES * 100} invoices).",
    )
    amount: float = Field(gt=0, allow_inf_nan=False, description="Required; in the invoice's currency.")
    note: str | None = Field(
        default=None,
        max_length=1000,
        description="Free text; the action appends its retry marker [cx:…] here.",
    )
    received_on: Day | None = Field(
        default=None,
        description="Payment date (undocumented by Clientary; it uses today without it). If "
        "Clientary's answer carries another date, the output's warnings say so.",
    )

    @model_validator(mode="after")
    def _one_invoice(self) -> CreateInvoicePaymentInput:
        if self.invoice_id is None and not self.invoice_number:
            raise ValueError("give the invoice's invoice_id or invoice_number")
        return self


def _invoice_by_number(ctx: ActionContext, number: str) -> dict[str, Any]:
    client = _client(ctx)
    for page in range(1, INVOICE_LOOKUP_PAGES + 1):
        listed = client.list_invoices(page=page)
        for invoice in listed.get("invoices") or []:
            if str(invoice.get("number")) == number:
                return invoice
        if page >= int(listed.get("page_count") or 1):
            break
    raise PermanentError(f"no Clientary invoice is numbered {number!r}", service=APP)


@action("clientary.create_invoice_payment", app=APP, input_model=CreateInvoicePaymentInput)
def create_invoice_payment(ctx: ActionContext, data: CreateInvoicePaymentInput) -> dict[str, Any]:
    """Record a payment on a Clientary invoice (POST /invoices/:id/payments)."""
    from clientary_xero.connectors.clientary.normalize import normalize_payment

    client = _client(ctx)
    tag = marker(_effect_key(ctx))
    invoice_id = data.invoice_id
    if invoice_id is None:
        invoice_id = int(_invoice_by_number(ctx, str(data.invoice_number))["id"])
    fields: dict[str, Any] = {"amount": data.amount, "note": _with_marker(data.note, tag)}
    if data.received_on:
        fields["received_on"] = data.received_on.isoformat()

    def on_invoice(match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        # Clientary has no GET /payments/:id: an invoice lists its payments.
        invoice = _get_or_none(ctx, f"/invoices/{invoice_id}") or {}
        found = next((p for p in invoice.get("payments") or [] if match(p)), None)
        return {**found, "invoice_id": invoice_id} if found else None

    record, created = _create_once(
        ctx,
        collection="payments",
        post=lambda: client.post(f"/invoices/{invoice_id}/payments", {"payment": fields}),
        read=lambda record_id: on_invoice(lambda p: str(p.get("id")) == str(record_id)),
        find=lambda: on_invoice(lambda p: _has_marker(p, "note", tag)),
        # received_on is not compared: Clientary does not document it (it may keep today's date).
        data=data,
        keys=("amount",),
    )
    output = {**normalize_payment(record), "invoice_id": invoice_id, "created": created}
    warnings = _marker_kept(record, "note", tag, "payment", created)
    if data.received_on is not None:
        warnings += _date_kept(output, "received_on", data.received_on, "payment", invoice_id)
    return _with_warnings(output, warnings)


def _date_kept(
    output: dict[str, Any], field: str, sent: Day, what: str, invoice_id: int | None = None
) -> list[str]:
    """A warning when Clientary's answer carries another date in ``field`` than the one sent.

    Clientary documents no date on a payment create (``received_on``) and none on a time entry's
    (``date``; an expense's ``incurred_on`` only third parties send); a record whose date Clientary
    ignores is dated the day it is recorded. It exists either way, so the step succeeds (a second
    create would be a second record): the warning says what to fix by hand."""
    recorded = output.get(field)
    if recorded == sent.isoformat():
        return []
    named = f"{what} {output.get('id')}" + (f" on invoice {invoice_id}" if invoice_id is not None else "")
    if recorded:
        warning = (
            f"Clientary recorded the {named} on {recorded}, not {sent.isoformat()} as sent: it may "
            f"ignore {field} (undocumented on create) and use the day it was recorded; fix the date "
            "in Clientary"
        )
    else:
        warning = (
            f"Clientary's answer for the {named} carries no {field}, so the date sent "
            f"({sent.isoformat()}) could not be checked; check it in Clientary"
        )
    logger.warning("%s", warning)
    return [warning]
