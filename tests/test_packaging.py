"""The Lambda layer installs what the package declares: shared/requirements.txt (what `sam build`
puts into the layer) and [project.dependencies] in pyproject.toml (what `make venv`, the tests and
the CLI install) name the same packages with the same version bounds. boto3 is the one exception:
the python3.12 Lambda runtime ships it, so the layer leaves it out."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_PROVIDED = {"boto3"}


def _by_name(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", text)
        assert match, f"cannot read the requirement {line!r}"
        pins[match[1].lower().replace("_", "-")] = match[3].replace(" ", "")
    return pins


def test_the_layer_requirements_match_the_package_dependencies() -> None:
    layer = _by_name((ROOT / "shared" / "requirements.txt").read_text().splitlines())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    package = {name: spec for name, spec in _by_name(project).items() if name not in RUNTIME_PROVIDED}
    assert layer == package


def test_the_layer_leaves_out_what_the_runtime_provides() -> None:
    layer = _by_name((ROOT / "shared" / "requirements.txt").read_text().splitlines())
    assert not RUNTIME_PROVIDED & set(layer)
    # and what only tests or the local runner need stays out of the deployed layer
    assert not {"moto", "pytest", "openapi-core", "ruff", "mypy"} & set(layer)
