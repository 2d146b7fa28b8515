"""template.yaml hygiene, checked on the parsed template: each test fails when someone breaks the rule.

The rules (STYLE.md, "Template hygiene"): every work queue redrives to a DLQ that has an alarm,
visibility timeout >= 6 x the consumer's timeout, partial batch responses on SQS events, no IAM
statement on every resource, one log group with retention per function, explicit routes only, the
layer built for python3.12, environment variables the Settings model knows. Also the sample events
in events/ and, when the SAM virtualenv exists, cfn-lint itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.settings import Settings
from tests.cfn_template import TEMPLATE, load_raw_template, load_template

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
SAMPLE_PUSH_KEY = "local-sample-push-key"
SAMPLE_PUSH_TIMESTAMP = 1767225600  # = local.resources.SAMPLE_PUSH_TIMESTAMP
PUSH_HEADER = "x-clientary-xero-signature"
LAMBDA_DEFAULT_TIMEOUT = 3
SQS_DEFAULT_RETENTION = 345_600
XERO_MAX_IN_FLIGHT = 5  # Xero: 5 concurrent calls per organisation


# --------------------------------------------------------------------------------- template loading
# load_template() applies AWS::LanguageExtensions (the Fn::ForEach blocks) the way CloudFormation
# does before SAM (tests/cfn_template.py, tested in tests/test_cfn_template.py): every check below
# sees each generated trigger function as if it were written out.
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resources_of(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] in types}


def props(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("Properties") or {}


def target(value: Any) -> str | None:
    """The logical id a ``!Ref X`` or ``!GetAtt X.attr`` points at, else None."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of(template, "AWS::Serverless::Function")


def function_setting(template: dict[str, Any], name: str, key: str, default: Any = None) -> Any:
    """A function property, falling back to Globals.Function as SAM does."""
    own = props(template["Resources"][name])
    if key in own:
        return own[key]
    return (template.get("Globals") or {}).get("Function", {}).get(key, default)


def function_env(template: dict[str, Any], name: str) -> dict[str, Any]:
    """Globals variables merged with the function's own (SAM merges the two maps)."""
    merged = dict(global_env(template))
    own = props(template["Resources"][name]).get("Environment") or {}
    merged.update(own.get("Variables") or {})
    return merged


def global_env(template: dict[str, Any]) -> dict[str, Any]:
    environment = (template.get("Globals") or {}).get("Function", {}).get("Environment") or {}
    return environment.get("Variables") or {}


