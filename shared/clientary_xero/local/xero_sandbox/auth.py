"""The OAuth server at ``identity.xero.com/connect/token`` and ``GET /connections``.

Client authentication with HTTP Basic; refresh-token rotation with Xero's 30-minute grace for the
previous token (a retry inside the grace returns the very pair issued before; later it is
``invalid_grant``); single-use 5-minute authorization codes; ``client_credentials`` for custom
connections (no refresh token, one organisation). Connections carry the tenant, its auth event and
when the app was first and last connected to it.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

from clientary_xero.local.xero_sandbox.base import _SandboxBase
from clientary_xero.local.xero_sandbox.model import (
    ACCESS_TOKEN_SECONDS,
    REFRESH_GRACE_SECONDS,
    REFRESH_TOKEN_SECONDS,
    _AccessToken,
    _App,
    _Grant,
    _RefreshToken,
)
from clientary_xero.local.xero_sandbox.responses import (
    _not_found,
    _oauth_error,
    _response,
)


class AuthMixin(_SandboxBase):
    """identity.xero.com and /connections."""

    def _identity(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.rstrip("/") != "/connect/token" or request.method != "POST":
            return _not_found()
        with self._lock:
            if self._token_faults:
                status = self._token_faults.pop(0)
                return _response(status, {"error": "temporarily_unavailable"})
            app = self._client_auth(request)
            if app is None:
                return _oauth_error(401, "invalid_client")
            form = dict(parse_qsl(request.content.decode("utf-8", "replace"), keep_blank_values=True))
            grant_type = form.get("grant_type", "")
            if grant_type == "refresh_token":
                return self._grant_refresh(app, form.get("refresh_token", ""))
            if grant_type == "authorization_code":
                return self._grant_code(app, form.get("code", ""), form.get("redirect_uri"))
            if grant_type == "client_credentials":
                if app.custom_tenant_id is None:
                    return _oauth_error(400, "unauthorized_client")
                access = self._new_access(app.client_id, [app.custom_tenant_id], None)
                self._access[access].scopes = form.get("scope") or None
                self.grant_counts["client_credentials"] += 1
                return self._token_response(access, None, ACCESS_TOKEN_SECONDS, form.get("scope", ""))
            return _oauth_error(400, "unsupported_grant_type")

    def _client_auth(self, request: httpx.Request) -> _App | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        client_id, _, client_secret = decoded.partition(":")
        app = self._apps.get(unquote(client_id))
        if app is None or not secrets.compare_digest(unquote(client_secret), app.client_secret):
            return None
        return app

    def _grant_refresh(self, app: _App, value: str) -> httpx.Response:
        now = self._now()
        token = self._refresh.get(value)
        if token is None or token.client_id != app.client_id or token.revoked:
            return self._invalid_grant()
        if token.successor is not None:
            # Xero's grace: the previous refresh token may be retried for 30 minutes and yields the
            # pair it produced the first time.
            if token.rotated_at is None or now - token.rotated_at > REFRESH_GRACE_SECONDS:
                return self._invalid_grant()
            access, refresh = token.successor
            self.grant_counts["refresh_token"] += 1
            remaining = self._access[access].expires_at - now if access in self._access else 0
            return self._token_response(
                access, refresh, max(0, int(remaining)), self._grants[token.grant_id].scopes
            )
        if now - token.issued_at > REFRESH_TOKEN_SECONDS:
            return self._invalid_grant()
        grant = self._grants[token.grant_id]
        access, refresh = self._new_pair(grant)
        token.successor = (access, refresh)
        token.rotated_at = now
        self.grant_counts["refresh_token"] += 1
        return self._token_response(access, refresh, ACCESS_TOKEN_SECONDS, grant.scopes)

    def _grant_code(self, app: _App, value: str, redirect_uri: str | None) -> httpx.Response:
        code = self._codes.get(value)
        if (
            code is None
            or code.used
            or code.client_id != app.client_id
            or self._now() > code.expires_at
            or (code.redirect_uri is not None and code.redirect_uri != redirect_uri)
        ):
            return self._invalid_grant()
        code.used = True
        grant = self._grants[code.grant_id]
        access, refresh = self._new_pair(grant)
        self.grant_counts["authorization_code"] += 1
        return self._token_response(access, refresh, ACCESS_TOKEN_SECONDS, grant.scopes)

    def _invalid_grant(self) -> httpx.Response:
        self.invalid_grants += 1
        return _oauth_error(400, "invalid_grant")

    @staticmethod
    def _token_response(access: str, refresh: str | None, expires_in: int, scope: str) -> httpx.Response:
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": expires_in,
            "token_type": "Bearer",
            "scope": scope,
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return _response(200, body, {"Cache-Control": "no-store"})

    def _new_grant(self, client_id: str, tenant_ids: list[str], scopes: str) -> _Grant:
        grant = _Grant(str(uuid.uuid4()), client_id, list(tenant_ids), scopes, str(uuid.uuid4()))
        self._grants[grant.grant_id] = grant
        # As identity's example: UTC without a zone, seven fractional digits. createdDateUtc is the
        # first connection of the tenant to the app, updatedDateUtc the latest (the spec's words).
        stamp = datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0")
        for tenant_id in tenant_ids:
            tenant = self._tenants[tenant_id]
            created = self._first_connected.setdefault((client_id, tenant_id), stamp)
            self._connections[(grant.grant_id, tenant_id)] = {
                "id": str(uuid.uuid4()),
                "authEventId": grant.auth_event_id,
                "tenantId": tenant_id,
                "tenantType": "ORGANISATION",
                "tenantName": tenant.name,
                "createdDateUtc": created,
                "updatedDateUtc": stamp,
            }
        return grant

    def _new_access(self, client_id: str, tenant_ids: list[str], grant_id: str | None) -> str:
        value = secrets.token_urlsafe(32)
        self._access[value] = _AccessToken(
            client_id, list(tenant_ids), self._now() + ACCESS_TOKEN_SECONDS, grant_id
        )
        self._issued.add(value)
        return value

    def _new_pair(self, grant: _Grant) -> tuple[str, str]:
        access = self._new_access(grant.client_id, grant.tenant_ids, grant.grant_id)
        refresh = secrets.token_urlsafe(32)
        self._refresh[refresh] = _RefreshToken(grant.client_id, grant.grant_id, self._now())
        self._issued.add(refresh)
        return access, refresh

    def _get_connections(self, token: _AccessToken) -> httpx.Response:
        with self._lock:
            if token.grant_id is None:
                return _response(200, [])
            body = [dict(c) for (g, _), c in self._connections.items() if g == token.grant_id]
            return _response(200, body)
