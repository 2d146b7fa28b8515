# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
"""Reports in Xero's own shape: Xero's BalanceSheet example (from the OpenAPI file in ../shared)
through the product's flattening, and the sandbox's reports against that example's row kinds.

The spec has no ProfitAndLoss example; the BalanceSheet one is the reference for both reports."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
import yaml

from clientary_xero.connectors.base import ActionContext, registry
from clientary_xero.local.xero_sandbox import XeroSandbox
from tests.conftest_xero import FakeClock, clock, sandbox  # noqa: F401
from tests.test_xero_sandbox_more import API, Org
from tests.xero_contract import spec_dir

NIL = "00000000-0000-0000-0000-000000000000"


@cache
def _example(path: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load((spec_dir() / "xero_accounting.yaml").read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    example = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["example"]
    return dict(json.loads(json.dumps(example)))  # as it comes over the wire


def example(path: str) -> dict[str, Any]:
    return json.loads(json.dumps(_example(path)))  # a fresh copy per test


class _Answers:
    """Stands in for the Xero client: answers the one report request with Xero's example."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        self.calls.append((method, path))
        return self.body


def run_report(name: str, body: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    spec = registry()[name]
    answers = _Answers(body)
    ctx = ActionContext(
        run_id="run-1",
        step_id="bs",
        idempotency_key="run-1:bs:0",
        attempt=1,
        links=None,  # type: ignore[arg-type]  (reports link nothing)
        factories={"xero": lambda: answers},
    )
    out = spec.run(ctx, spec.input_model.model_validate(fields))
    assert answers.calls == [("GET", "/Reports/BalanceSheet")]
    return dict(out)


def row_kinds(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each row's first-cell label → its RowType, through sections."""
    out: dict[str, str] = {}
    for row in rows:
        if row.get("RowType") == "Section":
            out.update(row_kinds(row.get("Rows") or []))
        elif row.get("RowType") != "Header" and row.get("Cells"):
            out[str(row["Cells"][0].get("Value"))] = str(row["RowType"])
    return out


def test_xeros_balance_sheet_example_flattens_to_its_totals_and_lines() -> None:
    sheet = run_report("xero.get_balance_sheet", example("/Reports/BalanceSheet"), {"Date": "2019-04-30"})
    assert sheet["Columns"] == ["30 Apr 2019", "31 Mar 2019", "28 Feb 2019"]
    assert sheet["Totals"] == {
        "Total Bank": 296.37,
        "Total Current Assets": 179355.72,
        "Total Fixed Assets": -119.0,
        "Total Assets": 179533.09,  # a SummaryRow in an untitled section
        "Total Current Liabilities": -5915.21,
        "Total Liabilities": -5915.21,
        "Net Assets": 185448.30,  # a plain Row
        "Total Equity": 185448.29,
    }
    lines = {line["account"]: line for line in sheet["Lines"]}
    bank = lines["Country Savings"]
    assert (bank["section"], bank["account_id"], bank["row_type"], bank["value"]) == (
        "Bank",
        "041207d2-3d61-4e5d-8c1a-b9236955a71c",
        "Row",
        -1850.0,
    )
    # Xero's computed equity line: the nil account id and from/to dates on each value — a line
    # (not a total) that names no account a workflow could read.
    earnings = lines["Current Year Earnings"]
    assert (earnings["section"], earnings["account_id"], earnings["values"]) == (
        "Equity",
        None,
        {"30 Apr 2019": 114.62, "31 Mar 2019": 156621.67, "28 Feb 2019": 500.0},
    )
    assert lines["Retained Earnings"]["account_id"] == "7fc16c06-c342-4f32-995f-889b5f9996fd"
    assert lines["Total Assets"]["row_type"] == "SummaryRow"
    assert (sheet["ReportID"], sheet["ReportName"], sheet["ReportDate"]) == (
        None,
        "Balance Sheet",
        "2019-04-12",
    )


def test_the_sandbox_reports_have_xeros_row_kinds_and_attributes(org: Org) -> None:
    xero = example("/Reports/BalanceSheet")["Reports"][0]
    contact = org.contact()
    org.invoice(contact, 100, Date="2026-01-05")
    org.invoice(contact, 40, Date="2025-06-01")  # last financial year: Retained Earnings
    answer = org.call("GET", API + "/Reports/BalanceSheet", date="2026-01-31").json()["Reports"][0]
    assert set(answer) <= set(xero), set(answer) - set(xero)  # no ReportID: Xero's example has none
    ours, theirs = row_kinds(answer["Rows"]), row_kinds(xero["Rows"])
    shared = set(ours) & set(theirs)
    assert {
        "Total Assets",
        "Total Liabilities",
        "Net Assets",
        "Total Equity",
        "Current Year Earnings",
    } <= shared
    assert {label: ours[label] for label in shared} == {label: theirs[label] for label in shared}

    equity = next(row for row in answer["Rows"] if row.get("Title") == "Equity")["Rows"]
    earnings = next(row for row in equity if row["Cells"][0]["Value"] == "Current Year Earnings")
    assert earnings["Cells"][0]["Attributes"] == [{"Value": NIL, "Id": "account"}]
    assert earnings["Cells"][1] == {
        "Value": "100.00",
        "Attributes": [
            {"Value": NIL, "Id": "account"},
            {"Value": "1/1/2026", "Id": "fromDate"},
            {"Value": "1/31/2026", "Id": "toDate"},
        ],
    }
    retained = next(row for row in equity if row["Cells"][0]["Value"] == "Retained Earnings")
    assert retained["Cells"][1]["Value"] == "40.00"
    assert [a["Id"] for a in retained["Cells"][1]["Attributes"]] == ["account", "fromDate", "toDate"]
    assert retained["Cells"][1]["Attributes"][2]["Value"] == "12/31/2025"
    total = next(row for row in equity if row["RowType"] == "SummaryRow")
    assert total["Cells"][1]["Value"] == "140.00"

    pnl = org.call("GET", API + "/Reports/ProfitAndLoss", fromDate="2026-01-01", toDate="2026-01-31").json()
    assert "ReportID" not in pnl["Reports"][0]
    assert org.checked == []


@pytest.fixture
def org(sandbox: XeroSandbox) -> Org:
    return Org(sandbox)
