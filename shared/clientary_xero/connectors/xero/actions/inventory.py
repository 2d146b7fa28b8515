"""Items, tracked or not: ``xero.add_stock_items``.

``Mode: upsert`` (default) first reads which codes already exist (one ``GET /Items``) and sends
``POST /Items`` with their ``ItemID`` — exact whatever Xero's own matching of ``POST`` by ``Code``
does (unverified, reference/xero-api.md §8). An upsert takes over the item that has the code, by
design: the code names the item, whoever made it, and the step updates it. ``Mode: create`` sends
``PUT /Items``, which Xero refuses for a code that exists; a retry of that step after a crash skips
the codes an earlier try created — only those: an item with the code that is not what the step
would have written (another name or price, or older than the run) fails the step as the first try
would have (``common.adopt_found``). A tracked item needs ``InventoryAssetAccountCode`` (an
INVENTORY account) and ``PurchaseDetails.COGSAccountCode``; its quantity and cost change only
through transactions.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from clientary_xero.connectors.base import ActionContext, action
from clientary_xero.connectors.xero.actions.common import _Input, adopt_found, iso_time, money, where_text

MAX_ITEMS = 50  # Xero's advice for one request (reference/xero-api.md §4.4)


class ItemDetails(_Input):
    UnitPrice: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="Up to 4 decimals.")
    AccountCode: str | None = Field(default=None, max_length=10)
    TaxType: str | None = Field(default=None, max_length=50)


class PurchaseItemDetails(ItemDetails):
    COGSAccountCode: str | None = Field(
        default=None, max_length=10, description="Cost of goods sold account; required for tracked items."
    )


class StockItem(_Input):
    READ_ONLY: ClassVar[frozenset[str]] = frozenset(
        {
            "UpdatedDateUTC",
            # Documented read-only (reference/xero-api.md §2.11): stock changes through transactions.
            "QuantityOnHand",
            "TotalCostPool",
            # Xero derives it from InventoryAssetAccountCode and PurchaseDetails.COGSAccountCode.
            "IsTrackedAsInventory",
            "StatusAttributeString",
            "ValidationErrors",
        }
    )

    Code: str = Field(min_length=1, max_length=30, description="Your code for the item; unique in Xero.")
    Name: str | None = Field(default=None, max_length=50, description="The item's name.")
    Description: str | None = Field(default=None, max_length=4000, description="Sales description.")
    PurchaseDescription: str | None = Field(default=None, max_length=4000)
    IsSold: bool | None = Field(default=None, description="true when omitted.")
    IsPurchased: bool | None = Field(default=None, description="true when omitted.")
    SalesDetails: ItemDetails | None = Field(default=None, description="Price, account and tax when sold.")
    PurchaseDetails: PurchaseItemDetails | None = Field(
        default=None, description="Price, account and tax when bought."
    )
    InventoryAssetAccountCode: str | None = Field(
        default=None,
        max_length=10,
        description="An INVENTORY account: makes the item tracked (needs PurchaseDetails.COGSAccountCode).",
    )

    @model_validator(mode="after")
    def _tracking(self) -> StockItem:
        cogs = self.PurchaseDetails.COGSAccountCode if self.PurchaseDetails else None
        if self.InventoryAssetAccountCode and not cogs:
            raise ValueError(
                f"item {self.Code!r}: a tracked item (InventoryAssetAccountCode) needs "
                "PurchaseDetails.COGSAccountCode"
            )
        if cogs and not self.InventoryAssetAccountCode:
            raise ValueError(
                f"item {self.Code!r}: PurchaseDetails.COGSAccountCode applies to tracked items only; "
                "give InventoryAssetAccountCode too"
            )
        if self.InventoryAssetAccountCode and self.PurchaseDetails and self.PurchaseDetails.AccountCode:
            raise ValueError(
                f"item {self.Code!r}: PurchaseDetails.AccountCode does not apply to a tracked item "
                "(its purchases go to InventoryAssetAccountCode)"
            )
        return self


class StockItemsInput(_Input):
    Items: list[StockItem] = Field(min_length=1, max_length=MAX_ITEMS, description="1 to 50 items.")
    Mode: Literal["upsert", "create"] = Field(
        default="upsert",
        description="'upsert' (default): create new codes, update existing ones; "
        "'create': only create (Xero refuses a code that exists).",
    )

    @model_validator(mode="after")
    def _unique_codes(self) -> StockItemsInput:
        seen: set[str] = set()
        for item in self.Items:
            key = item.Code.casefold()
            if key in seen:
                raise ValueError(f"item code {item.Code!r} appears twice")
            seen.add(key)
        return self


def _item_fields(item: dict[str, Any], created: bool) -> dict[str, Any]:
    sales = item.get("SalesDetails") or {}
    purchase = item.get("PurchaseDetails") or {}
    return {
        "ItemID": item.get("ItemID"),
        "Code": item.get("Code"),
        "Name": item.get("Name") or None,
        "IsTrackedAsInventory": bool(item.get("IsTrackedAsInventory")),
        "InventoryAssetAccountCode": item.get("InventoryAssetAccountCode"),
        "QuantityOnHand": money(item.get("QuantityOnHand")),
        "SalesUnitPrice": money(sales.get("UnitPrice")),
        "PurchaseUnitPrice": money(purchase.get("UnitPrice")),
        "UpdatedDateUTC": iso_time(item.get("UpdatedDateUTC")),
        "created": created,
    }


def _existing_ids(client: Any, codes: list[str]) -> dict[str, dict[str, Any]]:
    where = " OR ".join(f"Code=={where_text(code)}" for code in codes)
    found = client.request("GET", "/Items", params={"where": where})
    return {str(i.get("Code", "")).casefold(): i for i in found.get("Items") or []}


def _adopted_item(ctx: ActionContext, item: StockItem, found: dict[str, Any]) -> dict[str, Any]:
    """The item with ``item``'s code, when an earlier try of this create made it."""
    # With one candidate adopt_found returns it or raises.
    return (
        adopt_found(
            ctx,
            [found],
            item,
            [key for key in StockItem.model_fields if key != "Code"],
            what="item",
            name_of=lambda i: repr(i.get("Code")),
            hint="use Mode: upsert to update that item, or choose another Code",
        )
        or found
    )


