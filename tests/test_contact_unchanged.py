"""Issue 8, point 2: no Xero call for what Xero already has. A linked contact whose validated input
is the one last written (its hash is kept with the id link) is not sent again; a changed input, an
unlinked contact and a link written before hashes were kept all write (and store the hash)."""

from __future__ import annotations

import logging
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


def _linked_output(contact_id: str, name: str, number: str) -> dict[str, Any]:
    """A contact step's output when its linked contact was unchanged."""
    return {
        "ContactID": contact_id,
        "Name": name,
        "ContactNumber": number,
        "EmailAddress": None,
        "ContactStatus": "ACTIVE",
        "created": False,
        "unchanged": True,
        "matched_by": "link",
        "archived": False,
        "note": None,
    }


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
    assert contact == _linked_output(xero_contact["ContactID"], "Acme Builders", f"CL-{client['id']}")
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


# ----------------------------------------------------------------- before validation (a cold container)
@pytest.fixture
def cold(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Steps run as in a container that has not imported their action's module yet (the engine
    then asks the action's shortcut first); returns the actions whose input was validated."""
    from clientary_xero.connectors import base
    from clientary_xero.engine import runner

    monkeypatch.setattr(base, "loaded", lambda name: False)
    validated: list[str] = []
    real = runner.find_action

    def counted(name: str) -> Any:
        validated.append(name)
        return real(name)

    monkeypatch.setattr(runner, "find_action", counted)
    return validated


def _first_invoice(env: LocalEnvironment) -> dict[str, Any]:
    """A client whose first invoice made (and linked) its Xero contact."""
    client = env.clientary.seed_client("Acme Builders")
    env.clientary.add_invoice(client["id"], LINES, status=1)
    env.poll(TRIGGER)
    env.drain()
    return client


def _second_invoice(env: LocalEnvironment, client: dict[str, Any]) -> dict[str, Any]:
    env.clientary.add_invoice(client["id"], LINES, status=1)
    env.poll(TRIGGER)
    env.drain()
    run = max(env.state.list_runs(), key=lambda r: r["created_at"])
    assert run["status"] == "SUCCEEDED"
    return {s["step_id"]: s for s in env.state.get_steps(run["run_id"])}


def test_a_cold_step_answers_an_unchanged_linked_contact_without_validating_its_input(
    env: LocalEnvironment, cold: list[str]
) -> None:
    client = _first_invoice(env)
    first = len(_api_calls(env))
    link = env.state.get_link("xero.contact", f"CL-{client['id']}")
    assert link is not None
    code, _, digest = link["rendered_sha256"].partition(":")
    assert len(code) == 16 and len(digest) == 64
    cold.clear()

    steps = _second_invoice(env, client)

    assert _api_calls(env)[first:] == [("PUT", "/Invoices")]
    assert "xero.create_or_update_contact" not in cold  # answered before validation
    assert "xero.create_invoice" in cold  # the invoice step (no shortcut) is validated as always
    (xero_contact,) = env.xero.contacts(env.xero_tenant_id())
    assert steps["contact"]["output"] == _linked_output(
        xero_contact["ContactID"], "Acme Builders", f"CL-{client['id']}"
    )


def test_a_cold_step_whose_input_changed_is_validated_and_written(
    env: LocalEnvironment, cold: list[str]
) -> None:
    client = _first_invoice(env)
    number = f"CL-{client['id']}"
    before = env.state.get_link("xero.contact", number)
    env.clientary.touch("clients", client["id"], name="Acme Builders & Sons")
    cold.clear()

    steps = _second_invoice(env, client)

    assert "xero.create_or_update_contact" in cold
    assert steps["contact"]["output"]["unchanged"] is False
    assert [c["Name"] for c in env.xero.contacts(env.xero_tenant_id())] == ["Acme Builders & Sons"]
    after = env.state.get_link("xero.contact", number)
    assert before is not None and after is not None
    assert after["rendered_sha256"] != before["rendered_sha256"]


class _Links:
    def __init__(self, link: dict[str, Any] | None) -> None:
        self.link = link
        self.read: list[tuple[str, str]] = []

    def get_link(self, kind: str, source_id: str) -> dict[str, Any] | None:
        self.read.append((kind, source_id))
        return self.link


class _Tokens:
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant

    def tenant_id(self) -> str:
        return self.tenant


class _Client:
    def __init__(self, tenant: str) -> None:
        self.tokens = _Tokens(tenant)


def _shortcut_context(link: dict[str, Any] | None, tenant: str = "org-1", digest: str = "d" * 64) -> Any:
    from clientary_xero.connectors.base import ActionContext

    return ActionContext(
        run_id="r",
        step_id="contact",
        idempotency_key="r:contact:0",
        attempt=1,
        links=_Links(link),  # type: ignore[arg-type]
        factories={"xero": lambda: _Client(tenant)},
        input_sha256=digest,
    )


LINKED = {
    "ContactID": "0f0f0f0f-0000-4000-8000-000000000001",
    "tenant": "org-1",
    "input_sha256": "f" * 64,
    "rendered_sha256": "d" * 64,
    "contact": {"Name": "Acme", "ContactNumber": "CL-1", "EmailAddress": None, "ContactStatus": "ACTIVE"},
}


@pytest.mark.parametrize(
    ("link", "tenant", "rendered", "answers"),
    [
        pytest.param(LINKED, "org-1", {"Name": "Acme", "ContactNumber": "CL-1"}, True, id="the same input"),
        pytest.param(
            LINKED, "org-2", {"Name": "Acme", "ContactNumber": "CL-1"}, False, id="reconnected elsewhere"
        ),
        pytest.param(
            {**LINKED, "rendered_sha256": "e" * 64},
            "org-1",
            {"ContactNumber": "CL-1"},
            False,
            id="another input",
        ),
        pytest.param(
            {k: v for k, v in LINKED.items() if k != "rendered_sha256"},
            "org-1",
            {"ContactNumber": "CL-1"},
            False,
            id="written without link in MatchBy, or before",
        ),
        pytest.param(None, "org-1", {"ContactNumber": "CL-1"}, False, id="no link"),
        pytest.param(LINKED, "org-1", {"Name": "Acme"}, False, id="no ContactNumber"),
        pytest.param(LINKED, "org-1", {"ContactNumber": 1}, False, id="a number not text"),
        pytest.param(LINKED, "org-1", ["CL-1"], False, id="not a mapping"),
    ],
)
def test_the_shortcut_answers_only_for_the_input_that_made_the_link_in_this_organisation(
    link: dict[str, Any] | None, tenant: str, rendered: Any, answers: bool
) -> None:
    from clientary_xero.connectors.xero.actions.contact_links import unchanged_contact

    answer = unchanged_contact(_shortcut_context(link, tenant), rendered)
    if answers:
        assert answer == {
            "ContactID": LINKED["ContactID"],
            **LINKED["contact"],  # type: ignore[dict-item]
            "created": False,
            "unchanged": True,
            "matched_by": "link",
            "archived": False,
            "note": None,
        }
    else:
        assert answer is None
    assert unchanged_contact(_shortcut_context(LINKED, digest=""), {"ContactNumber": "CL-1"}) is None


def test_the_rendered_digest_names_the_input_the_action_and_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from clientary_xero.engine.runner import rendered_digest
    from clientary_xero.workflows import stamp

    one = rendered_digest("xero.create_or_update_contact", {"Name": "A", "ContactNumber": "CL-1"})
    assert one == rendered_digest("xero.create_or_update_contact", {"ContactNumber": "CL-1", "Name": "A"})
    assert one != rendered_digest("xero.create_or_update_contact", {"Name": "B", "ContactNumber": "CL-1"})
    assert one != rendered_digest("xero.find_contact", {"Name": "A", "ContactNumber": "CL-1"})
    assert rendered_digest("x", {"n": float("nan")}) == "" and rendered_digest("x", {"o": object()}) == ""
    monkeypatch.setattr(stamp, "_code", "another release")
    assert one != rendered_digest("xero.create_or_update_contact", {"Name": "A", "ContactNumber": "CL-1"})


def test_after_an_upgrade_an_unchanged_contact_is_validated_once_then_answered_cold(
    env: LocalEnvironment, cold: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.workflows import stamp

    client = _first_invoice(env)
    number = f"CL-{client['id']}"
    made = env.state.get_link("xero.contact", number)
    monkeypatch.setattr(stamp, "_code", "the next release")  # its rendered digests differ
    calls = len(_api_calls(env))
    cold.clear()

    steps = _second_invoice(env, client)  # validated (no match), unchanged: no contact call

    assert "xero.create_or_update_contact" in cold
    assert steps["contact"]["output"]["unchanged"] is True
    assert _api_calls(env)[calls:] == [("PUT", "/Invoices")]
    amended = env.state.get_link("xero.contact", number)
    assert made is not None and amended is not None
    assert amended["rendered_sha256"] != made["rendered_sha256"]
    assert {k: v for k, v in amended.items() if k != "rendered_sha256"} == {
        k: v for k, v in made.items() if k != "rendered_sha256"
    }
    cold.clear()

    steps = _second_invoice(env, client)  # the amended link answers before validation

    assert "xero.create_or_update_contact" not in cold
    assert steps["contact"]["output"]["unchanged"] is True


def test_an_unchanged_link_is_not_amended_while_someone_holds_its_lock(aws: AwsEnv) -> None:  # noqa: F811
    state = StateStore()
    with state.lock_link("xero.contact", "CL-7") as hold:
        hold.write({"ContactID": "c-7", "tenant": "t", "input_sha256": "h"}, version="t:h")
    with state.lock_link("xero.contact", "CL-7", unless="t:h") as unchanged:
        assert unchanged.unchanged
        assert state.take_link_lock("xero.contact", "CL-7", "another-writer")
        assert unchanged.amend({**unchanged.link, "rendered_sha256": "r"}) is False  # type: ignore[dict-item]
        state.release_link_lock("xero.contact", "CL-7", "another-writer")
        assert unchanged.amend({**unchanged.link, "rendered_sha256": "r"}) is True  # type: ignore[dict-item]
    assert state.get_link("xero.contact", "CL-7") == {
        "ContactID": "c-7",
        "tenant": "t",
        "input_sha256": "h",
        "rendered_sha256": "r",
    }
    # Another writer rewrote the link under the same version meanwhile: the amend writes nothing.
    with state.lock_link("xero.contact", "CL-7", unless="t:h") as found:
        with state.lock_link("xero.contact", "CL-7") as other:
            other.write({"ContactID": "c-8", "tenant": "t", "input_sha256": "h"}, version="t:h")
        assert found.amend({**found.link, "rendered_sha256": "s"}) is False  # type: ignore[dict-item]
    assert state.get_link("xero.contact", "CL-7") == {"ContactID": "c-8", "tenant": "t", "input_sha256": "h"}
    # Another version: the lock is taken, and the holder writes with write(), not amend().
    with (
        state.lock_link("xero.contact", "CL-7", unless="t:other") as held,
        pytest.raises(RuntimeError, match="amend is for an unchanged link"),
    ):
        held.amend({})


def test_a_hash_of_this_code_is_kept_and_one_of_another_version_replaced(aws: AwsEnv) -> None:  # noqa: F811
    from clientary_xero.connectors.xero.actions.contacts import _upgrade

    state = StateStore()
    for number, held in (("CL-1", "codeA:1111"), ("CL-2", "codeB:1111"), ("CL-3", None)):
        with state.lock_link("xero.contact", number) as hold:
            link = {"ContactID": f"c-{number}", "tenant": "t", "input_sha256": "h"}
            hold.write({**link, **({"rendered_sha256": held} if held else {})}, version="t:h")
    for number in ("CL-1", "CL-2", "CL-3"):
        with state.lock_link("xero.contact", number, unless="t:h") as hold:
            assert hold.unchanged
            _upgrade(hold, hold.link, "t", "h", "codeA:2222")
    # Two workflows rendering one contact differently under the same code do not take turns.
    assert [state.get_link("xero.contact", n)["rendered_sha256"] for n in ("CL-1", "CL-2", "CL-3")] == [  # type: ignore[index]
        "codeA:1111",
        "codeA:2222",
        "codeA:2222",
    ]


def test_a_link_detail_that_cannot_be_written_never_fails_the_step(caplog: pytest.LogCaptureFixture) -> None:
    from clientary_xero.connectors.xero.actions.contacts import _upgrade
    from clientary_xero.errors import RetryableError

    class Busy:
        unchanged = True

        def amend(self, target: dict[str, Any]) -> bool:
            raise RetryableError("DynamoDB is busy (ThrottlingException)", delay_seconds=5)

    from clientary_xero.connectors.xero.actions import contacts

    heard = logging.getLogger(contacts.__name__)  # heard even when it does not propagate (Powertools)
    heard.addHandler(caplog.handler)
    try:
        with caplog.at_level("INFO", logger=contacts.__name__):
            _upgrade(Busy(), {"ContactID": "c", "tenant": "t"}, "t", "h", "codeA:2222")
    finally:
        heard.removeHandler(caplog.handler)
    assert "could not add the rendered input's hash to a contact link (RetryableError)" in caplog.text
