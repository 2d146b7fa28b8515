"""JSONata evaluation: literals vs expressions, rendering, bounds, references."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

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


def evaluation_error(source: str) -> str:
    """The message of the error ``source`` stops with.

    The time bound is set far out: these tests are about the size bounds, which must stop the
    expression however slow the machine is (under load the 1 s default could stop it first)."""
    with pytest.raises(ExpressionError) as info:
        E.evaluate(source, {}, timeout_ms=120_000)
    return str(info.value)


def refusal_and_peak(source: str) -> tuple[str, int]:
    """``evaluation_error``'s message, and the peak memory (bytes) the evaluation used."""
    import tracemalloc

    tracemalloc.start()
    try:
        message = evaluation_error(source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return message, peak


def test_a_huge_pad_is_refused_before_it_is_built() -> None:
    message, peak = refusal_and_peak("$length($pad('x', 2000000000))")
    assert message == ("$pad would make a string of more than 1000000 characters (the bound for a string)")
    assert peak < 20_000_000  # was a 2 GB string (14 s), or a MemoryError


def test_string_doubling_stops_at_the_string_bound() -> None:
    doubling = "($f := function($s, $n){ $n = 0 ? $s : $f($s & $s, $n - 1) }; $length($f('x', %d)))"
    message, peak = refusal_and_peak(doubling % 26)
    assert message == (
        "the & operator would make a string of more than 1000000 characters (the bound for a string)"
    )
    assert peak < 20_000_000  # unbounded, 2 ** 26 characters (64 MB) and more on the way
    assert E.evaluate(doubling % 19, {}) == 524288


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "$replace($pad('', 10000, 'x'), 'x', $pad('', 100000, 'y'))",
            "$replace would make a string of more than 1000000 characters (the bound for a string)",
        ),
        (
            "$replace($pad('', 1000, 'x'), /(x)/, $pad('', 2002, '$1'))",
            "$replace would make a string of more than 1000000 characters (the bound for a string)",
        ),
        (
            "$join([1..1000].$string(), $pad('', 1000000, '-'))",
            "$join would make a string of more than 1000000 characters (the bound for a string)",
        ),
        (
            "$count([1..100000].$pad('x', 999999))",
            "expression built more than 64000000 characters of strings (the bound for one evaluation; "
            "$join a list rather than append with & in a loop)",
        ),
    ],
)
def test_string_amplifiers_are_bounded(source: str, message: str) -> None:
    assert evaluation_error(source) == message


def test_ordinary_string_work_is_within_the_bounds() -> None:
    assert E.evaluate("$replace('a-b-c', /(\\w)/, '<$1>')", {}) == "<a>-<b>-<c>"
    far = 60_000  # the size bounds under test, not the time bound (a loaded machine is slow)
    assert E.evaluate("$replace('abcabc', 'b', 'XX', 1)", {}) == "aXXcabc"
    assert E.evaluate("$join(['a', 'b'], ', ')", {}) == "a, b"
    assert E.evaluate("$pad('7', -5, '0')", {}) == "00007"
    assert E.evaluate("$length($pad('x', 999999) & 'y')", {}, timeout_ms=far) == 1_000_000
    items = [{"title": "x" * 100}] * 1000
    reduce = "$length($reduce(items, function($a, $i){ $a & $i.title }, ''))"
    assert E.evaluate(reduce, {"items": items}, timeout_ms=far) == (100_000)


def test_running_out_of_memory_is_an_expression_error() -> None:
    """60 strings of 1 MB, within every bound, kept in one array: the address space is capped at
    16 MB above what the process has mapped once loaded."""
    script = (
        "from clientary_xero.errors import ExpressionError\n"
        "from clientary_xero.workflows import expressions as E\n"
        "E.evaluate('$match(\"a\", /a/)', {})  # load jsonata and re2 before the cap\n"
        "import resource\n"
        "mapped = int(next(l for l in open('/proc/self/status') if l.startswith('VmSize')).split()[1])\n"
        "cap = (mapped << 10) + (16 << 20)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (cap, cap))\n"
        "source = \"$count([1..60].$pad('', 999999, 'x'))\"\n"
        "try:\n"
        "    E.evaluate(source, {}, timeout_ms=60_000)\n"
        "except ExpressionError as exc:\n"
        "    print(exc)\n"
    )
    shared = Path(__file__).resolve().parents[1] / "shared"
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(shared)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "expression ran out of memory (it builds too much data)\n",
        "",
    )


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


