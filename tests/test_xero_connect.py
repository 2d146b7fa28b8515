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


def get(path: str, query: dict[str, str]) -> dict[str, Any]:
    """GET <path>?<query> through the connect handler, as the HTTP API delivers it."""
    event = {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in query.items()),
        "queryStringParameters": query or None,
        "headers": {"host": HOST, "user-agent": "Mozilla/5.0"},
        "isBase64Encoded": False,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": HOST,
            "domainPrefix": "a1b2c3d4e5",
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
    result: dict[str, Any] = load_handler("xero_connect").lambda_handler(
        event, FakeLambdaContext("xero_connect")
    )
    return result


def secret(env: LocalEnvironment) -> dict[str, Any]:
    assert env.resources is not None
    return SecretStore().read(env.resources.xero_secret_id)


def start(env: LocalEnvironment) -> dict[str, list[str]]:
    """Ticket → connect → the authorize URL's query."""
    response = get("/oauth/xero/connect", {"ticket": issue_ticket(env.state)})
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


def test_broad_scopes_and_a_custom_redirect_are_settings(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clientary_xero.settings import reset_settings

    monkeypatch.setenv("XERO_SCOPES", "offline_access accounting.transactions accounting.contacts")
    monkeypatch.setenv("XERO_REDIRECT_URI", "https://xero.example.com/oauth/xero/callback")
    reset_settings()
    query = start(env)
    assert query["scope"] == ["offline_access accounting.transactions accounting.contacts"]
    assert query["redirect_uri"] == ["https://xero.example.com/oauth/xero/callback"]


def test_connect_needs_the_app_credentials_in_the_secret(env: LocalEnvironment) -> None:
    assert env.resources is not None
    SecretStore().write(env.resources.xero_secret_id, {"auth": "oauth", "client_id": "", "client_secret": ""})
    response = get("/oauth/xero/connect", {"ticket": issue_ticket(env.state)})
    assert response["statusCode"] == 409
    assert "client_id and client_secret" in response["body"]


# ------------------------------------------------------------------------------ the callback
def test_one_organisation_is_chosen_and_the_tokens_land_in_the_secret(
    env: LocalEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="clientary_xero")  # (botocore DEBUG would print request bodies)
    before = secret(env)
    tenant = env.xero.create_tenant("Northwind Traders")
    query = start(env)
    response = get(
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
    query = start(env)
    code = consent(env, query, [env.xero.create_tenant("Org")])
    before = secret(env)
    response = get("/oauth/xero/callback", {"code": code, "state": "forged-state"})
    assert response["statusCode"] == 400 and "unknown, used or expired" in response["body"]
    assert secret(env) == before
    assert env.xero.grant_counts["authorization_code"] == 0


def test_a_state_is_used_once(env: LocalEnvironment) -> None:
    query = start(env)
    tenant = env.xero.create_tenant("Org")
    assert (
        get("/oauth/xero/callback", {"code": consent(env, query, [tenant]), "state": query["state"][0]})[
            "statusCode"
        ]
        == 200
    )
    connected = secret(env)
    again = get("/oauth/xero/callback", {"code": consent(env, query, [tenant]), "state": query["state"][0]})
    assert again["statusCode"] == 400
    assert secret(env) == connected


def test_an_expired_state_is_refused(env: LocalEnvironment) -> None:
    env.state.put_item_if_absent(
        "OAUTH#old-state", "STATE", {"redirect_uri": f"https://{HOST}/oauth/xero/callback"}, ttl_seconds=-1
    )
    response = get("/oauth/xero/callback", {"code": "whatever", "state": "old-state"})
    assert response["statusCode"] == 400


def test_a_refused_consent_is_reported_and_nothing_is_stored(env: LocalEnvironment) -> None:
    query = start(env)
    before = secret(env)
    response = get("/oauth/xero/callback", {"error": "access_denied", "state": query["state"][0]})
    assert response["statusCode"] == 400 and "access_denied" in response["body"]
    assert secret(env) == before


def test_a_spent_code_is_a_clear_error(env: LocalEnvironment) -> None:
    query = start(env)
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
    response = get("/oauth/xero/callback", {"code": code, "state": query["state"][0]})
    assert response["statusCode"] == 400 and "invalid_grant" in response["body"]


# ------------------------------------------------------------------------------ several organisations
def test_several_organisations_are_listed_and_the_choice_is_stored(env: LocalEnvironment) -> None:
    first, second = env.xero.create_tenant("Alpha Ltd"), env.xero.create_tenant("Beta <b>Ltd</b>")
    query = start(env)
    response = get(
        "/oauth/xero/callback", {"code": consent(env, query, [first, second]), "state": query["state"][0]}
    )
    assert response["statusCode"] == 200
    page = response["body"]
    assert "Choose the Xero organisation" in page
    assert "Alpha Ltd" in page and "Beta &lt;b&gt;Ltd&lt;/b&gt;" in page  # names are escaped
    connected = secret(env)
    assert connected["tenant_id"] == ""  # tokens stored, organisation not chosen yet

    links = [
        parse_qs(urlsplit(href.split("'")[0].replace("&amp;", "&")).query)
        for href in page.split("href='")[1:]
    ]
    links = [{k: v[0] for k, v in link.items()} for link in links]
    beta = next(link for link in links if link["tenant"] == second)
    chosen = get("/oauth/xero/choose", beta)
    assert chosen["statusCode"] == 200 and "Connected to Beta" in chosen["body"]
    assert secret(env)["tenant_id"] == second
    assert secret(env)["refresh_token"] == connected["refresh_token"]

    # The choice token works once, and only for the organisations offered.
    assert get("/oauth/xero/choose", beta)["statusCode"] == 400
    assert secret(env)["tenant_id"] == second


def test_a_choice_for_an_organisation_not_offered_is_refused(env: LocalEnvironment) -> None:
    first, second = env.xero.create_tenant("Alpha"), env.xero.create_tenant("Beta")
    query = start(env)
    page = get(
        "/oauth/xero/callback", {"code": consent(env, query, [first, second]), "state": query["state"][0]}
    )["body"]
    choice = parse_qs(urlsplit(page.split("href='")[1].split("'")[0].replace("&amp;", "&")).query)["choice"][
        0
    ]
    response = get("/oauth/xero/choose", {"choice": choice, "tenant": env.xero.create_tenant("Gamma")})
    assert response["statusCode"] == 400
    assert secret(env)["tenant_id"] == ""


def test_reconnecting_several_organisations_keeps_the_one_in_use(env: LocalEnvironment) -> None:
    current = secret(env)["tenant_id"]
    other = env.xero.create_tenant("Other Org")
    query = start(env)
    page = get(
        "/oauth/xero/callback", {"code": consent(env, query, [current, other]), "state": query["state"][0]}
    )
    assert "Currently used" in page["body"]
    assert secret(env)["tenant_id"] == current


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
    assert "cannot read stack 'no-such-stack'" in capsys.readouterr().err
