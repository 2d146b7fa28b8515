"""Sales invoices and bills: create (``xero.create_invoice``), find (``xero.find_invoice``), add a
note to the history (``xero.add_note_to_invoice``) and record a payment (``xero.create_payment``).

Exactly-once: every write carries the step's idempotency key; a step retried after Xero forgot the
key (6 minutes) first looks for what an earlier try made — an invoice by number or reference, a
payment by invoice, amount and reference, notes by their text — before writing again. What it finds
is adopted only when it is what the step would have written (``common.adopt_found``): an invoice
of the same Type, contact, currency, dates and line total; a payment of the same invoice, account,
amount, reference and date. Anything else fails the step with what differs.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from clientary_xero.connectors.base import ActionContext, action, batched
from clientary_xero.connectors.xero.actions.common import (
    CLOSED_STATUSES,
    AccountRef,
    ContactRef,
    FindInput,
    Guid,
    LineItem,
    Money,
    XeroDay,
    _Input,
    adopt_found,
    casefold_equal,
    day_fields,
    find_result,
    iso_day,
    iso_time,
    made_by_this_run,
    money,
    put_many,
    total_of,
    where_text,
)
from clientary_xero.errors import PermanentError

logger = logging.getLogger(__name__)

NOTE_LIMIT = 250  # characters in one History note (reference/xero-api.md §2.10)
NOTE_MAX_PARTS = 10


# ----------------------------------------------------------------- create
class InvoiceAddress(_Input):
    """An address Xero's US sales tax is calculated from."""

    InvoiceAddressType: Literal["FROM", "TO"] = Field(description="FROM: origin; TO: destination.")
    AddressLine1: str | None = Field(default=None, max_length=500)
    AddressLine2: str | None = Field(default=None, max_length=500)
    AddressLine3: str | None = Field(default=None, max_length=500)
    AddressLine4: str | None = Field(default=None, max_length=500)
    City: str | None = Field(default=None, max_length=255)
    Region: str | None = Field(default=None, max_length=255)
    PostalCode: str | None = Field(default=None, max_length=50)
    Country: str | None = Field(default=None, max_length=50)


# What Xero reports about any document's answer: never part of a request.
ANSWER_ONLY = frozenset(
    {"HasErrors", "HasAttachments", "StatusAttributeString", "ValidationErrors", "Warnings"}
)


