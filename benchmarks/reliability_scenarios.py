"""The reliability scenarios of issue 7: the real handlers, engine and storage (moto) against the
sandboxes, with faults, crashes, concurrency and hostile requests injected.

Each scenario is a function ``name(size) -> Result``: it builds its own stack
(benchmarks/reliability_harness.py), drives the handlers the way API Gateway, EventBridge and SQS
would, and returns its figures and the problems found (none: PASS). ``benchmarks/reliability.py``
runs them at full size and writes docs/RELIABILITY.md; tests/test_reliability.py runs them small.
The fuzzing scenario is in benchmarks/reliability_fuzz.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.reliability_fuzz import fuzz
from benchmarks.reliability_harness import (
    InjectedCrash,
    Result,
    Stack,
    deliver,
    drain,
    error_text,
    redeliver_every_step,
    redrive,
    replay_failed,
    sample_workflow,
    seed_invoices,
    stack,
    statuses,
    timed,
)


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
        return timed(result, started, s)


# ================================================================================ 2. Xero faults
def faults(size: int = 300, rate: float = 0.2) -> Result:
    """A fifth of Xero's answers are 429, 500, 503 or a time-out (before or after Xero acted)."""
    result = Result("2", f"{rate:.0%} of Xero calls fail (429, 500, 503, time-outs)", f"{size} invoices")
    started = time.perf_counter()
    # Two attempts a step, so that some runs do fail on their last attempt (a step fails both with
    # p = 4 %) and the replay path is exercised, not only SQS's retries.
    with stack(max_attempts=2) as s:
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
        # The DLQ still holds the messages of the runs that failed (the alarm's cause); an operator
        # redrives them from the console: each belongs to a run that has since succeeded, so each
        # is dropped, and nothing runs twice.
        redriven = redrive(s)
        drain(s, workers=2)
        census = s.census()
        result.figures.update(
            {
                "faults injected": dict(sorted(s.env.xero.fault_counts.items())),
                "after the faults": ended,
                "replayed": replayed,
                "after replay": statuses(runs),
                "DLQ messages redriven": redriven,
            }
        )
        result.expect(redriven == len(failed), f"{redriven} DLQ messages for {len(failed)} failed runs")
        result.expect(census["dlq_messages"] == 0, f"{census['dlq_messages']} messages left in the DLQs")
        result.expect(statuses(s.runs()) == statuses(runs), "the redrive changed runs that had succeeded")
        result.expect(set(ended) <= {"SUCCEEDED", "FAILED"}, f"runs left unfinished: {ended}")
        result.expect(not refused, f"replays refused: {refused[:3]}")
        result.expect(statuses(runs) == {"SUCCEEDED": size}, f"after replay: {statuses(runs)}")
        result.expect(census["xero_invoices"] == size, f"{census['xero_invoices']} Xero invoices, not {size}")
        result.expect(census["duplicate_contacts"] == 0, f"{census['duplicate_contacts']} duplicate contacts")
        result.expect(census["duplicate_invoice_numbers"] == 0, "duplicate invoice numbers")
        return timed(result, started, s)


# ==================================================================================== 3. crashes
CRASH_POINTS = ("before the call", "after the answer", "after the checkpoint", "after the next message")


