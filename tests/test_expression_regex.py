"""Regular expressions in workflow expressions run on RE2: linear in the text, JSONata's semantics,
and a pattern RE2 cannot run is refused when the workflow is validated."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clientary_xero.errors import ExpressionError, WorkflowInvalid
from clientary_xero.workflows import expressions as E
from clientary_xero.workflows import regex
from clientary_xero.workflows.validate import parse_workflow
from tests.test_engine import Harness, workflow
from tests.test_workflow_model import VALID

# Python's re takes about 2**n steps to fail /(a+)+$/ on n a's and a '!': with 40 that is hours.
HOSTILE = "a" * 40 + "!"


def regex_literal(source: str) -> Any:
    """The pattern object the parser made for the expression ``source`` (a lone regex literal)."""
    return E.parse(source).ast.value


def test_a_regex_literal_is_compiled_by_re2() -> None:
    pattern = regex_literal("/(a+)+$/i")
    assert isinstance(pattern, regex.Pattern)
    assert type(pattern._compiled).__module__ == "re2"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("$exists($match(title, /(a+)+$/))", False),
        ("$contains(title, /(a+)+$/)", False),
        ("$replace(title, /(a+)+$/, 'x') = title", True),
        ("$count($split(title, /(a+)+$/))", 1),
        ("$count($match(title & $pad('', 5000, 'a'), /(a+)+$/))", 1),
    ],
)
def test_a_catastrophic_pattern_runs_in_linear_time(source: str, expected: Any) -> None:
    assert E.evaluate(source, {"title": HOSTILE}) == expected


def test_a_catastrophic_filter_filters_the_record(aws: Any) -> None:
    """The issue's case: the filter decides (FILTERED), it does not run until the Lambda time-out."""
    from tests.engine_helpers import echo_action

    with echo_action() as echo:
        h = Harness(aws, echo)
        h.put(workflow(filter="{% $exists($match(invoice.number, /(a+)+$/)) %}"))
        (start,) = h.deliver(number=HOSTILE)
    assert (start.status, start.detail) == ("FILTERED", "the filter rejected the record")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # $match: match, index, groups (the captures); a group that took no part is null
        (
            "$match('ab12cd345', /([a-z]+)(\\d+)/)",
            [
                {"match": "ab12", "index": 0, "groups": ["ab", "12"]},
                {"match": "cd345", "index": 4, "groups": ["cd", "345"]},
            ],
        ),
        ("$match('ab', /a(x)?/).groups", [None]),
        ("$match('a1a2a3', /a\\d/, 2).match", ["a1", "a2"]),
        ("$match('été', /t/).index", 1),  # in characters, not UTF-8 bytes
        # flags: i and m
        ("$match('ABC', /b/i).match", "B"),
        ("$exists($match('ABC', /b/))", False),
        ("$match('x\\nab', /^a/m).index", 2),
        ("$exists($match('x\\nab', /^a/))", False),
        ("$exists($match('ab\\n', /b$/))", False),  # $ is the end of the text, as in JavaScript
        # $replace: $0, $1…, $$, a limit, a function
        ("$replace('John Smith', /(\\w+)\\s(\\w+)/, '$2, $1')", "Smith, John"),
        ("$replace('265USD', /([0-9]+)USD/, '$$$1')", "$265"),
        ("$replace('abc', /b/, '[$0]')", "a[b]c"),
        ("$replace('abc', /(b)/, '{$1}{0}')", "a{b}{0}c"),
        ("$replace('abc', /b/, '$1')", "ac"),  # no such group: nothing, as in JSONata
        ("$replace('a-b-c', /-/, '+', 1)", "a+b-c"),
        ("$replace('aaa', /a/, 'aa', 2)", "aaaaa"),
        ("$replace('a-b', /-/, '+', 0)", "a-b"),
        ("$replace('abc', /(b)/, function($m){ $uppercase($m.groups[0]) & $m.index })", "aB1c"),
        ("$replace('a.b', '.', '!')", "a!b"),  # a text is a text, not a pattern
        ("$replace('a.b', '.', '{}')", "a{}b"),
        ("$replace('abcabc', 'b', 'XX', 1)", "aXXcabc"),
        # $split: the text between matches; groups are not spliced in
        ("$split('a1b22c', /\\d+/)", ["a", "b", "c"]),
        ("$split('a1b22c', /(\\d+)/)", ["a", "b", "c"]),
        ("$split('a1b22c', /\\d+/, 2)", ["a", "b"]),
        ("$split('a, b;c', /[,;]\\s*/)", ["a", "b", "c"]),
        # $contains, and a regex called as a function
        ("$contains('Hello', /l+/)", True),
        ("$contains('Hello', /L/)", False),
        ("$contains('Hello', /L/i)", True),
        ("/l+/('hello').match", "ll"),
        # RE2 syntax, with JavaScript's \u escapes
        ("$match('été', /\\u00e9/).index", [0, 2]),
        ("$match('Ärger', /\\p{Lu}/).match", "Ä"),
        ("$match('x = 12', /(?P<n>\\d+)/).groups", ["12"]),
        # \s is JavaScript's: the no-break space of a pasted name is a space (RE2's \s misses it)
        ("$replace('Harbour\u00a0Lights\u2009Ltd', /\\s+/, ' ')", "Harbour Lights Ltd"),
        ("$split('a\u00a0b c', /[\\s,]/)", ["a", "b", "c"]),
        ("$match('a\u00a0b', /\\S+/).match", ["a", "b"]),
        ("$match('a\u00a0b', /[^\\s]+/).match", ["a", "b"]),
    ],
)
def test_regex_functions_keep_jsonata_semantics(source: str, expected: Any) -> None:
    assert E.evaluate(source, {}) == expected


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(a)\\1", "invalid escape sequence: \\1"),
        ("a(?=b)", "invalid perl operator: (?="),
        ("(?<!a)b", "invalid perl operator: (?<!"),
        ("a++", "bad repetition operator: ++"),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_with_the_reason(pattern: str, reason: str) -> None:
    expected = (
        f"regular expression /{pattern}/ is not supported: {reason} "
        "(workflows use RE2 syntax: no backreferences or lookaround)"
    )
    with pytest.raises(ExpressionError) as parsing:
        E.parse(f"$match(x, /{pattern}/)")
    assert str(parsing.value) == expected
    with pytest.raises(ExpressionError) as evaluating:
        E.evaluate(f"$match(x, /{pattern}/)", {"x": "ab"})
    assert str(evaluating.value) == expected


