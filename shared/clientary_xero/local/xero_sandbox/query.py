"""Xero's ``where`` language, the subset the sandbox understands: ``Status == "AUTHORISED" AND
Contact.Name.Contains("acme") OR Total > 500``.

``_where`` compiles an expression into a predicate over a record: ``OR``/``||`` of ``AND``/``&&``
groups of clauses (parentheses around a single clause are allowed), each a comparison (``==``, ``!=``,
``<``, ``>``, ``<=``, ``>=``) of a dotted, case-insensitive field path with a string, number,
``true``/``false``, ``null`` or ``Guid("…")``, or a ``Contains``/``StartsWith``/``EndsWith`` call. The
path may end in ``.ToLower()`` or ``.ToUpper()`` (``Name.ToLower()=="acme ltd"``,
``Contact.Name.ToLower().Contains("acme")``: the form Xero's staff give for case-insensitive
queries). Text compares case-insensitively. A malformed expression raises ``_QueryError``, which
listing.py answers as Xero's ``QueryParseException``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any


def _get_path(record: dict[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        key = next((k for k in value if k.lower() == part.lower()), None)
        if key is None:
            return None
        value = value[key]
    return value


_CLAUSE = re.compile(
    r"""^(?P<field>[A-Za-z_][\w.]*?)(?P<case>\.(?:ToLower|ToUpper)\(\s*\))?\s*(?:
        (?P<op>==|!=|>=|<=|>|<)\s*(?P<value>"(?:[^"\\]|\\.)*"|Guid\(\s*"[^"]*"\s*\)|true|false|null|-?\d+(?:\.\d+)?)
      | \.(?P<method>Contains|StartsWith|EndsWith)\(\s*(?P<arg>"(?:[^"\\]|\\.)*")\s*\)
    )$""",
    re.VERBOSE | re.IGNORECASE,
)


class _QueryError(ValueError):
    pass


def _word_at(text: str, i: int, words: tuple[str, ...]) -> str | None:
    for word in words:
        if text[i : i + len(word)].upper() != word:
            continue
        if word.isalpha():  # AND / OR must stand alone
            before = text[i - 1] if i else " "
            after = text[i + len(word)] if i + len(word) < len(text) else " "
            if not (before.isspace() or before == ")") or not (after.isspace() or after == "("):
                continue
        return word
    return None


def _split_top(text: str, words: tuple[str, ...]) -> list[str]:
    """Split on AND/&& (or OR/||) outside string literals and parentheses."""
    parts: list[str] = []
    depth, quoted, start, i = 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 2
                continue
            quoted = ch != '"'
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (word := _word_at(text, i, words)):
            parts.append(text[start:i])
            i += len(word)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _literal(token: str) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    lowered = token.lower()
    if lowered.startswith("guid("):
        return token[token.index('"') + 1 : token.rindex('"')].lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    return Decimal(token)


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if expected is None or actual is None:
        same = actual is None and expected is None
        if op in ("==", "!="):
            return same if op == "==" else not same
        return False
    if isinstance(expected, bool):
        result = bool(actual) == expected
        return result if op == "==" else (not result if op == "!=" else False)
    if isinstance(expected, Decimal):
        try:
            left = Decimal(str(actual))
        except (InvalidOperation, ValueError):
            return False
        return {
            "==": left == expected,
            "!=": left != expected,
            ">": left > expected,
            "<": left < expected,
            ">=": left >= expected,
            "<=": left <= expected,
        }[op]
    # Strings (and GUIDs): Xero compares them case-insensitively.
    left_text, right_text = str(actual).casefold(), str(expected).casefold()
    if op == "==":
        return left_text == right_text
    if op == "!=":
        return left_text != right_text
    raise _QueryError(f"operator {op} is not supported for text")


Predicate = Callable[[dict[str, Any]], bool]


def _cased(value: Any, case: str | None) -> Any:
    """The value through ``.ToLower()``/``.ToUpper()`` (``case``), when the clause has one."""
    if value is None or not case:
        return value
    return str(value).lower() if case.lower().startswith(".tolower") else str(value).upper()


def _method_clause(path: str, method: str, arg: str, case: str | None = None) -> Predicate:
    def clause(record: dict[str, Any]) -> bool:
        value = _cased(_get_path(record, path), case)
        if value is None:
            return False
        text = str(value).casefold()
        return {"contains": arg in text, "startswith": text.startswith(arg), "endswith": text.endswith(arg)}[
            method
        ]

    return clause


def _compare_clause(path: str, op: str, expected: Any, case: str | None = None) -> Predicate:
    return lambda record: _compare(_cased(_get_path(record, path), case), op, expected)


def _where(expression: str) -> Predicate:
    """Compile the subset of Xero's ``where`` language the sandbox understands, or raise _QueryError."""
    alternatives: list[list[Predicate]] = []
    for group in _split_top(expression, ("||", "OR")):
        clauses: list[Predicate] = []
        for raw in _split_top(group, ("&&", "AND")):
            text = raw.strip()
            while text.startswith("(") and text.endswith(")"):
                text = text[1:-1].strip()
            match = _CLAUSE.match(text)
            if not match:
                raise _QueryError(f"cannot parse the where clause {raw!r}")
            if match["method"]:
                clauses.append(
                    _method_clause(
                        match["field"],
                        match["method"].lower(),
                        json.loads(match["arg"]).casefold(),
                        match["case"],
                    )
                )
            else:
                clauses.append(
                    _compare_clause(match["field"], match["op"], _literal(match["value"]), match["case"])
                )
        alternatives.append(clauses)
    return lambda record: any(all(c(record) for c in group) for group in alternatives)