class InvoiceInput(_Input):
    READ_ONLY: ClassVar[frozenset[str]] = ANSWER_ONLY | {
        "CISDeduction",
        "CISRate",
        "SubTotal",
        "TotalTax",
        "Total",
        "TotalDiscount",
        "IsDiscounted",
        "Payments",
        "Prepayments",
        "Overpayments",
        "AmountDue",
        "AmountPaid",
        "FullyPaidOnDate",
        "AmountCredited",
        "UpdatedDateUTC",
        "UpdatedDateUTCString",
        "CreditNotes",
    }

    Type: Literal["ACCREC", "ACCPAY"] = Field(
        default="ACCREC", description="ACCREC: sales invoice; ACCPAY: bill."
    )
    Contact: ContactRef = Field(description="An existing contact: {ContactID} or {ContactNumber}.")
    LineItems: list[LineItem] = Field(min_length=1, description="At least one line.")
    Date: XeroDay | None = Field(default=None, description="Issue date; Xero uses today when omitted.")
    DueDate: XeroDay | None = Field(default=None, description="Needed to approve (AUTHORISED).")
    InvoiceNumber: str | None = Field(
        default=None, max_length=255, description="Unique for ACCREC; Xero numbers it when omitted."
    )
    Reference: str | None = Field(
        default=None,
        max_length=4000,
        description="Sales invoices only: Xero's API takes no Reference on a bill (ACCPAY), whose "
        "supplier reference is its InvoiceNumber.",
    )
    Status: Literal["DRAFT", "SUBMITTED", "AUTHORISED"] | None = Field(
        default=None, description="DRAFT when omitted; payments need AUTHORISED."
    )
    CurrencyCode: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217 code; the organisation's when omitted."
    )
    LineAmountTypes: Literal["Exclusive", "Inclusive", "NoTax"] | None = Field(
        default=None, description="Whether line amounts include tax; Exclusive when omitted."
    )
    Url: str | None = Field(default=None, max_length=2000, description='Link shown as "Go to …" in Xero.')
    BrandingThemeID: Guid | None = Field(default=None, description="The invoice's branding theme.")
    CurrencyRate: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="For a foreign currency; Xero's rate when omitted.",
    )
    SentToContact: bool | None = Field(
        default=None, description="Mark an approved invoice as sent (Xero sends nothing itself)."
    )
    ExpectedPaymentDate: XeroDay | None = Field(
        default=None, description="Sales invoices: when payment is expected."
    )
    PlannedPaymentDate: XeroDay | None = Field(default=None, description="Bills: when you plan to pay.")
    InvoiceAddresses: list[InvoiceAddress] | None = Field(
        default=None, max_length=2, description="US sales tax: the FROM and TO addresses."
    )

    @model_validator(mode="after")
    def _no_reference_on_bills(self) -> InvoiceInput:
        # Xero's spec: Invoice.Reference is "ACCREC only"; on a bill it would be dropped without a
        # word (and a retry could not find the bill by it).
        if self.Type == "ACCPAY" and self.Reference:
            raise ValueError(
                "a bill (ACCPAY) has no Reference in Xero's API: put the supplier's reference in "
                "InvoiceNumber"
            )
        return self

    def body(self) -> dict[str, Any]:
        dated = ("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate")
        invoice = self.model_dump(exclude_none=True, exclude={"Contact", "LineItems", *dated})
        invoice["Contact"] = self.Contact.identifier()
        invoice["LineItems"] = [line.model_dump(exclude_none=True) for line in self.LineItems]
        return invoice | day_fields(self, dated)


def _invoice_output(invoice: dict[str, Any], created: bool) -> dict[str, Any]:
    def day(key: str) -> str | None:
        return iso_day(invoice, key)

    return {
        "InvoiceID": invoice.get("InvoiceID"),
        "InvoiceNumber": invoice.get("InvoiceNumber"),
        "Type": invoice.get("Type"),
        "Status": invoice.get("Status"),
        "ContactID": (invoice.get("Contact") or {}).get("ContactID"),
        "Date": day("Date"),
        "DueDate": day("DueDate"),
        "SubTotal": money(invoice.get("SubTotal")),
        "TotalTax": money(invoice.get("TotalTax")),
        "Total": money(invoice.get("Total")),
        "AmountDue": money(invoice.get("AmountDue")),
        "CurrencyCode": invoice.get("CurrencyCode"),
        "Reference": invoice.get("Reference") or None,
        "created": created,
    }


# What a found invoice must share with the step's input to be adopted (when the input gives it).
INVOICE_KEYS = (
    "Type",
    "Contact",
    "CurrencyCode",
    "LineAmountTypes",
    "Date",
    "DueDate",
    "Reference",
    "LineItems",
)


