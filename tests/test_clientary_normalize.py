"""Clientary records → one shape: dates, timestamps, money, ``?`` keys, status names, items."""

from __future__ import annotations

import copy
import json

import pytest

from clientary_xero.connectors.clientary.normalize import (
    normalize_invoice,
    normalize_record,
    parse_date,
    parse_timestamp,
    to_datetime,
    to_number,
)
from tests.clientary_fixtures import load_sample, sample_names


# ------------------------------------------------------------------------------ dates
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2011/07/26", "2011-07-26"),
        ("2011-07-26", "2011-07-26"),
        ("2011/7/6", "2011-07-06"),
        ("2012-11-08T21:20:47Z", "2012-11-08"),
        ("2013-02-06T21:23:21-08:00", "2013-02-06"),  # its own offset's date, not UTC's (07 Feb)
        ("2011/06/29 23:01:08 -0700", "2011-06-29"),
        (None, None),
        ("", None),
    ],
)
def test_parse_date_reads_every_clientary_form(raw: str | None, expected: str | None) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2012-11-08T21:20:47Z", "2012-11-08T21:20:47+00:00"),
        ("2013-02-06T21:23:21-08:00", "2013-02-06T21:23:21-08:00"),
        ("2011/06/29 23:01:08 -0700", "2011-06-29T23:01:08-07:00"),
        ("2024-11-01T00:05:02.000+00:00", "2024-11-01T00:05:02+00:00"),
        ("2024-11-01T00:05:02.250+05:30", "2024-11-01T00:05:02.250000+05:30"),
        ("2013-02-06 21:23:21 UTC", "2013-02-06T21:23:21+00:00"),
        ("2011/07/26", "2011-07-26T00:00:00+00:00"),
        ("2011-07-26", "2011-07-26T00:00:00+00:00"),
    ],
)
def test_parse_timestamp_gives_iso_with_offset(raw: str, expected: str) -> None:
    assert parse_timestamp(raw) == expected


def test_timestamps_in_different_forms_compare_by_instant() -> None:
    assert to_datetime("2011/06/29 23:01:08 -0700") == to_datetime("2011-06-30T06:01:08Z")


@pytest.mark.parametrize(
    "raw", ["26/07/2011", "yesterday", "2011-13-01", "2011-02-30", "2011-07-26T25:00:00Z", 12]
)
def test_garbage_dates_raise(raw: object) -> None:
    with pytest.raises(ValueError):
        to_datetime(raw)


# ------------------------------------------------------------------------------ numbers
@pytest.mark.parametrize(
    ("raw", "places", "expected"),
    [
        ("49.99", 2, 49.99),
        (49.99, 2, 49.99),
        (" 20 ", 2, 20.0),
        (129.15, 2, 129.15),
        ("0.005", 2, 0.01),  # half-up, not banker's rounding
        (2.675, 2, 2.68),  # the float 2.675 is 2.67499999…; Decimal(str()) keeps the written value
        ("8.875", None, 8.875),
        (None, 2, None),
        ("", 2, None),
    ],
)
def test_to_number(raw: object, places: int | None, expected: float | None) -> None:
    assert to_number(raw, places) == expected


@pytest.mark.parametrize("raw", ["abc", True, "NaN", "1,234.50", [1]])
def test_to_number_rejects_non_numbers(raw: object) -> None:
    with pytest.raises(ValueError):
        to_number(raw)


# ------------------------------------------------------------------------------ records
def test_question_mark_keys_are_also_exposed_without_it() -> None:
    record = normalize_record({"billed?": True, "hours": "1.5", "nested": [{"taxable?": False}]})
    assert record["billed"] is True and record["billed?"] is True
    assert record["nested"][0]["taxable"] is False
    assert record["hours"] == 1.5


def test_an_existing_plain_key_wins_over_the_question_mark_one() -> None:
    assert normalize_record({"billed": False, "billed?": True})["billed"] is False


def test_an_unparseable_value_is_kept_as_sent() -> None:
    record = normalize_record({"date": "someday", "amount": "lots", "updated_at": "never"})
    assert record == {"date": "someday", "amount": "lots", "updated_at": "never"}


