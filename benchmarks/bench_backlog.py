"""Issue 8's volume rows, in-process on the sandboxes with a simulated clock: the 500/20 backfill,
the 600-invoice backlog, Lambda invocations per step, DynamoDB calls per invoice in the backlog,
Clientary calls per idle poll, and the peak memory of an action batch.

**Simulated time, all of it.** ``FrozenSimClock`` moves only when something sleeps or waits on it
(the harness's ``SimClock`` is real time plus an offset, so a loaded machine's slowness showed up as
simulated minutes). Every clock that decides *when* reads it: the rate budget (its in-Lambda sleeps
jump the clock: ``local.simclock.simulated_clocks``), the token provider, the State store's leases,
the Xero sandbox's minute and day windows, and SQS itself — moto's delays, visibility time-outs and
timestamps (``sqs_on``). ``drain_in_time`` is Lambda's SQS event source on that clock: batches of the
queue's size (``local.environment.BATCH_SIZES``, the template's ``BatchSize``), and when no message
is visible it jumps to the earliest one due (a re-sent step's delay, a failed message's visibility
time-out), so each message arrives at its own instant, in order. The old ``bench_budget`` backlog
released every delayed message at once and waited for real time between.

What is not modelled: several Lambdas at once (one worker delivers everything, so the simulated
time is bounded by Xero's schedule and by the waits, not by parallelism, which Xero's limits cap
anyway), and ``MaximumBatchingWindowInSeconds`` (2 s: a partial batch waits that long before it is
delivered; a backlog's batches are full).

    PYTHONPATH=shared:. .venv/bin/python benchmarks/bench_backlog.py [--only backlog] [--breakdown]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRIGGER = "clientary.new_invoice"
XERO_PER_MINUTE = 60
MAX_ELEMENTS = 50  # Xero's most per write
# The targets.
BACKFILL_CALLS_TARGET = 12
WALL_TIME_TARGET = 1.1
PER_STEP_TARGET = 1.2
DYNAMO_BACKLOG_TARGET = 15


# ====================================================================================== the clock
def _frozen_clock() -> Any:
    from clientary_xero.local.simclock import SimClock

    class FrozenSimClock(SimClock):
        """A ``SimClock`` without the real time in it: it moves only by ``sleep``/``advance``."""

        def __init__(self) -> None:
            super().__init__()
            self._base = time.time()

        def time(self) -> float:
            return self._base + self.offset

    return FrozenSimClock()


@contextlib.contextmanager
def sqs_on(sim: Any) -> Iterator[None]:
    """moto's SQS (delays, visibility time-outs, timestamps) on the simulated clock."""
    from moto.sqs import models

    original = models.unix_time_millis
    models.unix_time_millis = lambda *_: sim.time() * 1000.0  # type: ignore[assignment]
    try:
        yield
    finally:
        models.unix_time_millis = original  # type: ignore[assignment]


class XeroLog:
    """Wraps the environment's transport: each Accounting API call's (simulated time, method,
    collection, status), and every Clientary request."""

    def __init__(self, inner: Any, clock: Any) -> None:
        import httpx

        class Transport(httpx.BaseTransport):
            def handle_request(inner_self, request: httpx.Request) -> httpx.Response:
                at = clock()
                response = inner.handle_request(request)
                if request.url.host == "api.xero.com" and "xero-tenant-id" in request.headers:
                    path = request.url.path.removeprefix("/api.xro/2.0").strip("/")
                    with self._lock:
                        self.calls.append((at, request.method, path.split("/", 1)[0], response.status_code))
                elif request.url.host.endswith("clientary.com"):
                    with self._lock:
                        self.clientary += 1
                return response

        self.calls: list[tuple[float, str, str, int]] = []
        self.clientary = 0
        self._lock = threading.Lock()
        self.transport = Transport()

    def made(self) -> list[tuple[float, str, str, int]]:
        """The calls Xero counted (a 429 is not counted against the limits)."""
        return [c for c in self.calls if c[3] != 429]

    def by_kind(self) -> Counter[str]:
        return Counter(f"{method} /{collection}" for _, method, collection, _ in self.made())

    @property
    def rejected(self) -> int:
        return sum(1 for c in self.calls if c[3] == 429)

    def most_in_window(self, seconds: float = 60.0) -> int:
        times = sorted(at for at, *_ in self.made())
        best, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= seconds:
                first += 1
            best = max(best, last - first + 1)
        return best


