"""Contract checks against Xero's own OpenAPI descriptions.

The specs live in the team folder beside the repository (``../shared/xero-openapi``) and are never
copied into it. A user's clone has no team folder: the checks skip there, but fail under CI.

* ``validate_requests(records)``: recorded requests (``RecordingTransport`` lines) against the
  operations, parameters, required headers and body schemas — plus body fields the spec does not
  declare, which Xero ignores silently (the same rule as tools/validate_xero_requests.py).
* ``validate_response(method, url, status, body)``: an answer against the operation's response
  schema (used on the sandbox, so the fake answers like the real thing).

Parsed specs are cached for the whole test session.
"""

from __future__ import annotations

import json
import os
import warnings
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "xero-openapi"
_SPECS = (  # path prefix on api.xero.com → spec file
    ("/api.xro/2.0", "xero_accounting.yaml"),
    ("/projects.xro/2.0", "xero-projects.yaml"),
    ("", "xero-identity.yaml"),
)


def spec_dir() -> Path:
    if not SPEC_DIR.is_dir():
        message = f"{SPEC_DIR} (../shared/xero-openapi) not found (a user's clone has no team folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SPEC_DIR


@cache
def _spec(name: str) -> tuple[dict[str, Any], Any]:
    from openapi_core import Config, OpenAPI

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load((spec_dir() / name).read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (safe loader)
    # Xero's spec has string defaults on booleans: skip validating the spec itself.
    return raw, OpenAPI.from_dict(raw, config=Config(spec_validator_cls=None))


def _spec_for(path: str) -> tuple[dict[str, Any], Any, str]:
    for prefix, name in _SPECS:
        if path.startswith(prefix):
            raw, api = _spec(name)
            return raw, api, prefix
    raise AssertionError("unreachable")  # pragma: no cover


class _Request:
    """The request protocol openapi-core reads."""

    def __init__(self, url: str, method: str, headers: dict[str, str], body: Any) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        parts = urlsplit(url)
        _, _, prefix = _spec_for(parts.path)
        path = parts.path
        if prefix == "" and path.lower().startswith("/connections"):
            path = "/Connections" + path[len("/connections") :]
        self.host_url = f"{parts.scheme}://{parts.netloc}{prefix}"
        self.path = path
        self.method = method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(parts.query, keep_blank_values=True)),
            header=Headers(headers),
            cookie=ImmutableMultiDict(),
        )
        self.body = None if body is None else json.dumps(body).encode()
        self.content_type = "application/json" if body is not None else ""

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path


class _Response:
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None) -> None:
        from werkzeug.datastructures import Headers

        self.status_code = status
        self.data = None if body is None else json.dumps(body).encode()
        self.content_type = "application/json" if body is not None else ""
        self.headers = Headers(headers or {})


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def unknown_fields(doc: dict[str, Any], schema: Any, value: Any, where: str, out: list[str]) -> None:
    """Object keys the schema does not declare (the spec allows them; Xero drops them silently)."""
    schema = _resolve(doc, schema)
    if not isinstance(schema, dict):
        return
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(_resolve(doc, part).get("properties", {}))
        schema = {"properties": merged}
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is None:
            return
        for key, item in value.items():
            if key not in props:
                out.append(f"{where}.{key}: not a field of the schema")
            else:
                unknown_fields(doc, props[key], item, f"{where}.{key}", out)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            unknown_fields(doc, schema["items"], item, f"{where}[{i}]", out)


def _body_schema(doc: dict[str, Any], prefix: str, path: str, method: str) -> Any:
    relative = path[len(prefix) :] if prefix else path
    wanted = relative.strip("/").split("/")
    for template, item in doc.get("paths", {}).items():
        parts = template.strip("/").split("/")
        if len(parts) != len(wanted):
            continue
        if all(t.startswith("{") or t.lower() == p.lower() for t, p in zip(parts, wanted, strict=True)):
            operation = item.get(method.lower())
            if not operation or "requestBody" not in operation:
                continue
            body = _resolve(doc, operation["requestBody"])
            return body.get("content", {}).get("application/json", {}).get("schema")
    return None


