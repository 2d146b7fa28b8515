"""Seeding the Xero sandbox: every collection the product reads, put in as Xero would hold it.

``SeedingMixin`` gives ``XeroSandbox`` ``seed(tenant_id, collection, records)``,
``seed_many(tenant_id, {collection: records})`` and one ``seed_…`` method per collection. Each
record goes through the save path the sandbox's own API uses (``_save_document`` for quotes and
purchase orders, ``_save_payment``, ``_save_item``, …), so a seeded record gets Xero's numbers,
totals, tax and links (a payment needs an AUTHORISED invoice and lowers its ``AmountDue``) and a bad
one is refused with the sandbox's validation messages, naming the collection and the record's
index. On top of the API, seeding:

* keeps a given id (``ContactID``, ``InvoiceID``, … a UUID not taken yet), so other records and
  the ``--event`` record can refer to it;
* reaches statuses the API only gives on update (a purchase order ``BILLED``, a quote
  ``INVOICED``, an invoice ``VOIDED``, anything ``DELETED``): created, then updated, as in Xero; an
  invoice is ``PAID`` only by seeding its payments;
* also fills collections the sandbox's API does not write: Accounts, TaxRates, TrackingCategories
  (served by ``GET /TrackingCategories``) and Projects (through the Projects API's own create,
  ``status: CLOSED`` allowed, a contact named by ``contact: {Name | ContactNumber | ContactID}``).

``seed_many`` seeds in ``SEED_ORDER`` (settings before contacts and items, documents before
payments) whatever the order given, so references resolve; all or nothing: a refused record leaves
the organisation as it was.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # the sandbox imports this module: no import of it at run time
    from clientary_xero.local.xero_sandbox.core import XeroSandbox
    from clientary_xero.local.xero_sandbox.model import _Tenant

# References resolve in this order: accounts and tax rates before the records that use them,
# contacts and items before documents, invoices before their payments.
SEED_ORDER = (
    "Accounts",
    "TaxRates",
    "TrackingCategories",
    "Contacts",
    "Items",
    "Invoices",
    "Quotes",
    "PurchaseOrders",
    "Payments",
    "BankTransfers",
    "Projects",
)
_ID_KEYS = {
    "Accounts": "AccountID",
    "TrackingCategories": "TrackingCategoryID",
    "Contacts": "ContactID",
    "Items": "ItemID",
    "Invoices": "InvoiceID",
    "Quotes": "QuoteID",
    "PurchaseOrders": "PurchaseOrderID",
    "Payments": "PaymentID",
    "BankTransfers": "BankTransferID",
    "Projects": "projectId",
}
_TABLES = {
    "Accounts": "accounts",
    "TrackingCategories": "tracking_categories",
    "Contacts": "contacts",
    "Items": "items",
    "Invoices": "invoices",
    "Quotes": "quotes",
    "PurchaseOrders": "purchase_orders",
    "Payments": "payments",
    "BankTransfers": "bank_transfers",
    "Projects": "projects",
}
# Statuses the API gives on update only: (status to create with, then the update to this one).
_LATER_STATUSES = {
    "Invoices": {"VOIDED": "AUTHORISED", "DELETED": "DRAFT"},
    "Quotes": {"INVOICED": "ACCEPTED", "DELETED": "DRAFT"},
    "PurchaseOrders": {"BILLED": "AUTHORISED", "DELETED": "DRAFT"},
}
# Every piece of an organisation a seed can change: restored when a record is refused.
_STATE = (
    "contacts",
    "invoices",
    "accounts",
    "payments",
    "quotes",
    "purchase_orders",
    "items",
    "bank_transfers",
    "projects",
    "history",
    "tax_rates",
    "tracking_categories",
    "next_invoice",
    "next_quote",
    "next_purchase_order",
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ACCOUNT_TYPES = (
    "BANK",
    "CURRENT",
    "CURRLIAB",
    "DEPRECIATN",
    "DIRECTCOSTS",
    "EQUITY",
    "EXPENSE",
    "FIXED",
    "INVENTORY",
    "LIABILITY",
    "NONCURRENT",
    "OTHERINCOME",
    "OVERHEADS",
    "PREPAYMENT",
    "REVENUE",
    "SALES",
    "TERMLIAB",
    "PAYG",
)
_STATUSES = ("ACTIVE", "ARCHIVED", "DELETED")
MAX_ACTIVE_TRACKING_CATEGORIES = 2  # Xero's limit per organisation (and per line, reference §2)


class SeedError(ValueError):
    """A seeded record the sandbox refuses: ``Collection[index]: message; message``."""

    def __init__(self, collection: str, index: int, messages: list[str]) -> None:
        self.collection, self.index, self.messages = collection, index, list(messages)
        super().__init__(f"{collection}[{index}]: {'; '.join(messages)}")


def _given_id(record: dict[str, Any], id_key: str, table: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The id a record asks to keep (lower case, as the sandbox stores ids), or why it cannot."""
    wanted = record.get(id_key)
    if wanted in (None, ""):
        return None, []
    if not isinstance(wanted, str) or not _UUID.match(wanted):
        return None, [f"{id_key} {wanted!r} is not a UUID."]
    if wanted.lower() in table:
        return None, [f"{id_key} {wanted} is already taken in this organisation."]
    return wanted.lower(), []


