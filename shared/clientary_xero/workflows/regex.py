"""Regular expressions in workflow expressions, run on RE2 (the ``google-re2`` package).

RE2 matches in time linear in the text, so a record cannot make a pattern such as ``/(a+)+$/``
backtrack for minutes, as Python's ``re`` does (``'a' * 28 + '!'`` ran until the Lambda time-out).
jsonata-python compiles regex literals through a pluggable ``regex_engine``: :func:`compile_pattern`
is ours, and it is the only way a pattern gets into an expression. ``$match``, ``$contains`` and a
regex called as a function use a pattern's ``finditer``; ``$split`` its ``split``; ``$replace`` is
:func:`replace`, JSONata's algorithm in one pass (jsonata-python's own goes through ``re.sub``
templates, and with a limit restarts from the start of the text for every replacement).

Linear is per pattern: RE2's worst case is the text's length times the pattern's compiled size
(about 15 ns a unit here, when a long match has to be taken apart into groups). One call cannot be
interrupted, so that product is bounded (``MAX_REGEX_WORK``), and every match passes a
``checkpoint`` (given the pattern) that holds the evaluation's time bound between matches.

The syntax is RE2's (https://github.com/google/re2/wiki/Syntax), with JavaScript's ``\\uXXXX``
accepted too: no backreferences (``\\1``), no lookaround (``(?=…)``, ``(?<!…)``), no atomic groups
or possessive quantifiers; ``\\d``, ``\\w`` and ``\\b`` are ASCII, as in JavaScript, and ``\\s``
is JavaScript's (RE2's own misses the no-break space and the other Unicode spaces).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from clientary_xero.errors import ExpressionError

# Text length times compiled pattern size one regex call may take on: 50 million is under a second in
# RE2's slowest mode. A 1,000-character title leaves room for a 50,000-instruction pattern (a
# typical one compiles to 10 to 200); a 1 MB text for a pattern of 50.
MAX_REGEX_WORK = 50_000_000

_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
# JavaScript's \s (RE2's is [\t\n\f\r ]: a no-break space copied into a name would not match).
_SPACES = r"\t\n\x{0b}\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}"


class Pattern:
    """A compiled JSONata regex: what jsonata-python's functions expect of a pattern object."""

    __slots__ = ("_checkpoint", "_compiled", "size", "source")

    def __init__(self, source: str, compiled: Any, checkpoint: Callable[[str], None]) -> None:
        self.source = source
        self.size = max(1, int(compiled.programsize))
        self._compiled = compiled
        self._checkpoint = checkpoint

    def __repr__(self) -> str:
        return f"/{self.source}/"

    def __copy__(self) -> Pattern:
        return self

    def __deepcopy__(self, memo: Any) -> Pattern:
        return self  # immutable; a transform (|…|) copies its input deeply

    def finditer(self, string: str) -> Iterator[Any]:
        """The matches left to right (``re``-like match objects: group, groups, start, end)."""
        if len(string) * self.size > MAX_REGEX_WORK:
            raise ExpressionError(
                f"regular expression /{self.source}/ is too large to run over a text of "
                f"{len(string)} characters (the bound for one regex call: text length times "
                f"pattern size at most {MAX_REGEX_WORK}; this pattern's size is {self.size})"
            )
        for match in self._compiled.finditer(string):
            self._checkpoint(self.source)
            yield match

    @property
    def groups(self) -> int:
        return int(self._compiled.groups)

    def search(self, string: str) -> Any:
        return next(self.finditer(string), None)

    def split(self, string: str, maxsplit: int = 0) -> list[str]:
        """JSONata's ``$split``: the text between matches (groups are not returned, unlike
        ``re.split``)."""
        pieces: list[str] = []
        end = 0
        for match in self.finditer(string):
            if maxsplit and len(pieces) >= maxsplit:
                break
            pieces.append(string[end : match.start()])
            end = match.end()
        pieces.append(string[end:])
        return pieces

    def sub(self, repl: Any, string: str, count: int = 0) -> str:
        """Each match replaced by ``repl(match)`` or the text ``repl`` as it is (no templates)."""
        parts: list[str] = []
        end = 0
        for done, match in enumerate(self.finditer(string)):
            if count and done >= count:
                break
            parts.append(string[end : match.start()])
            parts.append(repl(match) if callable(repl) else repl)
            end = match.end()
        parts.append(string[end:])
        return "".join(parts)


