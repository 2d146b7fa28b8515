"""JSONata expressions, as in AWS Step Functions: a string ``"{% expr %}"`` is evaluated, anything
else is a literal. Every evaluation runs under a time bound and an evaluation-depth bound, so a
runaway expression (infinite recursion, a huge loop) stops with a clear error instead of eating the
Lambda's time. There is no Python ``eval`` and no template engine that could reach Python objects.

The time bound is checked between evaluation steps, so one built-in call cannot be interrupted:
``$pad('x', 2000000000)`` would build 2 GB before the next check. Ranges, every string a built-in or
``&`` makes, and all the strings one evaluation makes together are therefore bounded by size
(``MAX_RANGE_ITEMS``, ``MAX_STRING_LENGTH``, ``MAX_STRING_CHARS``), which keeps each step short
enough for the time bound to hold. Running out of memory anyway is an expression error too.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from clientary_xero.errors import ExpressionError

_EXPR = re.compile(r"^\s*\{%(.*)%\}\s*$", re.DOTALL)

DEFAULT_TIMEOUT_MS = 1000
DEFAULT_MAX_DEPTH = 200
# The time bound is checked between evaluation steps, so a single native call over a huge range
# ($sum([1..9999999])) could outrun it; ranges are capped instead (JSONata's own cap is 1e7).
MAX_RANGE_ITEMS = 100_000
# One string an expression builds: far above any field Xero or Clientary takes (and a run item's
# 400 KB), yet small enough that one built-in call over it takes milliseconds.
MAX_STRING_LENGTH = 1_000_000
# All strings one evaluation builds, together, counting the ones it drops again: a loop that makes
# many big strings stops here before memory runs out (64 MB of text; a 512 MB Lambda). Appending to
# a string in a loop copies it every time: 1000 appends of 100 characters count 50 million.
MAX_STRING_CHARS = 64_000_000

_bounded_class: Any = None
_bounded_natives: dict[str, Any] = {}
# Characters of strings built so far by the evaluation running in this context (None: no budget).
_chars_built: ContextVar[list[int] | None] = ContextVar("chars_built", default=None)


def expression_source(value: Any) -> str | None:
    """The JSONata source inside ``{% … %}``, or None when ``value`` is a literal."""
    if isinstance(value, str):
        match = _EXPR.match(value)
        if match:
            return match.group(1).strip()
    return None


def _jsonata() -> Any:
    import jsonata  # deferred: the parser module is only needed once a workflow runs

    return jsonata


def _bounded() -> Any:
    """jsonata.Jsonata with ranges capped at ``MAX_RANGE_ITEMS`` and strings bounded by size."""
    global _bounded_class
    if _bounded_class is None:
        jsonata = _jsonata()

        class BoundedJsonata(jsonata.Jsonata):  # type: ignore[name-defined]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                # The built-ins live in a frame shared by every expression; shadow them here.
                for name, function in _bounded_natives.items():
                    self.environment.bind(name, function)

            def evaluate_range_expression(self, lhs: Any, rhs: Any) -> Any:
                if isinstance(lhs, int) and isinstance(rhs, int) and rhs - lhs + 1 > MAX_RANGE_ITEMS:
                    raise ExpressionError(
                        f"range [{lhs}..{rhs}] has more than {MAX_RANGE_ITEMS} items (the bound for a range)"
                    )
                return super().evaluate_range_expression(lhs, rhs)

            def evaluate_string_concat(self, lhs: Any, rhs: Any) -> Any:
                result = super().evaluate_string_concat(lhs, rhs)
                _charge(len(result), "the & operator")
                return result

        class BoundedNative(jsonata.Jsonata.JNativeFunction):  # type: ignore[name-defined]
            """A built-in whose string result is charged to the bounds; $pad, $join and $replace
            are refused before they build a string longer than ``MAX_STRING_LENGTH``."""

            def __init__(self, original: Any) -> None:
                self.__dict__.update(original.__dict__)  # the same method, signature and name

            def call(self, input: Any, args: Any) -> Any:
                name = f"${self.function_name}"
                precheck = _PRECHECKS.get(self.function_name)
                if precheck is not None and args:
                    _check_length(precheck(*args, *[None] * 4), name)
                result = super().call(input, args)
                if isinstance(result, str):
                    _charge(len(result), name)
                return result

        for name, function in jsonata.Jsonata.static_frame.bindings.items():
            if isinstance(function, jsonata.Jsonata.JNativeFunction):
                _bounded_natives[name] = BoundedNative(function)
        _bounded_class = BoundedJsonata
    return _bounded_class


def _check_length(length: int, made_by: str) -> None:
    if length > MAX_STRING_LENGTH:
        raise ExpressionError(
            f"{made_by} would make a string of more than {MAX_STRING_LENGTH} characters "
            "(the bound for a string)"
        )


def _charge(length: int, made_by: str) -> None:
    _check_length(length, made_by)
    built = _chars_built.get()
    if built is not None:
        built[0] += length
        if built[0] > MAX_STRING_CHARS:
            raise ExpressionError(
                f"expression built more than {MAX_STRING_CHARS} characters of strings "
                "(the bound for one evaluation; $join a list rather than append with & in a loop)"
            )


def _pad_length(string: Any, width: Any, *_: Any) -> int:
    try:
        return abs(int(width))
    except (TypeError, ValueError, OverflowError):
        return 0


def _join_length(strings: Any, separator: Any, *_: Any) -> int:
    if not isinstance(strings, list):
        return 0
    texts = [s for s in strings if isinstance(s, str)]
    gap = len(separator) if isinstance(separator, str) else 0
    return sum(len(s) for s in texts) + gap * max(0, len(strings) - 1)


def _replace_length(string: Any, pattern: Any, replacement: Any, limit: Any, *_: Any) -> int:
    """At least the result's length: each match adds the replacement, where a ``$0``/``$1`` (two
    characters) stands for at most the matched text. Counting stops once past the bound. A function
    replacement is charged afterwards, like any result."""
    if not isinstance(string, str) or not isinstance(replacement, str) or not replacement:
        return 0
    if isinstance(pattern, str):
        matches: Iterator[Any] = re.finditer(re.escape(pattern), string) if pattern else iter(())
    elif hasattr(pattern, "finditer"):
        matches = pattern.finditer(string)
    else:
        return 0
    length = len(string)
    for count, match in enumerate(matches):
        if (isinstance(limit, int) and count >= limit) or length > MAX_STRING_LENGTH:
            break
        matched = len(match.group(0))
        length += len(replacement) * (1 + matched) if "$" in replacement else len(replacement)
    return length


_PRECHECKS: dict[str, Callable[..., int]] = {
    "pad": _pad_length,
    "join": _join_length,
    "replace": _replace_length,
}


def parse(source: str) -> Any:
    """Parse an expression; raises ``ExpressionError`` naming the position and reason."""
    jsonata = _jsonata()
    if not source.strip():
        raise ExpressionError("empty expression")
    try:
        return jsonata.Jsonata(source)
    except jsonata.JException as exc:
        raise ExpressionError(_describe(exc)) from None
    except RecursionError:
        raise ExpressionError("expression is nested too deeply to parse") from None


def evaluate(
    source: str,
    context: dict[str, Any],
    *,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Evaluate one expression against ``context``. JSONata's *undefined* comes back as None."""
    jsonata = _jsonata()
    try:
        # The time bound starts when the expression object is built, so build one per evaluation.
        expr = _bounded()(source, timeout=timeout_ms, stack=max_depth)
    except jsonata.JException as exc:
        raise ExpressionError(_describe(exc)) from None
    # Each JSONata evaluation level costs several Python frames; make sure the depth bound, not
    # Python's recursion limit, is what stops a deep expression.
    limit = sys.getrecursionlimit()
    needed = max_depth * 12 + 200
    if limit < needed:
        sys.setrecursionlimit(needed)
    budget = _chars_built.set([0])
    try:
        return expr.evaluate(context)
    except jsonata.JException as exc:
        raise ExpressionError(_describe(exc, timeout_ms=timeout_ms, max_depth=max_depth)) from None
    except RecursionError:
        raise ExpressionError(f"expression exceeded the evaluation depth bound ({max_depth})") from None
    except MemoryError:
        raise ExpressionError("expression ran out of memory (it builds too much data)") from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ExpressionError(f"expression failed: {exc}") from None
    finally:
        _chars_built.reset(budget)


