"""DynamoDB calls per synced invoice (issue 8 point 4): idle, and in a backlog.

Every DynamoDB request the product makes is counted (a hook on botocore's ``_make_api_call``, so
retries inside botocore count once, as DynamoDB bills them... per request sent: see below) and
attributed to the code site that made it: the operation, the storage method, and the first frame
outside storage/ that called it (the intake, a runner phase, the rate budget, the token provider,
an action's links). Requests the harness itself makes (listing runs, lifting rate blocks) are
not counted.

* **idle**: one invoice pushed and its two steps (contact, invoice) run, the stack otherwise
  quiet; once for a new client (a new contact) and once more for an invoice of the same client
  (its contact linked).
* **backlog**: ``BACKLOG`` invoices of ``BACKLOG // 4`` clients arriving at once (one poll), as
  benchmarks/bench_backlog.py runs it (``make bench`` runs 600): the product's batches, every clock
  simulated, so Xero's 60 a minute holds calls back without real waiting.

``rows()`` gives the figures for the benchmark table (``make bench``); ``python -m
benchmarks.bench_dynamo [--breakdown]`` prints them (and where each call came from).
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Measured at the branch point of issue 8 (main at e165837), with this module.
BASELINE = {"idle, new contact": 34, "idle, linked contact": 26, "backlog": 28.0}
TARGET = {"idle, new contact": 10, "idle, linked contact": 10, "backlog": 15}
# The same without the rate budget's own requests (storage/ratelimit.py, issue 8 point 3): what
# the engine, the intake and the links cost. Before, and the targets of tests/test_dynamo_calls.py.
BASELINE_BESIDES_BUDGET = {"idle, new contact": 25, "idle, linked contact": 22, "backlog": 20.8}
TARGET_BESIDES_BUDGET = {"idle, new contact": 15, "idle, linked contact": 10, "backlog": 11}
BUDGET_SITE = "storage.ratelimit:"
BACKLOG = 100

_PACKAGE = "clientary_xero"
_STORAGE = ("/storage/state.py", "/storage/workflows.py", "/storage/aws.py")


@dataclass
class DynamoCounter:
    """DynamoDB requests by (operation, storage method, caller), while ``counting``."""

    calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    counting: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def by_operation(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (operation, _, _), n in self.calls.items():
            out[operation] += n
        return out

    def by_site(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (operation, method, caller), n in self.calls.items():
            out[f"{caller} -> {method} ({operation})"] += n
        return out

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def record(self, operation: str) -> None:
        if not self.counting:
            return
        sites = _sites(traceback.extract_stack())
        if sites is None:
            return  # the harness's own request
        with self._lock:
            self.calls[(operation, *sites)] += 1


def _sites(stack: traceback.StackSummary) -> tuple[str, str] | None:
    """The storage method that made the request and the first product frame outside storage/ that
    called it (``module:function``); None for a request made outside a Lambda handler (the
    harness listing runs, lifting rate blocks, saving workflows)."""
    paths = [frame.filename.replace("\\", "/") for frame in stack]
    if not any("/functions/" in path and path.endswith("/app.py") for path in paths):
        return None
    method = "?"
    for frame, path in zip(reversed(stack), reversed(paths), strict=True):
        if _PACKAGE not in path:
            continue
        if any(path.endswith(s) for s in _STORAGE):
            if not frame.name.startswith("_"):
                method = frame.name  # the outermost public storage method
            continue
        module = path.rsplit(f"{_PACKAGE}/", 1)[-1].removesuffix(".py").replace("/", ".")
        return method, f"{module}:{frame.name}"
    return method, "handler"


@contextlib.contextmanager
def counting_dynamodb() -> Iterator[DynamoCounter]:
    """Count every DynamoDB request any boto3 client makes meanwhile."""
    from botocore.client import BaseClient

    counter = DynamoCounter()
    original = BaseClient._make_api_call

    def counted(self: Any, operation_name: str, api_params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            counter.record(operation_name)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


# ------------------------------------------------------------------------------- scenarios
@dataclass
class Measured:
    name: str
    invoices: int
    counter: DynamoCounter
    runs: dict[str, int]

    @property
    def per_invoice(self) -> float:
        return self.counter.total / max(1, self.invoices)

    @property
    def per_invoice_besides_budget(self) -> float:
        own = sum(n for (_, _, caller), n in self.counter.calls.items() if not caller.startswith(BUDGET_SITE))
        return own / max(1, self.invoices)


def idle() -> list[Measured]:
    """One invoice of a new client, then one more of the same client (contact linked)."""
    from benchmarks.reliability_harness import drain, stack, statuses

    out: list[Measured] = []
    with stack() as s, counting_dynamodb() as counter:
        client = s.env.clientary.seed_client("Idle Client Ltd")
        for name in ("idle, new contact", "idle, linked contact"):
            counter.counting = False
            invoice = s.env.clientary.add_invoice(
                client["id"], [{"title": "Survey", "quantity": 2, "price": 95.0}], status=1
            )
            counter.reset()
            counter.counting = True
            s.push(invoice["id"])
            drain(s, workers=1)
            counter.counting = False
            snapshot = DynamoCounter(Counter(counter.calls))
            out.append(Measured(name, 1, snapshot, statuses(s.runs())))
    return out


def backlog(size: int = BACKLOG) -> Measured:
    """``size`` invoices of ``size // 4`` clients arriving at once (one poll): the volume benchmark's
    backlog (benchmarks/bench_backlog.py: the product's batches and in-Lambda waits, every clock
    simulated)."""
    from benchmarks import bench_backlog

    v = bench_backlog.backlog(size)
    return Measured("backlog", size, v.dynamodb, v.runs)


def rows(backlog_size: int = BACKLOG) -> list[dict[str, Any]]:
    """The benchmark table's rows: DynamoDB calls per synced invoice, idle and in a backlog."""
    measured = [*idle(), backlog(backlog_size)]
    return [row for m in measured for row in _rows(m)]