def _rekey(table: dict[str, Any], record: dict[str, Any], id_key: str, wanted: str | None) -> None:
    if wanted is None or record[id_key] == wanted:
        return
    table.pop(record[id_key], None)
    record[id_key] = wanted
    table[wanted] = record


class SeedingMixin:
    """``XeroSandbox``'s seeding methods (see the module docstring)."""

    def _box(self) -> XeroSandbox:
        return cast("XeroSandbox", self)

    # ------------------------------------------------------------------ public
    def seed(self, tenant_id: str, collection: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Seed one collection by Xero's name (``PurchaseOrders``, …); the records as saved."""
        return self.seed_many(tenant_id, {collection: records})[collection]

    def seed_many(
        self, tenant_id: str, collections: Mapping[str, list[dict[str, Any]]]
    ) -> dict[str, list[dict[str, Any]]]:
        """Seed several collections in ``SEED_ORDER``, all or nothing. Raises ``ValueError`` for an
        unknown collection and ``SeedError`` (naming collection and index) for a refused record."""
        unknown = [name for name in collections if name not in SEED_ORDER]
        if unknown:
            raise ValueError(
                f"Xero has no collection {unknown[0]!r} to seed; one of: {', '.join(SEED_ORDER)}"
            )
        box = self._box()
        with box._lock:
            if tenant_id not in box._tenants:
                raise ValueError(f"no organisation {tenant_id!r} in the sandbox")
            tenant = box._tenants[tenant_id]
            before = {name: copy.deepcopy(getattr(tenant, name)) for name in _STATE}
            try:
                saved: dict[str, list[dict[str, Any]]] = {}
                for name in SEED_ORDER:
                    if name not in collections:
                        continue
                    records = collections[name]
                    if not isinstance(records, list):
                        raise ValueError(f"{name} must be a list of records")
                    saved[name] = [self._seed_one(tenant, name, i, r) for i, r in enumerate(records)]
            except Exception:
                for name, value in before.items():
                    setattr(tenant, name, value)
                raise
            return {name: saved[name] for name in collections}

    def seed_invoice(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        return self.seed(tenant_id, "Invoices", [fields])[0]

    def seed_quote(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        return self.seed(tenant_id, "Quotes", [fields])[0]

    def seed_purchase_order(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        return self.seed(tenant_id, "PurchaseOrders", [fields])[0]

    def seed_item(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        return self.seed(tenant_id, "Items", [fields])[0]

    def seed_payment(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        return self.seed(tenant_id, "Payments", [fields])[0]

    def seed_bank_transfer(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        return self.seed(tenant_id, "BankTransfers", [fields])[0]

    def seed_project(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        return self.seed(tenant_id, "Projects", [fields])[0]

    def seed_account(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        return self.seed(tenant_id, "Accounts", [fields])[0]

    def seed_tracking_category(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        return self.seed(tenant_id, "TrackingCategories", [fields])[0]

    def tracking_categories(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._box()._snapshot(tenant_id, "tracking_categories")

    # ------------------------------------------------------------ one record
    def _seed_one(self, tenant: _Tenant, name: str, index: int, record: Any) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise SeedError(name, index, ["A record must be an object."])
        if name == "TaxRates":
            saved, errors = self._seed_tax_rate(tenant, record)
        else:
            id_key = _ID_KEYS[name]
            table: dict[str, Any] = getattr(tenant, _TABLES[name])
            wanted, errors = _given_id(record, id_key, table)
            element = {k: v for k, v in record.items() if k != id_key}
            saved = {}
            if not errors:
                saved, errors = self._save(tenant, name, element)
            if not errors:
                _rekey(table, saved, id_key, wanted)
                if name == "Payments":
                    self._relink_payment(tenant, saved)
        if errors:
            raise SeedError(name, index, errors)
        return copy.deepcopy(saved)

    def _save(self, tenant: _Tenant, name: str, element: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        box = self._box()
        if name == "Contacts":
            return box._save_contact(tenant, element, "PUT")
        if name == "Items":
            return box._save_item(tenant, element, "PUT")
        if name == "Payments":
            return box._save_payment(tenant, element)
        if name == "BankTransfers":
            return box._save_bank_transfer(tenant, element)
        if name == "Accounts":
            return self._save_account(tenant, element)
        if name == "TrackingCategories":
            return self._save_tracking_category(tenant, element)
        if name == "Projects":
            return self._save_project(tenant, element)
        return self._save_with_status(tenant, name, element)

    def _save_with_status(
        self, tenant: _Tenant, name: str, element: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """Invoices, quotes and purchase orders: created as the API creates them, then updated to a
        status only an update reaches."""
        box = self._box()
        id_key = _ID_KEYS[name]
        status = element.get("Status")
        if name == "Invoices" and status == "PAID":
            return {}, ["An invoice is PAID by its payments: seed it AUTHORISED and seed its Payments."]
        first = _LATER_STATUSES[name].get(status) if isinstance(status, str) else None
        create = {**element, "Status": first} if first else element

        def save(body: dict[str, Any], method: str) -> tuple[dict[str, Any], list[str]]:
            if name == "Invoices":
                return box._save_invoice(tenant, body, method, 4)  # unitdp=4: amounts as written
            return box._save_document(tenant, body, method, kind=name[:-1])

        saved, errors = save(create, "PUT")
        if errors or not first:
            return saved, errors
        return save({id_key: saved[id_key], "Status": status}, "POST")

    def _relink_payment(self, tenant: _Tenant, payment: dict[str, Any]) -> None:
        """A kept PaymentID is also the one the invoice lists among its payments."""
        invoice = tenant.invoices.get(payment["Invoice"]["InvoiceID"])
        if invoice and invoice.get("Payments"):
            invoice["Payments"][-1]["PaymentID"] = payment["PaymentID"]

    # -------------------------------------------------------------- accounts
    def _save_account(self, tenant: _Tenant, element: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """An account as ``PUT /Accounts`` creates it (Xero's messages where the spec quotes them)."""
        from clientary_xero.local.xero_sandbox import accounts_tax, model

        box = self._box()
        errors: list[str] = []
        code, name, kind = element.get("Code"), element.get("Name"), element.get("Type")
        if not isinstance(code, str) or not code.strip():
            errors.append("Please enter a Code.")
        elif len(code) > 10:
            errors.append("The Code must not be more than 10 characters long.")
        elif any(a["Code"].casefold() == code.casefold() for a in tenant.accounts.values()):
            errors.append("Please enter a unique Code.")
        if not isinstance(name, str) or not name.strip():
            errors.append("Please enter a Name.")
        elif len(name) > 150:
            errors.append("The Name must not be more than 150 characters long.")
        elif any(a["Name"].casefold() == name.casefold() for a in tenant.accounts.values()):
            errors.append("Please enter a unique Name.")  # the spec's PUT /Accounts example
        if kind not in _ACCOUNT_TYPES:
            errors.append(f"Account Type {kind!r} is not valid; one of: {', '.join(_ACCOUNT_TYPES)}.")
        status = element.get("Status", "ACTIVE")
        if status not in ("ACTIVE", "ARCHIVED"):
            errors.append(f"Account Status {status!r} is not valid here; use ACTIVE or ARCHIVED.")
        if kind == "BANK" and not element.get("BankAccountNumber"):
            errors.append("A bank account needs its BankAccountNumber.")
        currency = element.get("CurrencyCode", tenant.currency)
        if not isinstance(currency, str) or not model._CURRENCY.match(currency):
            errors.append(f"CurrencyCode {currency!r} is not a valid currency code.")
        tax_type = element.get("TaxType")
        if tax_type not in (None, "") and tax_type not in tenant.tax_rates:
            errors.append(f"The TaxType code '{tax_type}' does not exist.")
        if errors:
            return {}, errors
        assert isinstance(code, str) and isinstance(name, str) and isinstance(kind, str)
        account: dict[str, Any] = {
            "AccountID": str(uuid.uuid4()),
            "Code": code,
            "Name": name,
            "Type": kind,
            "Status": status,
            "Description": str(element.get("Description") or ""),
            "Class": accounts_tax._CLASS_OF[kind],
            "TaxType": tax_type or box._account_tax(tenant, kind),
            "EnablePaymentsToAccount": bool(element.get("EnablePaymentsToAccount", False)),
            "ShowInExpenseClaims": bool(element.get("ShowInExpenseClaims", False)),
            "HasAttachments": False,
            "AddToWatchlist": bool(element.get("AddToWatchlist", False)),
            "ReportingCode": str(element.get("ReportingCode") or ""),
            "UpdatedDateUTC": box._stamp(),
        }
        if kind == "BANK":
            account.update(
                BankAccountNumber=str(element["BankAccountNumber"]),
                BankAccountType=element.get("BankAccountType", "BANK"),
                CurrencyCode=currency,
            )
        tenant.accounts[account["AccountID"]] = account
        return account, []

    # ------------------------------------------------------------- tax rates
    def _seed_tax_rate(self, tenant: _Tenant, element: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """A rate added, or changed by its ``TaxType`` (``seed_tax_rate``), once its fields are checked."""
        errors: list[str] = []
        tax_type = element.get("TaxType")
        if not isinstance(tax_type, str) or not tax_type.strip():
            errors.append("A tax rate needs its TaxType.")
        name = element.get("Name")
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 50):
            errors.append("The Name of a tax rate must be a text of 1 to 50 characters.")
        components = element.get("TaxComponents")
        if components is not None:
            if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
                errors.append("TaxComponents must be a list of objects.")
            else:
                for component in components:
                    try:
                        rate = Decimal(str(component.get("Rate")))
                    except InvalidOperation:
                        rate = Decimal(-1)
                    if isinstance(component.get("Rate"), bool) or not rate.is_finite() or rate < 0:
                        errors.append(
                            f"The Rate of tax component {component.get('Name')!r} must be a number ≥ 0."
                        )
        if errors:
            return {}, errors
        try:
            return self._box().seed_tax_rate(tenant.tenant_id, **element), []
        except (ValueError, TypeError, InvalidOperation) as exc:
            return {}, [str(exc)]

    # --------------------------------------------------- tracking categories
    def _save_tracking_category(
        self, tenant: _Tenant, element: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """A tracking category with its options (``PUT /TrackingCategories`` + ``/Options``)."""
        errors: list[str] = []
        name = element.get("Name")
        status = element.get("Status", "ACTIVE")
        if not isinstance(name, str) or not name.strip():
            errors.append("Tracking Category Name cannot be empty.")
        elif len(name) > 100:
            errors.append("The Name of a tracking category must not be more than 100 characters long.")
        elif any(
            c["Name"].casefold() == name.casefold() and c["Status"] != "DELETED"
            for c in tenant.tracking_categories.values()
        ):
            errors.append("Please enter a unique Name.")
        if status not in _STATUSES:
            errors.append(
                f"Tracking Category Status {status!r} is not valid; one of: {', '.join(_STATUSES)}."
            )
        active = sum(c["Status"] == "ACTIVE" for c in tenant.tracking_categories.values())
        if status == "ACTIVE" and active >= MAX_ACTIVE_TRACKING_CATEGORIES:
            errors.append(
                f"An organisation can have at most {MAX_ACTIVE_TRACKING_CATEGORIES} active tracking "
                "categories."
            )
        raw_options = element.get("Options", [])
        options: list[dict[str, Any]] = []
        if not isinstance(raw_options, list) or not all(isinstance(o, dict) for o in raw_options):
            errors.append("Options must be a list of objects.")
            raw_options = []
        seen: set[str] = set()
        for option in raw_options:
            label = option.get("Name")
            if not isinstance(label, str) or not label.strip() or len(label) > 100:
                errors.append("Each tracking option needs a Name of at most 100 characters.")
                continue
            if label.casefold() in seen:
                errors.append(f"The tracking option {label!r} is given twice.")
            seen.add(label.casefold())
            option_id, problems = _given_id(option, "TrackingOptionID", {})
            option_status = option.get("Status", "ACTIVE")
            if option_status not in _STATUSES:
                problems.append(f"Tracking option Status {option_status!r} is not valid.")
            errors.extend(problems)
            options.append(
                {"TrackingOptionID": option_id or str(uuid.uuid4()), "Name": label, "Status": option_status}
            )
        if errors:
            return {}, errors
        assert isinstance(name, str)
        category = {
            "TrackingCategoryID": str(uuid.uuid4()),
            "Name": name,
            "Status": status,
            "Options": options,
        }
        tenant.tracking_categories[category["TrackingCategoryID"]] = category
        return category, []

    # -------------------------------------------------------------- projects
    def _save_project(self, tenant: _Tenant, element: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Through the Projects API's own ``POST /Projects``; ``status`` INPROGRESS or CLOSED, a
        contact as ``contactId`` or ``contact: {ContactID | ContactNumber | Name}``, the estimate as
        ``estimateAmount`` or as Xero returns it (``estimate: {value}``)."""
        import httpx

        from clientary_xero.local.xero_sandbox import model

        box = self._box()
        errors: list[str] = []
        body = {k: element[k] for k in ("name", "contactId", "estimateAmount", "deadlineUtc") if k in element}
        ref = element.get("contact", element.get("Contact"))
        if ref is not None and "contactId" not in body:
            contact, problem = box._resolve_contact(tenant, ref)
            if problem:
                errors.append(problem)
            else:
                assert contact is not None
                body["contactId"] = contact["ContactID"]
        estimate = element.get("estimate")
        if isinstance(estimate, dict) and "estimateAmount" not in body:
            body["estimateAmount"] = estimate.get("value")
        status = element.get("status", "INPROGRESS")
        if status not in ("INPROGRESS", "CLOSED"):
            errors.append(f"status: {status!r} is not a project status; use INPROGRESS or CLOSED.")
        if errors:
            return {}, errors
        request = httpx.Request(
            "POST", f"https://api.xero.com{model._PROJECTS_PREFIX}projects", content=json.dumps(body).encode()
        )
        answer = box._projects_api(request, tenant)
        if answer.status_code != 201:
            state = answer.json().get("modelState") or {}
            return {}, [f"{key}: {message}" for key, messages in state.items() for message in messages]
        project: dict[str, Any] = tenant.projects[answer.json()["projectId"]]
        project["status"] = status
        return project, []
