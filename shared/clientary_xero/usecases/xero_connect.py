"""Connecting Xero through the browser: ``GET /oauth/xero/connect``, ``/callback`` and ``/choose``.

The connect route is on the public internet, so nobody may start it without a **connect ticket**:
an administrator runs ``clientary-xero connect xero --stack NAME`` with their own AWS credentials,
which writes a random one-time ticket (only its SHA-256 is stored) with a 10-minute TTL to the
State table and prints ``https://…/oauth/xero/connect?ticket=…``. The route consumes the ticket
(a conditional delete: a ticket works once) and only then redirects to Xero.

Every later link is **bound to the browser that opened the ticket**: the connect route sets a
random cookie (``Secure; HttpOnly; SameSite=Lax``, 10 minutes; Lax cookies ride along on Xero's
top-level redirect back) and the State items of the flow are keyed by the cookie's hash as well.
Another browser holding a leaked authorize, callback or choice link finds no item: it is refused,
and it cannot consume (burn) the real browser's state or choice either. A state or choice still
works once: taking it is one conditional delete of the exact key.

1. ``connect?ticket=T`` — the ticket must be live; the app must be configured (``client_id`` and
   ``client_secret`` in the secret, else 409 and the ticket stays usable); then the ticket is taken
   → a ``state`` is stored (``OAUTH#<state>`` / ``BROWSER#<cookie hash>``, 10 minutes) → 302 to
   Xero's consent screen with the configured scopes and the cookie. When the redirect URI is on
   another host (a custom domain) the route first sends the browser there, ticket untouched, so
   the cookie is set where the callback will read it.
2. ``callback?code=…&state=…`` — the cookie is required and the state is taken with it (unknown,
   reused, expired or another browser's → refused, nothing else happens) → the code is exchanged
   (authlib) → ``GET /connections``. One organisation: the token set and tenant go live in the
   Xero connection secret at once. Several: the new token set waits in the secret under
   ``pending`` (the live tokens and ``tenant_id`` stay as they were, so Xero steps keep working
   with the previous connection) and a page lists the organisations; each link carries a one-time
   choice token (``XEROCHOICE#…`` / ``BROWSER#…``, 10 minutes, a fresh cookie).
3. ``choose?choice=C&tenant=ID`` — the choice is taken with the cookie, the tenant must be one it
   lists, and ``pending`` becomes the live connection with that tenant. Tokens never sit in the
   State table, only in the secret.

Secret writes happen under the token lease lock the action Lambdas use for refreshes, so a
concurrent refresh cannot overwrite the new connection with the old one (a refresh keeps
``pending`` as it found it). Pages are small HTML with ``Cache-Control: no-store`` and
``Referrer-Policy: no-referrer`` (the callback URL holds the code).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import secrets as pysecrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from clientary_xero.errors import ClientaryXeroError, NotFound, PermanentError, RetryableError
from clientary_xero.settings import get_settings
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.storage.state import StateStore

logger = logging.getLogger(__name__)

TICKET_SECONDS = 600
STATE_SECONDS = 600
CHOICE_SECONDS = 600
COOKIE_SECONDS = 600
# XeroTokenProvider.lock_name of the default connection (a lock name, not a credential).
TOKEN_LOCK = "xero-token#default"  # noqa: S105
CONNECT_PATH = "/oauth/xero/connect"
CALLBACK_PATH = "/oauth/xero/callback"
CHOOSE_PATH = "/oauth/xero/choose"
# __Secure-: browsers accept it only with Secure, from an https origin.
COOKIE_NAME = "__Secure-clientary-xero-connect"
# Where the new consent's tokens wait in the connection secret until an organisation is chosen.
PENDING_KEY = "pending"
# State-table key prefixes of this flow (template.yaml scopes the connect function to them).
TICKET_PREFIX = "XEROCONNECT#"
STATE_PREFIX = "OAUTH#"
CHOICE_PREFIX = "XEROCHOICE#"


@dataclass
class HtmlResponse:
    status: int
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)

    def to_api_gateway(self) -> dict[str, Any]:
        headers = {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
            "x-frame-options": "DENY",
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
            **self.headers,
        }
        response: dict[str, Any] = {"statusCode": self.status, "headers": headers, "body": self.html}
        if self.cookies:
            response["cookies"] = list(self.cookies)  # HTTP API v2 turns these into Set-Cookie
        return response


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


# ------------------------------------------------------------------------------- cookies
def parse_cookies(values: Iterable[str]) -> dict[str, str]:
    """``name=value`` pairs from HTTP API v2's ``cookies`` list and/or ``Cookie`` header values.

    Lenient on purpose (a malformed pair is skipped, not an error): the flow only looks for its
    own cookie, and the first occurrence of a name wins as browsers send the most specific first.
    """
    cookies: dict[str, str] = {}
    for value in values:
        for pair in str(value).split(";"):
            name, sep, content = pair.strip().partition("=")
            if sep and name and name not in cookies:
                cookies[name] = content.strip().strip('"')
    return cookies


def _browser_cookie(value: str, path: str) -> str:
    return f"{COOKIE_NAME}={value}; Path={path}; Max-Age={COOKIE_SECONDS}; Secure; HttpOnly; SameSite=Lax"


def _cleared_cookie(path: str) -> str:
    return f"{COOKIE_NAME}=; Path={path}; Max-Age=0; Secure; HttpOnly; SameSite=Lax"


def _browser_key(browser: str) -> str:
    return f"BROWSER#{_digest(browser)}"


def _cookie_path(target: str) -> str:
    """The folder of the redirect URI (``/oauth/xero``): the callback and choice routes, nothing else."""
    path = urlsplit(target).path
    return path.rsplit("/", 1)[0] or "/"


def _no_cookie() -> HtmlResponse:
    return _message(
        403,
        "Open the connect link in this browser",
        "This page works only in the browser that opened the connect link, with cookies allowed for "
        "this site. Nothing was changed. Open the connect link (or ask for a new one) in this browser.",
    )


# ------------------------------------------------------------------------------- tickets
def issue_ticket(state: StateStore | None = None, *, ttl_seconds: int = TICKET_SECONDS) -> str:
    """A one-time connect ticket (printed by the CLI; only its hash is stored)."""
    store = state or StateStore()
    ticket = pysecrets.token_urlsafe(32)
    created = store.put_item_if_absent(
        f"{TICKET_PREFIX}{_digest(ticket)}", "TICKET", {"issued_at": int(time.time())}, ttl_seconds
    )
    if not created:  # pragma: no cover - 256 random bits
        raise RetryableError("could not store the connect ticket; try again", delay_seconds=1)
    return ticket


def connect_url(base_url: str, ticket: str) -> str:
    return base_url.rstrip("/") + CONNECT_PATH + "?" + urlencode({"ticket": ticket})


def _ticket_is_live(store: StateStore, ticket: str) -> bool:
    """Whether the ticket exists and has not expired, without taking it (TTL deletion is lazy)."""
    item = store.get_raw({"pk": f"{TICKET_PREFIX}{_digest(ticket)}", "sk": "TICKET"})
    return item is not None and int(item.get("ttl", 0)) >= store.clock()


# -------------------------------------------------------------------------------- routes
def handle_request(
    *,
    path: str,
    query: dict[str, str],
    host: str,
    cookies: dict[str, str] | None = None,
    state: StateStore | None = None,
    secrets: SecretStore | None = None,
) -> HtmlResponse:
    store = state or StateStore()
    secret_store = secrets or SecretStore()
    browser = (cookies or {}).get(COOKIE_NAME, "")
    try:
        if path.endswith(CONNECT_PATH):
            return _connect(query, host, store, secret_store)
        if path.endswith(CALLBACK_PATH):
            return _callback(query, browser, store, secret_store)
        if path.endswith(CHOOSE_PATH):
            return _choose(query, browser, host, store, secret_store)
    except RetryableError as exc:
        return _message(503, "Try again", f"Xero or AWS is busy: {exc}")
    except PermanentError as exc:
        return _message(
            exc.status if exc.status in (400, 403, 409) else 502, "Xero was not connected", str(exc)
        )
    except ClientaryXeroError as exc:
        return _message(500, "Xero was not connected", str(exc))
    return _message(404, "Not found", "unknown route")


def redirect_uri(host: str) -> str:
    configured = get_settings().xero_redirect_uri
    return configured or f"https://{host}{CALLBACK_PATH}"


def _connect(query: dict[str, str], host: str, store: StateStore, secrets: SecretStore) -> HtmlResponse:
    from clientary_xero.connectors.xero.oauth import authorization_url

    ticket = query.get("ticket", "")
    if not ticket or not _ticket_is_live(store, ticket):
        logger.warning("refused a connect request without a live ticket")
        return _message(
            403,
            "Connect ticket required",
            "This link is unknown, used or expired. Ask an administrator to run "
            "`clientary-xero connect xero --stack <stack>` for a new one (valid 10 minutes, once).",
        )
    target = redirect_uri(host)
    parts = urlsplit(target)
    if parts.netloc.lower() != host.lower() and parts.path.endswith("/callback"):
        # A custom domain: the cookie must be set on the host the callback goes to. Send the browser
        # there with the ticket untouched; that request runs this route again on the right host.
        hop = parts._replace(
            path=parts.path[: -len("/callback")] + "/connect", query=urlencode({"ticket": ticket})
        )
        return HtmlResponse(302, "", {"location": hop.geturl()})
    # Checked before the ticket is taken: a 409 leaves the ticket usable once the app is configured.
    connection = _read_connection(secrets)
    client_id = str(connection.get("client_id") or "")
    if not client_id or not connection.get("client_secret"):
        return _message(
            409,
            "Xero app not configured",
            "Store client_id and client_secret of your Xero app in the Xero connection secret first, "
            "then open this link again (it stays valid until it expires).",
        )
    if store.take_item(f"{TICKET_PREFIX}{_digest(ticket)}", "TICKET") is None:  # taken meanwhile
        return _message(403, "Connect ticket required", "This link was used meanwhile. Ask for a new one.")
    settings = get_settings()
    oauth_state = pysecrets.token_urlsafe(32)
    browser = pysecrets.token_urlsafe(32)
    store.put_item_if_absent(
        f"{STATE_PREFIX}{oauth_state}",
        _browser_key(browser),
        {"redirect_uri": target, "created_at": int(time.time())},
        STATE_SECONDS,
    )
    url = authorization_url(client_id, target, settings.xero_scopes, oauth_state)
    return HtmlResponse(302, "", {"location": url}, [_browser_cookie(browser, _cookie_path(target))])


def _callback(query: dict[str, str], browser: str, store: StateStore, secrets: SecretStore) -> HtmlResponse:
    from clientary_xero.connectors.xero.oauth import exchange_code, list_connections

    if not browser:
        logger.warning("refused an OAuth callback without the connect cookie")
        return _no_cookie()
    oauth_state = query.get("state", "")
    # Keyed by the cookie's hash too: another browser's request takes nothing, not even to burn it.
    issued = store.take_item(f"{STATE_PREFIX}{oauth_state}", _browser_key(browser)) if oauth_state else None
    if issued is None:
        logger.warning("refused an OAuth callback with an unknown, used, expired or foreign state")
        return _message(
            400,
            "Link expired",
            "The sign-in state is unknown, used or expired, or it was started in another browser. "
            "Nothing was changed. Start again from a new connect link.",
        )
    if query.get("error"):
        return _message(400, "Xero was not connected", f"Xero answered: {query['error'][:100]}")
    code = query.get("code", "")
    if not code:
        return _message(400, "Xero was not connected", "the callback carries no authorization code")
    target = str(issued["redirect_uri"])
    connection = _read_connection(secrets)
    tokens = exchange_code(
        str(connection.get("client_id") or ""), str(connection.get("client_secret") or ""), target, code
    )
    tenants = [
        {"tenantId": str(c["tenantId"]), "tenantName": str(c.get("tenantName") or c["tenantId"])}
        for c in list_connections(tokens["access_token"])
    ]
    if not tenants:
        return _message(400, "No organisation", "Xero connected no organisation; start again and pick one.")
    cookie_path = _cookie_path(target)
    if len(tenants) == 1:
        write_connection(
            secrets,
            store,
            {**tokens, "auth": "oauth", "tenant_id": tenants[0]["tenantId"]},
            remove=(PENDING_KEY,),  # a newer consent supersedes a choice still open
        )
        response = _message(200, "Xero connected", f"Connected to {tenants[0]['tenantName']}.")
        response.cookies.append(_cleared_cookie(cookie_path))
        return response
    return _offer_choice(tokens, tenants, connection, store, secrets, cookie_path)


def _offer_choice(
    tokens: dict[str, Any],
    tenants: list[dict[str, str]],
    connection: dict[str, Any],
    store: StateStore,
    secrets: SecretStore,
    cookie_path: str,
) -> HtmlResponse:
    """Several organisations: park the new tokens under ``pending``, keep the live connection."""
    choice = pysecrets.token_urlsafe(24)
    browser = pysecrets.token_urlsafe(32)  # a fresh cookie for the choice step
    parked = {**tokens, "tenants": tenants, "choice": _digest(choice), "created_at": int(time.time())}
    write_connection(secrets, store, {PENDING_KEY: parked})
    store.put_item_if_absent(
        f"{CHOICE_PREFIX}{_digest(choice)}", _browser_key(browser), {"tenants": tenants}, CHOICE_SECONDS
    )
    items = "".join(
        "<li><a href='"
        + html.escape(CHOOSE_PATH + "?" + urlencode({"choice": choice, "tenant": t["tenantId"]}))
        + "'>"
        + html.escape(t["tenantName"])
        + "</a></li>"
        for t in tenants
    )
    previous = str(connection.get("tenant_id") or "")
    current = next((t["tenantName"] for t in tenants if t["tenantId"] == previous), None)
    if current is not None:
        note = f"Currently used: {current}. It keeps working until you choose."
    elif previous and connection.get("refresh_token"):
        note = "Until you choose, clientary-xero keeps working with the organisation connected before."
    else:
        note = "Xero steps wait until you choose."
    page = _page(
        200,
        "Choose the Xero organisation",
        "<p>You connected several organisations. Which one should clientary-xero work with? "
        "(The links work once, for 10 minutes, in this browser.)</p><ul>"
        + items
        + "</ul><p>"
        + html.escape(note)
        + "</p>",
    )
    page.cookies.append(_browser_cookie(browser, cookie_path))
    return page


def _choose(
    query: dict[str, str], browser: str, host: str, store: StateStore, secrets: SecretStore
) -> HtmlResponse:
    if not browser:
        logger.warning("refused an organisation choice without the connect cookie")
        return _no_cookie()
    choice = query.get("choice", "")
    offered = store.take_item(f"{CHOICE_PREFIX}{_digest(choice)}", _browser_key(browser)) if choice else None
    if offered is None:
        return _message(
            400,
            "Link expired",
            "This choice is unknown, used or expired, or it was offered in another browser. "
            "Nothing was changed. Connect again.",
        )
    tenant = next((t for t in offered["tenants"] if t["tenantId"] == query.get("tenant")), None)
    if tenant is None:
        return _message(400, "Unknown organisation", "That organisation was not among the ones offered.")
    digest = _digest(choice)

    def adopt(current: dict[str, Any]) -> dict[str, Any]:
        parked = current.get(PENDING_KEY)
        if not isinstance(parked, dict) or parked.get("choice") != digest:
            raise PermanentError(
                "a newer connection replaced this choice (or it was already made); nothing was changed. "
                "Connect again if the organisation is not the one you want.",
                status=409,
            )
        live = {k: v for k, v in current.items() if k != PENDING_KEY}
        live.update(
            {k: parked[k] for k in ("access_token", "refresh_token", "expires_at", "scopes") if k in parked}
        )
        live.update(auth="oauth", tenant_id=tenant["tenantId"])
        return live

    update_connection(secrets, store, adopt, fields=["tenant_id", "tokens"])
    response = _message(200, "Xero connected", f"Connected to {tenant['tenantName']}.")
    response.cookies.append(_cleared_cookie(_cookie_path(redirect_uri(host))))
    return response


# ------------------------------------------------------------------------ secret writes
def _read_connection(secrets: SecretStore) -> dict[str, Any]:
    try:
        return secrets.read(get_settings().xero_secret_id)
    except NotFound:
        raise PermanentError("the Xero connection secret does not exist", status=409) from None


def update_connection(
    secrets: SecretStore,
    store: StateStore,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    fields: Iterable[str] = (),
    wait_seconds: float = 5.0,
) -> dict[str, Any]:
    """Re-read the connection secret under the token lock, apply ``change``, write the result.

    The lock is the one token refreshes take, so neither overwrites the other's write. ``fields``
    names what changed, for the log line (never values).
    """
    owner = f"connect-{uuid.uuid4()}"
    deadline = time.monotonic() + wait_seconds
    while not store.acquire_lock(TOKEN_LOCK, owner, lease_seconds=30):
        if time.monotonic() > deadline:
            raise RetryableError(
                "a token refresh is in progress; try again in a few seconds", delay_seconds=5
            )
        time.sleep(0.2)
    try:
        updated = change(_read_connection(secrets))
        secrets.write(get_settings().xero_secret_id, updated)
    finally:
        store.release_lock(TOKEN_LOCK, owner)
    logger.info("Xero connection secret updated", extra={"fields": sorted(fields)})
    return updated


def write_connection(
    secrets: SecretStore,
    store: StateStore,
    fields: dict[str, Any],
    *,
    remove: tuple[str, ...] = (),
    wait_seconds: float = 5.0,
) -> dict[str, Any]:
    """Merge ``fields`` into the connection secret (dropping the keys in ``remove``) under the token lock."""

    def merge(current: dict[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in current.items() if k not in remove}, **fields}

    names = [k for k in fields if "token" not in k] + [f"-{k}" for k in remove]
    return update_connection(secrets, store, merge, fields=names, wait_seconds=wait_seconds)


def summary_of(secret: dict[str, Any]) -> str:
    """A line about a connection without any credential in it."""
    safe = {k: secret.get(k) for k in ("auth", "tenant_id", "scopes") if secret.get(k)}
    return json.dumps(safe)
