"""Create the stack's AWS resources (same keys, indexes and queues as template.yaml) in whatever
boto3 points at — moto in-process for the local runner and the tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

SAMPLE_PUSH_KEY = "local-sample-push-key"  # also used to sign events/clientary_push_*.json
# The t= of the samples' push signatures (2026-01-01T00:00:00Z): long past, so the route refuses
# them as replays; the local runner signs them again at send time (events/README.md).
SAMPLE_PUSH_TIMESTAMP = 1767225600
# Xero webhook key of the local runner and the tests; signs events/xero_webhook_*.json (issue #3).
SAMPLE_XERO_WEBHOOK_KEY = "local-sample-xero-webhook-key"


@dataclass
class LocalResources:
    workflows_table: str
    state_table: str
    xero_queue_url: str
    xero_dlq_url: str
    clientary_queue_url: str
    clientary_dlq_url: str
    xero_secret_id: str
    clientary_secret_id: str
    # Issue 7: one secret per webhook key (each function reads only its own).
    clientary_push_secret_id: str
    xero_webhook_secret_id: str
    # Issue #3: webhook events between POST /webhooks/xero and the Xero trigger Lambda.
    xero_event_queue_url: str = ""
    xero_event_dlq_url: str = ""
    # Issue 7: S3 for run payloads over DynamoDB's 400 KB item limit (template.yaml PayloadBucket).
    payload_bucket: str = ""

    def environ(self, max_attempts: int) -> dict[str, str]:
        return {
            "WORKFLOWS_TABLE": self.workflows_table,
            "STATE_TABLE": self.state_table,
            "XERO_QUEUE_URL": self.xero_queue_url,
            "CLIENTARY_QUEUE_URL": self.clientary_queue_url,
            "XERO_SECRET_ID": self.xero_secret_id,
            "CLIENTARY_SECRET_ID": self.clientary_secret_id,
            "CLIENTARY_PUSH_SECRET_ID": self.clientary_push_secret_id,
            "XERO_WEBHOOK_SECRET_ID": self.xero_webhook_secret_id,
            "MAX_ATTEMPTS": str(max_attempts),
            "XERO_EVENT_QUEUE_URL": self.xero_event_queue_url,
            # issue #3: the runner moves a re-sent step copy that used its last attempt to the DLQ
            "XERO_DLQ_URL": self.xero_dlq_url,
            "CLIENTARY_DLQ_URL": self.clientary_dlq_url,
            "PAYLOAD_BUCKET": self.payload_bucket,
        }


def create_state_table(name: str, *, region: str = "us-east-1") -> None:
    """The State table as template.yaml declares it: pk/sk, the gsi1 index, TTL on ``ttl``."""
    ddb = boto3.client("dynamodb", region_name=region)
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})


def create_resources(
    *,
    prefix: str = "clientary-xero",
    region: str = "us-east-1",
    max_attempts: int = 5,
    xero_secret: dict[str, Any] | None = None,
    clientary_secret: dict[str, Any] | None = None,
    push_key: str = SAMPLE_PUSH_KEY,
    xero_webhook_key: str = SAMPLE_XERO_WEBHOOK_KEY,
) -> LocalResources:
    ddb = boto3.client("dynamodb", region_name=region)
    ddb.create_table(
        TableName=f"{prefix}-workflows",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "trigger", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-trigger",
                "KeySchema": [
                    {"AttributeName": "trigger", "KeyType": "HASH"},
                    {"AttributeName": "id", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    create_state_table(f"{prefix}-state", region=region)

    sqs = boto3.client("sqs", region_name=region)
    urls: dict[str, str] = {}
    for app in ("xero", "clientary"):
        dlq = sqs.create_queue(QueueName=f"{prefix}-{app}-actions-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queue = sqs.create_queue(
            QueueName=f"{prefix}-{app}-actions",
            Attributes={
                "VisibilityTimeout": "360",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_attempts)}
                ),
            },
        )["QueueUrl"]
        urls[app], urls[f"{app}-dlq"] = queue, dlq
    # Issue #3: XeroEventQueue (+ DLQ) as in template.yaml.
    event_dlq = sqs.create_queue(QueueName=f"{prefix}-xero-events-dlq")["QueueUrl"]
    event_dlq_arn = sqs.get_queue_attributes(QueueUrl=event_dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    urls["xero-events"] = sqs.create_queue(
        QueueName=f"{prefix}-xero-events",
        Attributes={
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": event_dlq_arn, "maxReceiveCount": str(max_attempts)}
            ),
        },
    )["QueueUrl"]
    urls["xero-events-dlq"] = event_dlq

    # Issue 7: the payload bucket (template.yaml: encrypted, private, objects expire with the runs).
    payload_bucket = f"{prefix}-payloads"
    s3 = boto3.client("s3", region_name=region)
    # Outside us-east-1, S3 wants the bucket's region said again (IllegalLocationConstraintException).
    where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=payload_bucket, **where)
    s3.put_public_access_block(
        Bucket=payload_bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )

    sm = boto3.client("secretsmanager", region_name=region)
    ids = {}
    for name, value in (
        ("xero", xero_secret or {}),
        ("clientary", clientary_secret or {}),
        ("clientary-push", {"clientary_push_key": push_key}),
        ("xero-webhook", {"xero_webhook_key": xero_webhook_key}),
    ):
        ids[name] = sm.create_secret(Name=f"{prefix}/{name}", SecretString=json.dumps(value))["ARN"]

    return LocalResources(
        workflows_table=f"{prefix}-workflows",
        state_table=f"{prefix}-state",
        xero_queue_url=urls["xero"],
        xero_dlq_url=urls["xero-dlq"],
        clientary_queue_url=urls["clientary"],
        clientary_dlq_url=urls["clientary-dlq"],
        xero_secret_id=ids["xero"],
        clientary_secret_id=ids["clientary"],
        clientary_push_secret_id=ids["clientary-push"],
        xero_webhook_secret_id=ids["xero-webhook"],
        xero_event_queue_url=urls["xero-events"],
        xero_event_dlq_url=urls["xero-events-dlq"],
        payload_bucket=payload_bucket,
    )
