"""Typed settings, read from the environment once (on first use) and cached.

Nothing reads ``os.environ`` at import time: handlers stay importable in tests and cold starts stay
short. ``reset_settings()`` exists for tests and the local runner, which build fresh environments.

A plain frozen dataclass, not a pydantic model: every handler reads its settings on its first
event, and pydantic's own import is ~60 ms of CPU (its core schema's TypedDicts, annotated_types);
a handler whose first event needs nothing else of pydantic (the Xero webhook, the parked-run
sweeper) then never imports it. Each field is set from the environment variable of its name in
capitals; a value that does not convert to the field's type (or is outside its bounds) is refused
with ``SettingsError``, naming the variable and saying what it must be.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

STEP_APPS = ("", "xero", "clientary")
# The words pydantic took for a boolean (the settings were a pydantic model before): the same
# environment keeps its meaning.
TRUE_WORDS = frozenset({"1", "on", "t", "true", "y", "yes"})
FALSE_WORDS = frozenset({"0", "off", "f", "false", "n", "no"})


class SettingsError(ValueError):
    """An environment variable the settings read has a value they cannot take."""


@dataclass(frozen=True, slots=True)
class Settings:
    workflows_table: str = "clientary-xero-workflows"
    state_table: str = "clientary-xero-state"
    xero_queue_url: str = ""
    clientary_queue_url: str = ""
    # Secret *names* (ARNs in Lambda), not secret values.
    xero_secret_id: str = "clientary-xero/xero"  # noqa: S105
    clientary_secret_id: str = "clientary-xero/clientary"  # noqa: S105
    # Issue 7: one secret per webhook key, each read only by the functions that verify with it.
    clientary_push_secret_id: str = "clientary-xero/clientary-push"  # noqa: S105
    xero_webhook_secret_id: str = "clientary-xero/xero-webhook"  # noqa: S105
    # Trigger name a trigger Lambda serves (e.g. clientary.new_invoice); empty elsewhere.
    trigger: str = ""
    # The action queue an action Lambda serves (functions/step_actions): xero or clientary.
    step_app: Literal["", "xero", "clientary"] = ""
    # Days a run's history stays in the State table (DynamoDB TTL).
    run_retention_days: int = 30
    # S3 bucket for run/step attributes over DynamoDB's 400 KB item limit (storage/payloads.py);
    # empty: an oversized run is stored compacted and FAILED, saying why.
    payload_bucket: str = ""
    # Must equal the action queue's maxReceiveCount: on the last attempt a failing step fails its run.
    max_attempts: int = 5
    # Seconds a step execution holds its lease; longer than the action Lambda's timeout.
    step_lease_seconds: int = 90
    # JSONata bounds: milliseconds and eval depth per evaluation.
    expression_timeout_ms: int = 1000
    expression_max_depth: int = 200
    region: str = "us-east-1"
    # --- Xero connect flow and Xero triggers (issue #3)
    # Queue between the Xero webhook route (acknowledges in < 5 s) and the Xero trigger Lambda.
    xero_event_queue_url: str = ""
    # Scopes the connect flow asks for. Granular scopes: apps created on/after 2 March 2026 get
    # nothing else (reference/xero-api.md §3.3); older apps with broad scopes set e.g.
    # "offline_access accounting.contacts accounting.settings accounting.transactions
    # accounting.reports.read projects".
    xero_scopes: str = (
        "offline_access accounting.contacts accounting.settings accounting.invoices accounting.payments "
        "accounting.banktransactions accounting.reports.balancesheet.read "
        "accounting.reports.profitandloss.read projects"
    )
    # The OAuth redirect registered in the Xero app; empty: https://<API host>/oauth/xero/callback.
    xero_redirect_uri: str = ""
    # --- Xero rate limits across Lambdas (issue #3; storage/ratelimit.py, engine/runner.py)
    # Dead-letter queues: a step that fails for good on a re-sent copy of its message (one that
    # waited for rate budget) is moved there by the runner, as SQS would move the original.
    xero_dlq_url: str = ""
    clientary_dlq_url: str = ""
    # Seconds a call may wait inside the Lambda for its instant (or a slot) in the shared Xero
    # budget; beyond that the step message is re-sent, due at its reserved instant and carrying
    # the reservation (not counted as an attempt). Short: the action
    # Lambda runs a batch of 5 steps, each maybe several calls, within its 30 s timeout.
    xero_budget_wait_seconds: float = 2.0
    # Rate waits one step may take before they count as attempts after all (a safety bound).
    max_rate_waits: int = 200
    # --- HTTP routes (issue 7)
    # Seconds a push signature's t= may be from now, either way (a replay after it is refused).
    clientary_push_signature_tolerance_seconds: int = 300
    # Also accept the untimed "sha256=<hex>" push signature, which a captured request replays
    # forever. Only for a pusher that cannot sign the t=…,v1=… form yet.
    clientary_push_legacy_signatures: bool = False
    # Seconds a Lambda container reuses a webhook key or the Clientary token it read: an unsigned
    # flood then costs one Secrets Manager read per container per minute, not one per request.
    secret_cache_seconds: float = 60.0
    # --- DynamoDB round trips (issue 8)
    # Seconds a trigger Lambda container reuses the workflows it read for a trigger: a poll page
    # or a burst of pushes reads the Workflows table once; an edit takes effect within this time.
    workflow_cache_seconds: float = 5.0
    # --- Failures reach a person (issue 9: usecases/alerts.py, the notifier function)
    # The SNS topic the notifier's digests go to, and the stack its commands name (--stack).
    alarm_topic_arn: str = ""
    stack_name: str = "clientary-xero"
    # A workflow whose runs fail this many times in a row (no success between) is reported once.
    repeated_failure_threshold: int = 5
    # The Xero event queue's DLQ: the notifier reports new messages in each dead-letter queue.
    xero_event_dlq_url: str = ""

    def __post_init__(self) -> None:
        if self.step_app not in STEP_APPS:
            raise SettingsError(f"STEP_APP must be one of xero, clientary or empty, not {self.step_app!r}")
        for name in _AT_LEAST_ONE:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.upper()} must be at least 1, not {getattr(self, name)!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The fields' names (each read from the environment variable of the name in capitals)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            key = field.name.upper()
            if key in env and env[key] != "":
                values[field.name] = _convert(key, env[key], field.default)
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            values["region"] = region
        return cls(**values)  # type: ignore[arg-type]


# Fields that must be at least 1 (a threshold of 0 would report every run).
_AT_LEAST_ONE = ("repeated_failure_threshold",)


def _convert(key: str, raw: str, default: object) -> object:
    """``raw`` as the type of the field's default (each field has one), or a clear refusal."""
    text = raw.strip()
    if isinstance(default, bool):
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise SettingsError(f"{key} must be true or false, not {raw!r}")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise SettingsError(f"{key} must be a whole number, not {raw!r}") from None
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise SettingsError(f"{key} must be a number, not {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise SettingsError(f"{key} must be a finite number, not {raw!r}")
        return value
    return raw


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environ()


def reset_settings() -> None:
    get_settings.cache_clear()
