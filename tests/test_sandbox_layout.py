"""The local sandboxes are packages of small rooms: each module of a package under
``clientary_xero/local/`` holds one concern, says so in its docstring and stays under ~600 lines
(STYLE.md, "A file is a room"); the Xero sandbox is such a package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parents[1] / "shared" / "clientary_xero" / "local"
MAX_LINES = 650
PACKAGES = sorted(p.parent for p in LOCAL.glob("*/__init__.py"))
MODULES = [m for package in PACKAGES for m in sorted(package.glob("*.py"))]


def test_the_xero_sandbox_is_a_package() -> None:
    assert LOCAL / "xero_sandbox" in PACKAGES
    assert not (LOCAL / "xero_sandbox.py").exists()


@pytest.mark.parametrize("module", MODULES, ids=lambda m: f"{m.parent.name}/{m.name}")
def test_a_sandbox_module_is_small_and_says_what_it_holds(module: Path) -> None:
    text = module.read_text()
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{module.relative_to(LOCAL)} has {lines} lines (at most {MAX_LINES})"
    assert ast.get_docstring(ast.parse(text)), f"{module.relative_to(LOCAL)} has no module docstring"
