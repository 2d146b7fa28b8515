# ruff: noqa: F811  (pytest fixtures imported from other test modules are parameters here)
"""Issue 8, point 1: coalescing in the Xero action function (engine/batching.py).

Through the local runner: trigger → queue → the Xero action handler, fed SQS batches as Lambda
feeds it (``drain``: up to the queue's BatchSize) → the Xero sandbox. Counted: the calls Xero saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.connectors.base import ActionContext, batch_writers, registry
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.engine import runs as R
from clientary_xero.errors import PermanentError
from clientary_xero.local.environment import BATCH_SIZES, LocalEnvironment
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.workflows.loader import read_document
from tests.conftest_xero import (  # noqa: F401
    aws,
    clock,
    connection,
    make_context,
    make_provider,
    recorder,
    sandbox,
    xero,
)
from tests.test_xero_adoption import _count, contacts, fixtures, tenant  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "shared" / "clientary_xero" / "local" / "samples" / "invoice_to_xero.yaml"
TRIGGER = "clientary.new_invoice"
# One step, the contact named by ContactNumber (seeded in Xero): the batches hold invoice steps only.
INVOICE_ONLY = {
    "id": "invoice-only",
    "trigger": TRIGGER,
    "steps": [
        {
            "id": "invoice",
            "action": "xero.create_invoice",
            "input": {
                "Type": "ACCREC",
                "Contact": {"ContactNumber": "{% 'CL-' & $string(invoice.client_id) %}"},
                "InvoiceNumber": "{% 'CL-' & invoice.number %}",
                "CurrencyCode": "{% invoice.currency_code %}",
                "LineItems": "{% [invoice.invoice_items.{'Description': title, 'Quantity': quantity, "
                "'UnitAmount': price, 'AccountCode': '200'}] %}",
            },
        }
    ],
}


@pytest.fixture
def env() -> Iterator[LocalEnvironment]:
    with LocalEnvironment(max_attempts=3) as e:
        e.poll(TRIGGER)  # the first poll sets the watermark
        yield e


def xero_calls(env: LocalEnvironment, since: int = 0) -> list[dict[str, Any]]:
    return [r for r in env.xero.requests[since:] if "://api.xero.com/" in r["url"]]


def kinds(calls: list[dict[str, Any]]) -> list[str]:
    return [f"{c['method']} {c['url'].split('?')[0].rsplit('/', 1)[-1]}" for c in calls]


def clients(env: LocalEnvironment, count: int, *, in_xero: bool = False) -> list[dict[str, Any]]:
    made = [env.clientary.seed_client(f"Client {i}") for i in range(count)]
    for client in made if in_xero else []:
        env.xero.seed_contact(env.xero_tenant_id(), Name=client["name"], ContactNumber=f"CL-{client['id']}")
    return made


def invoice(
    env: LocalEnvironment, client: dict[str, Any], price: float = 10.0, **fields: Any
) -> dict[str, Any]:
    return env.clientary.add_invoice(
        client["id"], [{"title": "Work", "quantity": 1, "price": price}], status=1, **fields
    )


def poll(env: LocalEnvironment) -> dict[str, str]:
    """Clientary invoice id → run id of the runs the poll started."""
    started = [r["run_id"] for r in env.poll(TRIGGER)["runs"] if r["created"]]
    return {str(env.state.get_run(r)["record_id"]): r for r in started}


def outputs(env: LocalEnvironment, run_id: str) -> dict[str, Any]:
    return {s["step_id"]: s.get("output") for s in env.state.get_steps(run_id)}


def statuses(env: LocalEnvironment, run_ids: Any) -> list[str]:
    return [env.state.get_run(r)["status"] for r in run_ids]


# ----------------------------------------------------------------------- the sync
@pytest.mark.timeout(600)  # ~30 s alone; minutes on a loaded machine
def test_a_sync_of_50_invoices_of_10_clients_makes_one_lookup_one_contact_write_and_one_invoice_write(
    env: LocalEnvironment,
) -> None:
    """The issue's 500 invoices of 20 clients, a tenth of it: one batch per step of the workflow.
    One record at a time it costs 110 calls (50 contact writes, 10 lookups, 50 invoice writes)."""
    env.put_workflow(read_document(SAMPLE))
    people = clients(env, 10)
    for k in range(50):
        invoice(env, people[k % 10], price=10 + k)
    runs = poll(env)
    assert len(runs) == 50
    start = len(env.xero.requests)
    env.drain()
    assert kinds(xero_calls(env, start)) == ["GET Contacts", "POST Contacts", "PUT Invoices"]
    assert set(statuses(env, runs.values())) == {"SUCCEEDED"}
    tenant = env.xero_tenant_id()
    assert (len(env.xero.contacts(tenant)), len(env.xero.invoices(tenant))) == (10, 50)
    out = outputs(env, next(iter(runs.values())))
    assert out["contact"]["batch"]["size"] == 50 and out["invoice"]["batch"]["size"] == 50
    # The ten steps of one client share its contact: the first is told it was created.
    contact_ids = {outputs(env, r)["contact"]["ContactID"] for r in runs.values()}
    assert len(contact_ids) == 10
    assert sum(outputs(env, r)["contact"]["created"] for r in runs.values()) == 10


# ------------------------------------------------------------ one element refused
def number_taken(env: LocalEnvironment, record: dict[str, Any]) -> None:
    """Someone typed an invoice with this record's number in Xero: it refuses a second one."""
    contact = env.xero.contacts(env.xero_tenant_id())[0]["ContactID"]
    line = {"Description": "By hand", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200"}
    env.seed_xero(
        {
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact},
                    "InvoiceNumber": f"CL-{record['number']}",
                    "LineItems": [line],
                }
            ]
        }
    )