@contextlib.contextmanager
def _crashing(s: Stack, point: str, crashed: set[tuple[str, str]]) -> Iterator[None]:
    """Crash each step of each run once, at ``point``."""
    from clientary_xero.connectors import base
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

    real_steps = StepRunner.steps

    def keyed(key: tuple[str, str], fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            current.key = key
            try:
                return fn(*args)
            finally:
                current.key = None

        return run

    def steps(self: Any, message: dict[str, Any], **kwargs: Any) -> Any:
        """The step's execution (engine/batching.py resumes it), keyed whenever it runs: its own
        parts and its action's call alone."""
        key = (str(message["run_id"]), str(message["step_id"]))
        inner = real_steps(self, message, **kwargs)
        sent: Any = None
        thrown: Exception | None = None
        while True:
            try:
                call = keyed(key, inner.throw if thrown is not None else inner.send)(thrown or sent)
            except StopIteration as stop:
                return stop.value
            spec = dataclasses.replace(call.spec, run=keyed(key, call.spec.run))
            try:
                sent, thrown = (yield dataclasses.replace(call, spec=spec)), None
            except Exception as exc:
                sent, thrown = None, exc

    # A call several steps share (engine/batching.py) is keyed as its first step's.
    real_batched = dict(base.batch_writers())

    def batch_keyed(writer: Any) -> Any:
        def write(calls: list[Any], key: str) -> Any:
            ctx = calls[0][0]
            return keyed((ctx.run_id, ctx.step_id), writer.write)(calls, key)

        return dataclasses.replace(writer, write=write)

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

    StepRunner.steps = steps  # type: ignore[method-assign, assignment]
    base._BATCHED.update({name: batch_keyed(writer) for name, writer in real_batched.items()})
    StateStore.finish_step = finish  # type: ignore[method-assign]
    StepQueue.send = send  # type: ignore[method-assign]
    sandbox.handle_request = handle
    try:
        yield
    finally:
        StepRunner.steps = real_steps  # type: ignore[method-assign]
        base._BATCHED.update(real_batched)
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
        # What the 20 did together. Later refreshes are not theirs: the handlers below run on the
        # simulated clock, which waits (leases, budget) can move past the new token's 30 minutes.
        refreshes = s.env.xero.refresh_count
        # And the handlers go on with the refreshed token.
        s.poll()
        seed_invoices(s, 5)
        s.poll()
        drain(s)
        result.figures.update(
            {
                "refreshes": refreshes,
                "refreshes later (handlers)": s.env.xero.refresh_count - refreshes,
                "invalid_grant": s.env.xero.invalid_grants,
                "workers done": outcomes.count("ok"),
                "retries": dict(retries),
                "runs after": statuses(s.runs()),
            }
        )
        result.expect(refreshes == 1, f"{refreshes} refreshes by the {size} workers, not 1")
        result.expect(s.env.xero.invalid_grants == 0, f"{s.env.xero.invalid_grants} invalid_grant answers")
        result.expect(outcomes.count("ok") == size, f"workers: {Counter(outcomes).most_common(3)}")
        result.expect(statuses(s.runs()) == {"SUCCEEDED": 5}, f"runs after: {statuses(s.runs())}")
        return timed(result, started, s)


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
            unexplained = [r["run_id"] for r in mine if reason not in error_text(r)]
            result.expect(not unexplained, f"{wid}: {len(unexplained)} runs fail without naming {reason!r}")
        census = s.census()
        result.expect(census["xero_invoices"] == size, f"{census['xero_invoices']} Xero invoices, not {size}")
        return timed(result, started, s)


# ================================================================================ 6. daily limit
def daily_limit(size: int = 100) -> Result:
    """Xero's daily limit is reached halfway: runs park, and complete after the reset."""
    result = Result("6", "Xero's daily limit: runs park, resume after the reset", f"{size} invoices")
    started = time.perf_counter()
    # Steps share calls (engine/batching.py: the harness's batches of 5 hold up to 5 contact or
    # invoice writes; a linked, unchanged contact costs none), so about half a call an invoice:
    # this limit stops the work about halfway through the first day.
    with stack(day_limit=max(2, size // 4)) as s:
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
        return timed(result, started, s)


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
            "filter" in error_text(runs.get(str(poison["id"]), {})),
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
        return timed(result, started, s)


# ================================================================= 8. adoption, rename, disabled
def _foreign_invoice(s: Stack, number: str, n: int) -> str:
    """An invoice typed by hand in Xero for another contact, with the number we are about to use."""
    other = s.env.xero.seed_contact(s.tenant, Name=f"Somebody Else {n} Pty", ContactNumber=f"HAND-{n}")
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
            foreign_ids.add(_foreign_invoice(s, f"CL-{invoice['number']}", n))
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
            if run.get("status") == "FAILED" and not error_text(run).strip():
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
        return timed(result, started, s)


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