@pytest.mark.parametrize("raw", [1e308, -1e308, "9" * 32, "1e400"])
def test_an_amount_too_big_for_cents_or_a_float_is_kept_as_sent_not_an_exception(raw: object) -> None:
    """Issue 7: a signed contract push is the record itself; 1e308 in a money field crashed the
    route with decimal.InvalidOperation (rounding to cents needs over 28 digits)."""
    with pytest.raises(ValueError):
        to_number(raw, 2)
    assert normalize_record({"amount": raw}) == {"amount": raw}


def test_an_item_whose_amount_is_too_big_to_round_has_no_amount() -> None:
    (item,) = normalize_invoice({"id": 1, "invoice_items": [{"quantity": 1e20, "price": 1e20}]})[
        "invoice_items"
    ]
    assert item["amount"] is None and item["quantity"] == 1e20


# ------------------------------------------------------------------------------ invoices
def _invoice(**fields: object) -> dict[str, object]:
    return {
        "id": 1,
        "status": 1,
        "date": "2011/07/26",
        "due_date": "2011-08-25",
        "total_cost": "129.15",
        "created_at": "2013-02-06T21:23:21-08:00",
        "updated_at": "2011/06/29 23:01:08 -0700",
        "invoice_items": [],
        **fields,
    }


def test_invoice_dates_money_and_timestamps() -> None:
    invoice = normalize_invoice(_invoice())
    assert invoice["date"] == "2011-07-26"
    assert invoice["due_date"] == "2011-08-25"
    assert invoice["total_cost"] == 129.15 and invoice["total"] == 129.15
    assert invoice["created_at"] == "2013-02-06T21:23:21-08:00"
    assert invoice["updated_at"] == "2011-06-29T23:01:08-07:00"


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (0, "draft"),
        (1, "sent"),
        (2, "viewed"),
        (3, "cancelled"),
        (4, "paid"),
        (5, "pending"),
        (9, "unknown"),
        ("4", "paid"),
        (None, "unknown"),
        ("x", "unknown"),
    ],
)
def test_status_names(status: object, name: str) -> None:
    invoice = normalize_invoice(_invoice(status=status))
    assert invoice["status_name"] == name
    if name not in ("unknown",):
        assert invoice["status"] == int(str(status))


def test_items_get_amounts_and_taxable_flags() -> None:
    invoice = normalize_invoice(
        _invoice(
            invoice_items=[
                {"id": 1, "title": "Design", "quantity": 3, "price": "49.99", "taxable?": True},
                {"id": 2, "title": "Hosting", "quantity": "0.5", "price": 20, "taxable": False},
                {"id": 3, "title": "Third", "quantity": 3, "price": 0.1},
            ]
        )
    )
    design, hosting, third = invoice["invoice_items"]
    assert design == {
        "id": 1,
        "title": "Design",
        "quantity": 3.0,
        "price": 49.99,
        "taxable?": True,
        "taxable": True,
        "is_section_header": False,
        "amount": 149.97,
    }
    assert (hosting["amount"], hosting["taxable"]) == (10.0, False)
    assert third["amount"] == 0.3  # not 0.30000000000000004
    assert third["taxable"] is False


@pytest.mark.parametrize(
    ("item", "header"),
    [
        ({"item_type": 0, "title": "Phase 1", "quantity": 0, "price": 0}, True),
        ({"item_type": 0, "title": "Odd header", "quantity": 2, "price": 5}, True),  # the type decides
        ({"item_type": 3, "title": "Free sample", "quantity": 1, "price": 0}, False),
        ({"item_type": 1, "title": "Other type", "quantity": 0, "price": 0}, False),
        ({"title": "Section without type"}, True),
        ({"title": "Zero everything", "quantity": 0, "price": 0}, True),
        ({"title": "Free line", "quantity": 1, "price": 0}, False),
        ({"title": "Priced, no quantity", "price": 12}, False),
    ],
)
def test_section_header_rule(item: dict[str, object], header: bool) -> None:
    (normalized,) = normalize_invoice(_invoice(invoice_items=[item]))["invoice_items"]
    assert normalized["is_section_header"] is header
    if header:
        assert normalized["amount"] == 0.0


