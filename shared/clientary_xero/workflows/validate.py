"""Whole-definition validation: every problem names the exact place and the reason.

Checks: the model's shape, a known trigger, known actions, expressions that parse, ``steps.<id>``
references to steps that have already run on that path, unique ids, and each step's literal input
keys against its action's input model (a misspelt field is refused here, not silently dropped by
Xero later). A shape error does not stop the other checks: what can be read is checked too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from clientary_xero.errors import ExpressionError, WorkflowInvalid
from clientary_xero.workflows import expressions
from clientary_xero.workflows.model import Branch, Step, Workflow, assign_branch_ids, node_kind
from clientary_xero.workflows.triggers import TRIGGERS


def pydantic_problems(
    exc: PydanticValidationError, prefix: str = "", model: type[BaseModel] | None = None
) -> list[str]:
    """One line per error, ``place: reason``. With the validated ``model``, a key it does not
    have reads "not a field of … (did you mean …?)" at any depth, as at the top level."""
    problems = []
    for err in exc.errors():
        loc = _format_loc(err.get("loc", ()))
        place = f"{prefix}{'.' if prefix and loc else ''}{loc}" if (prefix or loc) else "(top level)"
        problems.append(f"{place}: {error_text(err, [model] if model else [], prefix)}")
    return problems


def error_text(err: Any, roots: list[Any], prefix: str = "") -> str:
    """The reason of one pydantic error, in the project's wording for an unknown key."""
    loc = tuple(err.get("loc", ()))
    if err.get("type") != "extra_forbidden" or not loc or not isinstance(loc[-1], str):
        return str(err.get("msg"))
    models = _models_at(roots, loc[:-1])
    names = sorted({field.alias or name for m in models for name, field in m.model_fields.items()})
    close = _closest(loc[-1], names)
    hint = f" (did you mean {close!r}?)" if close else ""
    # The owner as the user wrote it: an action input's nested object by its place
    # (LineItems[0]), a workflow's parts by their kind (a step).
    kinds = {_KINDS[m.__name__] for m in models if m.__name__ in _KINDS}
    parent = _format_loc(loc[:-1])
    if prefix != "input" and len(kinds) == 1:
        owner = kinds.pop()
    elif parent:
        owner = parent
    else:
        owner = "this action's input"
    return f"not a field of {owner}{hint}"


_KINDS = {"Workflow": "a workflow", "Step": "a step", "Branch": "a branch"}


def _models_at(roots: list[Any], loc: tuple[Any, ...]) -> list[Any]:
    """The models that can hold the value at ``loc`` below ``roots`` (several under a union)."""
    current = [m for m in roots if isinstance(m, type) and issubclass(m, BaseModel)]
    for part in loc:
        if isinstance(part, int):
            continue
        following: list[Any] = []
        for model in current:
            fields = {(f.alias or n): f for n, f in model.model_fields.items()} | model.model_fields
            if part in fields:
                following += _model_leaves(fields[part].annotation)
        if not following:  # a union's tag ("step", "branch") names the member
            following = [m for m in current if m.__name__.lower() == str(part).lower()]
        current = following
    return current


def _model_leaves(annotation: Any) -> list[Any]:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [leaf for arg in typing.get_args(annotation) for leaf in _model_leaves(arg)]


