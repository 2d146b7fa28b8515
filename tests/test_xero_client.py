"""The Xero client: headers, idempotency, summarizeErrors, error mapping, the OpenAPI contract."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clientary_xero.connectors.xero.client import (
    XeroClient,
    XeroNotFound,
    accepts_summarize_errors,
    build_xero_client,
    checked_elements,
    element_errors,
    xero_messages,
)
from clientary_xero.connectors.xero.dates import parse_xero_date, to_xero_date
from clientary_xero.errors import PermanentError, ReauthorizationRequired, RetryableError
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.settings import get_settings
from tests.conftest_xero import (  # noqa: F401
    AwsEnv,
    FakeClock,
    ProviderFactory,
    Recorded,
    aws,
    clock,
    connection,
    leaked,
    make_provider,
    recorder,
    sandbox,
    xero,
)
from tests.xero_contract import validate_requests

ACME = {"Contacts": [{"Name": "Acme Ltd", "ContactNumber": "CL-1", "EmailAddress": "ap@acme.test"}]}


def _writes(recorder: Recorded) -> list[dict[str, Any]]:  # noqa: F811
    return [
        r
        for r in recorder.records()
        if r["method"] in ("POST", "PUT", "PATCH") and "api.xero.com" in r["url"]
    ]


def test_calls_carry_auth_tenant_and_accept_headers(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
) -> None:
    assert xero.request("GET", "/Contacts")["Contacts"] == []
    sent = sandbox.requests[-1]["headers"]
    assert sent["authorization"] == "Bearer <redacted>"
    assert sent["xero-tenant-id"] == connection["tenant_id"]
    assert sent["accept"] == "application/json"
    assert "idempotency-key" not in sent
    assert xero.rate_limits == {"minute": 59, "day": 4999, "app_minute": 9999}


def test_every_write_needs_an_idempotency_key(xero: XeroClient, sandbox: XeroSandbox) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="idempotency_key"):
        xero.request("PUT", "/Contacts", json=ACME)
    assert sandbox.requests == []


def test_a_reused_key_returns_the_same_contact_and_creates_no_duplicate(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    recorder: Recorded,  # noqa: F811
) -> None:
    first = xero.request("PUT", "/Contacts", json=ACME, idempotency_key="run-1:contact:0")
    again = xero.request("PUT", "/Contacts", json=ACME, idempotency_key="run-1:contact:0")
    assert again["Contacts"][0]["ContactID"] == first["Contacts"][0]["ContactID"]
    assert len(sandbox.contacts(connection["tenant_id"])) == 1
    writes = _writes(recorder)
    assert [w["headers"].get("Idempotency-Key") for w in writes] == ["run-1:contact:0"] * 2

    long_key = "k" * 300  # longer than Xero's 128: replaced by a stable digest, not refused
    xero.request("PUT", "/Contacts", json={"Contacts": [{"Name": "Long Key Co"}]}, idempotency_key=long_key)
    sent = _writes(recorder)[-1]["headers"]["Idempotency-Key"]
    assert len(sent) <= 128 and sent.startswith("sha256:")
    assert validate_requests(recorder.records()) == []


def test_summarize_errors_false_goes_on_bulk_writes_only(
    xero: XeroClient,  # noqa: F811
    recorder: Recorded,  # noqa: F811
) -> None:
    made = xero.request("PUT", "/Contacts", json=ACME, idempotency_key="k1")["Contacts"][0]
    xero.request("POST", "/Contacts", json=ACME | {}, idempotency_key="k2")
    xero.request(
        "POST",
        f"/Contacts/{made['ContactID']}",
        json={"Contacts": [{"FirstName": "Ann"}]},
        idempotency_key="k3",
    )
    urls = [httpx.URL(w["url"]) for w in _writes(recorder)]
    assert [u.params.get("summarizeErrors") for u in urls] == ["false", "false", None]
    assert validate_requests(recorder.records()) == []


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("PUT", "/Contacts", True),
        ("post", "Invoices", True),
        ("PUT", "/Items", True),
        ("POST", "/PurchaseOrders", True),
        ("PUT", "/Quotes", True),
        ("PUT", "/Payments", True),
        ("PUT", "/CreditNotes/abc/Allocations", True),
        ("POST", "/Payments", False),
        ("PUT", "/BankTransfers", False),
        ("POST", "/BankTransfers", False),
        ("POST", "/Contacts/abc", False),
        ("PUT", "/Invoices/abc/History", False),
        ("GET", "/Invoices", False),
    ],
)
def test_which_endpoints_take_summarize_errors(method: str, path: str, expected: bool) -> None:
    assert accepts_summarize_errors(method, path) is expected


def test_token_expired_refreshes_once_and_retries(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    # The stored expiry claims an hour more than Xero grants (clock skew, an early revocation).
    aws.write_secret({**connection, "expires_at": int(clock() + 3 * 3600)})
    clock.advance(1900)
    answer = xero.request("PUT", "/Contacts", json=ACME, idempotency_key="after-401")
    assert answer["Contacts"][0]["Name"] == "Acme Ltd"
    assert sandbox.refresh_count == 1
    statuses = [r["url"].split("/")[2] for r in sandbox.requests]
    assert statuses == ["api.xero.com", "identity.xero.com", "api.xero.com"]
    assert len(sandbox.contacts(connection["tenant_id"])) == 1


def test_a_revoked_connection_surfaces_as_reauthorization_required(
    xero: XeroClient,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
) -> None:
    sandbox.revoke_tokens()
    with pytest.raises(ReauthorizationRequired):
        xero.request("GET", "/Contacts")


def test_rate_limits_become_retryable_errors_with_the_delay(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    sandbox.minute_limit = 3
    client = XeroClient(make_provider())
    for _ in range(3):
        client.request("GET", "/Contacts")
    clock.advance(20)
    with pytest.raises(RetryableError) as caught:
        client.request("GET", "/Contacts")
    assert (caught.value.delay_seconds, caught.value.limit, caught.value.status) == (40, "minute", 429)
    assert client.rate_limits["minute"] == 0

    sandbox.fail_next(429, headers={"Retry-After": "66975", "X-Rate-Limit-Problem": "day"})
    clock.advance(60)
    with pytest.raises(RetryableError) as day:
        client.request("GET", "/Contacts")
    assert (day.value.delay_seconds, day.value.limit) == (66975, "day")


def test_server_errors_and_transport_failures_are_retryable(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    sandbox.fail_next(503)
    with pytest.raises(RetryableError) as caught:
        xero.request("PUT", "/Contacts", json=ACME, idempotency_key="k-503")
    assert caught.value.status == 503
    assert sandbox.contacts(connection["tenant_id"]) == []
    xero.request("PUT", "/Contacts", json=ACME, idempotency_key="k-503")  # the retry goes through
    assert len(sandbox.contacts(connection["tenant_id"])) == 1

    class Timeouts(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(RetryableError, match="in time"):
        XeroClient(make_provider(), transport=Timeouts()).request("GET", "/Contacts")
    sandbox.fail_next(502)
    with pytest.raises(RetryableError) as read_failed:
        xero.request("GET", "/Contacts")
    assert read_failed.value.delay_seconds == 30
    with pytest.raises(RetryableError, match="cannot reach"):
        XeroClient(
            make_provider(),
            transport=httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectError("down"))),
        ).request("GET", "/Contacts")


def test_a_failed_write_is_retried_only_after_xero_forgets_its_cached_error(
    xero: XeroClient,  # noqa: F811
    connection: dict[str, Any],  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    sandbox.fail_inside_next(500)
    with pytest.raises(RetryableError) as caught:
        xero.request("PUT", "/Contacts", json=ACME, idempotency_key="k-500")
    # Xero caches the error under the key: the same key inside 6 minutes gets it again …
    with pytest.raises(RetryableError):
        xero.request("PUT", "/Contacts", json=ACME, idempotency_key="k-500")
    # … so the client asks for a delay past the key's lifetime, after which the write goes through.
    assert caught.value.delay_seconds > 360
    clock.advance(caught.value.delay_seconds)
    xero.request("PUT", "/Contacts", json=ACME, idempotency_key="k-500")
    assert len(sandbox.contacts(connection["tenant_id"])) == 1


def test_validation_failures_are_permanent_with_xeros_messages(
    xero: XeroClient,  # noqa: F811
    recorder: Recorded,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
) -> None:
    made = xero.request("PUT", "/Contacts", json=ACME, idempotency_key="k1")["Contacts"][0]
    with pytest.raises(PermanentError) as caught:
        xero.request(
            "POST", f"/Contacts/{made['ContactID']}", json={"Contacts": [{"Name": ""}]}, idempotency_key="k2"
        )
    assert caught.value.messages == ["Contact Name cannot be empty."]
    assert (caught.value.status, caught.value.service) == (400, "xero")
    assert "Contact Name cannot be empty." in str(caught.value)

    answer = xero.request("PUT", "/Contacts", json={"Contacts": [{"Name": "acme ltd"}]}, idempotency_key="k3")
    error = element_errors(answer, "Contacts")
    assert error is not None and error.messages == [
        "The contact name acme ltd is already assigned to another contact. "
        "The contact name must be unique across all active contacts."
    ]
    with pytest.raises(PermanentError):
        checked_elements(answer, "Contacts")
    with pytest.raises(XeroNotFound):
        xero.request("GET", "/Invoices/6f9619ff-8b86-d011-b42d-00cf4fc964ff")
    assert leaked(str(caught.value) + recorder.text(), sandbox) == []
    assert validate_requests(recorder.records()) == []


def test_xero_messages_reads_every_error_shape() -> None:
    assert xero_messages(
        {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired"}
    ) == ["TokenExpired"]
    assert xero_messages({"ErrorNumber": 17, "Type": "NoDataProcessedException", "Message": "No data"}) == [
        "No data"
    ]
    assert xero_messages(
        {"message": "The request is invalid.", "modelState": {"name": ["The name field is required."]}}
    ) == ["The request is invalid.", "name: The name field is required."]
    assert xero_messages({"error": "invalid_grant"}) == ["invalid_grant"]
    assert xero_messages("<html>Bad gateway</html>") == ["<html>Bad gateway</html>"]


def test_build_xero_client_uses_the_configured_secret(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    client = build_xero_client()
    assert client.tokens.secret_id == get_settings().xero_secret_id == aws.secret_id
    assert client.request("GET", "/Contacts")["Contacts"] == []


def test_dates() -> None:
    assert parse_xero_date("/Date(1551399321043+0000)/") == "2019-03-01T00:15:21.043+00:00"
    assert parse_xero_date("/Date(1551399321000+1300)/") == "2019-03-01T13:15:21+13:00"
    assert parse_xero_date("/Date(1551399321000-0500)/", date_only=True) == "2019-02-28"
    assert parse_xero_date("/Date(-62135596800000+0000)/") == "0001-01-01T00:00:00+00:00"
    assert parse_xero_date("/Date(1573755038314)/") == "2019-11-14T18:10:38.314+00:00"
    assert parse_xero_date("2019-03-11T00:00:00") == "2019-03-11T00:00:00"
    assert parse_xero_date("2019-03-11T00:00:00", date_only=True) == "2019-03-11"
    assert parse_xero_date(None) is None and parse_xero_date("") is None
    with pytest.raises(ValueError):
        parse_xero_date("yesterday")
    assert parse_xero_date(to_xero_date(parse_date("2026-01-31")), date_only=True) == "2026-01-31"


def parse_date(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)
