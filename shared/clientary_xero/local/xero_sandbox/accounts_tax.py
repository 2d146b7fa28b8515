"""The chart of accounts and the tax rates a new organisation gets, and account look-ups.

A demo company's chart (090/091 BANK, 200 REVENUE, 400 EXPENSE, 310/500 DIRECTCOSTS, 630 INVENTORY,
610/800 the receivable and payable control accounts, 820 sales tax, 960 retained earnings, …) and
the tax rates of the organisation's country (US, NZ, AU or GB), each account given its country's
default tax type.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from clientary_xero.connectors.xero.dates import to_xero_date
from clientary_xero.local.xero_sandbox.base import _SandboxBase
from clientary_xero.local.xero_sandbox.model import (
    _ASSET_TYPES,
    _EXPENSE_TYPES,
    _INCOME_TYPES,
    _LIABILITY_TYPES,
    _Tenant,
)

# A small chart of accounts like a new organisation's: (code, name, type, system account).
_CHART = (
    ("090", "Checking Account", "BANK", ""),
    ("091", "Savings Account", "BANK", ""),
    ("200", "Sales", "REVENUE", ""),
    ("260", "Other Revenue", "REVENUE", ""),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", ""),
    ("400", "Advertising", "EXPENSE", ""),
    ("429", "General Expenses", "EXPENSE", ""),
    ("500", "Purchases", "DIRECTCOSTS", ""),
    ("610", "Accounts Receivable", "CURRENT", "DEBTORS"),
    ("630", "Inventory", "INVENTORY", ""),
    ("710", "Office Equipment", "FIXED", ""),
    ("800", "Accounts Payable", "CURRLIAB", "CREDITORS"),
    ("820", "Sales Tax", "CURRLIAB", "GST"),
    ("960", "Retained Earnings", "EQUITY", "RETAINEDEARNINGS"),
)
# The tax rates of a Xero demo company per country (GET /TaxRates): (TaxType, Name, ReportTaxType,
# components as (name, rate %), applies to (Assets, Equity, Expenses, Liabilities, Revenue)). NZ is
# the spec's own GET /TaxRates example; AU and GB are Xero's standard codes for those countries; US
# orgs have the 0 % system rates plus their own sales taxes (TAX001, …): the spec's bank-transaction
# example (a 20.00 Inclusive SPEND on account 400 with TAX001 -> TaxAmount 1.74) fits a 9.5 % rate
# that applies to expenses too, seeded as state + city tax.
_ALL, _SALES, _PURCHASES, _NEITHER = (
    (True, True, True, True, True),
    (True, True, False, True, True),
    (True, True, True, True, False),
    (False, False, False, True, False),
)
_TaxSeed = tuple[str, str, str, tuple[tuple[str, str], ...], tuple[bool, bool, bool, bool, bool]]
_TAX_RATES: dict[str, tuple[_TaxSeed, ...]] = {
    "US": (
        ("NONE", "Tax Exempt", "NONE", (("Tax Exempt", "0"),), _ALL),
        ("INPUT", "Tax on Purchases", "INPUT", (("Tax", "0"),), _PURCHASES),
        ("OUTPUT", "Tax on Sales", "OUTPUT", (("Tax", "0"),), _SALES),
        ("GSTONIMPORTS", "Sales Tax on Imports", "GSTONIMPORTS", (("Tax", "0"),), _NEITHER),
        ("TAX001", "Sales Tax", "OUTPUT", (("State Tax", "6.25"), ("City Tax", "3.25")), _ALL),
    ),
    "NZ": (
        ("INPUT2", "15% GST on Expenses", "INPUT", (("GST", "15"),), _PURCHASES),
        ("OUTPUT2", "15% GST on Income", "OUTPUT", (("GST", "15"),), _SALES),
        ("GSTONIMPORTS", "GST on Imports", "GSTONIMPORTS", (("GST", "0"),), _NEITHER),
        ("NONE", "No GST", "NONE", (("GST", "0"),), _ALL),
        ("ZERORATED", "Zero Rated", "OUTPUT", (("GST", "0"),), (False, False, False, True, True)),
    ),
    "AU": (
        ("OUTPUT", "GST on Income", "OUTPUT", (("GST", "10"),), _SALES),
        ("INPUT", "GST on Expenses", "INPUT", (("GST", "10"),), _PURCHASES),
        ("CAPEXINPUT", "GST on Capital", "INPUT", (("GST", "10"),), _PURCHASES),
        ("EXEMPTOUTPUT", "GST Free Income", "EXEMPTOUTPUT", (("GST", "0"),), _SALES),
        ("EXEMPTEXPENSES", "GST Free Expenses", "EXEMPTEXPENSES", (("GST", "0"),), _PURCHASES),
        ("INPUTTAXED", "Input Taxed", "INPUTTAXED", (("GST", "0"),), _ALL),
        ("BASEXCLUDED", "BAS Excluded", "BASEXCLUDED", (("GST", "0"),), _ALL),
        ("GSTONIMPORTS", "GST on Imports", "GSTONIMPORTS", (("GST", "0"),), _NEITHER),
    ),
    "GB": (
        ("OUTPUT2", "20% (VAT on Income)", "OUTPUT", (("VAT", "20"),), _SALES),
        ("INPUT2", "20% (VAT on Expenses)", "INPUT", (("VAT", "20"),), _PURCHASES),
        ("RROUTPUT", "5% (VAT on Income)", "OUTPUT", (("VAT", "5"),), _SALES),
        ("RRINPUT", "5% (VAT on Expenses)", "INPUT", (("VAT", "5"),), _PURCHASES),
        ("ZERORATEDOUTPUT", "Zero Rated Income", "ZERORATEDOUTPUT", (("VAT", "0"),), _SALES),
        ("ZERORATEDINPUT", "Zero Rated Expenses", "ZERORATEDINPUT", (("VAT", "0"),), _PURCHASES),
        ("EXEMPTOUTPUT", "Exempt Income", "EXEMPTOUTPUT", (("VAT", "0"),), _SALES),
        ("EXEMPTINPUT", "Exempt Expenses", "EXEMPTINPUT", (("VAT", "0"),), _PURCHASES),
        ("NONE", "No VAT", "NONE", (("VAT", "0"),), _ALL),
    ),
}
# The tax type a new organisation gives its revenue and expense accounts (and so a line without
# TaxType or account): (sales, purchases, other accounts).
_DEFAULT_TAX = {
    "US": ("OUTPUT", "INPUT", "NONE"),
    "NZ": ("OUTPUT2", "INPUT2", "NONE"),
    "AU": ("OUTPUT", "INPUT", "BASEXCLUDED"),
    "GB": ("OUTPUT2", "INPUT2", "NONE"),
}
_COUNTRY_OF_CURRENCY = {"NZD": "NZ", "AUD": "AU", "GBP": "GB"}
_APPLIES = (
    "CanApplyToAssets",
    "CanApplyToEquity",
    "CanApplyToExpenses",
    "CanApplyToLiabilities",
    "CanApplyToRevenue",
)
# The CanApplyTo… flag a line's account class asks of its tax rate.
_APPLIES_BY_CLASS = {
    "ASSET": "CanApplyToAssets",
    "EQUITY": "CanApplyToEquity",
    "EXPENSE": "CanApplyToExpenses",
    "LIABILITY": "CanApplyToLiabilities",
    "REVENUE": "CanApplyToRevenue",
}
_CLASS_OF = {
    **dict.fromkeys(_ASSET_TYPES, "ASSET"),
    **dict.fromkeys(_LIABILITY_TYPES, "LIABILITY"),
    **dict.fromkeys(_INCOME_TYPES, "REVENUE"),
    **dict.fromkeys(_EXPENSE_TYPES, "EXPENSE"),
    "EQUITY": "EQUITY",
}


class AccountsTaxMixin(_SandboxBase):
    """Seeding a new organisation's accounts and tax rates; finding an account."""

    @staticmethod
    def _account_tax(tenant: _Tenant, kind: str) -> str:
        sales, purchases, other = _DEFAULT_TAX[tenant.country]
        return {"REVENUE": sales, "EXPENSE": purchases}.get(_CLASS_OF[kind], other)

    def _seed_accounts(self, tenant: _Tenant) -> None:
        for code, name, kind, system in _CHART:
            account_id = str(uuid.uuid4())
            account: dict[str, Any] = {
                "AccountID": account_id,
                "Code": code,
                "Name": name,
                "Type": kind,
                "Status": "ACTIVE",
                "Class": _CLASS_OF[kind],
                "TaxType": self._account_tax(tenant, kind),
                "EnablePaymentsToAccount": False,
                "ShowInExpenseClaims": kind == "EXPENSE",
                "HasAttachments": False,
                "AddToWatchlist": False,
                "ReportingCode": "",
                "UpdatedDateUTC": to_xero_date(datetime.fromtimestamp(tenant.created_at, UTC)),
            }
            if kind == "BANK":
                account.update(
                    BankAccountNumber=f"12-3456-{code}", BankAccountType="BANK", CurrencyCode=tenant.currency
                )
            if system:
                account["SystemAccount"] = system
            tenant.accounts[account_id] = account

    @staticmethod
    def _tax_rate(fields: dict[str, Any]) -> dict[str, Any]:
        """A TaxRate as Xero lists it; its rate is the sum of its components unless given."""
        components = [
            {"IsCompound": False, "IsNonRecoverable": False, **c} for c in fields.get("TaxComponents") or []
        ]
        total = sum((Decimal(str(c.get("Rate") or 0)) for c in components), Decimal(0))
        rate = {
            "Name": fields.get("Name", fields["TaxType"]),
            "TaxType": fields["TaxType"],
            "ReportTaxType": fields.get("ReportTaxType", "OUTPUT"),
            **{flag: fields.get(flag, True) for flag in _APPLIES},
            "DisplayTaxRate": float(fields.get("DisplayTaxRate", total)),
            "EffectiveRate": float(fields.get("EffectiveRate", total)),
            "Status": fields.get("Status", "ACTIVE"),
            "TaxComponents": [{**c, "Rate": float(c.get("Rate") or 0)} for c in components],
        }
        return rate

    def _seed_tax_rates(self, tenant: _Tenant) -> None:
        for tax_type, name, report, components, applies in _TAX_RATES[tenant.country]:
            tenant.tax_rates[tax_type] = self._tax_rate(
                {
                    "TaxType": tax_type,
                    "Name": name,
                    "ReportTaxType": report,
                    "TaxComponents": [{"Name": n, "Rate": Decimal(r)} for n, r in components],
                    **dict(zip(_APPLIES, applies, strict=True)),
                }
            )

    def _account(self, tenant: _Tenant, ref: Any) -> dict[str, Any] | None:
        if not isinstance(ref, dict):
            return None
        if ref.get("AccountID"):
            return tenant.accounts.get(str(ref["AccountID"]).lower())
        if ref.get("Code"):
            return next((a for a in tenant.accounts.values() if a["Code"] == str(ref["Code"])), None)
        return None
