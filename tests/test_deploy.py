"""The deploy path (issue 9, point 4): template.yaml as CloudFormation would deploy it.

template.yaml → AWS::LanguageExtensions (tests/cfn_template.py: the Fn::ForEach blocks) → what
``sam package`` does (CodeUri/ContentUri become S3 objects) → the SAM transform (aws-sam-translator,
tests/sam_translate.py) → a stack created in moto's CloudFormation, then read back.

Each test says which of two kinds its checks are:

- DEPLOYED: read back through the AWS APIs from the resources moto's CloudFormation created
  (Lambda, SQS, DynamoDB, EventBridge, CloudWatch Logs, S3, SNS).
- TRANSFORMED: moto's CloudFormation skips some resource types (``SKIPPED_BY_MOTO``: the secrets,
  the alarms, the HTTP API and its stage, the bucket policy, the e-mail subscription) and some
  function properties (moto keeps no Layers, Architectures or LoggingConfig of an
  AWS::Lambda::Function); those are checked on the transformed template, with each reference
  followed to the resource moto created where there is one.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.cfn_template import load_template
from tests.sam_translate import TranslatorMissing, translate

REGION = "us-east-1"
STACK = "clientary-xero-test"
BUCKET = "deploy-artifacts"
# Deploy-time parameters that differ from the defaults, so the checks see them arrive.
PARAMETERS = {"MaxAttempts": "4", "LogRetentionDays": "14", "AlarmEmail": "oncall@example.com"}
SKIPPED_BY_MOTO = {
    "AWS::SecretsManager::Secret",
    "AWS::CloudWatch::Alarm",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
}
# Resources moto's CloudFormation knows but cannot create here, because they read an attribute of
# a resource it skips; they (and the outputs naming them) are left out of the stack moto creates and
# checked in the transformed template instead.
UNRESOLVED_BY_MOTO = {
    # its body names the alarms' ARNs (alarm widgets); tests/test_template_alarms.py checks it
    "OperationsDashboard": "AWS::CloudWatch::Dashboard",
}
# Environment variables that name a resource of the stack, and which one.
RESOURCE_VARIABLES = {
    "WORKFLOWS_TABLE": "WorkflowsTable",
    "STATE_TABLE": "StateTable",
    "XERO_QUEUE_URL": "XeroActionQueue",
    "CLIENTARY_QUEUE_URL": "ClientaryActionQueue",
    "XERO_EVENT_QUEUE_URL": "XeroEventQueue",
    "XERO_DLQ_URL": "XeroActionDLQ",
    "XERO_EVENT_DLQ_URL": "XeroEventDLQ",
    "CLIENTARY_DLQ_URL": "ClientaryActionDLQ",
    "PAYLOAD_BUCKET": "PayloadBucket",
    "XERO_SECRET_ID": "XeroConnectionSecret",
    "CLIENTARY_SECRET_ID": "ClientaryConnectionSecret",
    "CLIENTARY_PUSH_SECRET_ID": "ClientaryPushKeySecret",
    "XERO_WEBHOOK_SECRET_ID": "XeroWebhookKeySecret",
}
RESOURCE_VARIABLE = re.compile(r"_(TABLE|QUEUE_URL|DLQ_URL|BUCKET|SECRET_ID)$")
# moto says so for each skipped resource; SKIPPED_BY_MOTO is the list the first test holds it to.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.*not supported by moto")


# ------------------------------------------------------------------------------------- the stack
def package(template: dict[str, Any]) -> dict[str, Any]:
    """What ``sam package`` does to the template: local code directories become S3 objects."""
    for resource in template["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://{BUCKET}/{properties[key].strip('/')}.zip"
    return template


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    try:
        return translate(package(load_template()))
    except TranslatorMissing as missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing} (CI must run `make sam-venv` first)")
        pytest.skip(str(missing))


@dataclass
class Stack:
    """The stack moto created: logical id → (type, physical id), its outputs, and AWS clients."""

    resources: dict[str, tuple[str, str]]
    outputs: dict[str, str]
    status: str
    clients: dict[str, Any] = field(default_factory=dict)

    def physical(self, logical_id: str) -> str:
        return self.resources[logical_id][1]

    def client(self, service: str) -> Any:
        import boto3

        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=REGION)
        return self.clients[service]

    def function_arn(self, logical_id: str) -> str:
        return str(
            self.client("lambda").get_function(FunctionName=self.physical(logical_id))["Configuration"][
                "FunctionArn"
            ]
        )


def _code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stack(transformed: dict[str, Any]) -> Iterator[Stack]:
    import boto3
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as patch:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }.items():
            patch.setenv(key, value)
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=BUCKET)
            keys = set(re.findall(rf"s3://{BUCKET}/([^\"]+)", json.dumps(package(load_template()))))
            for key in keys:
                s3.put_object(Bucket=BUCKET, Key=key, Body=_code_zip())
            cfn = boto3.client("cloudformation", region_name=REGION)
            cfn.create_stack(
                StackName=STACK,
                TemplateBody=json.dumps(for_moto(transformed)),
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in PARAMETERS.items()],
                Capabilities=["CAPABILITY_IAM"],
            )
            description = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
            summaries = cfn.get_paginator("list_stack_resources").paginate(StackName=STACK)
            resources = {
                r["LogicalResourceId"]: (r["ResourceType"], r["PhysicalResourceId"])
                for page in summaries
                for r in page["StackResourceSummaries"]
            }
            outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs") or []}
            yield Stack(resources, outputs, description["StackStatus"])


def for_moto(transformed: dict[str, Any]) -> dict[str, Any]:
    """The transformed template without ``UNRESOLVED_BY_MOTO`` and the outputs that name them."""
    out = copy.deepcopy(transformed)
    for name, kind in UNRESOLVED_BY_MOTO.items():
        assert out["Resources"].pop(name)["Type"] == kind, name
    out["Outputs"] = {
        key: output
        for key, output in out["Outputs"].items()
        if not any(name in json.dumps(output["Value"]) for name in UNRESOLVED_BY_MOTO)
    }
    return out


def of_type(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] in types}


def ref(value: Any) -> str | None:
    """The logical id of a ``Ref`` or ``Fn::GetAtt``, else None."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def function_names(transformed: dict[str, Any]) -> list[str]:
    return sorted(of_type(transformed, "AWS::Lambda::Function"))