def render(
    value: Any,
    context: dict[str, Any],
    *,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    where: str = "input",
) -> Any:
    """Render a mapping: every ``{% … %}`` string is replaced by its value, literals stay.

    A key whose expression yields nothing (JSONata *undefined*) is left out, so optional fields can
    be mapped from optional source data. Errors name the place (``input.LineItems[0].Quantity``).
    """
    source = expression_source(value)
    if source is not None:
        try:
            return evaluate(source, context, timeout_ms=timeout_ms, max_depth=max_depth)
        except ExpressionError as exc:
            raise ExpressionError(f"{where}: {exc}") from None
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            rendered = render(
                item, context, timeout_ms=timeout_ms, max_depth=max_depth, where=f"{where}.{key}"
            )
            if rendered is not None or expression_source(item) is None:
                out[key] = rendered
        return out
    if isinstance(value, list):
        return [
            render(item, context, timeout_ms=timeout_ms, max_depth=max_depth, where=f"{where}[{i}]")
            for i, item in enumerate(value)
        ]
    return value


def iter_expressions(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every ``(place, source)`` of the expressions inside a literal structure."""
    source = expression_source(value)
    if source is not None:
        yield where, source
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_expressions(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from iter_expressions(item, f"{where}[{i}]")


def step_references(parsed: Any) -> set[str]:
    """The step ids an expression reads through ``steps.<id>`` (from the parsed AST)."""
    found: set[str] = set()
    stack = [getattr(parsed, "ast", None)]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if getattr(node, "type", None) == "path":
            steps = getattr(node, "steps", None) or []
            if (
                len(steps) >= 2
                and getattr(steps[0], "type", None) == "name"
                and steps[0].value == "steps"
                and getattr(steps[1], "type", None) == "name"
            ):
                found.add(str(steps[1].value))
        for attr in (
            "steps",
            "lhs",
            "rhs",
            "expression",
            "arguments",
            "procedure",
            "stages",
            "condition",
            "then",
            "_else",
            "predicate",
            "expressions",
            "group",
            "terms",
            "body",
            "update",
            "delete",
        ):
            child = getattr(node, attr, None)
            if child is None:
                continue
            if isinstance(child, list):
                for item in child:
                    if isinstance(item, list):
                        stack.extend(item)
                    else:
                        stack.append(item)
            elif hasattr(child, "type") or hasattr(child, "lhs"):
                stack.append(child)
    return found


def truthy(value: Any) -> bool:
    """JSONata's boolean cast for filters and conditions ($boolean semantics)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value != ""
    if isinstance(value, list):
        return any(truthy(v) for v in value)
    if isinstance(value, dict):
        return len(value) > 0
    return True


def _describe(exc: Exception, *, timeout_ms: int | None = None, max_depth: int | None = None) -> str:
    code = getattr(exc, "error", None) or ""
    if code == "D1012":
        return f"expression ran longer than its time bound ({timeout_ms} ms)"
    if code == "D1011":
        return f"expression exceeded the evaluation depth bound ({max_depth})"
    message = str(exc) or code
    position = getattr(exc, "location", None)
    token = getattr(exc, "current", None) or getattr(exc, "token", None)
    parts = [message]
    if position not in (None, -1) and f"position {position}" not in message:
        parts.append(f"at position {position}")
    if token and f"{token}" not in message:
        parts.append(f"near {token!r}")
    return " ".join(parts)
