# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
"""Issue 7, point 8: a retry never adopts someone else's record.

A step whose earlier try's outcome is unknown looks for what that try made, by its key (a number, a
reference, an amount). What it finds is adopted only when it is what the step would have written;
otherwise the step fails with what differs and nothing is written. Per action family, against the
Xero sandbox: the legitimate case (our record, its answer lost: adopted, no duplicate) and the
foreign one (someone else's record with our key: the step fails, naming the difference).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.connectors.adoption import Difference, adopt, compare
from clientary_xero.connectors.base import registry
from clientary_xero.connectors.xero.actions.common import LineItem, line_total, xero_differences
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.errors import PermanentError
from clientary_xero.local.xero_sandbox import XeroSandbox
from tests.conftest_xero import (  # noqa: F401
    AwsEnv,
    FakeClock,
    Recorded,
    aws,
    clock,
    connection,
    make_context,
    make_provider,
    recorder,
    sandbox,
    xero,
)

ROOT = Path(__file__).resolve().parents[1]
KEY_WINDOW = 7 * 60  # past Xero's 6-minute idempotency window: a retry's key is new to Xero


def run(
    client: XeroClient,
    name: str,
    fields: dict[str, Any],
    *,
    attempt: int = 1,
    run_id: str = "run-1",
    not_before: float = 0.0,
) -> Any:
    """Run action ``name`` as the engine does: the input validated, the run's start as not_before."""
    spec = registry()[name]
    context = dataclasses.replace(make_context(client, run_id=run_id, attempt=attempt), not_before=not_before)
    return spec.run(context, spec.input_model.model_validate(fields))


@pytest.fixture
def tenant(connection: dict[str, Any]) -> str:
    return str(connection["tenant_id"])


@pytest.fixture
def contacts(sandbox: XeroSandbox, tenant: str) -> dict[str, str]:
    ours = sandbox.seed_contact(tenant, Name="Harbour Lights Ltd", ContactNumber="CL-42")
    other = sandbox.seed_contact(tenant, Name="Other Ltd", ContactNumber="CL-9")
    return {"ours": ours["ContactID"], "other": other["ContactID"]}


def line(amount: float, description: str = "Lighting design") -> list[dict[str, Any]]:
    return [{"Description": description, "Quantity": 1, "UnitAmount": amount, "AccountCode": "200"}]


# ------------------------------------------------------------ the reported case
def test_an_invoice_number_typed_by_hand_for_another_contact_is_never_adopted(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, contacts: dict[str, str], clock: FakeClock
) -> None:
    # Given INV-0042, typed in Xero by hand for another contact, 12.50
    by_hand = {
        "Contact": {"ContactNumber": "CL-9"},
        "InvoiceNumber": "INV-0042",
        "Date": "2026-01-01",
        "LineItems": line(12.5, "Odd job"),
    }
    run(xero, "xero.create_invoice", by_hand, run_id="by-hand")
    clock.advance(3600)
    began = clock()  # then our run begins
    ours = {
        "Contact": {"ContactNumber": "CL-42"},
        "InvoiceNumber": "INV-0042",
        "Date": "2026-01-01",
        "LineItems": line(4800),
    }
    # When its invoice step writes the same number: Xero refuses it (the first attempt)
    with pytest.raises(PermanentError) as first:
        run(xero, "xero.create_invoice", ours, not_before=began)
    assert first.value.messages == ["Invoice # must be unique."]
    # …and the replay (a retry: the outcome of a try is unknown to it) finds the foreign invoice
    clock.advance(KEY_WINDOW)
    with pytest.raises(PermanentError) as replayed:
        run(xero, "xero.create_invoice", ours, attempt=2, not_before=began)
    # Then the step fails with what differs, and adopts nothing
    assert str(replayed.value) == (
        "Xero already has invoice INV-0042 (Contact 'Other Ltd' (ContactNumber 'CL-9'), line total "
        "12.50, made 2026-01-01T00:00:00Z, before this run began); this step would write Contact "
        "ContactNumber 'CL-42', line total 4,800.00 — not adopted: choose another InvoiceNumber or "
        "remove that invoice in Xero"
    )
    assert replayed.value.messages == [
        "Contact: Xero has 'Other Ltd' (ContactNumber 'CL-9'), this step would write ContactNumber 'CL-42'",
        "line total: Xero has 12.50, this step would write 4,800.00",
        "made: Xero has 2026-01-01T00:00:00Z, before this run began",
    ]
    (only,) = sandbox.invoices(tenant)
    assert (only["Contact"]["ContactID"], only["Total"]) == (contacts["other"], 12.5)


