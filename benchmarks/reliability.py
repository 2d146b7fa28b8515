"""`make reliability`: every scenario of benchmarks/reliability_scenarios.py at full size; prints a
table (per scenario its size, figures and PASS/FAIL, then what is in the sandboxes and the DLQs)
and writes it to docs/RELIABILITY.md with the date and the machine.

    .venv/bin/python -m benchmarks.reliability [--only fuzz crashes] [--small] [--size fuzz=20000]
        [--no-write]

Exits 1 when a scenario fails. ``--small`` runs the sizes tests/test_reliability.py uses.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.reliability_harness import Result
from benchmarks.reliability_scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "RELIABILITY.md"
# Sized so that the whole run takes minutes of CPU: moto's DynamoDB costs ~15 ms a request on a
# 2-core machine and a synced invoice about 30 requests, so the 1,000 invoices delivered
# three times take ~8 CPU minutes of the run.
FULL: dict[str, int] = {
    "deliveries": 1000,
    "faults": 100,
    "crashes": 10,
    "token_refresh": 20,
    "invalid_workflows": 30,
    "daily_limit": 50,
    "bad_records": 50,
    "adoption_rename_disabled": 50,
    "fuzz": 10_000,
}
SMALL: dict[str, int] = {
    "deliveries": 8,
    "faults": 10,
    "crashes": 2,
    "token_refresh": 20,
    "invalid_workflows": 4,
    "daily_limit": 8,
    "bad_records": 4,
    "adoption_rename_disabled": 4,
    "fuzz": 1000,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run only these scenarios")
    parser.add_argument("--small", action="store_true", help="the small sizes of tests/test_reliability.py")
    parser.add_argument("--size", nargs="+", default=[], metavar="NAME=N", help="override sizes")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {REPORT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    sizes = dict(SMALL if args.small else FULL)
    for override in args.size:
        name, _, value = override.partition("=")
        if name not in sizes or not value.isdecimal():
            parser.error(f"--size {override!r}: expected NAME=N with NAME one of {sorted(sizes)}")
        sizes[name] = int(value)
    names = args.only or list(SCENARIOS)
    started = time.perf_counter()
    results: list[Result] = []
    for name in names:
        print(f"running {name} ({sizes[name]}) …", file=sys.stderr, flush=True)
        try:
            result = SCENARIOS[name](sizes[name])
        except Exception as exc:  # a scenario that breaks is a FAIL in the table, the others still run
            result = Result(name, name, str(sizes[name]), problems=[f"raised {type(exc).__name__}: {exc}"])
        results.append(result)
        print(row(result), flush=True)
        for problem in result.problems:
            print(f"      ! {problem}", flush=True)
    total = time.perf_counter() - started
    table = render(results, total)
    print()
    print(table)
    if not args.no_write and not args.only and not args.small:
        REPORT.write_text(table)
        print(f"written to {REPORT.relative_to(ROOT)}", file=sys.stderr)
    return 0 if all(r.passed for r in results) else 1


def row(result: Result) -> str:
    verdict = "PASS" if result.passed else "FAIL"
    return f"{result.key}. {result.title} [{result.size}]: {verdict} ({result.seconds:.0f} s)"


def figures_text(figures: dict[str, Any]) -> str:
    parts = []
    for key, value in figures.items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
        parts.append(f"{key}: {shown}")
    return "; ".join(parts).replace("|", "/")


def render(results: list[Result], total_seconds: float) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    system = f"{platform.system()} {platform.machine()}"
    machine = f"{system}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        "# Reliability",
        "",
        "Written by `make reliability` (benchmarks/reliability.py; the scenarios are in",
        "benchmarks/reliability_scenarios.py, and tests/test_reliability.py runs each small in `make test`).",
        "The real Lambda handlers, engine and storage (DynamoDB, SQS and Secrets Manager in moto) against",
        "the Xero and Clientary sandboxes, with faults, crashes, concurrency and hostile requests injected.",
        "Xero's 60 calls a minute and its daily limit are enforced on a simulated clock (the sandbox, the",
        "rate budget, the token provider and the step leases share it), so an hour of Xero time takes the",
        "seconds the CPU needs.",
        "",
        f"Run: {now}; {machine}; {total_seconds / 60:.1f} min in all.",
        "",
        "| # | scenario | size | figures | result |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        verdict = "PASS" if r.passed else "FAIL: " + "; ".join(r.problems).replace("|", "/")
        lines.append(
            f"| {r.key} | {r.title} | {r.size} | {figures_text(r.figures)}; {r.seconds:.0f} s | {verdict} |"
        )
    census: dict[str, int] = {}
    for r in results:
        for key, value in r.census.items():
            census[key] = census.get(key, 0) + value
    lines += [
        "",
        "In the sandboxes and the DLQs at the end of the scenarios (summed over their stacks):",
        "",
        "| " + " | ".join(census) + " |",
        "|" + "---|" * len(census),
        "| " + " | ".join(str(v) for v in census.values()) + " |",
        "",
        f"{sum(r.passed for r in results)} of {len(results)} scenarios pass.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
