"""JSONata evaluation: literals vs expressions, rendering, bounds, references."""

from __future__ import annotations

import pytest

from clientary_xero.errors import ExpressionError
from clientary_xero.workflows import expressions as E


def test_only_wrapped_strings_are_expressions() -> None:
    assert E.expression_source("{% invoice.total %}") == "invoice.total"
    assert E.expression_source("  {%\n a \n%}  ") == "a"
    assert E.expression_source("invoice.total") is None
    assert E.expression_source("{% unclosed") is None
    assert E.expression_source(42) is None


def test_render_maps_fields_and_keeps_literals() -> None:
    context = {
        "invoice": {"client_id": 7, "items": [{"t": "a", "q": 2, "p": 5.5}, {"t": "b", "q": 1, "p": 1}]}
    }
    rendered = E.render(
        {
            "Type": "ACCREC",
            "ContactNumber": "{% 'CL-' & $string(invoice.client_id) %}",
            "LineItems": "{% [invoice.items.{'Description': t, 'LineAmount': q * p}] %}",
            "Missing": "{% invoice.nothing %}",
            "Nested": {"Literal": "{not an expression}"},
        },
        context,
    )
    assert rendered == {
        "Type": "ACCREC",
        "ContactNumber": "CL-7",
        "LineItems": [{"Description": "a", "LineAmount": 11}, {"Description": "b", "LineAmount": 1}],
        "Nested": {"Literal": "{not an expression}"},
    }


def test_render_error_names_the_place() -> None:
    with pytest.raises(ExpressionError, match=r"input\.LineItems\[1\]: .*"):
        E.render({"LineItems": [1, "{% $number('x') %}"]}, {})


def test_runaway_recursion_is_stopped_by_the_depth_bound() -> None:
    with pytest.raises(ExpressionError, match="depth bound"):
        E.evaluate("($f := function($n){ $n + $f($n + 1) }; $f(0))", {}, max_depth=50)


def test_runaway_loop_is_stopped_by_the_time_bound() -> None:
    with pytest.raises(ExpressionError, match="time bound"):
        E.evaluate("($f := function($n){ $f($n + 1) }; $f(0))", {}, timeout_ms=200, max_depth=10_000)


def test_huge_range_is_refused_before_it_is_built() -> None:
    with pytest.raises(ExpressionError, match="range"):
        E.evaluate("$sum([1..50000000])", {})


def test_parse_error_says_where() -> None:
    with pytest.raises(ExpressionError, match="position"):
        E.parse("invoice.total >")


def test_step_references_come_from_the_syntax_tree() -> None:
    parsed = E.parse("steps.contact.ContactID & $string(steps.inv.Total) & 'steps.fake'")
    assert E.step_references(parsed) == {"contact", "inv"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (0, False),
        (1, True),
        ("", False),
        ("x", True),
        ([], False),
        ([0, 1], True),
        ({}, False),
        (True, True),
        (False, False),
    ],
)
def test_truthiness_follows_jsonata_boolean(value: object, expected: bool) -> None:
    assert E.truthy(value) is expected
