"""Contacts: create-or-update one (``xero.create_or_update_contact``) and find one (``xero.find_contact``).

Inputs use Xero's own field names (PascalCase) so a mapping reads like Xero's documentation; unknown
fields are refused (Xero would silently ignore a misspelt one).

Contacts never clash: before creating, the step matches an existing Xero contact by ``MatchBy``, in
its order (default: the id link → ``ContactNumber`` → ``EmailAddress`` → the name, trimmed, inner
spaces collapsed, case-insensitive), updates the match with the fields the input gives (Xero keeps
those an element leaves out), links it, and creates only when nothing matches. The output says how
(``matched_by``). One ``GET /Contacts`` (the keys joined by OR, archived contacts included; split
only past ``WHERE_BUDGET`` characters) serves every key, and none is made when the link is tried
first and exists. The rules:

* two ACTIVE contacts matching one key (the same e-mail, the same normalised name, the same
  ContactNumber) fail the step permanently, naming both: it never picks one. An ACTIVE contact
  wins over ARCHIVED ones matching the same key (older versions); two archived ones are ambiguous;
* a contact carrying another ContactNumber is another client's: never matched by e-mail or name;
* an ARCHIVED match is linked and reported (``archived: true``, a ``note``) but not written to: Xero
  refuses edits of archived contacts ("The specified contact details matched an archived
  contact."). An input with ``ContactStatus: ACTIVE`` restores and updates it. A linked contact
  archived in Xero since is reported the same way;
* a retry (its first try's outcome unknown) also looks by ContactNumber, whatever MatchBy says, so
  it finds what that try made; a create Xero refuses because the name is taken adopts the holder
  when it carries our ContactNumber (or, with Name in MatchBy, none).

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
import difflib
import hashlib
import json
import logging
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

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
from clientary_xero.connectors.xero.actions.contact_links import (
    ARCHIVED_NOTE as ARCHIVED_NOTE,
)
from clientary_xero.connectors.xero.actions.contact_links import (
    CONTACT_LINK,
    SNAPSHOT_FIELDS,
)
from clientary_xero.connectors.xero.actions.contact_links import contact_output as _contact_output
from clientary_xero.connectors.xero.actions.contact_links import for_tenant as _for_tenant
from clientary_xero.connectors.xero.actions.contact_links import tenant_of as _tenant
from clientary_xero.errors import LockBusy, PermanentError
from clientary_xero.storage.ratelimit import expect_calls

logger = logging.getLogger(__name__)


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


# The ways ``MatchBy`` finds an existing contact, in the default order.
MatchKey = Literal["link", "ContactNumber", "EmailAddress", "Name"]
MATCH_KEYS: tuple[MatchKey, ...] = ("link", "ContactNumber", "EmailAddress", "Name")


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
    MatchBy: list[MatchKey] = Field(
        default=list(MATCH_KEYS),
        description="How an existing Xero contact is found before one is created, tried in this order: "
        "link (the contact this ContactNumber was last written to), ContactNumber, EmailAddress, Name "
        "(trimmed, inner spaces collapsed, case-insensitive). The match is updated and linked; two "
        "contacts matching one key fail the step. Not sent to Xero.",
    )

    @field_validator("MatchBy", mode="before")
    @classmethod
    def _known_ways(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value  # pydantic says it must be a list
        if not value:
            raise ValueError(f"give at least one of {', '.join(MATCH_KEYS)}")
        seen: set[str] = set()
        for entry in value:
            if entry not in MATCH_KEYS:
                close = _closest(str(entry))
                hint = f" (did you mean {close}?)" if close else ""
                raise ValueError(
                    f"{entry!r} is not a way to match a contact: use {', '.join(MATCH_KEYS)}{hint}"
                )
            if entry in seen:
                raise ValueError(f"{entry} is listed twice")
            seen.add(entry)
        return value


def _closest(entry: str) -> str | None:
    """The MatchBy key a mistyped entry most likely meant ("email" → EmailAddress), if any."""
    lowered = {key.lower(): key for key in MATCH_KEYS}
    wanted = entry.strip().lower()
    for low, key in lowered.items():
        if wanted and (low.startswith(wanted) or wanted in low):
            return key
    close = difflib.get_close_matches(wanted, list(lowered), n=1, cutoff=0.5)
    return lowered[close[0]] if close else None


# Part of the hashed text: a change to what a write sends (new defaults, a new body) bumps it, so
# every link written under the old version writes once more.
INPUT_HASH_VERSION = 1

# Xero's refusal of an edit of an archived contact.
ARCHIVED_REFUSAL = "matched an archived contact"


def normal_name(name: Any) -> str:
    """A contact name as MatchBy compares it: trimmed, inner spaces collapsed, case-insensitive."""
    return " ".join(str(name or "").split()).casefold()


def input_digest(fields: dict[str, Any]) -> str:
    """The hash of a contact step's validated input: equal inputs, equal hashes (key order aside)."""
    text = json.dumps(
        {"v": INPUT_HASH_VERSION, "fields": fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _link_target(contact: dict[str, Any], tenant: str, digest: str, rendered: str = "") -> dict[str, Any]:
    """The link of a contact written with fields of hash ``digest``; ``rendered``: the hash of the
    rendered input that made the write, when the link may answer for it (``link`` in MatchBy:
    contact_links.unchanged_contact)."""
    snapshot = {key: contact.get(key) for key in SNAPSHOT_FIELDS if key != "ContactID"}
    target = {
        "ContactID": contact["ContactID"],
        "tenant": tenant,
        "input_sha256": digest,
        "contact": snapshot,
    }
    if rendered:
        target["rendered_sha256"] = rendered
    return target


def _unchanged(link: dict[str, Any] | None, digest: str) -> dict[str, Any] | None:
    """The step's output from the link when it holds this very input's last write, else None."""
    if not link or link.get("input_sha256") != digest or not isinstance(link.get("contact"), dict):
        return None
    contact = {**link["contact"], "ContactID": link["ContactID"]}
    return _contact_output(contact, False, unchanged=True, matched_by="link")


def _name_taken(error: PermanentError) -> bool:
    return any("must be unique across all active contacts" in m for m in error.messages)


def _archived_refusal(error: PermanentError) -> bool:
    return any(ARCHIVED_REFUSAL in m for m in error.messages)


# ----------------------------------------------------------------- matching
# A match: (ContactID, the contact as the lookup found it — None for the link —, matched_by).
Match = tuple[str, dict[str, Any] | None, str]


def _lookups(data: ContactInput, retry: bool) -> list[str]:
    """The MatchBy keys that need a lookup, in order. A retry also looks by ContactNumber: a
    contact carrying it may be what an earlier try of this step made (find-before-create)."""
    keys = [key for key in data.MatchBy if key != "link"]
    if retry and data.ContactNumber and "ContactNumber" not in keys:
        keys.append("ContactNumber")
    return [key for key in keys if getattr(data, key)]


def _needs_lookup(data: ContactInput, link_id: str | None, retry: bool) -> bool:
    if link_id and data.MatchBy[0] == "link":
        return False  # the link is tried first and is there: no call
    return bool(_lookups(data, retry))


def _clauses(data: ContactInput, retry: bool) -> list[str]:
    """``where`` clauses (to join with OR) finding every contact a MatchBy key may match.

    Xero's ``==`` on text is reported case-sensitive (XeroAPI/xero-ruby#184, pyxero#71 and #172:
    Xero's staff give ``Name.ToLower()…``), so names and e-mails are compared lower-cased; an
    e-mail is optional, so it is guarded with ``!=null`` as Xero advises for optional fields. A name
    is looked up by its longest word (``Name.ToLower().Contains("harbour")``) so that a name typed
    in Xero with other spaces (``"Harbour  Lights Ltd "``) is found too, in a short clause (a batch
    joins 50 of them); the normalised comparison is then made here (``_hits``)."""
    clauses = []
    for key in _lookups(data, retry):
        if key == "ContactNumber":
            clauses.append(f"ContactNumber=={where_text(str(data.ContactNumber))}")
        elif key == "EmailAddress":
            email = where_text(str(data.EmailAddress).strip().lower())
            clauses.append(f"EmailAddress!=null&&EmailAddress.ToLower()=={email}")
        else:
            clauses.append(_name_clause(data.Name))
    return clauses


def _name_clause(name: str) -> str:
    longest = max(name.lower().split(), key=len)
    return f"Name.ToLower().Contains({where_text(longest)})"


# The longest ``where`` one lookup sends (characters before URL encoding). Xero documents no limit
# but warns that long queries time out; 50 contacts' numbers and names fit in one, with e-mails
# in about two.
WHERE_BUDGET = 4000


def _lookup(client: Any, clauses: list[str]) -> list[dict[str, Any]]:
    """The ACTIVE and ARCHIVED contacts any of ``clauses`` finds: one call per ``WHERE_BUDGET`` of
    clauses joined by OR (none: no call)."""
    chunks: list[list[str]] = []
    size = 0
    for clause in dict.fromkeys(clauses):
        if not chunks or size + len(clause) + 4 > WHERE_BUDGET:
            chunks.append([])
            size = 0
        chunks[-1].append(clause)
        size += len(clause) + 4
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks:
        params = {"where": " OR ".join(chunk), "includeArchived": "true"}
        for contact in client.request("GET", "/Contacts", params=params).get("Contacts") or []:
            if contact.get("ContactStatus") in ("ACTIVE", "ARCHIVED") and contact.get("ContactID"):
                found.setdefault(str(contact["ContactID"]), contact)
    return list(found.values())


def _foreign(data: ContactInput, contact: dict[str, Any]) -> bool:
    """Whether ``contact`` carries another ContactNumber than the input's (another client's)."""
    theirs = contact.get("ContactNumber")
    return bool(data.ContactNumber and theirs and not casefold_equal(theirs, data.ContactNumber))


def _hits(key: str, data: ContactInput, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if key == "ContactNumber":
        return [c for c in candidates if casefold_equal(c.get("ContactNumber"), data.ContactNumber)]
    if key == "EmailAddress":
        email = str(data.EmailAddress or "").strip().casefold()
        return [
            c
            for c in candidates
            if email
            and str(c.get("EmailAddress") or "").strip().casefold() == email
            and not _foreign(data, c)
        ]
    name = normal_name(data.Name)
    return [c for c in candidates if normal_name(c.get("Name")) == name and not _foreign(data, c)]


def _pick(key: str, data: ContactInput, hits: list[dict[str, Any]]) -> dict[str, Any]:
    """The one contact ``hits`` stands for: the ACTIVE one (archived twins are older versions), else
    the one ARCHIVED; two or more of the same kind fail the step, naming them."""
    active = [c for c in hits if c.get("ContactStatus") == "ACTIVE"]
    pool = active or hits
    if len(pool) == 1:
        return pool[0]
    value = {"ContactNumber": data.ContactNumber, "EmailAddress": data.EmailAddress, "Name": data.Name}[key]
    named = ", ".join(f"{c.get('Name')!r} ({c.get('ContactID')})" for c in pool)
    kind = "active" if active else "archived"
    raise PermanentError(
        f"ambiguous match: {len(pool)} {kind} Xero contacts have {key} {value!r}: {named}. "
        "Nothing was written; make the contacts differ in Xero (or archive one), or change MatchBy",
        service="xero",
    )


def _choose(
    data: ContactInput, candidates: list[dict[str, Any]], link_id: str | None, retry: bool
) -> Match | None:
    """The contact the input matches, by MatchBy in order, or None (nothing matches: create)."""
    keys = list(data.MatchBy)
    if retry and data.ContactNumber and "ContactNumber" not in keys:
        keys.append("ContactNumber")
    for key in keys:
        if key == "link":
            if link_id:
                return link_id, None, "link"
            continue
        if not getattr(data, key):
            continue
        hits = _hits(key, data, candidates)
        if hits:
            contact = _pick(key, data, hits)
            return str(contact["ContactID"]), contact, key
    return None


def _archived_match(match: Match | None, fields: dict[str, Any]) -> bool:
    """Whether the match is an archived contact the step does not write to: Xero refuses edits of
    archived contacts, so it is linked and reported; ``ContactStatus: ACTIVE`` restores it."""
    contact = match[1] if match else None
    return bool(
        contact and contact.get("ContactStatus") == "ARCHIVED" and fields.get("ContactStatus") != "ACTIVE"
    )


def _archived_link(link: dict[str, Any] | None, contact_id: str) -> dict[str, Any]:
    """A linked contact Xero refused to edit as archived, from the link's snapshot."""
    snapshot: dict[str, Any] = link["contact"] if link and isinstance(link.get("contact"), dict) else {}
    return {**snapshot, "ContactID": contact_id, "ContactStatus": "ARCHIVED"}


# ----------------------------------------------------------------- one step
@action(
    "xero.create_or_update_contact", app="xero", input_model=ContactInput, scopes=("accounting.contacts",)
)
def create_or_update_contact(ctx: ActionContext, data: ContactInput) -> dict[str, Any]:
    """Update the Xero contact the input matches (MatchBy), or create one when nothing matches."""
    client = ctx.service("xero")
    fields = _fields(data)
    number = data.ContactNumber
    tenant = _tenant(client)
    if not number:  # nothing to link or lock by: matched by e-mail or name (Xero keeps names unique)
        output, _ = _match_and_write(ctx, client, data, fields, None)
        return output
    digest = input_digest(fields)
    use_link = "link" in data.MatchBy
    # find → write → link under the link key's lock. Two steps of one client (two invoices at once)
    # would otherwise both find nothing and both create; Xero does not keep ContactNumber unique,
    # and a client renamed between them escapes the name check too. The lock is taken with the
    # link's read (one request, which takes no lock when the link already holds this input: the
    # unchanged skip); a second writer that waited for it sees the first's link: it updates what
    # the first made, or writes nothing when the first wrote the same input. The lock also keeps
    # the link's hash that of the last write Xero received. Without ``link`` in MatchBy the link
    # is neither used nor skipped on, only written.
    unless = _version(tenant, digest) if use_link else None
    with ctx.links.lock_link(CONTACT_LINK, number, unless=unless) as hold:
        link = _for_tenant(hold.link, tenant) if use_link else None
        skipped = _unchanged(link, digest)
        if skipped is not None:
            _upgrade(hold, link, tenant, digest, ctx.input_sha256 if use_link else "")
            return skipped
        output, contact = _match_and_write(ctx, client, data, fields, link)
        rendered = ctx.input_sha256 if use_link else ""
        hold.write(_link_target(contact, tenant, digest, rendered), version=_version(tenant, digest))
    return output


def _match_and_write(
    ctx: ActionContext, client: Any, data: ContactInput, fields: dict[str, Any], link: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Match, then update the match or create: (the step's output, the contact to link)."""
    link_id = str(link["ContactID"]) if link else None
    retry = ctx.attempt > 1
    candidates: list[dict[str, Any]] = []
    if _needs_lookup(data, link_id, retry):
        expect_calls(2)  # the lookup, then the write: one admission for both
        candidates = _lookup(client, _clauses(data, retry))
    match = _choose(data, candidates, link_id, retry)
    if match is not None and _archived_match(match, fields):
        assert match[1] is not None
        return _contact_output(match[1], False, matched_by=match[2]), match[1]
    if match is not None:
        contact_id, _, matched_by = match
        try:
            contact = _update(ctx, client, contact_id, fields)
        except PermanentError as refused:
            if matched_by != "link" or not _archived_refusal(refused):
                raise
            contact = _archived_link(link, contact_id)  # archived in Xero since it was linked
        return _contact_output(contact, False, matched_by=matched_by), contact
    from clientary_xero.connectors.xero.client import checked_elements, element_errors

    answer = client.request(
        "POST", "/Contacts", json={"Contacts": [fields]}, idempotency_key=f"{ctx.idempotency_key}:create"
    )
    error = element_errors(answer, "Contacts")
    if error is not None and _name_taken(error):
        return _adopt_by_name(ctx, client, data, fields, error)
    if error is not None:
        raise error
    contact = checked_elements(answer, "Contacts")[0]
    return _contact_output(contact, True), contact


def _update(ctx: ActionContext, client: Any, contact_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    from clientary_xero.connectors.xero.client import checked_elements

    body = {"Contacts": [{"ContactID": contact_id, **fields}]}
    answer = client.request("POST", "/Contacts", json=body, idempotency_key=f"{ctx.idempotency_key}:update")
    return checked_elements(answer, "Contacts")[0]


def _version(tenant: str, digest: str) -> str:
    """The link's ``version``: what a link holding this very write of this organisation says."""
    return f"{tenant}:{digest}"


def _upgrade(hold: Any, link: dict[str, Any] | None, tenant: str, digest: str, rendered: str) -> None:
    """Bring an unchanged link up to date. One written before links stored their ``version`` was
    locked to be read: give the lock up with the version added (the same one write), so the next
    read takes none. One that does not hold ``rendered`` (the hash of this rendered input: written
    before links kept it, or by another version of the code) gets it, once, so the next cold step
    answers before validation (contact_links.py)."""
    if link is None:
        return
    if not hold.unchanged:
        hold.write(
            {**link, **({"rendered_sha256": rendered} if rendered else {})}, version=_version(tenant, digest)
        )
        return
    # Only a hash of no or another version's code is replaced: two workflows rendering the same
    # contact differently (a null field, spaces) would otherwise take turns writing theirs.
    code = rendered.partition(":")[0]
    if not rendered or str(link.get("rendered_sha256") or "").startswith(f"{code}:"):
        return
    try:
        hold.amend({**link, "rendered_sha256": rendered})
    except Exception as exc:  # a detail for the next cold start: never the step's failure
        logger.info("could not add the rendered input's hash to a contact link (%s)", type(exc).__name__)


def _adopt_by_name(
    ctx: ActionContext, client: Any, data: ContactInput, fields: dict[str, Any], error: PermanentError
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Xero refused to create the contact: its name is an active contact's. That contact is updated
    and linked when it is ours to take — it carries the input's ContactNumber (an earlier try made
    it, or a run made it meanwhile), or MatchBy has Name and it carries no other ContactNumber —
    else Xero's refusal fails the step. It is looked up as MatchBy's Name is (any case or spaces)."""
    from clientary_xero.connectors.xero.client import checked_elements

    holders = [
        c
        for c in _lookup(client, [_name_clause(data.Name)])
        if c.get("ContactStatus") == "ACTIVE" and normal_name(c.get("Name")) == normal_name(data.Name)
    ]
    ours = [
        c
        for c in holders
        if data.ContactNumber and casefold_equal(c.get("ContactNumber"), data.ContactNumber)
    ]
    free = [c for c in holders if not c.get("ContactNumber") and "Name" in data.MatchBy]
    if len(ours) == 1 or (not ours and len(free) == 1):
        holder, matched_by = (ours[0], "ContactNumber") if ours else (free[0], "Name")
    else:
        taken = ", ".join(f"{c.get('Name')!r} (ContactNumber {c.get('ContactNumber')!r})" for c in holders)
        raise PermanentError(
            f"{error} — the name belongs to {taken or 'an active Xero contact'}, which this step does "
            "not take over",
            messages=error.messages,
            status=error.status,
            service="xero",
        ) from None
    body = {"Contacts": [{"ContactID": holder["ContactID"], **fields}]}
    answer = client.request("POST", "/Contacts", json=body, idempotency_key=f"{ctx.idempotency_key}:adopt")
    contact = checked_elements(answer, "Contacts")[0]
    return _contact_output(contact, False, matched_by=matched_by), contact


# ----------------------------------------------------------------- several steps in one call
@batched(
    "xero.create_or_update_contact",
    when=lambda data: bool(data.ContactNumber),
    same=lambda data: data.ContactNumber,  # one element per contact (write_contacts groups them)
)
def write_contacts(
    calls: list[tuple[ActionContext, ContactInput]], key: str
) -> list[dict[str, Any] | Exception]:
    """The first attempts of several contact steps as one ``POST /Contacts`` (engine/batching.py).

    As ``create_or_update_contact`` does for one step: linked contacts are updated; the others are
    matched by their MatchBy — one lookup for all of them (their ContactNumbers, e-mails and names
    joined by OR), under each number's link lock — and updated, or created; each is linked. An
    ambiguous match fails its own steps only; an archived match is linked and reported, not
    written; two contacts of the batch matching the same Xero contact: the second fails (alone,
    it would find the first's ContactNumber on it). Steps naming the same ContactNumber share one
    element, written with the last one's fields (where writing them one after the other would
    end), and its result: the first is told ``created`` when the contact was new, the others are
    told it existed."""
    from clientary_xero.connectors.xero.client import answered_elements, element_errors

    client = calls[0][0].service("xero")
    tenant = _tenant(client)
    groups: dict[str, list[int]] = {}
    for i, (_, data) in enumerate(calls):
        groups.setdefault(f"number:{data.ContactNumber}" if data.ContactNumber else f"step:{i}", []).append(i)
    out: list[dict[str, Any] | Exception | None] = [None] * len(calls)
    with contextlib.ExitStack() as locks:
        links: dict[str, dict[str, Any] | None] = {group: None for group in groups}
        matches: dict[str, Match | None] = {group: None for group in groups}
        holds: dict[str, Any] = {}  # group → its link's lock
        to_match: list[str] = []
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
            link = _for_tenant(hold.link, tenant) if "link" in data.MatchBy else None
            if _share(out, members, _unchanged(link, digest)):
                _upgrade(hold, link, tenant, digest, ctx.input_sha256 if "link" in data.MatchBy else "")
                continue
            holds[group] = hold
            links[group] = link
            to_match.append(group)
        clauses: list[str] = []
        for group in to_match:
            data = calls[groups[group][-1]][1]
            link_id = str(links[group]["ContactID"]) if links[group] else None  # type: ignore[index]
            if _needs_lookup(data, link_id, False):
                clauses += _clauses(data, False)
        if clauses:
            expect_calls(2)  # the lookup, then the write: one admission for both
        candidates = _lookup(client, clauses)
        claimed: dict[str, str] = {}  # ContactID → the ContactNumber of the group that matched it
        for group in groups:
            if out[groups[group][0]] is not None:
                continue
            data = calls[groups[group][-1]][1]
            link = links[group]
            try:
                if group in to_match:
                    matches[group] = _choose(
                        data, candidates, str(link["ContactID"]) if link else None, False
                    )
                match = matches[group]
                if match is not None and match[0] in claimed:
                    raise PermanentError(
                        f"{data.ContactNumber} matched (by {match[2]}) the Xero contact "
                        f"{_named(match)} that {claimed[match[0]]} matched in the same batch; "
                        "nothing was written for it",
                        service="xero",
                    )
                if match is not None:
                    claimed[match[0]] = str(data.ContactNumber)
            except PermanentError as exc:
                _share(out, groups[group], exc)
                continue
            if match is not None and _archived_match(match, _fields(data)):
                contact = match[1]
                assert contact is not None and data.ContactNumber
                digest = input_digest(_fields(data))
                rendered = calls[groups[group][-1]][0].input_sha256 if "link" in data.MatchBy else ""
                holds[group].write(
                    _link_target(contact, tenant, digest, rendered), version=_version(tenant, digest)
                )
                _share(out, groups[group], _contact_output(contact, False, matched_by=match[2]))
        written = [g for g in groups if out[groups[g][0]] is None]
        if not written:
            return _every(out)
        elements = [
            {"ContactID": matches[g][0], **_fields(calls[groups[g][-1]][1])}  # type: ignore[index]
            if matches[g]
            else _fields(calls[groups[g][-1]][1])
            for g in written
        ]
        answer = client.request("POST", "/Contacts", json={"Contacts": elements}, idempotency_key=key)
        for group, element in zip(written, answered_elements(answer, "Contacts", len(written)), strict=True):
            members = groups[group]
            ctx, data = calls[members[-1]]
            match = matches[group]
            result: dict[str, Any] | Exception
            error = element_errors({"Contacts": [element]}, "Contacts")
            try:
                if error is not None and match is None and _name_taken(error):
                    result, element = _adopt_by_name(ctx, client, data, _fields(data), error)
                elif error is not None and match and match[2] == "link" and _archived_refusal(error):
                    element = _archived_link(links[group], match[0])
                    result = _contact_output(element, False, matched_by="link")
                elif error is not None:
                    raise error
                else:
                    result = _contact_output(element, match is None, matched_by=match[2] if match else None)
                if group in holds:
                    digest = input_digest(_fields(data))
                    rendered = ctx.input_sha256 if "link" in data.MatchBy else ""
                    holds[group].write(
                        _link_target(element, tenant, digest, rendered), version=_version(tenant, digest)
                    )
            except PermanentError as exc:
                result = exc
            _share(out, members, result)
    return _every(out)


def _named(match: Match) -> str:
    contact = match[1] or {}
    return f"{contact.get('Name')!r} ({match[0]})" if contact.get("Name") else match[0]


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
    """What is sent to Xero: the input's fields that are given (MatchBy is not Xero's)."""
    return data.model_dump(exclude_none=True, exclude={"MatchBy"})


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
