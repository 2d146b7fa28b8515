"""The workflow definition the engine runs: plain objects, read from a validated document.

A workflow is a trigger, an optional filter, optional settings (values a user chooses, read as
``settings.<name>``) and steps. A step calls one action with an input mapping; a branch
(``if``/``then``/``else``, nestable) chooses between two lists of steps. Strings of the form
``"{% … %}"`` are JSONata expressions; everything else is a literal.

Two readers, one definition. ``workflows.validate.parse_workflow`` checks a document (its shape
against the pydantic models of ``workflows.shape``, then what needs the whole definition) and
returns these objects; ``Workflow.from_document`` reads a document that has been checked already
(a run's snapshot, or a saved workflow whose validation stamp matches: ``workflows.stamp``)
without importing pydantic, so the first event of a trigger or a step does not pay its import.
``to_document`` gives back the document as the shape models write it (same keys, same order,
defaults filled in), which is what runs store as their snapshot.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from clientary_xero.errors import PermanentError

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
WORKFLOW_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


@dataclass
class Step:
    """One action call. Its output is available to later steps as ``steps.<id>``."""

    id: str
    action: str
    input: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    def to_document(self) -> dict[str, Any]:
        # Copies, as the shape models' dump made: a run's snapshot shares nothing with a cached workflow.
        out: dict[str, Any] = {"id": self.id, "action": self.action, "input": copy.deepcopy(self.input)}
        if self.description is not None:
            out["description"] = self.description
        return out


@dataclass
class Branch:
    """Runs ``then`` when the ``if`` expression is true, otherwise ``else``, then continues."""

    if_: str
    id: str | None = None
    then: list[Step | Branch] = field(default_factory=list)
    else_: list[Step | Branch] = field(default_factory=list)
    description: str | None = None

    def to_document(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.id is None else {"id": self.id}
        out["if"] = self.if_
        out["then"] = [node.to_document() for node in self.then]
        out["else"] = [node.to_document() for node in self.else_]
        if self.description is not None:
            out["description"] = self.description
        return out


@dataclass
class Workflow:
    id: str
    trigger: str
    steps: list[Step | Branch]
    name: str = ""
    description: str | None = None
    enabled: bool = True
    filter: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        """The definition as a user writes it (``if``/``else`` spelled as in YAML)."""
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.description is not None:
            out["description"] = self.description
        out["enabled"] = self.enabled
        out["trigger"] = self.trigger
        if self.filter is not None:
            out["filter"] = self.filter
        out["settings"] = copy.deepcopy(self.settings)
        out["steps"] = [node.to_document() for node in self.steps]
        return out

    @classmethod
    def from_document(cls, document: Any) -> Workflow:
        """Read a definition that has been validated before (``parse_workflow`` checks one that
        has not). A document this cannot read at all (a run's snapshot edited by hand) raises
        ``PermanentError`` naming the place; it checks nothing else."""
        doc = _mapping(document, "(top level)")
        try:
            return cls(
                id=doc["id"],
                trigger=doc["trigger"],
                steps=_nodes(doc["steps"], "steps"),
                name=doc.get("name", ""),
                description=doc.get("description"),
                enabled=doc.get("enabled", True),
                filter=doc.get("filter"),
                settings=_mapping(doc.get("settings", {}), "settings"),
            )
        except KeyError as exc:
            raise PermanentError(f"the workflow definition has no {exc.args[0]!r}") from None


def node_kind(value: Any) -> str:
    """``branch`` or ``step``: a node with an ``if`` is a branch."""
    if isinstance(value, dict):
        return "branch" if "if" in value or "if_" in value else "step"
    return "branch" if isinstance(value, Branch) else "step"


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PermanentError(f"the workflow definition's {where} is not a mapping")
    return value


def _nodes(value: Any, where: str) -> list[Step | Branch]:
    if not isinstance(value, list):
        raise PermanentError(f"the workflow definition's {where} is not a list")
    out: list[Step | Branch] = []
    for i, item in enumerate(value):
        node = _mapping(item, f"{where}[{i}]")
        try:
            if node_kind(node) == "branch":
                out.append(
                    Branch(
                        if_=node["if"] if "if" in node else node["if_"],
                        id=node.get("id"),
                        then=_nodes(node.get("then", []), f"{where}[{i}].then"),
                        else_=_nodes(node.get("else", node.get("else_", [])), f"{where}[{i}].else"),
                        description=node.get("description"),
                    )
                )
            else:
                out.append(
                    Step(
                        id=node["id"],
                        action=node["action"],
                        input=_mapping(node.get("input", {}), f"{where}[{i}].input"),
                        description=node.get("description"),
                    )
                )
        except KeyError as exc:
            raise PermanentError(f"the workflow definition's {where}[{i}] has no {exc.args[0]!r}") from None
    return out


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
