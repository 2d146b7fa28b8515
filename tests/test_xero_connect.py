"""Connecting Xero: the ticket-protected OAuth routes, custom connections, and `connect xero --local`.

The Xero sandbox plays Xero (token endpoint with single-use codes, /connections); the consent screen
is `sandbox.issue_code(...)`, called with what the authorize URL asked for.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from argparse import Namespace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from clientary_xero.local.environment import FakeLambdaContext, LocalEnvironment, load_handler
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.usecases import xero_connect_cli
from clientary_xero.usecases.xero_connect import issue_ticket

HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
WORKFLOW = (
    Path(__file__).resolve().parents[1]
    / "shared"
    / "clientary_xero"
    / "local"
    / "samples"
    / "invoice_to_xero.yaml"
)


def get(
    path: str,
    query: dict[str, str],
    *,
    cookies: list[str] | None = None,
    cookie_header: str | None = None,
    host: str = HOST,
) -> dict[str, Any]:
    """GET <path>?<query> through the connect handler, as the HTTP API delivers it (payload 2.0:
    the browser's cookies in ``event["cookies"]``; ``cookie_header`` puts them in a header instead)."""
    headers = {"host": host, "user-agent": "Mozilla/5.0"}
    if cookie_header is not None:
        headers["cookie"] = cookie_header
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in query.items()),
        "queryStringParameters": query or None,
        "headers": headers,
        "isBase64Encoded": False,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "x",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": f"GET {path}",
            "stage": "$default",
            "time": "25/Nov/2025:12:41:12 +0000",
            "timeEpoch": 1764074472000,
        },
    }
    if cookies:
        event["cookies"] = cookies
    result: dict[str, Any] = load_handler("xero_connect").lambda_handler(
        event, FakeLambdaContext("xero_connect")
    )
    return result


class Browser:
    """A cookie jar that behaves like a browser's for these routes (path match, Max-Age=0 deletes)."""

    def __init__(self) -> None:
        self.jar: dict[str, tuple[str, str]] = {}  # name -> (value, path)
        self.set_cookies: list[str] = []

    def get(self, path: str, query: dict[str, str], *, host: str = HOST) -> dict[str, Any]:
        sent = [
            f"{n}={v}" for n, (v, p) in self.jar.items() if path == p or path.startswith(p.rstrip("/") + "/")
        ]
        response = get(path, query, cookies=sent, host=host)
        for line in response.get("cookies") or []:
            self.set_cookies.append(line)
            pair, *attributes = [part.strip() for part in line.split(";")]
            name, _, value = pair.partition("=")
            attrs = {k.lower(): v for k, _, v in (a.partition("=") for a in attributes)}
            if attrs.get("max-age") == "0":
                self.jar.pop(name, None)
            else:
                self.jar[name] = (value, attrs.get("path", "/"))
        return response


def secret(env: LocalEnvironment) -> dict[str, Any]:
    assert env.resources is not None
    return SecretStore().read(env.resources.xero_secret_id)


def start(env: LocalEnvironment, browser: Browser | None = None) -> dict[str, list[str]]:
    """Ticket → connect (in ``browser``) → the authorize URL's query."""
    response = (browser or Browser()).get("/oauth/xero/connect", {"ticket": issue_ticket(env.state)})
    assert response["statusCode"] == 302, response["body"]
    location = response["headers"]["location"]
    assert location.startswith("https://login.xero.com/identity/connect/authorize?")
    return parse_qs(urlsplit(location).query)


def consent(env: LocalEnvironment, query: dict[str, list[str]], tenants: list[str]) -> str:
    return str(
        env.xero.issue_code(
            query["client_id"][0],
            tenant_ids=tenants,
            redirect_uri=query["redirect_uri"][0],
            scopes=query["scope"][0],
        )
    )


def choice_links(page: str) -> list[dict[str, str]]:
    links = [
        parse_qs(urlsplit(href.split("'")[0].replace("&amp;", "&")).query)
        for href in page.split("href='")[1:]
    ]
    return [{k: v[0] for k, v in link.items()} for link in links]


@pytest.fixture
def env(local_env: LocalEnvironment) -> LocalEnvironment:
    return local_env


# ------------------------------------------------------------------------------ the ticket
def test_connect_without_a_ticket_is_403_and_stores_no_state(env: LocalEnvironment) -> None:
    response = get("/oauth/xero/connect", {})
    assert response["statusCode"] == 403
    assert "clientary-xero connect xero --stack" in response["body"]
    assert "location" not in response["headers"]


