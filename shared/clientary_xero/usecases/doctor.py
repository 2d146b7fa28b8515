"""``clientary-xero doctor``: check a deployed stack end to end and say how to fix what is wrong.

Each check is one ``Finding`` (``ok``, ``problem`` or ``warning``) with what was found and, when
something is wrong, what to do. The checks, in order:

* **stack** — the stack exists, is not failed or rolled back, no resource failed, and the outputs
  the operating commands need are there;
* **resources** — the tables, queues, secrets and payload bucket the outputs name exist;
* **secret: …** — each secret is set and well-formed (keys present, not the deploy's empty
  placeholder): the values are read but never shown, only which key is missing or wrong;
* **xero connection** — the refresh token still refreshes and ``GET /Organisation`` answers;
* **xero scopes** — the connection holds the scopes the stored workflows' Xero actions declare;
* **clientary** — Clientary answers ``GET /invoices`` with the stored token;
* **workflows** — every stored workflow validates;
* **dead-letter queues** — all empty;
* **runs** — none stuck: RUNNING or QUEUED without progress and without a live step lease for an
  hour, or WAITING more than half an hour past its ``resume_at`` (the sweeper runs every 15 min);
* **rate budget** — Xero's shared budget for the organisation: calls in flight, blocks from a 429.

The Xero refresh is a real one (the connection's refresh token rotates, written back under the
token lock before use, as every action Lambda does) and ``GET /Organisation`` is one call of the
organisation's budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from clientary_xero.errors import ClientaryXeroError, NotFound, ReauthorizationRequired

OK, PROBLEM, WARNING = "ok", "problem", "warning"

# A RUNNING/QUEUED run this long without an update and without a live step lease is stuck.
STUCK_RUN_SECONDS = 3600
# A WAITING run this long past its resume_at is stuck (the sweeper runs every 15 minutes).
OVERDUE_WAIT_SECONDS = 1800
# How many runs of each unfinished status the check looks at.
RUNS_TO_CHECK = 1000

# Outputs the operating commands and the doctor need (template.yaml Outputs).
REQUIRED_OUTPUTS = (
    "WorkflowsTableName",
    "StateTableName",
    "XeroActionQueueUrl",
    "XeroActionDLQUrl",
    "ClientaryActionQueueUrl",
    "ClientaryActionDLQUrl",
    "XeroEventQueueUrl",
    "XeroEventDLQUrl",
    "XeroConnectionSecretArn",
    "ClientaryConnectionSecretArn",
    "ClientaryPushKeySecretArn",
    "XeroWebhookKeySecretArn",
    "PayloadBucketName",
)
_QUEUES = {
    "XeroActionQueueUrl": "Xero action queue",
    "XeroActionDLQUrl": "Xero action DLQ",
    "ClientaryActionQueueUrl": "Clientary action queue",
    "ClientaryActionDLQUrl": "Clientary action DLQ",
    "XeroEventQueueUrl": "Xero event queue",
    "XeroEventDLQUrl": "Xero event DLQ",
}
_DLQS = ("XeroActionDLQUrl", "ClientaryActionDLQUrl", "XeroEventDLQUrl")
_SECRETS = {
    "XeroConnectionSecretArn": "xero",
    "ClientaryConnectionSecretArn": "clientary",
    "ClientaryPushKeySecretArn": "clientary push key",
    "XeroWebhookKeySecretArn": "xero webhook key",
}
_XERO_WEBHOOK_TRIGGERS = (
    "xero.contact_created",
    "xero.contact_updated",
    "xero.invoice_created",
    "xero.invoice_updated",
)


@dataclass
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class Report:
    stack: str
    region: str
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return all(f.status != PROBLEM for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "ok": self.ok,
            "checks": [asdict(f) for f in self.findings],
        }


def diagnose(
    stack_name: str | None,
    region: str,
    *,
    configure: Callable[[dict[str, str]], None],
    now: float | None = None,
) -> Report:
    """Run every check. ``stack_name`` None: the resources are named by the environment (the
    stack is not checked). ``configure(outputs)`` points the settings at the stack's outputs."""
    now = time.time() if now is None else now
    findings: list[Finding] = []
    if stack_name is None:
        findings.append(
            Finding(
                "stack",
                WARNING,
                "not checked: the resources are named by WORKFLOWS_TABLE, STATE_TABLE, … in the environment",
                "pass --stack to check a deployed stack",
            )
        )
        outputs = _outputs_from_settings()
    else:
        stack = _check_stack(stack_name, region, findings)
        if stack is None:
            return Report(stack_name, region, findings)
        outputs = stack
        configure(outputs)
    findings.append(_checked("resources", lambda: _check_resources(outputs)))
    secrets: dict[str, dict[str, Any]] = {}
    refused = _refused("secrets", lambda: secrets.update(_check_secrets(outputs, findings)))
    if refused is not None:
        findings.append(refused)
    workflows: list[Any] = []
    unlisted = _refused("workflows", lambda: workflows.extend(_stored_workflows()))
    if "XeroConnectionSecretArn" in secrets:
        token = str(secrets["XeroConnectionSecretArn"].get("access_token") or "")
        granted: list[set[str] | None] = [None]

        def xero() -> None:
            granted[0] = _check_xero(findings, token)

        refused = _refused("xero connection", xero)  # the token lock lives in the State table
        if refused is not None:
            findings.append(refused)
        findings.append(_check_scopes(workflows, granted[0]))
    else:
        findings.append(Finding("xero connection", WARNING, "not checked: the Xero secret is not usable"))
    if "ClientaryConnectionSecretArn" in secrets:
        findings.append(_checked("clientary", _check_clientary))
    else:
        findings.append(Finding("clientary", WARNING, "not checked: the Clientary secret is not usable"))
    webhook_key = _webhook_key_finding(secrets, workflows)
    if webhook_key is not None:
        findings.append(webhook_key)
    findings.append(unlisted or _check_workflows(workflows))
    findings.append(_checked("dead-letter queues", lambda: _check_dlqs(outputs)))
    findings.append(_checked("runs", lambda: _check_runs(now)))
    findings.append(
        _checked("rate budget", lambda: _check_budget(secrets.get("XeroConnectionSecretArn"), now))
    )
    return Report(stack_name or "", region, findings)


