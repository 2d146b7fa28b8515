"""The one small interface between the engine and the connectors: actions.

An action is a named function with a pydantic input model. The engine renders a step's input,
validates it against ``input_model`` and calls ``run(ctx, input)``; the action returns a JSON-able
dict that later steps see under ``steps.<id>``. Actions raise ``PermanentError`` or
``RetryableError`` and nothing else on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the engine reads a workflow and finds an action's queue without pydantic
    from pydantic import BaseModel


class LinkLock(Protocol):
    """A link key's lock (storage/state.py ``LinkHold``): ``link`` as it was when taken;
    ``unchanged``: none was taken because the link holds the ``unless`` version already."""

    link: dict[str, Any] | None
    unchanged: bool

    # Write the link and give the lock up (one write, with the step's checkpoint when it can).
    def write(self, target: dict[str, Any], *, version: str | None = None) -> None: ...
    # An unchanged hold: rewrite its link while it still holds that version and nobody holds its
    # lock (no lock is taken); False when it did not.
    def amend(self, target: dict[str, Any]) -> bool: ...


class Links(Protocol):
    """Id links between the two services (a subset of the State store)."""

    def get_link(self, kind: str, source_id: str) -> dict[str, Any] | None: ...
    def put_link(self, kind: str, source_id: str, target: dict[str, Any]) -> None: ...
    # Held while finding, creating and linking one source record, so two writers cannot both
    # create it; raises LockBusy (retryable) when another writer keeps it too long. Taking it
    # reads the link; ``unless``: take none when the link's version is that already.
    def lock_link(
        self, kind: str, source_id: str, *, unless: str | None = None
    ) -> AbstractContextManager[LinkLock]: ...


@dataclass
class ActionContext:
    run_id: str
    step_id: str
    # Stable for one execution of a step across retries (run id + step id + replay generation);
    # sent as Xero's Idempotency-Key on every write.
    idempotency_key: str
    attempt: int
    links: Links
    # Stable for the step across replays too (run id + step id): what a connector that has no
    # idempotency keys of its own (Clientary) tags and links its creates with, so a replay finds
    # what an earlier generation made instead of creating it again.
    effect_key: str = ""
    # Epoch seconds before which nothing this step made can exist (its run's creation, less clock
    # skew): a retry that looks for what an earlier try made by weak keys (a reference, an amount)
    # ignores older records, e.g. last month's invoice with the same reference. 0: no bound.
    not_before: float = 0.0
    # SHA-256 of the step's input as rendered, with the action's name and code in it (engine/runner.py
    # ``rendered_digest``); "" when it has none. A link may keep it to answer for the same input
    # before it is validated (``shortcut``).
    input_sha256: str = ""
    # Lazily built service clients, shared by the steps one Lambda invocation runs.
    services: dict[str, Any] = field(default_factory=dict)
    factories: dict[str, Callable[[], Any]] = field(default_factory=dict)

    def service(self, name: str) -> Any:
        if name not in self.services:
            self.services[name] = self.factories[name]()
        return self.services[name]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    app: str  # "xero" or "clientary": which action queue runs it
    input_model: type[BaseModel]
    run: Callable[[ActionContext, Any], dict[str, Any]]
    description: str = ""
    # The service's OAuth scopes the action needs (Xero's granular names; connectors/xero/scopes.py).
    scopes: tuple[str, ...] = ()


_REGISTRY: dict[str, ActionSpec] = {}


def action(
    name: str,
    *,
    app: str,
    input_model: type[BaseModel],
    description: str = "",
    scopes: tuple[str, ...] = (),
) -> Callable[
    [Callable[[ActionContext, Any], dict[str, Any]]], Callable[[ActionContext, Any], dict[str, Any]]
]:
    def register(
        fn: Callable[[ActionContext, Any], dict[str, Any]],
    ) -> Callable[[ActionContext, Any], dict[str, Any]]:
        if name in _REGISTRY:
            raise RuntimeError(f"action {name!r} registered twice")
        _REGISTRY[name] = ActionSpec(
            name, app, input_model, fn, description or (fn.__doc__ or "").strip(), tuple(scopes)
        )
        return fn

    return register


# The module that registers each connector's actions, by the prefix of their names ("xero.…").
_CONNECTORS = {
    "clientary": "clientary_xero.connectors.clientary.actions",  # issue #4
    "xero": "clientary_xero.connectors.xero.actions",
}


# Actions whose steps can share one call (engine/batching.py): action name → a writer that takes the
# (context, input) of each step and the batch call's idempotency key, and returns each step's output
# or the exception that step alone would have raised, in order. The writer raises ``PermanentError``
# only when Xero refused the whole call before writing anything (each step then runs alone), and any
# other exception when the outcome is unknown (each step is retried, finding what was written).
BatchWriter = Callable[[list[tuple[ActionContext, Any]], str], list[dict[str, Any] | Exception]]


@dataclass(frozen=True)
class Batched:
    write: BatchWriter
    # Which inputs may join a batch: only those whose retry can find what the batch wrote (a
    # number, a reference). A retry alone sends another Idempotency-Key than the batch's, so Xero's
    # own replay protection does not cover it; the action's find-before-create must.
    when: Callable[[Any], bool]
    # Which steps write the same element (a contact's ContactNumber): they go in one call and
    # count as one of its elements. None: every step is an element of its own.
    same: Callable[[Any], Any] | None = None


_BATCHED: dict[str, Batched] = {}


def batched(
    name: str, *, when: Callable[[Any], bool], same: Callable[[Any], Any] | None = None
) -> Callable[[BatchWriter], BatchWriter]:
    """Register the many-steps writer of action ``name`` (see ``BatchWriter`` and ``Batched``)."""

    def register(fn: BatchWriter) -> BatchWriter:
        _BATCHED[name] = Batched(fn, when, same)
        return fn

    return register


def batch_writer(name: str) -> Batched | None:
    """The many-steps writer of action ``name``, if it has one (imports only its module)."""
    find_action(name)
    return _BATCHED.get(name)


def batch_writers() -> dict[str, Batched]:
    """Every action's many-steps writer (imports every action module)."""
    registry()
    return _BATCHED