def _problem_text(exc: Exception) -> str:
    detail = exc.__cause__ or exc
    errors = getattr(detail, "schema_errors", None)
    text = "; ".join(str(e.message) for e in errors[:3]) if errors else str(detail)
    return f"{type(exc).__name__}: {text[:300]}"


def _shape_matches(template: str, path: str) -> bool:
    parts, wanted = template.strip("/").split("/"), path.strip("/").split("/")
    return len(parts) == len(wanted) and all(
        t.startswith("{") or t.lower() == p.lower() for t, p in zip(parts, wanted, strict=True)
    )


@cache
def _variant(name: str, keep: str) -> Any:
    """The spec with ``keep`` as the only template of its shape.

    Xero's spec has sibling templates that differ only in the parameter's name and format, e.g.
    ``/PurchaseOrders/{PurchaseOrderID}`` (uuid) and ``/PurchaseOrders/{PurchaseOrderNumber}``;
    openapi-core always picks one of them, so a request for the other is checked against it.
    """
    from openapi_core import Config, OpenAPI

    raw, _ = _spec(name)
    shape = keep.replace("{", "").replace("}", "")
    paths = {t: item for t, item in raw["paths"].items() if t == keep or not _shape_matches(t, shape)}
    return OpenAPI.from_dict({**raw, "paths": paths}, config=Config(spec_validator_cls=None))


def _validates_with_a_sibling_template(record: dict[str, Any], headers: dict[str, str], body: Any) -> bool:
    path = urlsplit(record["url"]).path
    prefix, name = next((p, n) for p, n in _SPECS if path.startswith(p))
    relative = path[len(prefix) :] if prefix else path
    raw, _ = _spec(name)
    siblings = [t for t in raw["paths"] if _shape_matches(t, relative)]
    if len(siblings) < 2:
        return False
    for template in siblings:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _variant(name, template).validate_request(
                    _Request(record["url"], record["method"], headers, body)
                )
        except Exception:  # noqa: S112 - this sibling does not fit either; try the next
            continue
        return True
    return False


def validate_requests(records: list[dict[str, Any]]) -> list[str]:
    """Problems of the recorded api.xero.com requests (an empty list when all conform)."""
    spec_dir()
    problems: list[str] = []
    for number, record in enumerate(records, 1):
        parts = urlsplit(record["url"])
        if parts.hostname != "api.xero.com":
            continue
        doc, api, prefix = _spec_for(parts.path)
        headers = {k: str(v) for k, v in (record.get("headers") or {}).items()}
        headers.setdefault("Authorization", "Bearer recorded-without-credentials")
        body = record.get("json")
        label = f"request {number}: {record['method']} {parts.path}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                api.validate_request(_Request(record["url"], record["method"], headers, body))
        except Exception as exc:
            if not _validates_with_a_sibling_template(record, headers, body):
                problems.append(f"{label}: {_problem_text(exc)}")
                continue
        if body is not None:
            extra: list[str] = []
            schema = _body_schema(doc, prefix, parts.path, record["method"])
            if schema is not None:
                unknown_fields(doc, schema, body, "body", extra)
            problems.extend(f"{label}: {e}" for e in extra)
    return problems


def validate_response(
    method: str,
    url: str,
    status: int,
    body: Any,
    *,
    request_body: Any = None,
    headers: dict[str, str] | None = None,
) -> list[str]:
    """Problems of one answer against the operation's response schema."""
    spec_dir()
    _, api, _ = _spec_for(urlsplit(url).path)
    request = _Request(url, method, {"xero-tenant-id": "t", "Authorization": "Bearer x"}, request_body)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            api.validate_response(request, _Response(status, body, headers))
    except Exception as exc:
        return [f"{method} {urlsplit(url).path} → {status}: {_problem_text(exc)}"]
    return []
