"""The Clientary client: auth, URLs, envelopes, and every error mapped to the project's classes."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from clientary_xero.connectors import http
from clientary_xero.connectors.clientary.client import (
    ClientaryClient,
    ClientaryNotFound,
    build_clientary_client,
)
from clientary_xero.errors import NotFound, PermanentError, RetryableError
from clientary_xero.settings import get_settings
from clientary_xero.storage.secrets import SecretStore
from tests.clientary_fixtures import FakeClock, moto_aws, sandbox_and_client

TOKEN = "tok-3f9a7c2e41b8d6"


def _mock(handler: object) -> tuple[ClientaryClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def wrapped(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)  # type: ignore[operator]

    return ClientaryClient("acme", TOKEN, transport=httpx.MockTransport(wrapped)), seen


def _secret_free(*texts: str) -> None:
    encoded = base64.b64encode(f"{TOKEN}:{TOKEN}".encode()).decode()
    for text in texts:
        assert TOKEN not in text
        assert encoded not in text


# ------------------------------------------------------------------------------ requests
def test_requests_use_basic_auth_with_the_token_twice_and_ask_for_json() -> None:
    client, seen = _mock(lambda r: httpx.Response(200, json={"id": 5, "number": "1001"}))
    assert client.get_invoice(5) == {"id": 5, "number": "1001"}
    (request,) = seen
    assert str(request.url) == "https://acme.clientary.com/api/v2/invoices/5"
    assert (
        request.headers["authorization"] == "Basic " + base64.b64encode(f"{TOKEN}:{TOKEN}".encode()).decode()
    )
    assert request.headers["accept"] == "application/json"


def test_list_invoices_sends_paging_and_a_date_only_updated_since() -> None:
    envelope = {"page_count": 1, "page_size": 100, "total_count": 0, "invoices": []}
    client, seen = _mock(lambda r: httpx.Response(200, json=envelope))
    assert client.list_invoices(updated_since=date(2024, 3, 9), page=2, page_size=50) == envelope
    client.list_invoices(updated_since=datetime(2024, 3, 9, 23, 30))
    assert dict(seen[0].url.params) == {"page": "2", "page_size": "50", "updated_since": "2024-03-09"}
    assert dict(seen[1].url.params) == {"page": "1", "page_size": "100", "updated_since": "2024-03-09"}


@pytest.mark.parametrize("page_size", [0, 101])
def test_list_invoices_refuses_page_sizes_clientary_does_not_allow(page_size: int) -> None:
    client, seen = _mock(lambda r: httpx.Response(200, json={}))
    with pytest.raises(ValueError):
        client.list_invoices(page_size=page_size)
    assert seen == []


def test_a_list_without_the_invoices_key_is_an_error() -> None:
    client, _ = _mock(lambda r: httpx.Response(200, json={"page_count": 1}))
    with pytest.raises(PermanentError, match="invoices"):
        client.list_invoices()


def test_post_and_put_send_json_bodies() -> None:
    client, seen = _mock(lambda r: httpx.Response(201, json={"id": 9}))
    assert client.post("/invoices", {"invoice": {"date": "2024-03-01"}}) == {"id": 9}
    client.put("invoices/9", {"invoice": {"title": "x"}})
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/api/v2/invoices"),
        ("PUT", "/api/v2/invoices/9"),
    ]
    assert json.loads(seen[0].content) == {"invoice": {"date": "2024-03-01"}}


def test_an_empty_success_body_is_an_empty_dict() -> None:
    client, _ = _mock(lambda r: httpx.Response(204))
    assert client.put("/invoices/9", {"invoice": {}}) == {}


def test_absolute_urls_are_refused_so_the_token_cannot_leave_clientary() -> None:
    client, seen = _mock(lambda r: httpx.Response(200, json={}))
    with pytest.raises(ValueError):
        client.get("https://evil.example.com/steal")
    with pytest.raises(ValueError):
        client.get("//evil.example.com/steal")
    assert seen == []


def test_requests_made_counts_every_request_including_failures() -> None:
    responses = iter([httpx.Response(200, json={}), httpx.Response(500), httpx.Response(200, json={})])
    client, _ = _mock(lambda r: next(responses))
    client.get("/staff")
    with pytest.raises(RetryableError):
        client.get("/staff")
    client.get("/staff")
    assert client.requests_made == 3


@pytest.mark.parametrize(
    "subdomain",
    ["acme", "ACME", "acme.clientary.com", "https://acme.clientary.com/", "http://acme.clientary.com"],
)
def test_subdomain_forms_are_accepted(subdomain: str) -> None:
    assert ClientaryClient(subdomain, TOKEN).base_url == "https://acme.clientary.com/api/v2"


@pytest.mark.parametrize("subdomain", ["", "ac me", "evil.com/x?", "-acme"])
def test_bad_subdomains_are_refused(subdomain: str) -> None:
    with pytest.raises(PermanentError, match="subdomain"):
        ClientaryClient(subdomain, TOKEN)


def test_the_installed_transport_is_used_when_none_is_given() -> None:
    sandbox, _ = sandbox_and_client()
    secret = sandbox.bootstrap_secret()
    with http.use_transport(sandbox):
        client = ClientaryClient(secret["subdomain"], secret["api_token"])
    assert client.list_invoices()["total_count"] == 0
    assert sandbox.request_count == 1


# ------------------------------------------------------------------------------ errors
def test_401_is_permanent_shows_the_body_and_never_the_token() -> None:
    sandbox, _ = sandbox_and_client()
    client = ClientaryClient(sandbox.subdomain, TOKEN, transport=sandbox)
    with pytest.raises(PermanentError) as caught:
        client.list_invoices()
    error = caught.value
    assert error.status == 401
    assert "HTTP Basic: Access denied." in str(error)
    assert error.messages == ["HTTP Basic: Access denied."]
    _secret_free(str(error), repr(error), json.dumps(error.to_dict()), repr(client))


def test_a_body_that_echoes_the_token_is_redacted() -> None:
    encoded = base64.b64encode(f"{TOKEN}:{TOKEN}".encode()).decode()
    body = {"error": f"token {TOKEN} is revoked", "errors": {"auth": [f"Basic {encoded} refused"]}}
    client, _ = _mock(lambda r: httpx.Response(403, json=body))
    with pytest.raises(PermanentError) as caught:
        client.get("/invoices")
    assert caught.value.status == 403
    assert "[redacted]" in str(caught.value)
    _secret_free(str(caught.value), json.dumps(caught.value.to_dict()))


def test_timeouts_and_connection_errors_are_retryable_and_secret_free() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout(f"timed out {request.headers['authorization']}", request=request)

    client, _ = _mock(boom)
    with pytest.raises(RetryableError) as caught:
        client.get_invoice(1)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    _secret_free(str(caught.value), repr(caught.value))

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, _ = _mock(refused)
    with pytest.raises(RetryableError, match="ConnectError"):
        client.get_invoice(1)


def test_404_is_a_permanent_not_found() -> None:
    _, client = sandbox_and_client()
    with pytest.raises(ClientaryNotFound) as caught:
        client.get_invoice(123456)
    assert isinstance(caught.value, PermanentError) and isinstance(caught.value, NotFound)
    assert caught.value.status == 404


def test_422_carries_clientarys_field_messages() -> None:
    _, client = sandbox_and_client()
    with pytest.raises(PermanentError) as caught:
        client.post("/invoices", {"invoice": {"date": "2024-03-01", "title": "No due date"}})
    error = caught.value
    assert not isinstance(error, RetryableError)
    assert error.status == 422
    assert sorted(error.messages) == ["currency_code can't be blank", "due_date can't be blank"]
    assert "due_date can't be blank" in str(error)


def test_426_plan_limits_is_permanent() -> None:
    sandbox, client = sandbox_and_client(plan_limits={"clients": 1})
    client.post("/clients", {"client": {"name": "First"}})
    with pytest.raises(PermanentError) as caught:
        client.post("/clients", {"client": {"name": "Second"}})
    assert caught.value.status == 426
    assert caught.value.messages == ["must meet plan limits"]
    assert len(sandbox.all_records("clients")) == 1


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        ({"errors": {"number": ["has already been taken"]}}, ["number has already been taken"]),
        ({"errors": ["Number has already been taken"]}, ["Number has already been taken"]),
        ({"error": "Invalid invoice"}, ["Invalid invoice"]),
        ({"message": "Nope"}, ["Nope"]),
        ({"name": ["can't be blank"], "base": ["Account locked"]}, ["name can't be blank", "Account locked"]),
        ("Validation failed: Name can't be blank", ["Validation failed: Name can't be blank"]),
        ("<html><body>Error</body></html>", []),
        ("", []),
    ],
)
def test_error_bodies_of_any_shape_become_messages(body: object, messages: list[str]) -> None:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    client, _ = _mock(lambda r: httpx.Response(422, content=content))
    with pytest.raises(PermanentError) as caught:
        client.post("/clients", {"client": {}})
    assert caught.value.messages == messages


def test_429_is_retryable_after_the_servers_delay() -> None:
    sandbox, client = sandbox_and_client()
    sandbox.fail_next(429, headers={"Retry-After": "17"})
    with pytest.raises(RetryableError) as caught:
        client.list_invoices()
    assert (caught.value.status, caught.value.delay_seconds) == (429, 17)
    assert client.list_invoices()["total_count"] == 0  # the next request goes through


def test_429_retry_after_as_an_http_date_and_missing() -> None:
    when = format_datetime(datetime.now().astimezone() + timedelta(seconds=90), usegmt=False)
    client, _ = _mock(lambda r: httpx.Response(429, headers={"Retry-After": when}))
    with pytest.raises(RetryableError) as caught:
        client.get("/invoices")
    assert 80 <= caught.value.delay_seconds <= 91
    client, _ = _mock(lambda r: httpx.Response(429))
    with pytest.raises(RetryableError) as caught:
        client.get("/invoices")
    assert caught.value.delay_seconds == 60


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retryable(status: int) -> None:
    sandbox, client = sandbox_and_client()
    sandbox.fail_next(status)
    with pytest.raises(RetryableError) as caught:
        client.get_invoice(1)
    assert caught.value.status == status


def test_a_redirect_is_a_permanent_error_naming_the_subdomain() -> None:
    client, _ = _mock(lambda r: httpx.Response(302, headers={"Location": "https://acme.clientary.com/login"}))
    with pytest.raises(PermanentError, match="subdomain"):
        client.get("/invoices")


def test_a_non_json_success_is_an_error() -> None:
    client, _ = _mock(lambda r: httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(PermanentError, match="not JSON"):
        client.get("/invoices")


# ------------------------------------------------------------------------------ build from secret
def test_build_from_the_secret_and_talk_to_the_sandbox() -> None:
    sandbox, _ = sandbox_and_client(clock=FakeClock())
    with moto_aws({"CLIENTARY_SECRET_ID": "test/clientary"}):
        import boto3

        boto3.client("secretsmanager").create_secret(
            Name="test/clientary", SecretString=json.dumps(sandbox.bootstrap_secret())
        )
        with http.use_transport(sandbox):
            client = build_clientary_client(SecretStore(), get_settings())
        sandbox.seed_client("Acme")
        assert (
            client.post(
                "/invoices",
                {"invoice": {"date": "2024-03-01", "due_date": "2024-03-31", "currency_code": "usd"}},
            )["currency_code"]
            == "USD"
        )
        assert repr(client) == f"ClientaryClient(subdomain={sandbox.subdomain!r})"
        assert sandbox.api_token not in repr(client) and sandbox.api_token not in repr(vars(client))


def test_build_names_missing_fields_but_not_the_value() -> None:
    with moto_aws({"CLIENTARY_SECRET_ID": "test/clientary"}):
        import boto3

        boto3.client("secretsmanager").create_secret(
            Name="test/clientary", SecretString=json.dumps({"api_token": TOKEN})
        )
        with pytest.raises(PermanentError) as caught:
            build_clientary_client(SecretStore())
    assert "subdomain" in str(caught.value) and "test/clientary" in str(caught.value)
    _secret_free(str(caught.value))