def test_a_foreign_invoice_edited_after_the_run_began_is_still_not_adopted(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, contacts: dict[str, str], clock: FakeClock
) -> None:
    # The date check alone would let it through (someone touched it after our run began): the
    # contact and the amounts still tell it apart.
    began = clock() - 60
    run(
        xero,
        "xero.create_invoice",
        {"Contact": {"ContactID": contacts["other"]}, "InvoiceNumber": "CL-7", "LineItems": line(12.5)},
        run_id="by-hand",
    )
    clock.advance(KEY_WINDOW)
    ours = {"Contact": {"ContactID": contacts["ours"]}, "InvoiceNumber": "CL-7", "LineItems": line(4800)}
    with pytest.raises(PermanentError) as caught:
        run(xero, "xero.create_invoice", ours, attempt=2, not_before=began)
    assert [m.split(":")[0] for m in caught.value.messages] == ["Contact", "line total"]
    assert len(sandbox.invoices(tenant)) == 1


@pytest.mark.parametrize(
    ("amounts", "taxed"),
    [("Exclusive", (4890.0, 464.55, 5354.55)), ("Inclusive", (4465.75, 424.25, 4890.0))],
)
def test_our_invoice_whose_answer_was_lost_is_adopted_with_tax_discounts_and_fractions(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    contacts: dict[str, str],
    clock: FakeClock,
    amounts: str,
    taxed: tuple[float, float, float],
) -> None:
    began = clock() - 60
    ours = {
        "Contact": {"ContactNumber": "CL-42"},
        "InvoiceNumber": "CL-1001",
        "Date": "2026-01-31",
        "DueDate": "2026-02-28",
        "CurrencyCode": "USD",
        "LineAmountTypes": amounts,
        "LineItems": [
            {
                "Description": "Design",
                "Quantity": 3,
                "UnitAmount": 33.3333,
                "DiscountRate": 10,
                "AccountCode": "200",
                "TaxType": "TAX001",
            },
            {"Description": "Fitting", "LineAmount": 4800, "AccountCode": "200", "TaxType": "TAX001"},
        ],
    }
    first = run(xero, "xero.create_invoice", ours, not_before=began)  # Xero made it; the answer was lost
    # Xero computes the tax from the tax type (the demo company's TAX001, 9.5 %, per line): the
    # Total (exclusive) or SubTotal (inclusive) then differs from the lines' sum, and the lines are
    # what is compared.
    assert (first["SubTotal"], first["TotalTax"], first["Total"]) == taxed
    clock.advance(KEY_WINDOW)
    again = run(xero, "xero.create_invoice", ours, attempt=2, not_before=began)
    assert (again["InvoiceID"], again["created"], again["SubTotal"]) == (first["InvoiceID"], False, taxed[0])
    assert len(sandbox.invoices(tenant)) == 1


@pytest.mark.parametrize("whose", ["ours", "other"])
def test_a_contact_named_by_contact_number_is_checked_when_xero_lists_it_without_one(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    contacts: dict[str, str],
    clock: FakeClock,
    whose: str,
) -> None:
    # Xero's documents name their contact by ContactID and Name (the spec's GET /Invoices example
    # has no ContactNumber there): our own invoice must still be recognised, a foreign one not.
    began = clock() - 60
    given = {"ours": {"ContactNumber": "CL-42"}, "other": {"ContactID": contacts["other"]}}[whose]
    first = run(
        xero,
        "xero.create_invoice",
        {"Contact": given, "InvoiceNumber": "CL-77", "LineItems": line(80)},
        not_before=began,
    )
    with sandbox._lock:
        sandbox._tenants[tenant].invoices[first["InvoiceID"]]["Contact"].pop("ContactNumber", None)
    clock.advance(KEY_WINDOW)
    ours = {"Contact": {"ContactNumber": "CL-42"}, "InvoiceNumber": "CL-77", "LineItems": line(80)}
    if whose == "ours":
        again = run(xero, "xero.create_invoice", ours, attempt=2, not_before=began)
        assert (again["InvoiceID"], again["created"]) == (first["InvoiceID"], False)
    else:
        with pytest.raises(PermanentError) as caught:
            run(xero, "xero.create_invoice", ours, attempt=2, not_before=began)
        assert [m.split(":")[0] for m in caught.value.messages] == ["Contact"]
    assert len(sandbox.invoices(tenant)) == 1


# ------------------------------------------------------------ every family
Setup = Callable[[dict[str, Any]], dict[str, Any]]


