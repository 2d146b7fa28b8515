"""Projects (the Projects API, not Accounting): ``xero.create_project``.

``POST /projects.xro/2.0/Projects`` takes one unwrapped camelCase object and answers 201; its
errors are ``{message, modelState}``. The input keeps the project's PascalCase style. ``ContactID``
is required here (a project belongs to a contact in Xero; the spec itself requires only the name).
The Projects product must be enabled in the organisation and the connection needs the ``projects``
scope. A step retried after a crash looks for an open project of the same contact and name first,
and adopts it only when its estimate and deadline are the step's too (``common.adopt_found``).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from clientary_xero.connectors.base import ActionContext, action
from clientary_xero.connectors.xero.actions.common import Guid, _Input, adopt_found, casefold_equal

logger = logging.getLogger(__name__)


def _deadline(value: Any) -> Any:
    # A bare date means midnight UTC of that day; a date-time without zone is taken as UTC.
    if isinstance(value, str) and len(value.strip()) == 10:
        return f"{value.strip()}T00:00:00Z"
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


Deadline = Annotated[datetime, BeforeValidator(_deadline)]


class ProjectInput(_Input):
    ContactID: Guid = Field(description="The contact the project is for.")
    Name: str = Field(min_length=1, max_length=255, description="Name of the project.")
    DeadlineUtc: Deadline | None = Field(
        default=None, description="ISO date-time (UTC); a bare date means midnight UTC."
    )
    EstimateAmount: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="Estimated value."
    )

    def body(self) -> dict[str, Any]:
        project: dict[str, Any] = {"contactId": self.ContactID, "name": self.Name}
        if self.DeadlineUtc is not None:
            deadline = self.DeadlineUtc
            if deadline.tzinfo is None:
                deadline = deadline.replace(tzinfo=UTC)
            project["deadlineUtc"] = deadline.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.EstimateAmount is not None:
            project["estimateAmount"] = round(self.EstimateAmount, 2)
        return project


def _amount(project: dict[str, Any], key: str) -> float | None:
    value = (project.get(key) or {}).get("value")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _project_fields(project: dict[str, Any], created: bool) -> dict[str, Any]:
    return {
        "ProjectID": project.get("projectId"),
        "ContactID": project.get("contactId"),
        "Name": project.get("name"),
        "Status": project.get("status"),
        "CurrencyCode": project.get("currencyCode"),
        "DeadlineUtc": project.get("deadlineUtc"),
        "Estimate": _amount(project, "estimate"),
        "TotalInvoiced": _amount(project, "totalInvoiced"),
        "TotalToBeInvoiced": _amount(project, "totalToBeInvoiced"),
        "MinutesLogged": project.get("minutesLogged"),
        "created": created,
    }


def _as_input(project: dict[str, Any]) -> dict[str, Any]:
    """A Projects API project in the input's field names, to compare the two."""
    return {
        "ContactID": project.get("contactId"),
        "Name": project.get("name"),
        "EstimateAmount": _amount(project, "estimate"),
        "DeadlineUtc": project.get("deadlineUtc"),
    }


@action("xero.create_project", app="xero", input_model=ProjectInput, scopes=("projects",))
def create_project(ctx: ActionContext, data: ProjectInput) -> dict[str, Any]:
    """Create a project (Xero Projects) for a contact."""
    client = ctx.service("xero")
    if ctx.attempt > 1:
        found = client.request(
            "GET",
            "/Projects",
            params={"contactID": data.ContactID, "states": "INPROGRESS"},
            api="projects",
        )
        same = [p for p in found.get("items") or [] if casefold_equal(p.get("name"), data.Name)]
        existing = adopt_found(
            ctx,
            same,
            data,
            ("ContactID", "Name", "EstimateAmount", "DeadlineUtc"),
            what="project",
            name_of=lambda p: repr(p.get("name")),
            hint="give this project another Name or close that project in Xero",
            view=_as_input,
        )
        if existing is not None:
            logger.info("project %r already exists (an earlier attempt made it)", data.Name)
            return _project_fields(existing, created=False)
    answer = client.request(
        "POST", "/Projects", json=data.body(), idempotency_key=ctx.idempotency_key, api="projects"
    )
    return _project_fields(answer, created=True)
