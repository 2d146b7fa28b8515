"""template.yaml as the tests read it: parsed with CloudFormation's short tags, then with the
``AWS::LanguageExtensions`` transform applied the way CloudFormation applies it before SAM's.

What the transform does that the template uses (issue 9: one ``Fn::ForEach`` block for the Clientary
trigger functions):

- ``Fn::ForEach::<Loop>: [Identifier, Collection, {OutputKey: OutputValue}]`` in Conditions,
  Resources (also inside a resource's properties) and Outputs: one copy of the fragment per item of
  the collection (a list, or a ``Ref`` to a CommaDelimitedList parameter), with every
  ``${Identifier}`` (the item) and ``&{Identifier}`` (the item without its non-alphanumeric
  characters) replaced in keys and strings, and every ``{"Ref": Identifier}`` replaced by the item.
  Loops nest; two copies with the same key are an error, as CloudFormation says.
- Then it resolves what is known before deployment (the SAM transform needs some values literal,
  an HttpApi event's ``Path`` for one): ``Fn::FindInMap`` whose arguments are literal (with the
  language extensions' ``DefaultValue``), and the literal variables of an ``Fn::Sub``. Anything
  naming a parameter, a resource or a pseudo parameter is left for CloudFormation.

Finally ``AWS::LanguageExtensions`` leaves the template's ``Transform``, which is then what the SAM
translator gets (tests/test_deploy.py).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
FOREACH = "Fn::ForEach::"
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(ValueError):
    """The template breaks a rule of the language extensions (the message names where)."""


# --------------------------------------------------------------------------------------- parsing
class CfnLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation's short tags (!Ref, !GetAtt, !Sub, !If, ...)."""


def _short_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _short_tag)


def load_raw_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as written (``Fn::ForEach`` blocks and all)."""
    return yaml.load(path.read_text(), Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader subclass


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as the SAM transform sees it: language extensions applied."""
    return expand_language_extensions(load_raw_template(path))


