"""Items: PUT/POST (POST upserts by Code) with a unique code of at most 30 characters, sales and
purchase details whose accounts exist, and tracked (inventory) items that need an inventory asset
account and a cost-of-goods account.
"""

from __future__ import annotations

import uuid
from decimal import InvalidOperation
from typing import Any

from clientary_xero.local.xero_sandbox.accounts_tax import AccountsTaxMixin
from clientary_xero.local.xero_sandbox.model import (
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _decimal,
    _money,
    _num,
)


class ItemsMixin(AccountsTaxMixin):
    """The Items endpoint."""

    def _save_item(
        self, tenant: _Tenant, element: dict[str, Any], method: str
    ) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        existing: dict[str, Any] | None = None
        if element.get("ItemID"):
            if method == "PUT":
                return {}, ["An ItemID cannot be specified when creating an item; use POST to update."]
            existing = tenant.items.get(str(element["ItemID"]).lower())
            if existing is None:
                return {}, [f"The Item with ItemID {element['ItemID']} could not be found."]
        code = element.get("Code", existing.get("Code") if existing else None)
        if not isinstance(code, str) or not code.strip():
            return {}, ["Item Code must be specified."]
        if len(code) > 30:
            errors.append("Item Code must not be more than 30 characters long.")
        if existing is None and method == "POST":
            # POST is an upsert: an item's Code names it.
            existing = next((i for i in tenant.items.values() if i["Code"] == code), None)
        own = existing["ItemID"] if existing else None
        if any(i["ItemID"] != own and i["Code"].casefold() == code.casefold() for i in tenant.items.values()):
            errors.append(f"Item code '{code}' already exists.")
        for key, limit in (("Name", 50), ("Description", 4000), ("PurchaseDescription", 4000)):
            value = element.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                errors.append(f"Item {key} must not be more than {limit} characters long.")
        base = existing or {}
        details: dict[str, dict[str, Any]] = {}
        for key in ("SalesDetails", "PurchaseDetails"):
            raw = element.get(key, base.get(key, {}))
            if not isinstance(raw, dict):
                errors.append(f"{key} must be an object.")
                continue
            for code_key in ("AccountCode", "COGSAccountCode"):
                value = raw.get(code_key)
                if value and self._account(tenant, {"Code": value}) is None:
                    errors.append(f"{key}.{code_key} '{value}' is not a valid account code.")
            try:
                price = _decimal(raw.get("UnitPrice"))
            except (InvalidOperation, ValueError):
                errors.append(f"{key}.UnitPrice must be a number.")
                price = None
            details[key] = {k: raw[k] for k in ("AccountCode", "COGSAccountCode", "TaxType") if raw.get(k)}
            if price is not None:
                details[key]["UnitPrice"] = _num(_money(price, 4))
        inventory = element.get("InventoryAssetAccountCode", base.get("InventoryAssetAccountCode"))
        if inventory:
            account = self._account(tenant, {"Code": inventory})
            if account is None or account["Type"] != "INVENTORY":
                errors.append("InventoryAssetAccountCode must be the code of an Inventory account.")
            if not details.get("PurchaseDetails", {}).get("COGSAccountCode"):
                errors.append(
                    "A tracked item needs PurchaseDetails.COGSAccountCode (its cost of goods account)."
                )
        elif details.get("PurchaseDetails", {}).get("COGSAccountCode"):
            errors.append(
                "COGSAccountCode applies to tracked items only: give InventoryAssetAccountCode too."
            )
        if errors:
            return {}, errors
        if inventory:
            # For a tracked item the purchase account is the inventory asset account.
            details["PurchaseDetails"].pop("AccountCode", None)
        item: dict[str, Any] = (
            existing
            if existing is not None
            else {
                "ItemID": str(uuid.uuid4()),
                "QuantityOnHand": 0.0,
                "TotalCostPool": 0.0,
            }
        )
        item.update(
            {
                "Code": code,
                "Name": element.get("Name", base.get("Name", "")),
                "Description": element.get("Description", base.get("Description", "")),
                "PurchaseDescription": element.get(
                    "PurchaseDescription", base.get("PurchaseDescription", "")
                ),
                "IsSold": bool(element.get("IsSold", base.get("IsSold", True))),
                "IsPurchased": bool(element.get("IsPurchased", base.get("IsPurchased", True))),
                "IsTrackedAsInventory": bool(inventory),
                "SalesDetails": details.get("SalesDetails", {}),
                "PurchaseDetails": details.get("PurchaseDetails", {}),
                "UpdatedDateUTC": self._stamp(),
            }
        )
        if inventory:
            item["InventoryAssetAccountCode"] = inventory
        tenant.items[item["ItemID"]] = item
        return item, []