def unknown_action(name: str) -> str:
    """``unknown action 'x'``, with the nearest known action's name when one is close."""
    from clientary_xero.connectors.base import registry

    close = _closest(name, sorted(registry()))
    return f"unknown action {name!r}" + (f" (did you mean {close!r}?)" if close else "")


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("step", "branch"):
            continue  # the discriminator's tag, not a place the user wrote
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_workflow(document: Any) -> Workflow:
    """Build and fully validate a workflow, or raise ``WorkflowInvalid`` with every problem found.

    The shape is checked by the pydantic models of ``workflows.shape`` (which also normalise it:
    defaults filled in, JSON values only); the workflow returned is the engine's plain object read
    from that normalised document."""
    # The shape models are built here, not at import: a step reporting its input's problems
    # (``pydantic_problems``) needs none of them.
    from clientary_xero.workflows import shape

    if not isinstance(document, dict):
        raise WorkflowInvalid(None, ["(top level): a workflow must be a mapping (object)"])
    wid = document.get("id")
    from pydantic_core import PydanticSerializationError

    try:
        workflow = Workflow.from_document(shape.Workflow.model_validate(document).to_document())
    except PydanticSerializationError as exc:  # a value no JSON holds (a DynamoDB Binary or set)
        raise WorkflowInvalid(
            wid if isinstance(wid, str) else None,
            [f"(top level): holds a value that is not JSON (text, number, true/false, list or map): {exc}"],
        ) from None
    except PydanticValidationError as exc:
        # A shape error (an unknown key in one step) must not hide the others (an unknown trigger,
        # a misspelt action elsewhere): check what can be read as well, so one run lists them all.
        problems = pydantic_problems(exc, model=shape.Workflow)
        problems += [p for p in check(_as_far_as_readable(document)) if p not in problems]
        raise WorkflowInvalid(wid if isinstance(wid, str) else None, problems) from None
    problems = check(workflow)
    if problems:
        raise WorkflowInvalid(workflow.id, problems)
    return workflow


def _as_far_as_readable(document: dict[str, Any]) -> Workflow:
    """The document as a ``Workflow`` without shape validation, for ``check`` after shape errors.

    A value of the wrong type becomes None (a node that is not a mapping stays None, so the others
    keep their positions), and ``check`` skips what is None: the shape errors already name it.
    """

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    def nodes(value: Any) -> list[Any]:
        out: list[Any] = []
        for item in value if isinstance(value, list) else []:
            if not isinstance(item, dict):
                out.append(None)
            elif node_kind(item) == "branch":
                branch = Branch(
                    id=text(item.get("id")),
                    if_=text(item.get("if", item.get("if_"))),  # type: ignore[arg-type]
                    then=nodes(item.get("then")),
                    else_=nodes(item.get("else", item.get("else_"))),
                )
                out.append(branch)
            else:
                given = item.get("input", {})
                step = Step(
                    id=text(item.get("id")),  # type: ignore[arg-type]
                    action=text(item.get("action")),  # type: ignore[arg-type]
                    input=given if isinstance(given, dict) else None,  # type: ignore[arg-type]
                )
                out.append(step)
        return out

    given_settings = document.get("settings", {})
    return Workflow(
        id=text(document.get("id")),  # type: ignore[arg-type]
        settings=given_settings if isinstance(given_settings, dict) else None,  # type: ignore[arg-type]
        trigger=text(document.get("trigger")),  # type: ignore[arg-type]
        filter=text(document.get("filter")),
        steps=nodes(document.get("steps")),
    )