def _refused(check: str, run: Callable[[], object]) -> Finding | None:
    """None after ``run()``; a problem finding when AWS refused what it called (a table that is
    gone, no permission), so the other checks still run and report."""
    from clientary_xero.storage.aws import error_code

    try:
        run()
    except Exception as exc:
        if not type(exc).__module__.startswith("botocore"):
            raise
        return Finding(
            check,
            PROBLEM,
            f"AWS refused the check ({error_code(exc) or type(exc).__name__})",
            "the resources check names what is missing; else check your AWS permissions for it",
        )
    return None


def _checked(check: str, run: Callable[[], Finding]) -> Finding:
    found: list[Finding] = []
    refused = _refused(check, lambda: found.append(run()))
    return refused or found[0]


# ------------------------------------------------------------------ the stack and its resources
def _outputs_from_settings() -> dict[str, str]:
    from clientary_xero.settings import get_settings

    s = get_settings()
    values = {
        "WorkflowsTableName": s.workflows_table,
        "StateTableName": s.state_table,
        "XeroActionQueueUrl": s.xero_queue_url,
        "XeroActionDLQUrl": s.xero_dlq_url,
        "ClientaryActionQueueUrl": s.clientary_queue_url,
        "ClientaryActionDLQUrl": s.clientary_dlq_url,
        "XeroEventQueueUrl": s.xero_event_queue_url,
        "XeroConnectionSecretArn": s.xero_secret_id,
        "ClientaryConnectionSecretArn": s.clientary_secret_id,
        "ClientaryPushKeySecretArn": s.clientary_push_secret_id,
        "XeroWebhookKeySecretArn": s.xero_webhook_secret_id,
        "PayloadBucketName": s.payload_bucket,
    }
    return {k: v for k, v in values.items() if v}


