"""Request dispatch: paths (``/api/v2/<resource>[/<id>]``, sub-collections such as
``/invoices/:id/payments``), JSON negotiation, wrapper keys, and list envelopes (paging,
``updated_since``, a resource's list hook)."""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qs

import httpx

from clientary_xero.local.clientary_sandbox.fields import _parse_day
from clientary_xero.local.clientary_sandbox.rendering import _json_response
from clientary_xero.local.clientary_sandbox.spec import ResourceSpec
from clientary_xero.local.clientary_sandbox.state import SandboxState

MAX_PAGE_SIZE = 100
_PATH_RE = re.compile(r"^/api/v2/(?P<resource>[a-z_]+)(?:/(?P<id>[^/]+))?/?$")
# Sub-collections: POST /invoices/:id/payments, GET|POST /projects/:id/hours.
_NESTED_RE = re.compile(r"^/api/v2/(?P<parent>[a-z_]+)/(?P<pid>[^/]+)/(?P<child>[a-z_]+)/?$")


def _json_body(request: httpx.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _positive_int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() and int(value) > 0 else default


class RoutingMixin(SandboxState):
    """From an ``httpx.Request`` to the resource's list, read, create or update."""

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        wants_json = path.endswith(".json") or "application/json" in request.headers.get("accept", "")
        path = path.removesuffix(".json")
        if not wants_json:
            # Clientary answers HTML unless asked for JSON (docs: Accept header or .json suffix).
            return httpx.Response(406, content=b"Not Acceptable", headers={"Content-Type": "text/plain"})
        nested = _NESTED_RE.match(path)
        if nested:
            return self._route_nested(request, nested["parent"], nested["pid"], nested["child"])
        if request.method == "POST" and path.rstrip("/") in ("/api/v2/task", "/api/v2/tasks"):
            if path.rstrip("/") != "/api/v2" + self.task_create_path:
                return _json_response(404, {"error": "Not Found"})
            path = "/api/v2/tasks"
        match = _PATH_RE.match(path)
        if not match or match["resource"] not in self.resources:
            return _json_response(404, {"error": "Not Found"})
        spec = self.resources[match["resource"]]
        record_id = match["id"]
        if record_id is not None and not record_id.isdigit():
            return _json_response(404, {"error": "Not Found"})
        method = request.method
        if method == "GET" and record_id is None:
            return self._list(spec, request)
        if method == "GET":
            record = self._records[spec.name].get(int(record_id or 0))
            if record is None or not spec.get_one:
                return _json_response(404, {"error": "Not Found"})
            return _json_response(200, self._render(spec.name, record))
        if method in ("POST", "PUT") and not spec.read_only:
            body = _json_body(request)
            if body is None:
                return _json_response(400, {"error": "Invalid JSON"})
            fields = self._unwrap(spec, body)
            if method == "POST" and record_id is None and spec.parent is None:
                # Status of a create is undocumented; Rails' respond_with gives 201 + the record.
                return _json_response(201, self._create(spec, fields))
            if method == "PUT" and record_id is not None:
                if int(record_id) not in self._records[spec.name]:
                    return _json_response(404, {"error": "Not Found"})
                if spec.parent_key:
                    fields.pop(spec.parent_key, None)  # a record does not move to another parent
                return _json_response(200, self._update(spec, int(record_id), fields))
        return _json_response(405, {"error": "Method Not Allowed"})

    def _route_nested(self, request: httpx.Request, parent: str, pid: str, child: str) -> httpx.Response:
        spec = self.resources.get(child)
        if spec is None or spec.parent != parent or not pid.isdigit() or spec.parent_key is None:
            return _json_response(404, {"error": "Not Found"})
        if int(pid) not in self._records[parent]:
            return _json_response(404, {"error": "Not Found"})
        if request.method == "GET":
            return self._list(spec, request, parent_id=int(pid))
        if request.method == "POST":
            body = _json_body(request)
            if body is None:
                return _json_response(400, {"error": "Invalid JSON"})
            fields = {**self._unwrap(spec, body), spec.parent_key: int(pid)}
            return _json_response(201, self._create(spec, fields))
        return _json_response(405, {"error": "Method Not Allowed"})

    @staticmethod
    def _unwrap(spec: ResourceSpec, body: dict[str, Any]) -> dict[str, Any]:
        """Fields under the wrapper key; without it, the top-level attributes (Rails wrap_parameters,
        which is why unwrapped bodies work too). Unknown attributes are dropped silently."""
        wrapped = body.get(spec.wrapper)
        source: dict[str, Any] = wrapped if isinstance(wrapped, dict) else body
        return {k: v for k, v in source.items() if k in spec.attributes}

    # ------------------------------------------------------------------ list
    def _list(
        self, spec: ResourceSpec, request: httpx.Request, parent_id: int | None = None
    ) -> httpx.Response:
        query = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
        records = self._sorted(spec, query.get("sort"))
        if parent_id is not None and spec.parent_key:
            records = [r for r in records if r.get(spec.parent_key) == parent_id]
        if spec.updated_since and query.get("updated_since"):
            since = _parse_day(query["updated_since"])
            if since is None:
                return _json_response(400, {"error": "updated_since must be YYYY-MM-DD"})
            # Date-granular and inclusive here; Clientary documents neither the bound nor the zone.
            records = [r for r in records if r["_updated"].astimezone(self.tz).date() >= since]
        extra: dict[str, Any] = {}
        if spec.list_hook is not None:
            records, extra = spec.list_hook(self, records, query)
        rendered_key = spec.name
        if not spec.paged:
            return _json_response(200, {**extra, rendered_key: [self._render(spec.name, r) for r in records]})
        page = _positive_int(query.get("page"), 1)
        page_size = min(_positive_int(query.get("page_size"), spec.default_page_size), MAX_PAGE_SIZE)
        total = len(records)
        chunk = records[(page - 1) * page_size : page * page_size]
        return _json_response(
            200,
            {
                "page_count": math.ceil(total / page_size),
                "page_size": page_size,
                "total_count": total,
                **extra,
                rendered_key: [self._render(spec.name, r) for r in chunk],
            },
        )
