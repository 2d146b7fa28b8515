"""DynamoDB round trips per synced invoice (issue 8 point 4), counted, not timed.

The counts come from benchmarks/bench_dynamo.py: every DynamoDB request a Lambda handler makes,
by operation and by the code site that made it. The rate budget's own requests
(storage/ratelimit.py, redesigned separately in issue 8 point 3) are left out of the engine's
figures here; the benchmark shows the totals.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from benchmarks import bench_dynamo
from benchmarks.reliability_harness import drain, seed_invoices, stack, statuses

from clientary_xero.errors import Conflict
from clientary_xero.storage import workflows as workflow_storage
from clientary_xero.storage.ratelimit import (
    RateBudget,
    expect_calls,
    held_slots,
    rate_turn,
    slots_ride_along,
)
from clientary_xero.storage.state import CARRY_BYTES, RunChange, StateStore, TransactionConflict
from tests.test_engine import Harness, workflow

pytestmark = pytest.mark.timeout(600)

BUDGET = "storage.ratelimit:"


def besides_the_budget(counter: bench_dynamo.DynamoCounter) -> dict[str, int]:
    return {site: n for site, n in counter.by_site().items() if not site.startswith(BUDGET)}


@pytest.fixture(scope="module")
def idle() -> list[bench_dynamo.Measured]:
    """One invoice of a new client pushed and synced, then one more of the same client."""
    return bench_dynamo.idle()


def by_method(counter: bench_dynamo.DynamoCounter) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for (operation, method, _), n in counter.calls.items():
        out[(operation, method)] = out.get((operation, method), 0) + n
    return out


# Both idle invoices: the intake creates the run (a conditional put) and marks it enqueued once its
# message is out; each of the two steps is claimed and checkpointed by one transaction each.
RUN_AND_STEPS = {
    ("PutItem", "create_run"): 1,
    ("UpdateItem", "update_runs"): 1,
    ("TransactWriteItems", "claim_step"): 2,
    ("TransactWriteItems", "finish_step"): 2,
}


def test_one_invoice_of_a_linked_contact_costs_eight_dynamodb_calls(
    idle: list[bench_dynamo.Measured],
) -> None:
    _, linked = idle
    assert linked.runs == {"SUCCEEDED": 2}
    # Before issue 8: 26 (22 besides the budget: the run and its steps read twice per step, the
    # workflows read again, a read before each run is created, a write per checkpoint and one per
    # move of the run). Now, besides the run and its steps: the workflows are cached (the first
    # invoice read them); the contact's link is one request, the lock's conditional write refused
    # because the link holds this very input (it returns the link: the unchanged skip, no Xero
    # call); the invoice's one Xero call costs the budget one write (its release rides along with
    # the checkpoint).
    assert by_method(linked.counter) == {
        **RUN_AND_STEPS,
        ("UpdateItem", "lock_link"): 1,
        ("UpdateItem", "update_raw"): 1,
    }, linked.counter.by_site()
    assert sum(besides_the_budget(linked.counter).values()) == 7
    assert linked.counter.total == 8


def test_one_invoice_of_a_new_contact_costs_ten_dynamodb_calls(idle: list[bench_dynamo.Measured]) -> None:
    new, _ = idle
    assert new.runs == {"SUCCEEDED": 1}
    # Before: 34 (25 besides the budget; 19 at this branch's start: 13 + 6 for the budget). Now:
    # the workflows of the trigger, one query (the index projects the items); the link: one
    # conditional write takes the lock and returns that there is no link (before: read, lock,
    # re-read), and the link is written with the lock given up inside the contact step's
    # checkpoint (before: a put and a delete); the budget: one write for the contact step's lookup
    # and create together (the step said it makes two; it makes the budget item too, the
    # organisation's first call), the create using the lookup's slot, and one for the invoice.
    assert by_method(new.counter) == {
        **RUN_AND_STEPS,
        ("Query", "for_trigger"): 1,
        ("UpdateItem", "lock_link"): 1,
        ("UpdateItem", "update_raw"): 2,
    }, new.counter.by_site()
    assert sum(besides_the_budget(new.counter).values()) == 8
    assert new.counter.total <= bench_dynamo.TARGET["idle, new contact"]


def test_each_step_execution_writes_twice_and_reads_nothing_its_message_carries(
    idle: list[bench_dynamo.Measured],
) -> None:
    _, linked = idle
    runner = {
        (operation, method): n
        for (operation, method, caller), n in linked.counter.calls.items()
        if caller.startswith("engine.runner:")
    }
    # Two steps, each with a message that carries its run (from the intake, from the first
    # step's checkpoint): no read, one claim each checking the run is as carried (the first with
    # the run's move to RUNNING), one checkpoint each carrying the run's move on. Before: a Query
    # each as well.
    assert runner == {
        ("TransactWriteItems", "claim_step"): 2,
        ("TransactWriteItems", "finish_step"): 2,
    }


def test_a_backlog_costs_at_most_nine_dynamodb_calls_an_invoice_besides_the_budget() -> None:
    size = 12
    with stack() as s, bench_dynamo.counting_dynamodb() as counter:
        counter.counting = False
        s.poll()
        seed_invoices(s, size, clients=3)
        counter.counting = True
        s.poll()
        drain(s, workers=2)
        counter.counting = False
        assert statuses(s.runs()) == {"SUCCEEDED": size}
        assert s.census()["duplicate_contacts"] == 0
    calls = besides_the_budget(counter)
    # Before: 22 an invoice; 10 before the messages carried their runs (8.1 since). The workflows
    # are read once for the poll page, the "enqueued" marks go in one transaction.
    assert sum(calls.values()) / size <= 9, calls
    # The budget: about one write per call (0.5 an invoice here), none for a release.
    assert counter.total / size <= 10, counter.by_site()


def test_a_steps_xero_call_costs_the_budget_one_write(idle: list[bench_dynamo.Measured]) -> None:
    new, linked = idle
    budget = {site: n for site, n in linked.counter.by_site().items() if site.startswith(BUDGET)}
    # One call (the invoice's; the contact is unchanged): its admission. The release rode along
    # with the invoice step's checkpoint; before, a write of its own.
    assert sum(budget.values()) == 1 and not any("release" in site for site in budget), budget
    # A new contact: a lookup and a create (one step, one admission for both) and the invoice.
    new_budget = {site: n for site, n in new.counter.by_site().items() if site.startswith(BUDGET)}
    assert sum(new_budget.values()) == 2, new_budget
    assert not any("release" in site for site in new.counter.by_site())


# ------------------------------------------------------------- slots released by the checkpoint
def started(state: StateStore, lease_seconds: int = 60) -> None:
    state.create_run({"run_id": "r1", "created_at": "2026-01-01T00:00:00Z", "status": "RUNNING"})
    state.claim_step("r1", "a", owner="me", lease_seconds=lease_seconds, seq=0)


def test_a_calls_slot_is_held_until_the_steps_checkpoint_releases_it(aws: Any) -> None:
    state = StateStore()
    budget = RateBudget(state, wait_seconds=0)
    started(state)
    with slots_ride_along():
        # Two calls of one step (a lookup, then a write): one update of the budget item releases both.
        for _ in range(2):
            budget.release(budget.acquire("tenant"))
        assert budget.snapshot("tenant")["in_flight"] == 2  # still counted: nothing written yet
        slots = held_slots()
        done = RunChange({"status": "SUCCEEDED"})
        assert state.finish_step(
            "r1", "a", owner="me", status="SUCCEEDED", output={}, then_run=done, also=slots.updates()
        )
        slots.released()
        assert budget.snapshot("tenant")["in_flight"] == 0
    run, steps = state.get_run_and_steps("r1")
    assert run is not None and run["status"] == "SUCCEEDED" and steps[0]["status"] == "SUCCEEDED"


def test_a_batch_making_many_calls_before_a_checkpoint_never_waits_for_its_own_slots(aws: Any) -> None:
    # A contact batch adopting contacts by name makes two calls per contact before any checkpoint.
    # Were every slot left to ride along, its sixth call would wait for the five it holds itself.
    budget = RateBudget(StateStore(), wait_seconds=0, burst=60, window_seconds=1)
    with slots_ride_along():
        for _ in range(12):
            budget.release(budget.acquire("tenant"))  # BudgetExceeded ("concurrent") before
            assert budget.snapshot("tenant")["in_flight"] <= 2
        assert len(held_slots().held) == 2
    assert budget.snapshot("tenant")["in_flight"] == 0


def test_a_slot_no_checkpoint_took_is_released_when_the_batch_is_over(aws: Any) -> None:
    state = StateStore()
    budget = RateBudget(state, wait_seconds=0)
    started(state, lease_seconds=-10)
    with slots_ride_along():
        budget.release(budget.acquire("tenant"))
        slots = held_slots()
        # Our lease ended and went to another worker: the checkpoint is refused, the release with it.
        state.claim_step("r1", "a", owner="other", lease_seconds=60, seq=0)
        with pytest.raises(Conflict):
            state.finish_step("r1", "a", owner="me", status="SUCCEEDED", also=slots.updates())
        assert budget.snapshot("tenant")["in_flight"] == 1
    assert budget.snapshot("tenant")["in_flight"] == 0


def test_a_slot_a_failed_step_leaves_is_not_held_while_the_rest_of_the_batch_runs(aws: Any) -> None:
    from types import SimpleNamespace

    from clientary_xero.engine.batching import run_batch
    from clientary_xero.engine.runner import ActionCall, StepOutcome

    budget = RateBudget(StateStore(), wait_seconds=0)
    seen: list[int] = []

    def call_xero(ctx: Any, data: Any) -> dict[str, Any]:
        seen.append(budget.snapshot("tenant")["in_flight"])  # before this step's own call
        budget.release(budget.acquire("tenant"))
        return {}

    def failing_step(i: int) -> Any:
        # A step whose outcome is written without a checkpoint transaction (as a failed one's).
        spec = SimpleNamespace(name="test.call", run=call_xero)
        yield ActionCall(spec, SimpleNamespace(attempt=1), None)  # type: ignore[arg-type]
        return StepOutcome(f"r{i}", "a", "FAILED")

    outcomes = run_batch([failing_step(i) for i in range(2)])
    assert [o.status for o in outcomes] == ["FAILED", "FAILED"]
    assert seen == [0, 0]  # the first step's slot was released once it settled
    assert budget.snapshot("tenant")["in_flight"] == 0


def test_an_admission_that_meets_a_checkpoints_transaction_tries_again(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = StateStore()
    budget = RateBudget(state, wait_seconds=0)
    budget.release(budget.acquire("tenant"))  # the item exists
    original = StateStore.update_raw
    conflicts = [1]

    def update_raw(self: StateStore, key: dict[str, str], **kwargs: Any) -> Any:
        if conflicts:
            conflicts.pop()
            raise TransactionConflict("DynamoDB is busy (TransactionConflictException)")
        return original(self, key, **kwargs)

    monkeypatch.setattr(StateStore, "update_raw", update_raw)
    permit = budget.acquire("tenant")  # not a RetryableError: the step is not sent back for it
    assert budget.snapshot("tenant")["in_flight"] == 1 and permit.scope == "tenant"


# ------------------------------------------------------------ the link's lock on the link item
def test_a_links_write_rides_along_with_the_steps_checkpoint_and_gives_its_lock_up(aws: Any) -> None:
    state = StateStore()
    started(state)
    with slots_ride_along():
        with state.lock_link("xero.contact", "CL-1") as hold:
            assert hold.link is None and not hold.unchanged
            hold.write({"ContactID": "c-1"}, version="t:h1")
        # Not written yet: the lock is held until the checkpoint writes the link with it
        assert state.get_link("xero.contact", "CL-1") is None
        assert not state.take_link_lock("xero.contact", "CL-1", "other")
        slots = held_slots()
        assert state.finish_step("r1", "a", owner="me", status="SUCCEEDED", output={}, also=slots.updates())
        slots.released()
        assert state.get_link("xero.contact", "CL-1") == {"ContactID": "c-1"}
    assert state.take_link_lock("xero.contact", "CL-1", "other")  # given up by that same write


def test_a_link_no_checkpoint_took_is_written_by_itself_once_the_batch_is_over(aws: Any) -> None:
    state = StateStore()
    started(state, lease_seconds=-10)
    with slots_ride_along():
        with state.lock_link("xero.contact", "CL-2") as hold:
            hold.write({"ContactID": "c-2"}, version="t:h1")
        # Our lease ended and went to another worker: the checkpoint is refused, the link with it …
        state.claim_step("r1", "a", owner="other", lease_seconds=60, seq=0)
        with pytest.raises(Conflict):
            state.finish_step("r1", "a", owner="me", status="SUCCEEDED", also=held_slots().updates())
        assert state.get_link("xero.contact", "CL-2") is None
    # … and it is written (it names what Xero has) with the lock given up, once the batch is over
    assert state.get_link("xero.contact", "CL-2") == {"ContactID": "c-2"}
    assert state.take_link_lock("xero.contact", "CL-2", "next")


def test_the_lock_is_not_taken_when_the_link_holds_the_version_already(aws: Any) -> None:
    state = StateStore()
    with state.lock_link("xero.contact", "CL-3") as hold:
        hold.write({"ContactID": "c-3"}, version="t:h1")  # outside a step: written at once
    with state.lock_link("xero.contact", "CL-3", unless="t:h1") as same:
        assert same.unchanged and same.link == {"ContactID": "c-3"}
        assert state.take_link_lock("xero.contact", "CL-3", "other")  # none was taken
        state.release_link_lock("xero.contact", "CL-3", "other")
    with state.lock_link("xero.contact", "CL-3", unless="t:h2") as changed:
        assert not changed.unchanged and changed.link == {"ContactID": "c-3"}  # read under the lock
        assert not state.take_link_lock("xero.contact", "CL-3", "other")
    assert state.take_link_lock("xero.contact", "CL-3", "other")  # the block's end gave it up


# ---------------------------------------------------------------- the budget's writes, counted
@contextlib.contextmanager
def dynamodb_requests() -> Iterator[Counter[str]]:
    """Every DynamoDB request made meanwhile, by operation."""
    from botocore.client import BaseClient

    seen: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counted(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            seen[operation] += 1
        return original(self, operation, params)

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def test_the_first_admission_makes_the_budget_item_and_a_wrong_guess_costs_no_read(aws: Any) -> None:
    first = RateBudget(StateStore(), wait_seconds=5)
    with dynamodb_requests() as requests:
        permit = first.acquire("tenant")  # the organisation's first call: the item is made with it
    assert requests == {"UpdateItem": 1}
    assert first.snapshot("tenant")["in_flight"] == 1
    # Another worker, which has seen nothing, while that call is in flight: its guess (set the slots
    # outright) is refused, and the item the refusal returns leads it to the form that keeps the
    # other call's slot; no read.
    second = RateBudget(StateStore(), wait_seconds=5)
    with dynamodb_requests() as requests:
        other = second.acquire("tenant")
    assert requests == {"UpdateItem": 2}
    assert second.snapshot("tenant")["in_flight"] == 2
    first.release(permit)
    second.release(other)
    assert first.snapshot("tenant")["in_flight"] == 0


def test_a_budget_item_gone_while_a_worker_thought_it_busy_is_made_again(aws: Any) -> None:
    state = StateStore()
    budget = RateBudget(state, wait_seconds=5)
    budget.release(budget.acquire("tenant"))  # the schedule is busy for an interval after it
    state._t.delete_item(Key=budget._key("tenant"))  # its TTL came (or an operator removed it)
    with dynamodb_requests() as requests:
        budget.release(budget.acquire("tenant"))
    # The busy guess is refused with no item: the fresh form makes it again (and the release)
    assert requests == {"UpdateItem": 3}
    assert budget.snapshot("tenant")["in_flight"] == 0


def test_a_step_that_expects_two_calls_admits_both_with_one_write(aws: Any) -> None:
    budget = RateBudget(StateStore(), wait_seconds=5)
    with slots_ride_along(), rate_turn():
        expect_calls(2)
        with dynamodb_requests() as requests:
            lookup = budget.acquire("tenant")
            budget.release(lookup)  # its release waits for the checkpoint
            write = budget.acquire("tenant")  # the reserved instant, the lookup's slot
        assert requests == {"UpdateItem": 1}
        assert write.owner == lookup.owner and budget.snapshot("tenant")["in_flight"] == 1
        budget.release(write)
    assert budget.snapshot("tenant")["in_flight"] == 0


def test_a_slot_whose_lease_could_end_during_the_call_is_not_reused(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.storage import ratelimit

    # A call may last longer than the lease has left: the second call takes a slot of its own.
    monkeypatch.setattr(ratelimit, "MAX_CALL_SECONDS", ratelimit.LEASE_SECONDS + 1)
    budget = RateBudget(StateStore(), wait_seconds=5)
    with slots_ride_along(), rate_turn():
        expect_calls(2)
        with dynamodb_requests() as requests:
            lookup = budget.acquire("tenant")
            budget.release(lookup)
            write = budget.acquire("tenant")
        assert requests == {"UpdateItem": 2}
        assert write.owner != lookup.owner and budget.snapshot("tenant")["in_flight"] == 2
        budget.release(write)
    assert budget.snapshot("tenant")["in_flight"] == 0


# ------------------------------------------------------------------------- the workflow cache
@pytest.fixture
def h(aws: Any) -> Iterator[Harness]:
    from tests.engine_helpers import echo_action

    with echo_action() as echo:
        yield Harness(aws, echo)


def test_the_cache_holds_workflows_for_its_time_and_a_console_edit_takes_effect_after(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    clock = [1000.0]
    monkeypatch.setattr(workflow_storage, "_monotonic", lambda: clock[0])
    h.put(workflow())
    reads: list[str] = []
    original = workflow_storage.WorkflowStore._load_for_trigger

    def counted(self: Any, trigger: str) -> Any:
        reads.append(trigger)
        return original(self, trigger)

    monkeypatch.setattr(workflow_storage.WorkflowStore, "_load_for_trigger", counted)
    assert h.deliver(record_id=1)[0].status == "QUEUED"
    # An edit in the console (straight into the table): the container does not see it yet …
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(h.resources.workflows_table)
    broken = workflow()
    broken["steps"][0]["action"] = "xero.no_such_action"
    table.put_item(Item=broken)
    assert h.deliver(record_id=2)[0].status == "QUEUED"
    assert len(reads) == 1
    # … and does once the cache time has passed: the invalid workflow is reported on the run.
    clock[0] += h.workflows.cache_seconds + 0.1
    (start,) = h.deliver(record_id=3)
    assert len(reads) == 2 and start.status == "FAILED"
    run = h.state.get_run(start.run_id)
    assert run is not None and "unknown action 'xero.no_such_action'" in run["error"]["messages"][0]
    # The cached invalid workflow keeps being reported on each run, without reading again.
    (again,) = h.deliver(record_id=4)
    assert again.status == "FAILED" and len(reads) == 2


def test_an_edit_saved_by_this_process_takes_effect_at_once(h: Harness) -> None:
    h.put(workflow())
    assert h.deliver(record_id=1)[0].status == "QUEUED"
    h.put(workflow(enabled=False))
    assert h.deliver(record_id=2)[0].status == "SKIPPED"


# ------------------------------------------------------------------ messages that carry their run
def test_the_next_steps_message_carries_the_run_and_a_duplicate_of_it_runs_nothing(h: Harness) -> None:
    h.put(workflow())
    (start,) = h.deliver(number="A-1")
    (first,) = h.messages()
    assert h.runner.execute(first).status == "SUCCEEDED"
    (second,) = h.messages()
    assert second["step_id"] == "second"
    assert second["carried"]["outputs"]["first"]["value"] == "A-1"
    assert second["carried"]["run"]["decisions"] == {"if_1": True}
    assert h.runner.execute(second).status == "SUCCEEDED"
    # A second delivery of the same message: its claim's check fails (the step was claimed), the
    # run is read, and nothing runs twice.
    again = h.runner.execute(second)
    assert again.status in ("SKIPPED", "SUCCEEDED") and [c[0] for c in h.echo.calls] == ["first", "second"]
    run = h.state.get_run(start.run_id)
    assert run is not None and run["status"] == "SUCCEEDED"


def test_a_carried_run_is_used_only_while_the_run_is_as_carried(h: Harness) -> None:
    h.put(workflow())
    (start,) = h.deliver(number="A-1")
    (message,) = h.messages()
    assert message["carried"]["run"]["record"]["number"] == "A-1"
    # The run is written after the message went out (here its record): what it carries is stale.
    h.state.update_run(start.run_id, {"record": {"id": 1, "number": "B-2", "total_cost": 10.0}})
    assert h.runner.execute(message).status == "SUCCEEDED"
    step = h.state.get_step(start.run_id, "first")
    assert step is not None and step["input"] == {"value": "B-2"}


def test_a_message_whose_carried_run_was_altered_is_not_trusted(h: Harness) -> None:
    h.put(workflow())
    (start,) = h.deliver(number="A-1")
    (message,) = h.messages()
    message["carried"]["run"]["record"]["number"] = "FORGED"
    assert h.runner.execute(message).status == "SUCCEEDED"
    step = h.state.get_step(start.run_id, "first")
    assert step is not None and step["input"] == {"value": "A-1"}


def test_a_run_too_big_to_carry_is_read_as_before(h: Harness) -> None:
    h.put(workflow())
    h.deliver(number="A-" + "9" * CARRY_BYTES)
    (message,) = h.messages()
    assert "carried" not in message
    assert h.runner.execute(message).status == "SUCCEEDED"


# ------------------------------------------------------------------- transactions that are refused
def test_a_claim_whose_step_changed_since_it_was_read_falls_back_and_counts_the_attempt(aws: Any) -> None:
    state = StateStore()
    state.create_run({"run_id": "r1", "created_at": "2026-01-01T00:00:00Z", "status": "QUEUED"})
    # An earlier worker claimed the step and died; its lease is over.
    state.claim_step("r1", "a", owner="dead", lease_seconds=-10, seq=0)
    # This worker read the step before that claim (attempts 0): the transaction is refused …
    claimed = state.claim_step(
        "r1", "a", owner="me", lease_seconds=60, seq=0, start_run=RunChange({"status": "RUNNING"})
    )
    # … and the claim is made as without it: the attempt number is the real one, the run moved.
    assert claimed["attempts"] == 2 and claimed["lease_owner"] == "me"
    run = state.get_run("r1")
    assert run is not None and run["status"] == "RUNNING"


def test_a_checkpoint_with_a_lost_lease_writes_neither_the_step_nor_the_run(aws: Any) -> None:
    state = StateStore()
    state.create_run({"run_id": "r1", "created_at": "2026-01-01T00:00:00Z", "status": "RUNNING"})
    state.claim_step("r1", "a", owner="other", lease_seconds=60, seq=0)
    with pytest.raises(Conflict):
        state.finish_step(
            "r1",
            "a",
            owner="me",
            status="SUCCEEDED",
            output={"x": 1},
            then_run=RunChange({"status": "SUCCEEDED"}),
        )
    run, steps = state.get_run_and_steps("r1")
    assert run is not None and run["status"] == "RUNNING"
    assert [(s["status"], s.get("output")) for s in steps] == [("RUNNING", None)]


def test_the_enqueued_marks_of_a_poll_page_survive_a_run_that_is_gone(aws: Any) -> None:
    state = StateStore()
    for run_id in ("r1", "r2"):
        state.create_run({"run_id": run_id, "created_at": "2026-01-01T00:00:00Z", "status": "QUEUED"})
    mark = RunChange({"enqueued": True})
    failed = state.update_runs([("r1", mark), ("gone", mark), ("r2", mark)])
    assert [run_id for run_id, _ in failed] == ["gone"]
    assert all((state.get_run(r) or {}).get("enqueued") is True for r in ("r1", "r2"))
