"""Typed settings, read from the environment once (on first use) and cached.

Nothing reads ``os.environ`` at import time: handlers stay importable in tests and cold starts stay
short. ``reset_settings()`` exists for tests and the local runner, which build fresh environments.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    workflows_table: str = Field(default="clientary-xero-workflows")
    state_table: str = Field(default="clientary-xero-state")
    xero_queue_url: str = ""
    clientary_queue_url: str = ""
    # Secret *names* (ARNs in Lambda), not secret values.
    xero_secret_id: str = "clientary-xero/xero"  # noqa: S105
    clientary_secret_id: str = "clientary-xero/clientary"  # noqa: S105
    webhook_secret_id: str = "clientary-xero/webhooks"  # noqa: S105
    # Trigger name a trigger Lambda serves (e.g. clientary.new_invoice); empty elsewhere.
    trigger: str = ""
    # Days a run's history stays in the State table (DynamoDB TTL).
    run_retention_days: int = 30
    # Must equal the action queue's maxReceiveCount: on the last attempt a failing step fails its run.
    max_attempts: int = 5
    # Seconds a step execution holds its lease; longer than the action Lambda's timeout.
    step_lease_seconds: int = 90
    # JSONata bounds: milliseconds and eval depth per evaluation.
    expression_timeout_ms: int = 1000
    expression_max_depth: int = 200
    region: str = "us-east-1"

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            key = name.upper()
            if key in env and env[key] != "":
                values[name] = env[key]
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            values["region"] = region
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environ()


def reset_settings() -> None:
    get_settings.cache_clear()
