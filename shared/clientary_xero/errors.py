"""The project's own error classes: every adapter translates what it catches into one of these.

The engine decides what to do with a failed step from the class alone:

* ``PermanentError`` — retrying cannot help (validation, a 4xx from a service). The run fails with
  the service's own messages.
* ``RetryableError`` — the same call may succeed later (429, 5xx, time-outs, a lock held by another
  worker). The step message goes back to its queue after ``delay_seconds``.
"""

from __future__ import annotations


class ClientaryXeroError(Exception):
    """Base class of every error this project raises on purpose."""


class PermanentError(ClientaryXeroError):
    """Retrying will not help. ``messages`` are shown to the user as they came from the service."""

    def __init__(
        self,
        message: str,
        *,
        messages: list[str] | None = None,
        status: int | None = None,
        service: str | None = None,
    ) -> None:
        super().__init__(message)
        self.messages = list(messages or [])
        self.status = status
        self.service = service

    def to_dict(self) -> dict[str, object]:
        return {
            "type": "permanent",
            "message": str(self),
            "messages": self.messages,
            "status": self.status,
            "service": self.service,
        }


class RetryableError(ClientaryXeroError):
    """The same work may succeed later; wait ``delay_seconds`` (``Retry-After`` when the service gave one)."""

    def __init__(
        self,
        message: str,
        *,
        delay_seconds: int = 30,
        status: int | None = None,
        service: str | None = None,
        limit: str | None = None,
    ) -> None:
        super().__init__(message)
        self.delay_seconds = max(0, int(delay_seconds))
        self.status = status
        self.service = service
        # Which limit was hit (Xero's X-Rate-Limit-Problem: minute, day, appminute), if any.
        self.limit = limit

    def to_dict(self) -> dict[str, object]:
        return {
            "type": "retryable",
            "message": str(self),
            "delay_seconds": self.delay_seconds,
            "status": self.status,
            "service": self.service,
            "limit": self.limit,
        }


class ValidationFailed(PermanentError):
    """Input (a workflow, a step's rendered input, a request body) is not valid."""


class WorkflowInvalid(ValidationFailed):
    """A workflow definition does not validate; ``problems`` name the place and the reason."""

    def __init__(self, workflow_id: str | None, problems: list[str]) -> None:
        label = f"workflow {workflow_id!r}" if workflow_id else "workflow"
        super().__init__(f"{label} is invalid: " + "; ".join(problems), messages=problems)
        self.workflow_id = workflow_id
        self.problems = problems


class ExpressionError(ValidationFailed):
    """A JSONata expression failed to parse or evaluate (including the time and depth bound)."""


class LockBusy(RetryableError):
    """Another worker holds the lease; try again shortly."""

    def __init__(self, name: str, delay_seconds: int = 5) -> None:
        super().__init__(f"lock {name!r} is held by another worker", delay_seconds=delay_seconds)


class Conflict(ClientaryXeroError):
    """A conditional write lost (the item exists or changed). Storage raises it; callers decide."""


class NotFound(ClientaryXeroError):
    """A record does not exist (in storage or at a service)."""


class ReauthorizationRequired(PermanentError):
    """The Xero connection's refresh token is no longer valid: run the connect flow again."""

    def to_dict(self) -> dict[str, object]:
        # The run's error says so: the notifier tells "reconnect Xero" once, not once per run.
        return {**super().to_dict(), "reconnect": True}
