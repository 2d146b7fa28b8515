"""Planted secrets never come out: reliability scenarios run with every logger at DEBUG (the root
logger included, as Lambda's ``ApplicationLogLevel=DEBUG`` sets it), then every captured log line,
run and step item, SQS message body, HTTP response and CLI output is searched for the stack's
secrets — the Xero client secret, access and refresh tokens (every one the sandbox issued), the
Clientary API token, the push key and the Xero webhook key — and their base64 forms.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from benchmarks import reliability_harness as harness
from benchmarks import reliability_scenarios as scenarios

pytestmark = pytest.mark.timeout(600)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format is still searched
            message = f"{record.msg!r} {record.args!r}"
        extras = {k: v for k, v in record.__dict__.items() if k not in _PLAIN}
        self.lines.append(f"{record.name} {message} {json.dumps(extras, default=repr)}")


_PLAIN = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


@pytest.fixture
def debug_everywhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    capture = Capture()
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    # Handlers imported earlier at another level are imported again (at DEBUG).
    for name in [n for n in sys.modules if n.startswith("clientary_xero_function_")]:
        monkeypatch.delitem(sys.modules, name)
    loggers = [logging.getLogger()] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    saved = [(lg, lg.level) for lg in loggers]
    # Every logger that has a level of its own at DEBUG too, but for the layer's pins of chatty
    # libraries (botocore, urllib3, … at WARNING): those are what is under test. The root logger is
    # set in the test (pytest resets its level as each phase starts); Powertools' loggers read
    # POWERTOOLS_LOG_LEVEL, as Lambda's ApplicationLogLevel=DEBUG sets AWS_LAMBDA_LOG_LEVEL.
    from clientary_xero import QUIET_LOGGERS

    for lg in loggers:
        pinned = any(lg.name == p or lg.name.startswith(p + ".") for p in QUIET_LOGGERS)
        if lg.level != logging.NOTSET and not pinned:
            lg.setLevel(logging.DEBUG)
        lg.addHandler(capture)  # loggers that do not propagate (Powertools') are heard too
    try:
        yield capture
    finally:
        for lg, level in saved:
            lg.setLevel(level)
            lg.removeHandler(capture)


def secrets_of(s: harness.Stack) -> set[str]:
    """Every secret value the stack holds or the sandbox issued, with base64 forms."""
    import boto3

    values = set(s.env.xero.issued_secrets())
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    client_ids: list[str] = []
    for entry in sm.list_secrets().get("SecretList", []):
        secret = json.loads(sm.get_secret_value(SecretId=entry["ARN"])["SecretString"])
        for key, value in secret.items():
            if not isinstance(value, str):
                continue
            if key == "client_id":
                client_ids.append(value)
            elif key.endswith(("token", "secret", "key")) and len(value) >= 8:
                values.add(value)
    values.add(s.env.clientary.api_token)
    encoded = {base64.b64encode(v.encode()).decode().rstrip("=") for v in values}
    basic = {
        base64.b64encode(f"{cid}:{v}".encode()).decode().rstrip("=") for cid in client_ids for v in values
    }
    return {v for v in values | encoded | basic if len(v) >= 8}


def everything_written(s: harness.Stack) -> dict[str, str]:
    """What the stack wrote where a person or another system can read it."""
    import boto3

    ddb = boto3.resource("dynamodb", region_name="us-east-1")
    items: list[Any] = []
    for name in (s.env.resources.state_table, s.env.resources.workflows_table):
        kwargs: dict[str, Any] = {}
        while True:
            page = ddb.Table(name).scan(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {
        "tables": json.dumps(items, default=str),
        "sqs": json.dumps(s.sqs.bodies),
        "http": json.dumps(s.responses, default=str),
    }


def test_no_planted_secret_reaches_a_log_line_a_run_a_message_a_response_or_the_cli(
    debug_everywhere: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.local import cli

    found: list[str] = []
    planted: set[str] = set()
    # Here, not in the fixture: pytest sets the root logger's level (log_level) as each phase starts.
    logging.getLogger().setLevel(logging.DEBUG)

    def search(s: harness.Stack) -> None:
        for run in s.runs()[:5]:
            cli.main(["runs", "show", run["run_id"]])
        cli.main(["runs", "list", "--limit", "100"])
        secrets = secrets_of(s)
        planted.update(secrets)
        written = everything_written(s)
        written["logs"] = "\n".join(debug_everywhere.lines)
        out = capsys.readouterr()
        written["stdout (CLI, Powertools)"] = out.out + out.err
        for where, text in written.items():
            found.extend(f"{where}: {secret[:6]}…" for secret in secrets if secret in text)
        debug_everywhere.lines.clear()

    harness.STACK_WATCHERS.append(search)
    try:
        scenarios.token_refresh(5)  # a refresh: new tokens, rotated in Secrets Manager
        scenarios.deliveries(4)  # polls, pushes, steps through every handler
        scenarios.fuzz(100)  # hostile and validly signed requests on every route
    finally:
        harness.STACK_WATCHERS.remove(search)
    assert len(planted) > 10  # the search had something to look for
    places = sorted({f.split(":", 1)[0] for f in found})
    assert not found, f"{len(set(found))} secrets found in {places}: {sorted(set(found))[:5]}"