def test_xero_refusing_one_invoice_of_a_batch_fails_only_its_run_with_xeros_message(
    env: LocalEnvironment,
) -> None:
    env.put_workflow(INVOICE_ONLY)
    people = clients(env, 3, in_xero=True)
    good = [invoice(env, people[0]), invoice(env, people[2])]
    bad = invoice(env, people[1])
    number_taken(env, bad)
    runs = poll(env)
    start = len(env.xero.requests)
    env.drain()
    assert kinds(xero_calls(env, start)) == ["PUT Invoices"]  # all three in one call
    assert statuses(env, [runs[str(g["id"])] for g in good]) == ["SUCCEEDED", "SUCCEEDED"]
    failed = env.state.get_run(runs[str(bad["id"])])
    assert failed["status"] == "FAILED" and failed["failed_step"] == "invoice"
    assert failed["error"]["messages"] == ["Invoice # must be unique."]
    assert len(env.xero.invoices(env.xero_tenant_id())) == 1 + 2

    # The same refusal from a call of its own (a batch of one): the same error, word for word.
    alone = invoice(env, people[1])
    number_taken(env, alone)
    (alone_run,) = poll(env).values()
    env.drain()
    assert env.state.get_run(alone_run)["error"] == failed["error"]
    (step,) = [s for s in env.state.get_steps(runs[str(bad["id"])]) if s["step_id"] == "invoice"]
    assert step["status"] == "FAILED" and step["error"] == failed["error"]


# ------------------------------------------------------------ unknown outcomes
def test_a_batch_whose_answer_is_lost_is_retried_step_by_step_without_duplicates(
    env: LocalEnvironment,
) -> None:
    env.put_workflow(INVOICE_ONLY)
    people = clients(env, 3, in_xero=True)
    made = [invoice(env, p) for p in people]
    runs = poll(env)
    start = len(env.xero.requests)
    # Xero writes the three invoices, then the answer is lost (a time-out after the effect).
    env.xero.inject_faults(1.0, kinds=("lost",))
    env.drain(on_batch=lambda batch: env.xero.inject_faults(0))
    calls = xero_calls(env, start)
    assert kinds(calls)[0] == "PUT Invoices" and calls[0]["headers"]["idempotency-key"].startswith("batch:")
    # Each step then looks for what the batch wrote (its second attempt, alone) and adopts it.
    assert kinds(calls).count("PUT Invoices") == 1
    assert set(statuses(env, runs.values())) == {"SUCCEEDED"}
    assert len(env.xero.invoices(env.xero_tenant_id())) == 3
    for record in made:
        out = outputs(env, runs[str(record["id"])])["invoice"]
        assert out["created"] is False and out["InvoiceNumber"] == f"CL-{record['number']}"
        assert "batch" not in out


