"""The reliability scenarios of issue 7: the real handlers, engine and storage (moto) against the
sandboxes, with faults, crashes, concurrency and hostile requests injected.

Each scenario is a function ``name(size) -> Result``: it builds its own stack (``stack()``: a
``LocalEnvironment`` with a simulated clock), drives the handlers the way API Gateway, EventBridge
and SQS would, and returns its figures and the problems found (none: PASS). ``benchmarks/
reliability.py`` runs them at full size and writes docs/RELIABILITY.md; tests/test_reliability.py
runs them small.

**Simulated time.** Xero's 60 calls a minute would make 1,000 invoices take most of an hour. The
sandbox, the shared rate budget, the token provider and the State table's leases all read one
``SimClock``: real time plus an offset. Whenever the budget would wait for the minute window, the
clock jumps instead of the process sleeping, so every limit is enforced exactly as Xero and the
budget enforce it, at the pace of the CPU. The figures give both the real and the simulated time.

**Workers.** A worker is a copy of each handler module (its own Powertools ``BatchProcessor``, as a
separate Lambda has), fed by ``drain()`` like Lambda's SQS event source: batches of up to 5,
partial failures back on the queue, SQS's ``maxReceiveCount`` moving a message to its DLQ. A
message that failed is made visible again at once (fast-forward). moto serves requests from
several threads, each applied atomically (a lock around moto's dispatcher), as DynamoDB applies
each request atomically.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import importlib.util
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_WORKFLOW = ROOT / "shared" / "clientary_xero" / "local" / "samples" / "invoice_to_xero.yaml"
TRIGGER = "clientary.new_invoice"
PUSH_TRIGGERS = (
    "new_invoice",
    "new_expense",
    "new_project",
    "new_client",
    "new_estimate",
    "new_lead",
    "new_task",
    "new_payment",
    "new_staff",
    "new_contract",
)
# Step lease in (simulated) seconds; a crashed worker's lease runs out by jumping the clock past it.
LEASE_SECONDS = 90


# --------------------------------------------------------------------------------------- results
@dataclass
class Result:
    """One scenario's outcome: what it did (size), what it measured (figures), what went wrong."""

    key: str
    title: str
    size: str
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    census: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)


class InjectedCrash(BaseException):
    """The Lambda died here (time-out, out of memory): no ``except Exception`` sees it."""


# ------------------------------------------------------------------------------------ the clock
class SimClock:
    """Real time plus an offset that ``sleep``/``advance`` move forward (never backwards)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.offset += max(0.0, float(seconds))


@contextlib.contextmanager
def _simulated_clocks(sim: SimClock) -> Iterator[None]:
    """Make every budget, token provider and State store built meanwhile read ``sim``."""
    from clientary_xero.connectors.xero.auth import XeroTokenProvider
    from clientary_xero.storage.ratelimit import RateBudget
    from clientary_xero.storage.state import StateStore

    patched = [
        (RateBudget.__init__, {"clock": sim.time, "sleep": sim.sleep}),
        (XeroTokenProvider.__init__, {"clock": sim.time, "sleep": sim.sleep}),
        (StateStore.__init__, {"clock": sim.time}),
    ]
    saved = [(fn, dict(fn.__kwdefaults__ or {})) for fn, _ in patched]
    try:
        for fn, values in patched:
            assert fn.__kwdefaults__ is not None
            for name, value in values.items():
                if name in fn.__kwdefaults__:
                    fn.__kwdefaults__[name] = value
        yield
    finally:
        for fn, old in saved:
            fn.__kwdefaults__ = old


@dataclass
class SqsLog:
    """Every message body sent to any queue, in order (for leak scans and enqueue counts)."""

    bodies: list[tuple[str, str]] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.bodies)


@contextlib.contextmanager
def _atomic_moto(log: SqsLog) -> Iterator[None]:
    """moto's dispatcher under one lock (each request atomic), logging every SQS send."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def atomic(self: Any, request: Any) -> Any:
        with lock:
            target = str(request.headers.get("X-Amz-Target", "") or "")
            if target.endswith((".SendMessage", ".SendMessageBatch")):
                with contextlib.suppress(ValueError, TypeError):
                    body = json.loads(request.body or b"{}")
                    entries = body.get("Entries") or [body]
                    for entry in entries:
                        log.bodies.append((str(body.get("QueueUrl", "")), str(entry.get("MessageBody", ""))))
            return original(self, request)

    BotocoreStubber.process_request = atomic  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------ the stack
# Callbacks run just before a stack closes (tests/test_no_secret_leaks.py scans what it holds).
STACK_WATCHERS: list[Callable[[Stack], None]] = []


@dataclass
class Stack:
    env: Any
    sim: SimClock
    sqs: SqsLog
    responses: list[dict[str, Any]] = field(default_factory=list)
    _workers: dict[int, dict[str, ModuleType]] = field(default_factory=dict)

    @property
    def tenant(self) -> str:
        return str(self.env.xero_tenant_id())

    def workflow(self, document: dict[str, Any]) -> None:
        self.env.put_workflow(document)

    def handler(self, worker: int, function_dir: str) -> ModuleType:
        """The handler module of one worker: a separate copy per worker, as per Lambda instance."""
        modules = self._workers.setdefault(worker, {})
        if function_dir not in modules:
            from clientary_xero.local.environment import FUNCTIONS_DIR

            path = FUNCTIONS_DIR / function_dir / "app.py"
            name = f"reliability_worker{worker}_{function_dir}"
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            modules[function_dir] = module
        return modules[function_dir]

    def push(self, record_id: Any, *, trigger: str = TRIGGER, **kwargs: Any) -> dict[str, Any]:
        response: dict[str, Any] = self.env.push(trigger, record_id, **kwargs)
        self.responses.append(response)
        return response

    def poll(self, trigger: str = TRIGGER) -> dict[str, Any]:
        return dict(self.env.poll(trigger))

    def runs(self, status: str | None = None) -> list[dict[str, Any]]:
        return list(self.env.state.list_runs(limit=1_000_000, status=status))

    def census(self) -> dict[str, int]:
        """What is in the sandboxes and the DLQs now."""
        import boto3

        invoices = self.env.xero.invoices(self.tenant)
        contacts = self.env.xero.contacts(self.tenant)
        numbers = Counter(str(c.get("ContactNumber") or "") for c in contacts if c.get("ContactNumber"))
        invoice_numbers = Counter(
            str(i.get("InvoiceNumber") or "") for i in invoices if i.get("InvoiceNumber")
        )
        sqs = boto3.client("sqs", region_name="us-east-1")
        resources = self.env.resources
        dlq = 0
        for url in (resources.xero_dlq_url, resources.clientary_dlq_url, resources.xero_event_dlq_url):
            if url:
                attrs = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                dlq += sum(int(v) for v in attrs.values())
        return {
            "xero_invoices": len(invoices),
            "xero_contacts": len(contacts),
            "duplicate_contacts": sum(n - 1 for n in numbers.values() if n > 1),
            "duplicate_invoice_numbers": sum(n - 1 for n in invoice_numbers.values() if n > 1),
            "dlq_messages": dlq,
        }