def _check_stack(name: str, region: str, findings: list[Finding]) -> dict[str, str] | None:
    from clientary_xero.storage.stack import read_stack

    try:
        stack = read_stack(name, region)
    except NotFound as exc:
        findings.append(
            Finding("stack", PROBLEM, str(exc), "deploy it (sam deploy) or pass --stack/--region")
        )
        return None
    problems = []
    # UPDATE_ROLLBACK_COMPLETE is a working stack whose last update was undone; these are not.
    if "FAILED" in stack.status or stack.status.startswith(("ROLLBACK", "DELETE")):
        problems.append(f"the stack is {stack.status}")
    failed = [
        f"{logical} ({kind}) {status}" for logical, kind, status in stack.resources if "FAILED" in status
    ]
    if failed:
        problems.append("resources failed: " + ", ".join(failed))
    missing = [key for key in REQUIRED_OUTPUTS if not stack.outputs.get(key)]
    if missing:
        problems.append("outputs missing: " + ", ".join(missing))
    if problems:
        findings.append(
            Finding(
                "stack",
                PROBLEM,
                f"{name}: " + "; ".join(problems),
                "look at the stack's events (aws cloudformation describe-stack-events "
                f"--stack-name {name}) and deploy again (sam deploy)",
            )
        )
    else:
        findings.append(
            Finding("stack", OK, f"{name} {stack.status}, {len(stack.resources)} resources, outputs complete")
        )
    return stack.outputs


def _check_resources(outputs: dict[str, str]) -> Finding:
    from clientary_xero.storage.queue import queue_depth
    from clientary_xero.storage.secrets import SecretStore
    from clientary_xero.storage.stack import bucket_exists, table_exists

    missing: list[str] = []
    checked = 0
    for key, label in (("WorkflowsTableName", "Workflows table"), ("StateTableName", "State table")):
        if outputs.get(key):
            checked += 1
            if not table_exists(outputs[key]):
                missing.append(f"{label} {outputs[key]}")
    for key, label in _QUEUES.items():
        if outputs.get(key):
            checked += 1
            if queue_depth(outputs[key]) is None:
                missing.append(f"{label} {_queue_name(outputs[key])}")
    store = SecretStore()
    for key, label in _SECRETS.items():
        if outputs.get(key):
            checked += 1
            try:
                store.read(outputs[key])
            except NotFound:
                missing.append(f"{label} secret {outputs[key]}")
            except ClientaryXeroError:
                pass  # exists, but not JSON: the secret's own check says so
    if outputs.get("PayloadBucketName"):
        checked += 1
        if not bucket_exists(outputs["PayloadBucketName"]):
            missing.append(f"payload bucket {outputs['PayloadBucketName']}")
    if missing:
        return Finding(
            "resources",
            PROBLEM,
            "missing: " + "; ".join(missing),
            "deploy the stack again (sam deploy) to recreate them; if they were deleted on purpose, "
            "restore them from a backup first (tables, secrets)",
        )
    return Finding("resources", OK, f"{checked} tables, queues, secrets and buckets exist")


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


# ------------------------------------------------------------------ secrets (never shown)
def _check_secrets(outputs: dict[str, str], findings: list[Finding]) -> dict[str, dict[str, Any]]:
    """A finding per secret; returns the well-formed ones by output key (for the checks after)."""
    from clientary_xero.storage.secrets import SecretStore

    store = SecretStore()
    usable: dict[str, dict[str, Any]] = {}
    for key, label in _SECRETS.items():
        secret_id = outputs.get(key)
        if not secret_id:
            continue
        check = f"secret: {label}"
        try:
            value = store.read(secret_id)
        except NotFound:
            findings.append(Finding(check, PROBLEM, f"{_secret_name(secret_id)} does not exist", _REDEPLOY))
            continue
        except ClientaryXeroError as exc:
            findings.append(Finding(check, PROBLEM, str(exc), _SECRET_FIXES[label]))
            continue
        problems = _secret_problems(label, value)
        if problems is None:  # the webhook key: judged with the workflows (needed only for webhooks)
            usable[key] = value
            continue
        if problems:
            findings.append(
                Finding(
                    check, PROBLEM, f"{_secret_name(secret_id)}: " + "; ".join(problems), _SECRET_FIXES[label]
                )
            )
        else:
            findings.append(Finding(check, OK, f"{_secret_name(secret_id)} is set"))
            usable[key] = value
    return usable


