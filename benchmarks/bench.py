"""`make bench`: issue 8's figures measured side by side, each against its baseline measured in the
same run; prints a table and writes docs/BENCHMARKS.md, ending with one PASS/FAIL line per goal.

Groups of rows (``--only GROUP``, repeatable, measures only those and writes nothing):

* ``cpu`` — **cold import, CPU** of each handler: ``import app`` in a fresh interpreter (the layer on
  the path as /opt/python is in Lambda), ``time.process_time`` around it, median of ``--repeats``.
  The layer is the one ``make build`` would ship: today's ``shared/`` compiled to unchecked-hash
  ``.pyc``, with the built layer's dependencies when ``.aws-sam`` has a build, else the
  development virtualenv's (``compiled_layer``); the header says which.
  **First invocation, CPU**: a fresh interpreter imports the handler and handles one real event,
  against the **floor** — import boto3, create one client, do one GetItem. Both run against moto
  in-process: moto (and with it botocore) is imported and the stack's tables, queues and secrets
  are loaded *before* the clock starts, through a private boto3 session, so the default session's
  loaders are as cold as in Lambda; ``import boto3`` is measured apart in fresh interpreters and
  added to both. The CPU moto spends answering (AWS's side of each call) is subtracted from both.
  The state (workflows, runs, links, secrets) comes from a rehearsal through the local runner,
  dumped and loaded raw, so no layer module is imported before the clock starts. httpx's command
  line extras (click, pygments, rich), installed in the development virtualenv but not in the
  layer, are blocked in every child, and every child has the environment template.yaml's Globals
  give all functions beside the stack's names (``DEPLOYED_ENV``: no pydantic plugin lookup).
  **pydantic**: its import and a first model in a fresh interpreter, measured in the same rounds; for
  each first invocation that loaded pydantic, that figure subtracted is printed as an estimate of
  the first invocation without it (what taking pydantic off its path would give).
  **Compiled layer**: whether the built layer (``make build``)
  ships unchecked-hash ``.pyc``, and the cold import of two handlers from it with and without them.
  (``--only first-invocation``: the floor and the first invocations only.) The boto3 import, the
  floor and the first invocations are measured in rounds, one child of each per round, so a change
  in the machine's load during the run weighs on them alike.
* ``calls`` — **Xero calls per synced invoice** through the local runner (sandboxes): a new
  contact, a linked and unchanged contact, and that again with the access token expired; and
  DynamoDB calls for the linked one (poll + steps).
* ``dynamo`` — **DynamoDB calls per synced invoice, idle** (benchmarks/bench_dynamo.py): one pushed
  invoice and its two steps, for a new client and for a linked one; each call attributed to its
  caller (``--verbose`` prints where they come from).
* ``backfill``, ``backlog``, ``poll``, ``memory`` — the volume rows (benchmarks/bench_backlog.py,
  its docstring says how), every clock simulated, SQS's included: **the 500/20 backfill** through
  ``backfill --local``'s code (Xero calls against the batched minimum, 1 lookup + 1 contact write
  + 10 invoice writes = 12; baseline the same with batches of one); **600 invoices at once** (one
  poll): simulated wall time against its Xero calls ÷ 60/min, failed runs, 429s; **Lambda
  invocations per step** (deliveries of step messages ÷ steps); **DynamoDB calls per invoice in
  that backlog** (with the top callers). Their baseline is the old engine measured in the same
  run: batches of one and the budget before reservations (benchmarks/baseline_window_budget.py),
  on ``--baseline-invoices`` (60; ``--full-baselines``: the backlog's size, and the backfill with
  batches of one too; ``--no-baselines``: none). **Clientary calls per idle poll**; **peak memory
  of one Xero action invocation** on a batch of 50 (tracemalloc; baseline a batch of one).

    .venv/bin/python benchmarks/bench.py [--repeats 5] [--no-write] [--verbose] [--no-baselines]
    .venv/bin/python benchmarks/bench.py --only backlog [--backlog 600] --verbose
    .venv/bin/python benchmarks/bench.py --only first-invocation [--function step_actions]

``--function`` (repeatable) narrows the first invocations to those handlers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "shared"
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
BUILT_LAYER = ROOT / ".aws-sam" / "build" / "SharedLayer" / "python"
OUTPUT = ROOT / "docs" / "BENCHMARKS.md"
REGION = "us-east-1"
SAMPLE_WORKFLOW = SHARED / "clientary_xero" / "local" / "samples" / "invoice_to_xero.yaml"
CONTRACT_WORKFLOW = {
    "id": "bench-contract",
    "name": "bench: a pushed contract's client as a Xero contact",
    "trigger": "clientary.new_contract",
    "steps": [
        {
            "id": "contact",
            "action": "xero.create_or_update_contact",
            "input": {"Name": "Contract client", "ContactNumber": "CL-CONTRACT"},
        }
    ],
}
# The environment template.yaml's Globals give every function that is not the stack's names
# (tests/test_template.py LIBRARY_ENV checks they agree): each child runs as deployed.
DEPLOYED_ENV = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
# The targets.
FIRST_INVOCATION_TARGET = 1.5
LINKED_CALLS_TARGET = 1


# ================================================================================ child processes
def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "clientary-xero-bench",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            **DEPLOYED_ENV,
        }
    )
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def run_child(spec: dict[str, Any]) -> float:
    """CPU seconds the child measured (a fresh interpreter each call)."""
    return float(child_answer(spec)["cpu"])


def child_answer(spec: dict[str, Any]) -> dict[str, Any]:
    """What the child wrote: ``cpu`` (seconds), and for a first invocation ``pydantic`` (whether
    the import and the event loaded it)."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.json"
        out_path = Path(tmp) / "out.json"
        spec_path.write_text(json.dumps({**spec, "out": str(out_path)}))
        done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)],
            env=_child_env(spec.get("env", {})),
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        if done.returncode != 0 or not out_path.exists():
            raise RuntimeError(
                f"child {spec.get('mode')} {spec.get('function')} failed:\n{done.stderr[-3000:]}"
            )
        answer = json.loads(out_path.read_text())
    if answer.get("error"):
        raise RuntimeError(f"child {spec.get('mode')} {spec.get('function')}: {answer['error']}")
    return dict(answer)