@contextlib.contextmanager
def stack(
    *,
    max_attempts: int = 5,
    workflows: tuple[dict[str, Any], ...] | None = None,
    day_limit: int | None = None,
) -> Iterator[Stack]:
    from clientary_xero.local.environment import LocalEnvironment
    from clientary_xero.settings import reset_settings
    from clientary_xero.usecases.steps import reset_runner

    sim = SimClock()
    log = SqsLog()
    with _simulated_clocks(sim), _atomic_moto(log), LocalEnvironment(max_attempts=max_attempts) as env:
        # The budget may wait for the minute window as long as it takes: its sleep jumps the clock.
        env._set_env({"XERO_BUDGET_WAIT_SECONDS": "120", "STEP_LEASE_SECONDS": str(LEASE_SECONDS)})
        reset_settings()
        reset_runner()
        env.xero.clock = sim.time
        if day_limit is not None:
            env.xero.day_limit = day_limit
        s = Stack(env, sim, log)
        for document in workflows if workflows is not None else (sample_workflow(),):
            s.workflow(document)
        try:
            yield s
        finally:
            for watcher in list(STACK_WATCHERS):
                watcher(s)
            for modules in s._workers.values():
                for module in modules.values():
                    sys.modules.pop(module.__name__, None)


def sample_workflow(**changes: Any) -> dict[str, Any]:
    from clientary_xero.workflows.loader import read_document

    document: dict[str, Any] = copy.deepcopy(read_document(SAMPLE_WORKFLOW))
    document.update(changes)
    return document


def seed_invoices(
    s: Stack, count: int, *, clients: int | None = None, price: float = 95.0
) -> list[dict[str, Any]]:
    """``count`` invoices over ``clients`` clients (default: four invoices a client)."""
    n_clients = max(1, clients if clients is not None else count // 4)
    customers = [s.env.clientary.seed_client(f"Client {i:04d} Ltd") for i in range(n_clients)]
    return [
        s.env.clientary.add_invoice(
            customers[i % n_clients]["id"], [{"title": "Survey", "quantity": 2, "price": price}], status=1
        )
        for i in range(count)
    ]


# ----------------------------------------------------------------------------------- delivering
QUEUE_APPS = (
    ("xero", "xero_queue_url"),
    ("xero_events", "xero_event_queue_url"),
    ("clientary", "clientary_queue_url"),
)


def deliver(s: Stack, worker: int, app: str, messages: list[dict[str, Any]], url: str) -> set[str]:
    """One Lambda invocation for an SQS batch; returns the ids of the messages that failed. A
    crash (``InjectedCrash``) fails the whole batch, as a dead invocation returns every message."""
    from clientary_xero.local.environment import FakeLambdaContext, sqs_record

    function_dir = "xero_trigger" if app == "xero_events" else "step_actions"
    if function_dir == "step_actions":
        s.env._set_env({"STEP_APP": app})
    module = s.handler(worker, function_dir)
    event = {"Records": [sqs_record(m, url) for m in messages]}
    try:
        response = module.lambda_handler(event, FakeLambdaContext(f"{function_dir}-{app}"))
    except InjectedCrash:
        s.sim.advance(LEASE_SECONDS + 1)  # SQS redelivers after the visibility time-out; leases ran out
        return {m["MessageId"] for m in messages}
    return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}


def drain(s: Stack, *, workers: int = 1, max_seconds: float = 3600.0) -> int:
    """Deliver every queued message to the handlers (``workers`` in parallel) until all queues are
    empty. Returns the number of batches delivered."""
    import boto3

    from clientary_xero.settings import reset_settings

    reset_settings()
    sqs = boto3.client("sqs", region_name="us-east-1")
    resources = s.env.resources
    queues = [(app, getattr(resources, attr)) for app, attr in QUEUE_APPS if getattr(resources, attr, "")]
    busy = [0]
    batches = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            while time.monotonic() < deadline:
                progressed = False
                for app, url in queues:
                    with lock:
                        busy[0] += 1
                    try:
                        received = sqs.receive_message(
                            QueueUrl=url, MaxNumberOfMessages=5, AttributeNames=["All"]
                        ).get("Messages", [])
                        if not received:
                            continue
                        progressed = True
                        failed = deliver(s, worker, app, received, url)
                        with lock:
                            batches[0] += 1
                        for message in received:
                            if message["MessageId"] in failed:
                                # Fast-forward: whatever delay the handler set has "passed".
                                with contextlib.suppress(Exception):
                                    sqs.change_message_visibility(
                                        QueueUrl=url,
                                        ReceiptHandle=message["ReceiptHandle"],
                                        VisibilityTimeout=0,
                                    )
                            else:
                                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    finally:
                        with lock:
                            busy[0] -= 1
                if progressed:
                    continue
                with lock:
                    others_busy = busy[0] > 0
                if not others_busy and _pending(sqs, queues) == 0:
                    return
                time.sleep(0.02)
            raise TimeoutError(f"queues not drained within {max_seconds:.0f} s")
        except BaseException as exc:  # reported to the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return batches[0]


def _pending(sqs: Any, queues: list[tuple[str, str]]) -> int:
    total = 0
    for _, url in queues:
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        total += sum(int(v) for v in attrs.values())
    return total


