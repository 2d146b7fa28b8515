"""Xero's OAuth 2.0 authorization-code flow (authlib on the installed httpx transport).

Facts (reference/xero-api.md §3): authorize at ``login.xero.com/identity/connect/authorize``,
exchange the single-use, 5-minute code at ``identity.xero.com/connect/token`` with HTTP Basic client
authentication, ask for ``offline_access`` or no refresh token comes back, then list the
organisations the user connected with ``GET https://api.xero.com/connections`` (Bearer token only,
no tenant header). Token values never reach logs or exception messages.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from clientary_xero.connectors.http import default_timeout, get_transport, new_client
from clientary_xero.connectors.xero.auth import TOKEN_URL
from clientary_xero.errors import PermanentError, RetryableError

logger = logging.getLogger(__name__)

AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
CONNECTIONS_URL = "https://api.xero.com/connections"


def _oauth_client(client_id: str, client_secret: str, **kwargs: Any) -> Any:
    from authlib.integrations.httpx_client import OAuth2Client  # deferred: cold start

    return OAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method name)
        transport=get_transport(),
        timeout=default_timeout(),
        **kwargs,
    )


def authorization_url(client_id: str, redirect_uri: str, scopes: str, state: str) -> str:
    """Where to send the user's browser to consent."""
    if "offline_access" not in scopes.split():
        scopes = "offline_access " + scopes  # without it Xero issues no refresh token
    with _oauth_client(client_id, "", scope=scopes, redirect_uri=redirect_uri) as client:
        url, _ = client.create_authorization_url(AUTHORIZE_URL, state=state)
    return str(url)


def exchange_code(client_id: str, client_secret: str, redirect_uri: str, code: str) -> dict[str, Any]:
    """The token set for a code: ``access_token``, ``refresh_token``, ``expires_at``, ``scopes``."""
    from authlib.integrations.httpx_client import OAuthError

    try:
        with _oauth_client(client_id, client_secret, redirect_uri=redirect_uri) as client:
            token = client.fetch_token(TOKEN_URL, code=code, grant_type="authorization_code")
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            raise PermanentError(
                "Xero refused the authorization code (invalid_grant): it expired (5 minutes), was used "
                "already, or the redirect URI differs; start the connect flow again",
                status=400,
                service="xero",
            ) from None
        if exc.error in ("invalid_client", "unauthorized_client"):
            raise PermanentError(
                f"Xero rejected the app credentials ({exc.error}): check client_id and client_secret "
                "in the connection secret",
                status=400,
                service="xero",
            ) from None
        raise PermanentError(
            f"Xero's token endpoint refused the code ({exc.error})", service="xero"
        ) from None
    except (httpx.HTTPStatusError, httpx.TransportError, ValueError) as exc:
        raise RetryableError(
            f"cannot reach Xero's token endpoint ({type(exc).__name__})", service="xero"
        ) from None
    if not isinstance(token, dict) or not token.get("access_token"):
        raise RetryableError("Xero's token endpoint answered without an access token", service="xero")
    if not token.get("refresh_token"):
        raise PermanentError(
            "Xero issued no refresh token: the app must be granted the offline_access scope",
            status=400,
            service="xero",
        )
    return {
        "access_token": str(token["access_token"]),
        "refresh_token": str(token["refresh_token"]),
        "expires_at": int(time.time() + int(token.get("expires_in") or 1800)),
        "scopes": str(token.get("scope") or ""),
    }


def list_connections(access_token: str) -> list[dict[str, Any]]:
    """The organisations this token may call: ``[{tenantId, tenantName, tenantType, …}]``."""
    try:
        with new_client() as http:
            response = http.get(
                CONNECTIONS_URL,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            )
    except httpx.TransportError as exc:
        raise RetryableError(f"cannot reach Xero ({type(exc).__name__})", service="xero") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise RetryableError(f"Xero failed GET /connections ({response.status_code})", service="xero")
    if response.status_code != 200:
        raise PermanentError(
            f"Xero refused GET /connections ({response.status_code})",
            status=response.status_code,
            service="xero",
        )
    try:
        body = response.json()
    except ValueError:
        raise RetryableError(
            "Xero answered GET /connections with something other than JSON", service="xero"
        ) from None
    return [c for c in body if isinstance(c, dict) and c.get("tenantId")] if isinstance(body, list) else []


def client_credentials_token(client_id: str, client_secret: str, scopes: str) -> dict[str, Any]:
    """A custom connection's access token (no refresh token; one organisation): the connection check."""
    from authlib.integrations.httpx_client import OAuthError

    extra = {"scope": scopes} if scopes else {}
    try:
        with _oauth_client(client_id, client_secret) as client:
            token = client.fetch_token(TOKEN_URL, grant_type="client_credentials", **extra)
    except OAuthError as exc:
        raise PermanentError(
            f"Xero refused the custom connection's credentials ({exc.error}): check the client id and "
            "secret, and that the app is a custom connection authorised for an organisation",
            status=400,
            service="xero",
        ) from None
    except (httpx.HTTPStatusError, httpx.TransportError, ValueError) as exc:
        raise RetryableError(
            f"cannot reach Xero's token endpoint ({type(exc).__name__})", service="xero"
        ) from None
    if not isinstance(token, dict) or not token.get("access_token"):
        raise RetryableError("Xero's token endpoint answered without an access token", service="xero")
    return {
        "access_token": str(token["access_token"]),
        "expires_at": int(time.time() + int(token.get("expires_in") or 1800)),
        "scopes": str(token.get("scope") or scopes),
    }


def organisation_name(access_token: str, tenant_id: str = "") -> str:
    """``GET /Organisation`` with a token: proves the token works and names the organisation."""
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    if tenant_id:
        headers["xero-tenant-id"] = tenant_id
    try:
        with new_client() as http:
            response = http.get("https://api.xero.com/api.xro/2.0/Organisation", headers=headers)
    except httpx.TransportError as exc:
        raise RetryableError(f"cannot reach Xero ({type(exc).__name__})", service="xero") from None
    if response.status_code != 200:
        raise PermanentError(
            f"Xero refused GET /Organisation with the new token ({response.status_code})",
            status=response.status_code,
            service="xero",
        )
    try:
        organisations = response.json().get("Organisations") or [{}]
    except (ValueError, AttributeError):
        organisations = [{}]
    return str(organisations[0].get("Name") or "(unnamed organisation)")