# ------------------------------------------------------------------------------------- expansion
def expand_language_extensions(
    template: dict[str, Any], parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A copy of ``template`` with AWS::LanguageExtensions applied (see the module docstring).

    ``parameters`` are deploy-time values for collections that ``Ref`` a parameter (else its Default).
    A template without the transform comes back unchanged (a copy).
    """
    result = copy.deepcopy(template)
    transforms = result.get("Transform")
    listed = transforms if isinstance(transforms, list) else [transforms] if transforms else []
    if LANGUAGE_EXTENSIONS not in listed:
        return result
    values = _parameter_values(result, parameters or {})
    for section in ("Conditions", "Resources", "Outputs"):
        if section in result:
            result[section] = _expand(result[section], values, section)
    mappings = result.get("Mappings") or {}
    for section in ("Conditions", "Resources", "Outputs"):
        if section in result:
            result[section] = _resolve(result[section], mappings, section)
    rest = [t for t in listed if t != LANGUAGE_EXTENSIONS]
    if not rest:
        del result["Transform"]
    else:
        result["Transform"] = rest[0] if len(rest) == 1 else rest
    return result


def _parameter_values(template: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    values = {name: p.get("Default") for name, p in (template.get("Parameters") or {}).items()}
    values.update(given)
    return values


def _expand(node: Any, parameters: dict[str, Any], where: str) -> Any:
    """Expand every Fn::ForEach key in ``node`` (depth first: a loop's copies are expanded again)."""
    if isinstance(node, list):
        return [_expand(item, parameters, f"{where}[{i}]") for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(key, str) and key.startswith(FOREACH):
            copies = _foreach(key, value, parameters, where)
            for copy_key, copy_value in copies.items():
                if copy_key in out or copy_key in node:
                    raise TemplateError(f"{where}.{key}: the loop makes {copy_key!r} twice")
                out[copy_key] = copy_value
        else:
            if key in out:
                raise TemplateError(f"{where}: {key!r} is made by a loop and also written out")
            out[key] = _expand(value, parameters, f"{where}.{key}")
    return out


def _foreach(key: str, value: Any, parameters: dict[str, Any], where: str) -> dict[str, Any]:
    if not key[len(FOREACH) :] or not (isinstance(value, list) and len(value) == 3):
        raise TemplateError(f"{where}.{key}: expected [Identifier, Collection, {{OutputKey: OutputValue}}]")
    identifier, collection, fragment = value
    if not isinstance(identifier, str) or not identifier or identifier in parameters:
        raise TemplateError(f"{where}.{key}: the identifier must be a string that names no parameter")
    if not isinstance(fragment, dict) or not fragment:
        raise TemplateError(f"{where}.{key}: the fragment must be a map of OutputKey: OutputValue")
    items = _collection(collection, parameters, f"{where}.{key}")
    for output_key in fragment:
        if output_key.startswith(FOREACH):
            continue  # a nested loop: its own keys carry the identifier
        if f"${{{identifier}}}" not in output_key and f"&{{{identifier}}}" not in output_key:
            raise TemplateError(
                f"{where}.{key}: the key {output_key!r} must contain ${{{identifier}}} or &{{{identifier}}}"
            )
    copies: dict[str, Any] = {}
    for item in items:
        # Each copy's own loops (with this item already in them) are expanded before copies merge.
        for output_key, output_value in _expand(
            _substitute(fragment, identifier, item), parameters, where
        ).items():
            if output_key in copies:
                raise TemplateError(f"{where}.{key}: the loop makes {output_key!r} twice")
            copies[output_key] = output_value
    return copies


def _collection(collection: Any, parameters: dict[str, Any], where: str) -> list[str]:
    if isinstance(collection, dict) and set(collection) == {"Ref"}:
        name = collection["Ref"]
        if name not in parameters:
            raise TemplateError(f"{where}: the collection refers to {name!r}, which is no parameter")
        collection = parameters[name]
        if isinstance(collection, str):
            collection = [part.strip() for part in collection.split(",")]
    if not isinstance(collection, list) or not all(isinstance(i, str | int | float) for i in collection):
        raise TemplateError(f"{where}: the collection must be a list of strings or a Ref to a list parameter")
    return [str(item) for item in collection]


def _substitute(node: Any, identifier: str, item: str) -> Any:
    if isinstance(node, str):
        return node.replace(f"${{{identifier}}}", item).replace(
            f"&{{{identifier}}}", re.sub(r"[^A-Za-z0-9]", "", item)
        )
    if isinstance(node, list):
        return [_substitute(value, identifier, item) for value in node]
    if isinstance(node, dict):
        if node == {"Ref": identifier}:
            return item
        return {_substitute(k, identifier, item): _substitute(v, identifier, item) for k, v in node.items()}
    return node


# ------------------------------------------------------------------------------------ resolution
def _resolve(node: Any, mappings: dict[str, Any], where: str) -> Any:
    """Resolve the known Fn::FindInMap and Fn::Sub (innermost first), leave everything else."""
    if isinstance(node, list):
        return [_resolve(item, mappings, where) for item in node]
    if not isinstance(node, dict):
        return node
    resolved = {key: _resolve(value, mappings, f"{where}.{key}") for key, value in node.items()}
    if set(resolved) == {"Fn::FindInMap"}:
        return _find_in_map(resolved, mappings, where)
    if set(resolved) == {"Fn::Sub"}:
        return _sub(resolved)
    return resolved


def _find_in_map(node: dict[str, Any], mappings: dict[str, Any], where: str) -> Any:
    args = node["Fn::FindInMap"]
    if not isinstance(args, list) or len(args) not in (3, 4):
        raise TemplateError(f"{where}: Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]")
    name, top, second = args[:3]
    if not all(isinstance(a, str) for a in (name, top, second)):
        return node  # names a parameter or a pseudo parameter: CloudFormation resolves it
    default = args[3].get("DefaultValue") if len(args) == 4 and isinstance(args[3], dict) else None
    try:
        return copy.deepcopy(mappings[name][top][second])
    except (KeyError, TypeError):
        if default is not None:
            return default
        raise TemplateError(f"{where}: Fn::FindInMap [{name}, {top}, {second}] is not in Mappings") from None


def _sub(node: dict[str, Any]) -> Any:
    """Put the literal variables of a ``[text, {variables}]`` Fn::Sub into its text.

    What stays (a parameter, a resource, an attribute, a pseudo parameter) is CloudFormation's at
    deploy time; with nothing left the result is a plain string, as the transform makes it.
    """
    value = node["Fn::Sub"]
    text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
    if not isinstance(text, str) or not isinstance(variables, dict):
        return node
    known = {name: v for name, v in variables.items() if isinstance(v, str)}
    text = _SUB_VARIABLE.sub(lambda m: known.get(m[1], m[0]), text)
    rest = {name: v for name, v in variables.items() if name not in known}
    if _SUB_VARIABLE.search(text):
        return {"Fn::Sub": [text, rest] if rest else text}
    return text.replace("${!", "${")