@action("xero.add_stock_items", app="xero", input_model=StockItemsInput, scopes=("accounting.settings",))
def add_stock_items(ctx: ActionContext, data: StockItemsInput) -> dict[str, Any]:
    """Create (or update) inventory items in Xero, tracked ones included."""
    from clientary_xero.connectors.xero.client import checked_elements

    client = ctx.service("xero")
    wanted = [item.model_dump(exclude_none=True) for item in data.Items]
    existing: dict[str, dict[str, Any]] = {}
    if data.Mode == "upsert" or ctx.attempt > 1:
        existing = _existing_ids(client, [item.Code for item in data.Items])
    results: list[dict[str, Any]] = []
    if data.Mode == "upsert":
        body = [
            {"ItemID": existing[e["Code"].casefold()]["ItemID"], **e}
            if e["Code"].casefold() in existing
            else e
            for e in wanted
        ]
        # The body depends on what the lookup found (ItemIDs once the items exist), and Xero refuses
        # a key reused with a different body: the key names the body. An identical retry still
        # shares its key; an upsert by ItemID is safe to repeat.
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]
        answer = client.request(
            "POST",
            "/Items",
            params={"unitdp": 4},
            json={"Items": body},
            idempotency_key=f"{ctx.idempotency_key}:upsert:{digest}",
        )
        for element in checked_elements(answer, "Items"):
            results.append(_item_fields(element, created=element["Code"].casefold() not in existing))
    else:
        fresh = [e for e in wanted if e["Code"].casefold() not in existing]
        kept = [
            _item_fields(_adopted_item(ctx, item, existing[item.Code.casefold()]), created=False)
            for item in data.Items
            if item.Code.casefold() in existing
        ]
        if fresh:
            answer = client.request(
                "PUT",
                "/Items",
                params={"unitdp": 4},
                json={"Items": fresh},
                idempotency_key=ctx.idempotency_key,
            )
            results = [_item_fields(e, created=True) for e in checked_elements(answer, "Items")]
        results += kept
    return {
        "Items": results,
        "ItemIDs": {r["Code"]: r["ItemID"] for r in results},
        "count": len(results),
        "created": sum(1 for r in results if r["created"]),
        "updated": sum(1 for r in results if not r["created"]),
    }