def test_a_step_retried_after_a_failed_batch_writes_alone_with_its_own_key(env: LocalEnvironment) -> None:
    env.put_workflow(INVOICE_ONLY)
    people = clients(env, 3, in_xero=True)
    for p in people:
        invoice(env, p)
    runs = poll(env)
    start = len(env.xero.requests)
    env.xero.fail_next(503)  # the batch call: nothing written, outcome unknown to the steps
    env.drain()
    calls = xero_calls(env, start)
    keys = [c["headers"].get("idempotency-key") for c in calls if c["method"] == "PUT"]
    assert keys[0].startswith("batch:")
    # As today: each step's retry looks first, then writes one invoice under its own key.
    assert sorted(keys[1:]) == sorted(R.idempotency_key(r, "invoice", 0) for r in runs.values())
    assert kinds(calls).count("GET Invoices") == 3
    assert set(statuses(env, runs.values())) == {"SUCCEEDED"}
    assert len(env.xero.invoices(env.xero_tenant_id())) == 3
    assert all(outputs(env, r)["invoice"]["created"] is True for r in runs.values())


# ------------------------------------------------------------ shared contacts
def test_the_steps_of_one_contact_in_a_batch_write_it_once_and_share_it(env: LocalEnvironment) -> None:
    env.put_workflow(read_document(SAMPLE))
    people = clients(env, 2)
    for p in [people[0], people[1], people[0], people[1], people[0]]:
        invoice(env, p)
    runs = poll(env)
    start = len(env.xero.requests)
    env.drain()
    calls = xero_calls(env, start)
    assert kinds(calls) == ["GET Contacts", "POST Contacts", "PUT Invoices"]
    assert len(env.xero.contacts(env.xero_tenant_id())) == 2
    by_client: dict[str, set[str]] = {}
    for run_id in runs.values():
        contact = outputs(env, run_id)["contact"]
        by_client.setdefault(contact["ContactNumber"], set()).add(contact["ContactID"])
    assert sorted(len(ids) for ids in by_client.values()) == [1, 1]
    # A later batch finds the links: no lookup, at most one write of the same two (none once an
    # unchanged input is skipped), one invoice write.
    for p in people:
        invoice(env, p)
    again = poll(env)
    start = len(env.xero.requests)
    env.drain()
    assert kinds(xero_calls(env, start)) in (["POST Contacts", "PUT Invoices"], ["PUT Invoices"])
    assert len(env.xero.contacts(env.xero_tenant_id())) == 2
    assert {outputs(env, r)["contact"]["created"] for r in again.values()} == {False}


# ------------------------------------------------------------ sizing
def test_the_xero_queue_delivers_batches_of_at_most_two_xero_writes() -> None:
    from clientary_xero.engine.batching import MAX_ELEMENTS
    from tests.test_template import load_template

    template = load_template()
    source = template["Resources"]["XeroActionFunction"]["Properties"]["Events"]["XeroSteps"]["Properties"]
    # Two writes of 50 at most per action: a backfill's first batch holds every client of a
    # hundred invoices (one contact call), and the calls (≤ 2 a second) fit the time-out.
    assert MAX_ELEMENTS < source["BatchSize"] <= 2 * MAX_ELEMENTS
    assert source["BatchSize"] == BATCH_SIZES["xero"]  # the local drain delivers the same
    # Over 10 a standard queue's source needs a window; a short one keeps a step's latency low.
    assert 1 <= source["MaximumBatchingWindowInSeconds"] <= 5
    assert json.dumps(source["ScalingConfig"]) == json.dumps({"MaximumConcurrency": 5})


