"""A deployed stack as the operating commands see it: its outputs and resources (CloudFormation),
and whether what the outputs name exists (tables, the payload bucket).

Errors other than "no such stack" are left to the caller as botocore raised them: the CLI turns
each into one line naming the call, the resource and the region (local/cli.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clientary_xero.errors import NotFound
from clientary_xero.storage.aws import client, error_code


@dataclass
class Stack:
    name: str
    status: str
    outputs: dict[str, str]
    # (logical id, type, status) of each resource CloudFormation reports
    resources: list[tuple[str, str, str]] = field(default_factory=list)


def _describe(name: str, region: str) -> dict[str, Any]:
    try:
        stacks = client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except Exception as exc:
        # CloudFormation says "Stack with id X does not exist" as a ValidationError.
        if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
            raise NotFound(
                f"there is no stack {name!r} in {region}: check --stack, and --region (or your AWS "
                "profile's region) — or deploy it (sam deploy)"
            ) from None
        raise
    return dict(stacks[0])


def stack_outputs(name: str, region: str) -> dict[str, str]:
    """The stack's outputs by key. ``NotFound`` when there is no such stack in the region."""
    return {o["OutputKey"]: o["OutputValue"] for o in _describe(name, region).get("Outputs", [])}


def read_stack(name: str, region: str) -> Stack:
    """The stack's status, outputs and resources (every page of them)."""
    described = _describe(name, region)
    resources: list[tuple[str, str, str]] = []
    paginator = client("cloudformation").get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=name):
        for item in page.get("StackResourceSummaries", []):
            resources.append(
                (
                    str(item.get("LogicalResourceId", "")),
                    str(item.get("ResourceType", "")),
                    str(item.get("ResourceStatus", "")),
                )
            )
    return Stack(
        name=name,
        status=str(described.get("StackStatus", "")),
        outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])},
        resources=resources,
    )


def table_exists(name: str) -> bool:
    try:
        client("dynamodb").describe_table(TableName=name)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
    return True


def bucket_exists(name: str) -> bool:
    try:
        client("s3").head_bucket(Bucket=name)
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True
