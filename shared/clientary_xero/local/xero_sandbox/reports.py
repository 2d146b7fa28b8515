"""The BalanceSheet and ProfitAndLoss reports, computed from the organisation's books.

A ledger from approved invoices, payments and bank transfers (``_ledger``), summed per account over
the requested date or period and ``periods``/``timeframe`` columns, laid out in Xero's report rows
(header, sections, summary rows, Current Year Earnings) as its examples show.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from clientary_xero.local.xero_sandbox.listing import ListingMixin
from clientary_xero.local.xero_sandbox.model import (
    _EXPENSE_TYPES,
    _INCOME_TYPES,
    _LIABILITY_TYPES,
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _api_exception,
    _money,
    _not_found,
    _Reject,
)


class ReportsMixin(ListingMixin):
    """The BalanceSheet and ProfitAndLoss reports."""

    def _ledger(self, tenant: _Tenant) -> list[tuple[date, str, Decimal]]:
        """Posted amounts (date, account id, debit positive) from approved invoices, payments, transfers."""
        by_code = {a["Code"]: a["AccountID"] for a in tenant.accounts.values()}
        entries: list[tuple[date, str, Decimal]] = []
        for invoice in tenant.invoices.values():
            if invoice["Status"] not in ("AUTHORISED", "PAID"):
                continue
            day = date.fromisoformat(invoice["DateString"][:10])
            sign = Decimal(1) if invoice["Type"] == "ACCREC" else Decimal(-1)
            control = by_code["610" if invoice["Type"] == "ACCREC" else "800"]
            entries.append((day, control, sign * Decimal(str(invoice["Total"]))))
            entries.append((day, by_code["820"], -sign * Decimal(str(invoice["TotalTax"]))))
            default = by_code["200" if invoice["Type"] == "ACCREC" else "429"]
            inclusive = invoice.get("LineAmountTypes") == "Inclusive"
            for line in invoice["LineItems"]:
                net = Decimal(str(line["LineAmount"]))
                if inclusive:
                    net -= Decimal(str(line.get("TaxAmount") or 0))
                account = line.get("AccountID") or by_code.get(line.get("AccountCode", "")) or default
                entries.append((day, str(account).lower(), -sign * net))
        for payment in tenant.payments.values():
            if payment["Status"] != "AUTHORISED":
                continue
            day = (
                datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=self._ms(payment["Date"]) or 0)
            ).date()
            sign = Decimal(1) if payment["PaymentType"] == "ACCRECPAYMENT" else Decimal(-1)
            amount = Decimal(str(payment["Amount"]))
            control = by_code["610" if sign > 0 else "800"]
            entries.append((day, payment["Account"]["AccountID"], sign * amount))
            entries.append((day, control, -sign * amount))
        for transfer in tenant.bank_transfers.values():
            day = date.fromisoformat(transfer["DateString"][:10])
            amount = Decimal(str(transfer["Amount"]))
            entries.append((day, transfer["FromBankAccount"]["AccountID"], -amount))
            entries.append((day, transfer["ToBankAccount"]["AccountID"], amount))
        return entries

    @staticmethod
    def _shift(day: date, months: int) -> date:
        import calendar

        month_end = day.day == calendar.monthrange(day.year, day.month)[1]
        index = day.year * 12 + day.month - 1 + months
        year, month = divmod(index, 12)
        last = calendar.monthrange(year, month + 1)[1]
        return date(year, month + 1, last if month_end else min(day.day, last))

    def _report_params(self, params: dict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
        import calendar

        out: dict[str, Any] = {}
        try:
            for name in names:
                if params.get(name.lower()):
                    out[name] = date.fromisoformat(params[name.lower()])
            periods = int(params.get("periods", "0") or 0)
        except ValueError as exc:
            raise _Reject(_api_exception(400, 16, "QueryParseException", str(exc))) from None
        timeframe = params.get("timeframe", "MONTH").upper()
        if timeframe not in ("MONTH", "QUARTER", "YEAR") or not 0 <= periods <= 12:
            raise _Reject(
                _api_exception(
                    400,
                    16,
                    "QueryParseException",
                    "periods must be 0 to 12 and timeframe MONTH, QUARTER or YEAR",
                )
            )
        today = self._today()
        out["month_end"] = today.replace(day=calendar.monthrange(today.year, today.month)[1])
        out["periods"] = periods
        out["step"] = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[timeframe]
        return out

    @staticmethod
    def _title(day: date) -> str:
        return f"{day.day} {day:%b %Y}"

    @staticmethod
    def _us_day(day: date) -> str:
        """A report attribute's date, as Xero writes it: ``4/30/2019``."""
        return f"{day.month}/{day.day}/{day.year}"

    @staticmethod
    def _cell(value: str, account_id: str | None = None) -> dict[str, Any]:
        cell: dict[str, Any] = {"Value": value}
        if account_id:
            cell["Attributes"] = [{"Value": account_id, "Id": "account"}]
        return cell

    def _account_rows(
        self, accounts: list[dict[str, Any]], columns: list[dict[str, Decimal]], sign: Decimal
    ) -> list[dict[str, Any]]:
        rows = []
        for account in sorted(accounts, key=lambda a: a["Code"]):
            values = [sign * c.get(account["AccountID"], Decimal(0)) for c in columns]
            if all(v == 0 for v in values):
                continue
            label = f"{account['Name']}"
            cells = [self._cell(label, account["AccountID"])]
            cells += [self._cell(f"{_money(v):.2f}", account["AccountID"]) for v in values]
            rows.append({"RowType": "Row", "Cells": cells})
        return rows

    @staticmethod
    def _sum_rows(rows: list[dict[str, Any]], width: int) -> list[Decimal]:
        totals = [Decimal(0)] * width
        for row in rows:
            for i, cell in enumerate(row["Cells"][1:]):
                totals[i] += Decimal(cell["Value"])
        return totals

    def _total_row(self, title: str, values: list[Decimal], kind: str = "SummaryRow") -> dict[str, Any]:
        return {
            "RowType": kind,
            "Cells": [self._cell(title)] + [self._cell(f"{_money(v):.2f}") for v in values],
        }

    def _report(self, tenant: _Tenant, name: str, params: dict[str, str]) -> httpx.Response:
        if name not in ("balancesheet", "profitandloss"):
            return _not_found()
        ledger = self._ledger(tenant)
        accounts = list(tenant.accounts.values())

        def of(types: tuple[str, ...]) -> list[dict[str, Any]]:
            return [a for a in accounts if a["Type"] in types]

        def sums(start: date | None, end: date) -> dict[str, Decimal]:
            out: dict[str, Decimal] = {}
            for day, account_id, amount in ledger:
                if day <= end and (start is None or day >= start):
                    out[account_id] = out.get(account_id, Decimal(0)) + amount
            return out

        def section(
            title: str, types: tuple[str, ...], cols: list[dict[str, Decimal]], sign: Decimal, total: str
        ) -> tuple[list[dict[str, Any]], list[Decimal]]:
            rows = self._account_rows(of(types), cols, sign)
            values = self._sum_rows(rows, len(cols))
            if not rows:
                return [], values
            return [
                {"RowType": "Section", "Title": title, "Rows": [*rows, self._total_row(total, values)]}
            ], values

        # As Xero's BalanceSheet example: a sum of sections ("Total Assets") is a SummaryRow in an
        # untitled section, a difference ("Net Assets") a plain Row. The spec has no ProfitAndLoss
        # example; its Gross Profit and Net Profit follow the Net Assets convention.
        def line(title: str, values: list[Decimal], kind: str = "Row") -> dict[str, Any]:
            return {"RowType": "Section", "Title": "", "Rows": [self._total_row(title, values, kind)]}

        rows: list[dict[str, Any]]
        report: dict[str, Any]
        if name == "balancesheet":
            options = self._report_params(params, ("date",))
            at = options.get("date") or options["month_end"]
            ends = [self._shift(at, -k * options["step"]) for k in range(options["periods"] + 1)]
            cols = [sums(None, end) for end in ends]
            profit_sums = [
                sum(
                    (c.get(a["AccountID"], Decimal(0)) for a in of(_INCOME_TYPES + _EXPENSE_TYPES)),
                    Decimal(0),
                )
                for c in cols
            ]
            rows = [
                {"RowType": "Header", "Cells": [self._cell("")] + [self._cell(self._title(e)) for e in ends]}
            ]
            rows.append({"RowType": "Section", "Title": "Assets", "Rows": []})
            bank, bank_total = section("Bank", ("BANK",), cols, Decimal(1), "Total Bank")
            current, current_total = section(
                "Current Assets",
                ("CURRENT", "INVENTORY", "PREPAYMENT"),
                cols,
                Decimal(1),
                "Total Current Assets",
            )
            fixed, fixed_total = section(
                "Fixed Assets", ("FIXED", "NONCURRENT"), cols, Decimal(1), "Total Fixed Assets"
            )
            assets = [a + b + c for a, b, c in zip(bank_total, current_total, fixed_total, strict=True)]
            rows += [*bank, *current, *fixed, line("Total Assets", assets, "SummaryRow")]
            rows.append({"RowType": "Section", "Title": "Liabilities", "Rows": []})
            liab, liab_total = section(
                "Current Liabilities", _LIABILITY_TYPES, cols, Decimal(-1), "Total Current Liabilities"
            )
            rows += [*liab, line("Total Liabilities", liab_total, "SummaryRow")]
            net = [a - b for a, b in zip(assets, liab_total, strict=True)]
            rows.append(line("Net Assets", net))
            # The sandbox's organisation keeps a calendar financial year: profit of earlier years
            # is Retained Earnings, this year's "Current Year Earnings" — a computed line Xero
            # marks with the nil account id and each column's span (M/D/YYYY), as in its example.
            years = [date(end.year, 1, 1) for end in ends]
            current_sums = [
                sum(
                    (c.get(a["AccountID"], Decimal(0)) for a in of(_INCOME_TYPES + _EXPENSE_TYPES)),
                    Decimal(0),
                )
                for c in (sums(start, end) for start, end in zip(years, ends, strict=True))
            ]
            retained = next((a for a in accounts if a.get("SystemAccount") == "RETAINEDEARNINGS"), None)
            equity_cols = cols
            if retained is not None:
                equity_cols = [
                    {**c, retained["AccountID"]: c.get(retained["AccountID"], Decimal(0)) + total - now}
                    for c, total, now in zip(cols, profit_sums, current_sums, strict=True)
                ]
            equity_rows = self._account_rows(of(("EQUITY",)), equity_cols, Decimal(-1))
            for row in equity_rows:
                if (
                    retained is not None
                    and row["Cells"][0]["Attributes"][0]["Value"] == retained["AccountID"]
                ):
                    for cell, start in zip(row["Cells"][1:], years, strict=True):
                        cell["Attributes"] += [
                            {"Value": "", "Id": "fromDate"},
                            {"Value": self._us_day(start - timedelta(days=1)), "Id": "toDate"},
                        ]
            nil = "00000000-0000-0000-0000-000000000000"
            earnings_cells = [self._cell("Current Year Earnings", nil)]
            for value, start, end in zip(current_sums, years, ends, strict=True):
                cell = self._cell(f"{_money(-value):.2f}", nil)
                cell["Attributes"] += [
                    {"Value": self._us_day(start), "Id": "fromDate"},
                    {"Value": self._us_day(end), "Id": "toDate"},
                ]
                earnings_cells.append(cell)
            equity_rows.insert(0, {"RowType": "Row", "Cells": earnings_cells})
            equity_total = self._sum_rows(equity_rows, len(cols))
            rows.append(
                {
                    "RowType": "Section",
                    "Title": "Equity",
                    "Rows": [*equity_rows, self._total_row("Total Equity", equity_total)],
                }
            )
            # No ReportID: Xero's examples send none for these two reports.
            report = {
                "ReportName": "Balance Sheet",
                "ReportType": "BalanceSheet",
                "ReportTitles": ["Balance Sheet", tenant.name, f"As at {at.day} {at:%B %Y}"],
            }
        else:
            options = self._report_params(params, ("fromDate", "toDate"))
            end = options.get("toDate") or options["month_end"]
            start = options.get("fromDate") or end.replace(day=1)
            if start > end:
                raise _Reject(_api_exception(400, 16, "QueryParseException", "fromDate is after toDate"))
            spans = [
                (self._shift(start, -k * options["step"]), self._shift(end, -k * options["step"]))
                for k in range(options["periods"] + 1)
            ]
            cols = [sums(s, e) for s, e in spans]
            rows = [
                {
                    "RowType": "Header",
                    "Cells": [self._cell("")] + [self._cell(self._title(e)) for _, e in spans],
                }
            ]
            income, income_total = section("Income", ("REVENUE", "SALES"), cols, Decimal(-1), "Total Income")
            costs, costs_total = section(
                "Less Cost of Sales", ("DIRECTCOSTS",), cols, Decimal(1), "Total Cost of Sales"
            )
            gross = [a - b for a, b in zip(income_total, costs_total, strict=True)]
            other, other_total = section(
                "Plus Other Income", ("OTHERINCOME",), cols, Decimal(-1), "Total Other Income"
            )
            expenses, expenses_total = section(
                "Less Operating Expenses",
                ("EXPENSE", "OVERHEADS", "DEPRECIATN"),
                cols,
                Decimal(1),
                "Total Operating Expenses",
            )
            net = [g + o - e for g, o, e in zip(gross, other_total, expenses_total, strict=True)]
            rows += [*income, *costs, line("Gross Profit", gross), *other, *expenses, line("Net Profit", net)]
            report = {
                "ReportName": "Profit and Loss",
                "ReportType": "ProfitAndLoss",
                "ReportTitles": [
                    "Profit & Loss",
                    tenant.name,
                    f"{start.day} {start:%B %Y} to {end.day} {end:%B %Y}",
                ],
            }
        today = self._today()
        report.update(
            {
                "ReportDate": f"{today.day} {today:%B %Y}",
                "UpdatedDateUTC": self._stamp(),
                "Fields": [],
                "Rows": rows,
            }
        )
        return self._ok({"Reports": [report]})