def check(workflow: Workflow) -> list[str]:
    """Problems that need the whole definition. Fields left None (``_as_far_as_readable``) are skipped."""
    from clientary_xero.connectors.base import find_action

    assign_branch_ids(workflow.steps)
    problems: list[str] = []
    if workflow.trigger is not None and workflow.trigger not in TRIGGERS:
        close = _closest(workflow.trigger, sorted(TRIGGERS))
        known = f"did you mean {close!r}?" if close else f"known: {', '.join(sorted(TRIGGERS))}"
        problems.append(f"trigger: unknown trigger {workflow.trigger!r} ({known})")
    settings = set(workflow.settings) if isinstance(workflow.settings, dict) else None
    if workflow.filter is not None:
        _check_expression(workflow.filter, "filter", set(), problems, require=True, settings=settings)

    # Where each id is used on some path that reaches this point: a step id may appear once in
    # each branch of one `if` (only one of them runs: the step after the branch reads it as
    # steps.<id> either way), never twice where both could run.
    branch_ids: dict[str, str] = {}

    def walk(
        nodes: list[Any], where: str, available: set[str], seen_ids: dict[str, str]
    ) -> tuple[set[str], dict[str, str]]:
        """Check nodes in order; return the step ids certainly run by the end of the list, and
        every id used on some path to it."""
        available = set(available)
        seen_ids = dict(seen_ids)
        for i, node in enumerate(nodes):
            place = f"{where}[{i}]"
            if isinstance(node, Step):
                label = f"{place} (step {node.id!r})" if node.id is not None else place
                if node.id in seen_ids:
                    problems.append(f"{label}: duplicate id {node.id!r} (first used at {seen_ids[node.id]})")
                elif node.id is not None:
                    seen_ids[node.id] = place
                spec = find_action(node.action) if node.action is not None else None
                if spec is None and node.action is not None:
                    problems.append(f"{label}.action: {unknown_action(node.action)}")
                elif spec is not None and node.input is not None:
                    _check_input_keys(node.input, spec.input_model, f"{label}.input", problems)
                for sub_place, source in expressions.iter_expressions(node.input, f"{label}.input"):
                    _check_expression(
                        source, sub_place, available, problems, wrapped=False, settings=settings
                    )
                if node.id is not None:
                    available.add(node.id)
            elif isinstance(node, Branch):
                label = f"{place} (branch {node.id!r})"
                if node.id in seen_ids or node.id in branch_ids:
                    first = seen_ids.get(node.id) or branch_ids[node.id]
                    problems.append(f"{label}: duplicate id {node.id!r} (first used at {first})")
                elif node.id:
                    seen_ids[node.id] = branch_ids[node.id] = place
                if node.if_ is not None:
                    _check_expression(
                        node.if_, f"{label}.if", available, problems, require=True, settings=settings
                    )
                after_then, seen_then = walk(node.then, f"{label}.then", available, seen_ids)
                after_else, seen_else = walk(node.else_, f"{label}.else", available, seen_ids)
                # After a branch only the steps both paths ran are certain; the others may be
                # referenced but read as undefined, so allow them (a workflow can test for them).
                available |= after_then | after_else
                seen_ids = {**seen_else, **seen_then}
        return available, seen_ids

    walk(workflow.steps, "steps", set(), {})
    return problems


# Create actions that, when an attempt's answer was lost, find what it made by a key in their input
# before trying again. Without the key the retry relies on Xero's Idempotency-Key alone, which Xero
# forgets after 6 minutes: a later retry (throttling, an outage) may create the record twice.
RETRY_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "xero.create_invoice": (("InvoiceNumber", "Reference"), "invoice"),
    "xero.create_quote": (("QuoteNumber",), "quote"),
    "xero.create_purchase_order": (("PurchaseOrderNumber",), "purchase order"),
    "xero.create_bank_transfer": (("Reference",), "bank transfer"),
}


def _no_retry_key(step: Step) -> str | None:
    rule = RETRY_KEYS.get(step.action)
    if rule is None:
        return None
    keys, record = rule
    if any(step.input.get(key) not in (None, "") for key in keys):
        return None
    if step.action == "xero.create_invoice" and step.input.get("Type") == "ACCPAY":
        keys = ("InvoiceNumber",)  # a bill takes no Reference
    given = f"neither {keys[0]} nor {keys[1]}" if len(keys) == 2 else f"no {keys[0]}"
    return (
        f"input: gives {given}, so a retry more than 6 minutes after a lost answer (when Xero has "
        f"forgotten its Idempotency-Key) cannot find the {record} an earlier attempt made and may "
        f"create it twice; set {' or '.join(keys)} from the trigger record"
    )


# Rules for remarks that leave a workflow valid: each looks at one step, returns a remark or None.
WARNING_RULES: tuple[Callable[[Step], str | None], ...] = (_no_retry_key,)


def warnings(workflow: Workflow) -> list[str]:
    """Remarks on a valid workflow (``workflows validate`` prints them and still exits 0)."""
    found: list[str] = []

    def walk(nodes: list[Any], where: str) -> None:
        for i, node in enumerate(nodes):
            if isinstance(node, Step):
                for rule in WARNING_RULES:
                    remark = rule(node)
                    if remark is not None:
                        found.append(f"{where}[{i}] (step {node.id!r}).{remark}")
            elif isinstance(node, Branch):
                walk(node.then, f"{where}[{i}] (branch {node.id!r}).then")
                walk(node.else_, f"{where}[{i}] (branch {node.id!r}).else")

    walk(workflow.steps, "steps")
    return found


