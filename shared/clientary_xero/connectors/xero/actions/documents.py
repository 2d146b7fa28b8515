"""Quotes and purchase orders: ``xero.create_quote``, ``xero.create_purchase_order`` and
``xero.find_purchase_order``.

Both need an existing contact (neither creates one). Quotes spell ``LineAmountTypes`` in upper case
(``EXCLUSIVE|INCLUSIVE|NOTAX``, Xero's QuoteLineAmountTypes) while purchase orders use the invoice
spelling (``Exclusive|Inclusive|NoTax``); the quote input accepts either spelling and sends Xero's.
A step retried after Xero forgot its idempotency key looks the document up by its number first,
and adopts it only when it is what the step would have written (the same contact, dates, currency
and line total, ``common.adopt_found``); a number someone else's document holds fails the step.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from clientary_xero.connectors.base import ActionContext, action, batched
from clientary_xero.connectors.xero.actions.common import (
    CLOSED_STATUSES,
    ContactRef,
    FindInput,
    Guid,
    LineItem,
    PurchaseLineItem,
    XeroDay,
    _Input,
    adopt_found,
    casefold_equal,
    day_fields,
    find_result,
    iso_day,
    iso_time,
    lines_body,
    money,
    put_many,
    total_of,
)
from clientary_xero.errors import PermanentError

logger = logging.getLogger(__name__)


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


QuoteAmountTypes = Annotated[Literal["EXCLUSIVE", "INCLUSIVE", "NOTAX"], BeforeValidator(_upper)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD.")]


# ------------------------------------------------------------------ quotes
# What Xero reports about a document's answer: never part of a request.
ANSWER_ONLY = frozenset({"HasAttachments", "StatusAttributeString", "ValidationErrors", "Warnings"})
TOTALS = frozenset({"SubTotal", "TotalTax", "Total", "TotalDiscount", "UpdatedDateUTC"})
Rate = Annotated[
    float, Field(gt=0, allow_inf_nan=False, description="For a foreign currency; Xero's rate when omitted.")
]


class QuoteInput(_Input):
    READ_ONLY: ClassVar[frozenset[str]] = TOTALS | {"StatusAttributeString", "ValidationErrors"}

    Contact: ContactRef = Field(description="An existing contact: {ContactID} or {ContactNumber}.")
    LineItems: list[LineItem] = Field(min_length=1, description="At least one line.")
    # Required: Xero's docs list Contact, Date and LineItems as a quote's required fields.
    Date: XeroDay = Field(description="Issue date (required for quotes).")
    ExpiryDate: XeroDay | None = Field(default=None, description="When the quote expires.")
    QuoteNumber: str | None = Field(default=None, max_length=255, description="Xero numbers it when omitted.")
    Reference: str | None = Field(default=None, max_length=4000)
    Title: str | None = Field(default=None, max_length=100, description="Shown at the top of the quote.")
    Summary: str | None = Field(default=None, max_length=3000, description="Shown under the title.")
    Terms: str | None = Field(default=None, max_length=4000, description="Terms shown on the quote.")
    Status: Literal["DRAFT", "SENT", "ACCEPTED", "DECLINED"] | None = Field(
        default=None, description="DRAFT when omitted."
    )
    CurrencyCode: Currency | None = None
    LineAmountTypes: QuoteAmountTypes | None = Field(
        default=None,
        description="EXCLUSIVE, INCLUSIVE or NOTAX (upper case for quotes; 'Exclusive' is accepted).",
    )
    BrandingThemeID: Guid | None = None
    CurrencyRate: Rate | None = None

    def body(self) -> dict[str, Any]:
        quote = self.model_dump(exclude_none=True, exclude={"Contact", "LineItems", "Date", "ExpiryDate"})
        quote["Contact"] = self.Contact.identifier()
        quote["LineItems"] = lines_body(self.LineItems)
        return quote | day_fields(self, ("Date", "ExpiryDate"))


def quote_fields(quote: dict[str, Any], created: bool) -> dict[str, Any]:
    return {
        "QuoteID": quote.get("QuoteID"),
        "QuoteNumber": quote.get("QuoteNumber"),
        "Status": quote.get("Status"),
        "ContactID": (quote.get("Contact") or {}).get("ContactID"),
        "Date": iso_day(quote, "Date"),
        "ExpiryDate": iso_day(quote, "ExpiryDate"),
        "Title": quote.get("Title"),
        "Reference": quote.get("Reference") or None,
        "SubTotal": money(quote.get("SubTotal")),
        "TotalTax": money(quote.get("TotalTax")),
        "Total": money(quote.get("Total")),
        "CurrencyCode": quote.get("CurrencyCode"),
        "created": created,
    }


@action(
    "xero.create_quote",
    app="xero",
    input_model=QuoteInput,
    scopes=("accounting.invoices", "accounting.contacts.read"),
)
def create_quote(ctx: ActionContext, data: QuoteInput) -> dict[str, Any]:
    """Create a quote for an existing Xero contact."""
    from clientary_xero.connectors.xero.client import checked_elements

    client = ctx.service("xero")
    if ctx.attempt > 1 and data.QuoteNumber:
        found = client.request("GET", "/Quotes", params={"QuoteNumber": data.QuoteNumber})
        live = [q for q in found.get("Quotes") or [] if q.get("Status") not in CLOSED_STATUSES]
        existing = adopt_found(
            ctx,
            live,
            data,
            ("Contact", "Date", "ExpiryDate", "CurrencyCode", "LineAmountTypes", "Reference", "LineItems"),
            what="quote",
            name_of=lambda q: str(q.get("QuoteNumber") or q.get("QuoteID")),
            hint="choose another QuoteNumber or remove that quote in Xero",
        )
        if existing is not None:
            logger.info("quote %s already exists in Xero (an earlier attempt made it)", data.QuoteNumber)
            return quote_fields(existing, created=False)
    answer = client.request(
        "PUT", "/Quotes", json={"Quotes": [data.body()]}, idempotency_key=ctx.idempotency_key
    )
    return quote_fields(checked_elements(answer, "Quotes")[0], created=True)


@batched("xero.create_quote", when=lambda data: bool(data.QuoteNumber))
def create_quotes(
    calls: list[tuple[ActionContext, QuoteInput]], key: str
) -> list[dict[str, Any] | Exception]:
    """The first attempts of several ``create_quote`` steps as one ``PUT /Quotes``."""
    return put_many(calls, key, "Quotes", lambda quote: quote_fields(quote, created=True))


# --------------------------------------------------------- purchase orders
class PurchaseOrderInput(_Input):
    READ_ONLY: ClassVar[frozenset[str]] = ANSWER_ONLY | TOTALS

    Contact: ContactRef = Field(description="An existing supplier contact: {ContactID} or {ContactNumber}.")
    LineItems: list[PurchaseLineItem] = Field(min_length=1, description="At least one line.")
    Date: XeroDay | None = Field(default=None, description="Order date; Xero uses today when omitted.")
    DeliveryDate: XeroDay | None = Field(default=None, description="When the goods are to be delivered.")
    ExpectedArrivalDate: XeroDay | None = Field(default=None, description="When they are expected to arrive.")
    PurchaseOrderNumber: str | None = Field(
        default=None, max_length=255, description="Xero numbers it (PO-0001 …) when omitted."
    )
    Reference: str | None = Field(default=None, max_length=255)
    DeliveryAddress: str | None = Field(default=None, max_length=500)
    AttentionTo: str | None = Field(default=None, max_length=255)
    Telephone: str | None = Field(default=None, max_length=50)
    DeliveryInstructions: str | None = Field(default=None, max_length=500)
    Status: Literal["DRAFT", "SUBMITTED", "AUTHORISED"] | None = Field(
        default=None, description="DRAFT when omitted."
    )
    LineAmountTypes: Literal["Exclusive", "Inclusive", "NoTax"] | None = None
    CurrencyCode: Currency | None = None
    CurrencyRate: Rate | None = None
    BrandingThemeID: Guid | None = None
    SentToContact: bool | None = Field(default=None, description="Mark an approved order as sent.")

    def body(self) -> dict[str, Any]:
        dated = ("Date", "DeliveryDate", "ExpectedArrivalDate")
        order = self.model_dump(exclude_none=True, exclude={"Contact", "LineItems", *dated})
        order["Contact"] = self.Contact.identifier()
        order["LineItems"] = lines_body(self.LineItems)
        return order | day_fields(self, dated)


def purchase_order_fields(order: dict[str, Any], created: bool | None = None) -> dict[str, Any]:
    out = {
        "PurchaseOrderID": order.get("PurchaseOrderID"),
        "PurchaseOrderNumber": order.get("PurchaseOrderNumber"),
        "Status": order.get("Status"),
        "ContactID": (order.get("Contact") or {}).get("ContactID"),
        "Date": iso_day(order, "Date"),
        "DeliveryDate": iso_day(order, "DeliveryDate"),
        "ExpectedArrivalDate": iso_day(order, "ExpectedArrivalDate"),
        "Reference": order.get("Reference") or None,
        "SubTotal": money(order.get("SubTotal")),
        "TotalTax": money(order.get("TotalTax")),
        "Total": money(order.get("Total")),
        "CurrencyCode": order.get("CurrencyCode"),
        "UpdatedDateUTC": iso_time(order.get("UpdatedDateUTC")),
    }
    if created is not None:
        out["created"] = created
    return out


def _get_order(client: Any, ident: str) -> dict[str, Any] | None:
    from clientary_xero.connectors.xero.client import XeroNotFound

    try:
        found = client.request("GET", f"/PurchaseOrders/{ident}")
    except XeroNotFound:
        return None
    orders = found.get("PurchaseOrders") or []
    return orders[0] if orders else None


def _orders_on_day(client: Any, number: str, day: date | None) -> list[dict[str, Any]]:
    """The live orders with this number dated ``day`` (today ± 1 when the order took Xero's default).

    Listing by date rather than ``GET /PurchaseOrders/{number}`` keeps the lookup on the one path
    template no validator confuses with ``/PurchaseOrders/{PurchaseOrderID}``; at most 10 pages.
    """
    today = datetime.now(UTC).date()
    start, end = (day, day) if day else (today - timedelta(days=1), today + timedelta(days=1))
    found: list[dict[str, Any]] = []
    for page in range(1, 11):
        params = {"DateFrom": start.isoformat(), "DateTo": end.isoformat(), "page": page}
        orders = client.request("GET", "/PurchaseOrders", params=params).get("PurchaseOrders") or []
        found += [
            dict(order)
            for order in orders
            if order.get("PurchaseOrderNumber") == number and order.get("Status") not in CLOSED_STATUSES
        ]
        if len(orders) < 100:
            break
    return found


@action(
    "xero.create_purchase_order",
    app="xero",
    input_model=PurchaseOrderInput,
    scopes=("accounting.invoices", "accounting.contacts.read"),
)
def create_purchase_order(ctx: ActionContext, data: PurchaseOrderInput) -> dict[str, Any]:
    """Create a purchase order for an existing Xero contact."""
    from clientary_xero.connectors.xero.client import checked_elements

    client = ctx.service("xero")
    if ctx.attempt > 1 and data.PurchaseOrderNumber:
        existing = adopt_found(
            ctx,
            _orders_on_day(client, data.PurchaseOrderNumber, data.Date),
            data,
            ("Contact", "Date", "DeliveryDate", "CurrencyCode", "LineAmountTypes", "Reference", "LineItems"),
            what="purchase order",
            name_of=lambda o: str(o.get("PurchaseOrderNumber") or o.get("PurchaseOrderID")),
            hint="choose another PurchaseOrderNumber or remove that purchase order in Xero",
        )
        if existing is not None:
            logger.info(
                "purchase order %s already exists (an earlier attempt made it)", data.PurchaseOrderNumber
            )
            return purchase_order_fields(existing, created=False)
    answer = client.request(
        "PUT", "/PurchaseOrders", json={"PurchaseOrders": [data.body()]}, idempotency_key=ctx.idempotency_key
    )
    return purchase_order_fields(checked_elements(answer, "PurchaseOrders")[0], created=True)


@batched("xero.create_purchase_order", when=lambda data: bool(data.PurchaseOrderNumber))
def create_purchase_orders(
    calls: list[tuple[ActionContext, PurchaseOrderInput]], key: str
) -> list[dict[str, Any] | Exception]:
    """The first attempts of several ``create_purchase_order`` steps as one ``PUT /PurchaseOrders``."""
    return put_many(calls, key, "PurchaseOrders", lambda order: purchase_order_fields(order, created=True))


class FindPurchaseOrderInput(FindInput):
    """By PurchaseOrderID (read directly), by PurchaseOrderNumber (the list, newest first, narrowed by
    Status/DateFrom/DateTo when given), or by Status and/or a date range."""

    PurchaseOrderID: Guid | None = None
    PurchaseOrderNumber: str | None = Field(
        default=None, min_length=1, max_length=255, description="e.g. PO-0004"
    )
    Status: Literal["DRAFT", "SUBMITTED", "AUTHORISED", "BILLED", "DELETED"] | None = None
    DateFrom: XeroDay | None = Field(default=None, description="Orders dated on or after this day.")
    DateTo: XeroDay | None = Field(default=None, description="Orders dated on or before this day.")

    @model_validator(mode="after")
    def _something_to_find(self) -> FindPurchaseOrderInput:
        if not any((self.PurchaseOrderID, self.PurchaseOrderNumber, self.Status, self.DateFrom, self.DateTo)):
            raise ValueError("give PurchaseOrderID, PurchaseOrderNumber, Status, DateFrom or DateTo")
        if self.DateFrom and self.DateTo and self.DateFrom > self.DateTo:
            raise ValueError("DateFrom is after DateTo")
        return self

    def matches(self, order: dict[str, Any]) -> bool:
        day = iso_day(order, "Date")
        if self.Status and not casefold_equal(order.get("Status"), self.Status):
            return False
        if self.PurchaseOrderNumber and not casefold_equal(
            order.get("PurchaseOrderNumber"), self.PurchaseOrderNumber
        ):
            return False
        if self.DateFrom and (day is None or day < self.DateFrom.isoformat()):
            return False
        return not (self.DateTo and (day is None or day > self.DateTo.isoformat()))


def _list_params(data: FindPurchaseOrderInput, page: int) -> dict[str, Any]:
    """``GET /PurchaseOrders`` filters for the step's Status and date range."""
    params: dict[str, Any] = {"page": page}
    if data.Status:
        params["Status"] = data.Status
    if data.DateFrom:
        params["DateFrom"] = data.DateFrom.isoformat()
    if data.DateTo:
        params["DateTo"] = data.DateTo.isoformat()
    return params


# A find by number reads the list newest first, this many pages of 100 at most (see below).
NUMBER_SCAN_PAGES = 10


def _orders_numbered(client: Any, data: FindPurchaseOrderInput) -> list[dict[str, Any]]:
    """The orders with ``data.PurchaseOrderNumber`` (and its other criteria), from the list.

    Xero also serves ``GET /PurchaseOrders/{PurchaseOrderNumber}``, but its template is the same as
    ``/PurchaseOrders/{PurchaseOrderID}``'s, so a request to it cannot be told from a malformed
    by-id read (validators read it as a bad uuid), and a number holding ``/``, ``?`` or ``#`` would
    need escaping that proxies undo. The list, filtered by the step's Status/DateFrom/DateTo and
    ordered newest first, has none of that. Its cost is bounded: when ``NUMBER_SCAN_PAGES`` pages
    hold no match and more remain, the step fails and says how to narrow the search, rather than
    answer ``found: false`` for an order that may exist (a workflow could create it a second time).
    """
    matches: list[dict[str, Any]] = []
    for page in range(1, NUMBER_SCAN_PAGES + 1):
        params = {"order": "Date DESC", **_list_params(data, page)}
        orders = client.request("GET", "/PurchaseOrders", params=params).get("PurchaseOrders") or []
        matches += [dict(order) for order in orders if data.matches(order)]
        if len(orders) < 100:
            return matches
    if matches:
        return matches
    raise PermanentError(
        f"purchase order {data.PurchaseOrderNumber!r} is not among the newest "
        f"{NUMBER_SCAN_PAGES * 100} purchase orders that match; give DateFrom/DateTo (or Status) "
        "to search further back",
        service="xero",
    )


@action(
    "xero.find_purchase_order",
    app="xero",
    input_model=FindPurchaseOrderInput,
    scopes=("accounting.invoices.read",),
)
def find_purchase_order(ctx: ActionContext, data: FindPurchaseOrderInput) -> dict[str, Any]:
    """Find a Xero purchase order by id or number, or by status and date range."""
    client = ctx.service("xero")
    total: int | None = None
    if data.PurchaseOrderID:
        order = _get_order(client, data.PurchaseOrderID)
        records = [order] if order is not None and data.matches(order) else []
    elif data.PurchaseOrderNumber:
        records = _orders_numbered(client, data)
    else:
        answer = client.request("GET", "/PurchaseOrders", params=_list_params(data, 1))
        records = list(answer.get("PurchaseOrders") or [])
        total = total_of(answer)
    return find_result("purchase order", data, records, purchase_order_fields, total)
