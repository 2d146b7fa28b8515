"""Polling Clientary for new invoices: every new invoice once, nothing lost, idle polls cheap.

The sandbox and the poller share one fake clock; the cursor lives in a moto State table.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from clientary_xero.connectors.clientary.client import ClientaryClient, ClientaryNotFound
from clientary_xero.connectors.clientary.pollers import (
    NEW_INVOICE_TRIGGER,
    PollBatch,
    commit,
    fetch_invoice,
    poll_new_invoices,
)
from clientary_xero.errors import RetryableError
from clientary_xero.local.clientary_sandbox import ClientarySandbox
from clientary_xero.storage.state import StateStore
from tests.clientary_fixtures import FakeClock, moto_aws, sandbox_and_client, state_store


class Env:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.sandbox, self.client = sandbox_and_client(self.clock)
        self.state = state_store()
        self.customer = self.sandbox.seed_client("Harbor Lane Bakery")

    def poll(self, **kwargs: Any) -> PollBatch:
        return poll_new_invoices(self.client, self.state, now=self.clock(), **kwargs)

    def poll_and_commit(self) -> list[int]:
        batch = self.poll()
        batch.commit()
        return [r["id"] for r in batch]

    def requests_for(self, action: Any) -> int:
        before = self.sandbox.request_count
        action()
        return self.sandbox.request_count - before

    def invoice(self, price: float = 100.0, **fields: Any) -> dict[str, Any]:
        return self.sandbox.add_invoice(
            self.customer["id"], [{"title": "Work", "quantity": 1, "price": price}], **fields
        )

    def api_invoice(self, title: str) -> dict[str, Any]:
        return self.client.post(
            "/invoices",
            {
                "invoice": {
                    "title": title,
                    "date": "2024-03-10",
                    "due_date": "2024-04-09",
                    "currency_code": "USD",
                    "client_id": self.customer["id"],
                }
            },
        )


@pytest.fixture
def env() -> Iterator[Env]:
    with moto_aws():
        yield Env()


def _cursor(env: Env) -> dict[str, Any]:
    cursor = env.state.get_cursor(NEW_INVOICE_TRIGGER)
    assert cursor is not None
    return cursor


# ------------------------------------------------------------------------------ first poll
def test_first_poll_delivers_nothing_then_a_new_invoice_is_delivered(env: Env) -> None:
    # Given an account with history (old and recent invoices)
    old = env.invoice(10)
    env.clock.advance(days=20)
    recent = env.invoice(20)
    env.clock.advance(hours=2)

    # When the poller runs for the first time
    first = env.poll()
    # (two requests: the recent window, and page 1 of the whole list for the highest id)
    assert list(first) == [] and first.first_poll and first.requests == 2
    first.commit()
    cursor = _cursor(env)
    assert cursor["watermark"] == env.clock().isoformat()
    assert str(recent["id"]) in cursor["seen"] and str(old["id"]) not in cursor["seen"]

    # Then a later invoice is delivered, normalised, and the history never is
    env.clock.advance(minutes=15)
    created = env.invoice(30)
    env.clock.advance(minutes=15)
    batch = env.poll()
    assert [r["id"] for r in batch] == [created["id"]]
    assert batch[0]["date"] == "2024-03-30" and batch[0]["status_name"] == "draft"
    assert batch[0]["invoice_items"][0]["amount"] == 30.0
    batch.commit()
    assert env.poll_and_commit() == []


def test_first_poll_queries_a_wider_window_than_later_polls(env: Env) -> None:
    env.poll().commit()
    env.clock.advance(minutes=15)
    env.poll().commit()
    (first_method, first_path), (_, whole_list), (_, second_path) = env.sandbox.requests[-3:]
    assert first_method == "GET" and "updated_since" not in whole_list
    assert "updated_since=2024-03-08" in first_path  # now - 1 day - 1 day
    assert "updated_since=2024-03-09" in second_path  # watermark's date - 1 day
    assert "page_size=100" in second_path


# ------------------------------------------------------------------------------ steady state
def test_invoices_created_between_two_polls_are_each_delivered_once(env: Env) -> None:
    env.poll().commit()
    env.clock.advance(minutes=3)
    made = [env.invoice(5).get("id")]
    env.clock.advance(minutes=3)
    made.append(env.api_invoice("Made through the API")["id"])
    env.clock.advance(seconds=1)
    made += [env.invoice(7)["id"], env.invoice(8)["id"]]  # same second: ordered by id
    env.clock.advance(minutes=3)

    assert env.poll_and_commit() == made
    env.clock.advance(minutes=15)
    assert env.poll_and_commit() == []
    env.clock.advance(minutes=15)
    later = env.invoice(9)
    env.clock.advance(minutes=15)
    assert env.poll_and_commit() == [later["id"]]


def test_an_idle_poll_makes_exactly_one_request_and_writes_nothing(env: Env) -> None:
    env.invoice(1)
    env.poll().commit()
    env.clock.advance(minutes=5)
    env.invoice(2)
    env.clock.advance(minutes=5)
    env.poll().commit()
    version = _cursor(env)["_version"]

    env.clock.advance(minutes=15)
    batch: list[PollBatch] = []
    assert env.requests_for(lambda: batch.append(env.poll())) == 1
    assert list(batch[0]) == [] and not batch[0].changed
    batch[0].commit()
    assert _cursor(env)["_version"] == version


def test_a_poll_that_dies_before_commit_redelivers_next_time(env: Env) -> None:
    env.poll().commit()
    env.clock.advance(minutes=5)
    first, second = env.invoice(1), env.invoice(2)
    env.clock.advance(minutes=5)

    crashed = env.poll()  # runs may have started for some of these; then the Lambda died
    assert [r["id"] for r in crashed] == [first["id"], second["id"]]

    env.clock.advance(minutes=15)
    third = env.invoice(3)
    env.clock.advance(minutes=1)
    retried = env.poll()
    assert [r["id"] for r in retried] == [first["id"], second["id"], third["id"]]
    retried.commit()
    assert env.poll_and_commit() == []


def test_an_error_mid_poll_leaves_the_cursor_alone(env: Env) -> None:
    env.poll().commit()
    before = _cursor(env)
    env.clock.advance(minutes=5)
    created = env.invoice(1)
    env.sandbox.fail_next(503)
    with pytest.raises(RetryableError):
        env.poll()
    assert _cursor(env) == before
    assert env.poll_and_commit() == [created["id"]]


def test_an_updated_old_invoice_is_not_new(env: Env) -> None:
    ancient = env.invoice(1)
    env.clock.advance(days=10)
    known = env.invoice(2)  # created shortly before the first poll: in the seen set
    env.clock.advance(hours=1)
    env.poll().commit()

    env.clock.advance(minutes=5)
    env.sandbox.touch_invoice(ancient["id"], status=4)
    env.sandbox.touch_invoice(known["id"], title="Edited")
    fresh = env.invoice(3)
    env.clock.advance(minutes=5)
    assert env.poll_and_commit() == [fresh["id"]]

    # Two days on, the delivered invoice has left the seen set; editing it must not redeliver it.
    env.clock.advance(days=2)
    env.sandbox.touch_invoice(fresh["id"], status=1)
    env.clock.advance(minutes=1)
    assert env.poll_and_commit() == []
    assert str(fresh["id"]) not in _cursor(env)["seen"]
    env.clock.advance(minutes=15)
    env.sandbox.touch_invoice(fresh["id"], title="Edited again")
    assert env.poll_and_commit() == []


def test_the_seen_set_stays_bounded_as_the_watermark_moves(env: Env) -> None:
    env.poll().commit()
    for _ in range(5):
        env.clock.advance(hours=12)
        env.invoice(1)
        env.clock.advance(minutes=1)
        assert len(env.poll_and_commit()) == 1
    seen = _cursor(env)["seen"]
    assert 1 <= len(seen) <= 3  # about one day of invoices, not all five


def test_more_than_one_page(env: Env) -> None:
    env.poll().commit()
    env.clock.advance(minutes=1)
    made = [env.invoice(n + 1)["id"] for n in range(230)]
    env.clock.advance(minutes=1)

    batch: list[PollBatch] = []
    assert env.requests_for(lambda: batch.append(env.poll())) == 3
    assert [r["id"] for r in batch[0]] == made
    batch[0].commit()
    assert env.poll_and_commit() == []


def test_a_small_page_size_pages_until_page_count(env: Env) -> None:
    env.poll().commit()
    env.clock.advance(minutes=1)
    made = [env.invoice(n + 1)["id"] for n in range(7)]
    batch = env.poll(page_size=3)
    assert batch.requests == 3 and [r["id"] for r in batch] == made


# ------------------------------------------------------------------------------ concurrency
def test_two_overlapping_polls_merge_their_cursors(env: Env) -> None:
    env.poll().commit()
    env.clock.advance(minutes=1)
    one = env.invoice(1)
    env.clock.advance(minutes=1)
    a = env.poll()  # e.g. the schedule…
    env.clock.advance(minutes=1)
    two = env.invoice(2)
    env.clock.advance(minutes=1)
    b = env.poll()  # …and a "poll now" at the same time
    assert [r["id"] for r in a] == [one["id"]]
    assert [r["id"] for r in b] == [one["id"], two["id"]]  # the intake's dedupe absorbs the repeat
    b.commit()
    a.commit(env.state)  # loses the optimistic race, merges instead of failing or going back
    assert {str(one["id"]), str(two["id"])} <= set(_cursor(env)["seen"])
    assert env.poll_and_commit() == []


def test_commit_gives_up_with_a_retryable_error_when_the_cursor_keeps_moving(env: Env) -> None:
    env.poll().commit()
    env.clock.advance(minutes=1)
    env.invoice(1)
    batch = env.poll()

    class Busy(StateStore):
        def put_cursor(self, name: str, cursor: dict[str, Any]) -> None:
            from clientary_xero.errors import Conflict

            raise Conflict("ConditionalCheckFailedException")

    with pytest.raises(RetryableError):
        commit(Busy(env.state.table_name), batch)


# ------------------------------------------------------------------------------ fallbacks
class ListOnly:
    """A fake source with Clientary envelopes but records without created_at (as in the docs)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.calls: list[date | None] = []

    def list_invoices(
        self, *, updated_since: date | None = None, page: int = 1, page_size: int = 100
    ) -> dict[str, Any]:
        self.calls.append(updated_since)
        chunk = self.records[(page - 1) * page_size : page * page_size]
        pages = -(-len(self.records) // page_size)
        return {
            "page_count": pages,
            "page_size": page_size,
            "total_count": len(self.records),
            "invoices": chunk,
        }

    def get_invoice(self, invoice_id: int | str) -> dict[str, Any]:
        raise NotImplementedError


def test_after_a_busy_day_the_window_moves_on_and_idle_polls_are_one_request_again(env: Env) -> None:
    # Given a day with 250 invoices (three pages of 100) and the first poll at its end
    for _ in range(250):
        env.invoice(1)
    env.clock.advance(hours=1)
    env.poll().commit()

    # When polling goes on for the next days
    env.clock.advance(days=2)
    catch_up = env.poll()
    catch_up.commit()
    assert list(catch_up) == [] and catch_up.requests == 3  # the busy day is still in the window once
    env.clock.advance(minutes=15)
    idle: list[PollBatch] = []
    assert env.requests_for(lambda: idle.append(env.poll())) == 1
    idle[0].commit()

    # Then the moved window still delivers what is new, once
    env.clock.advance(minutes=5)
    created = env.invoice(2)
    env.clock.advance(minutes=10)
    assert env.poll_and_commit() == [created["id"]]
    assert env.poll_and_commit() == []


class WithoutCreatedAt:
    """The real client, but records as Clientary's docs show them: no ``created_at``."""

    def __init__(self, client: ClientaryClient) -> None:
        self.client = client

    def list_invoices(self, **kwargs: Any) -> dict[str, Any]:
        envelope = self.client.list_invoices(**kwargs)
        for record in envelope["invoices"]:
            record.pop("created_at", None)
        return envelope

    def get_invoice(self, invoice_id: int | str) -> dict[str, Any]:
        return self.client.get_invoice(invoice_id)


def test_without_created_at_an_old_invoice_edited_after_a_quiet_first_poll_is_not_new(env: Env) -> None:
    # Given an account whose only invoice is a month old (nothing in the first poll's window)
    old = env.invoice(10)
    env.clock.advance(days=30)
    source = WithoutCreatedAt(env.client)
    poll_new_invoices(source, env.state, now=env.clock()).commit()
    assert _cursor(env)["id_floor"] == old["id"]  # the whole list's highest id, not the window's

    # When someone marks the old invoice paid, and a new invoice is made
    env.clock.advance(minutes=15)
    env.sandbox.touch_invoice(old["id"], status=4)
    created = env.invoice(20)
    env.clock.advance(minutes=1)

    # Then only the new one is delivered
    batch = poll_new_invoices(source, env.state, now=env.clock())
    assert [r["id"] for r in batch] == [created["id"]]


def test_without_created_at_new_means_an_id_above_the_known_ones(env: Env) -> None:
    source = ListOnly()
    now = env.clock()
    source.records = [{"id": 100, "updated_at": (now - timedelta(days=30)).isoformat()}]
    poll_new_invoices(source, env.state, now=now).commit()
    assert _cursor(env)["id_floor"] == 100

    later = now + timedelta(minutes=15)
    source.records = [
        {"id": 101, "updated_at": later.isoformat(), "date": "2024/03/10"},
        {"id": 100, "updated_at": later.isoformat()},  # the old one, edited
    ]
    batch = poll_new_invoices(source, env.state, now=later)
    assert [r["id"] for r in batch] == [101] and batch[0]["date"] == "2024-03-10"
    batch.commit()
    assert list(poll_new_invoices(source, env.state, now=later)) == []


def test_an_empty_account_with_zero_page_count(env: Env) -> None:
    source = ListOnly()
    first = poll_new_invoices(source, env.state, now=env.clock())
    first.commit()
    second = poll_new_invoices(source, env.state, now=env.clock())
    assert list(second) == [] and second.requests == 1 and len(source.calls) == 3


# ------------------------------------------------------------------------------ push route helper
def test_fetch_invoice_rereads_and_normalises(env: Env) -> None:
    created = env.invoice(49.99, status=2)
    before = env.sandbox.request_count
    invoice = fetch_invoice(env.client, created["id"])
    assert env.sandbox.request_count == before + 1
    assert invoice["id"] == created["id"] and invoice["status_name"] == "viewed"
    assert invoice["total_cost"] == 49.99 and invoice["date"] == "2024-03-10"
    with pytest.raises(ClientaryNotFound):
        fetch_invoice(env.client, 1)


def test_poll_rejects_a_naive_now(env: Env) -> None:
    with pytest.raises(ValueError):
        poll_new_invoices(env.client, env.state, now=env.clock().replace(tzinfo=None))


def test_types_used_by_the_use_case() -> None:
    # The schedule use case reads batch.records / batch.requests and calls batch.commit().
    sandbox: ClientarySandbox
    client: ClientaryClient
    sandbox, client = sandbox_and_client()
    with moto_aws():
        batch = poll_new_invoices(client, state_store(), now=sandbox.clock())
        assert batch.records == [] and batch.requests == 2
        batch.commit()
        assert batch.committed


def test_the_first_poll_finds_the_highest_id_in_a_list_in_no_id_order(env: Env) -> None:
    from clientary_xero.connectors.clientary.pollers import _highest_id

    # Pages of a list sorted by something else (number, title): the highest id sits on page 2.
    pages = {1: [{"id": 5}, {"id": 3}, {"id": 9}], 2: [{"id": 42}, {"id": 1}], 3: [{"id": 7}]}
    asked: list[int] = []

    def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
        asked.append(page)
        return pages[page], 3

    assert _highest_id(fetch) == (42, 3) and asked == [1, 2, 3]
    # Newest or oldest first: page 1 and the last page are enough.
    ordered = {1: [{"id": 9}, {"id": 8}], 2: [{"id": 5}], 3: [{"id": 2}, {"id": 1}]}
    asked.clear()
    assert _highest_id(lambda page: (asked.append(page), (ordered[page], 3))[1]) == (9, 2)
    assert asked == [1, 3]
