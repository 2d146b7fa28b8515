"""Bank transfers: ``xero.create_bank_transfer`` (``PUT /BankTransfers``).

Xero takes no ``summarizeErrors`` here: a rejected transfer is a 400 whose messages become the
step's permanent error. Both accounts must be BANK accounts and differ. A step retried after Xero
forgot its idempotency key looks for a transfer with the same reference and amount made since the
run began first, and adopts it only when its accounts and date are the step's too
(``common.adopt_found``); a transfer that differs fails the step with what differs.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pydantic import Field, model_validator

from clientary_xero.connectors.base import ActionContext, action
from clientary_xero.connectors.xero.actions.common import (
    AccountRef,
    Money,
    TrackingRef,
    XeroDay,
    _Input,
    adopt_found,
    iso_day,
    made_by_this_run,
    money,
    where_text,
)

logger = logging.getLogger(__name__)


class BankTransferInput(_Input):
    READ_ONLY: ClassVar[frozenset[str]] = frozenset(
        {
            "BankTransferID",
            "CurrencyRate",
            "FromBankTransactionID",
            "ToBankTransactionID",
            "HasAttachments",
            "CreatedDateUTC",
            "Status",
            "ValidationErrors",
        }
    )

    FromBankAccount: AccountRef = Field(
        description='The BANK account the money leaves: {Code: "090"} or {AccountID}.'
    )
    ToBankAccount: AccountRef = Field(description="The BANK account the money arrives in.")
    Amount: Money = Field(description="A positive amount in the accounts' currency.")
    Date: XeroDay | None = Field(default=None, description="Xero uses today when omitted.")
    Reference: str | None = Field(
        default=None, max_length=255, description="A retry finds the transfer by it."
    )
    FromIsReconciled: bool | None = Field(default=None, description="Mark the money leaving reconciled.")
    ToIsReconciled: bool | None = Field(default=None, description="Mark the money arriving reconciled.")
    FromTracking: list[TrackingRef] | None = Field(
        default=None, max_length=2, description="Tracking of the money leaving (at most 2 categories)."
    )
    ToTracking: list[TrackingRef] | None = Field(
        default=None, max_length=2, description="Tracking of the money arriving (at most 2 categories)."
    )

    @model_validator(mode="after")
    def _two_accounts(self) -> BankTransferInput:
        if self.FromBankAccount.same_as(self.ToBankAccount):
            raise ValueError("FromBankAccount and ToBankAccount must be different accounts")
        return self

    def body(self) -> dict[str, Any]:
        transfer: dict[str, Any] = {
            "FromBankAccount": self.FromBankAccount.identifier(),
            "ToBankAccount": self.ToBankAccount.identifier(),
            "Amount": round(self.Amount, 2),
        }
        if self.Date is not None:
            transfer["Date"] = self.Date.isoformat()
        for key in ("Reference", "FromIsReconciled", "ToIsReconciled"):
            if getattr(self, key) is not None:
                transfer[key] = getattr(self, key)
        for key in ("FromTracking", "ToTracking"):
            if getattr(self, key) is not None:
                transfer[key] = [t.model_dump() for t in getattr(self, key)]
        return transfer


def _transfer_fields(transfer: dict[str, Any], created: bool) -> dict[str, Any]:
    source = transfer.get("FromBankAccount") or {}
    target = transfer.get("ToBankAccount") or {}
    return {
        "BankTransferID": transfer.get("BankTransferID"),
        "Amount": money(transfer.get("Amount")),
        "Date": iso_day(transfer, "Date"),
        "FromBankAccountID": source.get("AccountID"),
        "FromBankAccountCode": source.get("Code"),
        "ToBankAccountID": target.get("AccountID"),
        "ToBankAccountCode": target.get("Code"),
        "FromBankTransactionID": transfer.get("FromBankTransactionID"),
        "ToBankTransactionID": transfer.get("ToBankTransactionID"),
        "Reference": transfer.get("Reference") or None,
        "CurrencyRate": money(transfer.get("CurrencyRate")),
        "Status": transfer.get("Status"),
        "created": created,
    }


def _with_account_codes(
    client: Any, data: BankTransferInput, transfers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The transfers with each account's Code filled in from the chart of accounts, when the step
    names an account by Code: Xero's GET /BankTransfers gives AccountID and Name only, and our own
    transfer must not look like another's for want of the Code."""
    sides = ("FromBankAccount", "ToBankAccount")
    by_code = any(getattr(data, side).Code and not getattr(data, side).AccountID for side in sides)
    missing = any(not (t.get(side) or {}).get("Code") for t in transfers for side in sides)
    if not (transfers and by_code and missing):
        return transfers
    accounts = client.request("GET", "/Accounts", params={"where": 'Type=="BANK"'}).get("Accounts") or []
    codes = {str(a.get("AccountID")).lower(): a.get("Code") for a in accounts if a.get("AccountID")}
    out = []
    for transfer in transfers:
        transfer = dict(transfer)
        for side in sides:
            account = dict(transfer.get(side) or {})
            code = codes.get(str(account.get("AccountID")).lower())
            if not account.get("Code") and code:
                account["Code"] = code
            transfer[side] = account
        out.append(transfer)
    return out


@action(
    "xero.create_bank_transfer",
    app="xero",
    input_model=BankTransferInput,
    scopes=("accounting.banktransactions", "accounting.settings.read"),
)
def create_bank_transfer(ctx: ActionContext, data: BankTransferInput) -> dict[str, Any]:
    """Move money between two Xero bank accounts."""
    client = ctx.service("xero")
    if ctx.attempt > 1 and data.Reference:
        where = f"Reference=={where_text(data.Reference)} AND Amount=={round(data.Amount, 2)}"
        found = client.request("GET", "/BankTransfers", params={"where": where})
        # A monthly transfer with the same reference, made before this run, is not this one.
        recent = [t for t in found.get("BankTransfers") or [] if made_by_this_run(ctx, t)]
        existing = adopt_found(
            ctx,
            _with_account_codes(client, data, recent),
            data,
            ("FromBankAccount", "ToBankAccount", "Amount", "Date", "Reference"),
            what="bank transfer",
            name_of=lambda t: f"{t.get('BankTransferID')} ({data.Reference!r})",
            hint="give this transfer another Reference or remove that transfer in Xero",
        )
        if existing is not None:
            logger.info("bank transfer already made in Xero (an earlier attempt made it)")
            return _transfer_fields(existing, created=False)
    answer = client.request(
        "PUT", "/BankTransfers", json={"BankTransfers": [data.body()]}, idempotency_key=ctx.idempotency_key
    )
    transfers = answer.get("BankTransfers") if isinstance(answer, dict) else None
    if not transfers:
        from clientary_xero.errors import PermanentError

        raise PermanentError("Xero's answer holds no BankTransfers", service="xero")
    return _transfer_fields(transfers[0], created=True)
