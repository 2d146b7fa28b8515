"""Issue 7, point 10: two steps of one client at once, the client renamed between them, make one
Xero contact: contact writes are serialised per link key (find → create → link under its lock)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import clientary_xero.storage.state as state_module
from clientary_xero.connectors.http import use_transport
from clientary_xero.connectors.xero.actions import ContactInput, create_or_update_contact
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.errors import LockBusy
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.storage.state import StateStore
from tests.conftest_xero import (  # noqa: F401
    AwsEnv,
    FakeClock,
    ProviderFactory,
    aws,
    clock,
    connection,
    make_context,
    make_provider,
    sandbox,
)


class LookupsMeet(httpx.BaseTransport):
    """The worst interleaving, made certain: a lookup by ContactNumber is answered, then waits (up
    to ``patience`` seconds) until a second lookup has been answered too, so two writers that both
    look before either creates are both told "nothing"."""

    def __init__(self, inner: XeroSandbox, patience: float = 1.0) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(2, timeout=patience)
        self.lookups = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "GET" and "ContactNumber" in request.url.params.get("where", ""):
            self.lookups += 1
            # Broken: nobody else looked meanwhile (the other writer waits for the lock).
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait()
        return response


@pytest.fixture
def meet(sandbox: XeroSandbox) -> Iterator[LookupsMeet]:  # noqa: F811
    transport = LookupsMeet(sandbox)
    with use_transport(transport):
        yield transport


def test_two_concurrent_steps_of_a_renamed_client_make_one_contact(
    monkeypatch: pytest.MonkeyPatch,
    meet: LookupsMeet,
    sandbox: XeroSandbox,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    # The wait for the other's lock is generous: a loaded machine must not turn a slow first writer
    # into LockBusy (what is under test is "one contact").
    monkeypatch.setattr(state_module, "LINK_LOCK_WAIT_SECONDS", 60.0)
    # Given two invoices of client 7 processed at once, the client renamed in Clientary between them
    names = {"run-a": "Acme Builders", "run-b": "Acme Builders Ltd"}
    outputs: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def step(run_id: str) -> None:
        try:
            client = XeroClient(make_provider())  # one Lambda each
            data = ContactInput(Name=names[run_id], ContactNumber="CL-7")
            outputs[run_id] = create_or_update_contact(make_context(client, run_id=run_id), data)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # When both steps run concurrently
    threads = [threading.Thread(target=step, args=(run_id,)) for run_id in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []

    # Then Xero has exactly one contact with that ContactNumber …
    contacts = [c for c in sandbox.contacts(connection["tenant_id"]) if c.get("ContactNumber") == "CL-7"]
    assert len(contacts) == 1
    (contact,) = contacts
    # … both steps' outputs are that contact: the first created it, the second updated it
    assert {o["ContactID"] for o in outputs.values()} == {contact["ContactID"]}
    assert sorted(o["created"] for o in outputs.values()) == [False, True]
    (second,) = [r for r, o in outputs.items() if not o["created"]]
    # … and the later write wins the name (each step writes its own input), with no duplicate
    assert contact["Name"] == names[second] == outputs[second]["Name"]
    link = StateStore().get_link("xero.contact", "CL-7")
    assert link is not None
    assert (link["ContactID"], link["tenant"]) == (contact["ContactID"], connection["tenant_id"])
    assert meet.lookups <= 2  # the second writer found the first's link (or the contact) under the lock


def test_a_writer_that_cannot_get_the_lock_creates_nothing_and_waits(
    sandbox: XeroSandbox,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state_module, "LINK_LOCK_WAIT_SECONDS", 0.3)
    store = StateStore()
    # Given another worker holding the link lock of CL-8 (it is creating that contact right now)
    assert store.take_link_lock("xero.contact", "CL-8", "other-worker")
    with use_transport(sandbox):
        client = XeroClient(make_provider())
        data = ContactInput(Name="Beta Inc", ContactNumber="CL-8")
        # When a second step of the same client writes, Then it gives up with a retryable wait
        with pytest.raises(LockBusy, match="held by another worker") as busy:
            create_or_update_contact(make_context(client), data)
        assert busy.value.delay_seconds > 0
        assert sandbox.contacts(connection["tenant_id"]) == []  # nothing created meanwhile
        # Once the holder is done, the retry creates the contact, once
        store.release_link_lock("xero.contact", "CL-8", "other-worker")
        made = create_or_update_contact(make_context(client, attempt=2), data)
    assert made["created"] is True
    assert [c["Name"] for c in sandbox.contacts(connection["tenant_id"])] == ["Beta Inc"]


def test_the_lock_is_released_when_the_write_fails(
    sandbox: XeroSandbox,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    from clientary_xero.errors import RetryableError

    with use_transport(sandbox):
        client = XeroClient(make_provider())
        data = ContactInput(Name="Gamma LLC", ContactNumber="CL-9")
        sandbox.fail_next(503, count=10)
        with pytest.raises(RetryableError):
            create_or_update_contact(make_context(client), data)
        # The next writer gets the lock at once (a held lock would make it wait, then LockBusy)
        assert StateStore().take_link_lock("xero.contact", "CL-9", "next-writer")


def test_a_step_that_meets_a_busy_contact_lock_waits_without_using_an_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pathlib import Path

    from clientary_xero.local import cli
    from clientary_xero.local.environment import LocalEnvironment
    from clientary_xero.workflows.loader import read_document

    monkeypatch.setattr(state_module, "LINK_LOCK_WAIT_SECONDS", 0.2)
    with LocalEnvironment(max_attempts=3) as env:
        env.put_workflow(read_document(Path(cli.__file__).parent / "samples" / "invoice_to_xero.yaml"))
        env.poll("clientary.new_invoice")
        client = env.clientary.seed_client("Acme Builders")
        env.clientary.add_invoice(client["id"], [{"title": "Survey", "quantity": 2, "price": 95.0}], status=1)
        # Given another run creating this client's contact right now (it holds the link lock)
        number = f"CL-{client['id']}"
        assert env.state.take_link_lock("xero.contact", number, "other-run")
        env.poll("clientary.new_invoice")

        def holder_finishes(batch: dict[str, Any]) -> None:
            env.state.release_link_lock("xero.contact", number, "other-run")

        # When the step meets the lock (and the holder finishes after that first try)
        env.drain(on_batch=holder_finishes)

        # Then the step waited (a re-sent copy), used one attempt in all, and made one contact
        (run,) = env.state.list_runs()
        assert run["status"] == "SUCCEEDED"
        steps = {s["step_id"]: s for s in env.state.get_steps(run["run_id"])}
        assert steps["contact"]["attempts"] == 1
        assert len(env.xero.contacts(env.xero_tenant_id())) == 1
        assert env.dlq_messages("xero") == []


# ------------------------------------------------- the lock held on the link item (issue 8 point 4)
def test_the_links_lock_excludes_a_second_holder_until_its_lease_ends(
    aws: AwsEnv,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    store = StateStore(clock=clock)
    assert store.take_link_lock("xero.contact", "CL-20", "first")
    assert not store.take_link_lock("xero.contact", "CL-20", "second")
    assert store.get_link("xero.contact", "CL-20") is None  # a lock alone is no link
    # The holder's lease ends on its own (a Lambda that died holding it)
    clock.advance(state_module.LINK_LOCK_SECONDS + 1)
    assert store.take_link_lock("xero.contact", "CL-20", "second")
    # The first holder's release, late, frees nothing of the second's
    store.release_link_lock("xero.contact", "CL-20", "first")
    assert not store.take_link_lock("xero.contact", "CL-20", "third")


def test_a_writer_that_dies_between_lock_and_link_leaves_a_lock_that_expires_and_no_duplicate(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: XeroSandbox,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    monkeypatch.setattr(state_module, "LINK_LOCK_WAIT_SECONDS", 0.2)
    store = StateStore(clock=clock)
    tenant = connection["tenant_id"]
    # Given a Lambda that took CL-21's lock, created the contact in Xero and died before linking it
    assert store.take_link_lock("xero.contact", "CL-21", "dead-lambda")
    made = sandbox.seed_contact(tenant, Name="Kappa Ltd", ContactNumber="CL-21")
    with use_transport(sandbox):
        client = XeroClient(make_provider())
        data = ContactInput(Name="Kappa Ltd", ContactNumber="CL-21")
        # When the retry comes while the dead Lambda's lease lasts, it waits and writes nothing
        with pytest.raises(LockBusy):
            create_or_update_contact(make_context(client, attempt=2, links=store), data)
        # … and once the lease has ended, it finds the contact by its number instead of creating it
        clock.advance(state_module.LINK_LOCK_SECONDS + 1)
        out = create_or_update_contact(make_context(client, attempt=2, links=store), data)
        # Then the same input again is the unchanged skip: one request, which takes no lock
        again = create_or_update_contact(make_context(client, run_id="run-2", links=store), data)
    assert (out["ContactID"], out["created"]) == (made["ContactID"], False)
    assert again["unchanged"] is True and again["ContactID"] == made["ContactID"]
    assert len(sandbox.contacts(tenant)) == 1
    item = store.get_raw({"pk": "LINK#xero.contact#CL-21", "sk": "LINK"})
    assert item is not None and "lock_owner" not in item and "lock_until_ms" not in item
    assert store.get_link("xero.contact", "CL-21")["ContactID"] == made["ContactID"]  # type: ignore[index]


def test_a_lock_given_up_without_a_link_leaves_no_item_behind(aws: AwsEnv) -> None:  # noqa: F811
    store = StateStore()
    with store.lock_link("xero.contact", "CL-22") as hold:  # the write failed: nothing linked
        assert hold.link is None
    assert store.get_raw({"pk": "LINK#xero.contact#CL-22", "sk": "LINK"}) is None
    # A link's own lock, given up without a write, leaves the link as it was
    store.put_link("xero.contact", "CL-22", {"ContactID": "c-22"})
    with store.lock_link("xero.contact", "CL-22") as hold:
        assert hold.link == {"ContactID": "c-22"}
    item = store.get_raw({"pk": "LINK#xero.contact#CL-22", "sk": "LINK"})
    assert item is not None and "lock_owner" not in item
    assert store.get_link("xero.contact", "CL-22") == {"ContactID": "c-22"}
