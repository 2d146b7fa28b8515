"""Validation stamps: a saved workflow that this code has checked is not checked again on every cold start.

Checking a definition in full (``workflows.validate.parse_workflow``) builds the pydantic shape
models and every action input model its steps use: most of a trigger's first-event CPU after boto3
(~100 ms of pydantic's import and first models, on 3.12). A workflow saved by ``workflows put``
(or by a trigger that checked it: ``storage.workflows``) carries ``validated``, a SHA-256 of

- the code that checks definitions: the sources of ``workflows/`` and ``connectors/`` (the triggers,
  the shape, the actions and their input models) and ``errors.py``, and the versions of the
  libraries the check runs on (pydantic, pydantic-core, jsonata-python, google-re2); and
- the definition itself, as it reads back from the table (canonical JSON).

A load whose stamp matches reads the definition as checked (``Workflow.from_document``) and imports
no pydantic. Anything else is checked in full, as before: an edit in the console (the definition no
longer matches its stamp), an item written by hand, or a version whose checking code or libraries
differ (a ``sam deploy`` that changed them; a CLI whose sources or libraries are not the stack's).
So an invalid edit is still refused on its runs, and a stamp cannot vouch for a definition it was
not computed from, whoever writes it and whenever: it binds the two together, it is not a secret or
a signature (whoever can edit the table can edit the workflows anyway).
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

ATTRIBUTE = "validated"
# The code whose behaviour decides whether a definition is valid, relative to the package.
_CHECKING_CODE = ("workflows", "connectors", "errors.py")
# The libraries it runs on: import name → the distribution's ``*.dist-info`` prefix.
_LIBRARIES = {
    "pydantic": "pydantic-",
    "pydantic_core": "pydantic_core-",
    "jsonata": "jsonata_python-",
    "re2": "google_re2-",
}
_code: str | None = None
_code_lock = threading.Lock()


def code_digest() -> str:
    """SHA-256 of the checking code's sources, computed once per process (~2 ms: 40 files, 440 KB)."""
    global _code
    if _code is None:
        with _code_lock:
            if _code is None:
                sources = _digest_sources(Path(__file__).resolve().parent.parent)
                _code = hashlib.sha256(f"{sources}\0{_library_versions()}".encode()).hexdigest()
    return _code


def _library_versions() -> str:
    """``pydantic-2.14.4.dist-info,…``: each library's installed distribution, found beside it
    without importing it (a layer and a virtualenv both keep ``*.dist-info`` next to the package)."""
    import importlib.util

    found = []
    for name, prefix in _LIBRARIES.items():
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            found.append(f"{name}:absent")
            continue
        origin = Path(spec.origin)
        site = origin.parent.parent if spec.submodule_search_locations else origin.parent
        infos = sorted(p.name for p in site.glob(f"{prefix}*.dist-info"))
        found.append(",".join(infos) or f"{name}:unknown")
    return ";".join(found)


def _digest_sources(package: Path) -> str:
    digest = hashlib.sha256()
    files: list[Path] = []
    for part in _CHECKING_CODE:
        path = package / part
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else []
    if not files:  # a layer without sources: nothing can be vouched for, everything is checked
        import secrets

        return "no-sources-" + secrets.token_hex(16)
    for file in files:
        digest.update(file.relative_to(package).as_posix().encode())
        digest.update(b"\0")
        digest.update(file.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def stamp(document: dict[str, Any]) -> str:
    """The stamp of a checked ``document`` (as it reads back from the table: ``loader.from_item``)."""
    digest = hashlib.sha256(code_digest().encode())
    digest.update(b"\0")
    digest.update(json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    return "sha256:" + digest.hexdigest()


def matches(document: dict[str, Any], given: Any) -> bool:
    """Whether ``given`` (an item's ``validated``) is this code's stamp of ``document``."""
    if not isinstance(given, str) or not given.startswith("sha256:"):
        return False
    try:
        return stamp(document) == given
    except (TypeError, ValueError):  # a value JSON cannot write: never stamped by us
        return False
