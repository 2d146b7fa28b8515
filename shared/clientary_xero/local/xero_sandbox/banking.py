"""Bank transfers (PUT only, always all-or-nothing): between two different BANK accounts, a positive
amount, a date; listed without the accounts' codes, as Xero does.
"""

from __future__ import annotations

import uuid
from decimal import InvalidOperation
from typing import Any

from clientary_xero.connectors.xero.dates import to_xero_date
from clientary_xero.local.xero_sandbox.accounts_tax import AccountsTaxMixin
from clientary_xero.local.xero_sandbox.model import (
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _decimal,
    _money,
    _num,
)


class BankingMixin(AccountsTaxMixin):
    """Bank transfers."""

    def _save_bank_transfer(
        self, tenant: _Tenant, element: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        sides: dict[str, dict[str, Any]] = {}
        for key in ("FromBankAccount", "ToBankAccount"):
            ref = element.get(key)
            if not isinstance(ref, dict) or not (ref.get("Code") or ref.get("AccountID")):
                errors.append(f"{key} must be specified (Code or AccountID).")
                continue
            account = self._account(tenant, ref)
            if account is None:
                errors.append(f"{key} could not be found.")
            elif account["Type"] != "BANK":
                errors.append(f"{key} must be a bank account.")
            else:
                sides[key] = account
        if len(sides) == 2 and sides["FromBankAccount"]["AccountID"] == sides["ToBankAccount"]["AccountID"]:
            errors.append("The From and To bank accounts must be different.")
        try:
            amount = _decimal(element.get("Amount"))
        except (InvalidOperation, ValueError):
            amount = None
        if amount is None or amount <= 0:
            errors.append("Amount must be a number greater than zero.")
        day = self._day(element, {}, "Date", errors) or self._today()
        if errors:
            return {}, errors
        assert amount is not None
        stamp = self._stamp()
        transfer: dict[str, Any] = {
            "BankTransferID": str(uuid.uuid4()),
            "FromBankAccount": {k: sides["FromBankAccount"][k] for k in ("AccountID", "Code", "Name")},
            "ToBankAccount": {k: sides["ToBankAccount"][k] for k in ("AccountID", "Code", "Name")},
            "Amount": _num(_money(amount)),
            "Date": to_xero_date(day),
            "DateString": f"{day.isoformat()}T00:00:00",
            "CurrencyRate": 1.0,
            "FromBankTransactionID": str(uuid.uuid4()),
            "ToBankTransactionID": str(uuid.uuid4()),
            "FromIsReconciled": bool(element.get("FromIsReconciled", False)),
            "ToIsReconciled": bool(element.get("ToIsReconciled", False)),
            "Reference": str(element.get("Reference") or ""),
            "HasAttachments": False,
            "CreatedDateUTC": stamp,  # Xero's BankTransfer has no UpdatedDateUTC
            "Status": "AUTHORISED",
        }
        tenant.bank_transfers[transfer["BankTransferID"]] = transfer
        return transfer, []