def clientary_triggers() -> dict[str, dict[str, str]]:
    """Mappings.ClientaryTriggers: function name prefix → {Trigger, Poll, Path}."""
    return dict(load_template()["Mappings"]["ClientaryTriggers"])


# ----------------------------------------------------------------------------------------- checks
def test_the_stack_is_created_with_every_resource_moto_supports(
    stack: Stack, transformed: dict[str, Any]
) -> None:
    """DEPLOYED: every resource of the transformed template whose type moto's CloudFormation knows."""
    assert stack.status == "CREATE_COMPLETE"
    declared = {name: r["Type"] for name, r in for_moto(transformed)["Resources"].items()}
    skipped = {name for name, kind in declared.items() if kind in SKIPPED_BY_MOTO}
    # moto lists a skipped resource too, without a type.
    created = {name for name, (kind, _) in stack.resources.items() if kind}
    assert created == set(declared) - skipped, sorted(created ^ (set(declared) - skipped))
    # A type moto starts to skip (or a new one of ours it never knew) shows up here, so that its
    # checks move to the transformed template on purpose.
    assert {declared[name] for name in skipped} == SKIPPED_BY_MOTO
    assert len(created) > 100


def test_every_function_runs_python312_with_the_stacks_layer(
    stack: Stack, transformed: dict[str, Any]
) -> None:
    """DEPLOYED: runtime, handler, timeout; the layer version exists.
    TRANSFORMED (moto keeps no Layers/Architectures): each function names that very layer version,
    and functions and layer share the Architecture parameter."""
    lam = stack.client("lambda")
    layers = of_type(transformed, "AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    ((layer_id, layer),) = layers.items()
    # moto gives the layer no physical id (and its own name): it is the account's only layer.
    (deployed_layer,) = lam.list_layers()["Layers"]
    assert deployed_layer["LatestMatchingVersion"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["LayerName"] == {"Fn::Sub": "${AWS::StackName}-shared"}
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert layer["Properties"]["Content"] == {"S3Bucket": BUCKET, "S3Key": "shared.zip"}
    for name in function_names(transformed):
        properties = transformed["Resources"][name]["Properties"]
        configuration = lam.get_function(FunctionName=stack.physical(name))["Configuration"]
        assert configuration["Runtime"] == "python3.12", name
        assert configuration["Handler"] == properties["Handler"] == "app.lambda_handler", name
        assert configuration["Timeout"] == properties["Timeout"], name
        assert [ref(layer_ref) for layer_ref in properties["Layers"]] == [layer_id], name
        assert properties["Architectures"] == [{"Ref": "Architecture"}], name


def test_environment_variables_name_the_stacks_own_resources(
    stack: Stack, transformed: dict[str, Any]
) -> None:
    """DEPLOYED: tables, queues and the bucket the variables name exist and are this stack's.
    TRANSFORMED: the secret ids (moto skips secrets, and drops the variables that refer to them)."""
    sqs, ddb, s3 = stack.client("sqs"), stack.client("dynamodb"), stack.client("s3")
    for name in function_names(transformed):
        declared = transformed["Resources"][name]["Properties"]["Environment"]["Variables"]
        deployed = stack.client("lambda").get_function(FunctionName=stack.physical(name))["Configuration"]
        variables = deployed["Environment"]["Variables"]
        for variable, value in declared.items():
            if not RESOURCE_VARIABLE.search(variable):
                continue
            assert variable in RESOURCE_VARIABLES, (
                f"{name}: {variable} names a resource this test does not know"
            )
            resource = RESOURCE_VARIABLES[variable]
            assert ref(value) == resource, f"{name}: {variable} = {value}"
            kind = transformed["Resources"][resource]["Type"]
            if kind in SKIPPED_BY_MOTO:
                assert variable not in variables, f"{name}: {variable}: moto resolved a skipped resource?"
                continue
            physical = variables[variable]
            if kind == "AWS::DynamoDB::Table":
                assert ddb.describe_table(TableName=physical)["Table"]["TableStatus"] == "ACTIVE"
            elif kind == "AWS::SQS::Queue":
                assert sqs.get_queue_url(QueueName=physical.rsplit("/", 1)[1])["QueueUrl"] == physical
            elif kind == "AWS::S3::Bucket":
                s3.head_bucket(Bucket=physical)
            assert physical == stack.physical(resource), f"{name}: {variable}"
        # Everything else arrives as declared, parameters resolved.
        assert variables["MAX_ATTEMPTS"] in (4, "4"), name
        if "TRIGGER" in declared:
            assert variables["TRIGGER"] == declared["TRIGGER"] and declared["TRIGGER"].startswith(
                "clientary."
            ), name


def test_each_queue_feeds_its_consumer_with_the_templates_batching(
    stack: Stack, transformed: dict[str, Any]
) -> None:
    """DEPLOYED: the event source mappings, queue → function, with the declared batching."""
    lam, sqs = stack.client("lambda"), stack.client("sqs")
    arn_to_logical = {}
    for name, (kind, physical) in stack.resources.items():
        if kind == "AWS::SQS::Queue":
            arn = sqs.get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            arn_to_logical[arn] = name
        elif kind == "AWS::Lambda::Function":
            arn_to_logical[stack.function_arn(name)] = name
    wired = {}
    for mapping in lam.list_event_source_mappings()["EventSourceMappings"]:
        queue, function = arn_to_logical[mapping["EventSourceArn"]], arn_to_logical[mapping["FunctionArn"]]
        wired[queue] = function
        (declared,) = [
            r["Properties"]
            for r in of_type(transformed, "AWS::Lambda::EventSourceMapping").values()
            if ref(r["Properties"]["EventSourceArn"]) == queue
        ]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], queue
        assert mapping["BatchSize"] == declared["BatchSize"], queue
        if "MaximumBatchingWindowInSeconds" in declared:
            assert mapping["MaximumBatchingWindowInSeconds"] == declared["MaximumBatchingWindowInSeconds"], (
                queue
            )
        assert mapping["ScalingConfig"] == declared["ScalingConfig"], queue
    assert wired == {
        "XeroActionQueue": "XeroActionFunction",
        "ClientaryActionQueue": "ClientaryActionFunction",
        "XeroEventQueue": "XeroTriggerFunction",
    }


def test_each_work_queue_redrives_to_its_dlq_after_max_attempts(
    stack: Stack, transformed: dict[str, Any]
) -> None:
    """DEPLOYED: redrive policies, receive counts, retention and visibility of the created queues."""
    sqs, lam = stack.client("sqs"), stack.client("lambda")
    consumers = {
        ref(r["Properties"]["EventSourceArn"]): ref(r["Properties"]["FunctionName"])
        for r in of_type(transformed, "AWS::Lambda::EventSourceMapping").values()
    }
    expected = {
        "XeroActionQueue": "XeroActionDLQ",
        "ClientaryActionQueue": "ClientaryActionDLQ",
        "XeroEventQueue": "XeroEventDLQ",
    }
    assert set(of_type(transformed, "AWS::SQS::Queue")) == set(expected) | set(expected.values())
    for queue, dlq in expected.items():
        attributes = sqs.get_queue_attributes(QueueUrl=stack.physical(queue), AttributeNames=["All"])[
            "Attributes"
        ]
        dlq_attributes = sqs.get_queue_attributes(QueueUrl=stack.physical(dlq), AttributeNames=["All"])[
            "Attributes"
        ]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == dlq_attributes["QueueArn"], queue
        assert int(redrive["maxReceiveCount"]) == int(PARAMETERS["MaxAttempts"]), queue
        assert "RedrivePolicy" not in dlq_attributes, dlq
        assert int(dlq_attributes["MessageRetentionPeriod"]) > int(attributes["MessageRetentionPeriod"]), dlq
        timeout = lam.get_function(FunctionName=stack.physical(str(consumers[queue])))["Configuration"][
            "Timeout"
        ]
        assert int(attributes["VisibilityTimeout"]) >= 6 * timeout, queue


def test_every_schedule_invokes_its_function(stack: Stack, transformed: dict[str, Any]) -> None:
    """DEPLOYED: the EventBridge rules, their state and targets, and the functions' permissions."""
    events, lam = stack.client("events"), stack.client("lambda")
    expected = {f"{prefix}TriggerFunction": entry["Poll"] for prefix, entry in clientary_triggers().items()}
    expected |= {
        "ResumeParkedFunction": "ENABLED",
        "XeroTriggerFunction": "ENABLED",
        "NotifierFunction": "ENABLED",
    }
    # The notifier sends the failure digest within minutes; the others poll or sweep every 15.
    rates = {"NotifierFunction": "rate(2 minutes)"}
    scheduled = {}
    for rule in events.list_rules()["Rules"]:
        (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        (function,) = [name for name in expected if stack.function_arn(name) == target["Arn"]]
        scheduled[function] = rule["State"]
        assert rule["ScheduleExpression"] == rates.get(function, "rate(15 minutes)"), function
        policy = json.loads(lam.get_policy(FunctionName=stack.physical(function))["Policy"])
        assert any(
            s["Principal"] == {"Service": "events.amazonaws.com"}
            and s["Condition"]["ArnLike"]["AWS:SourceArn"] == rule["Arn"]
            for s in policy["Statement"]
        ), f"{function}: EventBridge may not invoke it for {rule['Name']}"
    assert scheduled == expected
    assert scheduled["NewContractTriggerFunction"] == "DISABLED"  # push only


def test_every_route_reaches_its_function(stack: Stack, transformed: dict[str, Any]) -> None:
    """TRANSFORMED (moto skips the HTTP API): the API's routes and their integrations.
    DEPLOYED: the permission of each route's function for API Gateway."""
    (api,) = of_type(transformed, "AWS::ApiGatewayV2::Api").values()
    routes = {}
    for path, methods in api["Properties"]["Body"]["paths"].items():
        for method, operation in methods.items():
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["type"] == "aws_proxy" and integration["payloadFormatVersion"] == "2.0"
            (function,) = re.findall(r"\$\{(\w+)\.Arn\}", integration["uri"]["Fn::Sub"])
            routes[f"{method.upper()} {path}"] = function
    expected = {
        f"POST {entry['Path']}": f"{prefix}TriggerFunction" for prefix, entry in clientary_triggers().items()
    }
    expected |= {"POST /webhooks/xero": "XeroWebhookFunction"}
    expected |= {
        f"GET /oauth/xero/{step}": "XeroConnectFunction" for step in ("connect", "callback", "choose")
    }
    assert routes == expected
    lam = stack.client("lambda")
    for route, function in routes.items():
        policy = json.loads(lam.get_policy(FunctionName=stack.physical(function))["Policy"])
        method, path = route.split(" ", 1)
        assert any(
            s["Principal"] == {"Service": "apigateway.amazonaws.com"}
            and s["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f"/{method}{path}")
            for s in policy["Statement"]
        ), f"{route}: API Gateway may not invoke {function}"


def test_every_function_logs_to_its_own_group_with_the_retention_parameter(
    stack: Stack, transformed: dict[str, Any]
) -> None:
    """TRANSFORMED (moto keeps no LoggingConfig): each function's group. DEPLOYED: the groups."""
    logs = stack.client("logs")
    retention = {g["logGroupName"]: g.get("retentionInDays") for g in logs.describe_log_groups()["logGroups"]}
    groups = set()
    for name in function_names(transformed):
        group = ref(transformed["Resources"][name]["Properties"]["LoggingConfig"]["LogGroup"])
        assert group is not None and group not in groups, name
        groups.add(group)
        physical = stack.physical(group)
        assert physical == f"/aws/lambda/{STACK}-{name}", name
        assert retention[physical] == int(PARAMETERS["LogRetentionDays"]), name


def test_secrets_and_alarms_of_the_transformed_template(stack: Stack, transformed: dict[str, Any]) -> None:
    """TRANSFORMED (moto skips secrets, alarms and subscriptions): the secrets keep their Retain
    policies through the transform, each alarm watches a resource moto created and notifies the
    topic, which AlarmEmail subscribes to. DEPLOYED: the topic."""
    secrets = of_type(transformed, "AWS::SecretsManager::Secret")
    assert len(secrets) == 4
    for name, secret in secrets.items():
        assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == "Retain", name
    for name in ("WorkflowsTable", "StateTable"):
        assert transformed["Resources"][name]["DeletionPolicy"] == "Retain", name
    topic = stack.physical("AlarmTopic")
    alarms = of_type(transformed, "AWS::CloudWatch::Alarm")
    for name, alarm in alarms.items():
        properties = alarm["Properties"]
        assert [ref(a) for a in properties["AlarmActions"]] == ["AlarmTopic"], name
        dimensions = list(properties.get("Dimensions") or [])
        for metric in properties.get("Metrics") or []:
            dimensions += (metric.get("MetricStat") or {}).get("Metric", {}).get("Dimensions") or []
        # Our own metrics (the failed runs' stack-wide total) have no dimension to resolve.
        ours = [m for m in properties.get("Metrics") or [] if "Expression" not in m] or [properties]
        if not dimensions:
            assert all(
                ((m.get("MetricStat") or {}).get("Metric") or m)
                .get("Namespace", {})
                .get("Fn::Sub", "")
                .startswith("ClientaryXero/")
                for m in ours
            ), name
        for dimension in dimensions:
            watched = ref(dimension["Value"])
            created = watched in stack.resources and bool(stack.resources[watched][1])
            # the HTTP API is skipped by moto: the alarm watches it in the transformed template
            skipped = transformed["Resources"].get(str(watched), {}).get("Type") in SKIPPED_BY_MOTO
            assert created or skipped, f"{name} watches {watched}"
    assert stack.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["TopicArn"] == topic
    (subscription,) = of_type(transformed, "AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }


def test_the_outputs_name_the_deployed_resources(stack: Stack, transformed: dict[str, Any]) -> None:
    """DEPLOYED: every output, and those naming a created resource give its physical id.
    TRANSFORMED: the secrets' ARNs, and the URL outputs (the API is skipped) with the routes."""
    skipped = set()
    transformed = for_moto(transformed)
    for key, output in transformed["Outputs"].items():
        target = ref(output["Value"])
        if target is not None and transformed["Resources"][target]["Type"] in SKIPPED_BY_MOTO:
            skipped.add(key)  # moto drops an output naming a skipped resource (the secrets' ARNs)
        elif target is not None:
            assert stack.outputs[key] == stack.physical(target), key
    assert skipped == {
        "XeroConnectionSecretArn",
        "ClientaryConnectionSecretArn",
        "ClientaryPushKeySecretArn",
        "XeroWebhookKeySecretArn",
    }
    assert set(stack.outputs) == set(transformed["Outputs"]) - skipped
    for prefix, entry in clientary_triggers().items():
        assert stack.outputs[f"{prefix}TriggerFunctionName"] == stack.physical(f"{prefix}TriggerFunction")
        url = transformed["Outputs"][f"{prefix}PushUrl"]["Value"]["Fn::Sub"]
        assert (
            url == f"https://${{WebhookApi}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}{entry['Path']}"
        )
