"""Helpers for the Clientary tests: a moto State table, a controllable clock, the sandbox, samples.

Imported explicitly by the tests that need them (the shared fixtures live in conftest.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from clientary_xero.connectors.clientary.client import ClientaryClient
from clientary_xero.local.clientary_sandbox import ClientarySandbox
from clientary_xero.local.resources import create_state_table
from clientary_xero.settings import reset_settings
from clientary_xero.storage.aws import reset_clients
from clientary_xero.storage.state import StateStore

SAMPLES = Path(__file__).resolve().parents[1] / "shared" / "clientary_xero" / "local" / "samples"
STATE_TABLE = "clientary-xero-test-state"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


class FakeClock:
    """A clock that moves only when told (``advance``); callable like ``datetime.now(UTC)``."""

    def __init__(self, start: datetime = datetime(2024, 3, 10, 18, 0, tzinfo=UTC)) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@contextmanager
def moto_aws(extra_env: dict[str, str] | None = None) -> Iterator[None]:
    """moto with fake credentials and a State table (pk/sk, GSI gsi1); STATE_TABLE points at it."""
    from moto import mock_aws

    env = {**AWS_ENV, "STATE_TABLE": STATE_TABLE, **(extra_env or {})}
    with mock.patch.dict(os.environ, env), mock_aws():
        reset_settings()
        reset_clients()

        create_state_table(STATE_TABLE)
        try:
            yield
        finally:
            reset_settings()
            reset_clients()


def sandbox_and_client(
    clock: FakeClock | None = None, **sandbox_kwargs: Any
) -> tuple[ClientarySandbox, ClientaryClient]:
    sandbox = ClientarySandbox(clock=clock or FakeClock(), **sandbox_kwargs)
    secret = sandbox.bootstrap_secret()
    return sandbox, ClientaryClient(secret["subdomain"], secret["api_token"], transport=sandbox)


def state_store() -> StateStore:
    return StateStore(STATE_TABLE)


def load_sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


def sample_names() -> list[str]:
    return sorted(p.name for p in SAMPLES.glob("invoice_*.json"))