def _find_existing_invoice(ctx: ActionContext, client: Any, data: InvoiceInput) -> dict[str, Any] | None:
    """The invoice an earlier, crashed attempt of this step may have created.

    A sales invoice's number is unique, so it alone finds the candidate. A bill's number (unique
    per supplier at best) or a sales invoice's Reference is a weaker key: an older invoice of the
    same contact can carry it too (last month's "Monthly retainer"), so only one updated since the
    run began is a candidate. Either way the candidate is adopted only when it is what this step
    would have written (contact, type, currency, dates, line total); otherwise the step fails with
    what differs (an invoice number typed in Xero by hand for another contact is not ours)."""
    clauses = [f"Type=={where_text(data.Type)}"]
    params: dict[str, Any] = {"unitdp": 4}
    if data.Type == "ACCREC" and data.InvoiceNumber:
        params["InvoiceNumbers"] = data.InvoiceNumber  # unique for sales invoices
    else:
        ref = data.Contact
        clauses.append(
            f'Contact.ContactID==Guid("{ref.ContactID}")'
            if ref.ContactID
            else f"Contact.ContactNumber=={where_text(str(ref.ContactNumber))}"
        )
        if data.InvoiceNumber:
            clauses.append(f"InvoiceNumber=={where_text(data.InvoiceNumber)}")
        else:  # a sales invoice without a number (bills take no Reference: see InvoiceInput)
            clauses.append(f"Reference=={where_text(str(data.Reference))}")
    params["where"] = " AND ".join(clauses)
    found = client.request("GET", "/Invoices", params=params)
    live = [i for i in found.get("Invoices") or [] if i.get("Status") not in CLOSED_STATUSES]
    if "InvoiceNumbers" not in params:
        live = [i for i in live if made_by_this_run(ctx, i)]
    key = "InvoiceNumber" if data.InvoiceNumber else "Reference"
    what = "bill" if data.Type == "ACCPAY" else "invoice"
    return adopt_found(
        ctx,
        live,
        data,
        INVOICE_KEYS,
        what=what,
        name_of=lambda i: str(i.get("InvoiceNumber") or i.get("InvoiceID")),
        hint=f"choose another {key} or remove that {what} in Xero",
        unitdp=4,
    )


@action(
    "xero.create_invoice",
    app="xero",
    input_model=InvoiceInput,
    scopes=("accounting.invoices", "accounting.contacts.read"),
)
def create_invoice(ctx: ActionContext, data: InvoiceInput) -> dict[str, Any]:
    """Create a sales invoice (ACCREC) or bill (ACCPAY) in Xero."""
    from clientary_xero.connectors.xero.client import checked_elements

    client = ctx.service("xero")
    if ctx.attempt > 1 and (data.InvoiceNumber or data.Reference):
        existing = _find_existing_invoice(ctx, client, data)
        if existing is not None:
            logger.info(
                "invoice %s already exists in Xero (an earlier attempt made it)", existing.get("InvoiceID")
            )
            return _invoice_output(existing, created=False)
    answer = client.request(
        "PUT",
        "/Invoices",
        params={"summarizeErrors": "false", "unitdp": 4},
        json={"Invoices": [data.body()]},
        idempotency_key=ctx.idempotency_key,
    )
    try:
        return _invoice_output(checked_elements(answer, "Invoices")[0], created=True)
    except PermanentError as exc:
        raise _archived_contact_error(exc, data) from None


@batched("xero.create_invoice", when=lambda data: bool(data.InvoiceNumber or data.Reference))
def create_invoices(
    calls: list[tuple[ActionContext, InvoiceInput]], key: str
) -> list[dict[str, Any] | Exception]:
    """The first attempts of several ``create_invoice`` steps as one ``PUT /Invoices``."""
    outcomes = put_many(
        calls,
        key,
        "Invoices",
        lambda invoice: _invoice_output(invoice, created=True),
        params={"summarizeErrors": "false", "unitdp": 4},
    )
    return [
        _archived_contact_error(outcome, data) if isinstance(outcome, PermanentError) else outcome
        for outcome, (_, data) in zip(outcomes, calls, strict=True)
    ]


# Part of Xero's refusal of an invoice (or bill) for an ARCHIVED contact: "The contact with the
# specified contact details has been archived. The contact must be un-archived before creating new
# invoices or credit notes." (the sources are cited in local/xero_sandbox/contacts.py).
ARCHIVED_CONTACT_REFUSAL = "must be un-archived"


def _archived_contact_error(error: PermanentError, data: InvoiceInput) -> PermanentError:
    """Xero's refusal for an archived contact, told with the contact and what to do; other errors
    as they are. Permanent either way: retrying cannot help until someone restores the contact."""
    if not any(ARCHIVED_CONTACT_REFUSAL in m for m in error.messages):
        return error
    ref = data.Contact
    who = f"ContactID {ref.ContactID}" if ref.ContactID else f"ContactNumber {ref.ContactNumber}"
    return PermanentError(
        f"Xero refused the invoice: its contact ({who}) is ARCHIVED in Xero. Restore the contact in "
        "Xero (Contacts, Archived, Restore), or send ContactStatus: ACTIVE in the "
        "xero.create_or_update_contact step, then run it again. Xero said: " + "; ".join(error.messages),
        messages=error.messages,
        status=error.status,
        service=error.service,
    )


