# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
"""Xero's answers where no schema shows them: the plain-text 404, the 429 of the in-flight limit
(which Xero names no value for), and the dates of ``GET /Connections`` — in the sandbox and as the
product's client reads them."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from clientary_xero.connectors.xero.client import XeroClient, XeroNotFound
from clientary_xero.errors import RetryableError
from clientary_xero.local.xero_sandbox import XeroSandbox
from tests.conftest_xero import (  # noqa: F401
    AwsEnv,
    FakeClock,
    ProviderFactory,
    Recorded,
    aws,
    clock,
    connection,
    make_provider,
    recorder,
    sandbox,
    xero,
)
from tests.xero_contract import validate_response

GUID = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
NOT_FOUND = "The resource you're looking for cannot be found"


def test_an_unknown_id_is_xeros_plain_text_404_and_the_client_says_not_found(
    sandbox: XeroSandbox, connection: dict[str, Any], xero: XeroClient
) -> None:
    raw = httpx.Client(transport=sandbox).get(
        f"https://api.xero.com/api.xro/2.0/Contacts/{GUID}",
        headers={
            "Authorization": f"Bearer {connection['access_token']}",
            "xero-tenant-id": connection["tenant_id"],
            "Accept": "application/json",
        },
    )
    assert (raw.status_code, raw.text) == (404, NOT_FOUND)
    assert raw.headers["Content-Type"].startswith("text/html")
    with pytest.raises(XeroNotFound) as caught:
        xero.request("GET", f"/Contacts/{GUID}")
    assert caught.value.status == 404 and caught.value.messages == [NOT_FOUND]
    assert str(caught.value) == f"Xero rejected GET /Contacts/{GUID} (404): {NOT_FOUND}"


def test_the_in_flight_limit_answers_a_429_that_names_no_limit(
    sandbox: XeroSandbox,
    connection: dict[str, Any],
    recorder: Recorded,  # routes the client to the sandbox
    make_provider: ProviderFactory,
) -> None:
    client = XeroClient(make_provider())
    sandbox.concurrent_limit = 0  # every call finds the organisation's slots taken
    with pytest.raises(RetryableError) as caught:
        client.request("GET", "/Contacts")
    assert (caught.value.status, caught.value.limit, caught.value.delay_seconds) == (429, None, 5)
    assert "Xero named no limit, perhaps its 5 calls in flight" in str(caught.value)

    # A value Xero does not document is no limit name either; a documented one is kept.
    sandbox.concurrent_limit = 5
    sandbox.fail_next(429, headers={"X-Rate-Limit-Problem": "concurrent"})
    with pytest.raises(RetryableError) as odd:
        client.request("GET", "/Contacts")
    assert (odd.value.limit, odd.value.delay_seconds) == (None, 5)
    assert "a limit Xero calls 'concurrent'" in str(odd.value)
    sandbox.fail_next(429, headers={"X-Rate-Limit-Problem": "appminute", "Retry-After": "12"})
    with pytest.raises(RetryableError) as app:
        client.request("GET", "/Contacts")
    assert (app.value.limit, app.value.delay_seconds) == ("appminute", 12)


def test_connections_keep_the_first_connection_date_across_a_reconnect(
    sandbox: XeroSandbox, clock: FakeClock
) -> None:
    first = sandbox.bootstrap_secret()
    http = httpx.Client(transport=sandbox)
    url = "https://api.xero.com/connections"
    (before,) = http.get(url, headers={"Authorization": f"Bearer {first['access_token']}"}).json()
    clock.advance(86400 + 0.25)
    code = sandbox.issue_code(first["client_id"], tenant_ids=[first["tenant_id"]])
    token = http.post(
        "https://identity.xero.com/connect/token",
        data={"grant_type": "authorization_code", "code": code},
        auth=(first["client_id"], first["client_secret"]),
    ).json()["access_token"]
    answer = http.get(url, headers={"Authorization": f"Bearer {token}"})
    (again,) = answer.json()
    # As identity's example ("2019-12-07T18:46:19.5165400"): UTC, no zone, seven fractional digits.
    shape = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$")
    assert all(shape.match(c[k]) for c in (again, before) for k in ("createdDateUtc", "updatedDateUtc"))
    assert again["createdDateUtc"] == before["createdDateUtc"] == before["updatedDateUtc"]
    assert again["updatedDateUtc"] > again["createdDateUtc"]
    # The schema says format date-time, which needs an offset: Xero's own example breaks it, so
    # only the format problem is allowed (the product reads neither date).
    problems = validate_response("GET", url, 200, answer.json())
    assert all("is not a 'date-time'" in p for p in problems), problems
