"""Every example workflow says how to try it; that command, run as written from the repository
root, succeeds on the sandboxes. (What each example does is asserted in test_xero_chains.py and
test_clientary_*.py; this keeps the "Try it" lines and the shipped events honest.)"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from clientary_xero.local.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def try_it(path: Path) -> list[str]:
    """The example's ``# Try it:`` command (continued with trailing backslashes), as argv."""
    comment = "\n".join(line[1:] for line in path.read_text().splitlines() if line.startswith("#"))
    match = re.search(r"Try it:\s*((?:[^\n]*\\\n)*[^\n]*)", comment)
    assert match, f"{path.name} has no '# Try it:' line"
    return shlex.split(match.group(1).replace("\\\n", " "))


def test_every_example_has_a_try_it_line_whose_files_exist() -> None:
    assert EXAMPLES
    for path in EXAMPLES:
        argv = try_it(path)
        assert argv[:2] == ["clientary-xero", "test-workflow"], (path.name, argv)
        files = [argv[2]] + [argv[i + 1] for i, a in enumerate(argv) if a in ("--event", "--seed")]
        for name in files:
            assert (ROOT / name).is_file(), f"{path.name}: {name} is not shipped"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_try_it_command_succeeds(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = try_it(path)[1:]
    if "--record" in argv:  # keep the working tree clean
        argv[argv.index("--record") + 1] = str(tmp_path / "requests.jsonl")
    monkeypatch.chdir(ROOT)
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    statuses = re.findall(r"→\s+([A-Z]+)\s*$", out, flags=re.M)
    assert statuses and set(statuses) <= {"SUCCEEDED", "FILTERED"}, out
    assert "SUCCEEDED" in statuses, out


def test_a_seed_file_is_checked_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "seed.json"
    bad.write_text(json.dumps({"clientary": {"invoice": [{"id": 1}]}}))
    workflow = ROOT / "examples" / "clientary-invoice-deposit.yaml"
    event = ROOT / "examples" / "events" / "invoice.json"
    code = main(["test-workflow", str(workflow), "--event", str(event), "--seed", str(bad)])
    err = capsys.readouterr().err
    assert code != 0
    assert "clientary has no collection 'invoice' to seed" in err and "invoices" in err


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_validates_without_warnings(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The examples are what users copy: each create step carries a key a late retry can find it by.
    assert main(["workflows", "validate", str(path)]) == 0
    printed = capsys.readouterr()
    assert "WARNING" not in printed.out + printed.err