def test_an_unknown_ticket_is_403(env: LocalEnvironment) -> None:
    assert get("/oauth/xero/connect", {"ticket": "guessed-ticket"})["statusCode"] == 403


def test_a_ticket_works_once(env: LocalEnvironment) -> None:
    ticket = issue_ticket(env.state)
    assert get("/oauth/xero/connect", {"ticket": ticket})["statusCode"] == 302
    assert get("/oauth/xero/connect", {"ticket": ticket})["statusCode"] == 403


def test_an_expired_ticket_is_403(env: LocalEnvironment) -> None:
    ticket = issue_ticket(env.state, ttl_seconds=-1)  # TTL deletion is lazy: the code checks the time
    assert get("/oauth/xero/connect", {"ticket": ticket})["statusCode"] == 403


def test_the_ticket_is_stored_only_as_its_hash(env: LocalEnvironment) -> None:
    import boto3

    ticket = issue_ticket(env.state)
    assert env.resources is not None
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=env.resources.state_table)[
        "Items"
    ]
    assert ticket not in json.dumps(items)
    assert any(i["pk"]["S"].startswith("XEROCONNECT#") for i in items)


def test_connect_asks_for_granular_scopes_and_the_callback_on_the_api_host(env: LocalEnvironment) -> None:
    query = start(env)
    scopes = query["scope"][0].split()
    assert "offline_access" in scopes and "accounting.invoices" in scopes and "accounting.payments" in scopes
    assert "accounting.transactions" not in scopes and "accounting.reports.read" not in scopes
    assert query["redirect_uri"] == [f"https://{HOST}/oauth/xero/callback"]
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [secret(env)["client_id"]]
    assert len(query["state"][0]) >= 32


def test_broad_scopes_are_a_setting(env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch) -> None:
    from clientary_xero.settings import reset_settings

    monkeypatch.setenv("XERO_SCOPES", "offline_access accounting.transactions accounting.contacts")
    reset_settings()
    assert start(env)["scope"] == ["offline_access accounting.transactions accounting.contacts"]