# ----------------------------------------------------------------- find
INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")


class FindInvoiceInput(FindInput):
    """Give at least one of InvoiceID, InvoiceNumber, Reference, ContactID or Status; several narrow
    the search (all must match)."""

    InvoiceID: Guid | None = Field(default=None, description="Xero's invoice id: read directly.")
    InvoiceNumber: str | None = Field(default=None, min_length=1, max_length=255, description="Exact number.")
    Reference: str | None = Field(default=None, min_length=1, max_length=4000, description="Exact reference.")
    ContactID: Guid | None = Field(default=None, description="Invoices of this contact.")
    Status: Literal["DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"] | None = None
    Type: Literal["ACCREC", "ACCPAY"] | None = Field(
        default=None, description="ACCREC (sales) or ACCPAY (bills); both when omitted."
    )

    @model_validator(mode="after")
    def _something_to_find(self) -> FindInvoiceInput:
        if not any((self.InvoiceID, self.InvoiceNumber, self.Reference, self.ContactID, self.Status)):
            raise ValueError("give at least one of InvoiceID, InvoiceNumber, Reference, ContactID or Status")
        return self

    def matches(self, invoice: dict[str, Any]) -> bool:
        checks = (
            ("InvoiceNumber", invoice.get("InvoiceNumber")),
            ("Reference", invoice.get("Reference")),
            ("ContactID", (invoice.get("Contact") or {}).get("ContactID")),
            ("Status", invoice.get("Status")),
            ("Type", invoice.get("Type")),
        )
        return all(casefold_equal(value, getattr(self, key)) for key, value in checks if getattr(self, key))


def invoice_fields(invoice: dict[str, Any]) -> dict[str, Any]:
    out = _invoice_output(invoice, created=False)
    out.pop("created")
    out["AmountPaid"] = money(invoice.get("AmountPaid"))
    out["UpdatedDateUTC"] = iso_time(invoice.get("UpdatedDateUTC"))
    return out


@action("xero.find_invoice", app="xero", input_model=FindInvoiceInput, scopes=("accounting.invoices.read",))
def find_invoice(ctx: ActionContext, data: FindInvoiceInput) -> dict[str, Any]:
    """Find a Xero invoice or bill by InvoiceID, InvoiceNumber, Reference, ContactID or Status."""
    from clientary_xero.connectors.xero.client import XeroNotFound

    client = ctx.service("xero")
    total: int | None = None
    if data.InvoiceID:
        try:
            answer = client.request("GET", f"/Invoices/{data.InvoiceID}", params={"unitdp": 4})
        except XeroNotFound:
            answer = {}
        records = [i for i in answer.get("Invoices") or [] if data.matches(i)]
    else:
        # The explicit list parameters are Xero's fast path; Reference and Type go in `where`.
        params: dict[str, Any] = {"page": 1, "unitdp": 4}
        if data.InvoiceNumber:
            params["InvoiceNumbers"] = data.InvoiceNumber
        if data.ContactID:
            params["ContactIDs"] = data.ContactID
        if data.Status:
            params["Statuses"] = data.Status
        clauses = []
        if data.Reference:
            clauses.append(f"Reference=={where_text(data.Reference)}")
        if data.Type:
            clauses.append(f"Type=={where_text(data.Type)}")
        if clauses:
            params["where"] = " AND ".join(clauses)
        answer = client.request("GET", "/Invoices", params=params)
        records = list(answer.get("Invoices") or [])
        total = total_of(answer)
    return find_result("invoice", data, records, invoice_fields, total)


