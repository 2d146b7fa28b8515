"""The Clientary sandbox behaves like the documented API (seen through plain httpx, not our client)."""

from __future__ import annotations

import base64
import threading

import httpx
import pytest

from clientary_xero.local.clientary_sandbox import ClientarySandbox
from tests.clientary_fixtures import FakeClock

TOKEN = "sandbox-token"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> ClientarySandbox:
    return ClientarySandbox(subdomain="acme", api_token="sandbox-token", clock=clock)


def _http(sandbox: ClientarySandbox, token: str = TOKEN, **headers: str) -> httpx.Client:
    return httpx.Client(
        transport=sandbox,
        base_url="https://acme.clientary.com/api/v2",
        auth=(token, token),
        headers={"Accept": "application/json", **headers},
    )


def _items(*prices: float) -> list[dict[str, object]]:
    return [{"title": f"Line {i}", "quantity": 1, "price": p} for i, p in enumerate(prices)]


# ------------------------------------------------------------------------------ transport basics
def test_only_clientary_hosts_over_https_are_served(sandbox: ClientarySandbox) -> None:
    with httpx.Client(transport=sandbox) as http:
        with pytest.raises(httpx.ConnectError):
            http.get("https://api.xero.com/api.xro/2.0/Invoices")
        with pytest.raises(httpx.ConnectError):
            http.get("http://acme.clientary.com/api/v2/invoices")
    assert sandbox.request_count == 0


def test_another_account_is_not_found(sandbox: ClientarySandbox) -> None:
    with httpx.Client(transport=sandbox, auth=("sandbox-token", "sandbox-token")) as http:
        response = http.get(
            "https://other.clientary.com/api/v2/invoices", headers={"Accept": "application/json"}
        )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "auth",
    [None, ("wrong", "wrong"), ("sandbox-token", "other"), ("other", "sandbox-token")],
)
def test_basic_auth_needs_the_token_as_user_and_password(
    sandbox: ClientarySandbox, auth: tuple[str, str] | None
) -> None:
    with httpx.Client(transport=sandbox, headers={"Accept": "application/json"}) as http:
        response = http.get("https://acme.clientary.com/api/v2/invoices", auth=auth)  # type: ignore[arg-type]
    assert response.status_code == 401
    assert response.text == "HTTP Basic: Access denied.\n"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_json_is_served_for_the_accept_header_or_the_json_suffix(sandbox: ClientarySandbox) -> None:
    token = base64.b64encode(b"sandbox-token:sandbox-token").decode()
    with httpx.Client(transport=sandbox, headers={"Authorization": f"Basic {token}"}) as http:
        assert http.get("https://acme.clientary.com/api/v2/invoices").status_code == 406
        response = http.get("https://acme.clientary.com/api/v2/invoices.json")
    assert response.status_code == 200 and response.json()["invoices"] == []


def test_bootstrap_secret_matches_the_account(sandbox: ClientarySandbox) -> None:
    assert sandbox.bootstrap_secret() == {"subdomain": "acme", "api_token": "sandbox-token"}
    assert len(ClientarySandbox().bootstrap_secret()["api_token"]) >= 32


