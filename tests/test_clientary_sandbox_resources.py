"""The Clientary sandbox serves every documented resource with Clientary's shapes (plain httpx)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clientary_xero.local.clientary_sandbox import ClientarySandbox
from tests.clientary_fixtures import FakeClock

TOKEN = "sandbox-token"


@pytest.fixture
def sandbox() -> ClientarySandbox:
    return ClientarySandbox(subdomain="acme", api_token=TOKEN, clock=FakeClock())


@pytest.fixture
def http(sandbox: ClientarySandbox) -> httpx.Client:
    return httpx.Client(
        transport=sandbox,
        base_url="https://acme.clientary.com/api/v2",
        auth=(TOKEN, TOKEN),
        headers={"Accept": "application/json"},
    )


@pytest.mark.parametrize(
    ("path", "wrapper", "body", "missing"),
    [
        ("/clients", "client", {"city": "Oslo"}, "name"),
        ("/leads", "lead", {"city": "Oslo"}, "name"),
        ("/expenses", "expense", {"description": "Taxi"}, "amount"),
        ("/tasks", "task", {"description": "x"}, "title"),
        ("/estimates", "estimate", {"date": "2024-03-01"}, "currency_code"),
        ("/projects", "project", {"rate": 100}, "name"),
    ],
)
def test_creates_take_the_wrapper_key_and_answer_422_for_a_missing_field(
    http: httpx.Client, path: str, wrapper: str, body: dict[str, Any], missing: str
) -> None:
    response = http.post(path, json={wrapper: body})
    assert response.status_code == 422
    assert response.json() == {"errors": {missing: ["can't be blank"]}}


def test_hours_use_the_project_item_wrapper_and_are_unpaginated(
    http: httpx.Client, sandbox: ClientarySandbox
) -> None:
    project = sandbox.add_record("projects", name="P", rate=80)
    missing = http.post(f"/projects/{project['id']}/hours", json={"project_item": {"hours": 1}})
    assert missing.status_code == 422 and missing.json() == {"errors": {"title": ["can't be blank"]}}
    made = http.post(
        f"/projects/{project['id']}/hours", json={"project_item": {"title": "Setup", "hours": 2.5}}
    )
    assert made.status_code == 201
    entry = made.json()
    assert entry["cost"] == 200.0 and entry["billed?"] is False and entry["date"] == "2024/03/10"
    assert http.get(f"/projects/{project['id']}/hours").json() == {"hours": [entry]}
    assert http.get(f"/hours/{entry['id']}").json()["title"] == "Setup"
    assert http.post("/hours", json={"project_item": {"title": "x", "hours": 1}}).status_code == 405
    assert (
        http.post("/projects/1/hours", json={"project_item": {"title": "x", "hours": 1}}).status_code == 404
    )


def test_a_payment_is_made_on_an_invoice_and_settles_it(
    http: httpx.Client, sandbox: ClientarySandbox
) -> None:
    client = sandbox.seed_client("Acme")
    invoice = sandbox.add_invoice(client["id"], [{"title": "W", "quantity": 1, "price": 100}], status=1)
    assert http.post(f"/invoices/{invoice['id']}/payments", json={"payment": {}}).json() == {
        "errors": {"amount": ["can't be blank"]}
    }
    first = http.post(f"/invoices/{invoice['id']}/payments", json={"payment": {"amount": 60, "note": "Part"}})
    assert first.status_code == 201 and first.json()["received_on"] == "2024-03-10"
    after = http.get(f"/invoices/{invoice['id']}").json()
    assert after["balance"] == 40.0 and after["status"] == 1
    assert [p["note"] for p in after["payments"]] == ["Part"]
    http.post(f"/invoices/{invoice['id']}/payments", json={"payment": {"amount": 40}})
    assert http.get(f"/invoices/{invoice['id']}").json()["status"] == 4  # paid
    listed = http.get("/payments", params={"sort": "created_at"}).json()
    assert listed["total_count"] == 2 and listed["page_count"] == 1 and listed["page_size"] == 30
    assert http.get(f"/payments/{first.json()['id']}").status_code == 404  # not documented


def test_expenses_default_to_the_fiscal_year_and_take_a_window(
    http: httpx.Client, sandbox: ClientarySandbox
) -> None:
    this_year = sandbox.add_record("expenses", amount=5, incurred_on="2024-02-01")
    old = sandbox.add_record("expenses", amount=7, incurred_on="2021-02-01")
    default = http.get("/expenses").json()
    assert set(default) == {"total_count", "from_date", "to_date", "expenses"}
    assert (default["from_date"], default["to_date"]) == ("2024/01/01", "2024/12/31")
    assert [e["id"] for e in default["expenses"]] == [this_year["id"]]
    wide = http.get("/expenses", params={"from_date": "1970-01-01", "to_date": "2030-01-01"}).json()
    assert {e["id"] for e in wide["expenses"]} == {old["id"], this_year["id"]}
    assert http.get("/expenses", params={"from_date": "soon"}).status_code == 422


def test_projects_list_active_and_billable_unless_filter_all(
    http: httpx.Client, sandbox: ClientarySandbox
) -> None:
    active = sandbox.add_record("projects", name="A", status=1)
    done = sandbox.add_record("projects", name="B", status=2)
    billable = sandbox.add_record("projects", name="C", status=4)
    assert [p["id"] for p in http.get("/projects").json()["projects"]] == [active["id"], billable["id"]]
    assert len(http.get("/projects", params={"filter": "all"}).json()["projects"]) == 3
    project = http.get(f"/projects/{done['id']}").json()
    assert "client_id" not in project and project["client"] is None


def test_a_project_in_the_documented_shape_keeps_its_nested_client(
    http: httpx.Client, sandbox: ClientarySandbox
) -> None:
    from clientary_xero.connectors.clientary.normalize import normalize_project

    # The docs' project: the whole client nested, no top-level client_id (as test-workflow loads it).
    client = {"id": 9001, "name": "ACME Corp", "number": "C-1", "currency_code": "EUR"}
    documented = {
        "id": 300_900,
        "number": "PROJ101",
        "name": "ACME Corp Project",
        "status": 1,
        "client": client,
    }
    sandbox.load_record("projects", documented)
    served = http.get("/projects/300900").json()
    assert "client_id" not in served and served["client"] == client
    assert normalize_project(served)["client_id"] == 9001  # the record production would run on
    listed = http.get("/projects").json()["projects"]
    assert [p["client"] for p in listed] == [client]
    # A project the API made knows its client by id and embeds the live client.
    acme = sandbox.seed_client("Acme Live")
    made = http.post("/projects", json={"project": {"name": "Live", "rate": 100, "client_id": acme["id"]}})
    assert made.json()["client"]["name"] == "Acme Live" and "client_id" not in made.json()


def test_leads_are_newest_first_unless_sorted_oldest(
    http: httpx.Client,
    sandbox: ClientarySandbox,
) -> None:
    clock = sandbox.clock
    first = sandbox.add_record("leads", name="First")
    clock.advance(seconds=5)  # type: ignore[attr-defined]
    second = sandbox.add_record("leads", name="Second")
    assert [r["id"] for r in http.get("/leads").json()["leads"]] == [second["id"], first["id"]]
    assert [r["id"] for r in http.get("/leads", params={"sort": "oldest"}).json()["leads"]] == [
        first["id"],
        second["id"],
    ]


def test_staff_is_read_only_and_unpaginated(http: httpx.Client, sandbox: ClientarySandbox) -> None:
    sandbox.seed_staff("Sam", email="sam@example.com")
    assert set(http.get("/staff").json()) == {"staff"}
    assert http.post("/staff", json={"staff": {"name": "Eve"}}).status_code == 405


def test_tasks_timestamps_are_utc_with_z_and_plan_limits_answer_426(
    http: httpx.Client, sandbox: ClientarySandbox
) -> None:
    task = http.post("/tasks", json={"task": {"title": "Call"}}).json()
    assert task["created_at"] == "2024-03-10T18:00:00Z"
    sandbox.plan_limits["leads"] = 0
    refused = http.post("/leads", json={"lead": {"name": "Over"}})
    assert refused.status_code == 426 and refused.json() == {"errors": {"base": ["must meet plan limits"]}}


def test_a_lost_answer_still_writes(http: httpx.Client, sandbox: ClientarySandbox) -> None:
    sandbox.lose_next_answer()
    with pytest.raises(httpx.ReadTimeout):
        http.post("/tasks", json={"task": {"title": "Call"}})
    sandbox.lose_next_answer(status=502)
    assert http.post("/tasks", json={"task": {"title": "Again"}}).status_code == 502
    assert [t["title"] for t in sandbox.all_records("tasks")] == ["Call", "Again"]
