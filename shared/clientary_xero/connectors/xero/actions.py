"""Xero actions a workflow step can run: create-or-update a contact, create an invoice.

Inputs use Xero's own field names (PascalCase) so a mapping reads like Xero's documentation; unknown
fields are refused (Xero would silently ignore a misspelt one). Outputs are flat dicts later steps
can map without envelopes: ids, numbers, statuses, amounts as numbers, dates as ISO strings.

Exactly-once (ARCHITECTURE.md): every write carries the step's idempotency key (suffixed per kind of
write, so a retry that takes another branch never reuses a key with a different body, which Xero
refuses); contacts are found through the id link or ``ContactNumber`` before one is created; an
invoice retried after a crash is looked up by its number or reference before a second is created.

Importing this module is cheap: models only; the HTTP client is loaded on first use.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from clientary_xero.connectors.base import ActionContext, action
from clientary_xero.errors import PermanentError

logger = logging.getLogger(__name__)

CONTACT_LINK = "xero.contact"
_CLOSED_STATUSES = ("DELETED", "VOIDED")


def _as_date(value: Any) -> Any:
    """Accept ``YYYY-MM-DD``, an ISO date-time, Xero's ``/Date(…)/`` or a date object."""
    if isinstance(value, datetime):
        return value.date()
    if value is None or value == "":
        return None
    if isinstance(value, str):
        from clientary_xero.connectors.xero.dates import parse_xero_date

        try:
            return parse_xero_date(value, date_only=True)
        except ValueError:
            return value  # pydantic reports it as an invalid date
    return value


XeroDay = Annotated[date, BeforeValidator(_as_date)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True)


# ----------------------------------------------------------------- contacts
class Phone(_Input):
    PhoneType: Literal["DEFAULT", "DDI", "MOBILE", "FAX"] = Field(
        default="DEFAULT", description="Kind of number."
    )
    PhoneNumber: str | None = Field(default=None, max_length=50)
    PhoneAreaCode: str | None = Field(default=None, max_length=10)
    PhoneCountryCode: str | None = Field(default=None, max_length=20)


class Address(_Input):
    AddressType: Literal["POBOX", "STREET"] = Field(
        default="POBOX", description="POBOX is the postal address."
    )
    AddressLine1: str | None = Field(default=None, max_length=500)
    AddressLine2: str | None = Field(default=None, max_length=500)
    AddressLine3: str | None = Field(default=None, max_length=500)
    AddressLine4: str | None = Field(default=None, max_length=500)
    City: str | None = Field(default=None, max_length=255)
    Region: str | None = Field(default=None, max_length=255)
    PostalCode: str | None = Field(default=None, max_length=50)
    Country: str | None = Field(default=None, max_length=50)
    AttentionTo: str | None = Field(default=None, max_length=255)


class ContactInput(_Input):
    Name: str = Field(
        min_length=1,
        max_length=255,
        description="Full name of the contact or organisation; unique among active Xero contacts.",
    )
    ContactNumber: str | None = Field(
        default=None,
        max_length=50,
        description="Identifier from the other system (the Clientary client id). API-only in Xero; "
        "the contact is found by it, so the same client always updates the same Xero contact.",
    )
    EmailAddress: str | None = Field(default=None, max_length=255, description="Email of the contact person.")
    FirstName: str | None = Field(default=None, max_length=255)
    LastName: str | None = Field(default=None, max_length=255)
    AccountNumber: str | None = Field(
        default=None, max_length=50, description="A user-defined account number; unique in Xero."
    )
    Phones: list[Phone] | None = None
    Addresses: list[Address] | None = None
    TaxNumber: str | None = Field(default=None, max_length=50, description="ABN, GST, VAT or tax id number.")
    DefaultCurrency: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD."
    )


def _where_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _contact_output(contact: dict[str, Any], created: bool) -> dict[str, Any]:
    return {
        "ContactID": contact.get("ContactID"),
        "Name": contact.get("Name"),
        "ContactNumber": contact.get("ContactNumber"),
        "EmailAddress": contact.get("EmailAddress"),
        "ContactStatus": contact.get("ContactStatus"),
        "created": created,
    }


def _name_taken(error: PermanentError) -> bool:
    return any("must be unique across all active contacts" in m for m in error.messages)


