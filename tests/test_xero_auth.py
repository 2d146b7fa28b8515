"""Token rotation: one refresh for many workers, persisted before use, honest about lock-outs."""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx
import pytest

from clientary_xero.connectors.http import use_transport
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.errors import LockBusy, PermanentError, ReauthorizationRequired, RetryableError
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.storage.state import StateStore
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
)


class CountingSecrets(SecretStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0

    def read(self, secret_id: str) -> dict[str, Any]:
        self.reads += 1
        return super().read(secret_id)

    def write(self, secret_id: str, value: dict[str, Any]) -> None:
        self.writes += 1
        super().write(secret_id, value)


def _works(sandbox: XeroSandbox, token: str, tenant: str) -> bool:  # noqa: F811
    answer = httpx.Client(transport=sandbox).get(
        "https://api.xero.com/api.xro/2.0/Contacts",
        headers={"Authorization": f"Bearer {token}", "xero-tenant-id": tenant},
    )
    return answer.status_code == 200


def test_a_fresh_token_is_served_from_memory(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
) -> None:
    secrets = CountingSecrets()
    tokens = make_provider(secrets=secrets)
    assert tokens.access_token() == connection["access_token"]
    assert tokens.access_token() == connection["access_token"]
    assert tokens.tenant_id() == connection["tenant_id"]
    assert (secrets.reads, secrets.writes, sandbox.refresh_count) == (1, 0, 0)
    assert recorder.records() == []


def test_a_warm_worker_notices_a_reconnection_within_a_minute(
    connection: dict[str, Any],  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    tokens = make_provider()
    assert tokens.tenant_id() == connection["tenant_id"]
    aws.write_secret({**aws.read_secret(), "tenant_id": "another-organisation"})  # connect flow ran
    clock.advance(30)
    assert tokens.tenant_id() == connection["tenant_id"]  # still the copy in memory …
    clock.advance(31)
    assert tokens.tenant_id() == "another-organisation"  # … re-read after a minute, not 30


def test_an_expiring_token_is_refreshed_once_and_saved(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    tokens = make_provider()
    clock.advance(1800 - 59)  # 59 s left: inside the 60 s margin
    token = tokens.access_token()
    assert token != connection["access_token"]
    assert tokens.access_token() == token
    assert sandbox.refresh_count == 1
    saved = aws.read_secret()
    assert saved["access_token"] == token
    assert saved["refresh_token"] != connection["refresh_token"]
    assert saved["expires_at"] == int(clock() + 1800)
    assert _works(sandbox, token, connection["tenant_id"])
    token_requests = [r for r in recorder.records() if r["url"].startswith("https://identity.xero.com")]
    assert len(token_requests) == 1 and token_requests[0]["json"] is None  # the form body is never recorded
    assert leaked(recorder.text(), sandbox) == []


def test_twenty_workers_with_an_expired_token_cause_exactly_one_refresh(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    clock.advance(3600)
    # One provider per worker, as separate Lambdas would have. The wait bound is generous so that a
    # loaded machine cannot turn a slow refresh into LockBusy: what is under test is "one refresh".
    providers = [make_provider(wait_seconds=60) for _ in range(20)]
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results.append(providers[index].access_token())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sandbox.refresh_count == 1
    assert sandbox.invalid_grants == 0
    assert len(set(results)) == 1 and len(results) == 20
    assert aws.read_secret()["access_token"] == results[0]
    assert _works(sandbox, results[0], connection["tenant_id"])


def test_threads_sharing_one_provider_also_refresh_once(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    clock.advance(3600)
    tokens = make_provider()
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(tokens.access_token())) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 20 and len(set(results)) == 1
    assert (sandbox.refresh_count, sandbox.invalid_grants) == (1, 0)


def test_the_rotated_refresh_token_is_in_secrets_manager_before_the_new_access_token_is_used(
    connection: dict[str, Any],  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    seen: list[dict[str, Any]] = []

    class Spy(httpx.BaseTransport):
        """At the first API call, look at what Secrets Manager holds at that very moment."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.host == "api.xero.com" and not seen:
                stored = aws.read_secret()
                seen.append(
                    {
                        "bearer_is_stored": request.headers["authorization"]
                        == f"Bearer {stored['access_token']}",
                        "rotated": stored["refresh_token"] != connection["refresh_token"],
                    }
                )
            return sandbox.handle_request(request)

    clock.advance(3600)
    with use_transport(Spy()):
        XeroClient(make_provider()).request("GET", "/Contacts")
    assert seen == [{"bearer_is_stored": True, "rotated": True}]

    # An hour later (the old refresh token is long dead) a brand-new worker still gets in: what
    # Secrets Manager holds is the live refresh token.
    clock.advance(3600)
    with use_transport(sandbox):
        XeroClient(make_provider()).request("GET", "/Contacts")
    assert (sandbox.refresh_count, sandbox.invalid_grants) == (2, 0)


def test_a_failed_save_returns_no_token_and_the_grace_period_recovers(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    class BrokenWrites(SecretStore):
        def write(self, secret_id: str, value: dict[str, Any]) -> None:
            raise RetryableError("Secrets Manager is busy writing", delay_seconds=5)

    clock.advance(3600)
    with pytest.raises(RetryableError):
        make_provider(secrets=BrokenWrites()).access_token()
    assert aws.read_secret()["refresh_token"] == connection["refresh_token"]  # nothing was saved
    clock.advance(10 * 60)
    token = make_provider().access_token()  # the old refresh token again, inside Xero's grace
    assert sandbox.invalid_grants == 0
    assert _works(sandbox, token, connection["tenant_id"])


def test_a_refresh_that_outlived_its_lease_does_not_overwrite_the_new_holders_secret(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    clock.advance(3600)
    slow = make_provider(state=StateStore(clock=clock))  # leases on the test's clock
    real_request = slow._token_request
    newer = {**aws.read_secret(), "access_token": "saved-by-the-new-holder", "expires_at": clock() + 4000}

    def slow_token_endpoint(secret: dict[str, Any], grant: str) -> dict[str, Any]:
        token = real_request(secret, grant)
        clock.advance(31)  # the lease (30 s) ran out while Xero answered …
        assert StateStore(clock=clock).acquire_lock(slow.lock_name, "another-worker", lease_seconds=30)
        aws.write_secret(newer)  # … and another worker took the lock and saved a newer secret
        return token

    slow._token_request = slow_token_endpoint  # type: ignore[method-assign]
    assert slow.access_token() == "saved-by-the-new-holder"
    assert aws.read_secret()["access_token"] == "saved-by-the-new-holder"  # not overwritten


def test_a_waiter_picks_up_the_token_another_worker_saved(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    clock.advance(3600)
    other = make_provider()
    StateStore().acquire_lock(other.lock_name, "another-worker", lease_seconds=30)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:  # meanwhile, the lock holder refreshed and saved
            aws.write_secret(
                {**connection, "access_token": "saved-by-other", "expires_at": int(clock() + 1800)}
            )

    assert make_provider(sleep=sleep).access_token() == "saved-by-other"
    assert len(sleeps) == 3 and sandbox.refresh_count == 0


def test_a_waiter_gives_up_with_lock_busy_after_a_bounded_wait(
    connection: dict[str, Any],  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    clock.advance(3600)
    tokens = make_provider(wait_seconds=1.0, poll_seconds=0.25)
    StateStore().acquire_lock(tokens.lock_name, "stuck-worker", lease_seconds=30)
    sleeps: list[float] = []
    tokens.sleep = sleeps.append
    with pytest.raises(LockBusy) as caught:
        tokens.access_token()
    assert isinstance(caught.value, RetryableError)
    assert sum(sleeps) <= 1.0 and len(sleeps) == 4
    assert sandbox.refresh_count == 0


def test_invalid_grant_after_a_reread_asks_the_user_to_reconnect(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.revoke_tokens()  # the user disconnected the app in Xero
    clock.advance(3600)
    secrets = CountingSecrets()
    with pytest.raises(ReauthorizationRequired) as caught:
        make_provider(secrets=secrets).access_token()
    error = caught.value
    assert isinstance(error, PermanentError)
    assert "Reconnect Xero" in str(error) and "invalid_grant" in str(error)
    assert sandbox.invalid_grants == 1
    assert secrets.reads == 3  # first look, re-read under the lock, re-read after invalid_grant
    ours = "".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("botocore", "boto3", "moto"))
    )
    assert leaked(str(error) + repr(error.to_dict()) + ours, sandbox) == []


def test_invalid_grant_then_a_token_rotated_elsewhere_is_used(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    clock.advance(3600)
    make_provider().access_token()  # another worker rotates: Secrets Manager now holds the new pair
    clock.advance(3600)  # the old refresh token is past its grace; the new access token expired

    class StaleReads(SecretStore):
        """A replica lagging behind: the first two reads still return the old secret."""

        reads = 0

        def read(self, secret_id: str) -> dict[str, Any]:
            self.reads += 1
            return dict(connection) if self.reads <= 2 else super().read(secret_id)

    token = make_provider(secrets=StaleReads()).access_token()
    assert sandbox.invalid_grants == 1 and sandbox.refresh_count == 2
    assert _works(sandbox, token, connection["tenant_id"])
    assert aws.read_secret()["access_token"] == token


def test_custom_connections_fetch_tokens_with_client_credentials(
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    secret = sandbox.bootstrap_secret(client_id="custom", auth="client_credentials")
    tenant = secret.pop("tenant_id")  # a custom connection needs no tenant id
    aws.write_secret(secret)
    clock.advance(3600)
    client = XeroClient(make_provider())
    answer = client.request("GET", "/Organisation")
    assert answer["Organisations"][0]["OrganisationID"] == tenant
    assert sandbox.grant_counts["client_credentials"] == 1 and sandbox.refresh_count == 0
    stored = aws.read_secret()
    assert "refresh_token" not in stored and stored["expires_at"] == int(clock() + 1800)
    api_calls = [r for r in recorder.records() if r["url"].startswith("https://api.xero.com")]
    # Xero's spec marks the header required everywhere; custom connections are the documented exception.
    recorder.check_contract = False
    assert api_calls and all("xero-tenant-id" not in r["headers"] for r in api_calls)


def test_wrong_client_credentials_are_a_permanent_error_without_the_secret(
    connection: dict[str, Any],  # noqa: F811
    recorder: Recorded,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
    sandbox: XeroSandbox,  # noqa: F811
    clock: FakeClock,  # noqa: F811
    aws: AwsEnv,  # noqa: F811
) -> None:
    wrong = "a-wrong-client-secret-value"
    aws.write_secret({**connection, "client_secret": wrong})
    clock.advance(3600)
    with pytest.raises(PermanentError) as caught:
        make_provider().access_token()
    assert "invalid_client" in str(caught.value)
    assert wrong not in str(caught.value) and leaked(str(caught.value), sandbox) == []
    assert wrong not in recorder.text()