def events_of(template: dict[str, Any], *types: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(function, event name, event properties) for every function event of the given types."""
    found = []
    for fn, resource in functions(template).items():
        for event_name, event in (props(resource).get("Events") or {}).items():
            if event["Type"] in types:
                found.append((fn, event_name, event.get("Properties") or {}))
    return found


def dlq_names(template: dict[str, Any]) -> set[str]:
    queues = resources_of(template, "AWS::SQS::Queue")
    return {
        t
        for q in queues.values()
        if (t := target((props(q).get("RedrivePolicy") or {}).get("deadLetterTargetArn"))) is not None
    }


# ------------------------------------------------------------------------------------------ queues
def test_every_work_queue_redrives_to_a_dlq_after_max_attempts(template: dict[str, Any]) -> None:
    queues = resources_of(template, "AWS::SQS::Queue")
    dlqs = dlq_names(template)
    work_queues = set(queues) - dlqs
    assert work_queues, "the template has no work queue"
    for name in sorted(work_queues):
        redrive = props(queues[name]).get("RedrivePolicy")
        assert redrive, f"{name} has no RedrivePolicy: a poison message would be retried for days"
        dlq = target(redrive.get("deadLetterTargetArn"))
        assert dlq in queues, f"{name} redrives to {dlq!r}, which is not a queue of this template"
        assert "RedrivePolicy" not in props(queues[dlq]), f"the DLQ {dlq} must not redrive further"
        # The code fails a run on the last attempt: its MAX_ATTEMPTS must be the queue's count.
        assert redrive.get("maxReceiveCount") == {"Ref": "MaxAttempts"}, name
    assert global_env(template).get("MAX_ATTEMPTS") == {"Ref": "MaxAttempts"}


def test_every_dlq_has_an_alarm_that_notifies(template: dict[str, Any]) -> None:
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    dlqs = dlq_names(template)
    assert dlqs
    for dlq in sorted(dlqs):
        matching = []
        for alarm in alarms.values():
            p = props(alarm)
            dims = {d["Name"]: target(d["Value"]) for d in p.get("Dimensions") or []}
            if p.get("Namespace") != "AWS/SQS" or dims.get("QueueName") != dlq:
                continue
            fires_on_one = (
                p.get("ComparisonOperator") == "GreaterThanThreshold" and float(p.get("Threshold", -1)) == 0
            ) or (
                p.get("ComparisonOperator") == "GreaterThanOrEqualToThreshold"
                and float(p.get("Threshold", -1)) == 1
            )
            if p.get("MetricName") == "ApproximateNumberOfMessagesVisible" and fires_on_one:
                matching.append(p)
        assert matching, f"no alarm fires when a message reaches the DLQ {dlq}"
        for p in matching:
            assert p.get("AlarmActions"), f"the alarm on {dlq} notifies nobody (no AlarmActions)"
            for action in p["AlarmActions"]:
                assert template["Resources"][target(action)]["Type"] == "AWS::SNS::Topic"


def test_dlq_keeps_messages_longer_than_its_source_queue(template: dict[str, Any]) -> None:
    # A dead-lettered message keeps its original enqueue time: a DLQ that keeps messages no longer
    # than its source would drop them as soon as they arrive.
    queues = resources_of(template, "AWS::SQS::Queue")
    for name, queue in queues.items():
        redrive = props(queue).get("RedrivePolicy")
        if not redrive:
            continue
        dlq = props(queues[target(redrive["deadLetterTargetArn"])])
        source_retention = int(props(queue).get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION))
        assert int(dlq.get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION)) == 14 * 86400
        assert int(dlq["MessageRetentionPeriod"]) > source_retention, name


def test_sqs_events_report_batch_item_failures(template: dict[str, Any]) -> None:
    sqs_events = events_of(template, "SQS")
    assert sqs_events, "no function consumes a queue"
    for fn, event, p in sqs_events:
        assert "ReportBatchItemFailures" in (p.get("FunctionResponseTypes") or []), (
            f"{fn}.{event}: without ReportBatchItemFailures one failed step retries the whole batch"
        )


def test_visibility_timeout_is_six_times_the_consumer_timeout(template: dict[str, Any]) -> None:
    for fn, event, p in events_of(template, "SQS"):
        queue = target(p["Queue"])
        assert queue in resources_of(template, "AWS::SQS::Queue"), f"{fn}.{event} consumes an unknown queue"
        timeout = int(function_setting(template, fn, "Timeout", LAMBDA_DEFAULT_TIMEOUT))
        visibility = int(props(template["Resources"][queue]).get("VisibilityTimeout", 30))
        assert visibility >= 6 * timeout, (
            f"{queue} VisibilityTimeout {visibility} < 6 x {fn} Timeout {timeout}"
        )


def test_step_lease_outlives_an_invocation_and_expires_before_redelivery(template: dict[str, Any]) -> None:
    for fn, _, p in events_of(template, "SQS"):
        timeout = int(function_setting(template, fn, "Timeout", LAMBDA_DEFAULT_TIMEOUT))
        visibility = int(props(template["Resources"][target(p["Queue"])])["VisibilityTimeout"])
        lease = int(function_env(template, fn).get("STEP_LEASE_SECONDS", Settings().step_lease_seconds))
        assert timeout < lease <= visibility, (
            f"{fn}: STEP_LEASE_SECONDS {lease} must exceed Timeout {timeout} and not exceed the "
            f"queue's VisibilityTimeout {visibility}, or a redelivered step finds its lease still held"
        )


def test_xero_consumers_stay_within_xeros_concurrency_limit(template: dict[str, Any]) -> None:
    for fn, event, p in events_of(template, "SQS"):
        if target(p["Queue"]) != "XeroActionQueue":
            continue
        concurrency = (p.get("ScalingConfig") or {}).get("MaximumConcurrency")
        assert concurrency is not None and int(concurrency) <= XERO_MAX_IN_FLIGHT, f"{fn}.{event}"


# ------------------------------------------------------------------------------------------- IAM
def _statements(policy: Any) -> list[dict[str, Any]]:
    statements = policy.get("Statement", []) if isinstance(policy, dict) else []
    return [statements] if isinstance(statements, dict) else list(statements)


def all_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for name, resource in template["Resources"].items():
        p = props(resource)
        if resource["Type"] == "AWS::Serverless::Function":
            policies = p.get("Policies") or []
            for policy in policies if isinstance(policies, list) else [policies]:
                found += [(name, s) for s in _statements(policy)]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found += [(name, s) for s in _statements(p.get("PolicyDocument"))]
        elif resource["Type"] == "AWS::IAM::Role":
            for policy in p.get("Policies") or []:
                found += [(name, s) for s in _statements(policy.get("PolicyDocument"))]
    return found


def test_no_policy_statement_allows_every_resource(template: dict[str, Any]) -> None:
    statements = all_statements(template)
    assert statements, "expected the action function's inline statements"
    for owner, statement in statements:
        resources = statement.get("Resource")
        resources = resources if isinstance(resources, list) else [resources]
        assert resources and None not in resources, f"{owner}: {statement.get('Sid')} has no Resource"
        for resource in resources:
            assert not (isinstance(resource, str) and "*" in resource), (
                f"{owner}: statement {statement.get('Sid')} grants {statement.get('Action')} on {resource!r}"
            )


def test_policy_templates_are_scoped_to_one_resource_of_this_stack(template: dict[str, Any]) -> None:
    checked = 0
    for fn, resource in functions(template).items():
        for policy in props(resource).get("Policies") or []:
            if not isinstance(policy, dict) or "Statement" in policy:
                continue
            assert len(policy) == 1, f"{fn}: one policy template per list item"
            ((name, arguments),) = policy.items()
            assert isinstance(arguments, dict) and arguments, f"{fn}: {name} needs its resource argument"
            for argument, value in arguments.items():
                assert target(value) in template["Resources"], (
                    f"{fn}: {name}.{argument} = {value!r} is not a resource of this template"
                )
                checked += 1
    assert checked


def test_each_function_reads_only_the_secrets_its_work_needs(template: dict[str, Any]) -> None:
    readers: dict[str, set[str]] = {}
    for name, resource in functions(template).items():
        policies = props(resource).get("Policies") or []
        for policy in policies if isinstance(policies, list) else [policies]:
            if isinstance(policy, dict) and "AWSSecretsManagerGetSecretValuePolicy" in policy:
                secret = target(policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"])
                readers.setdefault(name, set()).add(str(secret))
    for owner, statement in all_statements(template):
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if any(str(a).lower() in ("secretsmanager:getsecretvalue", "secretsmanager:*") for a in actions):
            readers.setdefault(owner, set()).add(str(target(statement.get("Resource"))))
    # Xero steps never call Clientary, nor Clientary steps Xero; webhooks read only their keys.
    assert "ClientaryConnectionSecret" not in readers["XeroActionFunction"]
    assert "XeroConnectionSecret" not in readers["ClientaryActionFunction"]
    assert readers["XeroWebhookFunction"] == {"XeroWebhookKeySecret"}
    # Issue 7: each webhook key has its own secret; only the functions verifying with it read it.
    push_readers = {name for name, secrets in readers.items() if "ClientaryPushKeySecret" in secrets}
    xero_key_readers = {name for name, secrets in readers.items() if "XeroWebhookKeySecret" in secrets}
    assert xero_key_readers == {"XeroWebhookFunction"}
    clientary_triggers = {
        name
        for name, fn in functions(template).items()
        if props(fn)["CodeUri"].rstrip("/") == "functions/clientary_trigger"
    }
    assert push_readers == clientary_triggers
    for name, secrets in readers.items():
        if name.startswith("New") and name.endswith("TriggerFunction"):  # the Clientary triggers
            assert secrets <= {"ClientaryConnectionSecret", "ClientaryPushKeySecret"}, name


def test_only_the_xero_action_function_writes_a_secret_and_only_xeros(template: dict[str, Any]) -> None:
    writers = []
    for owner, statement in all_statements(template):
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if any(a.lower() in ("secretsmanager:putsecretvalue", "secretsmanager:*") for a in actions):
            writers.append((owner, target(statement.get("Resource"))))
    # Issue #3: the Xero connect flow writes the tokens it obtains, and the Xero trigger Lambda
    # refreshes tokens like the action Lambda; nothing writes any other secret.
    assert sorted(writers) == [
        ("XeroActionFunction", "XeroConnectionSecret"),
        ("XeroConnectFunction", "XeroConnectionSecret"),
        ("XeroTriggerFunction", "XeroConnectionSecret"),
    ]


def test_action_function_may_delay_its_own_queue_messages(template: dict[str, Any]) -> None:
    # AWSLambdaSQSQueueExecutionRole (what SAM's SQS event adds) has no ChangeMessageVisibility,
    # and a Retry-After wait is exactly that call.
    grants = [
        target(s.get("Resource"))
        for owner, s in all_statements(template)
        if owner == "XeroActionFunction"
        and "sqs:ChangeMessageVisibility" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert grants == ["XeroActionQueue"]


# --- Clientary actions (issue #4)
def test_clientary_action_function_consumes_its_queue_and_may_delay_its_messages(
    template: dict[str, Any],
) -> None:
    consumers = [(fn, target(p["Queue"])) for fn, _, p in events_of(template, "SQS")]
    assert ("ClientaryActionFunction", "ClientaryActionQueue") in consumers
    grants = [
        target(s.get("Resource"))
        for owner, s in all_statements(template)
        if owner == "ClientaryActionFunction"
        and "sqs:ChangeMessageVisibility" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert grants == ["ClientaryActionQueue"]
    assert global_env(template).get("CLIENTARY_QUEUE_URL") == {"Ref": "ClientaryActionQueue"}


def test_every_step_enqueuer_may_send_to_both_action_queues(template: dict[str, Any]) -> None:
    # A workflow's first step (sent by a trigger) and its next step (sent by the step before) may
    # belong to either app, so whoever enqueues steps needs both queues.
    for fn, resource in functions(template).items():
        sends = {
            target(policy["SQSSendMessagePolicy"]["QueueName"])
            for policy in props(resource).get("Policies") or []
            if isinstance(policy, dict) and "SQSSendMessagePolicy" in policy
        }
        if "XeroActionQueue" in sends or "ClientaryActionQueue" in sends:
            assert {"XeroActionQueue", "ClientaryActionQueue"} <= sends, f"{fn} sends only to {sorted(sends)}"


# ------------------------------------------------------------------------------------------- logs
def test_every_function_logs_to_its_own_group_with_retention(template: dict[str, Any]) -> None:
    groups = resources_of(template, "AWS::Logs::LogGroup")
    used: dict[str, str] = {}
    assert functions(template)
    for fn in functions(template):
        logging_config = function_setting(template, fn, "LoggingConfig") or {}
        group = target(logging_config.get("LogGroup"))
        assert group in groups, f"{fn} has no LoggingConfig.LogGroup pointing at a log group of this stack"
        assert group not in used, f"{fn} and {used.get(group)} share the log group {group}"
        used[group] = fn
    for name, group in groups.items():
        assert props(group).get("RetentionInDays"), f"{name} keeps logs forever (no RetentionInDays)"


# -------------------------------------------------------------------------------------------- API
def test_api_routes_are_explicit(template: dict[str, Any]) -> None:
    apis = resources_of(template, "AWS::Serverless::HttpApi", "AWS::Serverless::Api")
    routes = events_of(template, "HttpApi", "Api")
    assert routes, "expected at least the push route"
    seen = set()
    for fn, event, p in routes:
        path, method = p.get("Path"), str(p.get("Method", "")).upper()
        assert path and path.startswith("/"), f"{fn}.{event}: no explicit Path (an implicit catch-all route)"
        assert "+}" not in path and "$default" not in path, f"{fn}.{event}: greedy path {path}"
        assert method and method not in ("ANY", "*"), f"{fn}.{event}: method {method or 'ANY'}"
        api = target(p.get("ApiId") or p.get("RestApiId"))
        assert api in apis, f"{fn}.{event}: not on an API of this template (SAM would add an implicit one)"
        assert (api, method, path) not in seen, f"route {method} {path} defined twice"
        seen.add((api, method, path))
    for name, api in apis.items():
        body = json.dumps(props(api).get("DefinitionBody") or {})
        assert "+}" not in body and "$default" not in body, f"{name}: greedy route in DefinitionBody"


def test_http_api_events_use_payload_format_2(template: dict[str, Any]) -> None:
    for fn, event, p in events_of(template, "HttpApi"):
        assert str(p.get("PayloadFormatVersion", "2.0")) == "2.0", f"{fn}.{event}"


# ------------------------------------------------------------------------------ layer and functions
def test_layer_is_built_for_python312_from_shared(template: dict[str, Any]) -> None:
    layers = resources_of(template, "AWS::Serverless::LayerVersion")
    assert set(layers) == {"SharedLayer"}
    layer = layers["SharedLayer"]
    # Built by shared/Makefile (it compiles the layer; tests/test_built_layer.py checks it).
    assert (layer.get("Metadata") or {}).get("BuildMethod") == "makefile"
    assert "\nbuild-SharedLayer:" in (ROOT / "shared" / "Makefile").read_text()
    assert props(layer)["ContentUri"].rstrip("/") == "shared"
    assert (ROOT / "shared" / "requirements.txt").is_file()
    assert (ROOT / "shared" / "clientary_xero" / "__init__.py").is_file()
    runtime = template["Globals"]["Function"]["Runtime"]
    assert runtime == "python3.12"
    assert runtime in props(layer)["CompatibleRuntimes"]
    for fn in functions(template):
        assert function_setting(template, fn, "Runtime") == runtime, fn
        assert {"Ref": "SharedLayer"} in (function_setting(template, fn, "Layers") or []), fn
        code_uri = props(template["Resources"][fn])["CodeUri"]
        handler_module, _, _ = props(template["Resources"][fn])["Handler"].partition(".")
        assert (ROOT / code_uri / f"{handler_module}.py").is_file(), f"{fn}: no {code_uri}{handler_module}.py"


def test_no_function_pays_for_x_ray_tracing_nothing_reads(template: dict[str, Any]) -> None:
    # Issue 9: nothing sends X-Ray segments (no Tracer in the code, and Tracer() would cost ~200 ms
    # of cold start): active tracing and Tracer settings only cost money and confuse.
    assert "Tracing" not in (template.get("Globals") or {}).get("Function", {})
    for fn in functions(template):
        assert "Tracing" not in props(template["Resources"][fn]), fn
        assert not [n for n in function_env(template, fn) if n.startswith("POWERTOOLS_TRACE")], fn
    assert "Tracing" not in (template.get("Globals") or {}).get("HttpApi", {})


# Variables a library reads itself (not Settings fields), with the value each must have. The
# benchmark's children run with them too (benchmarks/bench.py DEPLOYED_ENV): it measures what runs.
LIBRARY_ENV = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}


def test_environment_variables_are_settings_fields(template: dict[str, Any]) -> None:
    known = {name.upper() for name in Settings.names()}
    wanted = {
        "WORKFLOWS_TABLE",
        "STATE_TABLE",
        "XERO_QUEUE_URL",
        "XERO_SECRET_ID",
        "CLIENTARY_SECRET_ID",
        "CLIENTARY_PUSH_SECRET_ID",
        "XERO_WEBHOOK_SECRET_ID",
        "MAX_ATTEMPTS",
        "RUN_RETENTION_DAYS",
    }
    global_names = set(global_env(template))
    assert wanted <= global_names, f"Globals lacks {sorted(wanted - global_names)}"
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"} <= global_names
    for fn in functions(template):
        for name in function_env(template, fn):
            if name.startswith("POWERTOOLS_") or name in LIBRARY_ENV:
                continue
            assert name in known, f"{fn}: {name} is not a Settings field; the code would never read it"


def test_pydantic_looks_for_no_plugins_and_the_benchmark_runs_as_deployed(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    for fn in functions(template):
        env = function_env(template, fn)
        for name, value in LIBRARY_ENV.items():
            assert env.get(name) == value, f"{fn}: {name}"
    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    assert bench.DEPLOYED_ENV == LIBRARY_ENV
    assert bench._child_env({})["PYDANTIC_DISABLE_PLUGINS"] == "__all__"


def test_trigger_functions_follow_one_copyable_shape(template: dict[str, Any]) -> None:
    from clientary_xero.workflows.triggers import TRIGGERS, get_trigger

    triggers: dict[str, str] = {}
    output_values = json.dumps(template.get("Outputs") or {})
    for fn, resource in functions(template).items():
        p = props(resource)
        if p["CodeUri"].rstrip("/") != "functions/clientary_trigger":
            continue
        trigger = function_env(template, fn).get("TRIGGER", "")
        spec = get_trigger(trigger)
        assert spec is not None and spec.source == "clientary", (
            f"{fn}: TRIGGER {trigger!r} is not Clientary's"
        )
        assert trigger not in triggers, f"{fn} and {triggers.get(trigger)} both serve {trigger}"
        triggers[trigger] = fn
        short = trigger.split(".", 1)[1]
        events = {e["Type"]: e.get("Properties") or {} for e in (p.get("Events") or {}).values()}
        schedule = events.get("Schedule")
        if spec.delivery == "push":
            # Push-only (clientary.new_contract: no Clientary endpoint to poll): its copy of the one
            # trigger block has the schedule, DISABLED (an EventBridge rule that never fires).
            assert schedule is None or schedule.get("State") == "DISABLED", (
                f"{fn}: {trigger} is push-only and must never be polled"
            )
        else:
            assert schedule is not None and schedule.get("Schedule") == "rate(15 minutes)", fn
            assert schedule.get("State", "ENABLED") == "ENABLED" and schedule.get("Enabled", True), fn
        push = events.get("HttpApi", {})
        assert (push.get("Method"), push.get("Path")) == ("POST", f"/webhooks/clientary/{short}"), fn
        assert target(push.get("ApiId")) == "WebhookApi", fn
        assert f'"Ref": "{fn}"' in output_values, f"{fn}: no output names the function"
        assert f"/webhooks/clientary/{short}" in output_values, f"{fn}: no output gives its push URL"
    assert "clientary.new_invoice" in triggers
    # Issue #4: every Clientary trigger has its own function.
    clientary = {name for name, spec in TRIGGERS.items() if spec.source == "clientary"}
    assert set(triggers) == clientary, f"no trigger function for {sorted(clientary - set(triggers))}"


def test_the_clientary_triggers_are_one_block_and_one_mapping_line_each() -> None:
    """Issue 9: the trigger functions, their alarms and outputs are generated, not written out."""
    from clientary_xero.workflows.triggers import TRIGGERS

    raw = load_raw_template()
    mapping = raw["Mappings"]["ClientaryTriggers"]
    functions_loop = raw["Resources"]["Fn::ForEach::ClientaryTriggerFunctions"]
    outputs_loop = raw["Outputs"]["Fn::ForEach::ClientaryTriggerOutputs"]
    # Both loops run over the mapping's entries, which are the registry's Clientary triggers.
    assert functions_loop[1] == outputs_loop[1] == list(mapping)
    clientary = {name for name, spec in TRIGGERS.items() if spec.source == "clientary"}
    assert {f"clientary.{entry['Trigger']}" for entry in mapping.values()} == clientary
    for name, entry in mapping.items():
        spec = TRIGGERS[f"clientary.{entry['Trigger']}"]
        assert entry["Path"] == f"/webhooks/clientary/{entry['Trigger']}", name
        assert entry["Poll"] == ("DISABLED" if spec.delivery == "push" else "ENABLED"), name
    # Nothing of a trigger is written out by hand any more.
    written = [*raw["Resources"], *raw["Outputs"]]
    assert not [key for key in written if key.startswith(tuple(mapping))], "a trigger block written out"
    assert set(functions_loop[2]) == {
        "${Name}TriggerLogGroup",
        "${Name}TriggerFunction",
        "${Name}TriggerErrorsAlarm",
        "${Name}TriggerThrottlesAlarm",
    }


def test_outputs(template: dict[str, Any]) -> None:
    wanted = {
        "WebhookApiUrl",
        "NewInvoicePushUrl",
        "WorkflowsTableName",
        "StateTableName",
        "XeroActionQueueUrl",
        "XeroActionDLQUrl",
        "XeroConnectionSecretArn",
        "ClientaryConnectionSecretArn",
        "ClientaryPushKeySecretArn",
        "XeroWebhookKeySecretArn",
    }
    outputs = template.get("Outputs") or {}
    assert wanted <= set(outputs), f"missing outputs {sorted(wanted - set(outputs))}"
    for fn in functions(template):
        assert any(target(o.get("Value")) == fn for o in outputs.values()), f"no output names {fn}"


def test_secrets_are_stack_scoped_json_placeholders(template: dict[str, Any]) -> None:
    secrets = resources_of(template, "AWS::SecretsManager::Secret")
    expected = {
        "XeroConnectionSecret": "xero",
        "ClientaryConnectionSecret": "clientary",
        "ClientaryPushKeySecret": "clientary-push",
        "XeroWebhookKeySecret": "xero-webhook",
    }
    assert set(secrets) == set(expected)
    for name, suffix in expected.items():
        p = props(secrets[name])
        assert p["Name"] == {"Fn::Sub": f"${{AWS::StackName}}/{suffix}"}, name
    assert set(json.loads(props(secrets["XeroConnectionSecret"])["SecretString"])) >= {
        "client_id",
        "client_secret",
        "tenant_id",
        "access_token",
        "refresh_token",
        "expires_at",
    }
    assert json.loads(props(secrets["ClientaryConnectionSecret"])["SecretString"]) == {
        "subdomain": "",
        "api_token": "",
    }
    generated = props(secrets["ClientaryPushKeySecret"])["GenerateSecretString"]
    assert json.loads(generated["SecretStringTemplate"]) == {}
    assert generated["GenerateStringKey"] == "clientary_push_key"
    assert generated["ExcludePunctuation"] is True
    assert json.loads(props(secrets["XeroWebhookKeySecret"])["SecretString"]) == {"xero_webhook_key": ""}


def test_deleting_the_stack_keeps_the_tables_and_the_secrets(template: dict[str, Any]) -> None:
    # Issue 9: workflows, run history and the Xero tokens must outlive a `sam delete` and a change
    # that replaces the resource (README, "Deleting the stack").
    kept = resources_of(template, "AWS::DynamoDB::Table", "AWS::SecretsManager::Secret")
    assert set(kept) == {
        "WorkflowsTable",
        "StateTable",
        "XeroConnectionSecret",
        "ClientaryConnectionSecret",
        "ClientaryPushKeySecret",
        "XeroWebhookKeySecret",
    }
    for name, resource in kept.items():
        assert resource.get("DeletionPolicy") == "Retain", name
        assert resource.get("UpdateReplacePolicy") == "Retain", name


def test_every_function_and_the_layer_run_on_the_architecture_parameter(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["Architecture"]
    assert parameter["AllowedValues"] == ["x86_64", "arm64"] and parameter["Default"] == "x86_64"
    chosen = [{"Ref": "Architecture"}]
    for fn in functions(template):
        assert function_setting(template, fn, "Architectures") == chosen, fn
    assert props(template["Resources"]["SharedLayer"])["CompatibleArchitectures"] == chosen
    # sam build's cache knows a layer's architecture only from this: without it, a cached layer of
    # the other architecture is reused (seen: an x86_64 build shipping aarch64 wheels).
    assert template["Resources"]["SharedLayer"]["Metadata"]["BuildArchitecture"] == {"Ref": "Architecture"}


@pytest.mark.parametrize(("architecture", "platform"), [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_the_layer_build_installs_the_wheels_of_the_architecture(architecture: str, platform: str) -> None:
    # make build ARCHITECTURE=... hands it to sam build (the parameter) and to shared/Makefile (the
    # wheels): arm64 without Docker. `make -n` prints the commands without running them.
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    root = subprocess.run(  # noqa: S603 - a fixed argv of our own paths, no shell
        [make, "-n", "build", f"ARCHITECTURE={architecture}", "PY312=python3.12"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    ).stdout
    assert (
        f"ARCHITECTURE={architecture} " in root
        and f"--parameter-overrides Architecture={architecture}" in root
    )
    layer = subprocess.run(  # noqa: S603
        [make, "-n", "-C", "shared", "build-SharedLayer", "ARTIFACTS_DIR=/nonexistent"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
        env={**os.environ, "ARCHITECTURE": architecture},
    )
    assert layer.returncode == 0, layer.stderr
    assert f"--platform manylinux2014_{platform} " in layer.stdout


def test_samconfig_has_a_dev_and_a_prod_environment_each_its_own_stack(template: dict[str, Any]) -> None:
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert {"default", "dev", "prod"} <= set(config)
    stacks = {env: config[env]["global"]["parameters"]["stack_name"] for env in ("default", "dev", "prod")}
    assert len(set(stacks.values())) == 3, f"two environments share a stack: {stacks}"
    for env in ("default", "dev", "prod"):
        # The Fn::ForEach blocks: without the local expansion sam build fails.
        assert config[env]["global"]["parameters"]["language_extensions"] is True, env
        deploy = config[env]["deploy"]["parameters"]
        assert "CAPABILITY_IAM" in deploy["capabilities"], env
        for override in str(deploy.get("parameter_overrides", "")).split():
            name, _, value = override.partition("=")
            parameter = template["Parameters"].get(name)
            assert parameter is not None, f"{env}: {name} is not a template parameter"
            allowed = [str(v) for v in parameter.get("AllowedValues") or [value]]
            assert value in allowed, f"{env}: {name}={value} is not one of {allowed}"
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert "sync" not in config["prod"], "sam sync deploys without a change set: not for prod"


def test_tables_match_the_key_design(template: dict[str, Any]) -> None:
    state = props(template["Resources"]["StateTable"])
    assert state["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert [g["IndexName"] for g in state["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert state["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    workflows = props(template["Resources"]["WorkflowsTable"])
    assert workflows["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert [g["IndexName"] for g in workflows["GlobalSecondaryIndexes"]] == ["by-trigger"]
    for table in (state, workflows):
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_local_resources_match_the_template(template: dict[str, Any], aws: Any) -> None:
    """The local runner and the tests build their tables and queues like the deployed stack."""
    import boto3

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for logical_id, physical in (("WorkflowsTable", aws.workflows_table), ("StateTable", aws.state_table)):
        declared = props(template["Resources"][logical_id])
        actual = ddb.describe_table(TableName=physical)["Table"]
        assert actual["KeySchema"] == declared["KeySchema"], logical_id
        assert sorted(actual["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
            declared["AttributeDefinitions"], key=lambda a: a["AttributeName"]
        ), logical_id
        assert {
            (g["IndexName"], json.dumps(g["KeySchema"]), g["Projection"]["ProjectionType"])
            for g in actual.get("GlobalSecondaryIndexes", [])
        } == {
            (g["IndexName"], json.dumps(g["KeySchema"]), g["Projection"]["ProjectionType"])
            for g in declared.get("GlobalSecondaryIndexes", [])
        }, logical_id
    ttl = ddb.describe_time_to_live(TableName=aws.state_table)["TimeToLiveDescription"]
    assert ttl.get("AttributeName") == "ttl"
    sqs = boto3.client("sqs", region_name="us-east-1")
    attrs = sqs.get_queue_attributes(QueueUrl=aws.xero_queue_url, AttributeNames=["VisibilityTimeout"])
    declared_visibility = props(template["Resources"]["XeroActionQueue"])["VisibilityTimeout"]
    assert int(attrs["Attributes"]["VisibilityTimeout"]) == int(declared_visibility)


# ----------------------------------------------------------------------------------------- events
EVENT_FILES = sorted(EVENTS.glob("*.json"))


def test_the_sample_events_exist() -> None:
    names = {p.name for p in EVENT_FILES}
    assert {
        "clientary_push_new_invoice.json",
        "clientary_push_bad_signature.json",
        "clientary_push_malformed.json",
        "schedule_new_invoice.json",
        "sqs_xero_step.json",
    } <= names


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.name)
def test_event_file_is_json(path: Path) -> None:
    assert isinstance(json.loads(path.read_text()), dict)


def _push(name: str) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    event = json.loads((EVENTS / name).read_text())
    body = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"].encode()
    return body, {k.lower(): v for k, v in event["headers"].items()}, event


def _signature(key: str, body: bytes, t: str) -> str:
    """The documented push signature, computed here independently of usecases.signatures."""
    return f"t={t},v1=" + hmac.new(key.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()


def _timestamp(header: str) -> str:
    t = header.split(",", 1)[0]
    assert t.startswith("t="), header
    return t[2:]


@pytest.mark.parametrize(
    "name",
    ["clientary_push_new_invoice.json", "clientary_push_bad_signature.json", "clientary_push_malformed.json"],
)
def test_push_events_are_http_api_requests_for_the_push_route(name: str, template: dict[str, Any]) -> None:
    body, headers, event = _push(name)
    route = next(p for fn, _, p in events_of(template, "HttpApi") if fn == "NewInvoiceTriggerFunction")
    assert event["version"] == "2.0"
    assert event["routeKey"] == f"{route['Method']} {route['Path']}"
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == route["Path"]
    assert event["requestContext"]["http"]["method"] == route["Method"]
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)


def test_push_event_signature_is_valid_for_its_body() -> None:
    body, headers, _ = _push("clientary_push_new_invoice.json")
    assert json.loads(body) == {"id": 1001}
    t = _timestamp(headers[PUSH_HEADER])
    # The samples carry the fixed timestamp the local runner re-signs at send time.
    assert int(t) == SAMPLE_PUSH_TIMESTAMP
    assert hmac.compare_digest(headers[PUSH_HEADER], _signature(SAMPLE_PUSH_KEY, body, t))


def test_bad_signature_event_differs_only_in_its_signature() -> None:
    good_body, good_headers, _ = _push("clientary_push_new_invoice.json")
    body, headers, _ = _push("clientary_push_bad_signature.json")
    assert body == good_body
    t = _timestamp(headers[PUSH_HEADER])
    assert t == _timestamp(good_headers[PUSH_HEADER])
    assert len(headers[PUSH_HEADER]) == len(good_headers[PUSH_HEADER])
    assert not hmac.compare_digest(headers[PUSH_HEADER], _signature(SAMPLE_PUSH_KEY, body, t))


def test_malformed_event_is_signed_but_not_json() -> None:
    body, headers, _ = _push("clientary_push_malformed.json")
    t = _timestamp(headers[PUSH_HEADER])
    assert hmac.compare_digest(headers[PUSH_HEADER], _signature(SAMPLE_PUSH_KEY, body, t))
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_schedule_event_is_an_eventbridge_scheduled_event() -> None:
    event = json.loads((EVENTS / "schedule_new_invoice.json").read_text())
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"]
    assert all(r.startswith("arn:aws:events:") and ":rule/" in r for r in event["resources"])


def test_sqs_event_carries_one_step_message() -> None:
    event = json.loads((EVENTS / "sqs_xero_step.json").read_text())
    (record,) = event["Records"]
    assert json.loads(record["body"]) == {"run_id": "run-sample", "step_id": "contact", "generation": 0}
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["eventSource"] == "aws:sqs"
    # MD5 is what SQS itself puts in md5OfBody; nothing here relies on it for security.
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324


# -------------------------------------------------------------------------------------------- lint
@pytest.mark.slow
def test_cfn_lint_passes() -> None:
    """cfn-lint on the template (`make template` also runs it with `sam validate --lint`)."""
    cfn_lint = ROOT / ".sam-venv" / "bin" / "cfn-lint"
    if not cfn_lint.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("cfn-lint is missing in CI: run `make sam-venv` first")
        pytest.skip("cfn-lint not installed: `make sam-venv` installs it into .sam-venv")
    assert shutil.which(str(cfn_lint))
    # A fixed argv of our own paths, no shell.
    result = subprocess.run(  # noqa: S603
        [str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, cwd=ROOT, timeout=110, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------- Xero connect, webhook, triggers
# Issue #3: checks for XeroConnectFunction, XeroWebhookFunction, XeroTriggerFunction and XeroEventQueue.
XERO_WEBHOOK_SAMPLE_KEY = "local-sample-xero-webhook-key"  # = local.resources.SAMPLE_XERO_WEBHOOK_KEY


def _routes(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(str(p["Method"]).upper(), p["Path"]): fn for fn, _, p in events_of(template, "HttpApi")}


def test_xero_routes_are_served_by_their_functions(template: dict[str, Any]) -> None:
    routes = _routes(template)
    assert routes[("POST", "/webhooks/xero")] == "XeroWebhookFunction"
    for path in ("/oauth/xero/connect", "/oauth/xero/callback", "/oauth/xero/choose"):
        assert routes[("GET", path)] == "XeroConnectFunction", path
    outputs = json.dumps(template["Outputs"])
    for path in ("/webhooks/xero", "/oauth/xero/connect", "/oauth/xero/callback"):
        assert path in outputs, f"no output gives the URL of {path}"


def test_xero_webhook_answers_within_xeros_five_seconds_and_cannot_touch_tokens(
    template: dict[str, Any],
) -> None:
    assert int(function_setting(template, "XeroWebhookFunction", "Timeout")) <= 5
    policies = json.dumps(props(template["Resources"]["XeroWebhookFunction"])["Policies"])
    # It verifies and enqueues only: no table, no Xero connection secret.
    assert "XeroConnectionSecret" not in policies and "Table" not in policies
    assert "XeroWebhookKeySecret" in policies and "XeroEventQueue" in policies
    assert function_env(template, "XeroWebhookFunction")["XERO_EVENT_QUEUE_URL"] == {"Ref": "XeroEventQueue"}


def test_xero_event_queue_is_consumed_by_the_trigger_function_within_xeros_limits(
    template: dict[str, Any],
) -> None:
    consumers = [(fn, p) for fn, _, p in events_of(template, "SQS") if target(p["Queue"]) == "XeroEventQueue"]
    assert [fn for fn, _ in consumers] == ["XeroTriggerFunction"]
    (_, p) = consumers[0]
    assert int(p["ScalingConfig"]["MaximumConcurrency"]) <= XERO_MAX_IN_FLIGHT
    redrive = props(template["Resources"]["XeroEventQueue"])["RedrivePolicy"]
    assert target(redrive["deadLetterTargetArn"]) == "XeroEventDLQ"
    schedules = [p for fn, _, p in events_of(template, "Schedule") if fn == "XeroTriggerFunction"]
    assert [s["Schedule"] for s in schedules] == ["rate(15 minutes)"]  # xero.new_payment


def test_connect_scopes_are_granular_by_default(template: dict[str, Any]) -> None:
    default = template["Parameters"]["XeroScopes"]["Default"].split()
    assert "offline_access" in default and "accounting.invoices" in default
    assert not {"accounting.transactions", "accounting.reports.read"} & set(default)
    assert default == Settings().xero_scopes.split()
    assert function_env(template, "XeroConnectFunction")["XERO_SCOPES"] == {"Ref": "XeroScopes"}


def test_the_local_event_queue_matches_the_template(template: dict[str, Any], aws: Any) -> None:
    import boto3

    attrs = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=aws.xero_event_queue_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
    )["Attributes"]
    declared = props(template["Resources"]["XeroEventQueue"])["VisibilityTimeout"]
    assert int(attrs["VisibilityTimeout"]) == int(declared)
    assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"].endswith("xero-events-dlq")


def _xero_signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("xero_webhook_contact.json", True),
        ("xero_webhook_intent_to_receive.json", True),
        ("xero_webhook_bad_signature.json", False),
    ],
)
def test_xero_webhook_events_are_requests_for_the_route_signed_as_documented(
    name: str, valid: bool, template: dict[str, Any]
) -> None:
    body, headers, event = _push(name)
    assert event["routeKey"] == "POST /webhooks/xero" and event["rawPath"] == "/webhooks/xero"
    assert ("POST", event["rawPath"]) in _routes(template)
    assert int(headers["content-length"]) == len(body)
    matches = hmac.compare_digest(headers["x-xero-signature"], _xero_signature(XERO_WEBHOOK_SAMPLE_KEY, body))
    assert matches is valid
    assert isinstance(json.loads(body)["events"], list)


def test_the_sqs_xero_event_carries_one_queued_webhook_event() -> None:
    from clientary_xero.usecases.xero_trigger import EventRecord

    event = json.loads((EVENTS / "sqs_xero_event.json").read_text())
    (record,) = event["Records"]
    parsed = EventRecord.read(record)
    assert parsed.body.event.trigger == "xero.contact_created"
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324


def test_every_function_without_a_dead_letter_queue_has_an_errors_alarm(template: dict[str, Any]) -> None:
    """A failing poll, webhook or sweeper leaves no run and no DLQ message: only its errors show it."""
    watched: set[str] = set()
    for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values():
        # An alarm on one function's metric, or metric math over several (each a MetricStat).
        metrics = [(m.get("MetricStat") or {}).get("Metric") or {} for m in props(alarm).get("Metrics") or []]
        metrics.append(props(alarm))
        for stat in metrics:
            if stat.get("Namespace") == "AWS/Lambda" and stat.get("MetricName") == "Errors":
                assert props(alarm).get("AlarmActions"), f"an Errors alarm notifies nobody: {alarm}"
                watched |= {target(d["Value"]) or "" for d in stat.get("Dimensions") or []}
    step_runners = {
        name
        for name, fn in functions(template).items()
        if any(
            e.get("Type") == "SQS" and "Action" in str(e) for e in (props(fn).get("Events") or {}).values()
        )
    }
    assert step_runners == {"XeroActionFunction", "ClientaryActionFunction"}  # covered by their DLQ alarms
    missing = set(functions(template)) - step_runners - watched
    assert not missing, f"functions without an Errors alarm: {sorted(missing)}"


def test_each_action_function_serves_the_queue_its_step_app_names(template: dict[str, Any]) -> None:
    # functions/step_actions serves both action queues; STEP_APP says which one (for the delay of
    # a retried message and the logs), so it must match the function's SQS event.
    queues = {"xero": "XeroActionQueue", "clientary": "ClientaryActionQueue"}
    served = {}
    for name, resource in functions(template).items():
        if props(resource).get("CodeUri") != "functions/step_actions/":
            continue
        app = function_env(template, name).get("STEP_APP")
        (sqs,) = [e for e in props(resource)["Events"].values() if e["Type"] == "SQS"]
        assert target(sqs["Properties"]["Queue"]) == queues[app], name
        served[app] = name
    assert served == {"xero": "XeroActionFunction", "clientary": "ClientaryActionFunction"}


# --------------------------------------------------------- the connect function's State items (issue 7)
def state_item_allowed(template: dict[str, Any], function: str, action: str, pk: str) -> bool:
    """Whether ``function``'s policies allow ``dynamodb:<action>`` on a State item with this key.

    A small evaluator of what the template uses: Allow statements on the table, conditions
    ``ForAllValues:StringLike`` / ``ForAllValues:StringEquals`` on ``dynamodb:LeadingKeys``; any
    other condition or a DynamoDB policy template counts as allowing everything (the test then fails).
    """
    from fnmatch import fnmatchcase

    for policy in props(template["Resources"][function]).get("Policies") or []:
        if isinstance(policy, dict) and any(str(name).startswith("DynamoDB") for name in policy):
            return True
    for owner, statement in all_statements(template):
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if owner != function or statement.get("Effect") != "Allow":
            continue
        if not any(fnmatchcase(f"dynamodb:{action}".lower(), str(a).lower()) for a in actions):
            continue
        if target(statement.get("Resource")) != "StateTable":
            continue
        condition = statement.get("Condition") or {}
        like = (condition.get("ForAllValues:StringLike") or {}).get("dynamodb:LeadingKeys")
        equal = (condition.get("ForAllValues:StringEquals") or {}).get("dynamodb:LeadingKeys")
        if set(condition) - {"ForAllValues:StringLike", "ForAllValues:StringEquals"} or not (like or equal):
            return True
        if any(fnmatchcase(pk, pattern) for pattern in like or []) or pk in (equal or []):
            return True
    return False


def test_the_public_connect_function_touches_only_its_own_state_items(template: dict[str, Any]) -> None:
    from clientary_xero.usecases.xero_connect import CHOICE_PREFIX, STATE_PREFIX, TICKET_PREFIX, TOKEN_LOCK

    def may(action: str, pk: str) -> bool:
        return state_item_allowed(template, "XeroConnectFunction", action, pk)

    # What the flow does (tests/test_xero_connect.py checks every call of a real run against this).
    for action in ("GetItem", "DeleteItem"):
        assert may(action, f"{TICKET_PREFIX}abc"), action
    for prefix in (STATE_PREFIX, CHOICE_PREFIX, f"LOCK#{TOKEN_LOCK}"):
        for action in ("PutItem", "DeleteItem"):
            assert may(action, prefix if prefix.startswith("LOCK#") else f"{prefix}abc"), (action, prefix)
    # Nothing else: tickets are issued by the administrator, runs, steps, cursors, links, budgets
    # and the other locks are none of its business; no listing the table.
    assert not may("PutItem", f"{TICKET_PREFIX}abc")
    for pk in (
        "RUN#r1",
        "CURSOR#clientary.new_invoice",
        "LINK#contact#1",
        "LOCK#step#r1",
        "BUDGET#t",
        "PARKED",
    ):
        for action in ("GetItem", "PutItem", "DeleteItem", "UpdateItem", "Query"):
            assert not may(action, pk), (action, pk)
    assert not may("PutItem", "LOCK#xero-token#other")
    assert not may("UpdateItem", f"{STATE_PREFIX}abc")
    for action in ("Scan", "Query", "BatchWriteItem", "BatchGetItem", "TransactWriteItems", "DeleteTable"):
        assert not may(action, f"{STATE_PREFIX}abc"), action


def test_each_action_function_may_dead_letter_into_its_own_queues_dlq(template: dict[str, Any]) -> None:
    # Issue 7, point 12: the runner moves a step that gave up to the DLQ itself, marked, so that a
    # console redrive resumes its run. Without the DLQ's URL (or the right to send to it) SQS moves
    # the unmarked message instead and a redrive of it changes nothing.
    queues = resources_of(template, "AWS::SQS::Queue")
    for name, resource in functions(template).items():
        if props(resource).get("CodeUri") != "functions/step_actions/":
            continue
        app = function_env(template, name)["STEP_APP"]
        (sqs,) = [e for e in props(resource)["Events"].values() if e["Type"] == "SQS"]
        queue = target(sqs["Properties"]["Queue"])
        dlq = target(props(queues[str(queue)])["RedrivePolicy"]["deadLetterTargetArn"])
        assert target(function_env(template, name).get(f"{app.upper()}_DLQ_URL")) == dlq, name
        sends = [
            target(p["SQSSendMessagePolicy"]["QueueName"])
            for p in props(resource).get("Policies") or []
            if isinstance(p, dict) and "SQSSendMessagePolicy" in p
        ]
        assert dlq in sends, name