def child_main(spec_path: str) -> None:
    """In the fresh interpreter: set up (unmeasured), then measure one thing."""
    spec = json.loads(Path(spec_path).read_text())
    out: dict[str, Any] = {}
    mode = spec["mode"]
    # httpx imports its command line (click, pygments, rich) when they are installed: the
    # development virtualenv has them, the layer does not.
    for absent in ("click", "pygments", "rich"):
        sys.modules[absent] = None  # type: ignore[assignment]
    # The pydantic child loads the stack too: what moto and boto3 import before the clock (much of
    # the standard library) is then loaded in it as in the first invocations it is subtracted from.
    aws_side = _load_stack(spec["dump"]) if mode in ("first", "floor", "pydantic") else (lambda: 0.0)
    sys.path[:0] = [spec["layer"], str(ROOT / "functions" / spec.get("function", "step_actions"))]
    event = spec.get("event")
    if mode == "first" and spec.get("sign_push"):
        event = _signed(event, spec["sign_push"])
    started = time.process_time()
    if mode == "boto3":
        import boto3
    elif mode == "pydantic":
        # What a first invocation that validates with pydantic pays before its own models: the
        # import, and the first model's class and validator (pydantic's lazy parts load then).
        from pydantic import BaseModel

        class First(BaseModel):
            value: int

        First.model_validate({"value": 1})
    elif mode == "floor":
        import boto3

        client = boto3.client("dynamodb", region_name=REGION)
        client.get_item(TableName=spec["floor_table"], Key={"pk": {"S": "RUN#none"}, "sk": {"S": "RUN"}})
    else:
        import app  # type: ignore[import-not-found]

        if mode == "first":
            answer = app.lambda_handler(event, _Context(spec["function"]))
            if spec.get("expect") and spec["expect"] not in json.dumps(answer):
                out["error"] = f"unexpected answer {json.dumps(answer)[:500]}"
    out["cpu"] = time.process_time() - started - aws_side()
    out["pydantic"] = "pydantic" in sys.modules
    Path(spec["out"]).write_text(json.dumps(out))


@dataclass
class _Context:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id: str = "bench-request"
    log_group_name: str = "/aws/lambda/bench"
    log_stream_name: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _signed(event: dict[str, Any], key: str) -> dict[str, Any]:
    import hashlib
    import hmac

    t = int(time.time())
    mac = hmac.new(key.encode(), str(t).encode() + b"." + event["body"].encode(), hashlib.sha256).hexdigest()
    return {**event, "headers": {**event["headers"], "x-clientary-xero-signature": f"t={t},v1={mac}"}}


