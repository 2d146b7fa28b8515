"""Every Xero action's input takes what Xero lets that call write (issue 11, point 2).

Each input model (and each model nested in it) is compared with the schema of the Xero object the
call writes, in Xero's own OpenAPI description (``../shared/xero-openapi``, see
``tests.xero_contract``): every writable property is a field of the model, or read-only (refused
with "read-only in Xero"), or left out on purpose — listed below with the reason, and each entry
checked to be still needed. Every property the spec marks ``readOnly`` is refused as read-only.
Fields of a model that the schema does not have are the action's own options, listed too.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
from __future__ import annotations

import typing
from functools import cache
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from clientary_xero.connectors.base import batch_writer, registry
from clientary_xero.connectors.xero.actions import (
    banking,
    common,
    contacts,
    documents,
    inventory,
    invoices,
    projects,
    reports,
)
from tests.conftest_xero import (  # noqa: F401
    aws,
    clock,
    connection,
    make_context,
    make_provider,
    recorder,
    sandbox,
    xero,
)
from tests.xero_contract import spec_dir

ACCOUNTING = "xero_accounting.yaml"
PROJECTS = "xero-projects.yaml"

# Each model and the schema of the object it writes. References (a contact or account named by
# its id inside another object) are in REFERENCES instead.
WRITES: dict[type[BaseModel], tuple[str, str]] = {
    contacts.ContactInput: (ACCOUNTING, "Contact"),
    contacts.Phone: (ACCOUNTING, "Phone"),
    contacts.Address: (ACCOUNTING, "Address"),
    contacts.ContactPerson: (ACCOUNTING, "ContactPerson"),
    contacts.ContactPaymentTerms: (ACCOUNTING, "PaymentTerm"),
    contacts.PaymentTerm: (ACCOUNTING, "Bill"),
    contacts.BatchPaymentDetails: (ACCOUNTING, "BatchPaymentDetails"),
    common.TrackingDefault: (ACCOUNTING, "SalesTrackingCategory"),
    invoices.InvoiceInput: (ACCOUNTING, "Invoice"),
    invoices.InvoiceAddress: (ACCOUNTING, "InvoiceAddress"),
    common.LineItem: (ACCOUNTING, "LineItem"),
    common.PurchaseLineItem: (ACCOUNTING, "LineItem"),
    common.LineTracking: (ACCOUNTING, "LineItemTracking"),
    invoices.InvoiceNoteInput: (ACCOUNTING, "HistoryRecord"),
    invoices.PaymentInput: (ACCOUNTING, "Payment"),
    documents.QuoteInput: (ACCOUNTING, "Quote"),
    documents.PurchaseOrderInput: (ACCOUNTING, "PurchaseOrder"),
    inventory.StockItem: (ACCOUNTING, "Item"),
    inventory.ItemDetails: (ACCOUNTING, "Purchase"),
    inventory.PurchaseItemDetails: (ACCOUNTING, "Purchase"),
    banking.BankTransferInput: (ACCOUNTING, "BankTransfer"),
    common.TrackingRef: (ACCOUNTING, "TrackingReference"),
    projects.ProjectInput: (PROJECTS, "ProjectCreateOrUpdate"),
}

# A record named inside another: only its identifiers are sent, on purpose — more fields would
# update that record (reference/xero-api.md §2.4: a full Contact inside an invoice updates the
# contact and can drop its ContactPersons; a full Invoice inside a payment is validated again).
REFERENCES: dict[type[BaseModel], tuple[str, str]] = {
    common.ContactRef: (ACCOUNTING, "Contact"),
    common.AccountRef: (ACCOUNTING, "Account"),
    invoices.InvoiceRef: (ACCOUNTING, "Invoice"),
    contacts.BrandingThemeRef: (ACCOUNTING, "BrandingTheme"),
}

# Actions that write nothing: their inputs are search criteria (a `where` of several fields) or a
# report's query parameters (checked below against the operation's parameters).
READS = {
    "xero.find_contact": "criteria of GET /Contacts (where, searchTerm), not a Contact",
    "xero.find_invoice": "criteria of GET /Invoices (where, InvoiceNumbers, Statuses), not an Invoice",
    "xero.find_purchase_order": "criteria of GET /PurchaseOrders (Status, DateFrom, DateTo), not an order",
}
REPORTS = {
    reports.BalanceSheetInput: "/Reports/BalanceSheet",
    reports.ProfitAndLossInput: "/Reports/ProfitAndLoss",
}

_CREATE_ONLY = "the action creates: an id would make it update that record instead"
_ATTACHMENTS = "attachments go through the Attachments endpoints, not the record's body"

# Writable properties left out on purpose, with the reason.
LEFT_OUT: dict[tuple[type[BaseModel], str], str] = {
    (contacts.ContactInput, "ContactID"): "the action finds the contact itself (its id link, "
    "then ContactNumber): a ContactID input would bypass that; find_contact takes one",
    (contacts.ContactInput, "ContactGroups"): "groups are joined through PUT /ContactGroups/{id}/Contacts",
    (contacts.ContactInput, "Attachments"): _ATTACHMENTS,
    (contacts.ContactInput, "TrackingCategoryName"): "Xero's answer names the tracking of "
    "SalesTrackingCategories/PurchasesTrackingCategories here; those are written instead",
    (contacts.ContactInput, "TrackingCategoryOption"): "as TrackingCategoryName",
    (invoices.InvoiceInput, "InvoiceID"): _CREATE_ONLY,
    (invoices.InvoiceInput, "RepeatingInvoiceID"): "Xero sets it on invoices a repeating template makes",
    (invoices.InvoiceInput, "Attachments"): _ATTACHMENTS,
    (common.LineItem, "LineItemID"): "names a line of an existing invoice on update; the action creates",
    (common.LineItem, "RepeatingInvoiceID"): "Xero sets it on lines a repeating template makes",
    (common.LineItem, "Item"): "ItemCode names the item; Xero fills Item in its answer",
    (common.LineItem, "TaxBreakdown"): "Xero computes the US sales tax breakdown from the line",
    (common.PurchaseLineItem, "LineItemID"): "as LineItem's",
    (common.PurchaseLineItem, "RepeatingInvoiceID"): "as LineItem's",
    (common.PurchaseLineItem, "Item"): "as LineItem's",
    (common.PurchaseLineItem, "TaxBreakdown"): "as LineItem's",
    (common.PurchaseLineItem, "DiscountRate"): "Xero takes discounts on sales invoices and quotes only",
    (common.PurchaseLineItem, "DiscountAmount"): "as DiscountRate",
    (invoices.InvoiceNoteInput, "Changes"): "Xero writes 'Note' for a note added through the API",
    (invoices.InvoiceNoteInput, "User"): "Xero records the connection's user",
    (invoices.PaymentInput, "CreditNote"): "this action pays an invoice (Invoice.InvoiceID)",
    (invoices.PaymentInput, "Prepayment"): "as CreditNote",
    (invoices.PaymentInput, "Overpayment"): "as CreditNote",
    (invoices.PaymentInput, "InvoiceNumber"): "the invoice is named by Invoice.InvoiceID, by which "
    "a retry finds the payment",
    (invoices.PaymentInput, "CreditNoteNumber"): "as CreditNote",
    (invoices.PaymentInput, "BatchPayment"): "batch payments are Xero's BatchPayments endpoint",
    (invoices.PaymentInput, "Code"): "Account.Code names the same account",
    (invoices.PaymentInput, "Status"): "set only to delete a payment (Status DELETED); the action creates",
    (invoices.PaymentInput, "PaymentID"): _CREATE_ONLY,
    (documents.QuoteInput, "QuoteID"): _CREATE_ONLY,
    (documents.QuoteInput, "DateString"): "the same day as Date, which the input takes",
    (documents.QuoteInput, "ExpiryDateString"): "the same day as ExpiryDate, which the input takes",
    (documents.PurchaseOrderInput, "PurchaseOrderID"): _CREATE_ONLY,
    (documents.PurchaseOrderInput, "Attachments"): _ATTACHMENTS,
    (inventory.StockItem, "ItemID"): "the upsert finds the item by Code (ItemID sent when it exists)",
    (inventory.ItemDetails, "COGSAccountCode"): "purchase details of tracked items only "
    "(PurchaseItemDetails has it)",
}

# Properties a model refuses as read-only that the spec does not mark readOnly: documented so
# (the spec's description, reference/xero-api.md) or what Xero reports about its own answer.
DOCUMENTED_READ_ONLY = {
    "IsSupplier": "'Cannot be set via PUT or POST' (the spec's description)",
    "IsCustomer": "'Cannot be set via PUT or POST' (the spec's description)",
    "Balances": "the outstanding amounts Xero computes",
    "MergedToContactID": "'Only returned' (the spec's description)",
    "QuantityOnHand": "reference/xero-api.md §2.11: stock changes only through transactions",
    "TotalCostPool": "reference/xero-api.md §2.11",
    "IsTrackedAsInventory": "Xero derives it from the inventory and COGS accounts",
    "BatchPaymentID": "'Present if the payment was created as part of a batch'",
    "HasAccount": "about the answer",
    "HasErrors": "about the answer",
    "HasAttachments": "about the answer",
    "HasValidationErrors": "about the answer",
    "StatusAttributeString": "about the answer",
    "ValidationErrors": "about the answer",
    "Warnings": "about the answer",
}

# Fields of a model that its schema does not have: the action's own options, or the record the
# call is made on (a path parameter).
OPTIONS: dict[tuple[type[BaseModel], str], str] = {
    (invoices.InvoiceNoteInput, "InvoiceID"): "the path: PUT /Invoices/{InvoiceID}/History",
    (invoices.InvoiceNoteInput, "IfTooLong"): "splits or refuses a note over 250 characters",
    (invoices.PaymentInput, "Invoice"): "",  # a reference (InvoiceRef) to the Payment's Invoice
    (inventory.StockItemsInput, "Items"): "the Items of PUT/POST /Items",
    (inventory.StockItemsInput, "Mode"): "upsert (POST) or create (PUT)",
    (contacts.ContactInput, "MatchBy"): "how an existing contact is found before one is created",
}


@cache
def _schemas(name: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load((spec_dir() / name).read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (safe loader)
    return raw


def _properties(spec: str, schema: str) -> dict[str, dict[str, Any]]:
    return _schemas(spec)["components"]["schemas"][schema]["properties"]


def _key(name: str) -> str:
    # The Projects API spells its properties in camelCase; the input keeps PascalCase.
    return name.lower()


def _field_of(model: type[BaseModel], prop: str) -> str | None:
    by_key = {_key(f): f for f in model.model_fields}
    return by_key.get(_key(prop))


def _read_only(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(getattr(model, "READ_ONLY", frozenset()))


def _nested_models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for field in model.model_fields.values():
        for arg in _leaves(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                _nested_models(arg, seen)


def _leaves(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [leaf for arg in args for leaf in _leaves(arg)]


def test_every_xero_action_and_nested_model_is_compared_with_its_schema() -> None:
    models: set[type[BaseModel]] = set()
    for name, spec in registry().items():
        if spec.app != "xero":
            continue
        if name in READS or spec.input_model in REPORTS:
            continue
        _nested_models(spec.input_model, models)
    containers = {inventory.StockItemsInput}  # the request's list, not an object of the spec
    unmapped = sorted(m.__name__ for m in models - set(WRITES) - set(REFERENCES) - containers)
    assert unmapped == [], "map these models to their schema in WRITES or REFERENCES"
    stale_reads = sorted(n for n in READS if n not in registry())
    assert stale_reads == []


@pytest.mark.parametrize("model", list(WRITES), ids=lambda m: m.__name__)
def test_the_input_takes_every_writable_property(model: type[BaseModel]) -> None:
    spec, schema = WRITES[model]
    props = _properties(spec, schema)
    read_only = _read_only(model)
    missing = []
    for prop, definition in props.items():
        if definition.get("readOnly"):
            assert prop in read_only, (
                f"{model.__name__}.{prop} is readOnly in Xero's spec: list it in READ_ONLY"
            )
            continue
        if prop in read_only:
            assert prop in DOCUMENTED_READ_ONLY, f"{model.__name__}.{prop}: why is it read-only?"
            continue
        if _field_of(model, prop) is None and (model, prop) not in LEFT_OUT:
            missing.append(prop)
    assert missing == [], (
        f"{model.__name__} lacks Xero's writable {missing} (add them, or say why in LEFT_OUT)"
    )
    unknown = sorted(read_only - set(props))
    assert unknown == [], f"{model.__name__}.READ_ONLY names what {schema} does not have"


@pytest.mark.parametrize("model", list(WRITES) + list(REFERENCES), ids=lambda m: m.__name__)
def test_every_field_is_xeros_or_a_listed_option(model: type[BaseModel]) -> None:
    spec, schema = {**WRITES, **REFERENCES}[model]
    props = {_key(p) for p in _properties(spec, schema)}
    extra = [f for f in model.model_fields if _key(f) not in props and (model, f) not in OPTIONS]
    assert extra == [], f"{model.__name__}: {extra} are not properties of Xero's {schema}"


def test_every_left_out_entry_is_still_needed() -> None:
    stale = []
    for (model, prop), reason in LEFT_OUT.items():
        assert reason
        definition = _properties(*WRITES[model]).get(prop)
        if definition is None or definition.get("readOnly") or _field_of(model, prop) is not None:
            stale.append(f"{model.__name__}.{prop}")
    assert stale == [], "no longer left out (or no longer writable in Xero): remove from LEFT_OUT"
    used = {
        p for m in WRITES for p in _read_only(m) if not _properties(*WRITES[m]).get(p, {}).get("readOnly")
    }
    assert sorted(set(DOCUMENTED_READ_ONLY) - used) == [], "unused DOCUMENTED_READ_ONLY entries"
    for (model, field), _ in OPTIONS.items():
        assert field in model.model_fields, f"{model.__name__}.{field} is gone: remove it from OPTIONS"


def test_report_inputs_are_the_operations_query_parameters() -> None:
    paths = _schemas(ACCOUNTING)["paths"]
    for model, path in REPORTS.items():
        parameters = set()
        for parameter in paths[path]["get"]["parameters"]:
            if "$ref" in parameter:
                parameter = _schemas(ACCOUNTING)["components"]["parameters"][parameter["$ref"].split("/")[-1]]
            if parameter.get("in") == "query":
                parameters.add(_key(parameter["name"]))
        fields = {_key(f) for f in model.model_fields}
        assert fields == parameters, f"{model.__name__}: {sorted(fields ^ parameters)}"


@pytest.mark.parametrize(
    ("action", "given", "place"),
    [
        ("xero.create_or_update_contact", {"Name": "A", "IsCustomer": True}, ("IsCustomer",)),
        ("xero.create_or_update_contact", {"Name": "A", "Website": "https://a.test"}, ("Website",)),
        (
            "xero.create_invoice",
            {"Contact": {"ContactNumber": "CL-1"}, "LineItems": [{"Description": "x"}], "Total": 10},
            ("Total",),
        ),
        (
            "xero.create_bank_transfer",
            {
                "FromBankAccount": {"Code": "090"},
                "ToBankAccount": {"Code": "091"},
                "Amount": 5,
                "FromTracking": [
                    {
                        "TrackingCategoryID": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
                        "TrackingOptionID": "1" * 8 + "-1111-1111-1111-" + "1" * 12,
                        "Name": "Region",
                    }
                ],
            },
            ("FromTracking", 0, "Name"),
        ),
        (
            "xero.add_stock_items",
            {"Items": [{"Code": "A", "QuantityOnHand": 3}]},
            ("Items", 0, "QuantityOnHand"),
        ),
    ],
)
def test_a_read_only_property_is_refused_as_read_only(
    action: str, given: dict[str, Any], place: tuple[Any, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        registry()[action].input_model.model_validate(given)
    errors = [(e["loc"], e["msg"]) for e in caught.value.errors()]
    assert errors == [(place, common.READ_ONLY_MESSAGE)]
    assert "read-only in Xero" in common.READ_ONLY_MESSAGE


def test_a_read_only_property_does_not_hide_the_other_problems() -> None:
    with pytest.raises(ValidationError) as caught:
        contacts.ContactInput.model_validate({"Name": "", "UpdatedDateUTC": "x"})
    assert [e["loc"] for e in caught.value.errors()] == [("UpdatedDateUTC",), ("Name",)]


# ------------------------------------------------------ what the new fields send
GUID = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
OTHER = "0d5b0c2f-9b4a-4d7b-8f5e-2f4b9a1c3e7d"
FULL_CONTACT = {
    "Name": "Harbour Lights Ltd",
    "ContactNumber": "CL-7",
    "ContactStatus": "ACTIVE",
    "CompanyNumber": "NZ-123456",
    "ContactPersons": [{"FirstName": "Ana", "EmailAddress": "ana@harbour.test", "IncludeInEmails": True}],
    "BankAccountDetails": "12-3456-7890123-00",
    "TaxNumberType": "EIN",
    "AccountsReceivableTaxType": "OUTPUT2",
    "AccountsPayableTaxType": "INPUT2",
    "SalesDefaultAccountCode": "200",
    "PurchasesDefaultAccountCode": "400",
    "SalesDefaultLineAmountType": "EXCLUSIVE",
    "PurchasesDefaultLineAmountType": "INCLUSIVE",
    "SalesTrackingCategories": [{"TrackingCategoryName": "Region", "TrackingOptionName": "North"}],
    "PaymentTerms": {
        "Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"},
        "Bills": {"Day": 7, "Type": "DAYSAFTERBILLDATE"},
    },
    "BrandingTheme": {"BrandingThemeID": GUID},
    "BatchPayments": {"BankAccountNumber": "123", "Code": "ABC", "Reference": "REF"},
}
FULL_LINE = {
    "Description": "Design",
    "Quantity": 2,
    "UnitAmount": 50,
    "AccountID": GUID,
    "TaxType": "OUTPUT2",
    "TaxAmount": 15,
    "DiscountAmount": 5,
    "Tracking": [{"Name": "Region", "Option": "North"}],
}
# (action, input, method and path, the body the action sends)
BODIES = [
    (
        "xero.create_or_update_contact",
        FULL_CONTACT,
        ("POST", "/Contacts"),
        lambda data: {"Contacts": [contacts._fields(data)]},
    ),
    (
        "xero.create_invoice",
        {
            "Contact": {"ContactNumber": "CL-7"},
            "LineItems": [FULL_LINE],
            "Date": "2026-01-05",
            "ExpectedPaymentDate": "2026-02-01",
            "CurrencyCode": "EUR",
            "CurrencyRate": 1.1,
            "BrandingThemeID": GUID,
            "SentToContact": False,
            "InvoiceAddresses": [{"InvoiceAddressType": "TO", "City": "Austin", "Region": "TX"}],
        },
        ("PUT", "/Invoices"),
        lambda data: {"Invoices": [data.body()]},
    ),
    (
        "xero.create_quote",
        {"Contact": {"ContactID": GUID}, "LineItems": [FULL_LINE], "Date": "2026-01-05", "CurrencyRate": 1.2},
        ("PUT", "/Quotes"),
        lambda data: {"Quotes": [data.body()]},
    ),
    (
        "xero.create_purchase_order",
        {
            "Contact": {"ContactID": GUID},
            "LineItems": [{k: v for k, v in FULL_LINE.items() if k != "DiscountAmount"}],
            "SentToContact": True,
            "CurrencyRate": 0.9,
        },
        ("PUT", "/PurchaseOrders"),
        lambda data: {"PurchaseOrders": [data.body()]},
    ),
    (
        "xero.create_payment",
        {
            "Invoice": {"InvoiceID": GUID},
            "Account": {"Code": "090"},
            "Amount": 10,
            "BankAmount": 11,
            "Details": "Thanks",
            "Particulars": "INV-1",
            "BankAccountNumber": "12-3",
        },
        ("PUT", "/Payments"),
        lambda data: {"Payments": [data.body()]},
    ),
    (
        "xero.create_bank_transfer",
        {
            "FromBankAccount": {"Code": "090"},
            "ToBankAccount": {"Code": "091"},
            "Amount": 5,
            "FromTracking": [{"TrackingCategoryID": GUID, "TrackingOptionID": OTHER}],
            "ToTracking": [{"TrackingCategoryID": GUID, "TrackingOptionID": OTHER}],
        },
        ("PUT", "/BankTransfers"),
        lambda data: {"BankTransfers": [data.body()]},
    ),
]


@pytest.mark.parametrize(("action", "given", "call", "body"), BODIES, ids=[b[0] for b in BODIES])
def test_the_new_fields_are_sent_as_xeros_spec_declares(
    action: str, given: dict[str, Any], call: Any, body: Any
) -> None:
    from tests.xero_contract import validate_requests

    data = registry()[action].input_model.model_validate(given)
    sent = body(data)
    method, path = call
    record = {
        "method": method,
        "url": f"https://api.xero.com/api.xro/2.0{path}",
        "headers": {"xero-tenant-id": GUID, "Idempotency-Key": "k", "Content-Type": "application/json"},
        "json": sent,
    }
    assert validate_requests([record]) == []
    # Every field given reaches the body (none dropped on the way).
    element = next(iter(sent.values()))[0]
    dropped = [k for k in given if k not in element]
    assert dropped == []


def test_a_discount_amount_counts_in_the_line_total_a_retry_compares() -> None:
    line = common.LineItem.model_validate(
        {"Description": "x", "Quantity": 2, "UnitAmount": 50, "DiscountAmount": 5}
    )
    assert common.line_total([line]) == 95


def test_one_discount_per_line() -> None:
    with pytest.raises(ValidationError, match="DiscountRate or DiscountAmount, not both"):
        common.LineItem.model_validate({"Description": "x", "DiscountRate": 10, "DiscountAmount": 5})


def test_a_contact_with_every_new_field_is_written_alone_and_in_a_batch(xero: Any) -> None:
    """Through the sandbox (the recorder checks each request against Xero's spec when the test ends)."""
    spec = registry()["xero.create_or_update_contact"]
    alone = spec.run(make_context(xero, step_id="one"), spec.input_model.model_validate(FULL_CONTACT))
    stored = xero.request("GET", f"/Contacts/{alone['ContactID']}")["Contacts"][0]
    assert stored["PaymentTerms"] == FULL_CONTACT["PaymentTerms"]
    assert stored["CompanyNumber"] == "NZ-123456"
    assert stored["SalesDefaultAccountCode"] == "200"
    assert stored["ContactPersons"][0]["EmailAddress"] == "ana@harbour.test"
    others = [
        FULL_CONTACT | {"Name": f"Batch {n}", "ContactNumber": f"CL-B{n}", "ContactStatus": "ACTIVE"}
        for n in (1, 2)
    ]
    calls = [
        (make_context(xero, step_id=f"b{n}"), spec.input_model.model_validate(o))
        for n, o in enumerate(others)
    ]
    writer = batch_writer("xero.create_or_update_contact")
    assert writer is not None
    results = writer.write(calls, "batch-key")
    for result in results:
        assert not isinstance(result, Exception), result
        stored = xero.request("GET", f"/Contacts/{result['ContactID']}")["Contacts"][0]
        assert stored["AccountsReceivableTaxType"] == "OUTPUT2"
        assert stored["PaymentTerms"]["Bills"] == {"Day": 7, "Type": "DAYSAFTERBILLDATE"}


def _spec_limits(spec: str, definition: dict[str, Any]) -> dict[str, Any]:
    """A property's maxLength and enum, its $ref to an enum schema resolved."""
    if "$ref" in definition:
        target = _schemas(spec)["components"]["schemas"][definition["$ref"].rsplit("/", 1)[-1]]
        definition = {**target, **{k: v for k, v in definition.items() if k != "$ref"}}
    return {k: definition[k] for k in ("maxLength", "enum", "maximum", "minimum") if k in definition}


def _model_limits(schema: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for member in [schema, *schema.get("anyOf", [])]:
        for key in ("maxLength", "enum", "maximum", "minimum", "pattern"):
            if key in member:
                found[key] = member[key]
    return found


# Limits of Xero's spec the input does not copy, with the reason.
LIMITS_LEFT_OUT = {
    ("InvoiceInput", "CurrencyCode", "enum"): "an ISO 4217 pattern: Xero's list of 168 codes changes",
    ("QuoteInput", "CurrencyCode", "enum"): "as InvoiceInput's",
    ("PurchaseOrderInput", "CurrencyCode", "enum"): "as InvoiceInput's",
    ("ContactInput", "DefaultCurrency", "enum"): "as InvoiceInput's",
}


@pytest.mark.parametrize("model", list(WRITES), ids=lambda m: m.__name__)
def test_xeros_limits_are_the_inputs_limits(model: type[BaseModel]) -> None:
    spec, schema = WRITES[model]
    props = _properties(spec, schema)
    ours = model.model_json_schema()["properties"]
    wrong = []
    for name, prop in props.items():
        field = _field_of(model, name)
        if field is None:
            continue
        theirs, mine = _spec_limits(spec, prop), _model_limits(ours[field])
        for key, value in theirs.items():
            if (model.__name__, field, key) in LIMITS_LEFT_OUT:
                continue
            if key == "maxLength" and not mine.get("maxLength", value + 1) <= value:
                wrong.append(f"{field}: maxLength {mine.get('maxLength')} (Xero's {value})")
            if key == "enum" and not set(mine.get("enum", [None])) <= set(value):
                wrong.append(f"{field}: enum {mine.get('enum')} is not within Xero's {value}")
            if key == "maximum" and not mine.get("maximum", value + 1) <= value:
                wrong.append(f"{field}: maximum {mine.get('maximum')} (Xero's {value})")
            if key == "minimum" and not mine.get("minimum", value - 1) >= value:
                wrong.append(f"{field}: minimum {mine.get('minimum')} (Xero's {value})")
    assert wrong == [], f"{model.__name__}: {wrong}"


def test_every_left_out_limit_is_still_xeros() -> None:
    by_name = {m.__name__: m for m in WRITES}
    for model_name, field, key in LIMITS_LEFT_OUT:
        model = by_name[model_name]
        assert key in _spec_limits(WRITES[model][0], _properties(*WRITES[model])[field])