# ----------------------------------------------------------------- notes
def split_note(text: str, limit: int = NOTE_LIMIT) -> list[str]:
    """Cut a note into parts of at most ``limit`` characters, at whitespace where possible."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit  # one word longer than a note: cut inside it
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


class InvoiceNoteInput(_Input):
    """A note in the invoice's "History & Notes". Xero keeps at most 250 characters per note."""

    READ_ONLY: ClassVar[frozenset[str]] = frozenset({"DateUTC"})

    InvoiceID: Guid = Field(description="The invoice to annotate (e.g. steps.invoice.InvoiceID).")
    Details: str = Field(
        min_length=1,
        max_length=NOTE_LIMIT * NOTE_MAX_PARTS,
        description="The note. Longer than 250 characters: see IfTooLong (at most 2,500 in all).",
    )
    IfTooLong: Literal["split", "refuse"] = Field(
        default="split",
        description="'split' (default): a note over 250 characters becomes consecutive notes of at most "
        "250, cut at spaces; 'refuse': the step fails before calling Xero.",
    )

    @model_validator(mode="after")
    def _fits(self) -> InvoiceNoteInput:
        if self.IfTooLong == "refuse" and len(self.Details) > NOTE_LIMIT:
            raise ValueError(
                f"Details has {len(self.Details)} characters; a Xero note holds at most {NOTE_LIMIT} "
                "(IfTooLong is 'refuse'; use 'split' to add it as several notes)"
            )
        return self


@action("xero.add_note_to_invoice", app="xero", input_model=InvoiceNoteInput, scopes=("accounting.invoices",))
def add_note_to_invoice(ctx: ActionContext, data: InvoiceNoteInput) -> dict[str, Any]:
    """Add a note to an invoice's History & Notes (split into 250-character notes unless refused)."""
    client = ctx.service("xero")
    parts = split_note(data.Details)
    path = f"/Invoices/{data.InvoiceID}/History"
    if ctx.attempt > 1:
        # Xero forgets an idempotency key after 6 minutes: don't add the same notes twice.
        existing = [r.get("Details") for r in client.request("GET", path).get("HistoryRecords") or []]
        if any(existing[i : i + len(parts)] == parts for i in range(len(existing))):
            logger.info("the notes are already on invoice %s (an earlier attempt added them)", data.InvoiceID)
            return _note_output(data.InvoiceID, parts, None, created=False)
    answer = client.request(
        "PUT",
        path,
        json={"HistoryRecords": [{"Details": part} for part in parts]},
        idempotency_key=ctx.idempotency_key,
    )
    records = answer.get("HistoryRecords") or []
    return _note_output(data.InvoiceID, parts, records[0].get("DateUTC") if records else None, created=True)


def _note_output(invoice_id: str, parts: list[str], when: Any, *, created: bool) -> dict[str, Any]:
    return {
        "InvoiceID": invoice_id,
        "NotesAdded": len(parts) if created else 0,
        "Details": parts,
        "Split": len(parts) > 1,
        "DateUTC": iso_time(when),
        "created": created,
    }


# ----------------------------------------------------------------- payments
class InvoiceRef(_Input):
    InvoiceID: Guid = Field(description="The invoice being paid; it must be AUTHORISED in Xero.")


class PaymentInput(_Input):
    """A payment against one AUTHORISED invoice, into a bank account (or one that accepts payments)."""

    READ_ONLY: ClassVar[frozenset[str]] = frozenset(
        {"StatusAttributeString", "ValidationErrors", "Warnings"}
    ) | {
        "PaymentType",
        "UpdatedDateUTC",
        "UpdatedDateUTCString",
        "BatchPaymentID",  # "present if the payment was created as part of a batch"
        "HasAccount",
        "HasValidationErrors",
    }

    Invoice: InvoiceRef = Field(description="{InvoiceID: …} of the invoice paid.")
    Account: AccountRef = Field(description='The bank account paid into: {Code: "090"} or {AccountID: …}.')
    Amount: Money = Field(description="At most the amount still due on the invoice.")
    Date: XeroDay | None = Field(default=None, description="Payment date; Xero uses today when omitted.")
    Reference: str | None = Field(
        default=None, max_length=255, description="e.g. the payment's id elsewhere."
    )
    CurrencyRate: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="For a foreign-currency invoice."
    )
    IsReconciled: bool | None = Field(default=None, description="Mark the payment reconciled.")
    BankAmount: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="The amount in the bank account's currency."
    )
    Details: str | None = Field(default=None, description="What appears on the supplier's bank account.")
    Particulars: str | None = Field(default=None, description="(NZ) particulars for the supplier's bank.")
    BankAccountNumber: str | None = Field(default=None, description="The supplier's bank account number.")

    def body(self) -> dict[str, Any]:
        # Only the ids: a full Invoice object makes Xero validate the invoice again (xero-node#509).
        payment: dict[str, Any] = {
            "Invoice": {"InvoiceID": self.Invoice.InvoiceID},
            "Account": self.Account.identifier(),
            "Amount": round(self.Amount, 2),
        }
        if self.Date is not None:
            payment["Date"] = self.Date.isoformat()
        for key in (
            "Reference",
            "CurrencyRate",
            "IsReconciled",
            "BankAmount",
            "Details",
            "Particulars",
            "BankAccountNumber",
        ):
            if getattr(self, key) is not None:
                payment[key] = getattr(self, key)
        return payment


