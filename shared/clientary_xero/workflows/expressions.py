"""JSONata expressions, as in AWS Step Functions: a string ``"{% expr %}"`` is evaluated, anything
else is a literal. Every evaluation runs under a time bound and an evaluation-depth bound, so a
runaway expression (infinite recursion, a huge loop) stops with a clear error instead of eating the
Lambda's time. There is no Python ``eval`` and no template engine that could reach Python objects.

The time bound is checked between evaluation steps, so one built-in call cannot be interrupted:
``$pad('x', 2000000000)`` would build 2 GB before the next check. What one call can make is
therefore bounded by size: ranges, every string a built-in or ``&`` makes, all the strings one
evaluation makes together, and all the arrays it makes (``MAX_RANGE_ITEMS``, ``MAX_STRING_LENGTH``,
``MAX_STRING_CHARS``, ``MAX_ARRAY_ITEMS``), which keeps each step short enough for the time bound to
hold. Regular expressions run on RE2 (``workflows/regex.py``): linear in the text, bounded in work
per call, and the time bound is checked between matches. Running out of memory, or any other
failure inside the evaluator, is an expression error too.

``render`` evaluates a step's whole input under one more bound: all its expressions together get
``WHOLE_INPUT_FACTOR`` times one expression's time.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from clientary_xero.errors import ExpressionError
from clientary_xero.workflows import regex

_EXPR = re.compile(r"^\s*\{%(.*)%\}\s*$", re.DOTALL)

DEFAULT_TIMEOUT_MS = 1000
DEFAULT_MAX_DEPTH = 200
# A step's input of many expressions, each within its bound, could still take a Lambda's whole
# time (100 expressions of 0.9 s: 90 s); together they get this many times one expression's bound.
WHOLE_INPUT_FACTOR = 5
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
# Array items one evaluation handles, together: every array a step of the evaluation makes or
# passes on counts its length (mapping 2,800 invoice lines counts 8,000; collecting them with
# $append in a $reduce, 4 million). Doubling an array with $append stops here with arrays of about
# two million items (16 MB), not at 400 MB.
MAX_ARRAY_ITEMS = 10_000_000


class ExpressionTimeout(ExpressionError):
    """An expression ran longer than its time bound."""


@dataclass
class _Budget:
    """What the evaluation running in this context has used of its bounds."""

    deadline: float  # time.monotonic()
    timeout_ms: int
    chars: int = 0
    items: int = 0


_bounded_class: Any = None
_bounded_natives: dict[str, Any] = {}
_budget: ContextVar[_Budget | None] = ContextVar("expression_budget", default=None)
# A native's own implementation returns this to leave the call to jsonata-python.
_LIBRARY = object()


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


def _regex_engine(pattern: str, flags: Any) -> regex.Pattern:
    """jsonata-python's ``regex_engine`` hook: every regex literal is compiled by RE2."""
    return regex.compile_pattern(
        pattern, case_insensitive=flags.case_insensitive, multiline=flags.multiline, checkpoint=_tick
    )


