"""Projects (the default list has only active and billable ones), their hours (time entries,
``/projects/:id/hours``) and tasks."""

from __future__ import annotations

from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from clientary_xero.local.clientary_sandbox.fields import _CENT, _decimal, _field_builder, _today
from clientary_xero.local.clientary_sandbox.rendering import _render_project, _render_task
from clientary_xero.local.clientary_sandbox.spec import Record, ResourceSpec, SandboxValidation, _oldest_first

if TYPE_CHECKING:
    from clientary_xero.local.clientary_sandbox.state import SandboxState

# Projects: the default list has only active (1) and billable (4) projects; ``filter=all`` has all.
PROJECT_ATTRIBUTES = (
    "number",
    "name",
    "description",
    "status",
    "budget_type",
    "project_type",
    "rate",
    "budget",
    "currency_code",
    "start_date",
    "end_date",
    "client_id",
)


def _project_filter(
    sandbox: SandboxState, records: list[Record], query: dict[str, str]
) -> tuple[list[Record], dict[str, Any]]:
    if query.get("filter") == "all":
        return records, {}
    return [r for r in records if r.get("status") in (1, 4)], {}


# Hours (time entries) of a project: body key ``project_item``; not paginated.
HOURS_ATTRIBUTES = ("title", "description", "hours", "date", "rate", "project_id")


def _finish_hours(sandbox: SandboxState, record: Record) -> None:
    _today(sandbox, record, "date")
    if record.get("hours") is not None and float(record["hours"]) <= 0:
        raise SandboxValidation({"hours": ["must be greater than 0"]})
    project = sandbox._records["projects"].get(record.get("project_id") or -1) or {}
    if record.get("rate") is None:
        record["rate"] = float(project.get("rate") or 0)
    cost = (_decimal(record.get("hours")) or Decimal(0)) * (_decimal(record.get("rate")) or Decimal(0))
    record["cost"] = float(cost.quantize(_CENT, ROUND_HALF_UP))


# Tasks: POST /tasks with {"task": {...}}; timestamps in UTC with a Z (the docs' example).
TASK_ATTRIBUTES = ("title", "description", "due_date", "project_id", "client_id", "assignee_id", "complete")


def _finish_task(sandbox: SandboxState, record: Record) -> None:
    if record.get("complete") and not record.get("completed_at"):
        record["completed_at"] = sandbox.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not record.get("complete"):
        record["completed_at"] = None


def projects_spec() -> ResourceSpec:
    return ResourceSpec(
        # Undocumented order: oldest first here, so the pollers cannot rely on newest-first lists.
        name="projects",
        wrapper="project",
        attributes=PROJECT_ATTRIBUTES,
        required=("name",),
        unique=("number",),
        default_page_size=20,
        id_start=300_001,
        sorts={None: _oldest_first},
        build=_field_builder(
            {
                "number": None,
                "name": None,
                "description": "",
                "status": 1,
                "budget_type": 0,
                "project_type": 0,
                "rate": 0.0,
                "budget": 0.0,
                "cost": 0.0,
                "currency_code": "USD",
                "start_date": None,
                "end_date": None,
                "client_id": None,
            },
            dates=("start_date", "end_date"),
            numbers=("rate", "budget"),
            integers=("status", "budget_type", "project_type"),
            refs={"client_id": "clients"},
        ),
        render=_render_project,
        list_hook=_project_filter,
    )


def hours_spec() -> ResourceSpec:
    return ResourceSpec(
        name="hours",
        wrapper="project_item",
        attributes=HOURS_ATTRIBUTES,
        required=("hours", "title"),
        paged=False,
        id_start=61_000_001,
        sorts={None: _oldest_first},
        parent="projects",
        parent_key="project_id",
        build=_field_builder(
            {
                "title": None,
                "description": "",
                "hours": None,
                "date": None,
                "rate": None,
                "user_id": 1,
                "billed?": False,
            },
            dates=("date",),
            numbers=("hours", "rate"),
            finish=_finish_hours,
        ),
    )


def tasks_spec() -> ResourceSpec:
    return ResourceSpec(
        # Undocumented order (the docs' example shows page_size 50): oldest first here.
        name="tasks",
        wrapper="task",
        attributes=TASK_ATTRIBUTES,
        required=("title",),
        default_page_size=50,
        id_start=44_000_001,
        sorts={None: _oldest_first},
        build=_field_builder(
            {
                "title": None,
                "description": None,
                "complete": False,
                "completed_at": None,
                "due_date": None,
                "project_id": None,
                "client_id": None,
                "assignee_id": None,
                "user_id": 1,
            },
            dates=("due_date",),
            booleans=("complete",),
            refs={"project_id": "projects", "client_id": "clients", "assignee_id": "staff"},
            finish=_finish_task,
        ),
        render=_render_task,
    )