_REDEPLOY = "deploy the stack again (sam deploy)"
_SECRET_FIXES = {
    "xero": "connect Xero: clientary-xero connect xero (or --custom for a custom connection)",
    "clientary": (
        "put your account's subdomain and API token in the secret: aws secretsmanager put-secret-value "
        '--secret-id <ClientaryConnectionSecretArn> --secret-string \'{"subdomain": "…", "api_token": "…"}\''
    ),
    "clientary push key": (
        "give it a key of 32+ characters: aws secretsmanager put-secret-value --secret-id "
        '<ClientaryPushKeySecretArn> --secret-string \'{"clientary_push_key": "…"}\''
    ),
    "xero webhook key": (
        "paste the webhook key from the Xero developer portal: aws secretsmanager put-secret-value "
        '--secret-id <XeroWebhookKeySecretArn> --secret-string \'{"xero_webhook_key": "…"}\''
    ),
}


def _secret_name(secret_id: str) -> str:
    """An ARN's secret name (``…:secret:stack/xero-AbCdEf`` → ``stack/xero``); a name as it is."""
    if ":secret:" in secret_id:
        name = secret_id.rsplit(":secret:", 1)[1]
        return name.rsplit("-", 1)[0] if len(name.rsplit("-", 1)[-1]) == 6 else name
    return secret_id


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def _secret_problems(label: str, value: dict[str, Any]) -> list[str] | None:
    """What is wrong with a secret's value, by key name only (never the value)."""
    if label == "xero":
        auth = value.get("auth") or "oauth"
        if auth not in ("oauth", "client_credentials"):
            return [f"auth is {auth!r}, not oauth or client_credentials"]
        needed = ["client_id", "client_secret"] + (["tenant_id", "refresh_token"] if auth == "oauth" else [])
        empty = [k for k in needed if _blank(value.get(k))]
        if empty:
            return [f"{', '.join(empty)} not set (the connection was never completed)"]
        return []
    if label == "clientary":
        from clientary_xero.connectors.clientary.client import _clean_subdomain

        problems = [f"{k} not set" for k in ("subdomain", "api_token") if _blank(value.get(k))]
        if not problems:
            try:
                _clean_subdomain(str(value["subdomain"]))
            except ClientaryXeroError:
                problems.append("subdomain is not an account subdomain (like acme, or acme.clientary.com)")
        return problems
    if label == "clientary push key":
        key = value.get("clientary_push_key")
        if _blank(key):
            return ["clientary_push_key not set"]
        if len(str(key)) < 32:
            return [f"clientary_push_key is {len(str(key))} characters: too short to sign with (32 or more)"]
        return []
    return None


def _webhook_key_finding(secrets: dict[str, dict[str, Any]], workflows: list[Any]) -> Finding | None:
    value = secrets.get("XeroWebhookKeySecretArn")
    if value is None:
        return None
    check = "secret: xero webhook key"
    if not _blank(value.get("xero_webhook_key")):
        return Finding(check, OK, "xero_webhook_key is set")
    users = sorted(
        w.id for w in workflows if w.enabled and w.document.get("trigger") in _XERO_WEBHOOK_TRIGGERS
    )
    if users:
        return Finding(
            check,
            PROBLEM,
            f"xero_webhook_key not set, and workflows use Xero webhook triggers ({', '.join(users)}): "
            "Xero's events are refused",
            _SECRET_FIXES["xero webhook key"],
        )
    return Finding(check, OK, "xero_webhook_key not set (needed only for Xero webhook triggers; none used)")


# ------------------------------------------------------------------ the services
def _check_xero(findings: list[Finding], current_token: str) -> set[str] | None:
    """Refresh the token and call GET /Organisation; returns the granted scopes (None: unknown)."""
    from clientary_xero.connectors.xero.client import build_xero_client
    from clientary_xero.connectors.xero.scopes import CONNECT_HINT, XeroScopeMissing
    from clientary_xero.storage.ratelimit import BudgetExceeded

    client = build_xero_client()
    check = "xero connection"
    try:
        if client.tokens.auth_kind() == "oauth":
            # A real refresh even while the stored access token is live: the refresh token must work.
            client.tokens.force_refresh(current_token)
        else:
            client.tokens.access_token()
        answer = client.request("GET", "Organisation")
    except ReauthorizationRequired:
        findings.append(
            Finding(
                check,
                PROBLEM,
                "Xero refused the refresh token (invalid_grant): the connection expired or the app was "
                "disconnected; every Xero step fails until it is reconnected",
                "reconnect Xero: clientary-xero connect xero --stack <stack> (then open the link)",
            )
        )
        return None
    except BudgetExceeded as exc:
        # Refreshed, but the shared budget holds the call back (Xero's daily limit, a 429 block):
        # the rate budget's check says which; calling anyway would only earn a 429.
        findings.append(
            Finding(
                check, WARNING, f"refreshed; GET /Organisation not called now: {exc}", "run it again later"
            )
        )
        return client.tokens.granted_scopes()
    except XeroScopeMissing as exc:
        # Refreshed (the scopes it granted are known), but the connection may not read the organisation.
        findings.append(Finding(check, PROBLEM, f"refreshed, but {exc}", CONNECT_HINT))
        return client.tokens.granted_scopes()
    except ClientaryXeroError as exc:
        findings.append(Finding(check, PROBLEM, f"Xero: {exc}", _xero_fix(exc)))
        return None
    finally:
        client.close()
    organisations = answer.get("Organisations") if isinstance(answer, dict) else None
    name = organisations[0].get("Name") if organisations and isinstance(organisations[0], dict) else None
    findings.append(Finding(check, OK, f"refreshed; GET /Organisation answered ({name or 'organisation'})"))
    return client.tokens.granted_scopes()


