"""The local runner: the stack's AWS resources in moto (in-process), the handlers called in-process
with the same events API Gateway, EventBridge and SQS send, and Xero and Clientary as sandboxes
(or live, with ``live=True``).

Used by ``clientary-xero test-workflow``, ``clientary-xero demo`` and the end-to-end tests.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from clientary_xero.connectors import http
from clientary_xero.local.resources import (
    SAMPLE_PUSH_KEY,
    SAMPLE_PUSH_TIMESTAMP,
    SAMPLE_XERO_WEBHOOK_KEY,
    LocalResources,
    create_resources,
)
from clientary_xero.settings import reset_settings
from clientary_xero.storage.aws import reset_clients
from clientary_xero.storage.secrets import clear_secret_cache
from clientary_xero.usecases.signatures import CLIENTARY_PUSH_HEADER, sign_push, verify_push

REPO_ROOT = Path(__file__).resolve().parents[3]
XERO_TRIGGERS = (
    "xero.contact_created",
    "xero.contact_updated",
    "xero.invoice_created",
    "xero.invoice_updated",
    "xero.new_payment",
)
FUNCTIONS_DIR = REPO_ROOT / "functions"


# The largest batch ``drain`` hands an action handler per queue (the event sources' BatchSize in
# template.yaml for the Xero action queue: batches are what coalescing works on, issue 8).
BATCH_SIZES = {"xero": 100}


class RoutingTransport(httpx.BaseTransport):
    """Sends each request to the sandbox that owns its host."""

    def __init__(self, routes: list[tuple[Callable[[str], bool], httpx.BaseTransport]]) -> None:
        self.routes = routes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        for matches, transport in self.routes:
            if matches(host):
                return transport.handle_request(request)
        raise httpx.ConnectError(
            f"no sandbox serves {host} (the local runner only talks to its sandboxes)", request=request
        )


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_handler(function_dir: str) -> ModuleType:
    """Import ``functions/<dir>/app.py`` as its own module (each function is its own code root)."""
    path = FUNCTIONS_DIR / function_dir / "app.py"
    name = f"clientary_xero_function_{function_dir}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# Trigger name → (function directory, TRIGGER value). Issue #4 adds the other Clientary triggers.
TRIGGER_FUNCTIONS = {"clientary.new_invoice": "clientary_trigger"}
# Both action queues are served by functions/step_actions, told apart by STEP_APP.
ACTION_FUNCTIONS = {"xero": "step_actions", "clientary": "step_actions"}
# --- Xero triggers (issue #3): one function serves the webhook events and the payments poll.
TRIGGER_FUNCTIONS.update(dict.fromkeys(XERO_TRIGGERS, "xero_trigger"))
# drain() also serves XeroEventQueue: webhook events → XeroTriggerFunction → runs → action queues.
EVENT_FUNCTIONS = {"xero_events": "xero_trigger"}
# --- Clientary triggers and actions (issue #4): one trigger code base, one Clientary action Lambda.
TRIGGER_FUNCTIONS.update(
    dict.fromkeys(
        (
            "clientary.new_expense",
            "clientary.new_project",
            "clientary.new_client",
            "clientary.new_estimate",
            "clientary.new_lead",
            "clientary.new_task",
            "clientary.new_payment",
            "clientary.new_staff",
            "clientary.new_contract",
        ),
        "clientary_trigger",
    )
)


class LocalEnvironment:
    """A whole stack in one process. Use as a context manager."""

    def __init__(
        self,
        *,
        live: bool = False,
        record: str | Path | None = None,
        max_attempts: int = 5,
        live_secrets: dict[str, Any] | None = None,
        fast_forward: bool = True,
        xero_scopes: str | None = None,
        sim: Any = None,
    ) -> None:
        self.live = live
        self.record_path = Path(record) if record else None
        self.max_attempts = max_attempts
        self.live_secrets = live_secrets or {}
        self.fast_forward = fast_forward
        # The scopes the sandbox grants the Xero connection (None: the product's default ones).
        self.xero_scopes = xero_scopes
        # A ``local.simclock.SimClock`` (under ``simulated_clocks``): the sandbox reads it and
        # drain() lets delayed messages' waits pass on it instead of in real time.
        self.sim = sim
        self.xero: Any = None
        self.clientary: Any = None
        self.resources: LocalResources | None = None
        self._saved_env: dict[str, str | None] = {}
        self._mock: Any = None
        self._transactions: Any = None
        self._record_file: Any = None

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalEnvironment:
        from moto import mock_aws

        base_env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SECURITY_TOKEN": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "clientary-xero-local",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "ERROR"),
        }
        self._set_env(base_env)
        self._mock = mock_aws()
        self._mock.start()
        # moto copies whole tables for each transaction; this rolls back by item (O(1), not O(table)).
        from clientary_xero.local.moto_transactions import item_rollback_transactions

        self._transactions = item_rollback_transactions()
        self._transactions.__enter__()
        reset_clients()
        reset_settings()
        clear_secret_cache()

        if self.live:
            xero_secret = self.live_secrets.get("xero") or {}
            clientary_secret = self.live_secrets.get("clientary") or {}
            transport: httpx.BaseTransport | None = httpx.HTTPTransport(retries=0)
        else:
            from clientary_xero.local.clientary_sandbox import ClientarySandbox
            from clientary_xero.local.xero_sandbox import DEFAULT_SCOPES, XeroSandbox

            self.xero = XeroSandbox(clock=self.sim.time) if self.sim is not None else XeroSandbox()
            self.clientary = ClientarySandbox()
            xero_secret = self.xero.bootstrap_secret(scopes=self.xero_scopes or DEFAULT_SCOPES)
            clientary_secret = self.clientary.bootstrap_secret()
            transport = RoutingTransport(
                [
                    (lambda h: h.endswith("xero.com"), self.xero),
                    (lambda h: h.endswith("clientary.com"), self.clientary),
                ]
            )
        if self.record_path is not None:
            from clientary_xero.local.recording import RecordingTransport

            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            self.record_path.write_text("")
            transport = RecordingTransport(transport or httpx.HTTPTransport(), self.record_path)
        http.set_transport(transport)

        self.resources = create_resources(
            max_attempts=self.max_attempts, xero_secret=xero_secret, clientary_secret=clientary_secret
        )
        self._set_env(self.resources.environ(self.max_attempts))
        reset_settings()
        from clientary_xero.usecases.steps import reset_runner

        reset_runner()
        return self

    def __exit__(self, *exc_info: object) -> None:
        from clientary_xero.usecases.steps import reset_runner

        http.set_transport(None)
        reset_runner()
        if self._mock is not None:
            self._mock.stop()
        if self._transactions is not None:
            self._transactions.__exit__(None, None, None)
            self._transactions = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_clients()
        reset_settings()
        clear_secret_cache()

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    # ---------------------------------------------------------------- stores
    @property
    def workflows(self) -> Any:
        from clientary_xero.storage.workflows import WorkflowStore

        return WorkflowStore()

    @property
    def state(self) -> Any:
        from clientary_xero.storage.state import StateStore

        return StateStore()

    def xero_tenant_id(self) -> str:
        from clientary_xero.storage.secrets import SecretStore

        assert self.resources is not None
        return str(SecretStore().read(self.resources.xero_secret_id).get("tenant_id", ""))

    def put_workflow(self, document: dict[str, Any]) -> Any:
        from clientary_xero.workflows.validate import parse_workflow

        workflow = parse_workflow(document)
        self.workflows.put(workflow, updated_by="local")
        return workflow

    # -------------------------------------------------------------- triggers
    def push(
        self,
        trigger: str,
        record_id: int | str,
        *,
        key: str = SAMPLE_PUSH_KEY,
        body: bytes | None = None,
        signature: str | None = None,
    ) -> dict[str, Any]:
        """POST /webhooks/clientary/<name> through the trigger handler, as API Gateway would,
        signed now (``t=<now>,v1=…``) unless ``signature`` is given."""
        raw = body if body is not None else json.dumps({"id": record_id}).encode()
        event = api_gateway_event(
            f"/webhooks/clientary/{trigger.split('.', 1)[1]}",
            raw,
            signature if signature is not None else sign_push(key, raw),
        )
        return self.invoke_trigger(trigger, event)

    def poll(self, trigger: str) -> dict[str, Any]:
        """The EventBridge schedule firing for a trigger."""
        return self.invoke_trigger(trigger, scheduled_event())

    def use_action_function(self, app: str) -> None:
        """Configure the environment as the ``app`` action function's (``STEP_APP``)."""
        self._set_env({"STEP_APP": app})
        reset_settings()

    def invoke_trigger(self, trigger: str, event: dict[str, Any]) -> dict[str, Any]:
        """Call the trigger's handler with ``event``. A push sample of ``events/`` (signed with the
        sample key at the fixed ``SAMPLE_PUSH_TIMESTAMP``, long past) is signed again now, as a
        pusher signs at send time; any other signature is sent as it is."""
        event = resign_push_sample(event)
        function_dir = TRIGGER_FUNCTIONS.get(trigger, "clientary_trigger")
        module = load_handler(function_dir)
        self._set_env({"TRIGGER": trigger})
        reset_settings()
        result: dict[str, Any] = module.lambda_handler(event, FakeLambdaContext(f"{function_dir}-{trigger}"))
        return result

    # ----------------------------------------------------------------- queues
    def drain(
        self,
        *,
        max_seconds: float = 120.0,
        on_batch: Callable[[dict[str, Any]], None] | None = None,
        batch_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """Deliver queued step messages to the action handlers until every queue is empty.

        Behaves like Lambda's SQS event source: batches of up to ``batch_size`` (by default the Xero
        action queue's BatchSize in template.yaml, 50, as many as are waiting; 5 for the other
        queues), partial batch failures stay on
        the queue (with the visibility delay the handler set), SQS moves a message to the DLQ after
        ``max_attempts`` receives. With ``fast_forward`` a delayed message is made visible at once
        instead of waiting for its Retry-After in real time.
        """
        import boto3

        assert self.resources is not None
        sqs = boto3.client("sqs", region_name="us-east-1")
        queues = {"xero": self.resources.xero_queue_url}
        queues["xero_events"] = self.resources.xero_event_queue_url  # issue #3
        queues["clientary"] = self.resources.clientary_queue_url  # issue #4
        results: list[dict[str, Any]] = []
        deadline = time.monotonic() + max_seconds
        waiting: dict[str, list[str]] = {app: [] for app in queues}
        if self.fast_forward:
            self.lift_rate_blocks()  # issue #3
        while time.monotonic() < deadline:
            progressed = False
            for app, url in queues.items():
                size = batch_size or BATCH_SIZES.get(app, 5)
                received: list[Any] = []
                while len(received) < size:  # SQS hands out at most 10 per receive
                    got = sqs.receive_message(
                        QueueUrl=url,
                        MaxNumberOfMessages=min(10, size - len(received)),
                        AttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    ).get("Messages", [])
                    received.extend(got)
                    if not got:
                        break
                if not received:
                    continue
                progressed = True
                event = {"Records": [sqs_record(m, url) for m in received]}
                function_dir = ACTION_FUNCTIONS.get(app) or EVENT_FUNCTIONS[app]
                if app in ACTION_FUNCTIONS:
                    self.use_action_function(app)
                module = load_handler(function_dir)
                response = module.lambda_handler(event, FakeLambdaContext(f"{function_dir}-{app}"))
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
                for message in received:
                    if message["MessageId"] in failed:
                        waiting[app].append(message["ReceiptHandle"])
                    else:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                batch = {
                    "app": app,
                    "messages": [json.loads(m["Body"]) for m in received],
                    "failed": sorted(failed),
                }
                results.append(batch)
                if on_batch:
                    on_batch(batch)
            if progressed:
                continue
            pending = 0
            for app, url in queues.items():
                attrs = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed",
                    ],
                )["Attributes"]
                pending += sum(int(v) for v in attrs.values())
                if self.fast_forward:
                    for handle in waiting[app]:
                        # A handle may be stale: the message moved on (deleted, or to the DLQ).
                        with contextlib.suppress(Exception):
                            sqs.change_message_visibility(
                                QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0
                            )
                    waiting[app] = []
            if pending == 0:
                return results
            if self.sim is not None:
                from clientary_xero.local.simclock import release_waiting

                if release_waiting(list(queues.values()), self.sim):
                    continue
            if self.fast_forward:
                self.lift_rate_blocks()  # issue #3: a 429's minute block passes at once too
            time.sleep(0.05 if self.fast_forward else 0.5)
        raise TimeoutError(f"queues not drained within {max_seconds:.0f} s")

    # ------------------------------------------------------------ Xero triggers (issue #3)
    def xero_webhook(
        self,
        events: list[dict[str, Any]] | None = None,
        *,
        body: bytes | None = None,
        signature: str | None = None,
        key: str = SAMPLE_XERO_WEBHOOK_KEY,
        base64_body: bool = False,
    ) -> dict[str, Any]:
        """POST /webhooks/xero through the webhook handler, signed like Xero signs (local key)."""
        from clientary_xero.connectors.xero.webhooks import payload_for
        from clientary_xero.usecases.signatures import sign_base64

        raw = body if body is not None else payload_for(events or [])
        event = xero_webhook_event(
            raw, signature if signature is not None else sign_base64(key, raw), base64_body=base64_body
        )
        module = load_handler("xero_webhook")
        result: dict[str, Any] = module.lambda_handler(event, FakeLambdaContext("xero_webhook"))
        return result

    def xero_event(self, category: str, event_type: str, resource_id: str) -> dict[str, Any]:
        """Xero reporting one CONTACT/INVOICE CREATE/UPDATE of the connected organisation, dated now
        (the sandbox's clock), as Xero dates each event: the trigger drops an event seen before."""
        from clientary_xero.connectors.xero.webhooks import event_for

        now = self.xero._now() if self.xero is not None else time.time()
        date = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        return self.xero_webhook(
            [event_for(category, event_type, resource_id, self.xero_tenant_id(), event_date=date)]
        )

    def poll_xero_payments(self) -> dict[str, Any]:
        """The 15-minute schedule of the xero.new_payment poll firing once."""
        return self.invoke_trigger("xero.new_payment", scheduled_event())

    def seed_xero(self, collections: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Seed the sandbox's organisation by Xero's collection names, through its validation
        (``XeroSandbox.seed_many``): ``ValueError`` names a refused record's collection and index."""
        assert self.xero is not None, "seed_xero needs the sandbox (not --live)"
        return self.xero.seed_many(self.xero_tenant_id(), collections)

    def load_xero_record(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        """Put a record as Xero returns it into the sandbox's organisation, ids kept.

        ``collection`` is ``Contacts``, ``Invoices``, ``Payments`` or ``TaxRates`` (a rate added, or
        changed by its ``TaxType``). A payment gets ``UpdatedDateUTC`` = now, so the next poll sees
        it as new.
        """
        from clientary_xero.connectors.xero.dates import to_xero_date

        assert self.xero is not None, "load_xero_record needs the sandbox (not --live)"
        if collection == "TaxRates":
            return dict(self.xero.seed_tax_rate(self.xero_tenant_id(), **record))
        id_field = {"Contacts": "ContactID", "Invoices": "InvoiceID", "Payments": "PaymentID"}[collection]
        item = dict(record)
        item[id_field] = str(item.get(id_field) or uuid.uuid4()).lower()
        if collection == "Payments" or not item.get("UpdatedDateUTC"):
            item["UpdatedDateUTC"] = to_xero_date(
                datetime.datetime.fromtimestamp(self.xero._now(), datetime.UTC)
            )
        loader = getattr(self.xero, "load_record", None)
        if callable(loader):
            loader(self.xero_tenant_id(), collection, item)
            return item
        # The sandbox has no public loader: its per-organisation tables, under its own lock.
        attribute = {"Contacts": "contacts", "Invoices": "invoices", "Payments": "payments"}[collection]
        with self.xero._lock:
            tenant = self.xero._tenants[self.xero_tenant_id()]
            getattr(tenant, attribute)[item[id_field]] = item
        return item

    # ------------------------------------------------- rate limits across Lambdas (issue #3)
    def lift_rate_blocks(self, *, day: bool = False) -> None:
        """Fast-forward the shared Xero budget: a block learnt from a 429 has "passed"."""
        if self.live or self.xero is None:
            return
        from clientary_xero.storage.ratelimit import RateBudget

        RateBudget().lift_blocks(self.xero_tenant_id(), day=day)

    def resume_parked(self, *, at: float | None = None) -> dict[str, Any]:
        """The parked-run sweeper firing (its schedule); ``at``: as if the clock read ``at`` (and
        Xero's daily limit had reset by then)."""
        if at is None:
            result: dict[str, Any] = load_handler("resume_parked").lambda_handler(
                scheduled_event(), FakeLambdaContext("resume_parked")
            )
            return result
        from clientary_xero.usecases.parked import resume_parked_steps

        self.lift_rate_blocks(day=True)
        return resume_parked_steps(now=at)

    def dlq_messages(self, app: str = "xero") -> list[dict[str, Any]]:
        import boto3

        assert self.resources is not None
        url = self.resources.xero_dlq_url if app == "xero" else self.resources.clientary_dlq_url
        sqs = boto3.client("sqs", region_name="us-east-1")
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        )
        return [json.loads(m["Body"]) for m in messages]


def resign_push_sample(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with a fresh push signature if it carries the samples' one (sample key, fixed t)."""
    import base64
    import binascii

    headers = event.get("headers") or {}
    signature = headers.get(CLIENTARY_PUSH_HEADER)
    if (
        "requestContext" not in event
        or not signature
        or not signature.startswith(f"t={SAMPLE_PUSH_TIMESTAMP},")
    ):
        return event
    try:
        text = event.get("body") or ""
        raw = base64.b64decode(text, validate=True) if event.get("isBase64Encoded") else text.encode("utf-8")
    except (binascii.Error, ValueError):
        return event
    if verify_push(SAMPLE_PUSH_KEY, raw, signature, tolerance_seconds=10**12) is not None:
        return event  # not the sample key's signature (the bad-signature sample): sent as it is
    return {**event, "headers": {**headers, CLIENTARY_PUSH_HEADER: sign_push(SAMPLE_PUSH_KEY, raw)}}


def api_gateway_event(path: str, body: bytes, signature: str | None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) request event like the one in events/clientary_push_new_invoice.json."""
    headers = {"content-type": "application/json", "user-agent": "clientary-xero-local"}
    if signature:
        headers[CLIENTARY_PUSH_HEADER] = signature
    now = int(time.time() * 1000)
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "isBase64Encoded": False,
        "body": body.decode("utf-8", errors="replace"),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "local",
            "domainPrefix": "local",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "clientary-xero-local",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": f"POST {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": now,
        },
    }


def xero_webhook_event(body: bytes, signature: str | None, *, base64_body: bool = False) -> dict[str, Any]:
    """The HTTP API request Xero's webhook delivery becomes (like events/xero_webhook_contact.json)."""
    import base64

    event = api_gateway_event("/webhooks/xero", body, None)
    event["headers"]["user-agent"] = "Xero-Webhook"
    if signature:
        event["headers"]["x-xero-signature"] = signature
    if base64_body:
        event["isBase64Encoded"] = True
        event["body"] = base64.b64encode(body).decode()
    return event


def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/local-schedule"],
        "detail": {},
    }


def sqs_record(message: Any, queue_url: str) -> dict[str, Any]:
    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attributes.get("SenderId", "AIDAEXAMPLE"),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
            ),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{name}",
        "awsRegion": "us-east-1",
    }
