"""``clientary-xero``: validate and store workflows, inspect and replay runs, run a workflow locally.

Commands that talk to your deployed stack use your normal AWS credentials, in the region the AWS
CLI would use: --region, else AWS_REGION, else your profile's (AWS_PROFILE, AWS_DEFAULT_REGION, the
AWS config file). They find the tables and queues from the stack's outputs (--stack, else
CLIENTARY_XERO_STACK, else clientary-xero) or, without --stack, from the environment variables the
Lambdas use (WORKFLOWS_TABLE, STATE_TABLE, XERO_QUEUE_URL, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from clientary_xero.errors import ClientaryXeroError, WorkflowInvalid

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _context.clear()
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INVALID
    saved = dict(os.environ)
    try:
        return _run(args)
    finally:
        # A command points the stores at its stack through the environment (region, table names);
        # called again in the same process (tests, a script), the next command starts afresh.
        if os.environ != saved:
            from clientary_xero.settings import reset_settings
            from clientary_xero.storage.aws import reset_clients

            os.environ.clear()
            os.environ.update(saved)
            reset_settings()
            reset_clients()


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except WorkflowInvalid as exc:
        _print_problems(exc)
        return EXIT_INVALID
    except ClientaryXeroError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # pragma: no cover - `… | head`
        return EXIT_OK
    except Exception as exc:  # an AWS error is one line, anything else the traceback it is
        from clientary_xero.local.awserrors import describe_aws_error

        line = describe_aws_error(exc, _context)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return EXIT_FAILED


# The region and stack the command works on: what an AWS error's line names.
_context: dict[str, str] = {}
DEFAULT_STACK = "clientary-xero"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clientary-xero")
    except PackageNotFoundError:  # run from a checkout without `pip install -e .`
        import tomllib

        pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, ValueError):
            return "unknown"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return value


def _set_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a setting the workflow declares (settings: NAME: default); repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clientary-xero", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command")

    t = sub.add_parser("test-workflow", help="run one workflow for one trigger record, locally")
    t.add_argument("workflow", help="workflow file (YAML or JSON)")
    t.add_argument(
        "--event",
        required=True,
        help="the trigger record as the source API returns it (JSON), "
        "e.g. a Clientary invoice from GET /api/v2/invoices/:id",
    )
    t.add_argument("--record", metavar="FILE", help="write every outgoing HTTP request as JSON lines")
    t.add_argument(
        "--live",
        action="store_true",
        help="call the real Xero and Clientary APIs (credentials from --secrets); AWS stays local",
    )
    t.add_argument(
        "--secrets",
        metavar="FILE",
        default=os.environ.get("CLIENTARY_XERO_SECRETS"),
        help='with --live: JSON {"xero": {…}, "clientary": {…}}; rotated Xero tokens are written back',
    )
    t.add_argument(
        "--seed",
        metavar="FILE",
        help="records to put into the sandboxes first (JSON or YAML): "
        '{"clientary": {"invoices": [{…}], …}, "xero": {"Contacts": [{…}], "PurchaseOrders": [{…}], …}}',
    )
    t.add_argument("--max-wait", type=float, default=120.0, help="seconds to wait for retries (default 120)")
    _set_arg(t)
    t.set_defaults(func=cmd_test_workflow)

    d = sub.add_parser("demo", help="the invoice recipe + sample invoices through the engine and sandboxes")
    d.set_defaults(func=cmd_demo)

    w = sub.add_parser("workflows", help="validate, store and list workflows").add_subparsers(dest="sub")
    wv = w.add_parser("validate", help="check workflow files (exit 2 with every problem when invalid)")
    wv.add_argument("files", nargs="+")
    wv.set_defaults(func=cmd_workflows_validate)
    wp = w.add_parser("put", help="validate and save workflow files to the Workflows table")
    wp.add_argument("files", nargs="+")
    _set_arg(wp)
    _stack_arg(wp)
    wp.set_defaults(func=cmd_workflows_put)
    wl = w.add_parser("list", help="list stored workflows (and any invalid ones, with the reason)")
    _json_arg(wl)
    _stack_arg(wl)
    wl.set_defaults(func=cmd_workflows_list)
    ws = w.add_parser("schema", help="print the workflow JSON Schema")
    ws.set_defaults(func=cmd_workflows_schema)

    doc = sub.add_parser(
        "doctor",
        help="check the deployed stack (resources, secrets, Xero, Clientary, workflows, DLQs, runs)",
        description=(
            "Checks the stack's outputs and resources, each secret (never printed), the Xero connection "
            "(a token refresh and GET /Organisation, and the scopes the stored workflows need), "
            "Clientary with the stored token, every stored workflow, the dead-letter queues, stuck "
            "runs and Xero's rate budget; says how to fix each problem. Exit 1 on any problem."
        ),
    )
    _json_arg(doc)
    _stack_arg(doc)
    doc.set_defaults(func=cmd_doctor)

    _add_connect_parser(sub)  # issue #3
    from clientary_xero.local.xero_lookup import add_parser as add_xero_lookup_parser

    add_xero_lookup_parser(sub, stack_arg=_stack_arg, json_arg=_json_arg)  # issue 11: the codes settings name
    _add_backfill_parser(sub)  # issue #4
    from clientary_xero.local.recipes import add_recipes_parser

    add_recipes_parser(sub)  # issue #11: recipes list|show

    r = sub.add_parser("runs", help="list, show and replay runs").add_subparsers(dest="sub")
    rl = r.add_parser("list", help="newest runs first")
    rl.add_argument(
        "--status", choices=["QUEUED", "RUNNING", "WAITING", "SUCCEEDED", "FAILED", "FILTERED", "SKIPPED"]
    )
    rl.add_argument("--limit", type=_positive_int, default=20, help="how many runs (default 20)")
    _json_arg(rl)
    _stack_arg(rl)
    rl.set_defaults(func=cmd_runs_list)
    rs = r.add_parser("show", help="a run with each step's input, output and error")
    rs.add_argument("run_id")
    _json_arg(rs)
    _stack_arg(rs)
    rs.set_defaults(func=cmd_runs_show)
    rr = r.add_parser("replay", help="run a FAILED run again from its failed step")
    rr.add_argument("run_id")
    rr.add_argument(
        "--keep-definition",
        action="store_true",
        help="replay with the workflow as it was when the run started (default: the current one)",
    )
    rr.add_argument(
        "--stuck",
        action="store_true",
        help="also replay a QUEUED/RUNNING run whose step message went to the DLQ (no live lease)",
    )
    _stack_arg(rr)
    rr.set_defaults(func=cmd_runs_replay)
    return p


def _stack_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        default=None,
        help="CloudFormation stack to read table and queue names from; wins over WORKFLOWS_TABLE "
        "etc. (default: $CLIENTARY_XERO_STACK, else clientary-xero)",
    )
    parser.add_argument(
        "--region",
        default=None,
        help="AWS region of the stack (default: AWS_REGION, else your AWS profile's region)",
    )


def _json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _stack_name(args: argparse.Namespace) -> str:
    return str(args.stack or os.environ.get("CLIENTARY_XERO_STACK") or DEFAULT_STACK)


# ------------------------------------------------------------------ commands
def cmd_workflows_validate(args: argparse.Namespace) -> int:
    from clientary_xero.workflows.loader import load_workflow_file
    from clientary_xero.workflows.validate import warnings

    status = EXIT_OK
    for name in args.files:
        try:
            workflow = load_workflow_file(name)
        except OSError as exc:
            status = _cannot_read("the workflow", name, exc)
        except WorkflowInvalid as exc:
            print(f"{name}: INVALID")
            for problem in exc.problems:
                print(f"  - {problem}")
            status = EXIT_INVALID
        else:
            print(f"{name}: ok ({workflow.id}, trigger {workflow.trigger})")
            for remark in warnings(workflow):  # worth a look, but the workflow is valid
                print(f"  - WARNING {remark}")
    return status


def cmd_workflows_put(args: argparse.Namespace) -> int:
    from clientary_xero.storage.workflows import WorkflowStore
    from clientary_xero.workflows.loader import load_workflow_file

    workflows = []
    for name in args.files:  # all valid, or nothing is saved
        try:
            workflows.append(load_workflow_file(name, args.settings))
        except OSError as exc:
            return _cannot_read("the workflow", name, exc)
    _use_stack(args)
    store = WorkflowStore()
    for workflow in workflows:
        store.put(workflow, updated_by="cli")
        print(f"saved {workflow.id} ({workflow.trigger}, {'enabled' if workflow.enabled else 'disabled'})")
    return EXIT_OK


def cmd_workflows_list(args: argparse.Namespace) -> int:
    from clientary_xero.local import output
    from clientary_xero.storage.workflows import WorkflowStore

    _use_stack(args)
    stored = WorkflowStore().list()
    if args.json:
        output.print_json([output.workflow_summary(w) for w in stored])
    else:
        output.print_workflows(stored)
    return EXIT_OK


def cmd_workflows_schema(args: argparse.Namespace) -> int:
    from clientary_xero.workflows.schema import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def cmd_runs_list(args: argparse.Namespace) -> int:
    from clientary_xero.storage.state import StateStore

    _use_stack(args)
    runs = StateStore().list_runs(limit=args.limit, status=args.status)
    if args.json:
        from clientary_xero.local.output import print_json

        print_json(runs)
    else:
        print_runs(runs)
    return EXIT_OK


def cmd_runs_show(args: argparse.Namespace) -> int:
    from clientary_xero.storage.state import StateStore

    _use_stack(args)
    state = StateStore()
    run = state.get_run(args.run_id)
    if run is None:
        print(f"error: no run {args.run_id}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        from clientary_xero.local.output import print_json

        print_json({"run": run, "steps": state.get_steps(args.run_id)})
        return EXIT_OK
    print_run(run, state.get_steps(args.run_id))
    return EXIT_OK


def cmd_runs_replay(args: argparse.Namespace) -> int:
    from clientary_xero.engine.runner import replay
    from clientary_xero.storage.queue import StepQueue
    from clientary_xero.storage.state import StateStore
    from clientary_xero.storage.workflows import WorkflowStore

    _use_stack(args)
    state = StateStore()
    run = state.get_run(args.run_id)
    if run is None:
        print(f"error: no run {args.run_id}", file=sys.stderr)
        return EXIT_FAILED
    document = None
    stored = WorkflowStore().get(run["workflow_id"])
    if run.get("status") == "SKIPPED" and (stored is None or not stored.enabled):
        # Skipped because the workflow was disabled: it starts once the workflow is enabled again.
        state_text = "is disabled" if stored is not None else "no longer exists"
        print(
            f"error: run {args.run_id} was skipped while workflow {run['workflow_id']} was disabled; "
            f"the workflow {state_text}: set enabled: true and `workflows put` it first",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if not args.keep_definition:
        if stored is not None and stored.workflow is None:
            raise WorkflowInvalid(stored.id, stored.problems)
        document = stored.workflow.to_document() if stored and stored.workflow else None
    result = replay(state, StepQueue(), args.run_id, workflow_document=document, stuck=args.stuck)
    if result.get("step_id") is None:  # a SKIPPED run the filter or its path decided
        print(f"started {result['run_id']}: {result.get('status')} ({result.get('detail') or 'no step'})")
        return EXIT_OK
    print(f"replaying {result['run_id']} from step {result['step_id']} (generation {result['generation']})")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from clientary_xero.local import output
    from clientary_xero.usecases.doctor import diagnose

    region = _use_region(args)
    # Without --stack, table names already in the environment say where to look (as for runs list).
    from_env = not args.stack and bool(os.environ.get("WORKFLOWS_TABLE") and os.environ.get("STATE_TABLE"))
    stack = None if from_env else _stack_name(args)
    _context["stack"] = stack or ""
    report = diagnose(stack, region, configure=_apply_outputs)
    if args.json:
        output.print_json(report.to_dict())
    else:
        output.print_report(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_test_workflow(args: argparse.Namespace) -> int:
    from clientary_xero.local.environment import LocalEnvironment
    from clientary_xero.workflows.loader import read_document
    from clientary_xero.workflows.settings import apply_settings
    from clientary_xero.workflows.triggers import get_trigger
    from clientary_xero.workflows.validate import parse_workflow

    try:
        document = apply_settings(read_document(args.workflow), args.settings)
    except OSError as exc:
        return _cannot_read("the workflow", args.workflow, exc)
    workflow = parse_workflow(document)
    spec = get_trigger(workflow.trigger)
    assert spec is not None  # parse_workflow checked it
    try:
        record = json.loads(Path(args.event).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: cannot read the event {args.event}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    seed: dict[str, Any] = {}
    if args.seed:
        if args.live:
            print("error: --seed fills the sandboxes; it does not go with --live", file=sys.stderr)
            return EXIT_INVALID
        try:
            seed = _read_seed(args.seed)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_INVALID
    from clientary_xero.local.explain import resource_warning

    mismatch = resource_warning(spec.source, spec.resource, spec.name, record)
    if mismatch:  # a hint (an invoice given to a new_client workflow), not a refusal
        print(f"warning: {args.event}: {mismatch}")
    if spec.source == "xero":  # issue #3: a Xero record, delivered by webhook or poll
        return _test_xero_workflow(args, workflow, spec, record, seed)
    if not isinstance(record, dict) or "id" not in record:
        print(f"error: {args.event} must be one {spec.resource} object with an 'id'", file=sys.stderr)
        return EXIT_INVALID
    if spec.source != "clientary":
        print(f"error: test-workflow does not yet drive {spec.source} triggers", file=sys.stderr)
        return EXIT_INVALID

    secrets: dict[str, Any] = {}
    if args.live:
        if not args.secrets:
            print("error: --live needs --secrets FILE (or CLIENTARY_XERO_SECRETS)", file=sys.stderr)
            return EXIT_INVALID
        read = _read_secrets(args.secrets)
        if read is None:
            return EXIT_INVALID
        secrets = read

    document = {**workflow.to_document(), "enabled": True}
    with LocalEnvironment(live=args.live, record=args.record, live_secrets=secrets) as env:
        if not _load_seed(env, seed, args.seed):
            return EXIT_INVALID
        if not args.live and spec.collection in env.clientary.resources:  # not contracts (issue #4)
            env.clientary.load_record(spec.collection, record)
        env.put_workflow(document)
        print(
            f"workflow {workflow.id} ({workflow.trigger}) ← {spec.resource} {record['id']} "
            f"({'live services' if args.live else 'sandboxes'})"
        )
        # A push-only trigger (clientary.new_contract) takes the record itself as the push body.
        pushed = json.dumps(record).encode() if spec.delivery == "push" else None
        response = env.push(workflow.trigger, record["id"], body=pushed)
        body = json.loads(response.get("body") or "{}")
        if response["statusCode"] >= 300:
            print(f"trigger refused the record: HTTP {response['statusCode']}: {body.get('error')}")
            return EXIT_FAILED
        env.drain(max_seconds=args.max_wait)
        state = env.state
        failed = False
        for start in body.get("runs", []):
            run = state.get_run(start["run_id"])
            if run is None:
                continue
            print_run(run, state.get_steps(run["run_id"]), verbose=True)
            failed = failed or run.get("status") not in ("SUCCEEDED", "FILTERED")
        if args.live and args.secrets:
            _write_back_xero_secret(env, Path(args.secrets), secrets)
    if args.record:
        print(f"recorded requests: {args.record}")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from clientary_xero.local.demo import run_demo

    return run_demo()


# ------------------------------------------------------------------ output
def print_runs(runs: list[dict[str, Any]]) -> None:
    from clientary_xero.local.output import print_table

    if not runs:
        print("no runs")
        return
    rows = []
    for run in runs:
        error = run.get("error") or {}
        tail = error.get("message", "") if error else run.get("created_at", "")
        if run.get("status") == "WAITING":  # issue #3: parked for Xero's daily limit
            tail = f"resumes {run.get('resume_at', '?')}: {run.get('wait_reason', '')}"
        if run.get("status") == "SKIPPED":
            tail = f"{run.get('created_at', '')}: {run.get('skip_reason', '')}"
        if run.get("filter_reason"):
            tail = f"{run.get('created_at', '')}: {run['filter_reason']}"
        extra = [m for m in error.get("messages") or [] if m not in tail]
        if extra:
            tail += ": " + "; ".join(extra)
        rows.append(
            [
                run["run_id"],
                run.get("workflow_id", ""),
                run.get("record_id", ""),
                run.get("status", ""),
                run.get("current_step") or "-",
                tail,
            ]
        )
    print_table(["run", "workflow", "record", "status", "step", "created / error"], rows)


def print_run(run: dict[str, Any], steps: list[dict[str, Any]], *, verbose: bool = True) -> None:
    print(
        f"\nrun {run['run_id']}  workflow {run.get('workflow_id')}  {run.get('trigger')} "
        f"record {run.get('record_id')}  →  {run.get('status')}"
    )
    for warning in (run.get("trigger_meta") or {}).get("warnings") or []:
        print(f"  warning: {warning}")  # e.g. an invoice that names no client
    if run.get("status") == "WAITING":  # issue #3: parked for Xero's daily limit
        print(f"  waiting: {run.get('wait_reason', '')}")
        print(f"  resumes at {run.get('resume_at', '?')} (the parked-run sweeper runs every 15 minutes)")
    if run.get("error"):
        error = run["error"]
        print(f"  error: {error.get('message')}")
        for message in error.get("messages") or []:
            print(f"    - {message}")
    if run.get("filter_reason"):
        print(f"  filtered: {run['filter_reason']}")
    from clientary_xero.local.explain import branch_lines

    for line in branch_lines(run):  # which side of each `if` ran
        print(f"  {line}")
    for step in steps:
        print(f"  step {step['step_id']}: {step.get('status')} (attempts {step.get('attempts', 0)})")
        if verbose:
            for label in ("input", "output", "error"):
                if step.get(label) is not None:
                    text = json.dumps(step[label], indent=2, ensure_ascii=False)
                    print(f"    {label}: " + text.replace("\n", "\n    "))


def _cannot_read(what: str, path: str, exc: OSError) -> int:
    """One line for a file that cannot be opened (missing, a directory, no permission): the path the
    user typed and the system's reason, not a traceback. Returns the invalid-input exit code."""
    print(f"error: cannot read {what} {path}: {exc.strerror or exc}", file=sys.stderr)
    return EXIT_INVALID


