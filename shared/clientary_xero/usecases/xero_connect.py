"""Connecting Xero through the browser: ``GET /oauth/xero/connect``, ``/callback`` and ``/choose``.

The connect route is on the public internet, so nobody may start it without a **connect ticket**:
an administrator runs ``clientary-xero connect xero --stack NAME`` with their own AWS credentials,
which writes a random one-time ticket (only its SHA-256 is stored) with a 10-minute TTL to the
State table and prints ``https://…/oauth/xero/connect?ticket=…``. The route consumes the ticket
(a conditional delete: a ticket works once) and only then redirects to Xero.

1. ``connect?ticket=T`` — ticket taken → a random ``state`` is stored (``OAUTH#<state>``, 10
   minutes) → 302 to Xero's consent screen with the configured scopes (granular by default).
2. ``callback?code=…&state=…`` — the state is taken (unknown, reused or expired → 400 and nothing
   else happens) → the code is exchanged (authlib) → ``GET /connections`` → the token set is
   written to the Xero connection secret, keeping the ``client_id``/``client_secret`` stored there.
   One organisation: chosen at once. Several: a page lists them; each link carries a one-time
   choice token (10 minutes) and the organisation's tenant id.
3. ``choose?choice=C&tenant=ID`` — the choice token is taken and the tenant must be one it lists →
   ``tenant_id`` is written to the secret.

Secret writes happen under the token lease lock the action Lambdas use for refreshes, so a
concurrent refresh cannot overwrite the new connection with the old one. Pages are small HTML with
``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` (the callback URL holds the code).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import secrets as pysecrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from clientary_xero.errors import ClientaryXeroError, NotFound, PermanentError, RetryableError
from clientary_xero.settings import get_settings
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.storage.state import StateStore

logger = logging.getLogger(__name__)

TICKET_SECONDS = 600
STATE_SECONDS = 600
CHOICE_SECONDS = 600
# XeroTokenProvider.lock_name of the default connection (a lock name, not a credential).
TOKEN_LOCK = "xero-token#default"  # noqa: S105
CONNECT_PATH = "/oauth/xero/connect"
CALLBACK_PATH = "/oauth/xero/callback"
CHOOSE_PATH = "/oauth/xero/choose"


@dataclass
class HtmlResponse:
    status: int
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def to_api_gateway(self) -> dict[str, Any]:
        headers = {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
            "x-frame-options": "DENY",
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
            **self.headers,
        }
        return {"statusCode": self.status, "headers": headers, "body": self.html}


def _page(status: int, title: str, body_html: str) -> HtmlResponse:
    text = (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        + html.escape(title)
        + "</title></head><body style='font-family:sans-serif;max-width:40em;margin:2em auto'><h1>"
        + html.escape(title)
        + "</h1>"
        + body_html
        + "</body></html>"
    )
    return HtmlResponse(status, text)


def _message(status: int, title: str, text: str) -> HtmlResponse:
    return _page(status, title, "<p>" + html.escape(text) + "</p>")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ------------------------------------------------------------------------------- tickets
def issue_ticket(state: StateStore | None = None, *, ttl_seconds: int = TICKET_SECONDS) -> str:
    """A one-time connect ticket (printed by the CLI; only its hash is stored)."""
    store = state or StateStore()
    ticket = pysecrets.token_urlsafe(32)
    created = store.put_item_if_absent(
        f"XEROCONNECT#{_digest(ticket)}", "TICKET", {"issued_at": int(time.time())}, ttl_seconds
    )
    if not created:  # pragma: no cover - 256 random bits
        raise RetryableError("could not store the connect ticket; try again", delay_seconds=1)
    return ticket


def connect_url(base_url: str, ticket: str) -> str:
    return base_url.rstrip("/") + CONNECT_PATH + "?" + urlencode({"ticket": ticket})


# -------------------------------------------------------------------------------- routes
def handle_request(
    *,
    path: str,
    query: dict[str, str],
    host: str,
    state: StateStore | None = None,
    secrets: SecretStore | None = None,
) -> HtmlResponse:
    store = state or StateStore()
    secret_store = secrets or SecretStore()
    try:
        if path.endswith(CONNECT_PATH):
            return _connect(query, host, store, secret_store)
        if path.endswith(CALLBACK_PATH):
            return _callback(query, store, secret_store)
        if path.endswith(CHOOSE_PATH):
            return _choose(query, store, secret_store)
    except RetryableError as exc:
        return _message(503, "Try again", f"Xero or AWS is busy: {exc}")
    except PermanentError as exc:
        return _message(exc.status if exc.status in (400, 409) else 502, "Xero was not connected", str(exc))
    except ClientaryXeroError as exc:
        return _message(500, "Xero was not connected", str(exc))
    return _message(404, "Not found", "unknown route")


def redirect_uri(host: str) -> str:
    configured = get_settings().xero_redirect_uri
    return configured or f"https://{host}{CALLBACK_PATH}"


def _connect(query: dict[str, str], host: str, store: StateStore, secrets: SecretStore) -> HtmlResponse:
    from clientary_xero.connectors.xero.oauth import authorization_url

    ticket = query.get("ticket", "")
    if not ticket or store.take_item(f"XEROCONNECT#{_digest(ticket)}", "TICKET") is None:
        logger.warning("refused a connect request without a live ticket")
        return _message(
            403,
            "Connect ticket required",
            "This link is unknown, used or expired. Ask an administrator to run "
            "`clientary-xero connect xero --stack <stack>` for a new one (valid 10 minutes, once).",
        )
    connection = _read_connection(secrets)
    client_id = str(connection.get("client_id") or "")
    if not client_id or not connection.get("client_secret"):
        return _message(
            409,
            "Xero app not configured",
            "Store client_id and client_secret of your Xero app in the Xero connection secret first.",
        )
    settings = get_settings()
    oauth_state = pysecrets.token_urlsafe(32)
    target = redirect_uri(host)
    store.put_item_if_absent(
        f"OAUTH#{oauth_state}",
        "STATE",
        {"redirect_uri": target, "created_at": int(time.time())},
        STATE_SECONDS,
    )
    url = authorization_url(client_id, target, settings.xero_scopes, oauth_state)
    return HtmlResponse(302, "", {"location": url})


def _callback(query: dict[str, str], store: StateStore, secrets: SecretStore) -> HtmlResponse:
    from clientary_xero.connectors.xero.oauth import exchange_code, list_connections

    oauth_state = query.get("state", "")
    pending = store.take_item(f"OAUTH#{oauth_state}", "STATE") if oauth_state else None
    if pending is None:
        logger.warning("refused an OAuth callback with an unknown, used or expired state")
        return _message(400, "Link expired", "The sign-in state is unknown, used or expired. Start again.")
    if query.get("error"):
        return _message(400, "Xero was not connected", f"Xero answered: {query['error'][:100]}")
    code = query.get("code", "")
    if not code:
        return _message(400, "Xero was not connected", "the callback carries no authorization code")
    connection = _read_connection(secrets)
    tokens = exchange_code(
        str(connection.get("client_id") or ""),
        str(connection.get("client_secret") or ""),
        str(pending["redirect_uri"]),
        code,
    )
    tenants = [
        {"tenantId": str(c["tenantId"]), "tenantName": str(c.get("tenantName") or c["tenantId"])}
        for c in list_connections(tokens["access_token"])
    ]
    if not tenants:
        return _message(400, "No organisation", "Xero connected no organisation; start again and pick one.")
    ids = [t["tenantId"] for t in tenants]
    previous = str(connection.get("tenant_id") or "")
    tenant_id = ids[0] if len(ids) == 1 else (previous if previous in ids else "")
    write_connection(secrets, store, {**tokens, "auth": "oauth", "tenant_id": tenant_id})
    if len(ids) == 1:
        return _message(200, "Xero connected", f"Connected to {tenants[0]['tenantName']}.")
    choice = pysecrets.token_urlsafe(24)
    store.put_item_if_absent(f"XEROCHOICE#{_digest(choice)}", "CHOICE", {"tenants": tenants}, CHOICE_SECONDS)
    items = "".join(
        "<li><a href='"
        + html.escape(CHOOSE_PATH + "?" + urlencode({"choice": choice, "tenant": t["tenantId"]}))
        + "'>"
        + html.escape(t["tenantName"])
        + "</a></li>"
        for t in tenants
    )
    note = (
        "<p>Currently used: "
        + html.escape(next(t["tenantName"] for t in tenants if t["tenantId"] == tenant_id))
        + "</p>"
        if tenant_id
        else ""
    )
    return _page(
        200,
        "Choose the Xero organisation",
        "<p>You connected several organisations. Which one should clientary-xero work with? "
        "(The links work once, for 10 minutes.)</p><ul>" + items + "</ul>" + note,
    )


def _choose(query: dict[str, str], store: StateStore, secrets: SecretStore) -> HtmlResponse:
    choice = query.get("choice", "")
    offered = store.take_item(f"XEROCHOICE#{_digest(choice)}", "CHOICE") if choice else None
    if offered is None:
        return _message(400, "Link expired", "This choice is unknown, used or expired. Connect again.")
    tenant = next((t for t in offered["tenants"] if t["tenantId"] == query.get("tenant")), None)
    if tenant is None:
        return _message(400, "Unknown organisation", "That organisation was not among the ones offered.")
    write_connection(secrets, store, {"tenant_id": tenant["tenantId"]})
    return _message(200, "Xero connected", f"Connected to {tenant['tenantName']}.")


# ------------------------------------------------------------------------ secret writes
def _read_connection(secrets: SecretStore) -> dict[str, Any]:
    try:
        return secrets.read(get_settings().xero_secret_id)
    except NotFound:
        raise PermanentError("the Xero connection secret does not exist", status=409) from None


def write_connection(
    secrets: SecretStore, store: StateStore, fields: dict[str, Any], *, wait_seconds: float = 5.0
) -> dict[str, Any]:
    """Merge ``fields`` into the connection secret under the token lock (a refresh cannot interleave)."""
    owner = f"connect-{uuid.uuid4()}"
    deadline = time.monotonic() + wait_seconds
    while not store.acquire_lock(TOKEN_LOCK, owner, lease_seconds=30):
        if time.monotonic() > deadline:
            raise RetryableError(
                "a token refresh is in progress; try again in a few seconds", delay_seconds=5
            )
        time.sleep(0.2)
    try:
        secret_id = get_settings().xero_secret_id
        current = _read_connection(secrets)
        updated = {**current, **fields}
        secrets.write(secret_id, updated)
    finally:
        store.release_lock(TOKEN_LOCK, owner)
    logger.info(
        "Xero connection secret updated", extra={"fields": sorted(k for k in fields if "token" not in k)}
    )
    return updated


def summary_of(secret: dict[str, Any]) -> str:
    """A line about a connection without any credential in it."""
    safe = {k: secret.get(k) for k in ("auth", "tenant_id", "scopes") if secret.get(k)}
    return json.dumps(safe)
