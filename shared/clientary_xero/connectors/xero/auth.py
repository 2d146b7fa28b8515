"""Xero access tokens, with refresh-token rotation that survives many concurrent workers.

Xero rotates the refresh token on every refresh and kills the previous one 30 minutes later
(reference/xero-api.md §3.2). Two Lambdas refreshing the same connection at once, or one that
refreshes and dies before saving, is how integrations end up locked out with ``invalid_grant``.
So, per connection:

1. the secret is kept in memory while its access token has more than a minute left;
2. otherwise one worker takes a lease lock in the State table, **re-reads** the secret (another
   worker may have refreshed meanwhile), refreshes only if it is still stale, and **writes the
   rotated refresh token to Secrets Manager before** the new access token is used; then releases;
3. the others poll the secret with short sleeps (bounded) and pick up the new token, or give up
   with ``LockBusy`` (retryable);
4. ``invalid_grant`` makes the holder re-read the secret once (someone may have rotated it outside
   the lock, e.g. the connect flow); if that does not help the connection needs re-authorising.

If the Secrets Manager write fails after a refresh, the old refresh token still works for Xero's
30-minute grace and yields the same new pair, so the next attempt recovers.

Custom connections (``auth: client_credentials``) have no refresh token: a new access token is
fetched with the client credentials, under the same lock so workers share it.

The secret may also hold ``pending``: a newer consent's token set waiting for the user to choose an
organisation (usecases/xero_connect.py). The provider never uses it — the live keys and
``tenant_id`` keep working until the choice moves it live — and a refresh writes it back untouched.

Token values never reach logs or exception messages.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from clientary_xero.connectors.http import default_timeout, get_transport
from clientary_xero.errors import LockBusy, PermanentError, ReauthorizationRequired, RetryableError
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.storage.state import StateStore

logger = logging.getLogger(__name__)

TOKEN_URL = "https://identity.xero.com/connect/token"  # noqa: S105 (a URL, not a password)
# Refresh when less than this is left, so a token does not expire between check and use.
REFRESH_MARGIN_SECONDS = 60
LOCK_LEASE_SECONDS = 30
WAIT_SECONDS = 10.0
POLL_SECONDS = 0.25
# How long a warm container trusts its copy of the connection secret.
SECRET_MAX_AGE_SECONDS = 60


class _InvalidGrant(Exception):
    pass


class XeroTokenProvider:
    """Access tokens and the tenant id for one Xero connection (one secret)."""

    def __init__(
        self,
        secret_id: str,
        secrets: SecretStore,
        state: StateStore,
        *,
        connection: str = "default",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        wait_seconds: float = WAIT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.secret_id = secret_id
        self.secrets = secrets
        self.state = state
        self.connection = connection
        self.clock = clock
        self.sleep = sleep
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self._secret: dict[str, Any] | None = None
        self._loaded_at = 0.0
        # Threads of one process queue here; the lease lock serialises processes.
        self._mutex = threading.Lock()

    @property
    def lock_name(self) -> str:
        return f"xero-token#{self.connection}"

    # ------------------------------------------------------------------ public
    def access_token(self) -> str:
        """A live access token (refreshing it first when less than a minute is left)."""
        secret = self._cached()
        if self._fresh(secret):
            return str(secret["access_token"])
        return self._renew(rejected=None)

    def force_refresh(self, rejected_token: str) -> str:
        """Xero refused ``rejected_token`` (401 TokenExpired): get a different live token."""
        return self._renew(rejected=rejected_token)

    def tenant_id(self) -> str:
        """The organisation's tenant id; ``""`` for a custom connection that did not record one."""
        secret = self._cached()
        tenant = str(secret.get("tenant_id") or "")
        if not tenant and self.auth_kind(secret) == "oauth":
            raise PermanentError(
                f"the Xero connection secret {self.secret_id!r} has no tenant_id: "
                "reconnect Xero and choose an organisation",
                service="xero",
            )
        return tenant

    def granted_scopes(self) -> set[str] | None:
        """The scopes Xero granted the connection, as its secret records them (None: not recorded)."""
        scopes = str(self._cached().get("scopes") or "").split()
        return set(scopes) or None

    def auth_kind(self, secret: dict[str, Any] | None = None) -> str:
        secret = secret if secret is not None else (self._secret or self._load())
        return str(secret.get("auth") or "oauth")

    # ---------------------------------------------------------------- internals
    def _cached(self) -> dict[str, Any]:
        """The secret, re-read at least every ``SECRET_MAX_AGE_SECONDS``: a warm Lambda must notice
        a reconnection (a new organisation, new tokens) soon, not when its access token expires."""
        if self._secret is None or self.clock() - self._loaded_at > SECRET_MAX_AGE_SECONDS:
            return self._load()
        return self._secret

    def _load(self) -> dict[str, Any]:
        secret = self.secrets.read(self.secret_id)
        missing = [k for k in ("client_id", "client_secret") if not secret.get(k)]
        if missing:
            raise PermanentError(
                f"the Xero connection secret {self.secret_id!r} lacks {', '.join(missing)}", service="xero"
            )
        self._secret = secret
        self._loaded_at = self.clock()
        return secret

    def _fresh(self, secret: dict[str, Any], rejected: str | None = None) -> bool:
        token = secret.get("access_token")
        expires_at = secret.get("expires_at")
        if not token or expires_at is None:
            return False
        if rejected is not None and hmac.compare_digest(str(token), rejected):
            return False
        try:
            return float(expires_at) - self.clock() > REFRESH_MARGIN_SECONDS
        except (TypeError, ValueError):
            return False

    def _renew(self, rejected: str | None) -> str:
        with self._mutex:
            # Another thread of this process may have renewed while this one waited.
            if self._secret is not None and self._fresh(self._secret, rejected):
                return str(self._secret["access_token"])
            owner = f"{uuid.uuid4()}"
            polls = max(1, math.ceil(self.wait_seconds / self.poll_seconds))
            for attempt in range(polls + 1):
                if self.state.acquire_lock(self.lock_name, owner, lease_seconds=LOCK_LEASE_SECONDS):
                    try:
                        return self._renew_locked(rejected, owner)
                    finally:
                        self.state.release_lock(self.lock_name, owner)
                if attempt == polls:
                    break
                self.sleep(self.poll_seconds)
                secret = self._load()
                if self._fresh(secret, rejected):
                    return str(secret["access_token"])
            raise LockBusy(self.lock_name, delay_seconds=5)

    def _renew_locked(self, rejected: str | None, owner: str) -> str:
        secret = self._load()  # re-read under the lock: another worker may have refreshed already
        if self._fresh(secret, rejected):
            return str(secret["access_token"])
        if self.auth_kind(secret) == "client_credentials":
            token = self._token_request(secret, "client_credentials")
        else:
            try:
                token = self._token_request(secret, "refresh_token")
            except _InvalidGrant:
                again = self._load()
                if self._fresh(again, rejected):
                    return str(again["access_token"])
                if not again.get("refresh_token") or again.get("refresh_token") == secret.get(
                    "refresh_token"
                ):
                    raise self._reauthorize() from None
                secret = again  # rotated outside the lock (e.g. a new connect): try the newer one once
                try:
                    token = self._token_request(secret, "refresh_token")
                except _InvalidGrant:
                    raise self._reauthorize() from None
        # Fencing: the refresh may have outlived our lease (a slow token endpoint). If another worker
        # holds the lock now, its secret is the newer truth: do not overwrite it with ours. (Our new
        # pair came from the same refresh token within Xero's grace, so dropping it loses nothing.)
        if not self.state.acquire_lock(self.lock_name, owner, lease_seconds=LOCK_LEASE_SECONDS):
            current = self._load()
            if self._fresh(current, rejected):
                return str(current["access_token"])
            raise LockBusy(self.lock_name, delay_seconds=5)
        updated = dict(secret)
        updated["access_token"] = token["access_token"]
        updated["expires_at"] = int(self.clock() + int(token.get("expires_in") or 1800))
        if token.get("refresh_token"):
            updated["refresh_token"] = token["refresh_token"]
        if token.get("scope"):
            updated["scopes"] = token["scope"]
        # Persist before use: once Xero issued the new pair, the old refresh token has 30 minutes left.
        self.secrets.write(self.secret_id, updated)
        self._secret = updated
        self._works_again()
        logger.info(
            "renewed the Xero access token of connection %r (%s)", self.connection, self.auth_kind(updated)
        )
        return str(updated["access_token"])

    def _works_again(self) -> None:
        """A refresh worked: a "reconnect Xero" already told is over, and the next is told again
        (usecases/alerts.py). One delete per refresh, at most one per 30 minutes and container."""
        from clientary_xero.storage.notices import RECONNECT_FLAG, NoticeStore

        try:
            NoticeStore(self.state.table_name).clear_flag(RECONNECT_FLAG)
        except Exception:  # the token is saved; the flag only delays the next reconnect notice
            logger.warning("could not clear the Xero reconnect notice flag", exc_info=True)

    def _reauthorize(self) -> ReauthorizationRequired:
        return ReauthorizationRequired(
            f"Xero refused the refresh token of connection {self.connection!r} (invalid_grant): "
            "it expired or the app was disconnected. Reconnect Xero (run the connect flow again) to resume.",
            service="xero",
        )

    def _token_request(self, secret: dict[str, Any], grant_type: str) -> dict[str, Any]:
        import httpx  # deferred with authlib: a step that makes no Xero call imports neither
        from authlib.integrations.httpx_client import OAuth2Client, OAuthError

        client = OAuth2Client(
            client_id=str(secret["client_id"]),
            client_secret=str(secret["client_secret"]),
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method name)
            transport=get_transport(),
            timeout=default_timeout(),
        )
        try:
            with client:
                if grant_type == "refresh_token":
                    if not secret.get("refresh_token"):
                        raise self._reauthorize()
                    token = client.refresh_token(TOKEN_URL, refresh_token=str(secret["refresh_token"]))
                else:
                    extra = {"scope": str(secret["scopes"])} if secret.get("scopes") else {}
                    token = client.fetch_token(TOKEN_URL, grant_type="client_credentials", **extra)
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                logger.warning("Xero answered invalid_grant for connection %r", self.connection)
                raise _InvalidGrant() from None
            if exc.error in ("invalid_client", "unauthorized_client"):
                raise PermanentError(
                    f"Xero rejected the app credentials of connection {self.connection!r} ({exc.error}): "
                    "check client_id and client_secret in the connection secret",
                    service="xero",
                ) from None
            raise PermanentError(
                f"Xero's token endpoint refused the request ({exc.error})", service="xero"
            ) from None
        except httpx.HTTPStatusError as exc:
            raise RetryableError(
                f"Xero's token endpoint failed ({exc.response.status_code})",
                delay_seconds=30,
                status=exc.response.status_code,
                service="xero",
            ) from None
        except httpx.TransportError as exc:
            raise RetryableError(
                f"cannot reach Xero's token endpoint ({type(exc).__name__})", delay_seconds=30, service="xero"
            ) from None
        except ValueError:
            raise RetryableError(
                "Xero's token endpoint answered with something other than JSON",
                delay_seconds=30,
                service="xero",
            ) from None
        if not isinstance(token, dict) or not token.get("access_token"):
            raise RetryableError(
                "Xero's token endpoint answered without an access token", delay_seconds=30, service="xero"
            )
        return dict(token)