def test_client_id_comes_from_the_nested_client_when_missing() -> None:
    invoice = normalize_invoice(_invoice(client={"id": 77, "name": "Acme"}))
    assert invoice["client_id"] == 77
    assert invoice["client"] == {"id": 77, "name": "Acme"}


def test_the_raw_record_is_not_modified() -> None:
    raw = load_sample("invoice_sent_taxed.json")
    before = copy.deepcopy(raw)
    normalize_invoice(raw)
    assert raw == before


@pytest.mark.parametrize("name", sample_names())
def test_samples_normalise_to_json_with_iso_dates_and_consistent_amounts(name: str) -> None:
    invoice = normalize_invoice(load_sample(name))
    json.dumps(invoice)  # plain JSON for JSONata and the State table
    assert len(invoice["date"]) == 10 and invoice["date"][4] == "-"
    assert "T" in invoice["updated_at"] and invoice["updated_at"][-6] in "+-"
    lines = [i for i in invoice["invoice_items"] if not i["is_section_header"]]
    assert round(sum(i["amount"] for i in lines), 2) == invoice["subtotal"]
    for payment in invoice.get("payments", []):
        assert isinstance(payment["amount"], float)
        assert payment["received_on"][4] == "-"


def test_samples_cover_the_formats_clientary_mixes() -> None:
    names = sample_names()
    assert len(names) >= 3
    raw_dates = {load_sample(n)["date"][4] for n in names}
    assert raw_dates == {"/", "-"}
    taxed = normalize_invoice(load_sample("invoice_sent_taxed.json"))
    assert taxed["total_cost"] == 3938.6 and taxed["status_name"] == "viewed"
    assert [i["is_section_header"] for i in taxed["invoice_items"]] == [True, False, False, True, False]


# ------------------------------------------------------------------------------ the other resources
def test_other_resources_have_one_shape_each() -> None:
    from clientary_xero.connectors.clientary import normalize as N

    project = N.normalize_project(
        {"id": 1, "status": "2", "rate": "150.5", "end_date": "2024/12/31", "client": {"id": 9, "name": "A"}}
    )
    assert project == {**project, "status": 2, "status_name": "completed", "rate": 150.5, "client_id": 9}
    assert project["end_date"] == "2024-12-31"
    assert N.normalize_client({"id": 2, "status": 7})["status_name"] == "unknown"
    assert N.normalize_client({"id": 2})["status_name"] == "unknown"
    estimate = N.normalize_estimate(
        {
            "id": 3,
            "status": 6,
            "total_cost": "40.10",
            "estimate_items": [{"title": "A", "quantity": 2, "price": "20.05", "taxable?": True}],
        }
    )
    assert estimate["status_name"] == "accepted" and estimate["total"] == 40.1
    assert estimate["estimate_items"][0] == {
        **estimate["estimate_items"][0],
        "amount": 40.1,
        "taxable": True,
        "is_section_header": False,
    }
    entry = N.normalize_time_entry(
        {"id": 4, "billed?": True, "hours": "1.25", "date": "2011/07/29", "cost": 62.5}
    )
    assert entry["billed"] is True and entry["hours"] == 1.25 and entry["date"] == "2011-07-29"
    task = N.normalize_task({"id": 5, "complete": "true", "created_at": "2012-11-08T21:20:47Z"})
    assert task["complete"] is True and task["created_at"] == "2012-11-08T21:20:47+00:00"
    payment = N.normalize_payment(
        {"id": 6, "amount": "20", "received_on": "2017-07-22", "transaction_fee_amount": 0}
    )
    assert payment["amount"] == 20.0 and payment["received_on"] == "2017-07-22"
    expense = N.normalize_expense({"id": 7, "amount": 129.155, "incurred_on": "2011/03/02"})
    assert expense["amount"] == 129.16 and expense["incurred_on"] == "2011-03-02"
