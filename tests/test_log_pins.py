"""A root logger at DEBUG (Lambda's ApplicationLogLevel=DEBUG) prints no secret.

botocore logs request and response bodies at DEBUG — GetSecretValue's and PutSecretValue's
SecretString included — and httpcore the wire exchanges; the package pins those loggers at WARNING
on import (clientary_xero/__init__.py). These tests drive real handlers that read and write
secrets (moto, the sandboxes) with every logger at DEBUG and look for the planted values.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from clientary_xero.local.environment import LocalEnvironment
from clientary_xero.storage.secrets import SecretStore


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str) and len(value) >= 12:
        yield value


@pytest.fixture
def botocore_stream() -> Iterator[io.StringIO]:
    """A handler on botocore's own logger, as someone debugging the SDK would attach."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    logging.getLogger("botocore").addHandler(handler)
    yield stream
    logging.getLogger("botocore").removeHandler(handler)


def test_handlers_print_no_secret_with_the_root_logger_at_debug(
    local_env: LocalEnvironment, caplog: pytest.LogCaptureFixture, botocore_stream: io.StringIO
) -> None:
    from clientary_xero.usecases.steps import reset_runner
    from clientary_xero.usecases.xero_connect import issue_ticket
    from clientary_xero.workflows.loader import read_document
    from tests.test_xero_connect import WORKFLOW, Browser, consent

    env = local_env
    assert env.resources is not None
    ids = (
        env.resources.xero_secret_id,
        env.resources.clientary_secret_id,
        env.resources.clientary_push_secret_id,
        env.resources.xero_webhook_secret_id,
    )
    reset_runner()
    env.put_workflow(read_document(WORKFLOW))
    caplog.set_level(logging.DEBUG)  # the root logger: every logger without a level of its own

    # The connect handler reads the Xero secret and writes new tokens into it.
    browser = Browser()
    connect = browser.get("/oauth/xero/connect", {"ticket": issue_ticket(env.state)})
    query = parse_qs(urlsplit(connect["headers"]["location"]).query)
    tenant = env.xero.create_tenant("Planted Org")
    assert (
        browser.get(
            "/oauth/xero/callback", {"code": consent(env, query, [tenant]), "state": query["state"][0]}
        )["statusCode"]
        == 200
    )
    # A push (webhook key, Clientary token) and the Xero step (the token, a refresh).
    env.xero.advance(3600)
    client = env.clientary.seed_client("Planted Client")
    invoice = env.clientary.add_invoice(
        client["id"], [{"title": "Work", "quantity": 1, "price": 10.0}], status=1
    )
    assert env.push("clientary.new_invoice", invoice["id"])["statusCode"] == 202
    env.drain()
    assert [run["status"] for run in env.state.list_runs()] == ["SUCCEEDED"]

    planted = set(env.xero.issued_secrets())
    for secret_id in ids:
        planted |= set(_leaves(SecretStore().read(secret_id)))
    planted -= {tenant, env.resources.xero_secret_id}  # ids, not secrets
    planted = {p for p in planted if p not in ("oauth", "client_credentials") and " " not in p}
    assert len(planted) >= 6  # client secret, push key, Clientary token, several token pairs
    captured = caplog.text + botocore_stream.getvalue()
    assert caplog.records  # something was captured at DEBUG …
    assert [p[:6] for p in planted if p in captured] == []  # … and no secret in it


def test_the_pins_leave_library_warnings_visible(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("botocore.credentials").debug("a debug line")
    logging.getLogger("botocore.credentials").warning("a warning line")
    assert [r.getMessage() for r in caplog.records] == ["a warning line"]
