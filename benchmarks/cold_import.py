"""Cold-import time of each Lambda handler: what a cold start pays before the handler runs.

Runs ``python -X importtime -c 'import app'`` in a fresh interpreter per sample (with the layer on
the path, as /opt/python is in Lambda) and prints the median and spread of the total, plus the
largest imports of the median run. Figures depend on the machine; compare runs on the same one.

    .venv/bin/python benchmarks/cold_import.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))


def sample(function: str) -> tuple[int, list[tuple[int, str]]]:
    code = "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import app"
    result = subprocess.run(  # noqa: S603 - fixed argument list
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            code,
            str(ROOT / "shared"),
            str(ROOT / "functions" / function),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[tuple[int, str]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        try:
            rows.append((int(cumulative.strip()), name.rstrip()))
        except ValueError:
            continue
    total = next(us for us, name in rows if name.strip() == "app")
    return total, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    sample(FUNCTIONS[0])  # warm the .pyc caches, as a deployed layer has them
    print(f"cold import of each handler, {args.runs} fresh interpreters each (milliseconds)")
    for function in FUNCTIONS:
        samples = [sample(function) for _ in range(args.runs)]
        totals = sorted(t for t, _ in samples)
        median = statistics.median(totals)
        spread = f"min {totals[0] / 1000:.0f}, max {totals[-1] / 1000:.0f}"
        print(f"\n{function}: median {median / 1000:.0f} ms  ({spread})")
        _, rows = min(samples, key=lambda s: abs(s[0] - median))
        top = [r for r in rows if r[1].count("  ") <= 1 and r[1].strip() != "app"]
        for us, name in sorted(top, reverse=True)[:8]:
            print(f"    {us / 1000:7.1f} ms  {name.strip()}")


if __name__ == "__main__":
    main()