@dataclass
class Sim:
    env: Any
    sim: Any
    log: XeroLog


@contextlib.contextmanager
def sim_env(*, batch_size: int | None = None, budget: str = "after", workflow: bool = True) -> Iterator[Sim]:
    """A ``LocalEnvironment`` on the sandboxes with every clock simulated (module docstring), the
    product's settings (its 2 s in-Lambda budget wait), the sample workflow put. ``batch_size``:
    the Xero queue's batch (None: the template's); ``budget``: ``after`` (storage/ratelimit.py) or
    ``before`` (the frozen sliding-window budget, benchmarks/baseline_window_budget.py)."""
    from benchmarks.moto_speed import fast_dynamodb

    from clientary_xero.connectors import http
    from clientary_xero.local import environment
    from clientary_xero.local.environment import LocalEnvironment
    from clientary_xero.local.simclock import simulated_clocks

    sim = _frozen_clock()
    sizes = dict(environment.BATCH_SIZES)
    if batch_size is not None:
        environment.BATCH_SIZES["xero"] = batch_size
    try:
        with (
            fast_dynamodb(),
            simulated_clocks(sim),
            sqs_on(sim),
            LocalEnvironment(sim=sim, max_attempts=5) as env,
            _budget(budget, sim),
        ):
            log = XeroLog(http.get_transport(), sim.time)
            http.set_transport(log.transport)
            if workflow:
                from benchmarks.reliability_harness import sample_workflow

                env.put_workflow(sample_workflow())
            yield Sim(env, sim, log)
    finally:
        environment.BATCH_SIZES.clear()
        environment.BATCH_SIZES.update(sizes)


@contextlib.contextmanager
def _budget(kind: str, sim: Any) -> Iterator[None]:
    if kind == "after":
        yield
        return
    from benchmarks.bench_budget import _budget as swap

    with swap(kind, sim):
        yield


# =================================================================================== delivering
@dataclass
class Drained:
    invocations: int = 0  # action (and event) Lambda invocations
    deliveries: Counter[str] = field(default_factory=Counter)  # step (run:step) -> times delivered
    batch_sizes: Counter[int] = field(default_factory=Counter)  # Xero action batches by size
    peak_bytes: dict[int, int] = field(default_factory=dict)  # batch size -> tracemalloc peak

    @property
    def steps(self) -> int:
        return len(self.deliveries)

    @property
    def per_step(self) -> float:
        return sum(self.deliveries.values()) / max(1, self.steps)


