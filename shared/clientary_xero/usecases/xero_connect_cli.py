"""``clientary-xero connect xero``: what the command does, run with the administrator's credentials.

* ``--stack NAME`` (default): writes a one-time connect ticket (10 minutes) to the stack's State
  table and prints the connect link. Whoever opens it first consents in Xero; the ticket then
  stops working and the rest of the flow works only in that browser (a cookie). The deployed
  connect route refuses every request without a live ticket.
* ``--custom [--stack NAME]``: checks a custom connection (client credentials: one organisation,
  no refresh token) by fetching a token and reading ``/Organisation``, then stores
  ``{"auth": "client_credentials", …}`` in the stack's Xero secret. Nothing is stored if the check
  fails. ``--custom --local --secrets FILE`` writes the same into a local secrets file.
* ``--local --secrets FILE``: the authorization-code flow with a loopback redirect,
  ``http://localhost:PORT/callback`` (Xero accepts ``localhost`` for testing, not ``127.0.0.1``).
  A one-request HTTP server on 127.0.0.1 receives the code, the ``state`` is compared in constant
  time, the code is exchanged and the organisation chosen (``--tenant`` or a prompt when several).
  The tokens go to ``FILE`` under ``"xero"`` (mode 600), where ``test-workflow --live`` reads them.

The client secret comes from ``XERO_CLIENT_SECRET``, the secrets file, or a hidden prompt; it is
never printed.
"""

from __future__ import annotations

import argparse
import getpass
import hmac
import http.server
import json
import os
import secrets as pysecrets
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from clientary_xero.errors import PermanentError
from clientary_xero.settings import get_settings, reset_settings

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


# ------------------------------------------------------------------------------- a stack
def use_outputs(outputs: dict[str, str]) -> None:
    """Point the stores at the stack (State table, Xero secret) unless the environment names them."""
    for output, env in (("StateTableName", "STATE_TABLE"), ("XeroConnectionSecretArn", "XERO_SECRET_ID")):
        if output in outputs:
            os.environ.setdefault(env, outputs[output])
    reset_settings()


def ticket_stack(args: argparse.Namespace, outputs: dict[str, str]) -> int:
    from clientary_xero.usecases.xero_connect import TICKET_SECONDS, connect_url, issue_ticket

    use_outputs(outputs)
    base = outputs.get("WebhookApiUrl")
    if not base:
        print(f"error: stack {args.stack!r} has no WebhookApiUrl output", file=sys.stderr)
        return EXIT_FAILED
    ticket = issue_ticket()
    print("Open this link in a browser within 10 minutes (it works once) and consent in Xero;")
    print("finish in that same browser (the flow is bound to it by a cookie):")
    print(f"  {connect_url(base, ticket)}")
    print(
        "Register the redirect URI "
        + (outputs.get("XeroCallbackUrl") or base.rstrip("/") + "/oauth/xero/callback")
        + " in your Xero app first,"
    )
    secret_name = outputs.get("XeroConnectionSecretArn", "the Xero secret")
    print(f"and store client_id and client_secret in {secret_name}.")
    print(f"(ticket valid for {TICKET_SECONDS // 60} minutes)")
    return EXIT_OK


def custom_stack(args: argparse.Namespace, outputs: dict[str, str]) -> int:
    from clientary_xero.storage.secrets import SecretStore
    from clientary_xero.storage.state import StateStore
    from clientary_xero.usecases.xero_connect import PENDING_KEY, write_connection

    use_outputs(outputs)
    store = SecretStore()
    current: dict[str, Any] = {}
    try:
        current = store.read(get_settings().xero_secret_id)
    except Exception:
        current = {}
    connection = check_custom(args, current)
    write_connection(store, StateStore(), connection, remove=(PENDING_KEY,))  # no OAuth choice left open
    print(f"stored the custom connection in {get_settings().xero_secret_id}")
    return EXIT_OK


def custom_local(args: argparse.Namespace) -> int:
    path = Path(args.secrets)
    data = _read_file(path)
    connection = check_custom(args, data.get("xero") or {})
    data["xero"] = connection
    _write_file(path, data)
    print(f"wrote the custom connection to {path}")
    return EXIT_OK


def check_custom(args: argparse.Namespace, current: dict[str, Any]) -> dict[str, Any]:
    """Fetch a client-credentials token and read /Organisation; the connection to store."""
    from clientary_xero.connectors.xero.oauth import client_credentials_token, organisation_name

    client_id = args.client_id or str(current.get("client_id") or "")
    if not client_id:
        raise PermanentError("--client-id (or XERO_CLIENT_ID) is required")
    same_app = current.get("client_id") == client_id
    secret = _client_secret(current if same_app else {})
    stored_scopes = (
        str(current.get("scopes") or "") if same_app and current.get("auth") == "client_credentials" else ""
    )
    scopes = args.scopes or stored_scopes or _custom_default_scopes()
    token = client_credentials_token(client_id, secret, scopes)
    name = organisation_name(token["access_token"])
    print(f"custom connection works: organisation {name}")
    return {
        "auth": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "tenant_id": "",
        "refresh_token": "",
        **token,
    }


