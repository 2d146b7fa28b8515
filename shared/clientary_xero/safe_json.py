"""JSON from outside (request bodies) parsed so that hostile input is an error with a reason,
never an exception nobody expects.

``json.loads`` alone raises ``RecursionError`` on arrays nested ~1,000 deep, ``ValueError`` on an
integer of over 4,300 digits (Python's int conversion limit) and accepts ``NaN``/``Infinity`` and
``1e999`` (infinite floats that JSON cannot write back). Each becomes ``UnsafeJson`` here, and so
does a document nested deeper than ``max_depth`` (what reads it later — JSONata, pydantic,
``json.dumps`` — recurses too) and a string holding an unpaired surrogate (``"\\ud800"``: valid
JSON, but no UTF-8 encoder, HTTP client or log line can write it).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64


class UnsafeJson(ValueError):
    """Input that is not JSON this project accepts; the message says why (never the input)."""


def _constant(name: str) -> Any:
    raise UnsafeJson(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJson("a number is too large")
    return value


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise UnsafeJson("malformed JSON: the body is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except UnsafeJson:
        raise
    except json.JSONDecodeError as exc:
        raise UnsafeJson(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise UnsafeJson(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:  # int conversion limit (over 4,300 digits)
        raise UnsafeJson("a number has too many digits") from None
    _check(value, max_depth)
    return value


def _check(value: Any, limit: int) -> None:
    """Refuse nesting over ``limit`` and unencodable strings (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _encodable(item)
            continue
        if isinstance(item, dict):
            for key in item:
                _encodable(key)
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise UnsafeJson(f"JSON nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, str)))


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeJson("a JSON string holds an unpaired surrogate (\\ud800-\\udfff)") from None
