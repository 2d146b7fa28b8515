"""The CLI's output: tables through Rich (imported here only, on first use) and ``--json``.

On a terminal a table fits its width; into a pipe or a file it is not wrapped (one row, one
line), so ``grep`` finds what it looks for. Cell text is never read as Rich markup: a record's
``[…]`` stays as it is.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TextIO

# Into a pipe: wide enough that no row wraps.
PIPE_WIDTH = 10_000


def console(stream: TextIO | None = None) -> Any:
    from rich.console import Console

    stream = stream or sys.stdout  # the current one (tests swap it)
    tty = bool(getattr(stream, "isatty", lambda: False)())
    return Console(file=stream, width=None if tty else PIPE_WIDTH, highlight=False, markup=False, emoji=False)


def print_table(headers: list[str], rows: list[list[Any]], *, title: str | None = None) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        *headers, box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False, show_edge=False
    )
    for row in rows:
        table.add_row(*(value if isinstance(value, Text) else Text(str(value)) for value in row))
    out = console()
    with out.capture() as captured:
        out.print(table)
    # Rich pads every cell to its column's width; trailing blanks only get in a reader's way.
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):  # DynamoDB numbers
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=_default) + "\n")


def workflow_summary(stored: Any) -> dict[str, Any]:
    """A stored workflow for ``workflows list --json``."""
    return {
        "id": stored.id,
        "trigger": stored.document.get("trigger"),
        "enabled": stored.enabled,
        "valid": not stored.problems,
        "problems": list(stored.problems),
    }


def print_workflows(stored: list[Any]) -> None:
    if not stored:
        print("no workflows")
        return
    rows = []
    for workflow in stored:
        state = "INVALID" if workflow.problems else "enabled" if workflow.enabled else "disabled"
        problems = "; ".join(workflow.problems)
        rows.append([workflow.id, workflow.document.get("trigger", "?"), state, problems])
    print_table(["workflow", "trigger", "state", "problems"], rows)


def print_report(report: Any) -> None:
    """``doctor``'s findings: one row per check, then the verdict."""
    from rich.text import Text

    marks = {"ok": ("ok", "green"), "problem": ("PROBLEM", "bold red"), "warning": ("warning", "yellow")}
    rows = []
    for finding in report.findings:
        label, style = marks.get(finding.status, (finding.status, ""))
        rows.append([finding.check, Text(label, style=style), finding.detail, finding.fix])
    where = f"stack {report.stack}" if report.stack else "resources from the environment"
    print_table(
        ["check", "status", "found", "fix"], rows, title=f"clientary-xero doctor: {where} in {report.region}"
    )
    problems = sum(1 for f in report.findings if f.status == "problem")
    print("all checks passed" if not problems else f"{problems} problem(s) found")


@contextlib.contextmanager
def progress(total: int, label: str, stream: TextIO | None = None) -> Iterator[Callable[[Any, str], None]]:
    """A progress bar on a terminal (Rich, on ``stream``: stderr by default), else one line per
    update. Yields ``update(progress, line)``: ``progress`` has ``handed`` and ``started`` (a
    backfill's ``Progress``); ``line`` is what a non-terminal gets."""
    stream = stream or sys.stderr
    if not bool(getattr(stream, "isatty", lambda: False)()):

        def line_only(_: Any, line: str) -> None:
            print(line, file=stream)

        yield line_only
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[started]} started"),
        TimeRemainingColumn(),
        console=Console(file=stream, highlight=False, markup=False, emoji=False),
    )
    with bar:
        task = bar.add_task(label, total=total, started=0)

        def advance(state: Any, _: str) -> None:
            bar.update(task, completed=state.handed, started=state.started)

        yield advance