def _bounded() -> Any:
    """jsonata.Jsonata with RE2 regexes, ranges capped at ``MAX_RANGE_ITEMS``, strings and arrays
    bounded by size."""
    global _bounded_class
    if _bounded_class is None:
        jsonata = _jsonata()

        class BoundedJsonata(jsonata.Jsonata):  # type: ignore[name-defined]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                # The path steps being evaluated, innermost last (see eval).
                self._steps: list[Any] = []
                super().__init__(*args, **kwargs)
                # The built-ins live in a frame shared by every expression; shadow them here.
                for name, function in _bounded_natives.items():
                    self.environment.bind(name, function)

            def eval(self, expr: Any, input: Any, environment: Any) -> Any:
                # Every node's value passes here, path steps' included (a path flattens them into
                # one array afterwards): charging arrays here stops the growth before the copy.
                result = super().eval(expr, input, environment)
                if isinstance(result, list) and result and not self._passes_on(expr):
                    _charge_items(len(result))
                return result

            def _passes_on(self, expr: Any) -> bool:
                """A plain variable (``$lines`` as an argument) hands on an array that exists,
                making nothing: charging it would count ``$count($lines)`` in a mapping of 3,000
                lines 3,000 times 3,000. As a path step (``$x.$x``), a filter or a group, it is
                copied, and charged."""
                return (
                    getattr(expr, "type", None) == "variable"
                    and getattr(expr, "predicate", None) is None
                    and getattr(expr, "group", None) is None
                    and getattr(expr, "stages", None) is None
                    and not (self._steps and self._steps[-1] is expr)
                )

            def evaluate_step(self, expr: Any, *args: Any) -> Any:
                self._steps.append(expr)
                try:
                    return super().evaluate_step(expr, *args)
                finally:
                    self._steps.pop()

            def evaluate_tuple_step(self, expr: Any, *args: Any) -> Any:
                self._steps.append(expr)
                try:
                    return super().evaluate_tuple_step(expr, *args)
                finally:
                    self._steps.pop()

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
            """A built-in whose string result is charged to the bounds; $pad and $join are refused
            before they build a string longer than ``MAX_STRING_LENGTH``; $replace and $toMillis
            run on RE2 (``_OWN``)."""

            def __init__(self, original: Any) -> None:
                self.__dict__.update(original.__dict__)  # the same method, signature and name

            def call(self, input: Any, args: Any) -> Any:
                name = f"${self.function_name}"
                padded = [*(args or []), *[None] * 4]
                own = _OWN.get(self.function_name)
                result = own(*padded) if own is not None else _LIBRARY
                if result is _LIBRARY:
                    precheck = _PRECHECKS.get(self.function_name)
                    if precheck is not None and args:
                        _check_length(precheck(*padded), name)
                    result = super().call(input, args)
                if isinstance(result, str):
                    _charge(len(result), name)
                return result

        for name, function in jsonata.Jsonata.static_frame.bindings.items():
            if isinstance(function, jsonata.Jsonata.JNativeFunction):
                _bounded_natives[name] = BoundedNative(function)
        _bounded_class = BoundedJsonata
    return _bounded_class


def _time_bound(timeout_ms: int | None) -> str:
    return f"expression ran longer than its time bound ({timeout_ms} ms)"


def _tick(pattern: str) -> None:
    """Between two regex matches: the time bound holds inside one $match/$replace/$split call."""
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise ExpressionTimeout(f"{_time_bound(budget.timeout_ms)} while matching /{pattern}/")


def _check_length(length: int, made_by: str) -> None:
    if length > MAX_STRING_LENGTH:
        raise ExpressionError(
            f"{made_by} would make a string of more than {MAX_STRING_LENGTH} characters "
            "(the bound for a string)"
        )


def _charge(length: int, made_by: str) -> None:
    _check_length(length, made_by)
    budget = _budget.get()
    if budget is not None:
        budget.chars += length
        if budget.chars > MAX_STRING_CHARS:
            raise ExpressionError(
                f"expression built more than {MAX_STRING_CHARS} characters of strings "
                "(the bound for one evaluation; $join a list rather than append with & in a loop)"
            )