# ------------------------------------------------------------ the other writes
def test_an_invoice_a_retry_could_not_find_is_never_batched(env: LocalEnvironment) -> None:
    # No number, no reference: a retry alone (another Idempotency-Key than the batch's) could not
    # tell whether the batch wrote it. Each goes alone, under its own key, as before.
    workflow = json.loads(json.dumps(INVOICE_ONLY))
    del workflow["steps"][0]["input"]["InvoiceNumber"]
    env.put_workflow(workflow)
    for p in clients(env, 2, in_xero=True):
        invoice(env, p)
    runs = poll(env)
    start = len(env.xero.requests)
    env.drain()
    keys = [c["headers"]["idempotency-key"] for c in xero_calls(env, start) if c["method"] == "PUT"]
    assert sorted(keys) == sorted(R.idempotency_key(r, "invoice", 0) for r in runs.values())


ABSENT = "00000000-0000-4000-8000-000000000000"
OTHERS: list[tuple[str, str, Callable[[dict[str, Any], str, str], dict[str, Any]]]] = [
    (
        "xero.create_quote",
        "quotes",
        lambda f, contact, n: {
            "Contact": {"ContactID": contact},
            "QuoteNumber": f"QU-{n}",
            "Date": "2026-02-01",
            "LineItems": [{"Description": "Design", "Quantity": 1, "UnitAmount": 90, "AccountCode": "200"}],
        },
    ),
    (
        "xero.create_purchase_order",
        "purchase_orders",
        lambda f, contact, n: {
            "Contact": {"ContactID": contact},
            "PurchaseOrderNumber": f"PO-{n}",
            "Date": "2026-01-01",
            "LineItems": [{"Description": "Lamps", "UnitAmount": 60}],
        },
    ),
    (
        "xero.create_payment",
        "payments",
        lambda f, invoice, n: {
            "Invoice": {"InvoiceID": invoice},
            "Account": {"Code": "090"},
            "Amount": 10,
            "Reference": f"pmt {n}",
        },
    ),
]


@pytest.mark.parametrize(("name", "records", "given"), OTHERS, ids=[o[1] for o in OTHERS])
def test_quotes_purchase_orders_and_payments_share_one_call_each_element_its_own_outcome(
    xero: XeroClient,
    sandbox: XeroSandbox,
    tenant: str,
    fixtures: dict[str, Any],
    name: str,
    records: str,
    given: Callable[[dict[str, Any], str, str], dict[str, Any]],
) -> None:
    spec = registry()[name]
    target = fixtures["invoice"] if name == "xero.create_payment" else fixtures["ours"]
    inputs = [given(fixtures, target, "1"), given(fixtures, ABSENT, "2"), given(fixtures, target, "3")]
    calls = [
        (make_context(xero, run_id=f"run-{i}"), spec.input_model.model_validate(data))
        for i, data in enumerate(inputs)
    ]
    assert all(batch_writers()[name].when(data) for _, data in calls)
    before, requests = _count(sandbox, records, tenant), len(sandbox.requests)
    results = batch_writers()[name].write(calls, "batch:test")
    assert len(sandbox.requests) == requests + 1  # one call
    assert _count(sandbox, records, tenant) == before + 2
    ok = [r for r in results if isinstance(r, dict)]
    assert [r["created"] for r in ok] == [True, True] and isinstance(results[1], PermanentError)
    # Refused alone, the same element gives the same error.
    with pytest.raises(PermanentError) as alone:
        spec.run(make_context(xero, run_id="alone"), calls[1][1])
    assert str(results[1]) == str(alone.value) and results[1].messages == alone.value.messages