DOUBLING = "($f := function($x, $n){ $n = 0 ? $x : $f($append($x, $x), $n - 1) }; $count($f([1], %d)))"
ARRAY_BOUND = (
    "expression handled more than 10000000 array items (the bound for one evaluation, counting each "
    "array its steps make or pass on; an array that doubles in a loop reaches it)"
)


@pytest.mark.parametrize(
    "source",
    [
        DOUBLING % 30,  # 2**30 items: 8 GB of references
        "($x := [1..100000]; $count($x.($x)))",  # a path flattening 10**10 items
        "$count([1..100000].([1..100000]))",
        "($x := [1..3000]; $count($zip($x.$x, $x.$x)))",
    ],
)
def test_array_growth_stops_at_the_array_bound(source: str) -> None:
    assert evaluation_error(source) == ARRAY_BOUND


def test_ordinary_array_work_is_within_the_array_bound() -> None:
    assert E.evaluate(DOUBLING % 20, {}) == 1 << 20
    lines = [{"title": f"line {i}", "quantity": i % 7} for i in range(2800)]
    collect = "$count($reduce(lines, function($a, $l){ $append($a, $l.title) }, []))"
    assert E.evaluate(collect, {"lines": lines}, timeout_ms=60_000) == 2800
    mapping = "$count([lines[quantity > 0].{'Description': title, 'Quantity': quantity}])"
    assert E.evaluate(mapping, {"lines": lines}, timeout_ms=60_000) == 2400


def test_a_variable_handed_on_is_not_charged_as_a_new_array() -> None:
    # $lines as an argument makes no array; charged per line it counted 3,000 x 3,000 x 2 and
    # failed a mapping of an ordinary (if long) invoice.
    lines = [{"title": f"line {i}"} for i in range(3000)]
    numbered = (
        "($l := lines; $count($l.{'Description': title & ' of ' & $string($count($l)), "
        "'Last': $count($l) = 3000}))"
    )
    assert E.evaluate(numbered, {"lines": lines}, timeout_ms=60_000) == 3000


SLOW = "{% $sum([1..300].($ * 2)) %}"  # tens of milliseconds, far within its own bound


def test_a_whole_input_is_bounded_not_only_each_expression() -> None:
    assert E.render({"F0": SLOW}, {}, timeout_ms=5000) == {"F0": 90300}
    fields = {f"F{i}": SLOW for i in range(100)}
    with pytest.raises(E.ExpressionTimeout) as info:
        E.render(fields, {}, timeout_ms=5000, total_timeout_ms=300)
    assert re.fullmatch(
        r"input\.F\d+: the whole input ran longer than its time bound \(300 ms for all its "
        r"expressions together\)",
        str(info.value),
    ), str(info.value)


def test_the_whole_input_bound_is_five_expressions_by_default() -> None:
    # Each expression well inside its own 200 ms, all of them together seconds of work on any
    # machine: the whole input's bound (1 s) must stop the render (a quick machine got through
    # 1,000 sums of 30 within the second).
    fields = {"Lines": [{"Amount": "{% $sum([1..1000].($ * 2)) %}"} for _ in range(1000)]}
    with pytest.raises(E.ExpressionTimeout) as info:
        E.render(fields, {}, timeout_ms=200)
    assert re.fullmatch(
        r"input\.Lines\[\d+\]\.Amount: the whole input ran longer than its time bound \(1000 ms for "
        r"all its expressions together\)",
        str(info.value),
    ), str(info.value)