def registry() -> dict[str, ActionSpec]:
    """Every known action. Importing the action modules is cheap (models only; clients load lazily)."""
    for module in _CONNECTORS.values():
        load_all = getattr(import_module(module), "load_all", None)  # a package of modules (Xero's)
        if load_all is not None:
            load_all()
    return _REGISTRY


def find_action(name: str) -> ActionSpec | None:
    """The action called ``name``, or None. Imports only the module that defines it: a Xero step's
    first invocation (or a push checking a workflow of Xero steps) builds no Clientary models, and a
    contact step none of invoices, quotes or reports."""
    module = _CONNECTORS.get(name.partition(".")[0])
    if module is not None:
        load_action = getattr(import_module(module), "load_action", None)
        if load_action is not None:
            load_action(name)
    return _REGISTRY.get(name)


# An action's answer from what is stored, before its input is validated: (context, the input as
# rendered) → the step's output, or None when the step must run. It must need no input model:
# it serves the first step of a container, whose action module (and pydantic) is not loaded yet.
Shortcut = Callable[[ActionContext, Any], dict[str, Any] | None]


def loaded(name: str) -> bool:
    """Whether action ``name``'s module has been imported in this process (it is registered)."""
    return name in _REGISTRY


def shortcut(name: str) -> Shortcut | None:
    """Action ``name``'s shortcut, from its connector's ``SHORTCUTS`` index (``"module:function"``),
    imported without the action's module; None when it has none."""
    module = _CONNECTORS.get(name.partition(".")[0])
    index = getattr(import_module(module), "SHORTCUTS", None) if module is not None else None
    target = index.get(name) if index else None
    if target is None:
        return None
    where, _, function = target.partition(":")
    found: Shortcut = getattr(import_module(where), function)
    return found


def action_app(name: str) -> str | None:
    """The action queue (``xero`` or ``clientary``) that runs action ``name``; None when there is
    no such action. A connector that indexes its actions by name (Xero's ``ACTION_MODULES``)
    answers without importing the action's module: a contact step enqueues the invoice step after
    it without building the invoice models (tests/test_cold_imports.py checks the index's answers
    against the registry)."""
    prefix = name.partition(".")[0]
    module = _CONNECTORS.get(prefix)
    index = getattr(import_module(module), "ACTION_MODULES", None) if module is not None else None
    if index is not None:
        return prefix if name in index else None
    spec = find_action(name)
    return spec.app if spec is not None else None