def _invoice_for(contact: str, amount: float, **extra: Any) -> dict[str, Any]:
    return {"Contact": {"ContactID": contact}, "LineItems": line(amount), **extra}


FAMILIES: list[tuple[str, str, Setup, Setup, tuple[str, ...], str]] = [
    # (action, records, our input, the foreign record's input, the fields that differ, id)
    (
        "xero.create_invoice",
        "invoices",
        lambda f: _invoice_for(f["ours"], 4800, InvoiceNumber="CL-9001"),
        lambda f: _invoice_for(f["other"], 4800, InvoiceNumber="CL-9001"),
        ("Contact",),
        "sales-invoice-number",
    ),
    (
        "xero.create_invoice",
        "invoices",
        lambda f: _invoice_for(f["ours"], 480, Type="ACCPAY", InvoiceNumber="SUP-77"),
        lambda f: _invoice_for(f["ours"], 48, Type="ACCPAY", InvoiceNumber="SUP-77"),
        ("line total",),
        "bill-number",
    ),
    (
        "xero.create_invoice",
        "invoices",
        lambda f: _invoice_for(f["ours"], 500, Reference="Retainer", DueDate="2026-02-28"),
        lambda f: _invoice_for(f["ours"], 500, Reference="Retainer", DueDate="2026-03-31"),
        ("DueDate",),
        "sales-invoice-reference",
    ),
    (
        "xero.create_quote",
        "quotes",
        lambda f: {
            "Contact": {"ContactID": f["ours"]},
            "QuoteNumber": "QU-77",
            "Date": "2026-02-01",
            "LineItems": line(900),
        },
        lambda f: {
            "Contact": {"ContactID": f["other"]},
            "QuoteNumber": "QU-77",
            "Date": "2026-02-01",
            "LineItems": line(900),
        },
        ("Contact",),
        "quote",
    ),
    (
        "xero.create_purchase_order",
        "purchase_orders",
        lambda f: {
            "Contact": {"ContactID": f["ours"]},
            "PurchaseOrderNumber": "PO-77",
            "Date": "2026-01-01",
            "LineItems": [{"Description": "Lamps", "UnitAmount": 60}],
        },
        lambda f: {
            "Contact": {"ContactID": f["ours"]},
            "PurchaseOrderNumber": "PO-77",
            "Date": "2026-01-01",
            "LineItems": [{"Description": "Lamps", "Quantity": 2, "UnitAmount": 60}],
        },
        ("line total",),
        "purchase-order",
    ),
    (
        "xero.create_payment",
        "payments",
        lambda f: {
            "Invoice": {"InvoiceID": f["invoice"]},
            "Account": {"Code": "090"},
            "Amount": 30,
            "Reference": "CL pmt 9",
        },
        lambda f: {
            "Invoice": {"InvoiceID": f["invoice"]},
            "Account": {"Code": "091"},
            "Amount": 30,
            "Reference": "CL pmt 9",
        },
        ("Account",),
        "payment",
    ),
    (
        "xero.create_bank_transfer",
        "bank_transfers",
        lambda f: {
            "FromBankAccount": {"Code": "090"},
            "ToBankAccount": {"Code": "091"},
            "Amount": 50,
            "Reference": "Savings",
        },
        lambda f: {
            "FromBankAccount": {"Code": "091"},
            "ToBankAccount": {"Code": "090"},
            "Amount": 50,
            "Reference": "Savings",
        },
        ("FromBankAccount", "ToBankAccount"),
        "bank-transfer",
    ),
    (
        "xero.create_project",
        "projects",
        lambda f: {"ContactID": f["ours"], "Name": "New Kitchen", "EstimateAmount": 5000},
        lambda f: {"ContactID": f["ours"], "Name": "New Kitchen", "EstimateAmount": 99.99},
        ("EstimateAmount",),
        "project",
    ),
    (
        "xero.add_stock_items",
        "items",
        lambda f: {"Items": [{"Code": "LAMP-1", "Name": "Brass lamp"}], "Mode": "create"},
        lambda f: {"Items": [{"Code": "LAMP-1", "Name": "Paper lantern"}], "Mode": "create"},
        ("Name",),
        "item-create-mode",
    ),
]


@pytest.fixture
def fixtures(xero: XeroClient, contacts: dict[str, str]) -> dict[str, Any]:
    invoice = run(
        xero,
        "xero.create_invoice",
        _invoice_for(contacts["ours"], 100, Status="AUTHORISED", InvoiceNumber="PAY-ME"),
        run_id="setup",
    )
    return {**contacts, "invoice": invoice["InvoiceID"]}


