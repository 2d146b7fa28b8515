"""Issue 8, point 6: each handler imports only what its first event needs. The HTTP handlers read
the request id from the event as it is: Powertools' event classes (its ``data_classes`` package,
~40 modules) are not imported for one field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clientary_xero.usecases.http_request import request_id

ROOT = Path(__file__).resolve().parents[1]
HEAVY = "aws_lambda_powertools.utilities.data_classes"


@pytest.mark.parametrize("function", ["clientary_trigger", "xero_connect", "xero_webhook"])
def test_an_http_handler_imports_no_powertools_event_classes(function: str) -> None:
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import app; "
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"
    )
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", code, str(ROOT / "shared"), str(ROOT / "functions" / function)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_the_request_id_is_read_from_the_event_and_a_malformed_context_has_none() -> None:
    assert request_id({"requestContext": {"requestId": "VwXy1gAAoAMEcQx="}}) == "VwXy1gAAoAMEcQx="
    assert request_id({"requestContext": "not an object"}) is None
    assert request_id({}) is None