@action("xero.create_or_update_contact", app="xero", input_model=ContactInput)
def create_or_update_contact(ctx: ActionContext, data: ContactInput) -> dict[str, Any]:
    """Create a Xero contact, or update the one linked to (or carrying) the same ContactNumber."""
    from clientary_xero.connectors.xero.client import checked_elements, element_errors

    client = ctx.service("xero")
    fields = data.model_dump(exclude_none=True)
    number = data.ContactNumber
    contact_id: str | None = None
    if number:
        link = ctx.links.get_link(CONTACT_LINK, number)
        if link and link.get("ContactID"):
            contact_id = str(link["ContactID"])
        else:
            found = client.request(
                "GET", "/Contacts", params={"where": f"ContactNumber=={_where_text(number)}"}
            )
            matches = found.get("Contacts") or []
            if matches:
                contact_id = str(matches[0]["ContactID"])
    created = contact_id is None
    if contact_id:
        body = {"Contacts": [{"ContactID": contact_id, **fields}]}
        answer = client.request(
            "POST", "/Contacts", json=body, idempotency_key=f"{ctx.idempotency_key}:update"
        )
        contact = checked_elements(answer, "Contacts")[0]
    else:
        answer = client.request(
            "POST", "/Contacts", json={"Contacts": [fields]}, idempotency_key=f"{ctx.idempotency_key}:create"
        )
        error = element_errors(answer, "Contacts")
        if error is not None and number and _name_taken(error):
            # A contact with this name exists (made in Xero by hand): adopt it if it is not already
            # another client's, instead of failing the run.
            contact = _adopt_by_name(ctx, client, fields, error)
            created = False
        elif error is not None:
            raise error
        else:
            contact = checked_elements(answer, "Contacts")[0]
    if number:
        ctx.links.put_link(CONTACT_LINK, number, {"ContactID": contact["ContactID"]})
    return _contact_output(contact, created)


def _adopt_by_name(
    ctx: ActionContext, client: Any, fields: dict[str, Any], error: PermanentError
) -> dict[str, Any]:
    from clientary_xero.connectors.xero.client import checked_elements

    found = client.request("GET", "/Contacts", params={"where": f"Name=={_where_text(fields['Name'])}"})
    candidates = [c for c in found.get("Contacts") or [] if c.get("ContactStatus") == "ACTIVE"]
    if not candidates or candidates[0].get("ContactNumber") not in (None, "", fields.get("ContactNumber")):
        raise error
    body = {"Contacts": [{"ContactID": candidates[0]["ContactID"], **fields}]}
    answer = client.request("POST", "/Contacts", json=body, idempotency_key=f"{ctx.idempotency_key}:adopt")
    return checked_elements(answer, "Contacts")[0]


# ----------------------------------------------------------------- invoices
class ContactRef(_Input):
    ContactID: str | None = Field(
        default=None, pattern=r"^[0-9a-fA-F-]{36}$", description="Xero's contact id."
    )
    ContactNumber: str | None = Field(default=None, max_length=50, description="The contact's external id.")

    @model_validator(mode="after")
    def _one_identifier(self) -> ContactRef:
        if not self.ContactID and not self.ContactNumber:
            raise ValueError("give the contact's ContactID or ContactNumber")
        return self

    def identifier(self) -> dict[str, str]:
        # Only the identifier: more fields would update the contact (and could drop its ContactPersons).
        return {"ContactID": self.ContactID} if self.ContactID else {"ContactNumber": str(self.ContactNumber)}


class LineItem(_Input):
    Description: str = Field(min_length=1, max_length=4000, description="What the line is for.")
    Quantity: float | None = Field(default=None, allow_inf_nan=False)
    UnitAmount: float | None = Field(default=None, allow_inf_nan=False, description="Up to 4 decimal places.")
    AccountCode: str | None = Field(default=None, max_length=10, description="Needed to approve (AUTHORISE).")
    TaxType: str | None = Field(default=None, max_length=50, description="A tax type from Xero's TaxRates.")
    ItemCode: str | None = Field(default=None, max_length=30)
    DiscountRate: float | None = Field(
        default=None, ge=0, le=100, description="Percent; sales invoices only."
    )
    LineAmount: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Xero computes it from Quantity times UnitAmount when omitted.",
    )


