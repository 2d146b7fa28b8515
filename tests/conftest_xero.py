"""Fixtures for the Xero tests: a fake clock, the Xero sandbox, moto AWS, a recorder, providers.

Import the fixtures you use explicitly (``from tests.conftest_xero import aws, sandbox``); pytest
then finds them in the test module.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from clientary_xero.connectors.base import ActionContext
from clientary_xero.connectors.http import use_transport
from clientary_xero.connectors.xero.auth import XeroTokenProvider
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.local.recording import RecordingTransport, read_records
from clientary_xero.local.resources import create_state_table
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.settings import reset_settings
from clientary_xero.storage.aws import reset_clients
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.storage.state import StateStore
from tests.xero_contract import SPEC_DIR, validate_requests

STATE_TABLE = "test-xero-state"
SECRET_ID = "test/xero"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    """A clock the test moves by hand (the sandbox and the token provider share it)."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@contextlib.contextmanager
def atomic_requests() -> Iterator[None]:
    """Each request to moto applied atomically, as AWS applies it: moto checks a condition and
    then writes, and two threads may otherwise both pass the check (a lock taken twice)."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def atomic(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    BotocoreStubber.process_request = atomic  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]


@dataclass
class AwsEnv:
    state_table: str
    secret_id: str

    def read_secret(self) -> dict[str, Any]:
        raw = boto3.client("secretsmanager").get_secret_value(SecretId=self.secret_id)["SecretString"]
        return json.loads(raw)

    def write_secret(self, value: dict[str, Any]) -> None:
        boto3.client("secretsmanager").put_secret_value(
            SecretId=self.secret_id, SecretString=json.dumps(value)
        )


@dataclass
class Recorded:
    path: Path
    # Checked when the test ends: every Xero request conforms to the OpenAPI description, every
    # write carries an Idempotency-Key, and no credential reached the file.
    check_contract: bool = True

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.path) if self.path.exists() else []

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8") if self.path.exists() else ""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> XeroSandbox:
    return XeroSandbox(clock=clock)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsEnv]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "STATE_TABLE": STATE_TABLE,
        "XERO_SECRET_ID": SECRET_ID,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(), atomic_requests():
        reset_settings()
        reset_clients()
        create_state_table(STATE_TABLE)
        boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString="{}")
        yield AwsEnv(STATE_TABLE, SECRET_ID)
    reset_settings()
    reset_clients()


@pytest.fixture
def connection(sandbox: XeroSandbox, aws: AwsEnv) -> dict[str, Any]:
    """A live OAuth connection to a fresh sandbox organisation, stored in Secrets Manager."""
    secret = sandbox.bootstrap_secret()
    aws.write_secret(secret)
    return secret


@pytest.fixture
def recorder(sandbox: XeroSandbox, tmp_path: Path) -> Iterator[Recorded]:
    """Every request (tokens included) goes through a RecordingTransport into the sandbox."""
    recorded = Recorded(tmp_path / "xero-requests.jsonl")
    with use_transport(RecordingTransport(sandbox, recorded.path)):
        yield recorded
    assert leaked(recorded.text(), sandbox) == [], "a credential reached the recording"
    api = [r for r in recorded.records() if r["url"].startswith("https://api.xero.com/")]
    unkeyed = [
        r["url"] for r in api if r["method"] in ("POST", "PUT", "PATCH") and not _header(r, "Idempotency-Key")
    ]
    assert unkeyed == [], f"writes without an Idempotency-Key: {unkeyed}"
    if recorded.check_contract and (SPEC_DIR.is_dir() or os.environ.get("CI", "").lower() == "true"):
        problems = validate_requests(api)
        assert problems == [], "requests that do not conform to Xero's OpenAPI description:\n" + "\n".join(
            problems
        )


def _header(record: dict[str, Any], name: str) -> str | None:
    return next((v for k, v in record["headers"].items() if k.lower() == name.lower()), None)


ProviderFactory = Callable[..., XeroTokenProvider]


@pytest.fixture
def make_provider(aws: AwsEnv, clock: FakeClock) -> ProviderFactory:
    def make(**overrides: Any) -> XeroTokenProvider:
        options: dict[str, Any] = {"clock": clock, "poll_seconds": 0.02, "wait_seconds": 5.0}
        options.update(overrides)
        secrets = options.pop("secrets", None) or SecretStore()
        state = options.pop("state", None) or StateStore()
        return XeroTokenProvider(aws.secret_id, secrets, state, **options)

    return make


@pytest.fixture
def xero(connection: dict[str, Any], recorder: Recorded, make_provider: ProviderFactory) -> XeroClient:
    """A client on the recorded sandbox connection."""
    return XeroClient(make_provider())


def make_context(
    client: XeroClient, *, run_id: str = "run-1", step_id: str = "step", attempt: int = 1, links: Any = None
) -> ActionContext:
    return ActionContext(
        run_id=run_id,
        step_id=step_id,
        idempotency_key=f"{run_id}:{step_id}:0",
        attempt=attempt,
        links=links if links is not None else StateStore(),
        factories={"xero": lambda: client},
    )


def leaked(text: str, sandbox: XeroSandbox) -> list[str]:
    """Which credentials the sandbox issued appear in ``text`` (shown shortened, never in full)."""
    return [value[:4] + "…" for value in sandbox.issued_secrets() if value and value in text]