def drain_in_time(s: Sim, *, trace_memory: bool = False, max_invocations: int = 50_000) -> Drained:
    """Lambda's SQS event source on the simulated clock (module docstring) until every queue is
    empty. ``trace_memory``: each Xero action invocation's tracemalloc peak, by batch size."""
    import boto3

    from clientary_xero.local import environment as E

    env = s.env
    sqs = boto3.client("sqs", region_name="us-east-1")
    resources = env.resources
    queues = {
        "xero": resources.xero_queue_url,
        "xero_events": resources.xero_event_queue_url,
        "clientary": resources.clientary_queue_url,
    }
    out = Drained()
    while out.invocations < max_invocations:
        progressed = False
        for app, url in queues.items():
            size = E.BATCH_SIZES.get(app, 5)
            received: list[dict[str, Any]] = []
            while len(received) < size:  # SQS hands out at most 10 per receive
                got = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=min(10, size - len(received)), AttributeNames=["All"]
                ).get("Messages", [])
                received.extend(got)
                if not got:
                    break
            if not received:
                continue
            progressed = True
            for message in received:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    body = json.loads(message["Body"])
                    if "step_id" in body:
                        out.deliveries[f"{body['run_id']}:{body['step_id']}"] += 1
            function_dir = E.ACTION_FUNCTIONS.get(app) or E.EVENT_FUNCTIONS[app]
            if app in E.ACTION_FUNCTIONS:
                env.use_action_function(app)
            module = E.load_handler(function_dir)
            event = {"Records": [E.sqs_record(m, url) for m in received]}
            tracing = trace_memory and app == "xero"
            if tracing:
                tracemalloc.start()
            try:
                response = module.lambda_handler(event, E.FakeLambdaContext(f"{function_dir}-{app}"))
            finally:
                if tracing:
                    peak = tracemalloc.get_traced_memory()[1]
                    tracemalloc.stop()
                    out.peak_bytes[len(received)] = max(out.peak_bytes.get(len(received), 0), peak)
            out.invocations += 1
            if app == "xero":
                out.batch_sizes[len(received)] += 1
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            # A failed message stays in flight until the visibility time-out the handler set
            # (simulated); a done one is deleted.
            for message in received:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if progressed:
            continue
        due = _next_due(list(queues.values()), s.sim)
        if due is None:
            return out
        s.sim.advance(max(0.0, due - s.sim.time()) + 0.001)
    raise RuntimeError(f"the queues did not drain in {max_invocations} invocations")


def _next_due(urls: list[str], sim: Any) -> float | None:
    """The simulated instant the next waiting message becomes visible (delayed, or in flight);
    None when the queues are empty."""
    from moto.sqs.models import sqs_backends

    now_ms = sim.time() * 1000
    names = {url.rstrip("/").rsplit("/", 1)[-1] for url in urls}
    due: list[float] = []
    for regions in sqs_backends.values():
        for backend in regions.values():
            for name, queue in backend.queues.items():
                if name not in names:
                    continue
                for message in list(queue._messages):
                    if message.delayed_until > now_ms:
                        due.append(message.delayed_until)
                    elif message.visible_at > now_ms:
                        due.append(message.visible_at)
                    else:
                        due.append(now_ms)  # visible now (received next round)
    return min(due) / 1000 if due else None


# ==================================================================================== scenarios
def seed(s: Sim, invoices: int, clients: int) -> list[dict[str, Any]]:
    customers = [s.env.clientary.seed_client(f"Client {i:04d} Ltd") for i in range(clients)]
    return [
        s.env.clientary.add_invoice(
            customers[i % clients]["id"], [{"title": "Survey", "quantity": 2, "price": 95.0}], status=1
        )
        for i in range(invoices)
    ]


def minimum_calls(invoices: int, clients: int) -> int:
    """Xero calls the batched engine cannot do without: one contact lookup, the contacts in writes
    of 50, the invoices in writes of 50."""
    return 1 + math.ceil(clients / MAX_ELEMENTS) + math.ceil(invoices / MAX_ELEMENTS)


@dataclass
class Volume:
    """One volume scenario's figures."""

    name: str
    invoices: int
    clients: int
    runs: dict[str, int]
    xero_calls: int
    xero_by_kind: dict[str, int]
    rejected: int
    most_in_60s: int
    simulated_seconds: float
    drained: Drained
    dynamodb: Any = None  # bench_dynamo.DynamoCounter
    real_seconds: float = 0.0
    describe: str = ""  # the engine it ran: batches, budget

    @property
    def failed_runs(self) -> int:
        return sum(n for status, n in self.runs.items() if status != "SUCCEEDED")

    @property
    def minutes(self) -> float:
        return self.simulated_seconds / 60

    @property
    def ideal_minutes(self) -> float:
        return self.xero_calls / XERO_PER_MINUTE

    @property
    def dynamodb_per_invoice(self) -> float:
        return self.dynamodb.total / max(1, self.invoices) if self.dynamodb is not None else float("nan")