class InvoiceInput(_Input):
    Type: Literal["ACCREC", "ACCPAY"] = Field(
        default="ACCREC", description="ACCREC: sales invoice; ACCPAY: bill."
    )
    Contact: ContactRef
    LineItems: list[LineItem] = Field(min_length=1)
    Date: XeroDay | None = Field(default=None, description="Issue date; Xero uses today when omitted.")
    DueDate: XeroDay | None = None
    InvoiceNumber: str | None = Field(
        default=None, max_length=255, description="Unique for ACCREC; Xero numbers it when omitted."
    )
    Reference: str | None = Field(default=None, max_length=4000)
    Status: Literal["DRAFT", "SUBMITTED", "AUTHORISED"] | None = None
    CurrencyCode: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    LineAmountTypes: Literal["Exclusive", "Inclusive", "NoTax"] | None = None
    Url: str | None = Field(default=None, max_length=2000, description='Link shown as "Go to …" in Xero.')

    def body(self) -> dict[str, Any]:
        invoice = self.model_dump(exclude_none=True, exclude={"Contact", "LineItems", "Date", "DueDate"})
        invoice["Contact"] = self.Contact.identifier()
        invoice["LineItems"] = [line.model_dump(exclude_none=True) for line in self.LineItems]
        for key in ("Date", "DueDate"):
            value = getattr(self, key)
            if value is not None:
                invoice[key] = value.isoformat()
        return invoice


def _money(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _invoice_output(invoice: dict[str, Any], created: bool) -> dict[str, Any]:
    from clientary_xero.connectors.xero.dates import parse_xero_date

    def day(key: str) -> str | None:
        return parse_xero_date(invoice.get(key) or invoice.get(f"{key}String"), date_only=True)

    return {
        "InvoiceID": invoice.get("InvoiceID"),
        "InvoiceNumber": invoice.get("InvoiceNumber"),
        "Type": invoice.get("Type"),
        "Status": invoice.get("Status"),
        "ContactID": (invoice.get("Contact") or {}).get("ContactID"),
        "Date": day("Date"),
        "DueDate": day("DueDate"),
        "SubTotal": _money(invoice.get("SubTotal")),
        "TotalTax": _money(invoice.get("TotalTax")),
        "Total": _money(invoice.get("Total")),
        "AmountDue": _money(invoice.get("AmountDue")),
        "CurrencyCode": invoice.get("CurrencyCode"),
        "Reference": invoice.get("Reference") or None,
        "created": created,
    }


def _find_existing_invoice(client: Any, data: InvoiceInput) -> dict[str, Any] | None:
    """The invoice an earlier, crashed attempt of this step may have created."""
    clauses = [f"Type=={_where_text(data.Type)}"]
    params: dict[str, Any] = {"unitdp": 4}
    if data.Type == "ACCREC" and data.InvoiceNumber:
        params["InvoiceNumbers"] = data.InvoiceNumber  # unique for sales invoices
    else:
        ref = data.Contact
        clauses.append(
            f'Contact.ContactID==Guid("{ref.ContactID}")'
            if ref.ContactID
            else f"Contact.ContactNumber=={_where_text(str(ref.ContactNumber))}"
        )
        if data.InvoiceNumber:
            clauses.append(f"InvoiceNumber=={_where_text(data.InvoiceNumber)}")
        else:
            clauses.append(f"Reference=={_where_text(str(data.Reference))}")
    params["where"] = " AND ".join(clauses)
    found = client.request("GET", "/Invoices", params=params)
    live = [i for i in found.get("Invoices") or [] if i.get("Status") not in _CLOSED_STATUSES]
    return live[0] if live else None


@action("xero.create_invoice", app="xero", input_model=InvoiceInput)
def create_invoice(ctx: ActionContext, data: InvoiceInput) -> dict[str, Any]:
    """Create a sales invoice (ACCREC) or bill (ACCPAY) in Xero."""
    from clientary_xero.connectors.xero.client import checked_elements

    client = ctx.service("xero")
    if ctx.attempt > 1 and (data.InvoiceNumber or data.Reference):
        existing = _find_existing_invoice(client, data)
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
    return _invoice_output(checked_elements(answer, "Invoices")[0], created=True)
