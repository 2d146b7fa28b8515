"""Issue 8, point 2: no Xero call for what Xero already has. A linked contact whose validated input
is the one last written (its hash is kept with the id link) is not sent again; a changed input, an
unlinked contact and a link written before hashes were kept all write (and store the hash)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.connectors.xero.actions import ContactInput, create_or_update_contact
from clientary_xero.connectors.xero.actions.contacts import input_digest
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.local.environment import LocalEnvironment
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.storage.state import StateStore
from tests.conftest_xero import (  # noqa: F401
    AwsEnv,
    FakeClock,
    ProviderFactory,
    Recorded,
    aws,
    clock,
    connection,
    make_context,
    make_provider,
    recorder,
    sandbox,
    xero,
)

SAMPLE = Path(__file__).resolve().parents[1] / "shared" / "clientary_xero" / "local" / "samples"
TRIGGER = "clientary.new_invoice"
LINES = [{"title": "Survey", "quantity": 2, "price": 95.0}]


def _writes(recorder: Recorded) -> list[tuple[str, str]]:  # noqa: F811
    """The API calls made so far: (method, last path segment)."""
    return [
        (r["method"], r["url"].split("?")[0].rsplit("/", 1)[-1])
        for r in recorder.records()
        if r["url"].startswith("https://api.xero.com")
    ]


def _contact(client: XeroClient, run: str, **fields: Any) -> dict[str, Any]:
    return create_or_update_contact(make_context(client, run_id=run), ContactInput(**fields))


# ----------------------------------------------------------------- the row, end to end
@pytest.fixture
def env() -> Iterator[LocalEnvironment]:
    from clientary_xero.workflows.loader import read_document

    with LocalEnvironment(max_attempts=3) as e:
        e.put_workflow(read_document(SAMPLE / "invoice_to_xero.yaml"))
        e.poll(TRIGGER)  # the first poll sets the watermark
        yield e


def _api_calls(env: LocalEnvironment) -> list[tuple[str, str]]:
    return [
        (r["method"], r["url"].split("?")[0].split("/api.xro/2.0")[-1])
        for r in env.xero.requests
        if "//api.xero.com/" in r["url"]
    ]


def test_an_invoice_whose_contact_is_linked_and_unchanged_costs_one_xero_call(env: LocalEnvironment) -> None:
    # Given a client whose first invoice made (and linked) its Xero contact
    client = env.clientary.seed_client("Acme Builders")
    env.clientary.add_invoice(client["id"], LINES, status=1)
    env.poll(TRIGGER)
    env.drain()
    first_calls = _api_calls(env)
    assert first_calls == [("GET", "/Contacts"), ("POST", "/Contacts"), ("PUT", "/Invoices")]

    # When a second invoice of the same, unchanged client is synced
    env.clientary.add_invoice(client["id"], LINES, status=1)
    env.poll(TRIGGER)
    env.drain()

    # Then the only Xero call is the invoice's (2 → 1: the contact is not re-POSTed) …
    assert _api_calls(env)[len(first_calls) :] == [("PUT", "/Invoices")]
    runs = sorted(env.state.list_runs(), key=lambda r: r["created_at"])
    assert [r["status"] for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
    steps = {s["step_id"]: s for s in env.state.get_steps(runs[1]["run_id"])}
    contact = steps["contact"]["output"]
    # … the step outputs the linked contact, and the invoice is that contact's
    (xero_contact,) = env.xero.contacts(env.xero_tenant_id())
    assert contact == {
        "ContactID": xero_contact["ContactID"],
        "Name": "Acme Builders",
        "ContactNumber": f"CL-{client['id']}",
        "EmailAddress": None,
        "ContactStatus": "ACTIVE",
        "created": False,
        "unchanged": True,
        "matched_by": "link",
        "archived": False,
        "note": None,
    }
    invoices = env.xero.invoices(env.xero_tenant_id())
    assert [i["Contact"]["ContactID"] for i in invoices] == [xero_contact["ContactID"]] * 2


# ----------------------------------------------------------------- the action
def test_an_unlinked_contact_is_written_and_the_same_input_later_makes_no_call(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
) -> None:
    # Given no link for CL-1: the contact is looked up and created
    made = _contact(xero, "run-1", Name="Acme Ltd", ContactNumber="CL-1", EmailAddress="ap@acme.test")
    assert (made["created"], made["unchanged"]) == (True, False)
    assert _writes(recorder) == [("GET", "Contacts"), ("POST", "Contacts")]
    link = StateStore().get_link("xero.contact", "CL-1")
    assert link is not None and link["input_sha256"]

    # When a later run renders the same input (other key order, whitespace Xero would not keep)
    again = _contact(xero, "run-2", EmailAddress="ap@acme.test", ContactNumber="CL-1", Name="  Acme Ltd ")

    # Then no call is made and the output is the linked contact's
    assert _writes(recorder) == [("GET", "Contacts"), ("POST", "Contacts")]
    assert again == {**made, "created": False, "unchanged": True, "matched_by": "link"}


def test_a_changed_input_is_written_and_its_hash_replaces_the_old_one(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    recorder: Recorded,  # noqa: F811
) -> None:
    made = _contact(xero, "run-1", Name="Acme Ltd", ContactNumber="CL-2")
    before = len(_writes(recorder))

    # When the client is renamed: the linked contact is updated (no lookup: the link has its id)
    renamed = _contact(xero, "run-2", Name="Acme Limited", ContactNumber="CL-2")
    assert _writes(recorder)[before:] == [("POST", "Contacts")]
    assert (renamed["ContactID"], renamed["Name"], renamed["unchanged"]) == (
        made["ContactID"],
        "Acme Limited",
        False,
    )
    assert [c["Name"] for c in sandbox.contacts(connection["tenant_id"])] == ["Acme Limited"]
    link = StateStore().get_link("xero.contact", "CL-2")
    assert link is not None and link["input_sha256"] == input_digest(
        {"Name": "Acme Limited", "ContactNumber": "CL-2"}
    )

    # Then the new name is what counts as unchanged, and the old one writes again
    assert _contact(xero, "run-3", Name="Acme Limited", ContactNumber="CL-2")["unchanged"] is True
    assert _writes(recorder)[before:] == [("POST", "Contacts")]
    assert _contact(xero, "run-4", Name="Acme Ltd", ContactNumber="CL-2")["unchanged"] is False
    assert _writes(recorder)[before:] == [("POST", "Contacts"), ("POST", "Contacts")]


def test_a_link_written_before_hashes_were_kept_writes_once_then_stores_the_hash(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    recorder: Recorded,  # noqa: F811
) -> None:
    existing = sandbox.seed_contact(connection["tenant_id"], Name="Beta Inc", ContactNumber="CL-3")
    # Given a link as the previous version wrote it: the contact's id and organisation only
    StateStore().put_link(
        "xero.contact", "CL-3", {"ContactID": existing["ContactID"], "tenant": connection["tenant_id"]}
    )
    first = _contact(xero, "run-1", Name="Beta Inc", ContactNumber="CL-3")
    assert (first["ContactID"], first["unchanged"]) == (existing["ContactID"], False)
    assert _writes(recorder) == [("POST", "Contacts")]
    second = _contact(xero, "run-2", Name="Beta Inc", ContactNumber="CL-3")
    assert (second["ContactID"], second["unchanged"]) == (existing["ContactID"], True)
    assert _writes(recorder) == [("POST", "Contacts")]


def test_an_edit_made_in_xero_is_kept_until_the_input_changes(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
) -> None:
    made = _contact(xero, "run-1", Name="Gamma LLC", ContactNumber="CL-4", EmailAddress="old@gamma.test")
    # Given a person who changes the email in Xero
    body = {"Contacts": [{"ContactID": made["ContactID"], "EmailAddress": "person@gamma.test"}]}
    xero.request("POST", "/Contacts", json=body, idempotency_key="a-person-in-xero")

    # When a run renders the same input as before, Then Xero keeps the person's edit
    _contact(xero, "run-2", Name="Gamma LLC", ContactNumber="CL-4", EmailAddress="old@gamma.test")
    assert [c["EmailAddress"] for c in sandbox.contacts(connection["tenant_id"])] == ["person@gamma.test"]

    # When the input changes, Then it is written (the edit is overwritten)
    _contact(xero, "run-3", Name="Gamma LLC", ContactNumber="CL-4", EmailAddress="new@gamma.test")
    assert [c["EmailAddress"] for c in sandbox.contacts(connection["tenant_id"])] == ["new@gamma.test"]


def test_a_hash_kept_for_another_organisation_is_not_used(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
) -> None:
    fields = {"Name": "Nine Ltd", "ContactNumber": "CL-9"}
    StateStore().put_link(
        "xero.contact",
        "CL-9",
        {
            "ContactID": "0f0f0f0f-0000-4000-8000-000000000009",
            "tenant": "previous-organisation",
            "input_sha256": input_digest(fields),
            "contact": {**fields, "EmailAddress": None, "ContactStatus": "ACTIVE"},
        },
    )
    made = _contact(xero, "run-1", **fields)
    assert (made["created"], made["unchanged"]) == (True, False)
    assert [c["Name"] for c in sandbox.contacts(connection["tenant_id"])] == ["Nine Ltd"]


def test_two_concurrent_steps_with_the_same_input_write_once(
    sandbox: XeroSandbox,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    recorder: Recorded,  # noqa: F811
) -> None:
    # Given two invoices of one new client processed at once (two Lambdas)
    outputs: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def step(run_id: str) -> None:
        try:
            client = XeroClient(make_provider())
            outputs.append(_contact(client, run_id, Name="Delta Co", ContactNumber="CL-5"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=step, args=(run,)) for run in ("run-a", "run-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    # Then the second, re-checking under the link lock, finds the first's write of the same input
    assert sorted((o["created"], o["unchanged"]) for o in outputs) == [(False, True), (True, False)]
    assert [m for m, _ in _writes(recorder)].count("POST") == 1
    assert len(sandbox.contacts(connection["tenant_id"])) == 1