def _statuses(env: Any) -> dict[str, int]:
    runs = env.state.list_runs(limit=1_000_000)
    return dict(sorted(Counter(str(r.get("status")) for r in runs).items()))


def backlog(
    invoices: int = 600, clients: int | None = None, *, batch_size: int | None = None, budget: str = "after"
) -> Volume:
    """``invoices`` new invoices (four a client by default) found by one poll, all at once."""
    from benchmarks.bench_dynamo import counting_dynamodb

    n_clients = clients or max(1, invoices // 4)
    began = time.perf_counter()
    with sim_env(batch_size=batch_size, budget=budget) as s, counting_dynamodb() as counter:
        counter.counting = False
        s.env.poll(TRIGGER)  # the first poll sets the watermark
        seed(s, invoices, n_clients)
        counter.reset()
        counter.counting = True
        started = s.sim.time()
        s.env.poll(TRIGGER)
        drained = drain_in_time(s)
        counter.counting = False
        return Volume(
            f"backlog ({budget} budget, batch {batch_size or 'template'})",
            invoices,
            n_clients,
            _statuses(s.env),
            len(s.log.made()),
            dict(s.log.by_kind()),
            s.log.rejected,
            s.log.most_in_window(),
            s.sim.time() - started,
            drained,
            counter,
            time.perf_counter() - began,
            _describe(batch_size, budget),
        )


def _describe(batch_size: int | None, budget: str) -> str:
    batches = "batches of one" if batch_size == 1 else f"batches of {batch_size or 'the template'}"
    return f"{batches}, {'the budget before reservations' if budget == 'before' else 'reservations'}"


def backfill(invoices: int = 500, clients: int = 20, *, batch_size: int | None = None) -> Volume:
    """``backfill --local``'s rehearsal (usecases/backfill.py) of ``invoices`` of ``clients``."""
    from benchmarks.bench_dynamo import counting_dynamodb

    from clientary_xero.local.cli import _load_seed
    from clientary_xero.usecases import backfill as B

    began = time.perf_counter()
    with sim_env(batch_size=batch_size) as s, counting_dynamodb() as counter:
        counter.counting = False
        with contextlib.redirect_stdout(io.StringIO()):  # its "seeded the sandboxes: …" line
            _load_seed(s.env, _seed_document(invoices, clients))
        counter.counting = True
        started = s.sim.time()
        records = B.read_history(TRIGGER, B.parse_since("2024-01-01"))
        B.start_runs(B.events_for(TRIGGER, records))
        drained = drain_in_time(s)
        counter.counting = False
        return Volume(
            f"backfill (batch {batch_size or 'template'})",
            invoices,
            clients,
            _statuses(s.env),
            len(s.log.made()),
            dict(s.log.by_kind()),
            s.log.rejected,
            s.log.most_in_window(),
            s.sim.time() - started,
            drained,
            counter,
            time.perf_counter() - began,
            _describe(batch_size, "after"),
        )


def _seed_document(invoices: int, clients: int) -> dict[str, Any]:
    """A ``--seed`` document: ``clients`` Clientary clients, ``invoices`` invoices over them."""
    customers = [{"id": 700 + i, "name": f"Client {i:02d} Ltd"} for i in range(clients)]
    records = []
    for i in range(invoices):
        records.append(
            {
                "id": 9100 + i,
                "number": str(3000 + i),
                "title": f"Survey {i}",
                "date": "2024-03-01",
                "due_date": "2024-03-31",
                "client_id": customers[i % clients]["id"],
                "status": 2,
                "currency_code": "USD",
                "subtotal": "190.00",
                "total_cost": "190.00",
                "balance": "190.00",
                "invoice_items": [
                    {"id": 81000 + i, "item_type": 3, "title": "Survey", "quantity": 2, "price": "95.00"}
                ],
                "created_at": f"2024-03-{1 + i % 28:02d}T09:00:00Z",
                "updated_at": f"2024-03-{1 + i % 28:02d}T09:00:00Z",
            }
        )
    return {"clientary": {"clients": customers, "invoices": records}}


def idle_poll_calls() -> tuple[int, int]:
    """Clientary calls of one poll that finds nothing new (after a first poll set the watermark),
    and of the first poll."""
    with sim_env() as s:
        s.env.clientary.seed_client("Quiet Client Ltd")
        before = s.log.clientary
        s.env.poll(TRIGGER)
        first = s.log.clientary - before
        before = s.log.clientary
        s.env.poll(TRIGGER)
        return s.log.clientary - before, first


def batch_memory(size: int = MAX_ELEMENTS) -> dict[int, int]:
    """tracemalloc peak of the Xero action handler's invocations: ``size`` invoices of ``size``
    new clients (a contact batch, then an invoice batch), and the same for one invoice."""
    peaks: dict[int, int] = {}
    for n in (1, size):
        with sim_env(batch_size=n) as s:
            s.env.poll(TRIGGER)
            # A first invoice, untraced: the handler's lazy imports are not the batch's memory.
            seed(s, 1, 1)
            s.env.poll(TRIGGER)
            drain_in_time(s)
            seed(s, n, n)
            s.env.poll(TRIGGER)
            drained = drain_in_time(s, trace_memory=True)
            peaks[n] = drained.peak_bytes.get(n, 0)
    return peaks


# ========================================================================================= rows
def _row(
    name: str, figure: str, baseline: str, target: str = "", passed: bool | None = None
) -> dict[str, Any]:
    return {"name": name, "figure": figure, "baseline": baseline, "target": target, "passed": passed}


def backfill_rows(after: Volume, unbatched: Volume | None) -> list[dict[str, Any]]:
    least = minimum_calls(after.invoices, after.clients)
    base = f"minimum {least} (1 lookup + contacts and invoices in writes of 50)"
    if unbatched is not None:
        base += f"; unbatched (batch 1): {unbatched.xero_calls} calls, {unbatched.minutes:.1f} simulated min"
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(after.xero_by_kind.items()))
    ok = after.failed_runs == 0
    return [
        _row(
            f"Xero calls to sync {after.invoices} invoices of {after.clients} clients (backfill)",
            f"{after.xero_calls} ({kinds}); runs {_runs(after.runs)}",
            base,
            f"≤ {BACKFILL_CALLS_TARGET}",
            after.xero_calls <= BACKFILL_CALLS_TARGET and ok,
        ),
        _row(
            "that backfill: simulated minutes, DynamoDB calls per invoice",
            f"{after.minutes:.2f} min; {after.dynamodb_per_invoice:.1f} DynamoDB calls per invoice",
            f"{least / XERO_PER_MINUTE:.2f} min at 60 calls/min for the minimum",
        ),
    ]