def _count(sandbox: XeroSandbox, records: str, tenant: str) -> int:
    return len(getattr(sandbox, records)(tenant))


@pytest.mark.parametrize(
    ("name", "records", "ours", "foreign", "field", "case"), FAMILIES, ids=[f[-1] for f in FAMILIES]
)
def test_a_record_with_our_key_that_is_not_ours_fails_the_retry_and_nothing_is_written(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    clock: FakeClock,
    fixtures: dict[str, Any],
    name: str,
    records: str,
    ours: Setup,
    foreign: Setup,
    field: tuple[str, ...],
    case: str,
) -> None:
    began = clock() - 60
    # Someone else's record with our key, made after our run began (so only the comparison can
    # tell it apart), while our step's first try failed without writing (its answer: a time-out).
    run(xero, name, foreign(fixtures), run_id="someone-else")
    before = _count(sandbox, records, tenant)
    clock.advance(KEY_WINDOW)
    with pytest.raises(PermanentError) as caught:
        run(xero, name, ours(fixtures), attempt=2, not_before=began)
    assert "— not adopted:" in str(caught.value)
    assert tuple(m.split(":")[0] for m in caught.value.messages) == field, caught.value.messages
    assert _count(sandbox, records, tenant) == before  # nothing written


@pytest.mark.parametrize(
    ("name", "records", "ours", "foreign", "field", "case"), FAMILIES, ids=[f[-1] for f in FAMILIES]
)
def test_our_record_whose_answer_was_lost_is_adopted_not_duplicated(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    clock: FakeClock,
    fixtures: dict[str, Any],
    name: str,
    records: str,
    ours: Setup,
    foreign: Setup,
    field: tuple[str, ...],
    case: str,
) -> None:
    began = clock() - 60
    before = _count(sandbox, records, tenant)
    first = run(xero, name, ours(fixtures), not_before=began)  # Xero wrote it; the answer was lost
    clock.advance(KEY_WINDOW)
    again = run(xero, name, ours(fixtures), attempt=2, not_before=began)
    assert _count(sandbox, records, tenant) == before + 1
    if name == "xero.add_stock_items":
        assert (again["created"], again["ItemIDs"]) == (0, first["ItemIDs"])
    else:
        assert again["created"] is False
        assert {k: v for k, v in again.items() if k != "created"} == {
            k: v for k, v in first.items() if k != "created"
        }


def test_an_item_made_before_the_run_is_not_taken_for_our_create_even_when_it_looks_the_same(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, clock: FakeClock
) -> None:
    item = {"Items": [{"Code": "LAMP-1", "Name": "Brass lamp"}], "Mode": "create"}
    run(xero, "xero.add_stock_items", item, run_id="last-year")
    clock.advance(3600)
    began = clock()
    # Mode create: the first try is refused by Xero, so a retry must not succeed with it either.
    with pytest.raises(PermanentError) as caught:
        run(xero, "xero.add_stock_items", item, attempt=2, not_before=began)
    assert caught.value.messages == ["made: Xero has 2026-01-01T00:00:00Z, before this run began"]
    assert "use Mode: upsert to update that item" in str(caught.value)
    # Mode upsert takes over the item with the code by design: the code names the item.
    upserted = run(xero, "xero.add_stock_items", {"Items": item["Items"]}, attempt=2, not_before=began)
    assert (upserted["created"], upserted["updated"], len(sandbox.items(tenant))) == (0, 1, 1)


# ------------------------------------------------------------ the comparison itself
def test_line_totals_follow_xeros_rounding() -> None:
    lines = [
        LineItem(Description="a", Quantity=3, UnitAmount=33.3333, DiscountRate=10),  # 89.99991
        LineItem(Description="b", LineAmount=10.005),  # no unit amount: the line amount, to the cent
        LineItem(Description="c", UnitAmount=0.125),  # quantity 1 when omitted
        LineItem(Description="d"),  # nothing: 0
    ]
    assert line_total(lines, unitdp=4) == Decimal("90.00") + Decimal("10.01") + Decimal("0.13")
    # Quotes and purchase orders are sent without unitdp: Xero keeps 2 decimals of the unit amount.
    assert line_total([LineItem(Description="x", Quantity=100, UnitAmount=10.125)], unitdp=2) == Decimal(
        "1013.00"
    )


