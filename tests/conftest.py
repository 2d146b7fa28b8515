"""Shared fixtures: AWS in moto (in-process), settings reset around every test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from clientary_xero.settings import reset_settings
from clientary_xero.storage.aws import reset_clients

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    reset_settings()
    reset_clients()
    yield
    reset_settings()
    reset_clients()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The stack's tables, queues and secrets in moto; env vars point the code at them."""
    from moto import mock_aws

    from clientary_xero.local.resources import create_resources

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        reset_clients()
        resources = create_resources(max_attempts=3)
        for key, value in resources.environ(3).items():
            monkeypatch.setenv(key, value)
        reset_settings()
        yield resources
        reset_clients()


@pytest.fixture
def local_env() -> Iterator[object]:
    """The whole stack in-process with the Xero and Clientary sandboxes (what `make demo` uses)."""
    from clientary_xero.local.environment import LocalEnvironment

    with LocalEnvironment(max_attempts=3) as env:
        yield env


def pytest_report_header(config: pytest.Config) -> str:
    """Say up front whether the Xero contract checks run (they need the team folder beside the repo)."""
    from tests.xero_contract import SPEC_DIR

    if SPEC_DIR.is_dir():
        return f"Xero contract checks: on ({SPEC_DIR})"
    return (
        f"Xero contract checks: OFF — {SPEC_DIR} not found (a clone without the team folder); "
        "tests that need it skip, and fail when CI=true"
    )
