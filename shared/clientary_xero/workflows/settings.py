"""``--set NAME=VALUE``: a workflow's declared settings overridden from the command line.

A workflow declares ``settings:`` (name → default value) and its expressions read
``settings.<name>``; ``workflows put --set`` and ``test-workflow --set`` replace a default before
the definition is validated and stored, so the stored definition carries the chosen values (a run
records the definition it ran with; a replay takes the current one).

A value is read as the default's type: a text default takes the value as written (``--set
AccountCode=0200`` keeps its leading zero), a number or true/false default takes a number or
true/false, and a default of null, a list or a mapping takes JSON (or, if it is not JSON, the text).
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Sequence
from typing import Any

from clientary_xero.errors import WorkflowInvalid


def apply_settings(document: Any, assignments: Sequence[str]) -> Any:
    """``document`` with each ``NAME=VALUE`` of ``assignments`` set; ``WorkflowInvalid`` names every
    assignment that is malformed, names no declared setting, or does not fit the default's type."""
    if not assignments:
        return document
    wid = document.get("id") if isinstance(document, dict) else None
    declared = document.get("settings") if isinstance(document, dict) else None
    if not isinstance(declared, dict):
        declared = {}
    problems: list[str] = []
    chosen: dict[str, Any] = {}
    for assignment in assignments:
        name, equals, text = assignment.partition("=")
        name = name.strip()
        if not equals or not name:
            problems.append(f"--set {assignment!r}: write NAME=VALUE (e.g. --set SalesAccount=200)")
            continue
        if name not in declared:
            problems.append(f"--set {name}: {_not_declared(name, declared)}")
            continue
        try:
            chosen[name] = _typed(text, declared[name])
        except ValueError as exc:
            problems.append(f"--set {name}: {exc}")
    if problems:
        raise WorkflowInvalid(wid if isinstance(wid, str) else None, problems)
    out = copy.deepcopy(document)
    out["settings"] = {**declared, **chosen}
    return out


def _not_declared(name: str, declared: dict[str, Any]) -> str:
    if not declared:
        return "the workflow declares no settings (add a settings: mapping of name → default)"
    close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"the workflow declares no setting {name!r}{hint} (declared: {', '.join(sorted(declared))})"


def _typed(text: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"its default is {json.dumps(default)}, so it takes true or false, not {text!r}")
        return lowered == "true"
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(
                f"its default is the whole number {default}, so it takes one, not {text!r}"
            ) from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError(
                f"its default is the number {default}, so it takes a number, not {text!r}"
            ) from None
    if isinstance(default, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