def backlog_rows(after: Volume, before: Volume | None) -> list[dict[str, Any]]:
    d = after.drained
    ratio = after.minutes / max(after.ideal_minutes, 1e-9)
    least = minimum_calls(after.invoices, after.clients)
    base_time = f"{after.ideal_minutes:.2f} min = {after.xero_calls} calls ÷ 60/min (minimum {least} calls)"
    base_steps = "1.0 (each step delivered once)"
    if before is not None:
        bd = before.drained
        what = f"{before.describe}, {before.invoices} invoices of {before.clients} clients"
        base_time += (
            f"; {what}: {before.minutes:.2f} min for {before.xero_calls} calls = "
            f"{before.minutes / max(before.ideal_minutes, 1e-9):.2f}x, "
            f"{before.failed_runs} failed runs, {before.rejected} x 429"
        )
        base_steps = f"{what}: {bd.per_step:.2f} (most for one step {max(bd.deliveries.values(), default=0)})"
    sizes = ", ".join(f"{n} x {size}" for size, n in sorted(after.drained.batch_sizes.items(), reverse=True))
    return [
        _row(
            f"{after.invoices} invoices of {after.clients} clients at once (one poll): wall time (simulated)",
            f"{after.minutes:.2f} min = {ratio:.2f}x (calls ÷ 60/min); {after.xero_calls} Xero calls; "
            f"failed runs {after.failed_runs}; {after.rejected} x 429; "
            f"most calls in 60 s {after.most_in_60s}",
            base_time,
            f"≤ {WALL_TIME_TARGET}x, 0 failed runs, 0 x 429",
            ratio <= WALL_TIME_TARGET and after.failed_runs == 0 and after.rejected == 0,
        ),
        _row(
            "Lambda invocations per step in that backlog (deliveries of step messages ÷ steps)",
            f"{d.per_step:.2f} (most for one step {max(d.deliveries.values(), default=0)}; "
            f"{d.invocations} invocations for {d.steps} steps; Xero batches {sizes})",
            base_steps,
            f"≤ {PER_STEP_TARGET}",
            d.per_step <= PER_STEP_TARGET,
        ),
        _row(
            "DynamoDB calls per synced invoice in that backlog",
            f"{after.dynamodb_per_invoice:.1f} ({after.dynamodb.total} for {after.invoices})",
            (f"{before.dynamodb_per_invoice:.1f} with batches of one and the old budget; " if before else "")
            + "28.0 at issue 8's branch point (bench_dynamo, 100 invoices)",
            f"≤ {DYNAMO_BACKLOG_TARGET}",
            after.dynamodb_per_invoice <= DYNAMO_BACKLOG_TARGET and after.failed_runs == 0,
        ),
    ]


