"""What the reliability scenarios stand on: a stack (``stack()``: a ``LocalEnvironment`` with a
simulated clock), workers that drain the queues like Lambda's SQS event source, and ``Result``.

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

import contextlib
import copy
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

from clientary_xero.local.simclock import SimClock, simulated_clocks

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
# ``SimClock`` and ``simulated_clocks`` live in the layer's local/ room (local/simclock.py):
# ``backfill --local`` rehearses on the same clock.


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
    with simulated_clocks(sim), _atomic_moto(log), LocalEnvironment(max_attempts=max_attempts) as env:
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
        idle = 0.01
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
                    idle = 0.01
                    continue
                with lock:
                    others_busy = busy[0] > 0
                if not others_busy:
                    if _pending(sqs, queues) == 0:
                        return
                    if _release_delayed(s, queues):
                        continue
                # An idle worker backs off: its empty receives would take moto's CPU from the busy one.
                idle = min(0.5, idle * 2)
                time.sleep(idle)
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


def _release_delayed(s: Stack, queues: list[tuple[str, str]]) -> bool:
    """With every worker idle and only delayed messages left, let their delay pass in simulated
    time: the clock jumps by the longest remaining delay and the messages become visible. A delay
    is the product's "come back when the lease (or the minute) ends", and leases and Xero's windows
    run on the simulated clock, so jumping it keeps them consistent; waiting out SQS's real delay
    instead made a duplicate step message re-sent for a 90 s lease cost 90 s of wall time."""
    from clientary_xero.local.simclock import release_waiting

    return release_waiting([url for _, url in queues], s.sim)


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


def redrive(s: Stack) -> int:
    """What "Start DLQ redrive" in the SQS console does: every message of each action queue's DLQ
    back to its source queue, body as it was. Returns the number moved."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    r = s.env.resources
    moved = 0
    for dlq, source in ((r.xero_dlq_url, r.xero_queue_url), (r.clientary_dlq_url, r.clientary_queue_url)):
        while dlq and source:
            messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                sqs.send_message(QueueUrl=source, MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
    return moved


def statuses(runs: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(r.get("status")) for r in runs).items()))


def error_text(run: dict[str, Any]) -> str:
    error = run.get("error") or {}
    if isinstance(error, dict):
        return " ".join([str(error.get("message", ""))] + [str(m) for m in error.get("messages") or []])
    return str(error)


def timed(result: Result, started: float, s: Stack) -> Result:
    result.seconds = time.perf_counter() - started
    result.figures.setdefault("simulated minutes", round(s.sim.offset / 60, 1))
    result.census = s.census()
    return result
