"""The SAM transform (aws-sam-translator) of an expanded template, as CloudFormation applies it.

``translate(template)`` takes a template whose AWS::LanguageExtensions are already applied
(tests/cfn_template.py) and whose CodeUri/ContentUri are S3 locations (what ``sam package``
makes), and returns plain CloudFormation.

The translator lives in the SAM CLI's virtualenv (.sam-venv, ``make sam-venv``), not in the
development one: aws-sam-translator pins pydantic to one minor release (``~=2.13.3`` in 1.115),
which would hold the layer's own pydantic back in the tests. So this file is also a script that
the SAM virtualenv's Python runs (JSON on stdin, JSON on stdout); it imports nothing of ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"


class TranslatorMissing(RuntimeError):
    """Neither this interpreter nor a SAM virtualenv has aws-sam-translator."""


def _translate_here(template: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    # No managed policy names in the template (policy templates and inline statements only): the
    # translator never needs IAM's list of AWS managed policies.
    translator = Translator(managed_policy_map={}, sam_parser=Parser())
    return translator.translate(sam_template=template, parameter_values={}, get_managed_policy_map=dict)


def sam_python() -> Path | None:
    """The SAM virtualenv's Python: the repository's .sam-venv, or $SAM_VENV."""
    for venv in (ROOT / ".sam-venv", Path(os.environ.get("SAM_VENV", "/nonexistent"))):
        if (venv / "bin" / "python").exists():
            return venv / "bin" / "python"
    return None


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` after the AWS::Serverless-2016-10-31 transform."""
    try:
        import samtranslator  # noqa: F401
    except ImportError:
        pass
    else:
        return _translate_here(template)
    python = sam_python()
    if python is None:
        raise TranslatorMissing(
            "aws-sam-translator is not installed: `make sam-venv` installs it into .sam-venv"
        )
    result = subprocess.run(  # noqa: S603 - a fixed argv of our own paths, no shell
        [str(python), str(Path(__file__).resolve())],
        input=json.dumps(template),
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": REGION},
    )
    if result.returncode != 0:
        raise RuntimeError(f"the SAM transform failed: {result.stderr.strip()[-2000:]}")
    translated: dict[str, Any] = json.loads(result.stdout)
    return translated


if __name__ == "__main__":
    json.dump(_translate_here(json.load(sys.stdin)), sys.stdout)
