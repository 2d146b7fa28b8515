"""The operating commands work where the stack is: the region of --region, else AWS_REGION, else the
AWS profile's (as the AWS CLI picks it), for every client; --stack wins over the environment; an
AWS error is one line, never a traceback; --version, --json, --limit.

The region tests run the CLI against a moto *server* on loopback (``ThreadedMotoServer``): its
regions are separate like AWS's, and the CLI reaches it over HTTP with its own clients, as it
would reach AWS (AWS_ENDPOINT_URL). The stack lives in eu-west-1, named only by a profile.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.local.cli import main

REGION = "eu-west-1"
STACK = "ops-stack"


@pytest.fixture
def restore_environ() -> Iterator[None]:
    """The CLI sets AWS_REGION, table names etc. in its process; give the next test its own."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _profile_only(tmp_path: Path, endpoint: str, region: str | None = REGION) -> None:
    """An AWS config with one profile (its region, if any) and nothing else that names a region."""
    import boto3

    boto3.DEFAULT_SESSION = None  # a fresh process's: no credentials resolved by an earlier test
    for key in list(os.environ):
        if key.startswith("AWS_") or key in ("WORKFLOWS_TABLE", "STATE_TABLE", "CLIENTARY_XERO_STACK"):
            del os.environ[key]
    for key in ("XERO_QUEUE_URL", "CLIENTARY_QUEUE_URL", "PAYLOAD_BUCKET", "CLIENTARY_SECRET_ID"):
        os.environ.pop(key, None)
    config = tmp_path / "config"
    config.write_text("[profile ops]\n" + (f"region = {region}\n" if region else "") + "output = json\n")
    credentials = tmp_path / "credentials"
    credentials.write_text("[ops]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    os.environ.update(
        {
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_PROFILE": "ops",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )


def _deploy(endpoint: str, prefix: str) -> dict[str, Any]:
    """The stack's tables, queues and secrets in eu-west-1 of the server, and a stack whose outputs
    name them (the real template's output keys)."""
    import boto3

    from clientary_xero.local.resources import create_resources

    r = create_resources(prefix=prefix, region=REGION)
    outputs = {
        "WorkflowsTableName": r.workflows_table,
        "StateTableName": r.state_table,
        "XeroActionQueueUrl": r.xero_queue_url,
        "ClientaryActionQueueUrl": r.clientary_queue_url,
        "PayloadBucketName": r.payload_bucket,
    }
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=endpoint)
    cfn.create_stack(
        StackName=STACK if prefix == "cx" else f"{prefix}-stack", TemplateBody=json.dumps(template)
    )
    return {"resources": r, "outputs": outputs}


def _put_run(state_table: str, run_id: str = "r-eu-1") -> None:
    from clientary_xero.settings import reset_settings
    from clientary_xero.storage.aws import reset_clients
    from clientary_xero.storage.state import StateStore

    os.environ["AWS_REGION"] = REGION  # for this write only: the CLI must find the region itself
    reset_settings()
    reset_clients()
    StateStore(table_name=state_table).create_run(
        {
            "run_id": run_id,
            "workflow_id": "bills",
            "trigger": "clientary.new_invoice",
            "record_id": "77",
            "status": "SUCCEEDED",
            "created_at": "2026-12-01T10:00:00.000Z",
        }
    )
    del os.environ["AWS_REGION"]
    reset_settings()
    reset_clients()


def test_runs_list_finds_the_stack_in_the_profiles_region(
    restore_environ: None, moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a profile whose region is eu-west-1, no AWS_REGION / AWS_DEFAULT_REGION, the stack there
    _profile_only(tmp_path, moto_server)
    deployed = _deploy(moto_server, "cx")
    _put_run(deployed["resources"].state_table)
    # When the runs are listed by stack name alone
    assert main(["runs", "list", "--stack", STACK]) == 0
    # Then the stack lookup and the table read both went to eu-west-1
    out = capsys.readouterr()
    assert "r-eu-1" in out.out and "SUCCEEDED" in out.out, out.err
    assert main(["runs", "list", "--stack", STACK, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in runs] == ["r-eu-1"]


def test_region_flag_wins_over_the_profile_and_a_wrong_region_is_one_line(
    restore_environ: None, moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _profile_only(tmp_path, moto_server)
    _deploy(moto_server, "cy")
    # --region names a region without the stack: one line naming the stack and the region
    assert main(["runs", "list", "--stack", "cy-stack", "--region", "us-west-2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: there is no stack 'cy-stack' in us-west-2")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    # the profile's region finds it
    assert main(["runs", "list", "--stack", "cy-stack"]) == 0
    assert "no runs" in capsys.readouterr().out


def test_a_table_missing_in_the_region_is_one_line_naming_the_table(
    restore_environ: None, moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given environment variables naming tables that are not in the profile's region
    _profile_only(tmp_path, moto_server)
    os.environ["WORKFLOWS_TABLE"] = "gone-workflows"
    os.environ["STATE_TABLE"] = "gone-state"
    assert main(["runs", "list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "table 'gone-state' in eu-west-1" in err and "ResourceNotFoundException" in err
    assert "check --region" in err


def test_stack_wins_over_the_table_variables(
    restore_environ: None, moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _profile_only(tmp_path, moto_server)
    deployed = _deploy(moto_server, "cz")
    _put_run(deployed["resources"].state_table, "r-cz")
    os.environ["WORKFLOWS_TABLE"] = "other-workflows"
    os.environ["STATE_TABLE"] = "other-state"
    assert main(["runs", "list", "--stack", "cz-stack"]) == 0
    assert "r-cz" in capsys.readouterr().out


def test_no_region_anywhere_is_one_line_saying_where_to_set_one(
    restore_environ: None, moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _profile_only(tmp_path, moto_server, region=None)
    assert main(["runs", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no AWS region: pass --region, set AWS_REGION")


def test_no_credentials_is_one_line(
    restore_environ: None, moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _profile_only(tmp_path, moto_server)
    (tmp_path / "credentials").write_text("")
    assert main(["runs", "list", "--stack", STACK]) == 1
    err = capsys.readouterr().err
    assert "no usable AWS credentials for stack 'ops-stack' in eu-west-1" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    version = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"clientary-xero {version}"


@pytest.mark.parametrize("limit", ["0", "-3", "ten"])
def test_limit_must_be_a_positive_whole_number(limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["runs", "list", "--limit", limit])
    assert exit_.value.code == 2
    assert f"argument --limit: must be a positive whole number, not '{limit}'" in capsys.readouterr().err


def test_json_output_of_runs_and_workflows(
    aws: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.storage.state import StateStore

    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        "id: bills\ntrigger: clientary.new_invoice\nsteps:\n"
        "  - id: supplier\n    action: xero.create_or_update_contact\n    input: { Name: x }\n"
    )
    assert main(["workflows", "put", str(workflow)]) == 0
    StateStore().create_run(
        {
            "run_id": "r-json",
            "workflow_id": "bills",
            "trigger": "clientary.new_invoice",
            "record_id": "5",
            "status": "FAILED",
            "created_at": "2026-12-01T10:00:00.000Z",
            "error": {"message": "Xero said [no]"},
        }
    )
    capsys.readouterr()
    assert main(["workflows", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"id": "bills", "trigger": "clientary.new_invoice", "enabled": True, "valid": True, "problems": []}
    ]
    assert main(["runs", "show", "r-json", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["run"]["status"] == "FAILED" and shown["run"]["error"]["message"] == "Xero said [no]"
    assert shown["steps"] == []
    # the table shows a message's brackets as they are (not read as markup)
    assert main(["runs", "list"]) == 0
    assert "Xero said [no]" in capsys.readouterr().out


class _Terminal:
    """A stream that says it is a terminal (what Rich draws a bar on)."""

    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return self.buffer.write(text)

    def flush(self) -> None:
        pass


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    import io
    from types import SimpleNamespace

    from clientary_xero.local.output import progress

    terminal = _Terminal()
    with progress(40, "backfill clientary.new_invoice", stream=terminal) as show:  # type: ignore[arg-type]
        show(SimpleNamespace(handed=40, started=38), "line for a pipe")
    drawn = terminal.buffer.getvalue()
    assert "40/40" in drawn and "38 started" in drawn and "line for a pipe" not in drawn
    pipe = io.StringIO()
    with progress(40, "backfill", stream=pipe) as show:
        show(SimpleNamespace(handed=40, started=38), "line for a pipe")
    assert pipe.getvalue() == "line for a pipe\n"