def test_an_expression_over_its_own_bound_in_a_render_says_so() -> None:
    runaway = "{% ($f := function($n){ $f($n + 1) }; $f(0)) %}"
    with pytest.raises(E.ExpressionTimeout) as info:
        E.render({"A": "{% 1 %}", "B": runaway}, {}, timeout_ms=200, max_depth=10_000)
    assert str(info.value) == "input.B: expression ran longer than its time bound (200 ms)"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("$fromMillis(1e20)", "expression failed: OSError: "),
        ("true and $fromMillis(1e20)", "expression failed: OSError: "),
        # jsonata-python turned what an and/or operand raised into a bare "Unexpected"
        (
            "$exists(x) or $length($pad('x', 2000000000))",
            "$pad would make a string of more than 1000000 characters (the bound for a string)",
        ),
    ],
)
def test_any_failure_inside_the_evaluator_is_an_expression_error(source: str, message: str) -> None:
    """The issue's case: a filter of $fromMillis(invoice.total_cost * 1e15) on an invoice of
    100,000 raised an OSError nothing caught, and every later poll failed on it."""
    with pytest.raises(ExpressionError) as info:
        E.evaluate(source, {})
    assert str(info.value).startswith(message)


ODD_VALUES: list[object] = [None, 1e20, "", [1, "a", None], {"a": {"b": 1}}]


def test_every_built_in_on_odd_values_returns_or_fails_as_an_expression_error() -> None:
    """Each built-in with each pair of odd values: jsonata-python raised RuntimeError,
    AttributeError or OSError from seven of them ($formatInteger, $parseInteger, $fromMillis,
    $formatNumber, $join, $contains, $split)."""
    import jsonata

    names = sorted(
        name
        for name, function in jsonata.Jsonata.static_frame.bindings.items()
        if isinstance(function, jsonata.Jsonata.JNativeFunction)
    )
    escaped: dict[str, str] = {}
    for name in names:
        for a in ODD_VALUES:
            for b in ODD_VALUES:
                try:
                    E.evaluate(f"${name}(v.a, v.b)", {"v": {"a": a, "b": b}}, timeout_ms=5000)
                except ExpressionError:
                    pass
                except Exception as exc:  # what the test looks for
                    escaped[f"${name}({a!r}, {b!r})"] = type(exc).__name__
    assert len(names) > 60
    assert escaped == {}


FUZZ_TOKENS = [
    *["$match(", "$replace(", "$split(", "$contains(", "$eval(", "$fromMillis(", "$toMillis(", "$pad("],
    *["/", "/(a+)+$/", "/a/i", "/[/", "/\\1/", "(", ")", "[", "]", "{", "}", ",", ";", ":", "?", ":="],
    *["'x'", '"a"', "'$0'", "'[Y]'", "1e308", "-1", "1000000", "null", "true", "[1..10]", "t"],
    *["$", "$$", ".", "..", "&", "and", "or", "~>", "|", "^(", "%", "#", "@", "*", "**", "in", "!="],
    *["$f", "function($x){$x}", "$sum(", "$append(", "$string(", "$number(", "\\", "`a b`"],
]


def test_random_token_soup_parses_or_fails_as_an_expression_error() -> None:
    """Seeded sequences of JSONata tokens: jsonata-python let re.error (from a regex literal
    Python's re could not compile) and IndexError (from its tokenizer) escape from a few percent."""
    rng = random.Random(7)
    escaped: dict[str, str] = {}
    for _ in range(2000):
        source = " ".join(rng.choice(FUZZ_TOKENS) for _ in range(rng.randint(1, 9)))
        for evaluating in (False, True):
            try:
                if evaluating:
                    E.evaluate(source, {"t": "aaaa!"}, timeout_ms=300)
                else:
                    E.parse(source)
            except ExpressionError:
                pass
            except Exception as exc:  # what the test looks for
                escaped[source] = f"{type(exc).__name__}: {exc}"
    assert escaped == {}