def _runs(runs: dict[str, int]) -> str:
    return ", ".join(f"{status} {n}" for status, n in runs.items())


def breakdown(v: Volume, top: int = 12) -> list[str]:
    """Where a scenario's DynamoDB calls came from, per invoice."""
    lines = [f"{v.name}: {v.dynamodb_per_invoice:.1f} DynamoDB calls per invoice"]
    for operation, n in v.dynamodb.by_operation().most_common():
        lines.append(f"    {n / v.invoices:7.2f}  {operation}")
    for site, n in v.dynamodb.by_site().most_common(top):
        lines.append(f"    {n / v.invoices:7.2f}  {site}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["backfill", "backlog", "poll", "memory"], action="append")
    parser.add_argument("--invoices", type=int, default=600, help="the backlog's invoices")
    parser.add_argument("--baseline", action="store_true", help="also the unbatched / old-budget runs")
    parser.add_argument("--breakdown", action="store_true", help="DynamoDB calls per caller")
    args = parser.parse_args()
    only = set(args.only or ["backfill", "backlog", "poll", "memory"])
    rows: list[dict[str, Any]] = []
    if "backfill" in only:
        after = backfill()
        rows += backfill_rows(after, backfill(batch_size=1) if args.baseline else None)
        if args.breakdown:
            print("\n".join(breakdown(after)))
    if "backlog" in only:
        after = backlog(args.invoices)
        print(f"backlog: {after.real_seconds:.0f} s real", file=sys.stderr)
        rows += backlog_rows(after, backlog(args.invoices, budget="before") if args.baseline else None)
        if args.breakdown:
            print("\n".join(breakdown(after)))
    if "poll" in only:
        idle, first = idle_poll_calls()
        rows.append(_row("Clientary calls per idle poll", str(idle), f"first poll: {first}"))
    if "memory" in only:
        peaks = batch_memory()
        rows.append(
            _row(
                f"peak memory of a Xero action batch of {MAX_ELEMENTS} (tracemalloc)",
                f"{peaks[MAX_ELEMENTS] / 2**20:.1f} MiB",
                f"{peaks[1] / 2**20:.1f} MiB for one step",
            )
        )
    for row in rows:
        verdict = "" if row["passed"] is None else ("PASS " if row["passed"] else "FAIL ")
        print(f"{verdict}{row['name']}: {row['figure']} (baseline {row['baseline']}; target {row['target']})")


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "shared"), str(ROOT)]
    main()
