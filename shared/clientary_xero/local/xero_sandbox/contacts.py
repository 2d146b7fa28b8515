"""Contacts: GET (by id or ContactNumber, ``IDs``, ``includeArchived``, where/searchTerm/page) and
PUT/POST with Xero's validation — a name unique among active contacts, field lengths, e-mail,
status, currency, a unique AccountNumber, no edit of an archived contact — and the contact
reference a document names (by ContactID, ContactNumber or Name).

An ARCHIVED contact is not edited: an update that changes more than its ``ContactStatus`` is
refused with Xero's "The specified contact details matched an archived contact." unless it
restores the contact (``ContactStatus: ACTIVE``; the name must then be free among active contacts).
Setting the status alone (archiving again, GDPRREQUEST) is allowed. Integrations report this error
for updates of archived contacts and say they must be restored first (e.g. Recurly's help article
"The specified contact details matched an archived contact").
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx

from clientary_xero.local.xero_sandbox.listing import ListingMixin
from clientary_xero.local.xero_sandbox.model import (
    _CURRENCY,
    _EMAIL,
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _not_found,
)

_CONTACT_FIELDS = (
    "ContactNumber",
    "AccountNumber",
    "ContactStatus",
    "Name",
    "FirstName",
    "LastName",
    "CompanyNumber",
    "EmailAddress",
    "ContactPersons",
    "BankAccountDetails",
    "TaxNumber",
    "TaxNumberType",
    "AccountsReceivableTaxType",
    "AccountsPayableTaxType",
    "Addresses",
    "Phones",
    "DefaultCurrency",
    "XeroNetworkKey",
    "SalesDefaultAccountCode",
    "PurchasesDefaultAccountCode",
    "PaymentTerms",
)
_CONTACT_LIMITS = {
    "Name": 255,
    "FirstName": 255,
    "LastName": 255,
    "EmailAddress": 255,
    "ContactNumber": 50,
    "AccountNumber": 50,
    "CompanyNumber": 50,
    "TaxNumber": 50,
}


# Xero's answer to an edit of an archived contact.
ARCHIVED_MATCH = "The specified contact details matched an archived contact."
# Xero's answer to an invoice (ACCREC or ACCPAY) for an archived contact. The wording is the one
# integrations quote from Xero's answer, e.g. Re-Leased ("Xero has rejected this approve request
# with the following message: The contact with the specified contact details has been archived. ..."
# help.re-leased.com/support/solutions/articles/8000045210), AgriDigital, YourTradebase, Expedo;
# Bill.com reports the same for a bill's vendor. Xero names invoices and credit notes only: quotes
# and purchase orders are not reported refused, so the sandbox accepts those.
ARCHIVED_DOCUMENT = (
    "The contact with the specified contact details has been archived. "
    "The contact must be un-archived before creating new invoices or credit notes."
)


class ContactsMixin(ListingMixin):
    """The Contacts endpoint and contact references."""

    def _get_contacts(self, tenant: _Tenant, ident: str | None, params: dict[str, str]) -> httpx.Response:
        if ident is not None:
            found = self._find_contact(tenant, ident)
            return self._ok({"Contacts": [copy.deepcopy(found)]}) if found else _not_found()
        records = list(tenant.contacts.values())
        if params.get("includearchived", "").lower() != "true":
            records = [c for c in records if c.get("ContactStatus") == "ACTIVE"]
        if params.get("ids"):
            wanted = {i.strip().lower() for i in params["ids"].split(",")}
            records = [c for c in records if c["ContactID"] in wanted]
        records = self._filter(
            records, params, ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
        )
        records, extra = self._page(records, params)
        return self._ok({**extra, "Contacts": copy.deepcopy(records)})

    def _save_contact(
        self, tenant: _Tenant, element: dict[str, Any], method: str
    ) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        existing: dict[str, Any] | None = None
        contact_id = element.get("ContactID")
        if contact_id:
            if method == "PUT":
                errors.append("A ContactID cannot be specified when creating a contact; use POST to update.")
            else:
                existing = tenant.contacts.get(str(contact_id).lower())
                if existing is None:
                    errors.append(f"The Contact with ContactID {contact_id} could not be found.")
        fields = {k: element[k] for k in _CONTACT_FIELDS if k in element}
        name = fields.get("Name", existing.get("Name") if existing else None)
        if not isinstance(name, str) or not name.strip():
            errors.append("Contact Name cannot be empty.")
            name = None
        for key, limit in _CONTACT_LIMITS.items():
            value = fields.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                errors.append(f"The {key} must be a text of at most {limit} characters.")
        email = fields.get("EmailAddress")
        if isinstance(email, str) and email and not _EMAIL.match(email):
            errors.append("Email address must be valid.")
        status = fields.get("ContactStatus", existing.get("ContactStatus") if existing else "ACTIVE")
        if status not in ("ACTIVE", "ARCHIVED", "GDPRREQUEST"):
            errors.append(f"ContactStatus {status!r} is not valid.")
        currency = fields.get("DefaultCurrency")
        if currency is not None and (not isinstance(currency, str) or not _CURRENCY.match(currency)):
            errors.append(f"DefaultCurrency {currency!r} is not a valid currency code.")
        for key in ("Phones", "Addresses", "ContactPersons"):
            if key in fields and not (
                isinstance(fields[key], list) and all(isinstance(x, dict) for x in fields[key])
            ):
                errors.append(f"{key} must be a list of objects.")
        own_id = existing["ContactID"] if existing else None
        edits = set(fields) - {"ContactStatus"}
        if (
            existing is not None
            and existing.get("ContactStatus") == "ARCHIVED"
            and status != "ACTIVE"
            and edits
        ):
            errors.append(ARCHIVED_MATCH)
        if name and status == "ACTIVE":
            taken = any(
                c["ContactID"] != own_id
                and c.get("ContactStatus") == "ACTIVE"
                and c["Name"].strip().casefold() == name.strip().casefold()
                for c in tenant.contacts.values()
            )
            if taken:
                errors.append(
                    f"The contact name {name} is already assigned to another contact. "
                    "The contact name must be unique across all active contacts."
                )
        account = fields.get("AccountNumber")
        if account and any(
            c["ContactID"] != own_id and c.get("AccountNumber") == account for c in tenant.contacts.values()
        ):
            errors.append("The Account Number already exists. Please enter a different Account Number.")
        if errors:
            return {}, errors
        if existing is None:
            existing = {
                "ContactID": str(uuid.uuid4()),
                "ContactStatus": "ACTIVE",
                "Addresses": [],
                "Phones": [],
                "ContactGroups": [],
                "ContactPersons": [],
                "IsSupplier": False,
                "IsCustomer": False,
                "HasAttachments": False,
                "HasValidationErrors": False,
            }
            tenant.contacts[existing["ContactID"]] = existing
        existing.update(copy.deepcopy(fields))
        existing["ContactStatus"] = status
        existing["UpdatedDateUTC"] = self._stamp()
        return existing, []

    def _resolve_contact(self, tenant: _Tenant, ref: Any) -> tuple[dict[str, Any] | None, str | None]:
        if not isinstance(ref, dict) or not any(ref.get(k) for k in ("ContactID", "ContactNumber", "Name")):
            return None, "A Contact must be specified for this type of transaction"
        if ref.get("ContactID"):
            found = tenant.contacts.get(str(ref["ContactID"]).lower())
            return (
                (found, None)
                if found
                else (None, f"The Contact with ContactID {ref['ContactID']} could not be found.")
            )
        if ref.get("ContactNumber"):
            found = next(
                (c for c in tenant.contacts.values() if c.get("ContactNumber") == ref["ContactNumber"]), None
            )
            return (
                (found, None)
                if found
                else (None, f"The Contact with ContactNumber {ref['ContactNumber']} could not be found.")
            )
        found = next(
            (
                c
                for c in tenant.contacts.values()
                if c.get("ContactStatus") == "ACTIVE" and c["Name"].casefold() == str(ref["Name"]).casefold()
            ),
            None,
        )
        return (found, None) if found else (None, f"The Contact with Name {ref['Name']} could not be found.")
