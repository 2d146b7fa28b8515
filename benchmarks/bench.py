"""`make bench`: issue 8's figures measured side by side, each against its baseline measured in the
same run; prints a table and writes docs/BENCHMARKS.md, ending with one PASS/FAIL line per goal.

Rows measured so far (the rest of the issue's table prints "not yet measured"):

* **Cold import, CPU** of each handler: ``import app`` in a fresh interpreter (the layer on the
  path as /opt/python is in Lambda), ``time.process_time`` around it, median of ``--repeats``.
  The layer is the one ``make build`` would ship: today's ``shared/`` compiled to unchecked-hash
  ``.pyc``, with the built layer's dependencies when ``.aws-sam`` has a build, else the
  development virtualenv's (``compiled_layer``); the header says which.
* **First invocation, CPU**: a fresh interpreter imports the handler and handles one real event,
  against the **floor** — import boto3, create one client, do one GetItem. Both run against moto
  in-process: moto (and with it botocore) is imported and the stack's tables, queues and secrets
  are loaded *before* the clock starts, through a private boto3 session, so the default session's
  loaders are as cold as in Lambda; ``import boto3`` is measured apart in fresh interpreters and
  added to both. The CPU moto spends answering (AWS's side of each call) is subtracted from both.
  The state (workflows, runs, links, secrets) comes from a rehearsal through the local runner,
  dumped and loaded raw, so no layer module is imported before the clock starts. httpx's command
  line extras (click, pygments, rich), installed in the development virtualenv but not in the
  layer, are blocked in every child.
* **Xero calls per synced invoice** through the local runner (sandboxes): a new contact, a linked
  and unchanged contact, and that again with the access token expired; and DynamoDB calls for the
  linked one (poll + steps).
* **Compiled layer**: whether the built layer (``make build``) ships unchecked-hash ``.pyc``, and
  the cold import of two handlers from it with and without those files.

    .venv/bin/python benchmarks/bench.py [--repeats 5] [--no-write]
    .venv/bin/python benchmarks/bench.py --only first-invocation [--function step_actions]

``--only first-invocation`` measures the floor and the first invocations only (after the rehearsal,
which makes their state) and writes nothing; ``--function`` (repeatable) narrows them further.
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
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def run_child(spec: dict[str, Any]) -> float:
    """CPU seconds the child measured (a fresh interpreter each call)."""
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
    return float(answer["cpu"])


def child_main(spec_path: str) -> None:
    """In the fresh interpreter: set up (unmeasured), then measure one thing."""
    spec = json.loads(Path(spec_path).read_text())
    out: dict[str, Any] = {}
    mode = spec["mode"]
    # httpx imports its command line (click, pygments, rich) when they are installed: the
    # development virtualenv has them, the layer does not.
    for absent in ("click", "pygments", "rich"):
        sys.modules[absent] = None  # type: ignore[assignment]
    aws_side = _load_stack(spec["dump"]) if mode in ("first", "floor") else (lambda: 0.0)
    sys.path[:0] = [spec["layer"], str(ROOT / "functions" / spec.get("function", "step_actions"))]
    event = spec.get("event")
    if mode == "first" and spec.get("sign_push"):
        event = _signed(event, spec["sign_push"])
    started = time.process_time()
    if mode == "boto3":
        import boto3
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


def median_cpu(spec: dict[str, Any], repeats: int) -> float:
    return statistics.median(run_child(spec) for _ in range(repeats))


# ================================================================================ report
@dataclass
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    goals: list[tuple[str, str, str, str]] = field(default_factory=list)  # verdict, goal, figure, target

    def row(self, measured: str, figure: str, baseline: str = "") -> None:
        self.rows.append((measured, figure, baseline))

    def goal(self, verdict: str, goal: str, figure: str, target: str) -> None:
        self.goals.append((verdict, goal, figure, target))

    def markdown(self, header: list[str]) -> str:
        lines = [*header, "", "| measured | figure | baseline (same run) |", "|---|---|---|"]
        lines += [f"| {m} | {f} | {b} |" for m, f, b in self.rows]
        lines += ["", "## Goals", "", "```"]
        lines += [f"{v:<16} {g}: {f} (target {t})" for v, g, f, t in self.goals]
        lines += ["```", ""]
        return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per CPU figure (median)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {OUTPUT.relative_to(ROOT)}")
    parser.add_argument(
        "--keep-dump", type=Path, help="also save the rehearsal's stack dump and step event here"
    )
    parser.add_argument(
        "--only",
        choices=["first-invocation"],
        help="measure only these rows (the floor with them) and write nothing",
    )
    parser.add_argument(
        "--function", action="append", help="with --only first-invocation: only this handler (repeatable)"
    )
    args = parser.parse_args()
    if args.only:
        args.no_write = True
    started = time.perf_counter()
    report = Report()
    layer_source = "built layer's dependencies (.aws-sam)" if BUILT_LAYER.is_dir() else "virtualenv's"

    print("rehearsing through the local runner …", file=sys.stderr, flush=True)
    rehearsal = rehearse()
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

        print("cold imports …", file=sys.stderr, flush=True)
        imports = (
            {}
            if args.only
            else {f: median_cpu({**base, "mode": "import", "function": f}, args.repeats) for f in FUNCTIONS}
        )
        # moto imports botocore before the clock starts: the boto3 import is measured on its own,
        # in fresh interpreters, and added to the floor and to each first invocation.
        boto3_import = median_cpu({**base, "mode": "boto3"}, args.repeats)
        calls = median_cpu({**base, "mode": "floor", "floor_table": state_table}, args.repeats)
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

        print("first invocations …", file=sys.stderr, flush=True)
        for case in cases(rehearsal):
            if args.function and case.function not in args.function:
                continue
            spec = {
                **base,
                "mode": "first",
                "function": case.function,
                "event": case.event,
                "env": case.env,
                "expect": case.expect,
                "sign_push": case.sign_push,
            }
            cpu = boto3_import + median_cpu(spec, args.repeats)
            ratio = cpu / floor
            report.row(
                f"first invocation `{case.function}` ({case.what}): import boto3 + import + event, CPU",
                f"{cpu * 1000:.0f} ms",
                f"{ratio:.2f}x the floor",
            )
            if case.function in ("step_actions", "clientary_trigger"):
                label = "step handler" if case.function == "step_actions" else "push"
                report.goal(
                    verdict(ratio <= FIRST_INVOCATION_TARGET),
                    f"first invocation CPU, {label}",
                    f"{ratio:.2f}x the floor",
                    f"≤ {FIRST_INVOCATION_TARGET}x",
                )
    if args.only:
        print(report.markdown([f"# {args.only} only ({args.repeats} repeats; layer: {layer_source})"]))
        return

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
    report.goal(
        verdict(rehearsal.dynamodb_linked <= 10),
        "DynamoDB calls per synced invoice, idle",
        str(rehearsal.dynamodb_linked),
        "≤ 10",
    )

    if BUILT_LAYER.is_dir():
        sys.path.insert(0, str(ROOT))
        from tests.check_built_layer import problems

        count, found = problems(BUILT_LAYER)
        report.row(
            "built layer (.aws-sam, from the last make build): modules with an unchecked-hash .pyc",
            f"{count - len(found)} of {count}",
        )
        print("the built layer with and without its bytecode …", file=sys.stderr, flush=True)
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
    else:
        report.goal(
            "not yet measured",
            "the built layer ships compiled .pyc",
            "no .aws-sam build (run make build)",
            "all",
        )
    for goal, target in (
        ("Xero calls to sync 500 invoices of 20 clients", "≤ 12"),
        ("600 invoices at once: wall time", "≤ 1.1 x (batched calls ÷ 60/min), 0 failed runs, 0 x 429"),
        ("Lambda invocations per step in that backlog", "≤ 1.2"),
        ("DynamoDB calls per synced invoice in a backlog", "≤ 15"),
    ):
        report.goal("not yet measured", goal, "not built yet (issue 8 points 1, 3, 4)", target)

    seconds = time.perf_counter() - started
    header = [
        "# Benchmarks",
        "",
        "Written by `make bench` (benchmarks/bench.py; its docstring says how each figure is taken).",
        f"CPU figures are medians of {args.repeats} fresh interpreters on the machine that ran it, so",
        "compare ratios, not milliseconds; the floor is measured in the same run. Python "
        f"{sys.version.split()[0]}; the CPU rows import `shared/` compiled (unchecked-hash .pyc) with the "
        f"{layer_source}; {seconds:.0f} s.",
    ]
    text = report.markdown(header)
    print(text)
    if not args.no_write:
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUTPUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(sys.argv[2])
    else:
        main()
