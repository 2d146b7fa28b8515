"""template.yaml, issue 9 "Failures reach a person": the alarm topic and its e-mail, the notifier,
the alarms (failed runs, DLQ depth, queue age, function errors and throttles, API 5xx) and the
dashboard. Checked on the parsed template, as tests/test_template.py does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.settings import Settings
from tests.test_template import (
    LIBRARY_ENV,
    dlq_names,
    function_env,
    functions,
    global_env,
    props,
    resources_of,
    target,
)

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = {"Fn::Sub": "ClientaryXero/${AWS::StackName}"}
DLQ_RETENTION = 14 * 86400


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from tests.test_template import load_template

    return load_template()


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: props(a) for name, a in resources_of(template, "AWS::CloudWatch::Alarm").items()}


def watched(alarm: dict[str, Any]) -> list[tuple[Any, str, dict[str, Any]]]:
    """(namespace, metric name, {dimension: logical id}) of every metric an alarm reads."""
    stats = [
        {
            "Namespace": alarm.get("Namespace"),
            "MetricName": alarm.get("MetricName"),
            "Dimensions": alarm.get("Dimensions") or [],
        }
    ]
    stats += [m["MetricStat"]["Metric"] for m in alarm.get("Metrics") or [] if "MetricStat" in m]
    return [
        (s["Namespace"], s["MetricName"], {d["Name"]: target(d["Value"]) for d in s.get("Dimensions") or []})
        for s in stats
        if s.get("MetricName")
    ]


def emitted_metrics() -> set[str]:
    """The metric names the layer records (``metrics.count``/``observe`` refuse any other)."""
    from clientary_xero.metrics import METRICS

    return set(METRICS)


def test_the_topic_emails_alarm_email_only_when_one_is_given(template: dict[str, Any]) -> None:
    (topic,) = resources_of(template, "AWS::SNS::Topic")
    (name, subscription), *others = resources_of(template, "AWS::SNS::Subscription").items()
    assert not others
    assert props(subscription)["Protocol"] == "email"
    assert props(subscription)["Endpoint"] == {"Ref": "AlarmEmail"}
    assert target(props(subscription)["TopicArn"]) == topic
    assert template["Resources"][name]["Condition"] == "HasAlarmEmail"
    assert template["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""


def test_the_notifier_runs_every_few_minutes_and_may_publish_and_read_every_dlq(
    template: dict[str, Any],
) -> None:
    notifier = props(template["Resources"]["NotifierFunction"])
    assert notifier["CodeUri"].rstrip("/") == "functions/notifier"
    (schedule,) = [
        e["Properties"]["Schedule"] for e in notifier["Events"].values() if e["Type"] == "Schedule"
    ]
    minutes = int(re.fullmatch(r"rate\((\d+) minutes?\)", schedule).group(1))  # type: ignore[union-attr]
    assert 1 <= minutes <= 5, "within minutes"
    # Its timeout stays below the period: runs rarely overlap (an overlap only sends a digest twice).
    assert int(notifier["Timeout"]) < minutes * 60
    env = function_env(template, "NotifierFunction")
    assert target(env["ALARM_TOPIC_ARN"]) == "AlarmTopic"
    assert env["STACK_NAME"] == {"Ref": "AWS::StackName"}
    assert env["REPEATED_FAILURE_THRESHOLD"] == {"Ref": "RepeatedFailureThreshold"}
    known = {n.upper() for n in Settings.names()}
    assert {k for k in env if not k.startswith("POWERTOOLS_") and k not in LIBRARY_ENV} <= known
    dlq_urls = {target(v) for k, v in env.items() if k.endswith("_DLQ_URL")}
    assert dlq_urls == dlq_names(template), "the notifier must watch every DLQ"
    policies = notifier["Policies"]
    assert {"SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["AlarmTopic", "TopicName"]}}} in policies
    assert {"DynamoDBCrudPolicy": {"TableName": {"Ref": "StateTable"}}} in policies
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    readable = {
        target(r) for s in statements if s["Action"] == "sqs:GetQueueAttributes" for r in s["Resource"]
    }
    assert readable == dlq_names(template)


def test_metrics_are_in_one_namespace_per_stack_that_alarms_and_dashboard_read(
    template: dict[str, Any],
) -> None:
    assert global_env(template)["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    failed = alarms(template)["FailedRunsAlarm"]
    assert watched(failed) == [(NAMESPACE, "RunsFailed", {})]  # the stack-wide total, no dimension
    assert failed["ComparisonOperator"] == "GreaterThanThreshold" and float(failed["Threshold"]) == 0
    emitted = emitted_metrics()
    assert "RunsFailed" in emitted
    for name, alarm in alarms(template).items():
        for namespace, metric, _ in watched(alarm):
            if namespace == NAMESPACE:
                assert metric in emitted, f"{name} watches {metric}, which nothing records"
    body = props(template["Resources"]["OperationsDashboard"])["DashboardBody"]["Fn::Sub"]
    assert body[1] == {"Namespace": NAMESPACE}


def test_every_queue_has_an_alarm_on_the_age_of_its_oldest_message(template: dict[str, Any]) -> None:
    queues = set(resources_of(template, "AWS::SQS::Queue"))
    aged: dict[str, float] = {}
    for alarm in alarms(template).values():
        for namespace, metric, dims in watched(alarm):
            if namespace == "AWS/SQS" and metric == "ApproximateAgeOfOldestMessage":
                aged[str(dims["QueueName"])] = float(alarm["Threshold"])
    assert set(aged) == queues
    for dlq in dlq_names(template):
        assert aged[dlq] < DLQ_RETENTION, f"{dlq}: told before SQS deletes the message"
    for queue in queues - dlq_names(template):
        assert aged[queue] <= 3600, queue


def test_every_function_has_an_errors_alarm_and_a_throttles_one(
    template: dict[str, Any],
) -> None:
    by_metric: dict[str, set[str]] = {"Errors": set(), "Throttles": set()}
    for alarm in alarms(template).values():
        assert alarm.get("AlarmActions") == [{"Ref": "AlarmTopic"}]
        for namespace, metric, dims in watched(alarm):
            if namespace == "AWS/Lambda" and metric in by_metric:
                by_metric[metric].add(str(dims["FunctionName"]))
    every = set(functions(template))
    clientary_triggers = {
        n
        for n in every
        if props(template["Resources"][n])["CodeUri"].rstrip("/").endswith("clientary_trigger")
    }
    assert len(clientary_triggers) == 10  # generated by Fn::ForEach, expanded here
    assert by_metric["Errors"] == every
    assert by_metric["Throttles"] == every


def test_api_5xx_alarm(template: dict[str, Any]) -> None:
    found = [
        a
        for a in alarms(template).values()
        if ("AWS/ApiGateway", "5xx", {"ApiId": "WebhookApi"}) in watched(a)
    ]
    (alarm,) = found
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and float(alarm["Threshold"]) == 0


def _substituted(template: dict[str, Any]) -> dict[str, Any]:
    text, variables = props(template["Resources"]["OperationsDashboard"])["DashboardBody"]["Fn::Sub"]
    resources = template["Resources"]

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables or name.startswith("AWS::"):
            return f"<{name}>"
        logical, _, attribute = name.partition(".")
        assert logical in resources, f"the dashboard names {logical}, not a resource of this template"
        assert attribute in ("Arn", "QueueName"), name
        return f"<{name}>"

    return dict(json.loads(re.sub(r"\$\{([^}]+)\}", value, text)))


def test_the_dashboard_shows_runs_xero_calls_against_the_limits_queues_and_trigger_lag(
    template: dict[str, Any],
) -> None:
    widgets = _substituted(template)["widgets"]
    titles = [w["properties"]["title"] for w in widgets]
    for wanted in (
        "Runs by status",
        "Xero calls and 429s a minute",
        "Xero calls a day",
        "Queue depth",
        "Age of the oldest message",
        "Trigger lag",
    ):
        assert any(t.startswith(wanted) for t in titles), wanted
    ours = {m[1] for w in widgets for m in w["properties"].get("metrics", []) if m[0] == "<Namespace>"}
    assert {
        "RunsStarted",
        "RunsSucceeded",
        "RunsFailed",
        "RunsFiltered",
        "RunsWaiting",
        "XeroCalls",
        "Xero429Minute",
        "Xero429Day",
        "TriggerLag",
    } <= ours
    assert ours <= emitted_metrics(), (
        f"the dashboard shows metrics nothing records: {ours - emitted_metrics()}"
    )
    limits = {
        a["value"] for w in widgets for a in w["properties"].get("annotations", {}).get("horizontal", [])
    }
    assert limits == {60, 5000}  # Xero's per-organisation limits, a minute and a day
    depth = {
        m[3]
        for w in widgets
        if w["properties"]["title"].startswith("Queue depth")
        for m in w["properties"]["metrics"]
    }
    assert depth == {f"<{q}.QueueName>" for q in resources_of(template, "AWS::SQS::Queue")}
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    assert {a.removeprefix("<").removesuffix(".Arn>") for a in alarm_widget["properties"]["alarms"]} <= set(
        alarms(template)
    )