def compile_pattern(
    source: str, *, case_insensitive: bool, multiline: bool, checkpoint: Callable[[str], None]
) -> Pattern:
    """Compile a JSONata regex literal's body and flags (``i``, ``m``) with RE2.

    A pattern RE2 cannot run is an ``ExpressionError`` saying why; raised while the expression is
    parsed, so ``workflows validate`` (and saving a workflow) reports it.
    """
    import re2  # deferred: only expressions that use a regex need it

    options = re2.Options()
    options.log_errors = False  # RE2 would print each refused pattern to stderr
    options.case_sensitive = not case_insensitive
    flags = "(?m)" if multiline else ""
    try:
        compiled = re2.compile(flags + _from_javascript(source), options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ExpressionError(
            f"regular expression /{source}/ is not supported: {reason} (workflows use RE2 syntax: "
            "no backreferences or lookaround)"
        ) from None
    return Pattern(source, compiled, checkpoint)


def _from_javascript(source: str) -> str:
    """JavaScript's ``\\uXXXX`` as RE2's ``\\x{XXXX}``, and ``\\s``/``\\S`` as JavaScript's
    spaces (``\\S`` inside a class stays RE2's); every other escape stays as written."""
    out: list[str] = []
    in_class = False
    position = 0
    while position < len(source):
        char = source[position]
        if char == "\\" and position + 1 < len(source):
            escaped = source[position + 1]
            digits = source[position + 2 : position + 6]
            if escaped == "u" and _HEX4.fullmatch(digits):
                out.append(f"\\x{{{digits}}}")
                position += 6
                continue
            if escaped == "s":
                out.append(_SPACES if in_class else f"[{_SPACES}]")
            elif escaped == "S" and not in_class:
                out.append(f"[^{_SPACES}]")
            else:
                out.append(source[position : position + 2])
            position += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        position += 1
    return "".join(out)


def replace(
    string: str,
    pattern: str | Pattern,
    replacement: Any,
    limit: float | None,
    *,
    call: Callable[[Any, dict[str, Any]], Any],
    check_length: Callable[[int], None],
) -> str:
    """JSONata's ``$replace`` over a text, in one pass.

    ``replacement`` is a text, where ``$0`` stands for the match, ``$1``… for its groups and ``$$``
    for ``$``; or a function, given ``{match, index, groups}`` as ``$match`` returns them, through
    ``call``. ``check_length`` sees the result's length as it grows, so a replacement that would
    make a huge text is refused before it is built.
    """
    groups_in_pattern = pattern.groups if isinstance(pattern, Pattern) else 0
    template = _Template(replacement, groups_in_pattern) if isinstance(replacement, str) else None
    if isinstance(pattern, str) and template is not None:
        # A text's every match is the text itself: one substitute, replaced by str.replace (a
        # million one-character matches one at a time would outrun the time bound).
        substitute = template.fill((pattern,))
        count = string.count(pattern) if limit is None else min(string.count(pattern), math.ceil(limit))
        check_length(len(string) + count * (len(substitute) - len(pattern)))
        return string.replace(pattern, substitute, count)
    parts: list[str] = []
    length = 0
    end = 0
    for count, (start, stop, groups) in enumerate(_occurrences(string, pattern)):
        if limit is not None and count >= limit:
            break
        matched = string[start:stop]
        if template is not None:
            values = (matched, *(group or "" for group in groups))
            # Measured before it is made: $0 a thousand times over a long match is refused unbuilt.
            check_length(length + (start - end) + template.length(values) + (len(string) - stop))
            substitute = template.fill(values)
        else:
            substitute = call(replacement, {"match": matched, "index": start, "groups": list(groups)})
            if not isinstance(substitute, str):
                raise ExpressionError(
                    "$replace: the replacement function must return a string, "
                    f"got {type(substitute).__name__}"
                )
        length += (start - end) + len(substitute)
        check_length(length + (len(string) - stop))
        parts.append(string[end:start])
        parts.append(substitute)
        end = stop
    parts.append(string[end:])
    return "".join(parts)


def _occurrences(string: str, pattern: str | Pattern) -> Iterator[tuple[int, int, tuple[Any, ...]]]:
    if isinstance(pattern, Pattern):
        for match in pattern.finditer(string):
            yield match.start(), match.end(), match.groups()
        return
    position = string.find(pattern)
    while position != -1:
        yield position, position + len(pattern), ()
        position = string.find(pattern, position + len(pattern))


class _Template:
    """A replacement text read as JSONata reads it (jsonata-js ``replace``), once per call. ``$$``
    is ``$``, ``$0`` the match, ``$n`` group n (as many digits as the group count has; nothing when
    there is no such group or it did not take part), and a ``$`` before anything else stays. Kept
    as a ``str.format`` text, so a substitute is made in one C call, not a Python loop per piece."""

    def __init__(self, replacement: str, groups: int) -> None:
        pieces = _pieces(replacement, groups)
        self.format = "".join(
            piece.replace("{", "{{").replace("}", "}}") if isinstance(piece, str) else f"{{{piece}}}"
            for piece in pieces
        )
        self.literal = sum(len(piece) for piece in pieces if isinstance(piece, str))
        self.uses = Counter(piece for piece in pieces if isinstance(piece, int))

    def length(self, values: tuple[str, ...]) -> int:
        """The length ``fill(values)`` will have (values: the match, then its groups)."""
        return self.literal + sum(count * len(values[group]) for group, count in self.uses.items())

    def fill(self, values: tuple[str, ...]) -> str:
        return self.format.format(*values)


def _pieces(replacement: str, groups: int) -> list[str | int]:
    """Texts and group numbers (0: the whole match), in order."""
    out: list[str | int] = []
    position = 0
    index = replacement.find("$")
    while index != -1 and position < len(replacement):
        out.append(replacement[position:index])
        position = index + 1
        following = replacement[position : position + 1]
        if following == "$":
            out.append("$")
            position += 1
        elif following == "0":
            out.append(0)
            position += 1
        else:
            digits = 1 if not groups else math.floor(math.log10(groups)) + 1
            number = _leading_number(replacement[position : position + digits])
            if digits > 1 and number is not None and number > groups:
                number = _leading_number(replacement[position : position + digits - 1])
            if number is None:
                out.append("$")
            else:
                if 0 < number <= groups:
                    out.append(number)
                position += len(str(number))
        index = replacement.find("$", position)
    out.append(replacement[position:])
    return [piece for piece in out if piece != ""]


def _leading_number(text: str) -> int | None:
    digits = len(text) - len(text.lstrip("0123456789"))
    return int(text[:digits]) if digits else None