def redeliver_every_step(s: Stack, runs: list[dict[str, Any]]) -> int:
    """SQS at-least-once: each step message of each run arrives once more."""
    from clientary_xero.storage.queue import StepQueue

    queue = StepQueue()
    sent = 0
    for run in runs:
        steps = [step["id"] for step in run.get("workflow", {}).get("steps", []) if "id" in step]
        messages = [{"run_id": run["run_id"], "step_id": step, "generation": 0} for step in steps]
        if messages:
            sent += queue.send_batch("xero", messages)
    return sent


def replay_failed(s: Stack, runs: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """``runs replay`` for each run, as the CLI does; returns (replayed, refusals)."""
    from clientary_xero.engine.runner import replay
    from clientary_xero.storage.queue import StepQueue

    done, refused = 0, []
    for run in runs:
        try:
            replay(s.env.state, StepQueue(), run["run_id"])
            done += 1
        except Exception as exc:  # a refusal is a figure here, not a crash of the harness
            refused.append(f"{run['run_id']}: {exc}")
    return done, refused


def statuses(runs: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(r.get("status")) for r in runs).items()))


def _error_text(run: dict[str, Any]) -> str:
    error = run.get("error") or {}
    if isinstance(error, dict):
        return " ".join([str(error.get("message", ""))] + [str(m) for m in error.get("messages") or []])
    return str(error)


def _timed(result: Result, started: float, s: Stack) -> Result:
    result.seconds = time.perf_counter() - started
    result.figures.setdefault("simulated minutes", round(s.sim.offset / 60, 1))
    result.census = s.census()
    return result


