"""The workflow definition's shape, as pydantic models: what ``workflows.validate`` checks a
document against (and ``workflows.schema`` publishes as JSON Schema). The engine runs the plain
objects of ``workflows.model``, read from a document these models accepted, so a first event
that reads a validated definition imports no pydantic (~100 ms of a cold start's CPU).

A workflow is a trigger, an optional filter, optional settings (values a user chooses, read as
``settings.<name>``) and steps. A step calls one action with an input mapping; a branch
(``if``/``then``/``else``, nestable) chooses between two lists of steps. Strings of the form
``"{% … %}"`` are JSONata expressions; everything else is a literal.

These models check shape only. ``workflows.validate`` adds what needs the whole definition: known
trigger and actions, expressions that parse, step references, unique ids.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from clientary_xero.workflows.model import ID_PATTERN, WORKFLOW_ID_PATTERN


class Step(BaseModel):
    """One action call. Its output is available to later steps as ``steps.<id>``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        pattern=ID_PATTERN,
        description="Unique within the workflow; a JSONata name (letters, "
        "digits, underscore), so later expressions can write steps.<id>.",
    )
    action: str = Field(description="An action name, e.g. xero.create_invoice.")
    input: dict[str, Any] = Field(
        default_factory=dict,
        description="The action's input: literals and "
        "'{% … %}' JSONata expressions, nested as the action expects.",
    )
    description: str | None = None


class Branch(BaseModel):
    """Runs ``then`` when the ``if`` expression is true, otherwise ``else``, then continues."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str | None = Field(default=None, pattern=ID_PATTERN, description="Optional; shown in run history.")
    if_: str = Field(alias="if", description="A '{% … %}' JSONata condition.")
    then: list[Node] = Field(default_factory=list)
    else_: list[Node] = Field(default_factory=list, alias="else")
    description: str | None = None


def node_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "branch" if "if" in value or "if_" in value else "step"
    return "branch" if isinstance(value, Branch) else "step"


Node = Annotated[Annotated[Step, Tag("step")] | Annotated[Branch, Tag("branch")], Discriminator(node_kind)]


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=WORKFLOW_ID_PATTERN)
    name: str = ""
    description: str | None = None
    enabled: bool = True
    trigger: str = Field(description="A trigger name, e.g. clientary.new_invoice.")
    filter: str | None = Field(
        default=None,
        description="A '{% … %}' JSONata condition; records for which it "
        "is false start a FILTERED run and no steps.",
    )
    settings: dict[Annotated[str, Field(pattern=ID_PATTERN)], Any] = Field(
        default_factory=dict,
        description="Values a user chooses (account codes, tax types, a bank account), by name: "
        "expressions read them as settings.<name>; `workflows put --set NAME=VALUE` and "
        "`test-workflow --set` override the value written here.",
    )
    steps: list[Node] = Field(min_length=1)

    def to_document(self) -> dict[str, Any]:
        """The definition as a user writes it (``if``/``else`` spelled as in YAML), JSON values only."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


Branch.model_rebuild()
Workflow.model_rebuild()