def _charge_items(count: int) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.items += count
        if budget.items > MAX_ARRAY_ITEMS:
            raise ExpressionError(
                f"expression handled more than {MAX_ARRAY_ITEMS} array items (the bound for one "
                "evaluation, counting each array its steps make or pass on; an array that doubles "
                "in a loop reaches it)"
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


_PRECHECKS: dict[str, Callable[..., int]] = {
    "pad": _pad_length,
    "join": _join_length,
}


def _replace(string: Any, pattern: Any, replacement: Any, limit: Any, *_: Any) -> Any:
    """$replace in one pass (``regex.replace``); odd arguments are left to jsonata-python, which
    refuses them with JSONata's own errors."""
    functions = _jsonata().functions.Functions
    callable_kinds = (_jsonata().Jsonata.JFunction, _jsonata().Jsonata.JLambda)
    usable_replacement = (
        isinstance(replacement, str)
        or functions.is_lambda(replacement)
        or isinstance(replacement, callable_kinds)
    )
    if (
        not isinstance(string, str)
        or not (isinstance(pattern, regex.Pattern) or (isinstance(pattern, str) and pattern))
        or not usable_replacement
        or (limit is not None and not (isinstance(limit, (int, float)) and limit >= 0))
    ):
        return _LIBRARY
    return regex.replace(
        string,
        pattern,
        replacement,
        limit,
        call=lambda function, match: functions.func_apply(function, [match]),
        check_length=lambda length: _check_length(length, "$replace"),
    )


def _to_millis(timestamp: Any, picture: Any, *_: Any) -> Any:
    """$toMillis with a picture matches the timestamp with a regex jsonata-python builds from the
    picture and runs on Python's ``re`` (``[Y][M][D]`` is ``^([0-9]+)([0-9]+)([0-9]+)$``, which
    backtracks on a long run of digits). The same regex on RE2 first: a timestamp it does not match
    gives JSONata's undefined without ``re`` ever seeing it."""
    if not isinstance(timestamp, str) or not isinstance(picture, str):
        return _LIBRARY
    from jsonata.datetimeutils import DateTimeUtils

    spec = DateTimeUtils._generate_regex(DateTimeUtils._analyse_datetime_picture(picture))
    source = "^" + "".join(f"({part.regex})" for part in spec.parts) + "$"
    try:
        pattern = regex.compile_pattern(source, case_insensitive=True, multiline=False, checkpoint=_tick)
    except ExpressionError:
        raise ExpressionError(
            f"$toMillis: the picture {picture!r} is not supported (its literal text makes a regular "
            "expression RE2 cannot run)"
        ) from None
    return None if pattern.search(timestamp) is None else _LIBRARY


# $formatNumber's options that XPath makes one character each.
_ONE_CHARACTER_OPTIONS = (
    "decimal-separator",
    "grouping-separator",
    "exponent-separator",
    "minus-sign",
    "percent",
    "per-mille",
    "zero-digit",
    "digit",
    "pattern-separator",
)


def _format_number(number: Any, picture: Any, options: Any, *_: Any) -> Any:
    """$formatNumber puts its separator options into Python ``re`` patterns as they are (an
    ``exponent-separator`` of ``'(a+)+$'``, or a ``grouping-separator`` that closes the class it is
    put in, backtracks for minutes over a picture of a's); XPath makes each one character."""
    if not isinstance(options, dict):
        return _LIBRARY
    for name in _ONE_CHARACTER_OPTIONS:
        value = options.get(name)
        if value is not None and not (isinstance(value, str) and len(value) == 1):
            raise ExpressionError(f"$formatNumber: the {name} must be one character, got {str(value)[:40]!r}")
    return _LIBRARY


_OWN: dict[str, Callable[..., Any]] = {
    "replace": _replace,
    "toMillis": _to_millis,
    "formatNumber": _format_number,
}


def parse(source: str) -> Any:
    """Parse an expression; raises ``ExpressionError`` naming the position and reason.

    Regex literals are compiled here, so a pattern RE2 cannot run is refused when a workflow is
    validated or saved, not at its first run.
    """
    jsonata = _jsonata()
    if not source.strip():
        raise ExpressionError("empty expression")
    try:
        return jsonata.Jsonata(source, _regex_engine)
    except ExpressionError:
        raise
    except jsonata.JException as exc:
        raise ExpressionError(_describe(exc)) from None
    except RecursionError:
        raise ExpressionError("expression is nested too deeply to parse") from None
    except Exception as exc:  # a parser bug on odd input is still a bad expression
        raise ExpressionError(f"the parser failed: {_name(exc)}") from None


def evaluate(
    source: str,
    context: dict[str, Any],
    *,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Evaluate one expression against ``context``. JSONata's *undefined* comes back as None.

    Every failure is an ``ExpressionError`` with the reason (``ExpressionTimeout`` for the time
    bound): JSONata's own errors, the bounds, and whatever else the evaluator raises on odd input
    (``$fromMillis(1e20)`` is an OSError inside jsonata-python).
    """
    jsonata = _jsonata()
    # Each JSONata evaluation level costs several Python frames; make sure the depth bound, not
    # Python's recursion limit, is what stops a deep expression.
    limit = sys.getrecursionlimit()
    needed = max_depth * 12 + 200
    if limit < needed:
        sys.setrecursionlimit(needed)
    # The time bound starts when the expression object is built, so build one per evaluation.
    budget = _budget.set(_Budget(deadline=time.monotonic() + timeout_ms / 1000, timeout_ms=timeout_ms))
    try:
        return _bounded()(source, _regex_engine, timeout_ms, max_depth).evaluate(context)
    except ExpressionError:
        raise
    except jsonata.JException as exc:
        raise _from_jsonata(exc, timeout_ms=timeout_ms, max_depth=max_depth) from None
    except RecursionError:
        raise ExpressionError(f"expression exceeded the evaluation depth bound ({max_depth})") from None
    except MemoryError:
        raise ExpressionError("expression ran out of memory (it builds too much data)") from None
    except Exception as exc:  # one bad record's value must not escape as a crash
        raise ExpressionError(f"expression failed: {_name(exc)}") from None
    finally:
        _budget.reset(budget)


def _from_jsonata(exc: Exception, *, timeout_ms: int, max_depth: int) -> ExpressionError:
    """The error a JSONata exception stands for. jsonata-python turns whatever an ``and``/``or``
    operand raises into a bare "Unexpected" error (and ``$eval`` into D3121): the original, still
    attached as the exception's context, is the reason."""
    cause = exc.__context__
    while cause is not None:
        if isinstance(cause, ExpressionError):
            return cause
        cause = cause.__context__
    if getattr(exc, "error", None) == "Unexpected" and exc.__context__ is not None:
        inner = exc.__context__
        if isinstance(inner, _jsonata().JException):
            return _from_jsonata(inner, timeout_ms=timeout_ms, max_depth=max_depth)
        if isinstance(inner, RecursionError):
            return ExpressionError(f"expression exceeded the evaluation depth bound ({max_depth})")
        if isinstance(inner, MemoryError):
            return ExpressionError("expression ran out of memory (it builds too much data)")
        return ExpressionError(f"expression failed: {_name(inner)}")
    message = _describe(exc, timeout_ms=timeout_ms, max_depth=max_depth)
    if getattr(exc, "error", None) == "D1012":
        return ExpressionTimeout(message)
    return ExpressionError(message)


def _name(exc: BaseException) -> str:
    """``OSError: [Errno 75] Value too large…``, cut short: a message may quote a whole value. A
    value error's message reads on its own (``could not convert string to float: 'A-1'``)."""
    if isinstance(exc, (TypeError, ValueError, ArithmeticError)) and str(exc):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def render(
    value: Any,
    context: dict[str, Any],
    *,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    where: str = "input",
    total_timeout_ms: int | None = None,
) -> Any:
    """Render a mapping: every ``{% … %}`` string is replaced by its value, literals stay.

    A key whose expression yields nothing (JSONata *undefined*) is left out, so optional fields can
    be mapped from optional source data. Errors name the place (``input.LineItems[0].Quantity``).
    All the expressions together get ``total_timeout_ms`` (default ``WHOLE_INPUT_FACTOR``
    times ``timeout_ms``); each one ``min(timeout_ms, what is left)``.
    """
    total = timeout_ms * WHOLE_INPUT_FACTOR if total_timeout_ms is None else total_timeout_ms
    whole = _Whole(where, total, time.monotonic() + total / 1000)
    return _render(value, context, timeout_ms=timeout_ms, max_depth=max_depth, where=where, whole=whole)


@dataclass(frozen=True)
class _Whole:
    """The bound on all the expressions of one ``render``."""

    name: str
    total_ms: int
    deadline: float

    def error(self, where: str) -> ExpressionError:
        return ExpressionTimeout(
            f"{where}: the whole {self.name} ran longer than its time bound ({self.total_ms} ms for "
            "all its expressions together)"
        )


def _render(
    value: Any, context: dict[str, Any], *, timeout_ms: int, max_depth: int, where: str, whole: _Whole
) -> Any:
    source = expression_source(value)
    if source is not None:
        left_ms = int((whole.deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            raise whole.error(where)
        bound = min(timeout_ms, left_ms)
        try:
            return evaluate(source, context, timeout_ms=bound, max_depth=max_depth)
        except ExpressionTimeout as exc:
            if bound < timeout_ms:
                raise whole.error(where) from None
            raise ExpressionTimeout(f"{where}: {exc}") from None
        except ExpressionError as exc:
            raise ExpressionError(f"{where}: {exc}") from None
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            rendered = _render(
                item, context, timeout_ms=timeout_ms, max_depth=max_depth, where=f"{where}.{key}", whole=whole
            )
            if rendered is not None or expression_source(item) is None:
                out[key] = rendered
        return out
    if isinstance(value, list):
        return [
            _render(
                item, context, timeout_ms=timeout_ms, max_depth=max_depth, where=f"{where}[{i}]", whole=whole
            )
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
    return path_references(parsed, "steps")


def setting_references(parsed: Any) -> set[str]:
    """The settings an expression reads through ``settings.<name>`` (from the parsed AST)."""
    return path_references(parsed, "settings")


def path_references(parsed: Any, root: str) -> set[str]:
    """The names an expression reads through ``<root>.<name>`` (from the parsed AST)."""
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
            if steps and getattr(steps[0], "type", None) == "variable" and steps[0].value == "$":
                steps = steps[1:]  # ``$$.steps.x``: from the root, as inside a mapping's {…}
            if (
                len(steps) >= 2
                and getattr(steps[0], "type", None) == "name"
                and steps[0].value == root
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
            "lhs_object",  # an object constructor's (key, value) pairs: {'x': steps.a.y}
            "rhs_object",
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


def read_paths(parsed: Any) -> list[str]:
    """The plain field paths an expression compares or tests, as dotted text in the order written
    (``invoice.status_name`` in ``invoice.status_name = "paid"``): what ``explain`` shows the values
    of. A path with a predicate, a mapping or a variable, and whatever is inside a predicate or a
    mapping (it reads an item, not the record), is left out."""
    found: list[tuple[int, str]] = []
    stack = [getattr(parsed, "ast", None)]
    while stack:
        node = stack.pop()
        if node is None or not hasattr(node, "type"):
            continue
        if node.type == "path" or node.type == "name":
            steps = list(getattr(node, "steps", None) or [node])
            if steps and steps[0].type == "variable" and steps[0].value in ("", "$"):
                steps = steps[1:]  # ``$$.settings.x``, ``$.invoice.x``: from the root
            plain = steps and all(
                step.type == "name"
                and not any(getattr(step, attr, None) for attr in ("stages", "predicate", "group", "tuple"))
                and getattr(step, "focus", None) is None
                and getattr(step, "index", None) is None
                for step in steps
            )
            if plain:
                found.append(
                    (int(getattr(steps[0], "position", 0) or 0), ".".join(str(s.value) for s in steps))
                )
            continue
        for attr in ("lhs", "rhs", "expression", "expressions", "arguments", "condition", "then", "_else"):
            child = getattr(node, attr, None)
            if isinstance(child, list):
                stack.extend(child)
            elif child is not None:
                stack.append(child)
    return list(dict.fromkeys(text for _, text in sorted(found)))


def shown(value: Any, limit: int = 60) -> str:
    """A value as a person reads it in a reason: JSON, cut to ``limit`` characters."""
    import json

    if value is None:
        return "null or missing"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def explain(
    source: str,
    context: dict[str, Any],
    value: Any,
    *,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    most: int = 5,
) -> str:
    """Why a condition came out as it did: ``invoice.status = "paid" was false (invoice.status is
    "draft")`` — the condition, its value, and the values of the fields it reads. Never raises: a
    field that cannot be read is left out."""
    outcome = (
        "true"
        if value is True
        else "false"
        if value is False
        else f"{shown(value)} ({str(truthy(value)).lower()})"
    )
    reads: list[str] = []
    try:
        paths = read_paths(parse(source))
    except ExpressionError:
        paths = []
    for path in paths[:most]:
        quoted = ".".join("`" + part.replace("`", "") + "`" for part in path.split("."))
        try:
            reads.append(
                f"{path} is {shown(evaluate(quoted, context, timeout_ms=timeout_ms, max_depth=max_depth))}"
            )
        except ExpressionError:
            continue
    text = " ".join(source.split())
    text = text if len(text) <= 200 else text[:199] + "…"
    return f"{text} was {outcome}" + (f" ({', '.join(reads)})" if reads else "")


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