# ============================================================================== 1. deliveries
def deliveries(size: int = 1000) -> Result:
    """Each invoice delivered three times — poll, push, SQS redelivery — some concurrently."""
    result = Result("1", "every invoice delivered 3 times (poll, push, SQS redelivery)", f"{size} invoices")
    started = time.perf_counter()
    with stack() as s:
        s.poll()  # the first poll sets the watermark
        invoices = seed_invoices(s, size)
        ids = [i["id"] for i in invoices]
        errors: list[BaseException] = []

        def guarded(fn: Callable[[], Any]) -> Callable[[], None]:
            def run() -> None:
                try:
                    fn()
                except BaseException as exc:
                    errors.append(exc)

            return run

        # The schedule and two pushers at once, the pushers from opposite ends.
        half = len(ids) // 2
        threads = [
            threading.Thread(target=guarded(s.poll)),
            threading.Thread(target=guarded(lambda: [s.push(i) for i in ids[:half]])),
            threading.Thread(target=guarded(lambda: [s.push(i) for i in reversed(ids[half:])])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result.expect(not errors, f"trigger errors: {[repr(e) for e in errors[:3]]}")
        s.poll()  # whatever the concurrent poll missed
        batches = drain(s, workers=2)
        runs = s.runs()
        redelivered = redeliver_every_step(s, runs)
        batches += drain(s, workers=2)
        s.poll()
        batches += drain(s, workers=2)
        runs = s.runs()
        census = s.census()
        pushed = [json.loads(r["body"]) for r in s.responses if r.get("statusCode") == 202]
        result.figures.update(
            {
                "deliveries": size * 3,
                "pushes accepted": len(pushed),
                "redelivered messages": redelivered,
                "runs": statuses(runs),
                "Xero calls": len([r for r in s.env.xero.requests if "api.xero.com" in r["url"]]),
            }
        )
        result.expect(census["xero_invoices"] == size, f"{census['xero_invoices']} Xero invoices, not {size}")
        result.expect(census["duplicate_contacts"] == 0, f"{census['duplicate_contacts']} duplicate contacts")
        result.expect(census["duplicate_invoice_numbers"] == 0, "duplicate invoice numbers")
        result.expect(len(runs) == size, f"{len(runs)} runs for {size} invoices")
        result.expect(statuses(runs) == {"SUCCEEDED": size}, f"runs: {statuses(runs)}")
        result.expect(census["dlq_messages"] == 0, f"{census['dlq_messages']} DLQ messages")
        return _timed(result, started, s)


# ================================================================================ 2. Xero faults
def faults(size: int = 300, rate: float = 0.2) -> Result:
    """A fifth of Xero's answers are 429, 500, 503 or a time-out (before or after Xero acted)."""
    result = Result("2", f"{rate:.0%} of Xero calls fail (429, 500, 503, time-outs)", f"{size} invoices")
    started = time.perf_counter()
    with stack() as s:
        s.poll()
        seed_invoices(s, size)
        s.poll()
        s.env.xero.inject_faults(rate, seed=size)
        drain(s, workers=2)
        s.env.xero.inject_faults(0)
        first = s.runs()
        ended = statuses(first)
        failed = [r for r in first if r.get("status") == "FAILED"]
        replayed, refused = replay_failed(s, failed)
        drain(s, workers=2)
        runs = s.runs()
        census = s.census()
        result.figures.update(
            {
                "faults injected": dict(sorted(s.env.xero.fault_counts.items())),
                "after the faults": ended,
                "replayed": replayed,
                "after replay": statuses(runs),
            }
        )
        result.expect(set(ended) <= {"SUCCEEDED", "FAILED"}, f"runs left unfinished: {ended}")
        result.expect(not refused, f"replays refused: {refused[:3]}")
        result.expect(statuses(runs) == {"SUCCEEDED": size}, f"after replay: {statuses(runs)}")
        result.expect(census["xero_invoices"] == size, f"{census['xero_invoices']} Xero invoices, not {size}")
        result.expect(census["duplicate_contacts"] == 0, f"{census['duplicate_contacts']} duplicate contacts")
        result.expect(census["duplicate_invoice_numbers"] == 0, "duplicate invoice numbers")
        return _timed(result, started, s)


# ==================================================================================== 3. crashes
CRASH_POINTS = ("before the call", "after the answer", "after the checkpoint", "after the next message")


@contextlib.contextmanager
def _crashing(s: Stack, point: str, crashed: set[tuple[str, str]]) -> Iterator[None]:
    """Crash each step of each run once, at ``point``."""
    from clientary_xero.engine.runner import StepRunner
    from clientary_xero.storage.queue import StepQueue
    from clientary_xero.storage.state import StateStore

    current = threading.local()

    def due() -> bool:
        key = getattr(current, "key", None)
        if key is None or key in crashed:
            return False
        crashed.add(key)
        return True

    real_execute = StepRunner.execute

    def execute(self: Any, message: dict[str, Any], **kwargs: Any) -> Any:
        current.key = (str(message["run_id"]), str(message["step_id"]))
        try:
            return real_execute(self, message, **kwargs)
        finally:
            current.key = None

    sandbox = s.env.xero
    real_handle = sandbox.handle_request

    def handle(request: Any) -> Any:
        api = request.url.host == "api.xero.com"
        if api and point == "before the call" and due():
            raise InjectedCrash(point)
        response = real_handle(request)
        if api and point == "after the answer" and due():
            raise InjectedCrash(point)
        return response

    real_finish = StateStore.finish_step

    def finish(self: Any, run_id: str, step_id: str, **kwargs: Any) -> None:
        real_finish(self, run_id, step_id, **kwargs)
        if point == "after the checkpoint" and kwargs.get("status") == "SUCCEEDED" and due():
            raise InjectedCrash(point)

    real_send = StepQueue.send

    def send(self: Any, app: str, message: dict[str, Any], **kwargs: Any) -> None:
        real_send(self, app, message, **kwargs)
        if point == "after the next message" and due():
            raise InjectedCrash(point)

    StepRunner.execute = execute  # type: ignore[method-assign]
    StateStore.finish_step = finish  # type: ignore[method-assign]
    StepQueue.send = send  # type: ignore[method-assign]
    sandbox.handle_request = handle
    try:
        yield
    finally:
        StepRunner.execute = real_execute  # type: ignore[method-assign]
        StateStore.finish_step = real_finish  # type: ignore[method-assign]
        StepQueue.send = real_send  # type: ignore[method-assign]
        sandbox.handle_request = real_handle


def crashes(size: int = 50) -> Result:
    """The Lambda dies before the Xero call, after Xero's answer, after the checkpoint, after
    sending the next step's message: each step of each run once, at each point."""
    result = Result("3", "a crash at 4 points of every step", f"{size} invoices x {len(CRASH_POINTS)} points")
    started = time.perf_counter()
    total_crashes = 0
    census: Counter[str] = Counter()
    last: Stack | None = None
    for point in CRASH_POINTS:
        # Attempts: each crash costs the messages of its batch one receive.
        with stack(max_attempts=20) as s:
            s.poll()
            seed_invoices(s, size)
            s.poll()
            crashed: set[tuple[str, str]] = set()
            with _crashing(s, point, crashed):
                drain(s)
            drain(s)
            runs = s.runs()
            total_crashes += len(crashed)
            here = s.census()
            census.update(here)
            lost = [
                f"{r['run_id']}/{step['step_id']}"
                for r in runs
                for step in s.env.state.get_steps(r["run_id"])
                if step.get("status") != "SUCCEEDED" or not step.get("output")
            ]
            result.figures[f"crashes {point}"] = len(crashed)
            result.expect(len(crashed) > 0, f"{point}: no crash injected")
            result.expect(statuses(runs) == {"SUCCEEDED": size}, f"{point}: runs {statuses(runs)}")
            result.expect(
                here["xero_invoices"] == size, f"{point}: {here['xero_invoices']} invoices, not {size}"
            )
            result.expect(
                here["duplicate_contacts"] == 0, f"{point}: {here['duplicate_contacts']} duplicate contacts"
            )
            result.expect(here["duplicate_invoice_numbers"] == 0, f"{point}: duplicate invoice numbers")
            result.expect(not lost, f"{point}: steps without a checkpoint: {lost[:3]}")
            last = s
    result.figures["crashes"] = total_crashes
    assert last is not None
    result.seconds = time.perf_counter() - started
    result.census = dict(census)
    return result


# =============================================================================== 4. token refresh
def token_refresh(size: int = 20) -> Result:
    """``size`` workers (separate Lambdas: own token provider and budget) find the token expired;
    the token endpoint fails the first refresh."""
    from clientary_xero.connectors.xero.client import build_xero_client
    from clientary_xero.errors import RetryableError

    result = Result("4", "workers on an expired token; the token endpoint fails once", f"{size} workers")
    started = time.perf_counter()
    with stack() as s:
        s.sim.advance(3600)  # the access token expired half an hour ago
        s.env.xero.fail_token_next(503)
        barrier = threading.Barrier(size)
        retries: Counter[str] = Counter()
        outcomes: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            client = build_xero_client()
            barrier.wait()
            for _attempt in range(5):  # SQS would deliver the step again
                try:
                    client.request("GET", "/Contacts")
                    with lock:
                        outcomes.append("ok")
                    return
                except RetryableError as exc:
                    with lock:
                        retries[type(exc).__name__] += 1
                except Exception as exc:
                    with lock:
                        outcomes.append(f"{type(exc).__name__}: {exc}")
                    return
            with lock:
                outcomes.append("stuck")

        threads = [threading.Thread(target=worker) for _ in range(size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # And the handlers go on with the refreshed token.
        s.poll()
        seed_invoices(s, 5)
        s.poll()
        drain(s)
        result.figures.update(
            {
                "refreshes": s.env.xero.refresh_count,
                "invalid_grant": s.env.xero.invalid_grants,
                "workers done": outcomes.count("ok"),
                "retries": dict(retries),
                "runs after": statuses(s.runs()),
            }
        )
        result.expect(s.env.xero.refresh_count == 1, f"{s.env.xero.refresh_count} refreshes, not 1")
        result.expect(s.env.xero.invalid_grants == 0, f"{s.env.xero.invalid_grants} invalid_grant answers")
        result.expect(outcomes.count("ok") == size, f"workers: {Counter(outcomes).most_common(3)}")
        result.expect(statuses(s.runs()) == {"SUCCEEDED": 5}, f"runs after: {statuses(s.runs())}")
        return _timed(result, started, s)


# ============================================================================ 5. invalid workflows
BROKEN = {
    "bad-expression": ("filter", lambda d: d.update(filter="{% invoice.total_cost > %}")),
    "unknown-action": ("xero.create_unicorn", lambda d: d["steps"][0].update(action="xero.create_unicorn")),
    "missing-field": ("action", lambda d: d["steps"][0].pop("action")),
}


def invalid_workflows(size: int = 50) -> Result:
    """Workflows edited in the DynamoDB table into something invalid beside a good one."""
    import boto3

    result = Result("5", "workflows edited in DynamoDB into invalid ones", f"{size} invoices x 4 workflows")
    started = time.perf_counter()
    with stack(workflows=()) as s:
        s.workflow(sample_workflow(id="good"))
        table = boto3.resource("dynamodb", region_name="us-east-1").Table(s.env.workflows.table_name)
        for wid, (_, breaks) in BROKEN.items():
            s.workflow(sample_workflow(id=wid))
            item = table.get_item(Key={"id": wid})["Item"]  # as the console shows it
            breaks(item)
            table.put_item(Item=item)
        s.poll()
        seed_invoices(s, size)
        s.poll()
        drain(s)
        runs = s.runs()
        by_workflow: dict[str, list[dict[str, Any]]] = {}
        for run in runs:
            by_workflow.setdefault(str(run.get("workflow_id")), []).append(run)
        result.figures["runs"] = {wid: statuses(r) for wid, r in sorted(by_workflow.items())}
        good = by_workflow.get("good", [])
        result.expect(statuses(good) == {"SUCCEEDED": size}, f"good workflow: {statuses(good)}")
        for wid, (reason, _) in BROKEN.items():
            mine = by_workflow.get(wid, [])
            result.expect(statuses(mine) == {"FAILED": size}, f"{wid}: {statuses(mine)}")
            unexplained = [r["run_id"] for r in mine if reason not in _error_text(r)]
            result.expect(not unexplained, f"{wid}: {len(unexplained)} runs fail without naming {reason!r}")
        census = s.census()
        result.expect(census["xero_invoices"] == size, f"{census['xero_invoices']} Xero invoices, not {size}")
        return _timed(result, started, s)


# ================================================================================ 6. daily limit
def daily_limit(size: int = 100) -> Result:
    """Xero's daily limit is reached halfway: runs park, and complete after the reset."""
    result = Result("6", "Xero's daily limit: runs park, resume after the reset", f"{size} invoices")
    started = time.perf_counter()
    # About three calls an invoice: the limit stops the work about halfway through the first day.
    with stack(day_limit=max(3, size * 3 // 2)) as s:
        s.poll()
        seed_invoices(s, size)
        s.poll()
        drain(s)
        first = s.runs()
        parked = len([r for r in first if r.get("status") == "WAITING"])
        days = 0
        resumed = 0
        while days < 10 and any(r.get("status") == "WAITING" for r in s.runs()):
            days += 1
            now = s.sim.time()
            s.sim.advance((int(now // 86400) + 1) * 86400 - now + 60)  # past Xero's midnight reset
            from clientary_xero.local.environment import FakeLambdaContext, load_handler, scheduled_event

            answer = load_handler("resume_parked").lambda_handler(
                scheduled_event(), FakeLambdaContext("resume")
            )
            resumed += int(answer.get("resumed", 0))
            drain(s)
        runs = s.runs()
        census = s.census()
        result.figures.update(
            {
                "day limit": s.env.xero.day_limit,
                "after day 1": statuses(first),
                "resets": days,
                "resumed": resumed,
                "in the end": statuses(runs),
            }
        )
        result.expect(parked > 0, "no run was parked (the limit was not reached)")
        result.expect(statuses(runs) == {"SUCCEEDED": size}, f"in the end: {statuses(runs)}")
        result.expect(census["xero_invoices"] == size, f"{census['xero_invoices']} Xero invoices, not {size}")
        result.expect(census["duplicate_contacts"] == 0, f"{census['duplicate_contacts']} duplicate contacts")
        result.expect(census["dlq_messages"] == 0, f"{census['dlq_messages']} DLQ messages")
        return _timed(result, started, s)


# ============================================================================= 7. one bad record
GUARDED_FILTER = (
    "{% invoice.total_cost >= 50000 ? $fromMillis(invoice.total_cost * 1e15) : "
    "($length(invoice.title) >= 20 ? $exists($match(invoice.title, /(a+)+$/)) : invoice.total_cost > 0) %}"
)
BIG_LINES = 2800


def bad_records(size: int = 100, *, runaway: int = 28) -> Result:
    """A poisoned record (``$fromMillis(1e20)``), a runaway regex and a 432 KB record among good
    records on a polled trigger."""
    from clientary_xero.workflows.loader import read_document  # noqa: F401 - warm import

    result = Result(
        "7", "a poisoned, a runaway-regex and a 432 KB record among good ones", f"{size} good invoices"
    )
    started = time.perf_counter()
    with stack(workflows=(sample_workflow(filter=GUARDED_FILTER),)) as s:
        s.poll()
        c = s.env.clientary
        customer = c.seed_client("Steady Customer Ltd")
        line = [{"title": "Survey", "quantity": 2, "price": 95.0}]
        good = [c.add_invoice(customer["id"], line, status=1)["id"] for _ in range(size // 2)]
        poison = c.add_invoice(
            customer["id"], [{"title": "Big job", "quantity": 1, "price": 100000.0}], status=1
        )
        regex = c.add_invoice(customer["id"], line, status=1, title="a" * runaway + "!")
        big_lines = [
            {
                "title": f"Line {n:04d}: site visit, survey and written report for the client",
                "quantity": 1,
                "price": 1.0,
            }
            for n in range(BIG_LINES)
        ]
        big = c.add_invoice(customer["id"], big_lines, status=1)
        good += [c.add_invoice(customer["id"], line, status=1)["id"] for _ in range(size - size // 2)]
        poll_errors: list[str] = []
        poll_started = time.perf_counter()
        for _ in range(3):  # three schedules firing
            try:
                s.poll()
            except Exception as exc:
                poll_errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
        poll_seconds = time.perf_counter() - poll_started
        later = c.add_invoice(customer["id"], line, status=1)["id"]
        try:
            s.poll()
        except Exception as exc:
            poll_errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
        drain(s)
        runs = {str(r.get("record_id")): r for r in s.runs()}

        def status_of(record_id: Any) -> str:
            return str(runs.get(str(record_id), {}).get("status", "no run"))

        big_record = c.get_record("invoices", big["id"]) or {}
        result.figures.update(
            {
                "poll errors": len(poll_errors),
                "3 polls took (s)": round(poll_seconds, 1),
                "poisoned": status_of(poison["id"]),
                "regex": status_of(regex["id"]),
                "big record (KB)": len(json.dumps(big_record)) // 1024,
                "big": status_of(big["id"]),
                "good": statuses([runs[str(g)] for g in good if str(g) in runs]),
                "later invoice": status_of(later),
            }
        )
        result.expect(not poll_errors, f"polls raised: {poll_errors[:2]}")
        result.expect(status_of(poison["id"]) == "FAILED", f"poisoned record: {status_of(poison['id'])}")
        result.expect(
            "filter" in _error_text(runs.get(str(poison["id"]), {})),
            "the poisoned run does not say the filter failed",
        )
        result.expect(
            status_of(regex["id"]) in ("FAILED", "FILTERED"), f"runaway regex: {status_of(regex['id'])}"
        )
        result.expect(
            status_of(big["id"]) in ("FAILED", "SUCCEEDED"), f"432 KB record: {status_of(big['id'])}"
        )
        bad_good = [g for g in good if status_of(g) != "SUCCEEDED"]
        result.expect(not bad_good, f"{len(bad_good)} good records did not run")
        result.expect(
            status_of(later) == "SUCCEEDED", f"the cursor did not advance: later invoice {status_of(later)}"
        )
        return _timed(result, started, s)


# ================================================================= 8. adoption, rename, disabled
def _foreign_invoice(s: Stack, number: str) -> str:
    """An invoice typed by hand in Xero for another contact, with the number we are about to use."""
    other = s.env.xero.seed_contact(s.tenant, Name="Somebody Else Pty", ContactNumber="HAND-1")
    record = s.env.load_xero_record(
        "Invoices",
        {
            "Type": "ACCREC",
            "InvoiceNumber": number,
            "Contact": {"ContactID": other["ContactID"], "Name": other["Name"]},
            "Status": "AUTHORISED",
            "LineAmountTypes": "Exclusive",
            "LineItems": [
                {"Description": "Typed by hand", "Quantity": 1, "UnitAmount": 12.5, "LineAmount": 12.5}
            ],
            "SubTotal": 12.5,
            "TotalTax": 0,
            "Total": 12.5,
            "CurrencyCode": "USD",
        },
    )
    return str(record["InvoiceID"])


def _concurrent_contacts(s: Stack) -> None:
    """Deliver the queued contact steps two at a time in two workers, their lookups side by side."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = s.env.resources.xero_queue_url
    barrier = threading.Barrier(2, timeout=3)
    sandbox = s.env.xero
    real_handle = sandbox.handle_request

    def handle(request: Any) -> Any:
        if request.method == "GET" and request.url.path.endswith("/Contacts"):
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()  # both workers look before either writes (unless one waits for a lock)
        return real_handle(request)

    sandbox.handle_request = handle
    try:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, AttributeNames=["All"]).get(
            "Messages", []
        )
        threads = [
            threading.Thread(target=lambda w=w, m=m: _deliver_one(s, w, m, url))
            for w, m in enumerate(messages)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sandbox.handle_request = real_handle


def _deliver_one(s: Stack, worker: int, message: dict[str, Any], url: str) -> None:
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    failed = deliver(s, worker, "xero", [message], url)
    if message["MessageId"] in failed:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    else:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def adoption_rename_disabled(size: int = 100) -> Result:
    """A retry that finds a foreign record with its key; a client renamed between two concurrent
    invoices; a workflow disabled and re-enabled."""
    n_foreign = max(1, size // 25)
    n_renames = max(1, size // 25)
    result = Result(
        "8",
        "foreign record on retry; rename between concurrent invoices; disabled workflow",
        f"{n_foreign} foreign, {n_renames} renames, {size} while disabled",
    )
    started = time.perf_counter()
    with stack() as s:
        c = s.env.clientary
        line = [{"title": "Survey", "quantity": 2, "price": 2400.0}]
        s.poll()
        # --- a foreign invoice holds our invoice number
        foreign_ids: set[str] = set()
        foreign_runs: list[str] = []
        for n in range(n_foreign):
            customer = c.seed_client(f"Careful Customer {n}")
            invoice = c.add_invoice(customer["id"], line, status=1)
            foreign_ids.add(_foreign_invoice(s, f"CL-{invoice['number']}"))
            foreign_runs.append(str(invoice["id"]))
        s.poll()
        drain(s)
        by_record = {str(r.get("record_id")): r for r in s.runs()}
        first = [str(by_record.get(i, {}).get("status")) for i in foreign_runs]
        replayed, refused = replay_failed(s, [by_record[i] for i in foreign_runs if i in by_record])
        drain(s)
        by_record = {str(r.get("record_id")): r for r in s.runs()}
        adopted = 0
        unexplained = 0
        for record_id in foreign_runs:
            run = by_record.get(record_id, {})
            for step in s.env.state.get_steps(run.get("run_id", "")):
                if str((step.get("output") or {}).get("InvoiceID", "")).lower() in foreign_ids:
                    adopted += 1
            if run.get("status") == "FAILED" and not _error_text(run).strip():
                unexplained += 1
        after = [str(by_record.get(i, {}).get("status")) for i in foreign_runs]
        result.figures["foreign: first try"] = dict(Counter(first))
        result.figures["foreign: after replay"] = dict(Counter(after))
        result.figures["foreign records adopted"] = adopted
        result.figures["foreign: replays"] = f"{replayed} started, {len(refused)} refused"
        result.expect(adopted == 0, f"{adopted} foreign Xero invoices adopted")
        result.expect(all(a == "FAILED" for a in after), f"foreign: after replay {dict(Counter(after))}")
        result.expect(unexplained == 0, f"{unexplained} foreign runs fail without saying what differs")
        # --- a client renamed between two invoices processed concurrently
        numbers: list[str] = []
        for n in range(n_renames):
            customer = c.seed_client(f"Before Rename {n} Ltd")
            numbers.append(f"CL-{customer['id']}")
            c.add_invoice(customer["id"], line, status=1)
            s.poll()
            c.touch("clients", customer["id"], name=f"After Rename {n} Ltd")
            c.add_invoice(customer["id"], line, status=1)
            s.poll()
            _concurrent_contacts(s)
            drain(s)
        contacts = Counter(str(x.get("ContactNumber")) for x in s.env.xero.contacts(s.tenant))
        duplicated = sum(contacts[number] - 1 for number in numbers if contacts[number] > 1)
        result.figures["renamed clients"] = n_renames
        result.figures["duplicate contacts after renames"] = duplicated
        result.expect(duplicated == 0, f"{duplicated} duplicate contacts after renames")
        # --- records arriving while the workflow is disabled
        s.workflow(sample_workflow(enabled=False))
        customer = c.seed_client("Patient Customer Ltd")
        waiting = {str(c.add_invoice(customer["id"], line, status=1)["id"]) for _ in range(size)}
        s.poll()
        s.workflow(sample_workflow(enabled=True))
        s.poll()
        drain(s)
        skipped = [r for r in s.runs("SKIPPED") if str(r.get("record_id")) in waiting]
        listed = {str(r.get("record_id")) for r in skipped}
        _, refusals = replay_failed(s, skipped)
        drain(s)
        done = {str(r.get("record_id")) for r in s.runs("SUCCEEDED")} & waiting
        result.figures["skipped listed"] = f"{len(listed)}/{size}"
        result.figures["skipped then started"] = len(done)
        result.expect(
            listed == waiting, f"{len(waiting - listed)} of {size} records skipped without a SKIPPED run"
        )
        result.expect(not refusals, f"skipped runs could not be started: {refusals[:2]}")
        result.expect(done == waiting, f"{len(waiting - done)} skipped records never ran")
        census = s.census()
        result.expect(census["duplicate_invoice_numbers"] == 0, "duplicate invoice numbers")
        return _timed(result, started, s)


# ==================================================================================== 9. fuzzing
def _push_signature(key: str, raw: bytes, timestamp: int) -> str:
    """The timestamped push signature of issue 7 point 4 (Stripe's form)."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _request_strategy() -> Any:
    from hypothesis import strategies as st

    scalar = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False),
        st.text(max_size=20),
    )
    ids = st.one_of(
        st.integers(min_value=-5, max_value=10**6),
        st.sampled_from(["²", "١٢", "1e9", "0x10", " 7 ", "", "-1", "9" * 40, "1" * 5000]),
        st.text(max_size=12),
        st.floats(allow_nan=False),
        st.lists(st.integers(), max_size=3),
    )
    random_json = st.recursive(
        scalar,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    )

    def deep(n: int) -> bytes:
        return ("[" * n + "]" * n).encode() if n % 2 else ('{"id":' * n + "1" + "}" * n).encode()

    bodies = st.one_of(
        ids.map(lambda i: json.dumps({"id": i}).encode()),
        random_json.map(lambda v: json.dumps(v).encode()),
        st.integers(min_value=500, max_value=3000).map(deep),
        st.integers(min_value=4301, max_value=6000).map(lambda n: ('{"id": ' + "7" * n + "}").encode()),
        st.integers(min_value=257, max_value=400).map(
            lambda kb: b'{"id": 1, "pad": "' + b"x" * kb * 1024 + b'"}'
        ),
        st.binary(max_size=200),
        st.just(b""),
    )
    signing = st.sampled_from(["valid", "none", "garbage", "stale", "future", "wrong-key"])
    encodings = st.sampled_from(["plain", "base64", "bad-base64"])
    push = st.tuples(
        st.just("push"),
        st.sampled_from([*PUSH_TRIGGERS, "nope", "../new_invoice"]),
        bodies,
        signing,
        encodings,
    )
    xero = st.tuples(st.just("xero"), st.just(""), bodies, signing, encodings)
    query = st.dictionaries(
        st.sampled_from(["ticket", "state", "code", "choice", "error", "tenant", "x"]),
        st.text(max_size=40),
        max_size=4,
    )
    connect = st.tuples(
        st.just("connect"),
        st.sampled_from(["connect", "callback", "choose", "nope"]),
        query,
        st.just(""),
        st.just(""),
    )
    return st.one_of(push, xero, connect)


def _send_fuzzed(s: Stack, case: tuple[Any, ...]) -> dict[str, Any]:
    """Build the API Gateway event for one fuzzed request and call the route's handler."""
    from urllib.parse import urlencode

    from clientary_xero.local.environment import (
        FakeLambdaContext,
        api_gateway_event,
        load_handler,
        xero_webhook_event,
    )
    from clientary_xero.local.resources import SAMPLE_PUSH_KEY, SAMPLE_XERO_WEBHOOK_KEY
    from clientary_xero.usecases.signatures import CLIENTARY_PUSH_HEADER, sign_base64

    kind, route, body, signing, encoding = case
    now = int(time.time())
    if kind == "connect":
        path = f"/oauth/xero/{route}"
        event = api_gateway_event(path, b"", None)
        event["routeKey"] = f"GET {path}"
        event["requestContext"]["http"]["method"] = "GET"
        event["rawQueryString"] = urlencode(body)
        event["queryStringParameters"] = dict(body) or None
        event.pop("body", None)
        result: dict[str, Any] = load_handler("xero_connect").lambda_handler(
            event, FakeLambdaContext("connect")
        )
        return result
    raw: bytes = body
    if kind == "push":
        if signing == "valid":  # the local environment signs the way the product expects
            trigger = f"clientary.{route}" if route in PUSH_TRIGGERS else TRIGGER
            if encoding == "plain":
                return dict(s.env.push(trigger, 0, body=raw))
        key = "not-the-key" if signing == "wrong-key" else SAMPLE_PUSH_KEY
        header = {
            "valid": _push_signature(key, raw, now),
            "none": None,
            "garbage": "t=abc,v1=zz",
            "stale": _push_signature(key, raw, now - 3600),
            "future": _push_signature(key, raw, now + 3600),
            "wrong-key": _push_signature(key, raw, now),
        }[signing]
        path = f"/webhooks/clientary/{route}"
        event = api_gateway_event(path, raw, None)
        if header:
            event["headers"][CLIENTARY_PUSH_HEADER] = header
    else:
        key = "not-the-key" if signing == "wrong-key" else SAMPLE_XERO_WEBHOOK_KEY
        header = None if signing == "none" else ("AAAA" if signing == "garbage" else sign_base64(key, raw))
        event = xero_webhook_event(raw, header)
    if encoding == "base64":
        event["isBase64Encoded"] = True
        event["body"] = base64.b64encode(raw).decode()
    elif encoding == "bad-base64":
        event["isBase64Encoded"] = True
        event["body"] = "%%not base64%%" + raw.decode("latin-1")[:20]
    if kind == "xero":
        result = load_handler("xero_webhook").lambda_handler(event, FakeLambdaContext("xero_webhook"))
        return result
    trigger = f"clientary.{route}" if route in PUSH_TRIGGERS else TRIGGER
    return dict(s.env.invoke_trigger(trigger, event))


def _has_reason(response: dict[str, Any]) -> bool:
    body = response.get("body") or ""
    if not body.strip():
        return False
    try:
        parsed = json.loads(body)
    except ValueError:
        return True  # an HTML or text page that says why
    return bool(parsed.get("error") or parsed.get("message")) if isinstance(parsed, dict) else bool(parsed)


def fuzz(size: int = 10_000) -> Result:
    """Fuzzed HTTP requests on every route (Hypothesis), hostile bodies validly signed included,
    then replays of one signed push and one signed Xero webhook."""
    from hypothesis import HealthCheck, Phase, given, settings

    result = Result(
        "9", "fuzzed HTTP requests on every route (Hypothesis)", f"{size} requests + 2x20 replays"
    )
    started = time.perf_counter()
    with stack() as s:
        s.poll()
        seed_invoices(s, 3)
        counts: Counter[str] = Counter()
        problems: list[str] = []

        def note(problem: str) -> None:
            counts["problems"] += 1
            if len(problems) < 5:
                problems.append(problem)

        @settings(
            max_examples=size,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(_request_strategy())
        def one(case: tuple[Any, ...]) -> None:
            counts["requests"] += 1
            sent_before = s.sqs.sent
            label = f"{case[0]} {case[1]} {case[3]}/{case[4]} {repr(case[2])[:40]}"
            try:
                response = _send_fuzzed(s, case)
            except Exception as exc:
                counts["uncaught exceptions"] += 1
                note(f"{label}: {type(exc).__name__}: {str(exc)[:80]}")
                return
            s.responses.append(response)
            status = int(response.get("statusCode", 0))
            counts[f"{status // 100}xx"] += 1
            documented = status == 503 and "retry-after" in {k.lower() for k in response.get("headers", {})}
            if status >= 500 and not documented:
                counts["undocumented 5xx"] += 1
                note(f"{label}: {status} {str(response.get('body'))[:80]}")
            if status >= 400:
                # Xero's webhook rules: a bad signature gets a 401 with an empty body.
                xero_401 = case[0] == "xero" and status == 401
                if s.sqs.sent != sent_before:
                    counts["enqueued when refused"] += 1
                    note(f"{label}: refused with {status} but enqueued {s.sqs.sent - sent_before}")
                if not xero_401 and not _has_reason(response):
                    counts["refusals without a reason"] += 1
                    note(f"{label}: {status} without a reason")

        one()
        # --- replays: one signed push and one signed Xero webhook body, 20 times each
        invoice = seed_invoices(s, 1)[0]
        sent_before = s.sqs.sent
        replies = [s.push(invoice["id"]) for _ in range(20)]
        push_enqueued = s.sqs.sent - sent_before
        contact = s.env.xero.seed_contact(s.tenant, Name="Replayed Contact Ltd")
        from clientary_xero.connectors.xero.webhooks import event_for, payload_for

        raw = payload_for([event_for("CONTACT", "UPDATE", contact["ContactID"], s.tenant)])
        calls_before = len(s.env.xero.requests)
        s.env.xero_webhook(body=raw)
        drain(s)
        one_delivery = len(s.env.xero.requests) - calls_before
        calls_before = len(s.env.xero.requests)
        for _ in range(20):
            s.env.xero_webhook(body=raw)
        drain(s)
        replayed_calls = len(s.env.xero.requests) - calls_before
        result.figures.update({k: v for k, v in sorted(counts.items()) if k != "problems"})
        result.figures["push replayed 20x: messages"] = push_enqueued
        result.figures["Xero webhook replayed 20x: Xero calls"] = replayed_calls
        result.expect(counts["requests"] >= size, f"only {counts['requests']} requests generated")
        for kind in (
            "uncaught exceptions",
            "undocumented 5xx",
            "enqueued when refused",
            "refusals without a reason",
        ):
            result.expect(counts[kind] == 0, f"{counts[kind]} {kind}")
        result.problems.extend(f"  e.g. {p}" for p in problems if result.problems)
        result.expect(all(r.get("statusCode", 500) < 500 for r in replies), "a replayed push got a 5xx")
        result.expect(push_enqueued <= 1, f"a push replayed 20 times enqueued {push_enqueued} messages")
        result.expect(
            replayed_calls == 0,
            f"a Xero webhook body replayed 20 times cost {replayed_calls} Xero calls "
            f"(one delivery: {one_delivery})",
        )
        return _timed(result, started, s)


SCENARIOS: dict[str, Callable[[int], Result]] = {
    "deliveries": deliveries,
    "faults": faults,
    "crashes": crashes,
    "token_refresh": token_refresh,
    "invalid_workflows": invalid_workflows,
    "daily_limit": daily_limit,
    "bad_records": bad_records,
    "adoption_rename_disabled": adoption_rename_disabled,
    "fuzz": fuzz,
}
