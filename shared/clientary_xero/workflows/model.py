"""The workflow definition model.

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

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
WORKFLOW_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


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
        """The definition as a user writes it (``if``/``else`` spelled as in YAML)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


Branch.model_rebuild()
Workflow.model_rebuild()


def iter_steps(nodes: list[Any]) -> list[Step]:
    """Every step of a node list, depth first, in document order."""
    out: list[Step] = []
    for node in nodes:
        if isinstance(node, Step):
            out.append(node)
        else:
            out.extend(iter_steps(node.then))
            out.extend(iter_steps(node.else_))
    return out


def assign_branch_ids(nodes: list[Any], prefix: str = "if") -> None:
    """Give every unnamed branch an id (``if_1``, ``if_1_2`` …) so its decision can be recorded in a run.

    A generated id never takes one the definition uses anywhere (a step the user called ``if_1``):
    the number moves on to the next free one, so a duplicate-id problem only ever names ids the user
    wrote. A definition without such a clash gets the same ids as always (they are stored in runs).
    """
    _assign(nodes, prefix, {node.id for node in _all_nodes(nodes) if isinstance(node.id, str)})


def _assign(nodes: list[Any], prefix: str, taken: set[str]) -> None:
    counter = 0
    for node in nodes:
        if isinstance(node, Branch):
            counter += 1
            if node.id is None:
                while f"{prefix}_{counter}" in taken:
                    counter += 1
                node.id = f"{prefix}_{counter}"
                taken.add(node.id)
            _assign(node.then, node.id, taken)
            _assign(node.else_, node.id, taken)


def _all_nodes(nodes: list[Any]) -> list[Step | Branch]:
    out: list[Step | Branch] = []
    for node in nodes:
        if isinstance(node, Step):
            out.append(node)
        elif isinstance(node, Branch):
            out.append(node)
            out.extend(_all_nodes(node.then))
            out.extend(_all_nodes(node.else_))
    return out
