"""Issue 8, point 6: the built layer ships compiled bytecode. The layer's Makefile (what `sam build`
runs for SharedLayer) copies the package without the source tree's caches and compiles everything
with unchecked-hash .pyc files; tests/check_built_layer.py (run by `make build` after sam build)
refuses a layer without them."""

from __future__ import annotations

import os
import py_compile
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.check_built_layer import main, problems

ROOT = Path(__file__).resolve().parents[1]


def _layer(tmp_path: Path, mode: py_compile.PycInvalidationMode | None) -> Path:
    python = tmp_path / "python"
    package = python / "clientary_xero"
    package.mkdir(parents=True)
    for name in ("__init__.py", "engine.py"):
        (package / name).write_text(f"NAME = {name!r}\n")
        if mode is not None:
            source = package / name
            target = package / "__pycache__" / f"{source.stem}.cpython-312.pyc"
            py_compile.compile(str(source), cfile=str(target), invalidation_mode=mode, doraise=True)
    return python


def test_a_layer_without_bytecode_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    python = _layer(tmp_path, None)
    assert main(["check", str(python)]) == 1
    assert "2 of 2 modules lack usable bytecode" in capsys.readouterr().err


def test_timestamp_bytecode_is_refused(tmp_path: Path) -> None:
    python = _layer(tmp_path, py_compile.PycInvalidationMode.TIMESTAMP)
    count, found = problems(python)
    assert count == 2 and all("a timestamp .pyc, not unchecked-hash" in f for f in found) and len(found) == 2


@pytest.mark.skipif(sys.version_info[:2] != (3, 12), reason="compares Python 3.12's source hash")
def test_unchecked_hash_bytecode_of_the_source_is_accepted_and_a_stale_one_is_not(tmp_path: Path) -> None:
    python = _layer(tmp_path, py_compile.PycInvalidationMode.UNCHECKED_HASH)
    assert problems(python) == (2, [])
    (python / "clientary_xero" / "engine.py").write_text("NAME = 'edited after compiling'\n")
    assert problems(python) == (2, ["clientary_xero/engine.py: its .pyc was compiled from another source"])


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.skipif(sys.version_info[:2] != (3, 12), reason="the layer is compiled by Python 3.12")
def test_the_layer_makefile_ships_the_package_compiled_and_none_of_the_source_trees_caches(
    tmp_path: Path,
) -> None:
    # Given a Python that skips the dependencies' download (pip needs PyPI; sam build runs it)
    shim = tmp_path / "python3.12"
    shim.write_text(
        f'#!/bin/sh\nif [ "$1 $2" = "-m pip" ]; then exit 0; fi\nexec {sys.executable} "$@"\n',
        encoding="utf-8",
    )
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    # … and a source tree holding a stale timestamp .pyc (as tests leave them)
    stale = ROOT / "shared" / "clientary_xero" / "__pycache__" / "errors.cpython-312.pyc"
    py_compile.compile(str(ROOT / "shared" / "clientary_xero" / "errors.py"), cfile=str(stale))
    artifacts = tmp_path / "artifacts"

    # When the layer's build target runs as sam build runs it
    make = shutil.which("make")
    assert make is not None
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            make,
            "--no-print-directory",
            "-s",
            "-C",
            str(ROOT / "shared"),
            "build-SharedLayer",
            f"PYTHON={shim}",
        ],
        env={**os.environ, "ARTIFACTS_DIR": str(artifacts)},
        check=True,
        capture_output=True,
    )

    # Then every module of the package is there, with an unchecked-hash .pyc of its own source
    count, found = problems(artifacts / "python")
    sources = [p for p in (ROOT / "shared" / "clientary_xero").rglob("*.py") if "__pycache__" not in p.parts]
    assert (count, found) == (len(sources), [])
    assert not (artifacts / "python" / "Makefile").exists()
