"""Reports: ``xero.get_balance_sheet`` and ``xero.get_profit_and_loss``.

The output holds Xero's own ``Rows`` and, flattened by ``connectors.xero.reports``, ``Columns``,
``Lines`` (``{section, account, account_id, values: {column: number}}``) and ``Totals`` — so a
workflow can pick ``steps.bs.Totals.'Total Assets'``. ``Periods`` adds that many earlier periods as
extra columns (Xero: an integer from 1 to 12), each ``Timeframe`` long.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from clientary_xero.connectors.base import ActionContext, action
from clientary_xero.connectors.xero.actions.common import Guid, XeroDay, _Input, iso_time

TimeframeKind = Literal["MONTH", "QUARTER", "YEAR"]


class _ReportInput(_Input):
    Periods: int | None = Field(default=None, ge=1, le=12, description="Earlier periods to compare (1-12).")
    Timeframe: TimeframeKind | None = Field(default=None, description="Period length; MONTH when omitted.")
    StandardLayout: bool | None = Field(default=None, description="Ignore custom report layouts.")
    PaymentsOnly: bool | None = Field(default=None, description="Cash basis: only paid transactions.")

    def params(self, names: dict[str, str]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for field, param in {
            **names,
            "Periods": "periods",
            "Timeframe": "timeframe",
            "StandardLayout": "standardLayout",
            "PaymentsOnly": "paymentsOnly",
        }.items():
            value = getattr(self, field)
            if value is None:
                continue
            if isinstance(value, bool):
                value = str(value).lower()
            elif hasattr(value, "isoformat"):
                value = value.isoformat()
            params[param] = value
        return params


class BalanceSheetInput(_ReportInput):
    Date: XeroDay | None = Field(
        default=None, description="As at this day; the end of this month when omitted."
    )
    TrackingOptionID1: Guid | None = None
    TrackingOptionID2: Guid | None = None


class ProfitAndLossInput(_ReportInput):
    FromDate: XeroDay | None = Field(
        default=None, description="First day; the start of this month when omitted."
    )
    ToDate: XeroDay | None = Field(default=None, description="Last day; the end of this month when omitted.")
    TrackingCategoryID: Guid | None = None
    TrackingCategoryID2: Guid | None = None
    TrackingOptionID: Guid | None = None
    TrackingOptionID2: Guid | None = None

    @model_validator(mode="after")
    def _range(self) -> ProfitAndLossInput:
        if self.FromDate and self.ToDate and self.FromDate > self.ToDate:
            raise ValueError("FromDate is after ToDate")
        return self


def _report_output(answer: Any, name: str) -> dict[str, Any]:
    from clientary_xero.connectors.xero.dates import parse_report_date
    from clientary_xero.connectors.xero.reports import flatten_report
    from clientary_xero.errors import PermanentError

    reports = answer.get("Reports") if isinstance(answer, dict) else None
    if not reports:
        raise PermanentError(f"Xero's answer holds no {name} report", service="xero")
    report = reports[0]
    return {
        "ReportID": report.get("ReportID"),
        "ReportName": report.get("ReportName"),
        "ReportTitles": report.get("ReportTitles") or [],
        "ReportDate": parse_report_date(report.get("ReportDate")),
        "ReportDateText": report.get("ReportDate"),
        "UpdatedDateUTC": iso_time(report.get("UpdatedDateUTC")),
        **flatten_report(report),
        "Rows": report.get("Rows") or [],
    }


@action(
    "xero.get_balance_sheet",
    app="xero",
    input_model=BalanceSheetInput,
    scopes=("accounting.reports.balancesheet.read",),
)
def get_balance_sheet(ctx: ActionContext, data: BalanceSheetInput) -> dict[str, Any]:
    """Read Xero's Balance Sheet: Xero's rows plus a flat list of lines and totals."""
    params = data.params(
        {"Date": "date", "TrackingOptionID1": "trackingOptionID1", "TrackingOptionID2": "trackingOptionID2"}
    )
    answer = ctx.service("xero").request("GET", "/Reports/BalanceSheet", params=params)
    return _report_output(answer, "BalanceSheet")


@action(
    "xero.get_profit_and_loss",
    app="xero",
    input_model=ProfitAndLossInput,
    scopes=("accounting.reports.profitandloss.read",),
)
def get_profit_and_loss(ctx: ActionContext, data: ProfitAndLossInput) -> dict[str, Any]:
    """Read Xero's Profit and Loss: Xero's rows plus a flat list of lines and totals."""
    params = data.params(
        {
            "FromDate": "fromDate",
            "ToDate": "toDate",
            "TrackingCategoryID": "trackingCategoryID",
            "TrackingCategoryID2": "trackingCategoryID2",
            "TrackingOptionID": "trackingOptionID",
            "TrackingOptionID2": "trackingOptionID2",
        }
    )
    answer = ctx.service("xero").request("GET", "/Reports/ProfitAndLoss", params=params)
    return _report_output(answer, "ProfitAndLoss")