def _xero_fix(exc: Exception) -> str:
    from clientary_xero.errors import RetryableError

    if isinstance(exc, RetryableError):
        return "Xero or the network is failing now: run the doctor again in a few minutes"
    return "check the connection secret (client_id, client_secret) and reconnect: clientary-xero connect xero"


def _satisfied(scope: str, granted: set[str]) -> bool:
    """Whether ``granted`` covers ``scope``: itself, its write variant for a ``.read``, or an older
    app's broad equivalent (connectors/xero/scopes.py ``broad``)."""
    from clientary_xero.connectors.xero.scopes import broad

    candidates = {scope, broad(scope)}
    if scope.endswith(".read"):
        base = scope.removesuffix(".read")
        candidates |= {base, broad(base)}
    return bool(candidates & granted)


def _check_scopes(workflows: list[Any], granted: set[str] | None) -> Finding:
    from clientary_xero.connectors.base import find_action
    from clientary_xero.workflows.model import iter_steps

    check = "xero scopes"
    needs: dict[str, set[str]] = {}  # scope → the workflows whose actions need it
    for stored in workflows:
        if stored.workflow is None or not stored.enabled:
            continue
        for step in iter_steps(stored.workflow.steps):
            spec = find_action(step.action)
            for scope in spec.scopes if spec is not None and spec.app == "xero" else ():
                needs.setdefault(scope, set()).add(stored.id)
    if not needs:
        return Finding(check, OK, "no enabled workflow uses a Xero action")
    if granted is None:
        return Finding(
            check,
            WARNING,
            "not checked: the connection does not record its scopes (or did not refresh)",
            "reconnect Xero (clientary-xero connect xero) so the secret records them",
        )
    missing = {scope: ids for scope, ids in needs.items() if not _satisfied(scope, granted)}
    if missing:
        detail = "; ".join(
            f"{scope} (for {', '.join(sorted(ids))})" for scope, ids in sorted(missing.items())
        )
        return Finding(
            check,
            PROBLEM,
            f"the connection lacks {detail}",
            "add them to the XeroScopes parameter (sam deploy --parameter-overrides) and reconnect: "
            "clientary-xero connect xero",
        )
    return Finding(check, OK, f"the connection holds the {len(needs)} scopes the workflows' Xero actions use")


def _check_clientary() -> Finding:
    from clientary_xero.connectors.clientary.client import build_clientary_client
    from clientary_xero.errors import RetryableError
    from clientary_xero.storage.secrets import SecretStore

    check = "clientary"
    try:
        with build_clientary_client(SecretStore()) as client:
            client.list_invoices(page=1, page_size=1)
    except RetryableError as exc:
        return Finding(check, PROBLEM, str(exc), "Clientary or the network is failing now: try again later")
    except ClientaryXeroError as exc:
        return Finding(
            check,
            PROBLEM,
            str(exc),
            "check the subdomain and API token in the Clientary secret (Clientary: Settings → API)",
        )
    return Finding(check, OK, "GET /invoices answered with the stored token")


# ------------------------------------------------------------------ the stack's state
def _stored_workflows() -> list[Any]:
    from clientary_xero.storage.workflows import WorkflowStore

    return list(WorkflowStore().list())


