"""Checks that a built layer ships compiled bytecode Lambda can use as it is: every ``.py`` under
``python/`` has its ``__pycache__/<name>.cpython-312.pyc``, compiled with
``--invalidation-mode unchecked-hash`` and (when run by Python 3.12) from that very source.

``make build`` runs it after ``sam build``:

    python3.12 tests/check_built_layer.py .aws-sam/build/SharedLayer/python
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

CACHE_TAG = "cpython-312"  # the Lambda runtime's (python3.12), whoever runs the check
HASH_BASED, CHECK_SOURCE = 0b01, 0b10
PACKAGE = "clientary_xero"


def problems(python_dir: Path) -> tuple[int, list[str]]:
    """(modules checked, what is wrong) for the layer's ``python/`` directory."""
    if not (python_dir / PACKAGE / "__init__.py").is_file():
        return 0, [f"{python_dir}: no {PACKAGE} package (is this a built layer's python/ directory?)"]
    same_python = sys.version_info[:2] == (3, 12)
    sources = sorted(p for p in python_dir.rglob("*.py") if "__pycache__" not in p.parts)
    found: list[str] = []
    for source in sources:
        where = source.relative_to(python_dir)
        pyc = source.parent / "__pycache__" / f"{source.stem}.{CACHE_TAG}.pyc"
        if not pyc.is_file():
            found.append(f"{where}: no __pycache__/{pyc.name}")
            continue
        header = pyc.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        if flags != HASH_BASED:
            mode = "timestamp" if not flags & HASH_BASED else "checked-hash"
            found.append(f"{where}: a {mode} .pyc, not unchecked-hash")
        elif same_python and header[:4] != importlib.util.MAGIC_NUMBER:
            found.append(f"{where}: compiled by another Python than 3.12")
        elif same_python and header[8:16] != importlib.util.source_hash(source.read_bytes()):
            found.append(f"{where}: its .pyc was compiled from another source")
    return len(sources), found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} LAYER_PYTHON_DIR", file=sys.stderr)
        return 2
    python_dir = Path(argv[1])
    count, found = problems(python_dir)
    if found:
        print(f"{python_dir}: {len(found)} of {count} modules lack usable bytecode:", file=sys.stderr)
        for line in found[:20]:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"{python_dir}: {count} modules, each with an unchecked-hash {CACHE_TAG} .pyc")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