def _custom_default_scopes() -> str:
    # A custom connection has no refresh token: offline_access means nothing there.
    return " ".join(s for s in get_settings().xero_scopes.split() if s != "offline_access")


# ---------------------------------------------------------------------------- --local
class _Callback(http.server.BaseHTTPRequestHandler):
    result: dict[str, str] | None = None
    done = threading.Event()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self.send_response(404)
            self.end_headers()
            return
        type(self).result = dict(parse_qsl(parts.query))
        body = b"<!doctype html><p>clientary-xero received Xero's answer; you can close this tab.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        type(self).done.set()

    def log_message(self, format: str, *args: Any) -> None:
        return


def oauth_local(
    args: argparse.Namespace,
    *,
    open_browser: Callable[[str], Any] | None = None,
    choose: Callable[[list[dict[str, Any]]], str] | None = None,
) -> int:
    from clientary_xero.connectors.xero.oauth import authorization_url, exchange_code, list_connections

    path = Path(args.secrets)
    data = _read_file(path)
    current = data.get("xero") or {}
    client_id = args.client_id or str(current.get("client_id") or "")
    if not client_id:
        raise PermanentError("--client-id (or XERO_CLIENT_ID) is required")
    client_secret = _client_secret(current if current.get("client_id") == client_id else {})

    handler: type[_Callback] = type(
        "CallbackHandler", (_Callback,), {"result": None, "done": threading.Event()}
    )
    server = http.server.HTTPServer(("127.0.0.1", args.port), handler)
    port = server.server_address[1]
    redirect = f"http://localhost:{port}/callback"
    state = pysecrets.token_urlsafe(32)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = authorization_url(client_id, redirect, args.scopes or get_settings().xero_scopes, state)
        print(f"Register {redirect} as a redirect URI of your Xero app, then consent here:\n  {url}")
        if open_browser is not None:
            open_browser(url)
        elif not args.no_browser:
            webbrowser.open(url)
        if not handler.done.wait(args.timeout):
            raise PermanentError(f"no answer from Xero within {args.timeout:.0f} s")
    finally:
        server.shutdown()
        server.server_close()
    answer: dict[str, str] = handler.result or {}
    if not hmac.compare_digest(answer.get("state", ""), state):
        raise PermanentError("the callback's state does not match this sign-in: nothing was stored")
    if answer.get("error"):
        raise PermanentError(f"Xero answered {answer['error'][:100]}: nothing was stored")
    tokens = exchange_code(client_id, client_secret, redirect, answer.get("code", ""))
    tenants = list_connections(tokens["access_token"])
    if not tenants:
        raise PermanentError("Xero connected no organisation")
    if len(tenants) == 1:
        tenant_id = str(tenants[0]["tenantId"])
    elif args.tenant:
        tenant_id = args.tenant
        if tenant_id not in {str(t["tenantId"]) for t in tenants}:
            raise PermanentError(f"--tenant {tenant_id} is not among the connected organisations")
    else:
        tenant_id = (choose or _prompt_tenant)(tenants)
    name = next((str(t.get("tenantName")) for t in tenants if str(t["tenantId"]) == tenant_id), tenant_id)
    data["xero"] = {
        **current,
        "auth": "oauth",
        "client_id": client_id,
        "client_secret": client_secret,
        "tenant_id": tenant_id,
        **tokens,
    }
    _write_file(path, data)
    print(f"connected to {name}; tokens written to {path}")
    return EXIT_OK


def _prompt_tenant(tenants: list[dict[str, Any]]) -> str:
    print("Several organisations were connected:")
    for number, tenant in enumerate(tenants, 1):
        print(f"  {number}. {tenant.get('tenantName')} ({tenant['tenantId']})")
    while True:
        answer = input("Use which one? ").strip()
        if answer.isdigit() and 1 <= int(answer) <= len(tenants):
            return str(tenants[int(answer) - 1]["tenantId"])


# ----------------------------------------------------------------------------- helpers
def _client_secret(current: dict[str, Any]) -> str:
    secret = os.environ.get("XERO_CLIENT_SECRET") or str(current.get("client_secret") or "")
    if not secret:
        secret = getpass.getpass("Xero client secret: ")
    if not secret:
        raise PermanentError("a client secret is required (XERO_CLIENT_SECRET or the prompt)")
    return secret


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise PermanentError(f"{path} is not a JSON secrets file") from None
    if not isinstance(data, dict):
        raise PermanentError(f"{path} is not a JSON object")
    return data


def _write_file(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{int(time.time() * 1000)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)