def test_a_custom_domain_redirect_first_sends_the_browser_there_with_the_ticket_untouched(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cookie must be set on the host the callback goes to, or every callback would be refused."""
    from clientary_xero.settings import reset_settings

    monkeypatch.setenv("XERO_REDIRECT_URI", "https://xero.example.com/oauth/xero/callback")
    reset_settings()
    browser = Browser()
    ticket = issue_ticket(env.state)
    hop = browser.get("/oauth/xero/connect", {"ticket": ticket})
    assert hop["statusCode"] == 302 and "cookies" not in hop
    assert hop["headers"]["location"] == f"https://xero.example.com/oauth/xero/connect?ticket={ticket}"
    query = start_at(browser, "xero.example.com", ticket)
    assert query["redirect_uri"] == ["https://xero.example.com/oauth/xero/callback"]
    tenant = env.xero.create_tenant("Custom Domain Org")
    response = browser.get(
        "/oauth/xero/callback",
        {"code": consent(env, query, [tenant]), "state": query["state"][0]},
        host="xero.example.com",
    )
    assert response["statusCode"] == 200 and secret(env)["tenant_id"] == tenant


def start_at(browser: Browser, host: str, ticket: str) -> dict[str, list[str]]:
    response = browser.get("/oauth/xero/connect", {"ticket": ticket}, host=host)
    assert response["statusCode"] == 302, response["body"]
    return parse_qs(urlsplit(response["headers"]["location"]).query)


def test_connect_needs_the_app_credentials_in_the_secret_and_a_409_leaves_the_ticket_usable(
    env: LocalEnvironment,
) -> None:
    assert env.resources is not None
    configured = secret(env)
    SecretStore().write(env.resources.xero_secret_id, {"auth": "oauth", "client_id": "", "client_secret": ""})
    ticket = issue_ticket(env.state)
    response = get("/oauth/xero/connect", {"ticket": ticket})
    assert response["statusCode"] == 409
    assert "client_id and client_secret" in response["body"] and "cookies" not in response
    # The administrator stores the app's credentials and opens the same link again.
    SecretStore().write(env.resources.xero_secret_id, configured)
    assert get("/oauth/xero/connect", {"ticket": ticket})["statusCode"] == 302
    assert get("/oauth/xero/connect", {"ticket": ticket})["statusCode"] == 403  # and then it is used


def test_without_a_ticket_the_app_configuration_is_not_revealed(env: LocalEnvironment) -> None:
    assert env.resources is not None
    SecretStore().write(env.resources.xero_secret_id, {"auth": "oauth", "client_id": "", "client_secret": ""})
    assert get("/oauth/xero/connect", {"ticket": "guessed"})["statusCode"] == 403


# ------------------------------------------------------------------------------ the browser binding
def test_connect_binds_the_flow_to_the_browser_with_a_secure_httponly_lax_cookie(
    env: LocalEnvironment,
) -> None:
    browser = Browser()
    start(env, browser)
    (line,) = browser.set_cookies
    parts = [p.strip() for p in line.split(";")]
    name, _, value = parts[0].partition("=")
    assert name == "__Secure-clientary-xero-connect" and len(value) >= 40
    assert set(parts[1:]) == {"Path=/oauth/xero", "Max-Age=600", "Secure", "HttpOnly", "SameSite=Lax"}
    import boto3

    assert env.resources is not None
    items = json.dumps(
        boto3.client("dynamodb", region_name="us-east-1").scan(TableName=env.resources.state_table)["Items"]
    )
    assert value not in items  # only its hash is stored


def test_a_callback_in_a_browser_without_the_cookie_is_refused_writes_nothing_and_burns_nothing(
    env: LocalEnvironment,
) -> None:
    """A leaked callback (or authorize) link opened elsewhere: no cookie, no connection."""
    victim = Browser()
    query = start(env, victim)
    code = consent(env, query, [env.xero.create_tenant("Attacker Org")])
    before = secret(env)
    refused = Browser().get("/oauth/xero/callback", {"code": code, "state": query["state"][0]})
    assert refused["statusCode"] == 403 and "browser that opened the connect link" in refused["body"]
    assert secret(env) == before
    assert env.xero.grant_counts["authorization_code"] == 0  # the code was not even exchanged
    # The state was not consumed: the browser that started the flow still finishes it.
    tenant = env.xero.create_tenant("Our Org")
    done = victim.get(
        "/oauth/xero/callback", {"code": consent(env, query, [tenant]), "state": query["state"][0]}
    )
    assert done["statusCode"] == 200 and secret(env)["tenant_id"] == tenant


def test_a_callback_in_another_browser_with_its_own_cookie_cannot_use_or_burn_the_state(
    env: LocalEnvironment,
) -> None:
    victim, attacker = Browser(), Browser()
    query = start(env, victim)
    start(env, attacker)  # the attacker has a connect cookie of their own (another flow)
    code = consent(env, query, [env.xero.create_tenant("Attacker Org")])
    before = secret(env)
    refused = attacker.get("/oauth/xero/callback", {"code": code, "state": query["state"][0]})
    assert refused["statusCode"] == 400 and "another browser" in refused["body"]
    assert secret(env) == before and env.xero.grant_counts["authorization_code"] == 0
    tenant = env.xero.create_tenant("Our Org")
    done = victim.get(
        "/oauth/xero/callback", {"code": consent(env, query, [tenant]), "state": query["state"][0]}
    )
    assert done["statusCode"] == 200 and secret(env)["tenant_id"] == tenant
    # Done: the cookie is cleared, and the state cannot be used a second time.
    assert "__Secure-clientary-xero-connect" not in victim.jar
    again = get(
        "/oauth/xero/callback",
        {"code": consent(env, query, [tenant]), "state": query["state"][0]},
        cookies=[victim.set_cookies[0].split(";")[0]],
    )
    assert again["statusCode"] == 400


def test_the_cookie_is_read_from_a_cookie_header_as_well(env: LocalEnvironment) -> None:
    browser = Browser()
    query = start(env, browser)
    ((name, (value, _)),) = browser.jar.items()
    tenant = env.xero.create_tenant("Header Org")
    response = get(
        "/oauth/xero/callback",
        {"code": consent(env, query, [tenant]), "state": query["state"][0]},
        cookie_header=f"other=1; {name}={value}",
    )
    assert response["statusCode"] == 200 and secret(env)["tenant_id"] == tenant


def test_parse_cookies_is_lenient_and_keeps_the_first_of_a_name() -> None:
    from clientary_xero.usecases.xero_connect import parse_cookies

    assert parse_cookies(["a=1", 'b="2"; a=3', "junk; =x; c"]) == {"a": "1", "b": "2"}


# ------------------------------------------------------------------------------ the callback
def test_one_organisation_is_chosen_and_the_tokens_land_in_the_secret(
    env: LocalEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger too: botocore's DEBUG would print SecretString
    before = secret(env)
    tenant = env.xero.create_tenant("Northwind Traders")
    browser = Browser()
    query = start(env, browser)
    response = browser.get(
        "/oauth/xero/callback", {"code": consent(env, query, [tenant]), "state": query["state"][0]}
    )
    assert response["statusCode"] == 200
    assert "Connected to Northwind Traders" in response["body"]
    assert response["headers"]["cache-control"] == "no-store"
    assert response["headers"]["referrer-policy"] == "no-referrer"

    after = secret(env)
    assert after["tenant_id"] == tenant
    assert (after["client_id"], after["client_secret"]) == (before["client_id"], before["client_secret"])
    assert after["auth"] == "oauth" and after["refresh_token"] != before["refresh_token"]
    assert after["expires_at"] > time.time() + 1700
    assert "accounting.invoices" in after["scopes"]

    # The new connection works: the action Lambda's client reads Northwind's organisation.
    from clientary_xero.connectors.xero.client import build_xero_client

    organisation = build_xero_client().request("GET", "Organisation")["Organisations"][0]
    assert organisation["Name"] == "Northwind Traders"

    leaked = {s for s in env.xero.issued_secrets() if s in response["body"] or s in caplog.text}
    assert leaked == set()


def test_an_unknown_state_is_refused_and_the_code_is_not_spent(env: LocalEnvironment) -> None:
    browser = Browser()
    query = start(env, browser)
    code = consent(env, query, [env.xero.create_tenant("Org")])
    before = secret(env)
    response = browser.get("/oauth/xero/callback", {"code": code, "state": "forged-state"})
    assert response["statusCode"] == 400 and "unknown, used or expired" in response["body"]
    assert secret(env) == before
    assert env.xero.grant_counts["authorization_code"] == 0


def test_a_state_is_used_once(env: LocalEnvironment) -> None:
    browser = Browser()
    query = start(env, browser)
    cookie = browser.set_cookies[0].split(";")[0]
    tenant = env.xero.create_tenant("Org")
    state = query["state"][0]
    first = get(
        "/oauth/xero/callback", {"code": consent(env, query, [tenant]), "state": state}, cookies=[cookie]
    )
    assert first["statusCode"] == 200
    connected = secret(env)
    again = get(
        "/oauth/xero/callback", {"code": consent(env, query, [tenant]), "state": state}, cookies=[cookie]
    )
    assert again["statusCode"] == 400
    assert secret(env) == connected


def test_an_expired_state_is_refused(env: LocalEnvironment) -> None:
    import hashlib

    env.state.put_item_if_absent(
        "OAUTH#old-state",
        "BROWSER#" + hashlib.sha256(b"the-browser").hexdigest(),
        {"redirect_uri": f"https://{HOST}/oauth/xero/callback"},
        ttl_seconds=-1,
    )
    response = get(
        "/oauth/xero/callback",
        {"code": "whatever", "state": "old-state"},
        cookies=["__Secure-clientary-xero-connect=the-browser"],
    )
    assert response["statusCode"] == 400


def test_a_refused_consent_is_reported_and_nothing_is_stored(env: LocalEnvironment) -> None:
    browser = Browser()
    query = start(env, browser)
    before = secret(env)
    response = browser.get("/oauth/xero/callback", {"error": "access_denied", "state": query["state"][0]})
    assert response["statusCode"] == 400 and "access_denied" in response["body"]
    assert secret(env) == before


def test_a_spent_code_is_a_clear_error(env: LocalEnvironment) -> None:
    browser = Browser()
    query = start(env, browser)
    code = consent(env, query, [env.xero.create_tenant("Org")])
    env.xero.handle_request(  # someone (a double click) exchanged the code first
        httpx.Request(
            "POST",
            "https://identity.xero.com/connect/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": query["redirect_uri"][0]},
            headers={
                "authorization": httpx.BasicAuth(
                    secret(env)["client_id"], secret(env)["client_secret"]
                )._auth_header
            },
        )
    )
    response = browser.get("/oauth/xero/callback", {"code": code, "state": query["state"][0]})
    assert response["statusCode"] == 400 and "invalid_grant" in response["body"]


# ------------------------------------------------------------------------------ several organisations
def several(env: LocalEnvironment, browser: Browser, tenants: list[str]) -> dict[str, Any]:
    query = start(env, browser)
    response = browser.get(
        "/oauth/xero/callback", {"code": consent(env, query, tenants), "state": query["state"][0]}
    )
    assert response["statusCode"] == 200, response["body"]
    return response


def test_several_organisations_are_listed_and_the_choice_is_stored(env: LocalEnvironment) -> None:
    before = secret(env)
    first, second = env.xero.create_tenant("Alpha Ltd"), env.xero.create_tenant("Beta <b>Ltd</b>")
    browser = Browser()
    page = several(env, browser, [first, second])["body"]
    assert "Choose the Xero organisation" in page
    assert "Alpha Ltd" in page and "Beta &lt;b&gt;Ltd&lt;/b&gt;" in page  # names are escaped
    waiting = secret(env)
    # Until the choice the live connection is the previous one; the new tokens wait under "pending".
    assert {k: v for k, v in waiting.items() if k != "pending"} == before
    assert waiting["pending"]["refresh_token"] != before["refresh_token"]

    beta = next(link for link in choice_links(page) if link["tenant"] == second)
    chosen = browser.get("/oauth/xero/choose", beta)
    assert chosen["statusCode"] == 200 and "Connected to Beta" in chosen["body"]
    after = secret(env)
    assert after["tenant_id"] == second and "pending" not in after
    assert after["refresh_token"] == waiting["pending"]["refresh_token"]
    assert after["access_token"] == waiting["pending"]["access_token"]
    assert (after["client_id"], after["client_secret"]) == (before["client_id"], before["client_secret"])
    assert "__Secure-clientary-xero-connect" not in browser.jar

    # The choice token works once, and only for the organisations offered.
    assert browser.get("/oauth/xero/choose", beta)["statusCode"] in (400, 403)
    assert (
        get("/oauth/xero/choose", beta, cookies=[browser.set_cookies[1].split(";")[0]])["statusCode"] == 400
    )
    assert secret(env) == after


def test_a_choice_for_an_organisation_not_offered_is_refused(env: LocalEnvironment) -> None:
    before = secret(env)
    browser = Browser()
    page = several(env, browser, [env.xero.create_tenant("Alpha"), env.xero.create_tenant("Beta")])["body"]
    choice = choice_links(page)[0]["choice"]
    response = browser.get(
        "/oauth/xero/choose", {"choice": choice, "tenant": env.xero.create_tenant("Gamma")}
    )
    assert response["statusCode"] == 400
    assert secret(env)["tenant_id"] == before["tenant_id"]


def test_a_leaked_choice_link_is_refused_in_another_browser_and_still_works_in_the_right_one(
    env: LocalEnvironment,
) -> None:
    before = secret(env)
    first, second = env.xero.create_tenant("Alpha"), env.xero.create_tenant("Beta")
    browser = Browser()
    page = several(env, browser, [first, second])["body"]
    link = next(link for link in choice_links(page) if link["tenant"] == second)
    waiting = secret(env)

    no_cookie = get("/oauth/xero/choose", link)
    other = Browser()
    start(env, other)  # a connect cookie of another flow
    wrong_cookie = other.get("/oauth/xero/choose", link)
    assert no_cookie["statusCode"] == 403 and wrong_cookie["statusCode"] == 400
    assert secret(env) == waiting and secret(env)["tenant_id"] == before["tenant_id"]

    assert browser.get("/oauth/xero/choose", link)["statusCode"] == 200
    assert secret(env)["tenant_id"] == second


def test_several_organisations_keep_the_previous_connection_working_until_the_choice(
    env: LocalEnvironment,
) -> None:
    """A consent covering two other organisations must not stop the Xero steps of the current one."""
    from clientary_xero.settings import reset_settings
    from clientary_xero.usecases.steps import reset_runner
    from clientary_xero.workflows.loader import read_document

    reset_settings()
    reset_runner()
    env.put_workflow(read_document(WORKFLOW))
    previous = secret(env)
    alpha, beta = env.xero.create_tenant("Alpha"), env.xero.create_tenant("Beta")
    browser = Browser()
    page = several(env, browser, [alpha, beta])
    assert "keeps working with the organisation connected before" in page["body"]

    # A Xero step runs meanwhile, after the live access token expired: the previous connection's
    # refresh token is used (rotated), the invoice lands in the previous organisation.
    env.xero.advance(3600)
    client = env.clientary.seed_client("Acme Builders")
    invoice = env.clientary.add_invoice(
        client["id"], [{"title": "Survey", "quantity": 2, "price": 95.0}], status=1
    )
    assert env.push("clientary.new_invoice", invoice["id"])["statusCode"] == 202
    env.drain()
    (run,) = env.state.list_runs()
    assert run["status"] == "SUCCEEDED", run
    assert [i["InvoiceNumber"] for i in env.xero.invoices(previous["tenant_id"])] == [
        f"CL-{invoice['number']}"
    ]
    assert env.xero.invoices(alpha) == [] and env.xero.invoices(beta) == []
    refreshed = secret(env)
    assert refreshed["tenant_id"] == previous["tenant_id"]
    assert refreshed["refresh_token"] != previous["refresh_token"]  # the old set was refreshed …
    waiting = refreshed["pending"]
    assert waiting["tenants"] == [
        {"tenantId": alpha, "tenantName": "Alpha"},
        {"tenantId": beta, "tenantName": "Beta"},
    ]

    # … and the choice still finds its pending token set, untouched by the refresh.
    link = next(link for link in choice_links(page["body"]) if link["tenant"] == alpha)
    assert browser.get("/oauth/xero/choose", link)["statusCode"] == 200
    chosen = secret(env)
    assert chosen["tenant_id"] == alpha and chosen["refresh_token"] == waiting["refresh_token"]
    from clientary_xero.connectors.xero.client import build_xero_client

    assert build_xero_client().request("GET", "Organisation")["Organisations"][0]["Name"] == "Alpha"


def test_a_later_single_organisation_connect_supersedes_an_open_choice(env: LocalEnvironment) -> None:
    first, second = env.xero.create_tenant("Alpha"), env.xero.create_tenant("Beta")
    chooser = Browser()
    page = several(env, chooser, [first, second])["body"]
    browser = Browser()
    query = start(env, browser)
    only = env.xero.create_tenant("Gamma")
    assert (
        browser.get(
            "/oauth/xero/callback", {"code": consent(env, query, [only]), "state": query["state"][0]}
        )["statusCode"]
        == 200
    )
    connected = secret(env)
    assert connected["tenant_id"] == only and "pending" not in connected
    late = chooser.get("/oauth/xero/choose", choice_links(page)[0])
    assert late["statusCode"] == 409 and "newer connection" in late["body"]
    assert secret(env) == connected


def test_reconnecting_several_organisations_keeps_the_one_in_use(env: LocalEnvironment) -> None:
    before = secret(env)
    other = env.xero.create_tenant("Other Org")
    page = several(env, Browser(), [before["tenant_id"], other])
    assert "Currently used" in page["body"]
    assert {k: v for k, v in secret(env).items() if k != "pending"} == before


# ------------------------------------------------------------------------------ custom connections
def custom_args(tmp_path: Path, **extra: Any) -> Namespace:
    values = {
        "client_id": "custom-app",
        "scopes": None,
        "secrets": str(tmp_path / "secrets.json"),
        "stack": "clientary-xero",
        "custom": True,
        "local": True,
        **extra,
    }
    return Namespace(**values)


def test_a_custom_connection_is_checked_then_stored(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = env.xero.create_tenant("Custom Org Pty")
    env.xero.register_app("custom-app", "custom-secret", custom_tenant_id=tenant)
    monkeypatch.setenv("XERO_CLIENT_SECRET", "custom-secret")
    assert env.resources is not None
    outputs = {
        "XeroConnectionSecretArn": env.resources.xero_secret_id,
        "StateTableName": env.resources.state_table,
    }
    assert xero_connect_cli.custom_stack(custom_args(Path("."), local=False), outputs) == 0
    stored = secret(env)
    assert stored["auth"] == "client_credentials" and stored["client_id"] == "custom-app"
    assert stored["access_token"] and stored["refresh_token"] == ""
    assert "offline_access" not in stored["scopes"].split()

    # The action Lambda's client works with it (no tenant header needed) and renews it itself.
    from clientary_xero.connectors.xero.client import build_xero_client

    env.xero.advance(3600)
    assert build_xero_client().request("GET", "Organisation")["Organisations"][0]["Name"] == "Custom Org Pty"
    assert env.xero.grant_counts["client_credentials"] == 2


def test_wrong_custom_credentials_are_refused_and_nothing_is_stored(
    env: LocalEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = env.xero.create_tenant("Custom Org")
    env.xero.register_app("custom-app", "custom-secret", custom_tenant_id=tenant)
    monkeypatch.setenv("XERO_CLIENT_SECRET", "wrong")
    from clientary_xero.errors import PermanentError

    with pytest.raises(PermanentError, match="invalid_client"):
        xero_connect_cli.custom_local(custom_args(tmp_path))
    assert not (tmp_path / "secrets.json").exists()


def test_cli_custom_local_writes_the_secrets_file(
    env: LocalEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.local.cli import main

    env.xero.register_app("custom-app", "custom-secret", custom_tenant_id=env.xero.create_tenant("Local Org"))
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"clientary": {"subdomain": "acme", "api_token": "t"}}))
    monkeypatch.setenv("XERO_CLIENT_SECRET", "custom-secret")
    code = main(
        ["connect", "xero", "--custom", "--local", "--secrets", str(path), "--client-id", "custom-app"]
    )
    assert code == 0
    written = json.loads(path.read_text())
    assert written["clientary"] == {"subdomain": "acme", "api_token": "t"}
    assert written["xero"]["auth"] == "client_credentials"
    assert path.stat().st_mode & 0o777 == 0o600
    out = capsys.readouterr().out
    assert "Local Org" in out and "custom-secret" not in out and written["xero"]["access_token"] not in out


# ------------------------------------------------------------------------------ --local (loopback)
def test_local_connect_receives_the_code_on_loopback_and_writes_the_secrets_file(
    env: LocalEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = secret(env)
    tenant = env.xero.create_tenant("Loopback Org")
    monkeypatch.setenv("XERO_CLIENT_SECRET", app["client_secret"])
    seen: dict[str, Any] = {}

    def browser(url: str) -> None:
        """The user consenting: Xero redirects the browser to the loopback callback."""
        query = parse_qs(urlsplit(url).query)
        seen.update(query)
        code = consent(env, query, [tenant])
        redirect = query["redirect_uri"][0]
        with httpx.Client() as plain:  # a real loopback request, not through the sandboxes
            answer = plain.get(redirect, params={"code": code, "state": query["state"][0]})
        seen["answer"] = answer.status_code

    args = Namespace(
        client_id=app["client_id"],
        scopes=None,
        secrets=str(tmp_path / "s.json"),
        port=0,
        tenant=None,
        no_browser=True,
        timeout=10.0,
    )
    assert xero_connect_cli.oauth_local(args, open_browser=browser) == 0
    assert seen["redirect_uri"][0].startswith("http://localhost:") and seen["redirect_uri"][0].endswith(
        "/callback"
    )
    assert seen["answer"] == 200
    written = json.loads((tmp_path / "s.json").read_text())["xero"]
    assert written["tenant_id"] == tenant and written["auth"] == "oauth" and written["refresh_token"]
    out = capsys.readouterr().out
    assert "Loopback Org" in out and written["refresh_token"] not in out


def test_local_connect_refuses_a_callback_with_another_state(
    env: LocalEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.errors import PermanentError

    app = secret(env)
    monkeypatch.setenv("XERO_CLIENT_SECRET", app["client_secret"])

    def browser(url: str) -> None:
        query = parse_qs(urlsplit(url).query)
        code = consent(env, query, [env.xero.create_tenant("X")])
        threading.Thread(
            target=lambda: httpx.get(query["redirect_uri"][0], params={"code": code, "state": "attacker"})
        ).start()

    args = Namespace(
        client_id=app["client_id"],
        scopes=None,
        secrets=str(tmp_path / "s.json"),
        port=0,
        tenant=None,
        no_browser=True,
        timeout=10.0,
    )
    with pytest.raises(PermanentError, match="state does not match"):
        xero_connect_cli.oauth_local(args, open_browser=browser)
    assert not (tmp_path / "s.json").exists()
    assert env.xero.grant_counts["authorization_code"] == 0


def test_local_connect_with_several_organisations_asks_which(
    env: LocalEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = secret(env)
    a, b = env.xero.create_tenant("A Org"), env.xero.create_tenant("B Org")
    monkeypatch.setenv("XERO_CLIENT_SECRET", app["client_secret"])
    offered: list[str] = []

    def browser(url: str) -> None:
        query = parse_qs(urlsplit(url).query)
        httpx.get(
            query["redirect_uri"][0], params={"code": consent(env, query, [a, b]), "state": query["state"][0]}
        )

    def choose(tenants: list[dict[str, Any]]) -> str:
        offered.extend(t["tenantName"] for t in tenants)
        return str(tenants[1]["tenantId"])

    args = Namespace(
        client_id=app["client_id"],
        scopes=None,
        secrets=str(tmp_path / "s.json"),
        port=0,
        tenant=None,
        no_browser=True,
        timeout=10.0,
    )
    assert xero_connect_cli.oauth_local(args, open_browser=browser, choose=choose) == 0
    assert offered == ["A Org", "B Org"]
    assert json.loads((tmp_path / "s.json").read_text())["xero"]["tenant_id"] == b


def test_cli_connect_xero_stack_prints_a_link_that_works_once(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from clientary_xero.local.cli import main

    assert env.resources is not None
    outputs = {
        "WebhookApiUrl": f"https://{HOST}/",
        "StateTableName": env.resources.state_table,
        "XeroConnectionSecretArn": env.resources.xero_secret_id,
        "XeroCallbackUrl": f"https://{HOST}/oauth/xero/callback",
    }
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="my-stack", TemplateBody=json.dumps(template)
    )
    assert main(["connect", "xero", "--stack", "my-stack"]) == 0
    out = capsys.readouterr().out
    link = next(line.strip() for line in out.splitlines() if "/oauth/xero/connect?ticket=" in line)
    assert link.startswith(f"https://{HOST}/oauth/xero/connect?ticket=")
    ticket = parse_qs(urlsplit(link).query)["ticket"][0]
    assert get("/oauth/xero/connect", {"ticket": ticket})["statusCode"] == 302
    assert get("/oauth/xero/connect", {"ticket": ticket})["statusCode"] == 403


def test_cli_connect_xero_without_a_stack_says_so(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.local.cli import main

    assert main(["connect", "xero", "--stack", "no-such-stack"]) == 1
    assert "there is no stack 'no-such-stack' in us-east-1" in capsys.readouterr().err


# ------------------------------------------------------------------------------ least privilege
def test_every_state_call_of_the_flow_is_allowed_by_the_connect_functions_policy(
    env: LocalEnvironment,
) -> None:
    """The template scopes the public function to its own items: a real run must fit in that scope."""
    from clientary_xero.storage.aws import table
    from tests.test_template import load_template, state_item_allowed

    assert env.resources is not None
    tickets = [issue_ticket(env.state) for _ in range(3)]  # the administrator's CLI, not the function
    configured = secret(env)
    calls: list[tuple[str, str]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        key = params.get("Key") or params.get("Item") or {}
        pk = key.get("pk")
        calls.append((model.name, str(pk.get("S", "") if isinstance(pk, dict) else pk)))

    events = table(env.resources.state_table).meta.client.meta.events
    events.register("before-parameter-build.dynamodb", record)
    try:
        SecretStore().write(
            env.resources.xero_secret_id, {"auth": "oauth", "client_id": "", "client_secret": ""}
        )
        assert get("/oauth/xero/connect", {"ticket": tickets[0]})["statusCode"] == 409
        SecretStore().write(env.resources.xero_secret_id, configured)
        assert get("/oauth/xero/connect", {"ticket": "guessed"})["statusCode"] == 403
        browser = Browser()
        query = parse_qs(
            urlsplit(browser.get("/oauth/xero/connect", {"ticket": tickets[1]})["headers"]["location"]).query
        )
        tenants = [env.xero.create_tenant("A"), env.xero.create_tenant("B")]
        page = browser.get(
            "/oauth/xero/callback", {"code": consent(env, query, tenants), "state": query["state"][0]}
        )
        assert Browser().get("/oauth/xero/choose", choice_links(page["body"])[0])["statusCode"] == 403
        assert browser.get("/oauth/xero/choose", choice_links(page["body"])[0])["statusCode"] == 200
        one = Browser()
        query = parse_qs(
            urlsplit(one.get("/oauth/xero/connect", {"ticket": tickets[2]})["headers"]["location"]).query
        )
        code = consent(env, query, [tenants[1]])
        assert (
            one.get("/oauth/xero/callback", {"code": code, "state": query["state"][0]})["statusCode"] == 200
        )
    finally:
        events.unregister("before-parameter-build.dynamodb", record)

    template = load_template()
    assert {name for name, _ in calls} == {"GetItem", "PutItem", "DeleteItem"}
    refused = [
        (name, pk) for name, pk in calls if not state_item_allowed(template, "XeroConnectFunction", name, pk)
    ]
    assert refused == []