def test_a_line_priced_by_xero_leaves_the_total_uncompared() -> None:
    # ItemCode without UnitAmount: Xero prices the line from the item, so our own invoice's
    # SubTotal is not what the step's lines add up to, and must not refuse the adoption.
    data = registry()["xero.create_invoice"].input_model.model_validate(
        {
            "Type": "ACCREC",
            "Contact": {"ContactID": "0f8d1d9b-0000-4000-8000-000000000001"},
            "LineItems": [{"Description": "Lamp", "ItemCode": "LAMP-1", "Quantity": 2}],
        }
    )
    found = {
        "Type": "ACCREC",
        "Contact": {"ContactID": "0f8d1d9b-0000-4000-8000-000000000001"},
        "SubTotal": 150.0,
        "Status": "DRAFT",
    }
    began = types.SimpleNamespace(not_before=0.0)
    assert xero_differences(began, data, found, ("Type", "Contact", "LineItems")) == []
    priced = data.model_copy(update={"LineItems": [LineItem(Description="Lamp", Quantity=2, UnitAmount=10)]})
    assert [d.field for d in xero_differences(began, priced, found, ("LineItems",))] == ["line total"]


def test_values_compare_to_the_cent_by_day_and_case_insensitively() -> None:
    assert compare("Amount", 4800, 4800.004) is None
    assert compare("Amount", 4800, 4800.01) == Difference("Amount", "4,800.01", "4,800.00")
    assert compare("Date", date(2026, 1, 31), "2026-01-31T00:00:00") is None
    assert compare("Reference", "Retainer ", "retainer") is None
    assert compare("DueDate", None, "2026-01-31") is None  # not given: Xero decides, not compared


def test_a_matching_candidate_is_adopted_even_after_one_that_differs() -> None:
    def diffs(record: dict[str, Any]) -> list[Difference]:
        return [] if record["Total"] == 4800 else [Difference("line total", "12.50", "4,800.00")]

    common = {"service": "xero", "what": "invoice", "name_of": lambda r: r["id"], "hint": "h"}
    assert adopt([{"id": "a", "Total": 12.5}, {"id": "b", "Total": 4800}], diffs, **common) == {
        "id": "b",
        "Total": 4800,
    }
    assert adopt([], diffs, **common) is None
    with pytest.raises(PermanentError, match="Xero already has invoice a"):
        adopt([{"id": "a", "Total": 12.5}], diffs, **common)


# ------------------------------------------------------------ through the engine: the replay
def test_the_replay_of_a_run_refused_for_a_taken_number_fails_again_instead_of_adopting() -> None:
    from clientary_xero.engine.runner import replay
    from clientary_xero.local.environment import LocalEnvironment
    from clientary_xero.storage.queue import StepQueue
    from clientary_xero.workflows.loader import read_document

    workflow = ROOT / "shared" / "clientary_xero" / "local" / "samples" / "invoice_to_xero.yaml"
    with LocalEnvironment(max_attempts=3) as env:
        env.put_workflow(read_document(workflow))
        tenant = env.xero_tenant_id()
        customer = env.clientary.seed_client("Harbour Lights Ltd")
        invoice = env.clientary.add_invoice(
            customer["id"], [{"title": "Lighting design", "quantity": 1, "price": 4800}], status=1
        )
        # Given the invoice's number already used in Xero, typed by hand for another contact
        other = env.xero.seed_contact(tenant, Name="Other Ltd")
        with env.xero._lock:
            saved, errors = env.xero._save_invoice(
                env.xero._tenants[tenant],
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": other["ContactID"]},
                    "InvoiceNumber": f"CL-{invoice['number']}",
                    "LineItems": [{"Description": "Odd job", "Quantity": 1, "UnitAmount": 12.5}],
                },
                "PUT",
                2,
            )
        assert errors == []
        # When the run is refused by Xero, then replayed
        assert env.push("clientary.new_invoice", invoice["id"])["statusCode"] == 202
        env.drain()
        (run,) = env.state.list_runs()
        assert (run["status"], run["failed_step"]) == ("FAILED", "invoice")
        assert run["error"]["messages"] == ["Invoice # must be unique."]
        replay(env.state, StepQueue(), run["run_id"])
        env.drain()
        # Then the replay fails too, saying why, and the foreign invoice is nobody's output
        (run,) = env.state.list_runs()
        assert run["status"] == "FAILED", run
        assert run["error"]["message"].startswith(f"Xero already has invoice CL-{invoice['number']} (")
        assert "— not adopted: choose another InvoiceNumber" in run["error"]["message"]
        step = next(s for s in env.state.get_steps(run["run_id"]) if s["step_id"] == "invoice")
        assert step["status"] == "FAILED" and not step.get("output")
        assert [i["InvoiceID"] for i in env.xero.invoices(tenant)] == [saved["InvoiceID"]]