def _rows(m: Measured) -> list[dict[str, Any]]:
    """Two rows per scenario: all DynamoDB calls, and those besides the rate budget."""
    label = f"DynamoDB calls per synced invoice, {m.name}"
    if m.name == "backlog":
        label += f" ({m.invoices} invoices at once)"
    succeeded = m.runs.get("SUCCEEDED", 0) == m.invoices or m.name != "backlog"
    total, own = round(m.per_invoice, 1), round(m.per_invoice_besides_budget, 1)
    return [
        {
            "name": label,
            "figure": total,
            "baseline": BASELINE[m.name],
            "target": f"<= {TARGET[m.name]}",
            "passed": total <= TARGET[m.name] and succeeded,
        },
        {
            "name": f"{label}, besides the rate budget",
            "figure": own,
            "baseline": BASELINE_BESIDES_BUDGET[m.name],
            "target": f"<= {TARGET_BESIDES_BUDGET[m.name]}",
            "passed": own <= TARGET_BESIDES_BUDGET[m.name] and succeeded,
        },
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--breakdown", action="store_true", help="print where each call came from")
    parser.add_argument("--backlog", type=int, default=BACKLOG, help="invoices arriving at once")
    args = parser.parse_args(argv)
    measured = [*idle(), backlog(args.backlog)]
    for m in measured:
        print(
            f"{m.name}: {m.per_invoice:.1f} DynamoDB calls per invoice "
            f"({m.counter.total} for {m.invoices}); runs {m.runs}"
        )
        if args.breakdown:
            for operation, n in m.counter.by_operation().most_common():
                print(f"    {n / m.invoices:7.1f}  {operation}")
            for site, n in m.counter.by_site().most_common():
                print(f"    {n / m.invoices:7.1f}  {site}")
    ok = True
    for row in (r for m in measured for r in _rows(m)):
        ok &= row["passed"]
        verdict = "PASS" if row["passed"] else "FAIL"
        print(
            f"{verdict}  {row['name']}: {row['figure']} (baseline {row['baseline']}, target {row['target']})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