def _read_secrets(path: str) -> dict[str, Any] | None:
    """The --secrets file, or None after saying on one line why it cannot be used."""
    try:
        secrets = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        _cannot_read("the secrets", path, exc)
        return None
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        print(f"error: the secrets {path} are not valid JSON: {exc}", file=sys.stderr)
        return None
    if not isinstance(secrets, dict):
        print(f'error: the secrets {path} must be a JSON object {{"xero": {{…}}, …}}', file=sys.stderr)
        return None
    return secrets


def _print_problems(exc: WorkflowInvalid) -> None:
    print(f"invalid workflow{' ' + repr(exc.workflow_id) if exc.workflow_id else ''}:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)


# Stack output → the environment variable the stores read (the Lambdas get the same from template.yaml).
STACK_OUTPUTS = {
    "WorkflowsTableName": "WORKFLOWS_TABLE",
    "StateTableName": "STATE_TABLE",
    "XeroActionQueueUrl": "XERO_QUEUE_URL",
    "ClientaryActionQueueUrl": "CLIENTARY_QUEUE_URL",  # issue #4
    "XeroActionDLQUrl": "XERO_DLQ_URL",
    "ClientaryActionDLQUrl": "CLIENTARY_DLQ_URL",
    "XeroEventQueueUrl": "XERO_EVENT_QUEUE_URL",
    "XeroConnectionSecretArn": "XERO_SECRET_ID",
    "ClientaryConnectionSecretArn": "CLIENTARY_SECRET_ID",  # issue #4: backfill reads Clientary
    "ClientaryPushKeySecretArn": "CLIENTARY_PUSH_SECRET_ID",
    "XeroWebhookKeySecretArn": "XERO_WEBHOOK_SECRET_ID",
    "PayloadBucketName": "PAYLOAD_BUCKET",  # issue 7: runs show/replay load large payloads
}


def _use_region(args: argparse.Namespace) -> str:
    """Resolve the region once (storage/aws.py ``resolve_region``) and make every AWS client of this
    process use it: the settings (AWS_REGION) and boto3's own default (AWS_DEFAULT_REGION)."""
    from clientary_xero.settings import reset_settings
    from clientary_xero.storage import aws

    aws.watch_calls()
    region = aws.resolve_region(getattr(args, "region", None))
    if not region:
        raise ClientaryXeroError(
            "no AWS region: pass --region, set AWS_REGION, or give your AWS profile one "
            "(aws configure set region eu-west-1)"
        )
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region
    _context["region"] = region
    reset_settings()
    aws.reset_clients()
    return region


def _use_stack(args: argparse.Namespace) -> None:
    """Point the stores at a deployed stack (its outputs). Without --stack, table and queue names
    already in the environment (WORKFLOWS_TABLE and STATE_TABLE set) are used as they are."""
    region = _use_region(args)
    if not args.stack and os.environ.get("WORKFLOWS_TABLE") and os.environ.get("STATE_TABLE"):
        _context["stack"] = ""
        return
    _apply_outputs(_stack_outputs(args, region=region), override=bool(args.stack))


def _apply_outputs(outputs: dict[str, str], *, override: bool = True) -> None:
    """Set the environment variables of the stack's outputs; with ``override`` over values already
    there (--stack wins over the environment), else only where none is set."""
    from clientary_xero.settings import reset_settings

    for output, env in STACK_OUTPUTS.items():
        if output in outputs:
            if override:
                os.environ[env] = outputs[output]
            else:
                os.environ.setdefault(env, outputs[output])
    reset_settings()


def _write_back_xero_secret(env: Any, path: Path, secrets: dict[str, Any]) -> None:
    """Keep a rotated Xero refresh token: the old one dies 30 minutes after its first use."""
    from clientary_xero.storage.secrets import SecretStore

    assert env.resources is not None
    current = SecretStore().read(env.resources.xero_secret_id)
    if current != secrets.get("xero"):
        secrets["xero"] = current
        path.write_text(json.dumps(secrets, indent=2))
        print(f"rotated Xero tokens written back to {path}")


# ------------------------------------------------------------------ Xero (issue #3)
def _add_connect_parser(sub: Any) -> None:
    c = sub.add_parser("connect", help="connect a service (Xero)").add_subparsers(dest="service")
    x = c.add_parser(
        "xero",
        help="connect Xero: a one-time connect link for a stack, a custom connection, or --local",
        description=(
            "--stack NAME (default): print a one-time link (10 minutes) that starts the OAuth flow of "
            "the deployed stack. --custom: store and check a custom connection (client credentials). "
            "--local: run the OAuth flow with a loopback redirect (http://localhost:PORT/callback) and "
            "write the tokens to the --secrets file that test-workflow --live reads."
        ),
    )
    x.add_argument("--custom", action="store_true", help="a custom connection (client_credentials)")
    x.add_argument("--local", action="store_true", help="loopback OAuth flow; tokens go to --secrets FILE")
    x.add_argument(
        "--secrets",
        metavar="FILE",
        default=os.environ.get("CLIENTARY_XERO_SECRETS"),
        help='with --local: the secrets file ({"xero": {…}, "clientary": {…}}) to write',
    )
    x.add_argument("--client-id", default=os.environ.get("XERO_CLIENT_ID"), help="the Xero app's client id")
    x.add_argument(
        "--scopes",
        default=None,
        help="scopes to ask for (default: granular scopes; see README 'Connecting Xero')",
    )
    x.add_argument("--port", type=int, default=8765, help="with --local: loopback port (default 8765)")
    x.add_argument("--tenant", help="with --local: tenant id to use when several organisations connect")
    x.add_argument("--no-browser", action="store_true", help="with --local: print the link, do not open it")
    x.add_argument("--timeout", type=float, default=300.0, help="with --local: seconds to wait for Xero")
    _stack_arg(x)
    x.set_defaults(func=cmd_connect_xero)


def cmd_connect_xero(args: argparse.Namespace) -> int:
    from clientary_xero.usecases import xero_connect_cli as connect

    if args.local:
        if not args.secrets:
            print("error: --local needs --secrets FILE (or CLIENTARY_XERO_SECRETS)", file=sys.stderr)
            return EXIT_INVALID
        if args.custom:
            return connect.custom_local(args)
        return connect.oauth_local(args)
    outputs = _stack_outputs(args)
    args.stack = _stack_name(args)  # the messages name the stack
    if args.custom:
        return connect.custom_stack(args, outputs)
    return connect.ticket_stack(args, outputs)


def _stack_outputs(args: argparse.Namespace, *, region: str | None = None) -> dict[str, str]:
    from clientary_xero.storage.stack import stack_outputs

    region = region or _use_region(args)
    stack = _stack_name(args)
    _context["stack"] = stack
    return stack_outputs(stack, region)


def _read_seed(path: str) -> dict[str, Any]:
    """The --seed file, checked: ``clientary`` maps collections, ``xero`` maps Xero's collection
    names (``xero_sandbox.seeding.SEED_ORDER``), each to a list of records as the service returns them."""
    from clientary_xero.errors import WorkflowInvalid
    from clientary_xero.local.clientary_sandbox import default_resources
    from clientary_xero.local.xero_sandbox.seeding import SEED_ORDER
    from clientary_xero.workflows.loader import read_document

    try:
        seed = read_document(path)
    except (OSError, WorkflowInvalid) as exc:
        raise ValueError(f"cannot read the seed {path}: {exc}") from None
    if not isinstance(seed, dict) or set(seed) - {"clientary", "xero"}:
        raise ValueError(f"{path}: the seed is an object with 'clientary' and/or 'xero'")
    allowed = {"clientary": tuple(spec.name for spec in default_resources()), "xero": SEED_ORDER}
    for service, collections in seed.items():
        if not isinstance(collections, dict):
            raise ValueError(f"{path}: '{service}' maps collection names to lists of records")
        for name, records in collections.items():
            if name not in allowed[service]:
                choices = ", ".join(allowed[service])
                raise ValueError(f"{path}: {service} has no collection {name!r} to seed; one of: {choices}")
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ValueError(f"{path}: {service}.{name} must be a list of records")
            if service == "clientary" and not all("id" in r for r in records):
                raise ValueError(f"{path}: every clientary.{name} record needs an 'id'")
    return seed


def _load_seed(env: Any, seed: dict[str, Any], path: str | None = None) -> bool:
    """Fill the sandboxes; False (with the error printed) when Xero refuses a record."""
    for collection, records in (seed.get("clientary") or {}).items():
        for record in records:
            env.clientary.load_record(collection, record)
    if seed.get("xero"):
        try:  # in dependency order, through the sandbox's validation: see local/xero_sandbox/seeding.py
            env.seed_xero(seed["xero"])
        except ValueError as exc:
            print(f"error: {path or 'the seed'}: xero.{exc}", file=sys.stderr)
            return False
    if seed:
        counts = [f"{len(r)} {s}.{c}" for s, cols in seed.items() for c, r in cols.items()]
        print(f"seeded the sandboxes: {', '.join(counts)}")
    return True


def _test_xero_workflow(
    args: argparse.Namespace, workflow: Any, spec: Any, record: Any, seed: dict[str, Any]
) -> int:
    from clientary_xero.local.environment import LocalEnvironment

    if isinstance(record, dict) and isinstance(record.get(spec.collection), list) and record[spec.collection]:
        record = record[spec.collection][0]  # Xero's envelope, e.g. {"Contacts": [{…}]}
    id_field = {"Contacts": "ContactID", "Invoices": "InvoiceID", "Payments": "PaymentID"}[spec.collection]
    if not isinstance(record, dict) or (args.live and not record.get(id_field)):
        print(
            f"error: {args.event} must be one Xero {spec.resource} object (with {id_field})", file=sys.stderr
        )
        return EXIT_INVALID
    secrets: dict[str, Any] = {}
    if args.live:
        if spec.name == "xero.new_payment":
            print(
                "error: --live cannot drive xero.new_payment (it needs a payment made now)", file=sys.stderr
            )
            return EXIT_INVALID
        if not args.secrets:
            print("error: --live needs --secrets FILE (or CLIENTARY_XERO_SECRETS)", file=sys.stderr)
            return EXIT_INVALID
        read = _read_secrets(args.secrets)
        if read is None:
            return EXIT_INVALID
        secrets = read
    document = {**workflow.to_document(), "enabled": True}
    with LocalEnvironment(live=args.live, record=args.record, live_secrets=secrets) as env:
        if not _load_seed(env, seed, args.seed):
            return EXIT_INVALID
        env.put_workflow(document)
        if spec.name == "xero.new_payment":
            env.poll_xero_payments()  # the first poll records where to start
        if not args.live:
            record = env.load_xero_record(spec.collection, record)
        record_id = str(record[id_field])
        print(
            f"workflow {workflow.id} ({workflow.trigger}) ← Xero {spec.resource} {record_id} "
            f"({'live services' if args.live else 'sandboxes'})"
        )
        if spec.name == "xero.new_payment":
            summary = env.poll_xero_payments()
            print(f"payments poll: {summary['new_records']} new payment(s)")
        else:
            category = "CONTACT" if spec.resource == "contact" else "INVOICE"
            kind = "UPDATE" if spec.name.endswith("_updated") else "CREATE"
            response = env.xero_event(category, kind, record_id)
            if response["statusCode"] != 200:
                print(f"the webhook refused the event: HTTP {response['statusCode']}: {response.get('body')}")
                return EXIT_FAILED
        env.drain(max_seconds=args.max_wait)
        state = env.state
        runs = state.list_runs(limit=100)
        if not runs:
            print("no run was started (is the record of the connected organisation?)")
        failed = False
        for run in runs:
            print_run(run, state.get_steps(run["run_id"]), verbose=True)
            failed = failed or run.get("status") not in ("SUCCEEDED", "FILTERED")
        if args.live and args.secrets:
            _write_back_xero_secret(env, Path(args.secrets), secrets)
    if args.record:
        print(f"recorded requests: {args.record}")
    return EXIT_FAILED if failed or not runs else EXIT_OK


# ------------------------------------------------------------------ Clientary backfill (issue #4)
def _add_backfill_parser(sub: Any) -> None:
    b = sub.add_parser(
        "backfill",
        help="start runs for Clientary records created since a date (history the first poll skipped)",
        description=(
            "The first poll after deployment records where to start and replays nothing. To run a "
            "trigger's workflows for older records, backfill them: every record created since DATE is "
            "read from Clientary and handed to the trigger's workflows like a polled one. A record "
            "that already started a workflow (polled, pushed or backfilled before) does not start it "
            "again, so a backfill can be repeated, interrupted and started again, or overlap the polls. "
            "It asks before starting anything (--yes does not). --local rehearses it in-process on the "
            "sandboxes (--workflow, --seed) and prints the runs, the Xero calls and the quota they take."
        ),
    )
    b.add_argument("trigger", help="a Clientary trigger, e.g. clientary.new_invoice (or new_invoice)")
    b.add_argument("--since", required=True, metavar="DATE", help="YYYY-MM-DD (UTC midnight)")
    b.add_argument("--dry-run", action="store_true", help="list the records; start nothing")
    b.add_argument("-y", "--yes", action="store_true", help="start the runs without asking")
    b.add_argument(
        "--local",
        action="store_true",
        help="rehearse on the sandboxes, in-process (simulated clock): nothing reaches your stack",
    )
    b.add_argument("--workflow", metavar="FILE", help="with --local: the workflow to rehearse (YAML or JSON)")
    b.add_argument(
        "--seed",
        metavar="FILE",
        help="with --local: the sandboxes' records, as for test-workflow --seed "
        "(clientary: the records to backfill; xero: the organisation's state)",
    )
    b.add_argument(
        "--record", metavar="FILE", help="with --local: write every outgoing request as JSON lines"
    )
    b.add_argument(
        "--max-wait", type=float, default=3600.0, help="with --local: real seconds to drain (default 3600)"
    )
    _stack_arg(b)
    b.set_defaults(func=cmd_backfill)


def cmd_backfill(args: argparse.Namespace) -> int:
    from clientary_xero.errors import PermanentError
    from clientary_xero.local import output
    from clientary_xero.usecases import backfill as B

    try:
        spec = B.backfill_trigger(args.trigger)
        since = B.parse_since(args.since)
    except PermanentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.local:
        return _rehearse_backfill(args, spec.name, since)
    extra = [f"--{name}" for name in ("workflow", "seed", "record") if getattr(args, name)]
    if extra:
        print(
            f"error: {', '.join(extra)} go(es) with --local (a rehearsal on the sandboxes)", file=sys.stderr
        )
        return EXIT_INVALID

    _use_stack(args)
    name = spec.name
    print(f"reading {name} records created since {args.since} from Clientary…", file=sys.stderr)
    records = B.read_history(name, since)
    print(f"{name}: {len(records)} {spec.resource} record(s) created since {args.since}")
    if args.dry_run:
        for record in records:
            print(f"  {record['id']}  created {record.get('created_at') or '?'}")
        return EXIT_OK
    if records and not args.yes and not _confirm_backfill(name, len(records), _stack_name(args)):
        return EXIT_INVALID if not _interactive() else EXIT_FAILED
    try:
        with output.progress(len(records), f"backfill {name}") as show:
            result = B.start_runs(
                B.events_for(name, records),
                chunk=B.CHUNK,
                on_chunk=lambda progress, outcomes: _backfill_progress(progress, outcomes, show),
            )
    except KeyboardInterrupt:
        print(
            "\ninterrupted: run the same command again; what was started is seen before, the rest starts",
            file=sys.stderr,
        )
        return 130
    p = result.progress
    print(f"{p.started} run(s) started, {p.seen_before} record/workflow pair(s) seen before")
    if p.started:
        print("the runs go on in the stack: `clientary-xero runs list` shows where they are")
    if result.retry:
        print(
            f"{len(result.retry)} record(s) could not be started now (run the backfill again): "
            f"{', '.join(result.retry)}"
        )
        return EXIT_FAILED
    return EXIT_OK


def _interactive() -> bool:
    return bool(sys.stdin is not None and sys.stdin.isatty())


def _confirm_backfill(trigger: str, count: int, stack: str) -> bool:
    """Ask on the terminal before a backfill writes; refuse (with the way out) without one."""
    from clientary_xero.storage.workflows import WorkflowStore

    if not _interactive():
        print(
            f"error: the backfill would start runs for {count} record(s) on stack {stack!r}; stdin is not "
            "a terminal to confirm it: pass --yes to start them (or --dry-run to list them)",
            file=sys.stderr,
        )
        return False
    stored = WorkflowStore().for_trigger(trigger)
    enabled = [w.id for w in stored if w.enabled]
    names = (
        ", ".join(enabled) if enabled else f"none enabled ({len(stored)} disabled: their runs are SKIPPED)"
    )
    sys.stderr.write(
        f"start the workflows of {trigger} ({names}) for {count} record(s) on stack {stack!r}? "
        "Their steps write to Xero and Clientary. [y/N] "
    )
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline().strip().lower()
    except KeyboardInterrupt:
        answer = ""
    if answer in ("y", "yes"):
        return True
    print("nothing started", file=sys.stderr)
    return False


def _backfill_progress(progress: Any, outcomes: list[Any], show: Any) -> None:
    """Each record's decision on stdout (as before), the running totals on stderr (a bar on a
    terminal: local/output.py ``progress``)."""
    for outcome in outcomes:
        for start in outcome.starts:
            seen = "" if start.created else " (seen before)"
            detail = f": {start.detail}" if start.status in ("FAILED", "SKIPPED") and start.detail else ""
            print(f"  {outcome.event.record_id}  {start.workflow_id}  {start.status}{seen}{detail}")
        if outcome.retry is not None:
            print(f"  {outcome.event.record_id}  not started, try again: {outcome.retry}")
    sys.stdout.flush()
    show(progress, progress_line(progress))


def progress_line(progress: Any) -> str:
    eta = progress.eta_seconds
    tail = "done" if progress.handed >= progress.read else f"ETA {_duration(eta)}" if eta is not None else ""
    return (
        f"backfill: {progress.read} records read, {progress.handed} handed to the workflows, "
        f"{progress.started} run(s) started, {progress.seen_before} seen before, "
        f"{progress.rate:.1f} records/s, {tail}"
    )


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _rehearse_backfill(args: argparse.Namespace, trigger: str, since: Any) -> int:
    from clientary_xero.local.rehearsal import rehearsal_environment, rehearse, report
    from clientary_xero.workflows.loader import read_document
    from clientary_xero.workflows.validate import parse_workflow

    if not args.workflow or not args.seed:
        print(
            "error: --local needs --workflow FILE and --seed FILE (the records to backfill)", file=sys.stderr
        )
        return EXIT_INVALID
    try:
        document = read_document(args.workflow)
    except OSError as exc:
        return _cannot_read("the workflow", args.workflow, exc)
    workflow = parse_workflow(document)
    if workflow.trigger != trigger:
        print(
            f"error: {args.workflow}: the workflow's trigger is {workflow.trigger}, the backfill's {trigger}",
            file=sys.stderr,
        )
        return EXIT_INVALID
    try:
        seed = _read_seed(args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    with rehearsal_environment(record=args.record) as env:
        if not _load_seed(env, seed, args.seed):
            return EXIT_INVALID
        env.put_workflow({**workflow.to_document(), "enabled": True})
        print(
            f"rehearsing: backfill {trigger} since {args.since} → workflow {workflow.id} "
            "(sandboxes, simulated clock)"
        )
        try:
            rehearsal = rehearse(
                env,
                trigger,
                since,
                on_chunk=lambda p, _: print(progress_line(p), file=sys.stderr),
                max_seconds=args.max_wait,
            )
        except KeyboardInterrupt:
            print("\ninterrupted: a rehearsal keeps nothing (it lives in this process)", file=sys.stderr)
            return 130
        for line in report(rehearsal):
            print(line)
        state = env.state
        failed = [
            run
            for run_id in rehearsal.result.run_ids
            if (run := state.get_run(run_id)) and run.get("status") == "FAILED"
        ]
        for run in failed[:10]:
            print(f"  FAILED {run['record_id']}: {(run.get('error') or {}).get('message', '')}")
        if len(failed) > 10:
            print(f"  … and {len(failed) - 10} more (the same command with test-workflow shows one in full)")
    if args.record:
        print(f"recorded requests: {args.record}")
    return EXIT_FAILED if failed or rehearsal.result.retry else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
