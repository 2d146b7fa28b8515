"""Contacts: create-or-update one (``xero.create_or_update_contact``) and find one (``xero.find_contact``).

Inputs use Xero's own field names (PascalCase) so a mapping reads like Xero's documentation; unknown
fields are refused (Xero would silently ignore a misspelt one). A contact is found through the id
link or ``ContactNumber`` before one is created, so the same client always updates the same contact.

The id link also remembers what was last written (``input_sha256``, a hash of the validated input)
and a small snapshot of Xero's answer (the fields of the step's output). A linked contact whose
input is unchanged since that write is not sent again: the step outputs the snapshot with
``unchanged: true`` and makes no Xero call. An edit made in Xero by a person is therefore kept until
the input changes; a link without a hash (written before hashes were stored) writes once.

Find, write and link happen under the link key's lock (storage/state.py ``lock_link``), held on
the link item: one conditional write takes it and returns the link, or takes none when the link
holds this very input already (``version``: organisation and input hash), which makes the
unchanged skip one DynamoDB request. The link is written with the lock given up in one write,
with the step's checkpoint. A writer that dies holding the lock leaves it until its lease
(``LINK_LOCK_SECONDS``) ends; the retry then finds the contact by ContactNumber.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from clientary_xero.connectors.base import ActionContext, action, batched
from clientary_xero.connectors.xero.actions.common import (
    FindInput,
    Guid,
    TrackingDefault,
    _Input,
    casefold_equal,
    find_result,
    iso_time,
    total_of,
    where_text,
)
from clientary_xero.errors import LockBusy, PermanentError
from clientary_xero.storage.ratelimit import expect_calls

logger = logging.getLogger(__name__)

CONTACT_LINK = "xero.contact"


# ----------------------------------------------------------------- create or update
class Phone(_Input):
    PhoneType: Literal["DEFAULT", "DDI", "MOBILE", "FAX"] = Field(
        default="DEFAULT", description="Kind of number."
    )
    PhoneNumber: str | None = Field(default=None, max_length=50, description="The number without area code.")
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


class ContactPerson(_Input):
    FirstName: str | None = Field(default=None, max_length=255)
    LastName: str | None = Field(default=None, max_length=255)
    EmailAddress: str | None = Field(default=None, max_length=255)
    IncludeInEmails: bool | None = Field(
        default=None, description="Whether the person is copied on e-mails sent to the contact."
    )


PaymentTermType = Literal["DAYSAFTERBILLDATE", "DAYSAFTERBILLMONTH", "OFCURRENTMONTH", "OFFOLLOWINGMONTH"]


class PaymentTerm(_Input):
    Day: int = Field(ge=0, le=31, description="Day of month (0-31), or a number of days after.")
    Type: PaymentTermType = Field(
        description="DAYSAFTERBILLDATE, DAYSAFTERBILLMONTH, OFCURRENTMONTH or OFFOLLOWINGMONTH."
    )


class ContactPaymentTerms(_Input):
    Bills: PaymentTerm | None = Field(default=None, description="Default terms of this contact's bills.")
    Sales: PaymentTerm | None = Field(default=None, description="Default terms of its sales invoices.")


class BatchPaymentDetails(_Input):
    BankAccountNumber: str | None = Field(default=None, description="Bank account number for batch payments.")
    BankAccountName: str | None = Field(default=None, description="Name of the bank for batch payments.")
    Details: str | None = Field(default=None, description="(Non-NZ) the reference sent to the bank.")
    Code: str | None = Field(default=None, max_length=12, description="(NZ) a reference of the payment.")
    Reference: str | None = Field(default=None, max_length=12, description="(NZ) a reference of the payment.")


class BrandingThemeRef(_Input):
    BrandingThemeID: Guid = Field(description="The contact's default branding theme.")


DefaultAmountType = Literal["INCLUSIVE", "EXCLUSIVE", "NONE"]


class ContactInput(_Input):
    READ_ONLY: ClassVar[frozenset[str]] = frozenset(
        {
            "UpdatedDateUTC",
            "Website",
            "Discount",
            # Documented read-only (reference/xero-api.md §2.2): set by Xero from transactions.
            "IsSupplier",
            "IsCustomer",
            "Balances",
            "MergedToContactID",
            # What Xero reports about its answer.
            "HasAttachments",
            "HasValidationErrors",
            "ValidationErrors",
            "StatusAttributeString",
        }
    )

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
    Phones: list[Phone] | None = Field(default=None, description="Phone numbers, one per PhoneType.")
    Addresses: list[Address] | None = Field(default=None, description="POBOX (postal) and STREET addresses.")
    TaxNumber: str | None = Field(default=None, max_length=50, description="ABN, GST, VAT or tax id number.")
    DefaultCurrency: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD."
    )
    ContactStatus: Literal["ACTIVE", "ARCHIVED", "GDPRREQUEST"] | None = Field(
        default=None, description="ACTIVE, ARCHIVED or GDPRREQUEST (asks Xero to erase the contact)."
    )
    CompanyNumber: str | None = Field(default=None, max_length=50, description="Company registration number.")
    ContactPersons: list[ContactPerson] | None = Field(
        default=None,
        max_length=5,
        description="Up to 5 people of the organisation. Given, it stands for Xero's whole list (a "
        "person left out may be removed).",
    )
    BankAccountDetails: str | None = Field(default=None, description="The contact's bank account number.")
    TaxNumberType: Literal["SSN", "EIN", "ITIN", "ATIN"] | None = Field(
        default=None, description="The US kind of TaxNumber."
    )
    AccountsReceivableTaxType: str | None = Field(
        default=None, max_length=50, description="Default tax type of sales to the contact (from TaxRates)."
    )
    AccountsPayableTaxType: str | None = Field(
        default=None, max_length=50, description="Default tax type of purchases from it (from TaxRates)."
    )
    SalesDefaultAccountCode: str | None = Field(
        default=None, max_length=10, description="Default account code of sales lines."
    )
    PurchasesDefaultAccountCode: str | None = Field(
        default=None, max_length=10, description="Default account code of purchase lines."
    )
    SalesDefaultLineAmountType: DefaultAmountType | None = Field(
        default=None, description="Default line amounts of sales: INCLUSIVE, EXCLUSIVE or NONE."
    )
    PurchasesDefaultLineAmountType: DefaultAmountType | None = Field(
        default=None, description="Default line amounts of purchases: INCLUSIVE, EXCLUSIVE or NONE."
    )
    SalesTrackingCategories: list[TrackingDefault] | None = Field(
        default=None, description="Default tracking of sales lines."
    )
    PurchasesTrackingCategories: list[TrackingDefault] | None = Field(
        default=None, description="Default tracking of purchase lines."
    )
    PaymentTerms: ContactPaymentTerms | None = Field(
        default=None, description="Default payment terms: {Sales: {Day: 20, Type: OFFOLLOWINGMONTH}}."
    )
    BrandingTheme: BrandingThemeRef | None = Field(default=None, description="Default branding theme.")
    BatchPayments: BatchPaymentDetails | None = Field(default=None, description="Batch payment details.")
    XeroNetworkKey: str | None = Field(default=None, description="The contact's Xero Network key.")


# The fields of Xero's answer a step outputs; the link keeps them as its snapshot.
SNAPSHOT_FIELDS = ("ContactID", "Name", "ContactNumber", "EmailAddress", "ContactStatus")
# Part of the hashed text: a change to what a write sends (new defaults, a new body) bumps it, so
# every link written under the old version writes once more.
INPUT_HASH_VERSION = 1


def _contact_output(contact: dict[str, Any], created: bool, unchanged: bool = False) -> dict[str, Any]:
    return {**{key: contact.get(key) for key in SNAPSHOT_FIELDS}, "created": created, "unchanged": unchanged}


def input_digest(fields: dict[str, Any]) -> str:
    """The hash of a contact step's validated input: equal inputs, equal hashes (key order aside)."""
    text = json.dumps(
        {"v": INPUT_HASH_VERSION, "fields": fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _link_target(contact: dict[str, Any], tenant: str, digest: str) -> dict[str, Any]:
    snapshot = {key: contact.get(key) for key in SNAPSHOT_FIELDS if key != "ContactID"}
    return {"ContactID": contact["ContactID"], "tenant": tenant, "input_sha256": digest, "contact": snapshot}


def _unchanged(link: dict[str, Any] | None, digest: str) -> dict[str, Any] | None:
    """The step's output from the link when it holds this very input's last write, else None."""
    if not link or link.get("input_sha256") != digest or not isinstance(link.get("contact"), dict):
        return None
    return _contact_output({**link["contact"], "ContactID": link["ContactID"]}, False, unchanged=True)


def _name_taken(error: PermanentError) -> bool:
    return any("must be unique across all active contacts" in m for m in error.messages)


@action(
    "xero.create_or_update_contact", app="xero", input_model=ContactInput, scopes=("accounting.contacts",)
)
def create_or_update_contact(ctx: ActionContext, data: ContactInput) -> dict[str, Any]:
    """Create a Xero contact, or update the one linked to (or carrying) the same ContactNumber."""
    client = ctx.service("xero")
    fields = _fields(data)
    number = data.ContactNumber
    # Links remember the organisation: after a reconnection to another one, a link made for the old
    # organisation is not used (its ContactID does not exist there) and the search runs again.
    tenant = str(getattr(getattr(client, "tokens", None), "tenant_id", lambda: "")() or "")
    if not number:
        contact, created = _write_contact(ctx, client, fields, None)
        return _contact_output(contact, created)
    digest = input_digest(fields)
    # find → write → link under the link key's lock. Two steps of one client (two invoices at once)
    # would otherwise both find nothing and both create; Xero does not keep ContactNumber unique,
    # and a client renamed between them escapes the name check too. The lock is taken with the
    # link's read (one request, which takes no lock when the link already holds this input: the
    # unchanged skip); a second writer that waited for it sees the first's link: it updates what
    # the first made, or writes nothing when the first wrote the same input. The lock also keeps
    # the link's hash that of the last write Xero received.
    with ctx.links.lock_link(CONTACT_LINK, number, unless=_version(tenant, digest)) as hold:
        link = _for_tenant(hold.link, tenant)
        skipped = _unchanged(link, digest)
        if skipped is not None:
            _upgrade(hold, link, tenant, digest)
            return skipped
        if link:
            contact_id: str | None = str(link["ContactID"])
        else:
            expect_calls(2)  # the lookup, then the write: one admission for both
            contact_id = _find_by_number(client, number)
        contact, created = _write_contact(ctx, client, fields, contact_id)
        hold.write(_link_target(contact, tenant, digest), version=_version(tenant, digest))
    return _contact_output(contact, created)


def _version(tenant: str, digest: str) -> str:
    """The link's ``version``: what a link holding this very write of this organisation says."""
    return f"{tenant}:{digest}"


def _for_tenant(link: dict[str, Any] | None, tenant: str) -> dict[str, Any] | None:
    """The contact's id link, if it was made for this organisation."""
    if link and link.get("ContactID") and link.get("tenant", tenant) == tenant:
        return link
    return None


def _upgrade(hold: Any, link: dict[str, Any] | None, tenant: str, digest: str) -> None:
    """An unchanged link written before links stored their ``version`` was locked to be read:
    give the lock up with the version added (the same one write), so the next read takes none."""
    if not hold.unchanged and link is not None:
        hold.write(link, version=_version(tenant, digest))


def _find_by_number(client: Any, number: str) -> str | None:
    found = client.request("GET", "/Contacts", params={"where": f"ContactNumber=={where_text(number)}"})
    matches = found.get("Contacts") or []
    return str(matches[0]["ContactID"]) if matches else None


def _write_contact(
    ctx: ActionContext, client: Any, fields: dict[str, Any], contact_id: str | None
) -> tuple[dict[str, Any], bool]:
    """Update ``contact_id`` with ``fields``, or create the contact. Returns (contact, created)."""
    from clientary_xero.connectors.xero.client import checked_elements, element_errors

    if contact_id:
        body = {"Contacts": [{"ContactID": contact_id, **fields}]}
        answer = client.request(
            "POST", "/Contacts", json=body, idempotency_key=f"{ctx.idempotency_key}:update"
        )
        return checked_elements(answer, "Contacts")[0], False
    answer = client.request(
        "POST", "/Contacts", json={"Contacts": [fields]}, idempotency_key=f"{ctx.idempotency_key}:create"
    )
    error = element_errors(answer, "Contacts")
    if error is not None and fields.get("ContactNumber") and _name_taken(error):
        # A contact with this name exists (made in Xero by hand): adopt it if it is not already
        # another client's, instead of failing the run.
        return _adopt_by_name(ctx, client, fields, error), False
    if error is not None:
        raise error
    return checked_elements(answer, "Contacts")[0], True


def _adopt_by_name(
    ctx: ActionContext, client: Any, fields: dict[str, Any], error: PermanentError
) -> dict[str, Any]:
    from clientary_xero.connectors.xero.client import checked_elements

    found = client.request("GET", "/Contacts", params={"where": f"Name=={where_text(fields['Name'])}"})
    candidates = [c for c in found.get("Contacts") or [] if c.get("ContactStatus") == "ACTIVE"]
    if not candidates or candidates[0].get("ContactNumber") not in (None, "", fields.get("ContactNumber")):
        raise error
    body = {"Contacts": [{"ContactID": candidates[0]["ContactID"], **fields}]}
    answer = client.request("POST", "/Contacts", json=body, idempotency_key=f"{ctx.idempotency_key}:adopt")
    return checked_elements(answer, "Contacts")[0]


@batched(
    "xero.create_or_update_contact",
    when=lambda data: bool(data.ContactNumber),
    same=lambda data: data.ContactNumber,  # one element per contact (write_contacts groups them)
)
def write_contacts(
    calls: list[tuple[ActionContext, ContactInput]], key: str
) -> list[dict[str, Any] | Exception]:
    """The first attempts of several contact steps as one ``POST /Contacts`` (engine/batching.py).

    As ``create_or_update_contact`` does for one step: linked contacts are updated, the others
    found by ContactNumber (one lookup for all of them, under each number's link lock) and
    updated, or created and linked. Steps naming the same ContactNumber share one element, written
    with the last one's fields (where writing them one after the other would end), and its result:
    the first is told ``created`` when the contact was new, the others are told it existed."""
    from clientary_xero.connectors.xero.client import answered_elements, element_errors

    client = calls[0][0].service("xero")
    tenant = str(getattr(getattr(client, "tokens", None), "tenant_id", lambda: "")() or "")
    groups: dict[str, list[int]] = {}
    for i, (_, data) in enumerate(calls):
        groups.setdefault(f"number:{data.ContactNumber}" if data.ContactNumber else f"step:{i}", []).append(i)
    out: list[dict[str, Any] | Exception | None] = [None] * len(calls)
    with contextlib.ExitStack() as locks:
        ids: dict[str, str | None] = {group: None for group in groups}
        holds: dict[str, Any] = {}  # group → its link's lock
        to_find: dict[str, str] = {}  # group → number
        # Each number's lock is taken with its link's read (none is taken for an unchanged link),
        # in one order (by number) for every batch: two batches sharing contacts never hold one
        # lock each while waiting for the other's.
        numbered = {g: calls[m[-1]][1].ContactNumber for g, m in groups.items()}
        for group, number in sorted(((g, n) for g, n in numbered.items() if n), key=lambda item: item[1]):
            members = groups[group]
            ctx, data = calls[members[-1]]
            digest = input_digest(_fields(data))
            try:
                hold = locks.enter_context(
                    ctx.links.lock_link(CONTACT_LINK, number, unless=_version(tenant, digest))
                )
            except LockBusy as exc:  # another run is creating it: these steps wait, as alone
                _share(out, members, exc)
                continue
            link = _for_tenant(hold.link, tenant)
            if _share(out, members, _unchanged(link, digest)):
                _upgrade(hold, link, tenant, digest)
                continue
            holds[group] = hold
            if link:
                ids[group] = str(link["ContactID"])
            else:
                to_find[group] = number
        if to_find:
            expect_calls(2)  # the lookup, then the write: one admission for both
        found = _find_by_numbers(client, list(to_find.values()))
        for group, number in to_find.items():
            ids[group] = found.get(number)
        written = [g for g in groups if out[groups[g][0]] is None]
        if not written:
            return _every(out)
        elements = [
            {"ContactID": ids[g], **_fields(calls[groups[g][-1]][1])}
            if ids[g]
            else _fields(calls[groups[g][-1]][1])
            for g in written
        ]
        answer = client.request("POST", "/Contacts", json={"Contacts": elements}, idempotency_key=key)
        for group, element in zip(written, answered_elements(answer, "Contacts", len(written)), strict=True):
            members = groups[group]
            ctx, data = calls[members[-1]]
            result: dict[str, Any] | Exception
            created = not ids[group]
            error = element_errors({"Contacts": [element]}, "Contacts")
            try:
                if error is not None and created and data.ContactNumber and _name_taken(error):
                    element, created = _adopt_by_name(ctx, client, _fields(data), error), False
                elif error is not None:
                    raise error
                if group in holds:
                    digest = input_digest(_fields(data))
                    holds[group].write(
                        _link_target(element, tenant, digest), version=_version(tenant, digest)
                    )
                result = _contact_output(element, created)
            except PermanentError as exc:
                result = exc
            _share(out, members, result)
    return _every(out)


def _share(
    out: list[dict[str, Any] | Exception | None],
    members: list[int],
    result: dict[str, Any] | Exception | None,
) -> bool:
    """Give the steps of one contact its result: the first as it is, the others told it existed."""
    if result is None:
        return False
    for n, i in enumerate(members):
        out[i] = result if isinstance(result, Exception) or n == 0 else {**result, "created": False}
    return True


def _every(out: list[dict[str, Any] | Exception | None]) -> list[dict[str, Any] | Exception]:
    if any(o is None for o in out):  # pragma: no cover - every step is in a group that is written or waits
        raise RuntimeError("a step of the contact batch got no outcome")
    return [o for o in out if o is not None]


def _fields(data: ContactInput) -> dict[str, Any]:
    return data.model_dump(exclude_none=True)


def _find_by_numbers(client: Any, numbers: list[str]) -> dict[str, str]:
    """ContactNumber → ContactID of the first contact carrying it, for several numbers in one call."""
    if not numbers:
        return {}
    where = " OR ".join(f"ContactNumber=={where_text(n)}" for n in numbers)
    found = client.request("GET", "/Contacts", params={"where": where})
    ids: dict[str, str] = {}
    for contact in found.get("Contacts") or []:
        for number in numbers:
            if casefold_equal(contact.get("ContactNumber"), number) and number not in ids:
                ids[number] = str(contact["ContactID"])
    return ids


# ----------------------------------------------------------------- find
class FindContactInput(FindInput):
    """Give at least one of ContactID, ContactNumber, Name, EmailAddress or SearchTerm; several narrow
    the search (all must match)."""

    ContactID: Guid | None = Field(default=None, description="Xero's contact id: read directly.")
    ContactNumber: str | None = Field(
        default=None, min_length=1, max_length=50, description="The external id (e.g. 'CL-42'); exact match."
    )
    Name: str | None = Field(
        default=None, min_length=1, max_length=255, description="Exact name (case-insensitive)."
    )
    EmailAddress: str | None = Field(
        default=None, min_length=1, max_length=255, description="Exact email (case-insensitive)."
    )
    SearchTerm: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Xero's case-insensitive text search over Name, FirstName, LastName, ContactNumber "
        "and EmailAddress (contains).",
    )
    IncludeArchived: bool = Field(default=False, description="Also look at ARCHIVED contacts.")

    @model_validator(mode="after")
    def _something_to_find(self) -> FindContactInput:
        if not any((self.ContactID, self.ContactNumber, self.Name, self.EmailAddress, self.SearchTerm)):
            raise ValueError(
                "give at least one of ContactID, ContactNumber, Name, EmailAddress or SearchTerm"
            )
        return self


def contact_fields(contact: dict[str, Any]) -> dict[str, Any]:
    return {
        "ContactID": contact.get("ContactID"),
        "Name": contact.get("Name"),
        "ContactNumber": contact.get("ContactNumber"),
        "AccountNumber": contact.get("AccountNumber"),
        "EmailAddress": contact.get("EmailAddress"),
        "FirstName": contact.get("FirstName"),
        "LastName": contact.get("LastName"),
        "ContactStatus": contact.get("ContactStatus"),
        "IsCustomer": contact.get("IsCustomer"),
        "IsSupplier": contact.get("IsSupplier"),
        "DefaultCurrency": contact.get("DefaultCurrency"),
        "UpdatedDateUTC": iso_time(contact.get("UpdatedDateUTC")),
    }


@action("xero.find_contact", app="xero", input_model=FindContactInput, scopes=("accounting.contacts.read",))
def find_contact(ctx: ActionContext, data: FindContactInput) -> dict[str, Any]:
    """Find a Xero contact by ContactID, ContactNumber, Name, EmailAddress or SearchTerm."""
    from clientary_xero.connectors.xero.client import XeroNotFound

    client = ctx.service("xero")
    total: int | None = None
    if data.ContactID:
        try:
            answer = client.request("GET", f"/Contacts/{data.ContactID}")
        except XeroNotFound:
            answer = {}
        records = [
            c
            for c in answer.get("Contacts") or []
            if all(
                casefold_equal(c.get(key), getattr(data, key))
                for key in ("ContactNumber", "Name", "EmailAddress")
                if getattr(data, key)
            )
            and (data.IncludeArchived or c.get("ContactStatus") == "ACTIVE")
        ]
    else:
        clauses = [
            f"{key}=={where_text(str(getattr(data, key)))}"
            for key in ("ContactNumber", "Name", "EmailAddress")
            if getattr(data, key)
        ]
        params: dict[str, Any] = {"page": 1}
        if clauses:
            params["where"] = " AND ".join(clauses)
        if data.SearchTerm:
            params["searchTerm"] = data.SearchTerm
        if data.IncludeArchived:
            params["includeArchived"] = "true"
        answer = client.request("GET", "/Contacts", params=params)
        records = list(answer.get("Contacts") or [])
        total = total_of(answer)
    return find_result("contact", data, records, contact_fields, total)
