"""Fidelity suite, Clientary: the sandbox's list envelopes, pagination, wrapper keys and date
formats against what Clientary documents.

The facts are written here as data (``LISTS``, ``SINGLE_READS``, ``WRAPPERS``, ``DATES``), each
from ``../shared/reference/clientary-api.md`` (§1 conventions, §2 resources);
``test_the_facts_are_still_the_reference_s`` checks that the reference still states each one, so a
corrected reference shows which fact to update. Like the Xero contract checks, the module needs the
team folder beside the repository: it skips without it, and fails under CI.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from clientary_xero.local.clientary_sandbox import ClientarySandbox
from tests.clientary_fixtures import FakeClock

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "clientary-api.md"
TOKEN = "fidelity-token"
BASE = "https://acme.clientary.com/api/v2"


@cache
def reference_text() -> str:
    if not REFERENCE.is_file():
        message = f"{REFERENCE} (../shared/reference) not found (a user's clone has no team folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return REFERENCE.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _needs_the_reference() -> None:
    reference_text()


# ------------------------------------------------------------------------------ the facts
@dataclass(frozen=True)
class ListFact:
    key: str  # the list's key in the envelope (the plural resource name)
    path: str  # GET path; {project} is a project's id
    default_page_size: int | None  # None: not paginated
    extra: tuple[str, ...] = ()  # other envelope keys of an unpaginated list


# §1 Pagination: page counters in the body (no headers), 1-based ?page, ?page_size at most 100,
# the documented default sizes; expenses, hours and staff are not paginated.
PAGE_COUNTERS = ("page_count", "page_size", "total_count")
MAX_PAGE_SIZE = 100
LISTS = (
    ListFact("clients", "/clients", 10),
    ListFact("contacts", "/contacts", 10),
    ListFact("leads", "/leads", 20),  # the text says 20 (its example shows 10)
    ListFact("invoices", "/invoices", 30),
    ListFact("estimates", "/estimates", 30),
    ListFact("payments", "/payments", 30),
    ListFact("projects", "/projects", 20),  # the example's page_size
    ListFact("tasks", "/tasks", 50),  # the example's page_size
    ListFact("expenses", "/expenses", None, ("total_count", "from_date", "to_date")),
    ListFact("hours", "/projects/{project}/hours", None),
    ListFact("staff", "/staff", None),
)
# §1 Content type: a single GET answers the bare object, no envelope (payments have no single GET).
SINGLE_READS = (
    "clients",
    "contacts",
    "leads",
    "invoices",
    "estimates",
    "projects",
    "hours",
    "tasks",
    "expenses",
)


@dataclass(frozen=True)
class WrapperFact:
    resource: str
    create: str  # POST path ({client}, {invoice}, {project}: a parent's id)
    wrapper: str
    fields: tuple[tuple[str, Any], ...]  # the required fields (422 without them), plus one to read back
    update: str | None  # PUT path of the created record ({id})
    not_the_key: str  # a key others use, which is not Clientary's


# §1/§2: bodies wrap the fields in the resource key; contacts use client_user, hours project_item.
WRAPPERS = (
    WrapperFact("clients", "/clients", "client", (("name", "Acme"),), "/clients/{id}", "clients"),
    WrapperFact(
        "contacts",
        "/clients/{client}/contacts",
        "client_user",
        (("name", "Ann"), ("email", "ann@acme.test")),
        "/contacts/{id}",
        "contact",  # ME's client.ts
    ),
    WrapperFact("leads", "/leads", "lead", (("name", "Maybe Ltd"),), "/leads/{id}", "client"),
    WrapperFact(
        "invoices",
        "/invoices",
        "invoice",
        (("date", "2024-03-01"), ("due_date", "2024-03-31"), ("currency_code", "EUR")),
        "/invoices/{id}",
        "invoices",
    ),
    WrapperFact(
        "estimates",
        "/estimates",
        "estimate",
        (("date", "2024-03-01"), ("currency_code", "USD")),
        "/estimates/{id}",
        "quote",
    ),
    WrapperFact(
        "payments", "/invoices/{invoice}/payments", "payment", (("amount", 5.0),), None, "invoice_payment"
    ),
    WrapperFact("expenses", "/expenses", "expense", (("amount", 12.5),), "/expenses/{id}", "expenses"),
    WrapperFact(
        "projects", "/projects", "project", (("name", "Site"), ("rate", 150)), "/projects/{id}", "job"
    ),
    WrapperFact(
        "hours",
        "/projects/{project}/hours",
        "project_item",
        (("hours", 1.5), ("title", "Setup")),
        "/hours/{id}",
        "hour",  # CO's and ME's key
    ),
    WrapperFact("tasks", "/tasks", "task", (("title", "Pick up some milk"),), "/tasks/{id}", "todo"),
)

SLASHES = re.compile(r"^\d{4}/\d{2}/\d{2}$")  # "2011/07/26"
DASHES = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # "2017-07-22"
UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")  # "2012-11-08T21:20:47Z"
OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")  # "2013-02-06T21:23:21-08:00"
# §1 Data-format gotchas: (resource, field) → the documented form. Slashes for invoice, estimate,
# expense, hours and project dates; dashes for payments; tasks' timestamps in UTC with a Z; other
# timestamps in Rails' form with the account's offset (recurring, payment profiles).
DATES: dict[tuple[str, str], re.Pattern[str]] = {
    ("invoices", "date"): SLASHES,
    ("invoices", "due_date"): SLASHES,
    ("invoices", "payments[].received_on"): DASHES,
    ("estimates", "date"): SLASHES,
    ("expenses", "incurred_on"): SLASHES,
    ("hours", "date"): SLASHES,
    ("projects", "end_date"): SLASHES,
    ("payments", "received_on"): DASHES,
    ("tasks", "created_at"): UTC_Z,
    ("tasks", "updated_at"): UTC_Z,
    ("invoices", "updated_at"): OFFSET,
    ("clients", "updated_at"): OFFSET,
}


# ------------------------------------------------------------------------------ the account
@dataclass
class Account:
    sandbox: ClientarySandbox
    http: httpx.Client
    clock: FakeClock
    ids: dict[str, int]

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path.format(**self.ids), params=params)


@pytest.fixture(scope="module")
def account() -> Account:
    """One account with one more record of each paginated resource than its default page holds."""
    clock = FakeClock(datetime(2024, 3, 10, 18, 0, tzinfo=UTC))
    sandbox = ClientarySandbox(subdomain="acme", api_token=TOKEN, clock=clock)
    http = httpx.Client(
        transport=sandbox, base_url=BASE, auth=(TOKEN, TOKEN), headers={"Accept": "application/json"}
    )
    sizes = {fact.key: fact.default_page_size for fact in LISTS}

    def count(key: str) -> int:
        return (sizes[key] or 3) + 1

    client = sandbox.seed_client("Client 00")
    for n in range(1, count("clients")):
        clock.advance(minutes=1)
        sandbox.seed_client(f"Client {n:02}")
    for n in range(count("leads")):
        clock.advance(minutes=1)
        sandbox.add_record("leads", name=f"Lead {n:02}")
    for n in range(count("contacts")):
        sandbox.add_record(
            "contacts", client_id=client["id"], name=f"Contact {n:02}", email=f"c{n}@acme.test"
        )
    invoice = sandbox.add_invoice(client["id"], [{"title": "Work", "quantity": 1, "price": 1000}])
    for _ in range(1, count("invoices")):
        sandbox.add_invoice(client["id"], [{"title": "Work", "quantity": 1, "price": 10}])
    for _ in range(count("estimates")):
        sandbox.add_record("estimates", date="2024-03-01", currency_code="USD")
    for n in range(count("payments")):
        clock.advance(minutes=1)
        sandbox.add_payment(invoice["id"], 1.0, received_on=f"2024-02-{n % 28 + 1:02}")
    project = sandbox.add_record(
        "projects", name="Project 00", rate=100, client_id=client["id"], end_date="2024-06-30"
    )
    for n in range(1, count("projects")):
        sandbox.add_record("projects", name=f"Project {n:02}", rate=100)
    for n in range(count("tasks")):
        sandbox.add_record("tasks", title=f"Task {n:02}")
    for n in range(count("expenses")):
        sandbox.add_record("expenses", amount=10 + n, incurred_on="2024-03-01")
    for n in range(count("hours")):
        sandbox.add_record("hours", project_id=project["id"], title=f"Entry {n}", hours=1, date="2024-03-02")
    for n in range(count("staff")):
        sandbox.seed_staff(f"Staff {n}")
    ids = {"client": client["id"], "invoice": invoice["id"], "project": project["id"]}
    return Account(sandbox, http, clock, ids)


def _records(body: Any, key: str) -> list[dict[str, Any]]:
    assert isinstance(body, dict) and isinstance(body.get(key), list), body
    return list(body[key])


# ------------------------------------------------------------------------------ envelopes
@pytest.mark.parametrize("fact", [f for f in LISTS if f.default_page_size], ids=lambda f: f.key)
def test_a_paginated_list_has_the_documented_envelope_and_pages(account: Account, fact: ListFact) -> None:
    size = int(fact.default_page_size or 0)
    first = account.get(fact.path)
    assert first.status_code == 200 and not any(h.lower().startswith("x-") for h in first.headers)
    body = first.json()
    assert set(body) == {*PAGE_COUNTERS, fact.key}, "counters in the body, the records under the plural"
    total = body["total_count"]
    assert (body["page_size"], body["page_count"]) == (size, math.ceil(total / size))
    assert total > size and len(body[fact.key]) == size
    second = account.get(fact.path, page=2).json()  # 1-based
    rest = _records(second, fact.key)
    assert len(rest) == min(size, total - size)
    seen = [r["id"] for r in body[fact.key]] + [r["id"] for r in rest]
    assert len(set(seen)) == len(seen), "a record on two pages"
    assert all(isinstance(i, int) for i in seen), "ids are integers"
    assert _records(account.get(fact.path, page=body["page_count"] + 1).json(), fact.key) == []
    everything = account.get(fact.path, page_size=MAX_PAGE_SIZE).json()
    assert (everything["page_size"], everything["page_count"], len(everything[fact.key])) == (
        MAX_PAGE_SIZE,
        1,
        total,
    )
    assert account.get(fact.path, page_size=MAX_PAGE_SIZE + 400).json()["page_size"] == MAX_PAGE_SIZE


@pytest.mark.parametrize("fact", [f for f in LISTS if not f.default_page_size], ids=lambda f: f.key)
def test_an_unpaginated_list_has_no_counters(account: Account, fact: ListFact) -> None:
    body = account.get(fact.path).json()
    assert set(body) == {fact.key, *fact.extra}
    assert len(body[fact.key]) == 4  # every record, one answer
    assert len(account.get(fact.path, page=2, page_size=1).json()[fact.key]) == 4  # paging is ignored


@pytest.mark.parametrize("resource", SINGLE_READS)
def test_a_single_read_is_the_bare_record(account: Account, resource: str) -> None:
    fact = next(f for f in LISTS if f.key == resource)
    listed = _records(account.get(fact.path).json(), resource)[0]
    path = f"/{resource}/{listed['id']}"
    one = account.get(path).json()
    assert one["id"] == listed["id"] and isinstance(one["id"], int)
    assert not isinstance(one.get(resource), list) and not isinstance(one.get(resource[:-1]), dict), (
        "no envelope around one record"
    )
    assert account.get(path + ".json").json() == one  # the .json suffix instead of the Accept header
    bare = httpx.Client(transport=account.sandbox, base_url=BASE, auth=(TOKEN, TOKEN))
    assert bare.get(path).status_code != 200, "JSON only when asked (Accept or .json)"


def test_payments_have_no_single_read_and_live_in_their_invoice(account: Account) -> None:
    payment = _records(account.get("/payments").json(), "payments")[0]
    assert account.get(f"/payments/{payment['id']}").status_code == 404
    invoice = account.get(f"/invoices/{payment['invoice_id']}").json()
    nested = next(p for p in invoice["payments"] if p["id"] == payment["id"])
    assert {"id", "amount", "received_on", "note"} <= set(nested)
    assert isinstance(nested["amount"], float)


def test_a_project_embeds_its_client_and_shows_no_client_id(account: Account) -> None:
    project = account.get("/projects/{project}").json()
    assert "client_id" not in project
    assert project["client"]["id"] == account.ids["client"] and project["client"]["name"] == "Client 00"


# §1 Filtering / sorting: the documented orders (list, ?sort → the key a record is ordered by).
ORDERS: tuple[tuple[str, dict[str, str], str, bool], ...] = (
    ("clients", {}, "name", False),  # by name by default
    ("clients", {"sort": "date"}, "id", True),  # newest created first
    ("leads", {}, "id", True),  # newest first by default
    ("leads", {"sort": "oldest"}, "id", False),
    ("leads", {"sort": "name"}, "name", False),
    ("payments", {}, "received_on", True),  # newest received_on first
)


@pytest.mark.parametrize(("key", "params", "field", "newest_first"), ORDERS, ids=lambda v: str(v))
def test_lists_come_in_the_documented_order(
    account: Account, key: str, params: dict[str, str], field: str, newest_first: bool
) -> None:
    records = _records(account.get(f"/{key}", page_size=MAX_PAGE_SIZE, **params).json(), key)
    values = [r[field] for r in records]
    assert values == sorted(values, reverse=newest_first)
    assert len(set(values)) > 1


def test_hours_flag_billed_with_a_question_mark(account: Account) -> None:
    entry = _records(account.get("/projects/{project}/hours").json(), "hours")[0]
    assert isinstance(entry["billed?"], bool) and "billed" not in entry


# ------------------------------------------------------------------------------ wrapper keys
@pytest.mark.parametrize("fact", WRAPPERS, ids=lambda f: f.resource)
def test_writes_take_the_documented_wrapper_key(account: Account, fact: WrapperFact) -> None:
    fields = dict(fact.fields)
    path = fact.create.format(**account.ids)
    wrong = account.http.post(path, json={fact.not_the_key: fields})
    assert wrong.status_code == 422, f"{fact.not_the_key!r} is not Clientary's key for {fact.resource}"
    made = account.http.post(path, json={fact.wrapper: fields})
    assert made.status_code in (200, 201), made.text
    record = made.json()
    assert fact.wrapper not in record and isinstance(record["id"], int), "the answer is the bare record"
    name, value = fact.fields[-1]
    assert record[name] == value or name in ("date", "due_date", "received_on")
    if fact.update is None:
        return
    key, first = fact.fields[0]
    changed = f"{first}!" if isinstance(first, str) and key not in ("date", "email") else first
    if key == "date":
        changed = "2024-03-02"
    update = fact.update.format(id=record["id"])
    answer = account.http.put(update, json={fact.wrapper: {key: changed}})
    assert answer.status_code == 200, answer.text
    ignored = account.http.put(update, json={fact.not_the_key: {key: "ignored"}}).json()
    assert ignored[key] == answer.json()[key], "fields under another key are not Clientary's"


def test_every_writable_resource_has_its_wrapper_fact(account: Account) -> None:
    writable = {name for name, spec in account.sandbox.resources.items() if not spec.read_only}
    assert writable == {fact.resource for fact in WRAPPERS}
    assert {name: account.sandbox.resources[name].wrapper for name in writable} == {
        fact.resource: fact.wrapper for fact in WRAPPERS
    }


# ------------------------------------------------------------------------------ dates
def _values(record: dict[str, Any], field: str) -> list[Any]:
    if "[]." in field:
        outer, inner = field.split("[].")
        return [item[inner] for item in record.get(outer) or []]
    return [record.get(field)]


@pytest.mark.parametrize(("resource", "field"), list(DATES), ids=[f"{r}.{f}" for r, f in DATES])
def test_dates_come_in_the_documented_form(account: Account, resource: str, field: str) -> None:
    fact = next(f for f in LISTS if f.key == resource)
    params: dict[str, Any] = {"filter": "all"} if resource == "projects" else {}
    if fact.default_page_size:
        params["page_size"] = MAX_PAGE_SIZE  # every record (the paid invoice is the oldest)
    records = _records(account.get(fact.path, **params).json(), resource)
    values = [v for record in records for v in _values(record, field) if v is not None]
    assert values, f"no {resource}.{field} to look at"
    assert all(DATES[resource, field].match(str(v)) for v in values), values[:3]


def test_either_date_form_is_taken_and_the_documented_one_answered(account: Account) -> None:
    # Integrations send both (PD 2022/11/17, CO and MC YYYY-MM-DD): the reference says parse both.
    for sent in ("2024-04-01", "2024/04/01"):
        invoice = account.http.post(
            "/invoices", json={"invoice": {"date": sent, "due_date": sent, "currency_code": "USD"}}
        ).json()
        assert (invoice["date"], invoice["due_date"]) == ("2024/04/01", "2024/04/01")
        payment = account.http.post(
            "/invoices/{invoice}/payments".format(**account.ids),
            json={"payment": {"amount": 1, "received_on": sent}},
        ).json()
        assert payment["received_on"] == "2024-04-01"


# ------------------------------------------------------------------------------ the reference
def _section(title: str) -> str:
    text = reference_text()
    start = text.index(title)
    following = re.search(r"\n#{2,3} ", text[start + len(title) :])
    return text[start : start + len(title) + (following.start() if following else len(text))]


def test_the_facts_are_still_the_reference_s() -> None:
    pagination = _section("### Pagination")
    assert "The maximum allowed page_size is 100." in pagination
    assert "in the JSON body" in pagination and "No pagination headers" in pagination
    for fact in LISTS:
        row = re.search(rf"^\s*\| {fact.key} \|(.*)$", pagination, re.MULTILINE)
        assert row, f"the pagination table has no row for {fact.key}"
        if fact.default_page_size is None:
            assert "not paginated" in row.group(1), fact.key
        else:
            assert str(fact.default_page_size) in row.group(1), fact.key
    assert "{total_count, from_date, to_date, expenses:[…]}" in pagination
    assert "A single GET returns the bare object (no envelope)" in _section("### Content type")
    sections = {
        "clients": "### 2.1 Clients",
        "contacts": "### 2.2 Contacts",
        "leads": "### 2.3 Leads",
        "invoices": "### 2.4 Invoices",
        "estimates": "### 2.5 Estimates",
        "payments": "### 2.6 Payments",
        "expenses": "### 2.7 Expenses",
        "projects": "### 2.8 Projects",
        "hours": "### 2.9 Hours",
        "tasks": "### 2.10 Tasks",
    }
    for wrap in WRAPPERS:
        section = _section(sections[wrap.resource])
        assert f'{{"{wrap.wrapper}": ' in section, f"§ {wrap.resource} does not show the {wrap.wrapper!r} key"
        for name, _ in wrap.fields:
            assert f"`{name}`" in section or f'"{name}"' in section, (wrap.resource, name)
    gotchas = _section("### Data-format gotchas")
    for example in ('"2011/07/26"', '"2017-07-22"', '"2012-11-08T21:20:47Z"', '"2013-02-06T21:23:21-08:00"'):
        assert example in gotchas
    assert "invoice, estimate, expense, hours and project dates" in gotchas
    assert "**full nested client object** (no top-level `client_id`" in _section("### 2.8 Projects")
    assert 'hours have `"billed?"`' in gotchas
    orders = _section("### Filtering / sorting")
    for text in ("newest-created first (default sort is by name)", "`sort=name` or `sort=oldest`"):
        assert text in orders
    assert "default is reverse-chronological by `received_on`" in orders