def _check_expression(
    value: str,
    where: str,
    available: set[str],
    problems: list[str],
    *,
    require: bool = False,
    wrapped: bool = True,
    settings: set[str] | None = None,
) -> None:
    source = expressions.expression_source(value) if wrapped else value
    if source is None:
        if require:
            problems.append(f"{where}: must be a JSONata expression written as '{{% … %}}', got {value!r}")
        return
    try:
        parsed = expressions.parse(source)
    except ExpressionError as exc:
        problems.append(f"{where}: expression does not parse: {exc}")
        return
    for ref in sorted(expressions.step_references(parsed) - available):
        problems.append(f"{where}: refers to steps.{ref}, which has not run at this point")
    if settings is None:
        return  # the settings could not be read: their own shape error says so
    for name in sorted(expressions.setting_references(parsed) - settings):
        close = _closest(name, sorted(settings))
        hint = f" (did you mean settings.{close}?)" if close else ""
        declared = f"declared: {', '.join(sorted(settings))}" if settings else "it declares none"
        problems.append(
            f"{where}: refers to settings.{name}, which the workflow does not declare{hint} ({declared})"
        )


def _check_input_keys(value: dict[str, Any], model: type[BaseModel], where: str, problems: list[str]) -> None:
    """Top-level keys must be fields of the action's input; required fields must be given."""
    fields = model.model_fields
    by_alias = {(f.alias or name): name for name, f in fields.items()}
    read_only: frozenset[str] = getattr(model, "READ_ONLY", frozenset())
    for key in value:
        if key in read_only:
            from clientary_xero.connectors.xero.actions.common import READ_ONLY_MESSAGE

            problems.append(f"{where}.{key}: {READ_ONLY_MESSAGE}")
        elif key not in fields and key not in by_alias:
            close = _closest(key, list(by_alias))
            hint = f" (did you mean {close!r}?)" if close else ""
            problems.append(f"{where}.{key}: not a field of this action's input{hint}")
    for name, field in fields.items():
        alias = field.alias or name
        if field.is_required() and alias not in value and name not in value:
            problems.append(f"{where}: missing required field {alias!r}")
    # A value written out in full (no expression anywhere in it) can be checked now, field by
    # field, against its type and limits: `Type: accrec` or `LineItems: []` fail here, not at the
    # first run. Values with expressions are checked when rendered, before any call is made.
    for key, literal in value.items():
        field_name = key if key in fields else by_alias.get(key)
        if field_name is None or _has_expression(literal):
            continue
        try:
            _field_adapter(model, field_name).validate_python(literal)
        except PydanticValidationError as exc:
            problems += [f"{where}.{key}{problem}" for problem in _problems(exc, model, key)]


def _has_expression(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_expression(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_expression(v) for v in value)
    return expressions.expression_source(value) is not None


@functools.lru_cache(maxsize=512)
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    field = model.model_fields[name]
    annotated: Any = Annotated[field.annotation, field]  # the type with the field's limits
    return TypeAdapter(annotated)


def _problems(exc: PydanticValidationError, model: type[BaseModel], key: str) -> list[str]:
    """The errors of the input's field ``key``, placed below it (``[0].Quantity: …``) and worded
    as at run time (``pydantic_problems``)."""
    out = []
    for error in exc.errors():
        place = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        text = error_text({**error, "loc": (key, *error["loc"])}, [model], "input")
        out.append(f"{place}: {text}")
    return out


def _closest(word: str, candidates: list[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.75)
    if matches:
        return matches[0]
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered:
        return lowered[word.lower()]
    # Two letters swapped in a short name (Dya, Qty…) fall below difflib's cutoff.
    swapped = [c for c in candidates if sorted(c.lower()) == sorted(word.lower())]
    return swapped[0] if len(swapped) == 1 else None