def test_fail_next_answers_the_next_requests_then_recovers(sandbox: ClientarySandbox) -> None:
    sandbox.fail_next(503, count=2, headers={"Retry-After": "3"})
    with _http(sandbox) as http:
        first, second, third = (http.get("/invoices") for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["retry-after"] == "3"
    assert sandbox.request_count == 3


def test_timeout_next_raises_a_read_timeout(sandbox: ClientarySandbox) -> None:
    sandbox.timeout_next()
    with _http(sandbox) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get("/invoices")
        assert http.get("/invoices").status_code == 200


def test_unknown_paths_and_ids_are_404(sandbox: ClientarySandbox) -> None:
    with _http(sandbox) as http:
        assert http.get("/invoices/999").status_code == 404
        assert http.get("/invoices/abc").status_code == 404
        assert http.get("/contracts").status_code == 404
        assert http.delete("/invoices").status_code == 405


# ------------------------------------------------------------------------------ invoices
def test_list_envelope_paging_and_newest_first(sandbox: ClientarySandbox, clock: FakeClock) -> None:
    client = sandbox.seed_client("Acme")
    ids = []
    for n in range(35):
        clock.advance(minutes=1)
        ids.append(sandbox.add_invoice(client["id"], _items(n + 1))["id"])
    with _http(sandbox) as http:
        first = http.get("/invoices").json()
        second = http.get("/invoices", params={"page": 2}).json()
        beyond = http.get("/invoices", params={"page": 3}).json()
        big = http.get("/invoices", params={"page_size": 500}).json()
    assert (first["page_count"], first["page_size"], first["total_count"]) == (2, 30, 35)
    assert [i["id"] for i in first["invoices"] + second["invoices"]] == ids[::-1]
    assert beyond["invoices"] == []
    assert (big["page_size"], big["page_count"], len(big["invoices"])) == (100, 1, 35)


def test_updated_since_filters_on_the_updated_date(sandbox: ClientarySandbox, clock: FakeClock) -> None:
    client = sandbox.seed_client("Acme")
    old = sandbox.add_invoice(client["id"], _items(10))
    clock.advance(days=3)
    recent = sandbox.add_invoice(client["id"], _items(20))
    today = sandbox.now().date().isoformat()
    with _http(sandbox) as http:
        listed = http.get("/invoices", params={"updated_since": today}).json()
        assert [i["id"] for i in listed["invoices"]] == [recent["id"]]
        sandbox.touch_invoice(old["id"], status=1)
        listed = http.get("/invoices", params={"updated_since": today}).json()
        assert {i["id"] for i in listed["invoices"]} == {old["id"], recent["id"]}
        assert http.get("/invoices", params={"updated_since": "last week"}).status_code == 400


def test_records_look_like_clientarys(sandbox: ClientarySandbox, clock: FakeClock) -> None:
    client = sandbox.seed_client("Harbor Lane Bakery", currency_code="EUR")
    invoice = sandbox.add_invoice(
        client["id"],
        [
            {"title": "Design", "item_type": 0},
            {"title": "Logo", "quantity": 2, "price": "150.00", "taxable": True},
            {"title": "Travel", "quantity": 1, "price": 40.5},
        ],
        tax=20,
        tax_label="VAT",
    )
    assert isinstance(invoice["id"], int) and invoice["number"].isdigit()
    assert invoice["date"] == "2024/03/10"  # the account is at UTC-8: 18:00Z is still the 10th
    assert invoice["due_date"] == "2024/04/09"
    assert invoice["created_at"] == "2024-03-10T10:00:00-08:00" == invoice["updated_at"]
    assert invoice["client"] == {"id": client["id"], "name": "Harbor Lane Bakery"}
    assert invoice["currency_code"] == "EUR" and invoice["status"] == 0
    assert (invoice["subtotal"], invoice["total_tax"], invoice["total_cost"], invoice["balance"]) == (
        340.5,
        60.0,
        400.5,
        400.5,
    )
    header = invoice["invoice_items"][0]
    assert (header["item_type"], header["quantity"], header["price"]) == (0, 0.0, 0.0)
    with _http(sandbox) as http:
        assert http.get(f"/invoices/{invoice['id']}").json() == invoice


def test_touch_moves_updated_at_and_marking_paid_settles(sandbox: ClientarySandbox, clock: FakeClock) -> None:
    invoice = sandbox.add_invoice(None, _items(100))
    clock.advance(hours=5)
    touched = sandbox.touch_invoice(invoice["id"], status=4)
    assert touched["created_at"] == invoice["created_at"]
    assert touched["updated_at"] > invoice["updated_at"]
    assert (touched["balance"], touched["paid_date"]) == (0.0, "2024/03/10")
    with pytest.raises(ValueError):
        sandbox.touch_invoice(invoice["id"], status=42)
    with pytest.raises(KeyError):
        sandbox.touch_invoice(1, status=1)


def test_post_invoice_validates_numbers_and_items(sandbox: ClientarySandbox) -> None:
    body = {
        "invoice": {
            "date": "2024-03-01",
            "due_date": "2024/03/31",
            "currency_code": "usd",
            "invoice_items_attributes": [{"title": "Consulting", "quantity": "1.5", "price": "120"}],
            "not_an_attribute": "dropped",
        }
    }
    with _http(sandbox) as http:
        created = http.post("/invoices", json=body)
        assert created.status_code == 201
        invoice = created.json()
        assert (invoice["date"], invoice["due_date"], invoice["currency_code"]) == (
            "2024/03/01",
            "2024/03/31",
            "USD",
        )
        assert invoice["total_cost"] == 180.0 and "not_an_attribute" not in invoice

        second = http.post("/invoices", json=body).json()
        assert int(second["number"]) == int(invoice["number"]) + 1

        missing = http.post("/invoices", json={"invoice": {"title": "nothing else"}})
        assert missing.status_code == 422
        assert missing.json() == {
            "errors": {
                "date": ["can't be blank"],
                "due_date": ["can't be blank"],
                "currency_code": ["can't be blank"],
            }
        }
        duplicate = http.post("/invoices", json={"invoice": {**body["invoice"], "number": invoice["number"]}})
        assert duplicate.status_code == 422
        assert duplicate.json() == {"errors": {"number": ["has already been taken"]}}
        bad = http.post(
            "/invoices", json={"invoice": {**body["invoice"], "date": "01.03.2024", "client_id": 5}}
        )
        assert bad.status_code == 422 and set(bad.json()["errors"]) == {"date", "client"}
        assert len(http.get("/invoices").json()["invoices"]) == 2


def test_put_updates_items_with_nested_attributes(sandbox: ClientarySandbox, clock: FakeClock) -> None:
    invoice = sandbox.add_invoice(None, _items(10, 20))
    keep, drop = invoice["invoice_items"]
    clock.advance(minutes=5)
    body = {
        "invoice": {
            "title": "Renamed",
            "invoice_items_attributes": [
                {"id": keep["id"], "price": 15},
                {"id": drop["id"], "_destroy": True},
                {"title": "New", "quantity": 2, "price": 5},
            ],
        }
    }
    with _http(sandbox) as http:
        updated = http.put(f"/invoices/{invoice['id']}", json=body).json()
    assert updated["title"] == "Renamed"
    assert [(i["title"], i["price"]) for i in updated["invoice_items"]] == [("Line 0", 15.0), ("New", 5.0)]
    assert updated["total_cost"] == 25.0 and updated["updated_at"] > invoice["updated_at"]


def test_unwrapped_bodies_work_like_rails_wrap_parameters(sandbox: ClientarySandbox) -> None:
    with _http(sandbox) as http:
        response = http.post("/clients", json={"name": "Unwrapped Ltd"})
        wrong_key = http.post("/clients", json={"customer": {"name": "Wrong Key Ltd"}})
    assert response.status_code == 201 and response.json()["name"] == "Unwrapped Ltd"
    assert wrong_key.status_code == 422


# ------------------------------------------------------------------------------ clients
def test_clients_create_list_and_get(sandbox: ClientarySandbox, clock: FakeClock) -> None:
    with _http(sandbox) as http:
        assert http.post("/clients", json={"client": {"name": ""}}).status_code == 422
        zeta = http.post("/clients", json={"client": {"name": "Zeta", "number": "C-1"}}).json()
        clock.advance(minutes=1)
        alpha = http.post("/clients", json={"client": {"name": "alpha"}}).json()
        assert http.post("/clients", json={"client": {"name": "Dup", "number": "C-1"}}).status_code == 422
        by_name = http.get("/clients").json()
        by_date = http.get("/clients", params={"sort": "date"}).json()
        assert http.get(f"/clients/{zeta['id']}").json() == zeta
    assert by_name["page_size"] == 10 and by_name["total_count"] == 2
    assert [c["name"] for c in by_name["clients"]] == ["alpha", "Zeta"]
    assert [c["id"] for c in by_date["clients"]] == [alpha["id"], zeta["id"]]
    assert zeta["number"] == "C-1" and zeta["created_at"].endswith("-08:00")


def test_plan_limits_answer_426(clock: FakeClock) -> None:
    sandbox = ClientarySandbox(
        subdomain="acme", api_token="sandbox-token", clock=clock, plan_limits={"clients": 0}
    )
    with _http(sandbox) as http:
        response = http.post("/clients", json={"client": {"name": "Over"}})
    assert response.status_code == 426


# ------------------------------------------------------------------------------ concurrency
def test_concurrent_creates_get_unique_ids_and_numbers(sandbox: ClientarySandbox) -> None:
    body = {"invoice": {"date": "2024-03-01", "due_date": "2024-03-31", "currency_code": "USD"}}
    created: list[dict[str, object]] = []
    lock = threading.Lock()

    def worker() -> None:
        with _http(sandbox) as http:
            for _ in range(10):
                record = http.post("/invoices", json=body).json()
                with lock:
                    created.append(record)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r["id"] for r in created}) == 60
    assert len({r["number"] for r in created}) == 60
    assert sandbox.request_count == 60


# ------------------------------------------------------------------------------ loading samples
def test_load_record_serves_a_sample_verbatim_and_then_lives_on(
    sandbox: ClientarySandbox, clock: FakeClock
) -> None:
    from tests.clientary_fixtures import load_sample

    sample = load_sample("invoice_paid_legacy.json")
    loaded = sandbox.load_record("invoices", sample)
    assert loaded == sample
    with _http(sandbox) as http:
        assert http.get(f"/invoices/{sample['id']}").json() == sample
        assert http.get("/invoices", params={"updated_since": "2011-06-29"}).json()["total_count"] == 1
        assert http.get("/invoices", params={"updated_since": "2011-07-01"}).json()["total_count"] == 0
    created = sandbox.add_invoice(None, _items(1))
    assert created["id"] != sample["id"]
    sandbox.load_record("invoices", {**sample, "id": created["id"] + 10})
    assert sandbox.add_invoice(None, _items(1))["id"] == created["id"] + 11  # ids never collide
    touched = sandbox.touch_invoice(sample["id"], title="Edited")
    assert (
        touched["updated_at"] == "2024-03-10T10:00:00-08:00" and touched["created_at"] == sample["created_at"]
    )