def _load_stack(dump_path: str) -> Callable[[], float]:
    """moto in-process with the dumped tables, queues, bucket and secrets, loaded through a private
    boto3 session; the environment then names them as the stack's functions see them. Returns
    the CPU moto spent answering requests since then (AWS's side of each call, not the caller's)."""
    import boto3
    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber

    dump = json.loads(Path(dump_path).read_text())
    mock_aws().start()
    session = boto3.session.Session(region_name=REGION)
    ddb = session.client("dynamodb")
    for table in dump["tables"]:
        ddb.create_table(**table["definition"])
        for item in table["items"]:
            ddb.put_item(TableName=table["definition"]["TableName"], Item=item)
    sqs = session.client("sqs")
    for name in dump["queues"]:
        sqs.create_queue(QueueName=name)
    session.client("s3").create_bucket(Bucket=dump["bucket"])
    secrets = session.client("secretsmanager")
    env = dict(dump["env"])
    for variable, (name, value) in dump["secrets"].items():
        env[variable] = secrets.create_secret(Name=name, SecretString=value)["ARN"]
    os.environ.update(env)
    boto3.DEFAULT_SESSION = None  # the handler's clients start from a cold default session

    spent = [0.0]
    answer = BotocoreStubber.__call__

    def timed(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        began = time.process_time()
        try:
            return answer(self, event_name, request, **kwargs)
        finally:
            spent[0] += time.process_time() - began

    BotocoreStubber.__call__ = timed  # type: ignore[method-assign]
    return lambda: spent[0]


# ================================================================================ the rehearsal
@contextmanager
def _local_env() -> Iterator[Any]:
    sys.path.insert(0, str(SHARED))
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    from clientary_xero.local.environment import LocalEnvironment

    with LocalEnvironment(max_attempts=3) as env:
        yield env


def _api_calls(env: Any, since: int = 0) -> tuple[int, int]:
    """(api.xero.com calls, token calls) among the sandbox's requests after ``since``."""
    requests = env.xero.requests[since:]
    api = sum(1 for r in requests if "//api.xero.com/" in r["url"])
    token = sum(1 for r in requests if "//identity.xero.com/" in r["url"])
    return api, token


@dataclass
class Rehearsal:
    dump: dict[str, Any]
    step_event: dict[str, Any]
    calls: dict[str, tuple[int, int]] = field(default_factory=dict)
    dynamodb_linked: int = 0


def rehearse() -> Rehearsal:
    """Through the local runner: invoices synced for a new client, then for the same (linked,
    unchanged) client, then with the access token expired. Keeps the Xero and DynamoDB counts and
    dumps the stack's state with one pending step message (the next invoice's contact step) for
    the step handler's first invocation."""
    import boto3

    with _local_env() as env:
        from clientary_xero.workflows.loader import read_document

        env.put_workflow(read_document(SAMPLE_WORKFLOW))
        env.put_workflow(CONTRACT_WORKFLOW)
        trigger = "clientary.new_invoice"
        env.poll(trigger)
        client = env.clientary.seed_client("Acme Builders")
        lines = [{"title": "Survey", "quantity": 2, "price": 95.0}]
        calls: dict[str, tuple[int, int]] = {}

        def sync(label: str) -> None:
            before = len(env.xero.requests)
            env.clientary.add_invoice(client["id"], lines, status=1)
            env.poll(trigger)
            env.drain()
            calls[label] = _api_calls(env, before)

        sync("new contact")
        dynamodb = _count_dynamodb(boto3)
        sync("linked contact, unchanged")
        dynamodb_linked = dynamodb()
        _expire_token(env)
        sync("linked contact, unchanged, access token expired")

        # The next invoice's contact step, left on the queue for the step handler's first invocation.
        env.clientary.add_invoice(client["id"], lines, status=1)
        env.poll(trigger)
        sqs = boto3.client("sqs", region_name=REGION)
        assert env.resources is not None
        received = sqs.receive_message(
            QueueUrl=env.resources.xero_queue_url, MaxNumberOfMessages=1, AttributeNames=["All"]
        )["Messages"]
        from clientary_xero.local.environment import sqs_record

        step_event = {"Records": [sqs_record(received[0], env.resources.xero_queue_url)]}
        dump = _dump(env)
    return Rehearsal(dump, step_event, calls, dynamodb_linked)


def _count_dynamodb(boto3: Any) -> Callable[[], int]:
    """Count DynamoDB calls from now on (the stack's clients come from boto3's default session)."""
    from clientary_xero.storage.aws import reset_clients

    counter = {"n": 0}

    def count(**_: Any) -> None:
        counter["n"] += 1

    reset_clients()
    boto3.setup_default_session(region_name=REGION)
    boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", count)
    return lambda: counter["n"]


def _expire_token(env: Any) -> None:
    """The access token expired (at Xero and in the secret), as after 30 idle minutes; a new
    container reads the secret again."""
    from clientary_xero.storage.secrets import SecretStore, clear_secret_cache
    from clientary_xero.usecases.steps import reset_runner

    assert env.resources is not None
    store = SecretStore()
    secret = store.read(env.resources.xero_secret_id)
    store.write(env.resources.xero_secret_id, {**secret, "expires_at": int(time.time()) - 60})
    env.xero.advance(3600)
    clear_secret_cache()
    reset_runner()


def _dump(env: Any) -> dict[str, Any]:
    import boto3

    assert env.resources is not None
    ddb = boto3.client("dynamodb", region_name=REGION)
    tables = []
    for name in (env.resources.workflows_table, env.resources.state_table):
        described = ddb.describe_table(TableName=name)["Table"]
        definition: dict[str, Any] = {
            "TableName": name,
            "KeySchema": described["KeySchema"],
            "AttributeDefinitions": described["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if described.get("GlobalSecondaryIndexes"):
            definition["GlobalSecondaryIndexes"] = [
                {k: g[k] for k in ("IndexName", "KeySchema", "Projection")}
                for g in described["GlobalSecondaryIndexes"]
            ]
        items = []
        for page in ddb.get_paginator("scan").paginate(TableName=name):
            items.extend(page["Items"])
        tables.append({"definition": definition, "items": items})
    environ = env.resources.environ(3)
    sm = boto3.client("secretsmanager", region_name=REGION)
    secrets = {}
    for variable in (
        "XERO_SECRET_ID",
        "CLIENTARY_SECRET_ID",
        "CLIENTARY_PUSH_SECRET_ID",
        "XERO_WEBHOOK_SECRET_ID",
    ):
        answer = sm.get_secret_value(SecretId=environ[variable])
        secrets[variable] = (answer["Name"], answer["SecretString"])
    queues = [
        url.rsplit("/", 1)[-1] for url in boto3.client("sqs", region_name=REGION).list_queues()["QueueUrls"]
    ]
    env_vars = {k: v for k, v in environ.items() if k not in secrets}
    return {
        "tables": tables,
        "queues": queues,
        "bucket": env.resources.payload_bucket,
        "secrets": secrets,
        "env": env_vars,
    }


# ================================================================================ the CPU rows
@dataclass
class Case:
    function: str
    what: str
    event: dict[str, Any]
    env: dict[str, str]
    expect: str = ""
    sign_push: str = ""


def cases(rehearsal: Rehearsal) -> list[Case]:
    events = ROOT / "events"
    push = json.loads((events / "clientary_push_new_contract.json").read_text())
    webhook = json.loads((events / "xero_webhook_contact.json").read_text())
    schedule = json.loads((events / "schedule_new_invoice.json").read_text())
    return [
        Case(
            "step_actions",
            "a contact step, linked and unchanged (no Xero call)",
            rehearsal.step_event,
            {"STEP_APP": "xero"},
            expect='"batchItemFailures": []',
        ),
        Case(
            "clientary_trigger",
            "a signed push of a new contract (one run started)",
            push,
            {"TRIGGER": "clientary.new_contract"},
            expect='"statusCode": 202',
            sign_push="local-sample-push-key",
        ),
        Case(
            "xero_webhook", "a signed Xero webhook, one event queued", webhook, {}, expect='"statusCode": 200'
        ),
        Case("resume_parked", "the schedule, nothing parked", schedule, {}),
    ]


def compiled_layer(dest: Path) -> Path:
    """Today's package compiled as shared/Makefile compiles it (unchecked-hash ``.pyc``), with the
    built layer's dependencies when there is a build (``make build``), else beside the development
    virtualenv's (pip compiled those). The CPU rows import from it: Lambda imports from a compiled
    layer, and the source tree's ``__pycache__`` may be stale or absent (PYTHONDONTWRITEBYTECODE)."""
    import compileall
    import py_compile

    if BUILT_LAYER.is_dir():
        shutil.copytree(BUILT_LAYER, dest, ignore=shutil.ignore_patterns("clientary_xero"))
    shutil.copytree(
        SHARED / "clientary_xero", dest / "clientary_xero", ignore=shutil.ignore_patterns("__pycache__")
    )
    compileall.compile_dir(
        dest / "clientary_xero", quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    return dest


LAYER_SOURCE = "built layer's dependencies (.aws-sam)" if BUILT_LAYER.is_dir() else "virtualenv's"


def median_cpu(spec: dict[str, Any], repeats: int) -> float:
    return statistics.median(run_child(spec) for _ in range(repeats))


def interleaved_medians(
    specs: dict[str, dict[str, Any]], repeats: int, loaded: dict[str, bool] | None = None
) -> dict[str, float]:
    """The median CPU of each spec, measured in rounds (one child of each spec per round): a change
    in the machine's load during the run then weighs on every figure alike, not on whichever figure
    was being measured, and the ratios to the floor stay comparable. ``loaded`` (if given) learns
    for each spec whether its child had pydantic loaded at the end."""
    samples: dict[str, list[float]] = {name: [] for name in specs}
    for _ in range(repeats):
        for name, spec in specs.items():
            answer = child_answer(spec)
            samples[name].append(float(answer["cpu"]))
            if loaded is not None:
                loaded[name] = bool(answer.get("pydantic"))
    return {name: statistics.median(values) for name, values in samples.items()}


# ================================================================================ report
@dataclass
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    goals: list[tuple[str, str, str, str]] = field(default_factory=list)  # verdict, goal, figure, target

    def row(self, measured: str, figure: str, baseline: str = "") -> None:
        self.rows.append((measured, figure, baseline))

    def goal(self, verdict: str, goal: str, figure: str, target: str) -> None:
        self.goals.append((verdict, goal, figure, target))

    def markdown(self, header: list[str], notes: list[str] | None = None) -> str:
        lines = [*header, "", "| measured | figure | baseline (same run) |", "|---|---|---|"]
        lines += [f"| {m} | {f} | {b} |" for m, f, b in self.rows]
        if notes:
            lines += ["", *notes]
        lines += ["", "## Goals", "", "```"]
        lines += [f"{v:<12} {g}: {f} (target {t})" for v, g, f, t in self.goals]
        lines += ["```", ""]
        return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


GROUPS = ("cpu", "calls", "dynamo", "backfill", "backlog", "poll", "memory")
# The goals in the order of the first table (one line each, measured or not).
GOAL_ORDER = (
    "Xero calls for one invoice whose contact is linked and unchanged",
    "Xero calls to sync 500 invoices of 20 clients",
    "600 invoices at once: wall time",
    "Lambda invocations per step in that backlog",
    "DynamoDB calls per synced invoice, idle",
    "DynamoDB calls per synced invoice in a backlog",
    "first invocation CPU, step handler",
    "first invocation CPU, push",
    "the built layer ships compiled .pyc",
)
GOAL_TARGETS = {
    "Xero calls for one invoice whose contact is linked and unchanged": f"≤ {LINKED_CALLS_TARGET}",
    "Xero calls to sync 500 invoices of 20 clients": "≤ 12",
    "600 invoices at once: wall time": "≤ 1.1 x (batched calls ÷ 60/min), 0 failed runs, 0 x 429",
    "Lambda invocations per step in that backlog": "≤ 1.2",
    "DynamoDB calls per synced invoice, idle": "≤ 10",
    "DynamoDB calls per synced invoice in a backlog": "≤ 15",
    "first invocation CPU, step handler": f"≤ {FIRST_INVOCATION_TARGET}x",
    "first invocation CPU, push": f"≤ {FIRST_INVOCATION_TARGET}x",
    "the built layer ships compiled .pyc": "all",
}


def cpu_rows(args: argparse.Namespace, report: Report, rehearsal: Rehearsal) -> None:
    """The floor, cold imports and first invocations (fresh interpreters)."""
    with tempfile.TemporaryDirectory() as tmp:
        layer = str(compiled_layer(Path(tmp) / "layer"))
        dump_path = Path(tmp) / "stack.json"
        dump_path.write_text(json.dumps(rehearsal.dump))
        if args.keep_dump:
            args.keep_dump.write_text(
                json.dumps({"dump": rehearsal.dump, "step_event": rehearsal.step_event})
            )
        base = {"layer": layer, "dump": str(dump_path)}
        state_table = rehearsal.dump["env"]["STATE_TABLE"]

        progress("cold imports …")
        imports = (
            {}
            if args.only == ["first-invocation"]
            else {f: median_cpu({**base, "mode": "import", "function": f}, args.repeats) for f in FUNCTIONS}
        )
        # moto imports botocore before the clock starts: the boto3 import is measured on its own,
        # in fresh interpreters, and added to the floor and to each first invocation. The floor and
        # the first invocations are measured in the same rounds (interleaved_medians).
        measured = [c for c in cases(rehearsal) if not args.function or c.function in args.function]
        progress("the floor and the first invocations …")
        loaded: dict[str, bool] = {}
        medians = interleaved_medians(
            {
                "boto3": {**base, "mode": "boto3"},
                "floor": {**base, "mode": "floor", "floor_table": state_table},
                "pydantic": {**base, "mode": "pydantic"},
                **{
                    case.function: {
                        **base,
                        "mode": "first",
                        "function": case.function,
                        "event": case.event,
                        "env": case.env,
                        "expect": case.expect,
                        "sign_push": case.sign_push,
                    }
                    for case in measured
                },
            },
            args.repeats,
            loaded,
        )
        boto3_import, calls = medians["boto3"], medians["floor"]
        floor = boto3_import + calls
        report.row(
            "floor: import boto3 + one client + one GetItem (moto), CPU",
            f"{floor * 1000:.0f} ms",
            f"import {boto3_import * 1000:.0f} ms + client and GetItem {calls * 1000:.0f} ms",
        )
        for function, cpu in imports.items():
            report.row(
                f"cold import `{function}`, CPU", f"{cpu * 1000:.0f} ms", f"{cpu / floor:.2f}x the floor"
            )
        pydantic_cost = medians["pydantic"]
        report.row(
            "pydantic: import + a first model, CPU (paid by a first invocation that validates with it)",
            f"{pydantic_cost * 1000:.0f} ms",
            f"{pydantic_cost / floor:.2f}x the floor",
        )

        for case in measured:
            cpu = boto3_import + medians[case.function]
            ratio = cpu / floor
            report.row(
                f"first invocation `{case.function}` ({case.what}): import boto3 + import + event, CPU",
                f"{cpu * 1000:.0f} ms",
                f"{ratio:.2f}x the floor",
            )
            if loaded.get(case.function):
                report.row(
                    f"first invocation `{case.function}` less pydantic's import + first model (what it"
                    " would be without pydantic; an estimate)",
                    f"{(cpu - pydantic_cost) * 1000:.0f} ms",
                    f"{(cpu - pydantic_cost) / floor:.2f}x the floor",
                )
            if case.function in ("step_actions", "clientary_trigger"):
                label = "step handler" if case.function == "step_actions" else "push"
                report.goal(
                    verdict(ratio <= FIRST_INVOCATION_TARGET),
                    f"first invocation CPU, {label}",
                    f"{ratio:.2f}x the floor",
                    f"≤ {FIRST_INVOCATION_TARGET}x",
                )


def built_layer_rows(args: argparse.Namespace, report: Report) -> None:
    if not BUILT_LAYER.is_dir():
        report.goal(
            "not measured", "the built layer ships compiled .pyc", "no .aws-sam build (run make build)", "all"
        )
        return
    sys.path.insert(0, str(ROOT))
    from tests.check_built_layer import problems

    count, found = problems(BUILT_LAYER)
    report.row(
        "built layer (.aws-sam, from the last make build): modules with an unchecked-hash .pyc",
        f"{count - len(found)} of {count}",
    )
    progress("the built layer with and without its bytecode …")
    with tempfile.TemporaryDirectory() as tmp:
        compiled, bare = compiled_layer(Path(tmp) / "compiled"), Path(tmp) / "bare"
        shutil.copytree(compiled, bare, ignore=shutil.ignore_patterns("__pycache__"))
        for function in ("step_actions", "clientary_trigger"):
            timed = {
                name: median_cpu(
                    {
                        "mode": "import",
                        "function": function,
                        "layer": str(path),
                        "env": {"PYTHONDONTWRITEBYTECODE": "1"},
                    },
                    args.repeats,
                )
                for name, path in (("with", compiled), ("without", bare))
            }
            report.row(
                f"cold import `{function}` from the built layer, CPU",
                f"{timed['with'] * 1000:.0f} ms",
                f"{timed['without'] * 1000:.0f} ms without its .pyc (SAM's python3.12 builder)",
            )
    report.goal(
        verdict(not found and count > 0),
        "the built layer ships compiled .pyc",
        f"{count - len(found)} of {count}",
        "all",
    )


def calls_rows(report: Report, rehearsal: Rehearsal) -> None:
    for label, (api, token) in rehearsal.calls.items():
        report.row(
            f"Xero calls for one synced invoice, {label}", f"{api + token}", f"API {api}, token {token}"
        )
    report.row(
        "DynamoDB calls for one synced invoice, linked contact (poll + 2 steps)",
        f"{rehearsal.dynamodb_linked}",
    )
    linked = sum(rehearsal.calls["linked contact, unchanged"])
    report.goal(
        verdict(linked <= LINKED_CALLS_TARGET),
        "Xero calls for one invoice whose contact is linked and unchanged",
        str(linked),
        f"≤ {LINKED_CALLS_TARGET}",
    )


def dynamo_rows(args: argparse.Namespace, report: Report) -> None:
    """bench_dynamo's idle scenarios (one pushed invoice, its two steps)."""
    from benchmarks import bench_dynamo

    progress("DynamoDB calls, idle …")
    measured = bench_dynamo.idle()
    for m in measured:
        own = m.per_invoice_besides_budget
        report.row(
            f"DynamoDB calls per synced invoice, {m.name} (push + 2 steps)",
            f"{m.per_invoice:.0f} ({own:.0f} besides the rate budget)",
            f"{bench_dynamo.BASELINE[m.name]} ({bench_dynamo.BASELINE_BESIDES_BUDGET[m.name]}) at the "
            "branch point",
        )
        if args.verbose:
            print("\n".join(_breakdown(m.name, m.counter, m.invoices)))
    worst = max(m.per_invoice for m in measured)
    report.goal(
        verdict(worst <= bench_dynamo.TARGET["idle, linked contact"]),
        "DynamoDB calls per synced invoice, idle",
        ", ".join(f"{m.name.removeprefix('idle, ')} {m.per_invoice:.0f}" for m in measured),
        "≤ 10",
    )


def _breakdown(name: str, counter: Any, invoices: int, top: int = 14) -> list[str]:
    lines = [f"{name}: DynamoDB calls per invoice, by operation and by caller -> storage method"]
    for operation, n in counter.by_operation().most_common():
        lines.append(f"    {n / invoices:7.2f}  {operation}")
    for site, n in counter.by_site().most_common(top):
        lines.append(f"    {n / invoices:7.2f}  {site}")
    return lines


def volume_rows(args: argparse.Namespace, report: Report, groups: set[str], notes: list[str]) -> None:
    """The simulated-clock scenarios (benchmarks/bench_backlog.py)."""
    from benchmarks import bench_backlog as V

    def add(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            report.row(row["name"], row["figure"], row["baseline"])

    if "backfill" in groups:
        progress("the 500/20 backfill, batched …")
        after = V.backfill()
        unbatched = None
        if args.full_baselines:
            progress("the 500/20 backfill, unbatched (batch 1) …")
            unbatched = V.backfill(batch_size=1)
        add(V.backfill_rows(after, unbatched))
        report.goal(
            verdict(after.xero_calls <= 12 and after.failed_runs == 0),
            "Xero calls to sync 500 invoices of 20 clients",
            f"{after.xero_calls} (runs {V._runs(after.runs)})",
            "≤ 12",
        )
        progress(f"  {after.real_seconds:.0f} s")
    if "backlog" in groups:
        progress(f"the {args.backlog}-invoice backlog …")
        after = V.backlog(args.backlog)
        before = None
        if args.baselines or args.full_baselines:
            size = args.backlog if args.full_baselines else args.baseline_invoices
            progress(f"the old engine (batches of one, the old budget), {size} invoices …")
            before = V.backlog(size, batch_size=1, budget="before")
            progress(f"  {before.real_seconds:.0f} s")
        rows = V.backlog_rows(after, before)
        add(rows)
        wall, per_step, dynamo = rows
        report.goal(
            verdict(wall["passed"]), "600 invoices at once: wall time", wall["figure"], wall["target"]
        )
        d = after.drained
        report.goal(
            verdict(per_step["passed"]),
            "Lambda invocations per step in that backlog",
            f"{d.per_step:.2f}",
            per_step["target"],
        )
        report.goal(
            verdict(dynamo["passed"]),
            "DynamoDB calls per synced invoice in a backlog",
            f"{after.dynamodb_per_invoice:.1f}",
            dynamo["target"],
        )
        lines = _breakdown(f"the {args.backlog}-invoice backlog", after.dynamodb, after.invoices, top=8)
        notes.extend(["Where the backlog's DynamoDB calls go (per invoice):", "", "```", *lines, "```"])
        if args.verbose:
            print(
                "\n".join(_breakdown(f"the {args.backlog}-invoice backlog", after.dynamodb, after.invoices))
            )
        progress(f"  {after.real_seconds:.0f} s")
    if "poll" in groups:
        progress("an idle poll …")
        idle, first = V.idle_poll_calls()
        report.row("Clientary calls per idle poll (nothing new)", str(idle), f"{first} for the first poll")
    if "memory" in groups:
        progress("peak memory of an action batch …")
        peaks = V.batch_memory()
        report.row(
            f"peak memory of one Xero action invocation, a batch of {V.MAX_ELEMENTS} new invoices and "
            "contacts (tracemalloc)",
            f"{peaks[V.MAX_ELEMENTS] / 2**20:.1f} MiB",
            f"{peaks[1] / 2**20:.1f} MiB for a batch of one",
        )


def guarded(report: Report, group: str, measure: Callable[[], None]) -> None:
    """Run one group; if it breaks, say so in the table (its goals then print "not measured") and
    go on with the others, so one scenario's error does not lose a long run."""
    try:
        measure()
    except Exception as exc:
        import traceback

        traceback.print_exc()
        report.row(f"**{group}: the measurement failed**", f"{type(exc).__name__}: {exc}"[:300], "")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per CPU figure (median)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {OUTPUT.relative_to(ROOT)}")
    parser.add_argument(
        "--keep-dump", type=Path, help="also save the rehearsal's stack dump and step event here"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[*GROUPS, "first-invocation"],
        help="measure only these groups (repeatable) and write nothing",
    )
    parser.add_argument(
        "--function", action="append", help="with --only first-invocation: only this handler (repeatable)"
    )
    parser.add_argument("--backlog", type=int, default=600, help="invoices in the backlog (600)")
    parser.add_argument(
        "--no-baselines",
        dest="baselines",
        action="store_false",
        help="skip the old engine's backlog (batches of one, the budget before reservations)",
    )
    parser.add_argument(
        "--baseline-invoices",
        type=int,
        default=60,
        help="invoices in the old engine's backlog (60, four a client): a step at a time, it costs "
        "several times the CPU of the batched one",
    )
    parser.add_argument(
        "--full-baselines",
        action="store_true",
        help="the old engine's backlog at the backlog's size, and the backfill with batches of one",
    )
    parser.add_argument("--verbose", action="store_true", help="DynamoDB calls per caller")
    args = parser.parse_args()
    groups = set(GROUPS) if not args.only else set(args.only)
    if "first-invocation" in groups:
        groups.add("cpu")
    if args.only:
        args.no_write = True
    started = time.perf_counter()
    report = Report()
    notes: list[str] = []

    if groups & {"cpu", "calls"}:
        progress("rehearsing through the local runner …")
        rehearsal = rehearse()
        if "cpu" in groups:
            cpu_rows(args, report, rehearsal)
        if "calls" in groups:
            calls_rows(report, rehearsal)
    if "dynamo" in groups:
        guarded(report, "dynamo", lambda: dynamo_rows(args, report))
    for group in ("backfill", "backlog", "poll", "memory"):
        if group in groups:
            guarded(report, group, lambda g=group: volume_rows(args, report, {g}, notes))  # type: ignore[misc]
    if "cpu" in groups and args.only != ["first-invocation"]:
        built_layer_rows(args, report)

    seen = {goal for _, goal, _, _ in report.goals}
    for goal in GOAL_ORDER:
        if goal not in seen:
            report.goal("not measured", goal, "not in this run (--only)", GOAL_TARGETS[goal])
    report.goals.sort(key=lambda g: GOAL_ORDER.index(g[1]) if g[1] in GOAL_ORDER else len(GOAL_ORDER))

    seconds = time.perf_counter() - started
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    header = [
        "# Benchmarks",
        "",
        "Written by `make bench` (benchmarks/bench.py; its docstring says how each figure is taken).",
        f"CPU figures are medians of {args.repeats} fresh interpreters on the machine that ran it, so",
        "compare ratios, not milliseconds; the floor is measured in the same run. Volume figures",
        "(backfill, backlog) run on a simulated clock (benchmarks/bench_backlog.py): counts and",
        "simulated minutes do not depend on the machine. Python "
        f"{sys.version.split()[0]}; the CPU rows import `shared/` compiled (unchecked-hash .pyc) with the "
        f"{LAYER_SOURCE}; {seconds:.0f} s; load average at the end {load}"
        f" on {os.cpu_count()} CPUs.",
    ]
    text = report.markdown(header, notes)
    print(text)
    if not args.no_write:
        OUTPUT.write_text(text, encoding="utf-8")
        progress(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(sys.argv[2])
    else:
        sys.path[:0] = [str(SHARED), str(ROOT)]
        main()