def _check_workflows(workflows: list[Any]) -> Finding:
    invalid = [w for w in workflows if w.problems]
    if invalid:
        detail = "; ".join(
            f"{w.id}: {w.problems[0]}" + (f" (+{len(w.problems) - 1})" if len(w.problems) > 1 else "")
            for w in invalid
        )
        return Finding(
            "workflows",
            PROBLEM,
            f"{len(invalid)} of {len(workflows)} invalid (their triggers start no runs): {detail}",
            "clientary-xero workflows list shows every problem; fix the file, then workflows put",
        )
    enabled = sum(1 for w in workflows if w.enabled)
    return Finding("workflows", OK, f"{len(workflows)} stored, all valid ({enabled} enabled)")


def _check_dlqs(outputs: dict[str, str]) -> Finding:
    from clientary_xero.storage.queue import queue_depth

    full = []
    for key in _DLQS:
        url = outputs.get(key)
        depth = queue_depth(url) if url else None
        if depth is None:
            continue  # not configured or missing: the resources check says so
        count = sum(depth.values())
        if count:
            full.append(f"{_queue_name(url or '')}: {count} message(s)")
    if full:
        return Finding(
            "dead-letter queues",
            PROBLEM,
            "; ".join(full),
            "each message is a step that failed every attempt: see clientary-xero runs list --status FAILED, "
            "fix the cause, then runs replay RUN (or runs replay RUN --stuck for a run still QUEUED/RUNNING)",
        )
    return Finding("dead-letter queues", OK, "empty")


def _check_runs(now: float) -> Finding:
    from clientary_xero.engine import runs as R
    from clientary_xero.storage.state import StateStore

    state = StateStore()
    stuck: list[str] = []
    for status in (R.RUNNING, R.QUEUED):
        for run in state.list_runs(status=status, limit=RUNS_TO_CHECK):
            quiet = now - R.epoch(run.get("updated_at") or run.get("created_at"))
            if quiet < STUCK_RUN_SECONDS:
                continue
            steps = state.get_steps(run["run_id"])
            if any(s.get("status") == "RUNNING" and float(s.get("lease_until") or 0) > now for s in steps):
                continue  # a worker holds a live lease: it is being worked on
            stuck.append(
                f"{run['run_id']} {status} for {_ago(quiet)} (step {run.get('current_step') or '-'})"
            )
    for run in state.list_runs(status=R.WAITING, limit=RUNS_TO_CHECK):
        resume_at = R.epoch(run.get("resume_at"))
        if resume_at and now - resume_at > OVERDUE_WAIT_SECONDS:
            stuck.append(f"{run['run_id']} WAITING, {_ago(now - resume_at)} past its resume_at")
    if stuck:
        shown = "; ".join(stuck[:10]) + (f"; and {len(stuck) - 10} more" if len(stuck) > 10 else "")
        return Finding(
            "runs",
            PROBLEM,
            f"{len(stuck)} stuck: {shown}",
            "clientary-xero runs show RUN says where; a RUNNING/QUEUED run whose message went to the DLQ "
            "starts again with runs replay RUN --stuck; an overdue WAITING run means the "
            "ResumeParkedFunction is failing: look at its logs",
        )
    return Finding("runs", OK, "none stuck")


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min"


def _check_budget(xero_secret: dict[str, Any] | None, now: float) -> Finding:
    from clientary_xero.engine import runs as R
    from clientary_xero.storage.ratelimit import RateBudget

    tenant = str((xero_secret or {}).get("tenant_id") or "")
    if not tenant:
        return Finding("rate budget", WARNING, "not checked: no Xero organisation connected")
    snap = RateBudget().snapshot(tenant)
    day = snap.get("day_blocked_until")
    minute = snap.get("minute_blocked_until")
    state = f"{snap['in_flight']} call(s) in flight, next free instant in {snap['next_free_in']:.0f} s"
    if day and day > now:
        return Finding(
            "rate budget",
            WARNING,
            f"Xero's daily limit (5,000 calls) is used up until {R.iso(day)}: Xero steps wait (WAITING) "
            f"and resume then; {state}",
            "nothing to do unless it happens daily: then fewer or batched workflows (see README: Costs)",
        )
    if minute and minute > now:
        return Finding("rate budget", OK, f"a minute block (429) until {R.iso(minute)}; {state}")
    return Finding("rate budget", OK, state)
