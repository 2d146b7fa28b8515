"""The Projects API (``/projects.xro/2.0/projects``): list (contact, states, ids, page) and get
projects, and create one (a name, an existing contact, an estimate, a deadline), answering with
that API's own error shape (``message`` and ``modelState``).
"""

from __future__ import annotations

import copy
import json
import math
import uuid
from datetime import datetime
from typing import Any

import httpx

from clientary_xero.local.xero_sandbox.base import _SandboxBase
from clientary_xero.local.xero_sandbox.model import (
    _PROJECTS_PREFIX,
    _Tenant,
)
from clientary_xero.local.xero_sandbox.responses import (
    _response,
)


class ProjectsMixin(_SandboxBase):
    """The Projects API."""

    def _projects_api(self, request: httpx.Request, tenant: _Tenant) -> httpx.Response:
        parts = [p.lower() for p in request.url.path[len(_PROJECTS_PREFIX) :].split("/") if p]
        params = {k.lower(): v for k, v in request.url.params.multi_items()}
        if not parts or parts[0] != "projects" or len(parts) > 2:
            return _response(404, {"message": "The resource you're looking for cannot be found"})
        if len(parts) == 2:
            found = tenant.projects.get(parts[1])
            if request.method != "GET":
                return _response(405, {"message": "Method not allowed"})
            return _response(200, found) if found else _response(404, {"message": "Project not found"})
        if request.method == "GET":
            records = list(tenant.projects.values())
            if params.get("contactid"):
                records = [p for p in records if p.get("contactId") == params["contactid"].lower()]
            if params.get("states"):
                states = {s.strip().upper() for s in params["states"].split(",")}
                records = [p for p in records if p["status"] in states]
            if params.get("projectids"):
                wanted = {s.strip().lower() for s in params["projectids"].split(",")}
                records = [p for p in records if p["projectId"] in wanted]
            try:
                page = max(1, int(params.get("page", "1")))
                size = min(500, max(1, int(params.get("pagesize", "50"))))
            except ValueError:
                return _response(400, {"message": "page and pageSize must be integers", "modelState": {}})
            chunk = records[(page - 1) * size : page * size]
            pagination = {
                "page": page,
                "pageSize": size,
                "pageCount": math.ceil(len(records) / size),
                "itemCount": len(records),
            }
            return _response(200, {"pagination": pagination, "items": copy.deepcopy(chunk)})
        if request.method != "POST":
            return _response(405, {"message": "Method not allowed"})
        try:
            body = json.loads(request.content) if request.content else None
        except ValueError:
            return _response(
                400, {"message": "The request is invalid.", "modelState": {"": ["Invalid JSON."]}}
            )
        if not isinstance(body, dict):
            # An envelope or a list is not what the Projects API takes: it wants one object.
            return _response(
                400,
                {"message": "The request is invalid.", "modelState": {"": ["A project object is expected."]}},
            )
        problems: dict[str, list[str]] = {}
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.setdefault("name", []).append("The name field is required.")
        contact_id = body.get("contactId")
        if contact_id is not None and str(contact_id).lower() not in tenant.contacts:
            problems.setdefault("contactId", []).append("The contact could not be found.")
        estimate = body.get("estimateAmount")
        if estimate is not None and (
            isinstance(estimate, bool) or not isinstance(estimate, (int, float)) or estimate < 0
        ):
            problems.setdefault("estimateAmount", []).append("The estimate must be a number of at least 0.")
        deadline = body.get("deadlineUtc")
        if deadline is not None:
            try:
                datetime.fromisoformat(str(deadline).replace("Z", "+00:00"))
            except ValueError:
                problems.setdefault("deadlineUtc", []).append("The deadline must be an ISO 8601 date-time.")
        if problems:
            return _response(400, {"message": "The request is invalid.", "modelState": problems})

        def amount(value: float = 0.0) -> dict[str, Any]:
            return {"currency": tenant.currency, "value": float(value)}

        project: dict[str, Any] = {
            "projectId": str(uuid.uuid4()),
            "name": name.strip() if isinstance(name, str) else "",
            "currencyCode": tenant.currency,
            "minutesLogged": 0,
            "minutesToBeInvoiced": 0,
            "status": "INPROGRESS",
            **{
                key: amount()
                for key in (
                    "totalTaskAmount",
                    "totalExpenseAmount",
                    "taskAmountToBeInvoiced",
                    "taskAmountInvoiced",
                    "expenseAmountToBeInvoiced",
                    "expenseAmountInvoiced",
                    "projectAmountInvoiced",
                    "deposit",
                    "depositApplied",
                    "creditNoteAmount",
                    "totalInvoiced",
                    "totalToBeInvoiced",
                )
            },
        }
        if contact_id is not None:
            project["contactId"] = str(contact_id).lower()
        if estimate is not None:
            project["estimate"] = amount(estimate)
        if deadline is not None:
            project["deadlineUtc"] = str(deadline)
        tenant.projects[project["projectId"]] = project
        return _response(201, copy.deepcopy(project))
