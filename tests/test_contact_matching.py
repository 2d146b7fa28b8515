# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
"""Issue 11, point 1: contacts that never clash.

``xero.create_or_update_contact`` matches an existing Xero contact before it creates one, by
``MatchBy`` in its order (default: link → ContactNumber → EmailAddress → the normalised name),
updates and links the match, and says how it matched (``matched_by``). An ambiguous match fails
with both contacts named; an archived match is linked and reported, not duplicated. Real httpx
against the Xero sandbox, as the other Xero action tests; the batched path (several steps in one
``POST /Contacts``) matches the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from clientary_xero.connectors.base import batch_writers
from clientary_xero.connectors.xero.actions import ContactInput, create_or_update_contact
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.errors import PermanentError
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.storage.state import StateStore
from tests.conftest_xero import (  # noqa: F401
    AwsEnv,
    FakeClock,
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


@pytest.fixture
def tenant(connection: dict[str, Any]) -> str:
    return str(connection["tenant_id"])


def _contact(client: XeroClient, run: str = "run-1", attempt: int = 1, **fields: Any) -> dict[str, Any]:
    return create_or_update_contact(make_context(client, run_id=run, attempt=attempt), ContactInput(**fields))


def _calls(recorder: Recorded) -> list[tuple[str, str]]:
    return [
        (r["method"], r["url"].split("?")[0].rsplit("/", 1)[-1])
        for r in recorder.records()
        if r["url"].startswith("https://api.xero.com")
    ]


def _lookups(recorder: Recorded) -> list[dict[str, list[str]]]:
    return [
        parse_qs(urlsplit(r["url"]).query)
        for r in recorder.records()
        if r["url"].startswith("https://api.xero.com") and r["method"] == "GET"
    ]


def _link(number: str) -> dict[str, Any] | None:
    return StateStore().get_link("xero.contact", number)


# ----------------------------------------------------------------- the cases
def test_a_name_clash_with_a_contact_made_by_hand_is_matched_updated_and_linked(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, recorder: Recorded
) -> None:
    # Given a contact typed in Xero by hand: the same name in other case and spaces, no number
    by_hand = sandbox.seed_contact(tenant, Name="harbour  lights LTD ", Phones=[{"PhoneType": "DEFAULT"}])

    # When the Clientary client is synced
    out = _contact(xero, Name="Harbour Lights Ltd", ContactNumber="CL-42", EmailAddress="ap@harbour.test")

    # Then that contact is updated (no duplicate) and linked, and the output says how it matched
    assert (out["ContactID"], out["created"], out["matched_by"]) == (by_hand["ContactID"], False, "Name")
    (contact,) = sandbox.contacts(tenant)
    assert (contact["Name"], contact["ContactNumber"], contact["EmailAddress"]) == (
        "Harbour Lights Ltd",
        "CL-42",
        "ap@harbour.test",
    )
    assert contact["Phones"] == [{"PhoneType": "DEFAULT"}]  # a field the input left out is kept
    link = _link("CL-42")
    assert link is not None and link["ContactID"] == by_hand["ContactID"]
    # One lookup (archived contacts included) and one write
    assert _calls(recorder) == [("GET", "Contacts"), ("POST", "Contacts")]
    (query,) = _lookups(recorder)
    assert query["includeArchived"] == ["true"]
    assert 'Name.ToLower().Contains("harbour")' in query["where"][0]
    sent = next(r for r in recorder.records() if r["method"] == "POST")["json"]["Contacts"]
    assert sent == [
        {
            "ContactID": by_hand["ContactID"],
            "Name": "Harbour Lights Ltd",
            "ContactNumber": "CL-42",
            "EmailAddress": "ap@harbour.test",
        }
    ]  # only what the input gives; MatchBy is not Xero's

    # And the next run of the same input makes no call: the link holds it
    again = _contact(
        xero, run="run-2", Name="Harbour Lights Ltd", ContactNumber="CL-42", EmailAddress="ap@harbour.test"
    )
    assert (again["unchanged"], again["matched_by"]) == (True, "link")
    assert len(_calls(recorder)) == 2


def test_an_email_match_updates_that_contact(xero: XeroClient, sandbox: XeroSandbox, tenant: str) -> None:
    known = sandbox.seed_contact(tenant, Name="Harbour Lights", EmailAddress="Accounts@Harbour.test")
    out = _contact(
        xero, Name="Harbour Lights Limited", ContactNumber="CL-1", EmailAddress="accounts@harbour.test"
    )
    assert (out["ContactID"], out["matched_by"], out["created"]) == (
        known["ContactID"],
        "EmailAddress",
        False,
    )
    (contact,) = sandbox.contacts(tenant)
    assert (contact["Name"], contact["ContactNumber"]) == ("Harbour Lights Limited", "CL-1")


def test_a_contact_number_match_comes_before_the_email(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    numbered = sandbox.seed_contact(tenant, Name="Old Name Ltd", ContactNumber="CL-7")
    sandbox.seed_contact(tenant, Name="Someone Else", EmailAddress="ap@new.test")
    out = _contact(xero, Name="New Name Ltd", ContactNumber="CL-7", EmailAddress="ap@new.test")
    assert (out["ContactID"], out["matched_by"]) == (numbered["ContactID"], "ContactNumber")
    assert sorted(c["Name"] for c in sandbox.contacts(tenant)) == ["New Name Ltd", "Someone Else"]


def test_a_link_match_needs_no_lookup(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, recorder: Recorded
) -> None:
    made = _contact(xero, Name="Acme Ltd", ContactNumber="CL-3")
    assert (made["created"], made["matched_by"]) == (True, None)
    # A contact made by hand since, named as the client will be renamed: the link wins
    sandbox.seed_contact(tenant, Name="Acme Group", EmailAddress="ap@acme.test")
    out = _contact(xero, run="run-2", Name="Acme Ltd", ContactNumber="CL-3", EmailAddress="billing@acme.test")
    assert (out["ContactID"], out["matched_by"], out["created"]) == (made["ContactID"], "link", False)
    assert _calls(recorder) == [("GET", "Contacts"), ("POST", "Contacts"), ("POST", "Contacts")]


def test_an_ambiguous_email_fails_naming_both_and_writes_nothing(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, recorder: Recorded
) -> None:
    one = sandbox.seed_contact(tenant, Name="North Branch", EmailAddress="ap@chain.test")
    two = sandbox.seed_contact(tenant, Name="South Branch", EmailAddress="AP@chain.test")
    with pytest.raises(PermanentError) as caught:
        _contact(xero, Name="Chain Ltd", ContactNumber="CL-5", EmailAddress="ap@chain.test")
    message = str(caught.value)
    assert "ambiguous" in message and "EmailAddress 'ap@chain.test'" in message
    for contact in (one, two):
        assert contact["Name"] in message and contact["ContactID"] in message
    assert _calls(recorder) == [("GET", "Contacts")]  # nothing written …
    assert len(sandbox.contacts(tenant)) == 2 and _link("CL-5") is None  # … nor linked


def test_an_ambiguous_name_fails_naming_both(xero: XeroClient, sandbox: XeroSandbox, tenant: str) -> None:
    # Xero keeps names unique among active contacts, but not across inner spaces
    one = sandbox.seed_contact(tenant, Name="Acme Ltd")
    two = sandbox.seed_contact(tenant, Name="ACME  Ltd")
    with pytest.raises(PermanentError) as caught:
        _contact(xero, Name="acme ltd", ContactNumber="CL-6")
    message = str(caught.value)
    assert "ambiguous" in message and "Name" in message
    assert all(c["Name"] in message and c["ContactID"] in message for c in (one, two))
    assert len(sandbox.contacts(tenant)) == 2


def test_another_clients_contact_is_not_taken_by_email(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    # Two Clientary clients sharing a bookkeeper's e-mail stay two Xero contacts
    theirs = sandbox.seed_contact(
        tenant, Name="Beta Ltd", ContactNumber="CL-8", EmailAddress="books@agency.test"
    )
    out = _contact(xero, Name="Gamma Ltd", ContactNumber="CL-9", EmailAddress="books@agency.test")
    assert (out["created"], out["matched_by"]) == (True, None)
    assert out["ContactID"] != theirs["ContactID"]
    assert sorted(c["ContactNumber"] for c in sandbox.contacts(tenant)) == ["CL-8", "CL-9"]


# ----------------------------------------------------------------- archived contacts
def test_an_archived_match_is_linked_and_reported_not_duplicated(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, recorder: Recorded
) -> None:
    archived = sandbox.seed_contact(tenant, Name="Harbour Lights Ltd", ContactStatus="ARCHIVED")
    out = _contact(xero, Name="Harbour Lights Ltd", ContactNumber="CL-42", EmailAddress="ap@harbour.test")
    assert out["ContactID"] == archived["ContactID"]
    assert (out["created"], out["matched_by"], out["archived"], out["ContactStatus"]) == (
        False,
        "Name",
        True,
        "ARCHIVED",
    )
    assert "ARCHIVED" in out["note"] and "restore" in out["note"]
    # Not written (Xero does not edit archived contacts), not duplicated, but linked
    assert _calls(recorder) == [("GET", "Contacts")]
    (contact,) = sandbox.contacts(tenant)
    assert (contact["ContactStatus"], contact.get("EmailAddress")) == ("ARCHIVED", None)
    link = _link("CL-42")
    assert link is not None and link["ContactID"] == archived["ContactID"]
    # The same input again: no call, still reported archived
    again = _contact(
        xero, run="run-2", Name="Harbour Lights Ltd", ContactNumber="CL-42", EmailAddress="ap@harbour.test"
    )
    assert (again["unchanged"], again["archived"], again["note"]) == (True, True, out["note"])
    assert len(_calls(recorder)) == 1


def test_an_archived_match_is_restored_when_the_input_says_active(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    archived = sandbox.seed_contact(tenant, Name="Harbour Lights Ltd", ContactStatus="ARCHIVED")
    out = _contact(
        xero,
        Name="Harbour Lights Ltd",
        ContactNumber="CL-42",
        EmailAddress="ap@harbour.test",
        ContactStatus="ACTIVE",
    )
    assert (out["ContactID"], out["archived"], out["note"]) == (archived["ContactID"], False, None)
    (contact,) = sandbox.contacts(tenant)
    assert (contact["ContactStatus"], contact["EmailAddress"]) == ("ACTIVE", "ap@harbour.test")


def test_an_active_contact_wins_over_its_archived_twin(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    sandbox.seed_contact(tenant, Name="Acme Ltd", ContactStatus="ARCHIVED")
    active = sandbox.seed_contact(tenant, Name="Acme Ltd")
    out = _contact(xero, Name="Acme Ltd", ContactNumber="CL-2")
    assert (out["ContactID"], out["archived"]) == (active["ContactID"], False)


def test_a_linked_contact_archived_in_xero_since_is_reported(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    made = _contact(xero, Name="Acme Ltd", ContactNumber="CL-2")
    xero.request(
        "POST",
        "/Contacts",
        json={"Contacts": [{"ContactID": made["ContactID"], "ContactStatus": "ARCHIVED"}]},
        idempotency_key="by-hand",
    )
    out = _contact(xero, run="run-2", Name="Acme Ltd", ContactNumber="CL-2", EmailAddress="ap@acme.test")
    assert (out["ContactID"], out["matched_by"], out["archived"]) == (made["ContactID"], "link", True)
    (contact,) = sandbox.contacts(tenant)
    assert contact["ContactStatus"] == "ARCHIVED" and contact.get("EmailAddress") is None


def test_the_sandbox_refuses_edits_of_an_archived_contact_as_xero_does(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    archived = sandbox.seed_contact(tenant, Name="Old Ltd", ContactStatus="ARCHIVED")

    def post(element: dict[str, Any]) -> dict[str, Any]:
        body = {"Contacts": [{"ContactID": archived["ContactID"], **element}]}
        return xero.request("POST", "/Contacts", json=body, idempotency_key=str(element))["Contacts"][0]

    refused = post({"EmailAddress": "ap@old.test"})
    assert [e["Message"] for e in refused["ValidationErrors"]] == [
        "The specified contact details matched an archived contact."
    ]
    assert "ValidationErrors" not in post({"ContactStatus": "ARCHIVED"})  # the status alone: allowed
    restored = post({"ContactStatus": "ACTIVE", "EmailAddress": "ap@old.test"})
    assert (restored["ContactStatus"], restored["EmailAddress"]) == ("ACTIVE", "ap@old.test")


# ----------------------------------------------------------------- MatchBy
def test_match_by_name_only_skips_the_email(xero: XeroClient, sandbox: XeroSandbox, tenant: str) -> None:
    named = sandbox.seed_contact(tenant, Name="Acme Ltd")
    emailed = sandbox.seed_contact(tenant, Name="Acme Accounts", EmailAddress="ap@acme.test")
    out = _contact(xero, Name="ACME LTD", ContactNumber="CL-3", EmailAddress="ap@acme.test", MatchBy=["Name"])
    assert (out["ContactID"], out["matched_by"]) == (named["ContactID"], "Name")
    untouched = next(c for c in sandbox.contacts(tenant) if c["ContactID"] == emailed["ContactID"])
    assert untouched.get("ContactNumber") is None


def test_match_by_email_then_name_falls_through_to_the_name(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    named = sandbox.seed_contact(tenant, Name="Acme Ltd", EmailAddress="old@acme.test")
    out = _contact(
        xero,
        Name="Acme Ltd",
        ContactNumber="CL-3",
        EmailAddress="new@acme.test",
        MatchBy=["EmailAddress", "Name"],
    )
    assert (out["ContactID"], out["matched_by"]) == (named["ContactID"], "Name")


def test_match_by_without_name_leaves_a_name_clash_to_xero(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    sandbox.seed_contact(tenant, Name="Acme Ltd")
    with pytest.raises(PermanentError) as caught:
        _contact(
            xero, Name="Acme Ltd", ContactNumber="CL-3", EmailAddress="ap@acme.test", MatchBy=["EmailAddress"]
        )
    assert "must be unique across all active contacts" in str(caught.value)
    assert len(sandbox.contacts(tenant)) == 1 and _link("CL-3") is None


def test_match_by_without_link_looks_again(xero: XeroClient, recorder: Recorded) -> None:
    made = _contact(xero, Name="Acme Ltd", ContactNumber="CL-3")
    out = _contact(
        xero, run="run-2", Name="Acme Ltd", ContactNumber="CL-3", MatchBy=["ContactNumber", "Name"]
    )
    assert (out["ContactID"], out["matched_by"], out["unchanged"]) == (
        made["ContactID"],
        "ContactNumber",
        False,
    )
    assert _calls(recorder) == [
        ("GET", "Contacts"),
        ("POST", "Contacts"),
        ("GET", "Contacts"),
        ("POST", "Contacts"),
    ]


def test_a_retry_finds_its_first_tries_contact_whatever_match_by_says(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    # The first try created the contact and its answer was lost (no link was stored)
    first = sandbox.seed_contact(tenant, Name="Acme Ltd", ContactNumber="CL-4")
    out = _contact(xero, attempt=2, Name="Acme Ltd", ContactNumber="CL-4", MatchBy=["EmailAddress"])
    assert (out["ContactID"], out["matched_by"]) == (first["ContactID"], "ContactNumber")
    assert len(sandbox.contacts(tenant)) == 1


@pytest.mark.parametrize(
    ("match_by", "says"),
    [
        (
            ["link", "Email"],
            "'Email' is not a way to match a contact: use link, ContactNumber, EmailAddress, "
            "Name (did you mean EmailAddress?)",
        ),
        (["Name", "Name"], "Name is listed twice"),
        ([], "give at least one of link, ContactNumber, EmailAddress, Name"),
        ("Name", "valid list"),
    ],
)
def test_match_by_is_validated(match_by: Any, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ContactInput(Name="Acme Ltd", MatchBy=match_by)
    assert says in str(caught.value)
    assert ContactInput(Name="Acme Ltd", MatchBy=["Name", "link"]).MatchBy == ["Name", "link"]


# ----------------------------------------------------------------- several steps in one call
def test_a_batch_matches_as_one_step_does_and_only_the_ambiguous_run_fails(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, recorder: Recorded
) -> None:
    by_hand = sandbox.seed_contact(tenant, Name="harbour lights ltd")
    sandbox.seed_contact(tenant, Name="North Branch", EmailAddress="ap@chain.test")
    sandbox.seed_contact(tenant, Name="South Branch", EmailAddress="ap@chain.test")
    archived = sandbox.seed_contact(tenant, Name="Old Co", ContactStatus="ARCHIVED")
    inputs = [
        {"Name": "Harbour Lights Ltd", "ContactNumber": "CL-1"},  # a name clash
        {"Name": "Chain Ltd", "ContactNumber": "CL-2", "EmailAddress": "ap@chain.test"},  # ambiguous
        {"Name": "New Co", "ContactNumber": "CL-3"},  # nothing matches
        {"Name": "Old Co", "ContactNumber": "CL-4"},  # archived
        {"Name": "Harbour Lights Ltd", "ContactNumber": "CL-1"},  # the first's contact again
    ]
    calls = [
        (make_context(xero, run_id=f"run-{n}"), ContactInput(**fields)) for n, fields in enumerate(inputs)
    ]
    results = batch_writers()["xero.create_or_update_contact"].write(calls, "batch:test")

    clash, ambiguous, new, old, same = results
    assert isinstance(clash, dict) and (clash["ContactID"], clash["matched_by"]) == (
        by_hand["ContactID"],
        "Name",
    )
    assert isinstance(ambiguous, PermanentError)
    assert "North Branch" in str(ambiguous) and "South Branch" in str(ambiguous)
    assert isinstance(new, dict) and (new["created"], new["matched_by"]) == (True, None)
    assert isinstance(old, dict) and (old["ContactID"], old["archived"]) == (archived["ContactID"], True)
    assert isinstance(same, dict) and same["ContactID"] == by_hand["ContactID"] and same["created"] is False
    # One lookup for every step, one write for those to write (the ambiguous and archived aside)
    assert _calls(recorder) == [("GET", "Contacts"), ("POST", "Contacts")]
    sent = next(r for r in recorder.records() if r["method"] == "POST")["json"]["Contacts"]
    assert [e["ContactNumber"] for e in sent] == ["CL-1", "CL-3"]
    names = sorted(c["Name"] for c in sandbox.contacts(tenant))
    assert names == ["Harbour Lights Ltd", "New Co", "North Branch", "Old Co", "South Branch"]
    assert {n: (_link(n) or {}).get("ContactID") for n in ("CL-1", "CL-2", "CL-4")} == {
        "CL-1": by_hand["ContactID"],
        "CL-2": None,
        "CL-4": archived["ContactID"],
    }


def test_two_contacts_of_a_batch_matching_one_xero_contact_the_second_fails(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    by_hand = sandbox.seed_contact(tenant, Name="Acme Ltd")
    calls = [
        (make_context(xero, run_id="run-a"), ContactInput(Name="Acme Ltd", ContactNumber="CL-1")),
        (make_context(xero, run_id="run-b"), ContactInput(Name="ACME Ltd", ContactNumber="CL-2")),
    ]
    first, second = batch_writers()["xero.create_or_update_contact"].write(calls, "batch:twins")
    assert isinstance(first, dict) and first["ContactID"] == by_hand["ContactID"]
    assert isinstance(second, PermanentError) and "CL-1" in str(second)
    (contact,) = sandbox.contacts(tenant)
    assert contact["ContactNumber"] == "CL-1"


def test_an_invoice_for_an_archived_contact_fails_naming_it_alone_or_in_a_batch(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str
) -> None:
    from clientary_xero.connectors.xero.actions import InvoiceInput, create_invoice

    archived = sandbox.seed_contact(tenant, Name="Old Ltd", ContactStatus="ARCHIVED")
    active = sandbox.seed_contact(tenant, Name="New Ltd")

    def invoice(contact_id: str, number: str) -> InvoiceInput:
        line = {"Description": "Work", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}
        return InvoiceInput(
            Type="ACCREC", Contact={"ContactID": contact_id}, InvoiceNumber=number, LineItems=[line]
        )

    with pytest.raises(PermanentError) as alone:
        create_invoice(make_context(xero), invoice(archived["ContactID"], "CL-1"))
    assert f"ContactID {archived['ContactID']}" in str(alone.value) and "must be un-archived" in str(
        alone.value
    )
    calls = [
        (make_context(xero, run_id="run-a"), invoice(archived["ContactID"], "CL-2")),
        (make_context(xero, run_id="run-b"), invoice(active["ContactID"], "CL-3")),
    ]
    refused, made = batch_writers()["xero.create_invoice"].write(calls, "batch:archived")
    assert isinstance(refused, PermanentError) and f"ContactID {archived['ContactID']}" in str(refused)
    assert "is ARCHIVED in Xero" in str(refused)
    assert isinstance(made, dict) and made["InvoiceNumber"] == "CL-3"
    assert [i["InvoiceNumber"] for i in sandbox.invoices(tenant)] == ["CL-3"]


# ----------------------------------------------------------------- the demo's complaint, end to end
def test_an_invoice_whose_client_exists_in_xero_by_name_succeeds() -> None:
    from clientary_xero.local.environment import LocalEnvironment
    from clientary_xero.workflows.loader import read_document

    with LocalEnvironment(max_attempts=3) as env:
        env.put_workflow(read_document(SAMPLE / "invoice_to_xero.yaml"))
        env.poll("clientary.new_invoice")
        client = env.clientary.seed_client("Harbour Lights Ltd")
        by_hand = env.xero.seed_contact(env.xero_tenant_id(), Name="Harbour Lights Ltd")
        env.clientary.add_invoice(client["id"], [{"title": "Survey", "quantity": 1, "price": 95.0}], status=1)
        env.poll("clientary.new_invoice")
        env.drain()
        (run,) = env.state.list_runs()
        assert run["status"] == "SUCCEEDED"
        steps = {s["step_id"]: s for s in env.state.get_steps(run["run_id"])}
        assert steps["contact"]["output"]["matched_by"] == "Name"
        (contact,) = env.xero.contacts(env.xero_tenant_id())
        assert contact["ContactID"] == by_hand["ContactID"]
        (invoice,) = env.xero.invoices(env.xero_tenant_id())
        assert invoice["Contact"]["ContactID"] == by_hand["ContactID"]


def test_a_full_batch_looks_its_contacts_up_in_few_short_calls(
    xero: XeroClient, sandbox: XeroSandbox, tenant: str, recorder: Recorded
) -> None:
    from clientary_xero.connectors.xero.actions.contacts import WHERE_BUDGET

    existing = sandbox.seed_contact(tenant, Name="Client  Number 49 Ltd")  # by hand, other spaces
    calls = [
        (
            make_context(xero, run_id=f"run-{n}"),
            ContactInput(
                Name=f"Client Number {n} Ltd",
                ContactNumber=f"CL-{n}",
                EmailAddress=f"accounts.{n}@client.test",
            ),
        )
        for n in range(50)
    ]
    results = batch_writers()["xero.create_or_update_contact"].write(calls, "batch:full")
    assert all(isinstance(r, dict) for r in results)
    assert results[-1]["ContactID"] == existing["ContactID"] and results[-1]["matched_by"] == "Name"
    assert sum(r["created"] for r in results if isinstance(r, dict)) == 49
    wheres = [q["where"][0] for q in _lookups(recorder)]
    assert 1 <= len(wheres) <= 2 and all(len(w) <= WHERE_BUDGET for w in wheres)
    assert [m for m, _ in _calls(recorder)].count("POST") == 1


def test_the_sandbox_where_understands_to_lower(xero: XeroClient, sandbox: XeroSandbox, tenant: str) -> None:
    sandbox.seed_contact(tenant, Name="Harbour Lights Ltd")
    sandbox.seed_contact(tenant, Name="Other Ltd")

    def names(where: str) -> list[str]:
        answer = xero.request("GET", "/Contacts", params={"where": where})
        return sorted(c["Name"] for c in answer["Contacts"])

    assert names('Name.ToLower()=="harbour lights ltd"') == ["Harbour Lights Ltd"]
    assert names('Name.ToLower().Contains("lights") OR Name.ToUpper().StartsWith("OTH")') == [
        "Harbour Lights Ltd",
        "Other Ltd",
    ]
    assert names('EmailAddress!=null&&EmailAddress.ToLower()=="x@y.test"') == []


def test_an_invoice_for_a_client_archived_in_xero_fails_saying_so_and_duplicates_nothing() -> None:
    # The invoice recipe meets a Clientary client whose Xero contact (same name) is ARCHIVED: the
    # contact step links and reports it (not restored, not duplicated); Xero refuses the invoice
    # ("... must be un-archived before creating new invoices or credit notes."), so the run fails
    # at once, naming the contact and what to do, and nothing is made.
    from clientary_xero.local.environment import LocalEnvironment
    from clientary_xero.workflows.loader import read_document
    from clientary_xero.workflows.settings import apply_settings

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "clientary-invoice-to-xero-invoice.yaml"
    with LocalEnvironment(max_attempts=3) as env:
        tenant = env.xero_tenant_id()
        env.put_workflow(apply_settings(read_document(recipe), ["TaxType=TAX001"]))
        env.poll("clientary.new_invoice")
        client = env.clientary.seed_client("Harbour Lights Ltd")
        archived = env.xero.seed_contact(tenant, Name="Harbour Lights Ltd", ContactStatus="ARCHIVED")
        env.clientary.add_invoice(client["id"], [{"title": "Survey", "quantity": 1, "price": 95.0}], status=1)
        env.poll("clientary.new_invoice")
        env.drain()

        (run,) = env.state.list_runs()
        assert run["status"] == "FAILED"
        steps = {s["step_id"]: s for s in env.state.get_steps(run["run_id"])}
        contact = steps["contact"]["output"]
        assert (contact["ContactID"], contact["archived"], contact["matched_by"]) == (
            archived["ContactID"],
            True,
            "Name",
        )
        failed = steps["invoice"]
        assert failed["status"] == "FAILED"
        error = failed["error"]
        assert error["type"] == "permanent"
        assert error["messages"] == [
            "The contact with the specified contact details has been archived. "
            "The contact must be un-archived before creating new invoices or credit notes."
        ]
        assert f"ContactID {archived['ContactID']}" in error["message"]
        assert "is ARCHIVED in Xero" in error["message"] and "ContactStatus: ACTIVE" in error["message"]
        # Nothing duplicated, nothing restored behind the user's back, no invoice
        (only,) = env.xero.contacts(tenant)
        assert (only["ContactID"], only["ContactStatus"]) == (archived["ContactID"], "ARCHIVED")
        assert env.xero.invoices(tenant) == []

        # Restored in Xero, the run replayed (`clientary-xero runs replay`): the invoice is made,
        # for that contact; the contact step is not run again.
        from clientary_xero.engine.runner import replay
        from clientary_xero.storage.queue import StepQueue

        env.load_xero_record("Contacts", {**only, "ContactStatus": "ACTIVE"})
        replay(env.state, StepQueue(), run["run_id"])
        env.drain()
        (run,) = env.state.list_runs()
        assert run["status"] == "SUCCEEDED", run.get("error")
        (invoice,) = env.xero.invoices(tenant)
        assert invoice["Contact"]["ContactID"] == archived["ContactID"]
        assert [c["ContactID"] for c in env.xero.contacts(tenant)] == [archived["ContactID"]]