def test_a_workflow_with_an_unsupported_pattern_is_refused_on_save() -> None:
    document = copy.deepcopy(VALID)
    document["filter"] = "{% $contains(invoice.number, /(\\d)\\1/) %}"
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflow(document)
    assert info.value.problems == [
        "filter: expression does not parse: regular expression /(\\d)\\1/ is not supported: invalid "
        "escape sequence: \\1 (workflows use RE2 syntax: no backreferences or lookaround)"
    ]


def test_one_regex_call_is_bounded_in_work() -> None:
    """RE2 is linear in the text for one pattern, but a big pattern over a long text still costs
    their product (a minute for this one on 1 MB): that product is bounded."""
    with pytest.raises(ExpressionError) as info:
        E.evaluate("$match(t, /(\\w+\\s*){500}$/)", {"t": "a" * 100_000})
    assert str(info.value).startswith(
        "regular expression /(\\w+\\s*){500}$/ is too large to run over a text of 100000 characters "
        "(the bound for one regex call: text length times pattern size at most 50000000;"
    )
    assert E.evaluate("$count($match(t, /(\\w+\\s*){500}$/))", {"t": "a" * 1000}, timeout_ms=10_000) == 1


def test_the_time_bound_holds_between_matches() -> None:
    """A million matches in one $match call: jsonata-python checks its time bound only between
    evaluation steps, so the check between matches is what stops it."""
    with pytest.raises(E.ExpressionTimeout) as info:
        E.evaluate("$count($match(t, /a/))", {"t": "a" * 1_000_000}, timeout_ms=200)
    assert str(info.value) == "expression ran longer than its time bound (200 ms) while matching /a/"


def test_replacing_a_text_a_million_times_is_one_pass() -> None:
    """jsonata-python matched a text pattern against the rest of the string at every occurrence
    (quadratic: minutes for this); the result is what it always was."""
    assert E.evaluate("$replace(t, 'a', 'b') = u", {"t": "a" * 900_000, "u": "b" * 900_000}) is True
    assert E.evaluate("$replace(t, 'ab', '[$0]', 2)", {"t": "ababab"}) == "[ab][ab]ab"


@pytest.mark.parametrize(
    ("timestamp", "picture"),
    [
        # A picture's literal text became regex syntax in jsonata-python, run on Python's re.
        (HOSTILE, "(a+)+$"),
        # Three unbounded numbers side by side: ^([0-9]+)([0-9]+)([0-9]+)$ backtracks cubically.
        ("1" * 5000 + "x", "[Y][M][D]"),
    ],
)
def test_to_millis_pictures_do_not_backtrack(timestamp: str, picture: str) -> None:
    assert E.evaluate("$toMillis(t, p)", {"t": timestamp, "p": picture}) is None


@pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow:DeprecationWarning")  # jsonata-python's
def test_to_millis_with_a_picture_still_parses() -> None:
    assert E.evaluate("$toMillis('2024-01-15', '[Y0001]-[M01]-[D01]')", {}) == 1705276800000
    assert E.evaluate("$toMillis('20240115', '[Y0001][M01][D01]')", {}) == 1705276800000


def test_format_number_takes_no_pattern_for_a_separator_option() -> None:
    # jsonata-python puts the separator into a Python re pattern unescaped: exponential in the a's
    # (24 of them: seconds; 30: minutes).
    source = "$formatNumber(1, '#' & $pad('', 24, 'a') & '!', {'exponent-separator': '(a+)+$'})"
    with pytest.raises(ExpressionError, match="exponent-separator must be one character"):
        E.evaluate(source, {})
    # A grouping-separator that closes the character class it is put in, then nests a quantifier.
    grouping = (
        "$formatNumber(1, '\u0007' & $pad('', 24, 'a') & '#', "
        "{'grouping-separator': 'a](a+)+b[', 'decimal-separator': ']'})"
    )
    with pytest.raises(ExpressionError, match="grouping-separator must be one character"):
        E.evaluate(grouping, {})
    european = "$formatNumber(1234.5, '#.##0,00', {'decimal-separator': ',', 'grouping-separator': '.'})"
    assert E.evaluate(european, {}) == "1.234,50"
    assert E.evaluate("$formatNumber(1234.5, '0.00E0', {'exponent-separator': 'E'})", {}) == "1.23E3"