def test_steps_not_started_when_the_invocations_time_runs_short_are_sent_again(env: LocalEnvironment) -> None:
    from clientary_xero.local.environment import FakeLambdaContext, load_handler, sqs_record
    from tests.engine_helpers import queued

    class ShortOfTime(FakeLambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return 5_000  # less than a step's calls may take

    env.put_workflow(INVOICE_ONLY)
    for p in clients(env, 2, in_xero=True):
        invoice(env, p)
    runs = poll(env)
    assert env.resources is not None
    url = env.resources.xero_queue_url
    messages = queued(url)
    env.use_action_function("xero")
    records = [
        sqs_record({"MessageId": f"m{i}", "ReceiptHandle": f"h{i}", "Body": json.dumps(m)}, url)
        for i, m in enumerate(messages)
    ]
    for record in records:
        record["attributes"]["ApproximateReceiveCount"] = "2"
    response = load_handler("step_actions").lambda_handler({"Records": records}, ShortOfTime("step_actions"))
    # Not failed (a failure would cost each a receive, and come back only after the visibility
    # time-out): acknowledged, and a copy of each is on the queue, its earlier receive carried.
    assert response == {"batchItemFailures": []}
    copies = queued(url)
    assert sorted(c["run_id"] for c in copies) == sorted(runs.values())
    assert {c["retries"] for c in copies} == {1}
    assert xero_calls(env) == [] and set(statuses(env, runs.values())) == {"QUEUED"}


def test_a_contact_batch_whose_answer_is_lost_creates_each_contact_once(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    env.put_workflow(read_document(SAMPLE))
    people = clients(env, 2)
    for p in [*people, *people]:
        invoice(env, p)
    runs = poll(env)
    real = env.xero._api_checked
    lost: list[str] = []

    def lose_the_first_contact_write(request: httpx.Request) -> httpx.Response:
        answer = real(request)  # Xero does the work…
        if request.method == "POST" and request.url.path.endswith("/Contacts") and not lost:
            lost.append(request.headers["idempotency-key"])
            raise httpx.ReadTimeout("the answer was lost", request=request)  # … and the answer is lost
        return answer

    monkeypatch.setattr(env.xero, "_api_checked", lose_the_first_contact_write)
    env.drain()
    assert lost and lost[0].startswith("batch:")
    assert len(env.xero.contacts(env.xero_tenant_id())) == 2  # created by the batch, found by the retries
    assert set(statuses(env, runs.values())) == {"SUCCEEDED"}
    numbers = {f"CL-{p['id']}" for p in people}
    assert {outputs(env, r)["contact"]["ContactNumber"] for r in runs.values()} == numbers
    assert len(env.xero.invoices(env.xero_tenant_id())) == 4


def test_two_contact_batches_sharing_contacts_lock_them_in_one_order(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import threading

    from clientary_xero.connectors.xero.actions.contacts import ContactInput
    from clientary_xero.storage.state import StateStore

    # Two batches of the same two new contacts, listed in opposite orders, run at once; each batch
    # pauses after its first lock until the other has taken one too (or 1 s has passed).
    real = StateStore.lock_link
    both_locked = threading.Barrier(2, timeout=1)
    firsts: set[int] = set()

    @contextlib.contextmanager
    def lock_link(self: StateStore, kind: str, source_id: str, **kw: Any) -> Iterator[Any]:
        with real(self, kind, source_id, **kw) as hold:
            if threading.get_ident() not in firsts:
                firsts.add(threading.get_ident())
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_locked.wait()
            yield hold

    monkeypatch.setattr(StateStore, "lock_link", lock_link)
    writer = batch_writers()["xero.create_or_update_contact"]
    people = [("North Ltd", "CL-901"), ("South Ltd", "CL-902")]
    results: dict[str, list[Any]] = {}

    def batch(label: str, order: list[tuple[str, str]]) -> None:
        calls = [
            (make_context(xero, run_id=f"{label}-{n}"), ContactInput(Name=name, ContactNumber=number))
            for n, (name, number) in enumerate(order)
        ]
        results[label] = writer.write(calls, f"batch:{label}")

    threads = [
        threading.Thread(target=batch, args=("ab", people)),
        threading.Thread(target=batch, args=("ba", people[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Neither batch held one contact's lock while waiting for the other's (that ends in LockBusy
    # for both, after the lock's wait): every step has its contact, each contact made once.
    assert [r for rs in results.values() for r in rs if isinstance(r, Exception)] == []
    made = [c for c in sandbox.contacts(tenant) if c.get("ContactNumber") in {"CL-901", "CL-902"}]
    assert sorted(c["ContactNumber"] for c in made) == ["CL-901", "CL-902"]
    assert {r["ContactNumber"]: r["ContactID"] for rs in results.values() for r in rs} == {
        c["ContactNumber"]: c["ContactID"] for c in made
    }


def test_a_batch_call_honours_a_reservation_and_a_wait_hands_it_to_one_member(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from clientary_xero.connectors import base
    from clientary_xero.engine import batching
    from clientary_xero.engine.runner import ActionCall
    from clientary_xero.storage import ratelimit
    from clientary_xero.storage.ratelimit import BudgetExceeded, Reservation

    spec = registry()["xero.create_invoice"]
    held = Reservation("xero:tenant-1", (1_000, 2_000))
    seen: list[list[tuple[str, int]]] = []
    budget_full: list[bool] = []

    def write(calls: list[tuple[Any, Any]], key: str) -> list[dict[str, Any] | Exception]:
        turn = ratelimit._turn.get()
        seen.append(list(turn.pending) if turn else [])
        if budget_full:
            raise BudgetExceeded("the minute is full", delay_seconds=30, limit="minute", reservation=held)
        return [{"InvoiceID": ctx.run_id} for ctx, _ in calls]

    monkeypatch.setattr(base, "batch_writer", lambda name: base.Batched(write, lambda data: True))

    def execution(run_id: str, reservation: Any, got: list[Any]) -> Any:
        ctx = ActionContext(
            run_id=run_id, step_id="s", idempotency_key=f"{run_id}:s:0", attempt=1, links=None
        )
        try:
            got.append((yield ActionCall(spec, ctx, None, reservation)))
        except BudgetExceeded as exc:
            got.append(exc)
        return "done"

    # A re-sent member's reserved instants are honoured by the call the batch makes for it.
    got: list[list[Any]] = [[], [], []]
    reservations = [None, held.to_message(), None]
    assert batching.run_batch([execution(f"r{i}", reservations[i], got[i]) for i in range(3)]) == ["done"] * 3
    assert seen == [[("xero:tenant-1", 1_000), ("xero:tenant-1", 2_000)]]
    assert [g[0]["InvoiceID"] for g in got] == ["r0", "r1", "r2"]
    # When the budget says wait, every member waits, and only one carries the reservation back
    # (two steps honouring one instant alone would make two calls in it).
    budget_full.append(True)
    got = [[], [], []]
    batching.run_batch([execution(f"r{i}", None, got[i]) for i in range(3)])
    waits = [g[0] for g in got]
    assert all(isinstance(w, BudgetExceeded) and w.delay_seconds == 30 for w in waits)
    assert [w.reservation for w in waits] == [held, None, None]


def test_steps_of_one_contact_count_as_one_element_of_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from clientary_xero.connectors.base import Batched
    from clientary_xero.engine import batching
    from clientary_xero.engine.runner import ActionCall

    spec = registry()["xero.create_or_update_contact"]
    # 120 contact steps of 60 clients: two calls of at most 50 contacts, each client's steps in one.
    calls = [
        (
            n,
            ActionCall(
                spec,
                ActionContext(
                    run_id=f"r{n}", step_id="c", idempotency_key=f"r{n}:c:0", attempt=1, links=None
                ),
                spec.input_model.model_validate(
                    {"Name": f"Client {n % 60}", "ContactNumber": f"CL-{n % 60}"}
                ),
            ),
        )
        for n in range(120)
    ]
    chunks = batching._chunks(calls, batch_writers()["xero.create_or_update_contact"])
    numbers = [{call.input.ContactNumber for _, call in chunk} for chunk in chunks]
    assert [len(n) for n in numbers] == [50, 10] and not numbers[0] & numbers[1]
    assert sorted(i for chunk in chunks for i, _ in chunk) == list(range(120))
    # Without a notion of "the same element", every step is one: 120 steps are three calls.
    plain = batching._chunks(calls, Batched(lambda c, k: [], lambda d: True))
    assert [len(chunk) for chunk in plain] == [50, 50, 20]
