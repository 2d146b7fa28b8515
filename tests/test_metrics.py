"""The EMF lines of clientary_xero/metrics.py, and a digest that cannot be published (usecases/alerts.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clientary_xero import metrics
from clientary_xero.errors import RetryableError
from clientary_xero.settings import get_settings
from clientary_xero.storage.notices import NoticeStore
from clientary_xero.usecases.alerts import mask, send_digest


@pytest.fixture(autouse=True)
def _clean() -> None:
    metrics.reset()


def test_counts_are_stack_wide_and_per_workflow_only_where_asked() -> None:
    metrics.count("RunsFailed", workflow="a")
    metrics.count("RunsFailed", workflow="b")
    metrics.count("RunsFailed", workflow="a")
    metrics.count("XeroCalls", 3)
    lines: list[str] = []
    metrics.flush(lines.append)
    docs = [json.loads(line) for line in lines]
    stack_wide = [d for d in docs if d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]]
    (everything,) = stack_wide
    assert (everything["RunsFailed"], everything["XeroCalls"]) == (3, 3)
    assert everything["_aws"]["CloudWatchMetrics"][0]["Namespace"]
    by_workflow = {d["workflow"]: d for d in docs if d not in stack_wide}
    assert {w: d["RunsFailed"] for w, d in by_workflow.items()} == {"a": 2, "b": 1}
    for d in by_workflow.values():
        assert d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["workflow"]]
        assert [m["Name"] for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["RunsFailed"]
    metrics.flush(lines.append)  # flushed once: nothing left
    assert len(lines) == len(docs)


def test_observations_keep_every_value_at_most_a_hundred_a_document() -> None:
    for i in range(150):
        metrics.observe("TriggerLag", i, metrics.SECONDS)
    docs = metrics.flush(lambda _: None)
    assert [len(d["TriggerLag"]) for d in docs] == [100, 50]
    assert docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "TriggerLag", "Unit": "Seconds"}]


def test_outside_lambda_nothing_is_printed(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    metrics.count("RunsStarted")
    assert metrics.flush()  # recorded and cleared …
    assert capsys.readouterr().out == ""  # … but a CLI's output stays its own
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    metrics.count("RunsStarted")

    @metrics.flushed
    def handler() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        handler()
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["RunsStarted"] == 1  # flushed even when the handler raised


def test_a_digest_that_cannot_be_published_keeps_its_notices(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALARM_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:alarms")
    get_settings.cache_clear()
    store = NoticeStore()
    notice = {"run_id": "r1", "workflow_id": "w", "step_id": "s", "message": "refused", "messages": []}
    store.write(store.failed_run_writes(notice))

    def down(topic: str, subject: str, body: str) -> str:
        raise RetryableError("SNS is down")

    with pytest.raises(RetryableError):
        send_digest(publish=down, depth=lambda url: 0)
    assert [n["run_id"] for n in store.pending()] == ["r1"]  # nothing lost
    sent: list[str] = []
    send_digest(publish=lambda topic, subject, body: sent.append(subject) or "id", depth=lambda url: 0)
    assert sent == ["clientary-xero clientary-xero: 1 run FAILED"]
    assert store.pending() == []


def test_a_token_in_a_service_message_is_masked() -> None:
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjFDQUY4RTY2NzcyRDZEQzAyOEQ2NzI2RkQwMjYxNTgxNTcwRUZDMTkifQ"
    assert token not in mask(f"refused: Authorization: Bearer {token}")
    assert token not in mask(f"echoed {token} back")
    assert mask("Contact name is required") == "Contact name is required"


def test_an_unknown_metric_name_is_refused() -> None:
    with pytest.raises(ValueError, match="RunFailed"):
        metrics.count("RunFailed")  # a typo: no alarm would ever see it