def payment_fields(payment: dict[str, Any], created: bool) -> dict[str, Any]:
    invoice = payment.get("Invoice") or {}
    account = payment.get("Account") or {}
    return {
        "PaymentID": payment.get("PaymentID"),
        "InvoiceID": invoice.get("InvoiceID"),
        "InvoiceNumber": invoice.get("InvoiceNumber"),
        "Amount": money(payment.get("Amount")),
        "Date": iso_day(payment, "Date"),
        "Status": payment.get("Status"),
        "PaymentType": payment.get("PaymentType"),
        "Reference": payment.get("Reference") or None,
        "AccountID": account.get("AccountID"),
        "AccountCode": account.get("Code"),
        "CurrencyRate": money(payment.get("CurrencyRate")),
        "InvoiceStatus": invoice.get("Status"),
        "InvoiceAmountDue": money(invoice.get("AmountDue")),
        "created": created,
    }


@action("xero.create_payment", app="xero", input_model=PaymentInput, scopes=("accounting.payments",))
def create_payment(ctx: ActionContext, data: PaymentInput) -> dict[str, Any]:
    """Record a payment against an AUTHORISED Xero invoice."""
    from clientary_xero.connectors.xero.client import checked_elements

    client = ctx.service("xero")
    if ctx.attempt > 1:
        clauses = [
            f'Invoice.InvoiceID==Guid("{data.Invoice.InvoiceID}")',
            f"Amount=={round(data.Amount, 2)}",
            'Status=="AUTHORISED"',
        ]
        if data.Reference:
            clauses.append(f"Reference=={where_text(data.Reference)}")
        found = client.request("GET", "/Payments", params={"where": " AND ".join(clauses)})
        # An invoice paid in equal instalments has older payments just like this one.
        recent = [p for p in found.get("Payments") or [] if made_by_this_run(ctx, p)]
        existing = adopt_found(
            ctx,
            recent,
            data,
            ("Invoice", "Account", "Amount", "Reference", "Date"),
            what="payment",
            name_of=lambda p: f"{p.get('PaymentID')} on invoice {data.Invoice.InvoiceID}",
            hint="remove that payment in Xero if it is not this step's, or give this payment a "
            "Reference that tells them apart",
        )
        if existing is not None:
            logger.info("payment already recorded in Xero (an earlier attempt made it)")
            return payment_fields(existing, created=False)
    answer = client.request(
        "PUT", "/Payments", json={"Payments": [data.body()]}, idempotency_key=ctx.idempotency_key
    )
    return payment_fields(checked_elements(answer, "Payments")[0], created=True)


@batched("xero.create_payment", when=lambda data: True)  # a retry finds it by invoice and amount
def create_payments(
    calls: list[tuple[ActionContext, PaymentInput]], key: str
) -> list[dict[str, Any] | Exception]:
    """The first attempts of several ``create_payment`` steps as one ``PUT /Payments``."""
    return put_many(calls, key, "Payments", lambda payment: payment_fields(payment, created=True))
