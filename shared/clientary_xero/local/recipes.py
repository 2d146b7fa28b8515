"""``clientary-xero recipes list|show``: the ready-made workflows of the repository's ``recipes/``.

A recipe is a documented workflow file (recipes/README.md gives the layout: a comment block with
what it does, its settings and how to store it, then the workflow with ``settings:``). ``list``
reads each file's own fields (title = ``name:``, trigger, the actions of its steps, branches
included, and the declared settings with their defaults); ``show`` prints a file as it is, to read
or to copy. A recipe is stored like any workflow: ``workflows put recipes/NAME.yaml --set …``.

The folder is found next to the package (the package is installed from a checkout, editable), else
in the current directory; ``CLIENTARY_XERO_RECIPES`` names another one.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clientary_xero.errors import ClientaryXeroError, WorkflowInvalid

ENV_VAR = "CLIENTARY_XERO_RECIPES"
# shared/clientary_xero/local/recipes.py → the checkout's root.
_CHECKOUT = Path(__file__).resolve().parents[3]


class RecipesNotFound(ClientaryXeroError):
    """No recipes folder where one is looked for."""


@dataclass
class Recipe:
    """What ``recipes list`` shows of one file; ``problem`` when the file cannot be read as one."""

    name: str
    path: Path
    title: str = ""
    trigger: str = ""
    actions: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "trigger": self.trigger,
            "actions": self.actions,
            "settings": self.settings,
            "path": str(self.path),
        }
        if self.problem:
            out["problem"] = self.problem
        return out


def recipes_dir() -> Path:
    """The recipes folder: ``$CLIENTARY_XERO_RECIPES``, else the checkout's, else ``./recipes``."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        folder = Path(configured).expanduser()
        if not folder.is_dir():
            raise RecipesNotFound(f"{ENV_VAR} is {configured!r}, which is not a folder")
        return folder
    for folder in (_CHECKOUT / "recipes", Path.cwd() / "recipes"):
        if folder.is_dir():
            return folder
    raise RecipesNotFound(
        f"no recipes folder: looked in {_CHECKOUT / 'recipes'} and {Path.cwd() / 'recipes'} "
        f"(set {ENV_VAR} to the recipes/ folder of a clientary-xero checkout)"
    )


def recipe_files(folder: Path | None = None) -> list[Path]:
    """The recipe files of ``folder`` (default ``recipes_dir()``), by name."""
    folder = folder or recipes_dir()
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def read_recipe(path: Path) -> Recipe:
    """One file's listing; a file that is not a workflow mapping is listed with its problem."""
    from clientary_xero.workflows.loader import read_document

    recipe = Recipe(name=path.stem, path=path)
    try:
        document = read_document(path)
    except (OSError, WorkflowInvalid) as exc:
        problems = exc.problems if isinstance(exc, WorkflowInvalid) else [str(exc)]
        recipe.problem = "; ".join(problems)
        return recipe
    if not isinstance(document, dict):
        recipe.problem = "not a workflow (a mapping of id, trigger, steps)"
        return recipe
    recipe.title = str(document.get("name") or "")
    recipe.trigger = str(document.get("trigger") or "")
    recipe.actions = _actions(document.get("steps"))
    declared = document.get("settings")
    recipe.settings = dict(declared) if isinstance(declared, dict) else {}
    return recipe


def list_recipes(folder: Path | None = None) -> list[Recipe]:
    return [read_recipe(path) for path in recipe_files(folder)]


def find_recipe(name: str, folder: Path | None = None) -> Path:
    """The file of recipe ``name`` (its file name, with or without ``.yaml``); ``RecipesNotFound``
    names the nearest one and every recipe otherwise."""
    files = recipe_files(folder)
    wanted = Path(name).name
    for path in files:
        if wanted in (path.name, path.stem):
            return path
    names = [p.stem for p in files]
    close = difflib.get_close_matches(Path(wanted).stem, names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise RecipesNotFound(f"no recipe {name!r}{hint}; the recipes are: {', '.join(names) or 'none'}")


def _actions(steps: Any) -> list[str]:
    """The actions of ``steps`` in order of first use, through if/then/else branches."""
    seen: list[str] = []

    def walk(items: Any) -> None:
        for step in items if isinstance(items, list) else []:
            if not isinstance(step, dict):
                continue
            action = step.get("action")
            if isinstance(action, str) and action not in seen:
                seen.append(action)
            walk(step.get("then"))
            walk(step.get("else"))

    walk(steps)
    return seen


def _setting_text(name: str, default: Any) -> str:
    value = default if isinstance(default, str) else json.dumps(default, ensure_ascii=False)
    return f"{name}={value}" if value != "" else f"{name}=(empty)"


# ----------------------------------------------------------------- commands
def cmd_recipes_list(args: Any) -> int:
    from clientary_xero.local import output

    folder = recipes_dir()
    recipes = list_recipes(folder)
    if getattr(args, "json", False):
        output.print_json([r.to_dict() for r in recipes])
        return 0
    rows = [
        [
            r.name,
            r.title if not r.problem else f"UNREADABLE: {r.problem}",
            r.trigger,
            "\n".join(r.actions),
            "\n".join(_setting_text(k, v) for k, v in r.settings.items()) or "-",
        ]
        for r in recipes
    ]
    output.print_table(["recipe", "title", "trigger", "actions", "settings (default)"], rows)
    print(f"{len(recipes)} recipes in {folder}")
    print("  read one:  clientary-xero recipes show NAME")
    print(f"  store one: clientary-xero workflows put {_shown(folder)}/NAME.yaml --set SETTING=VALUE …")
    return 0


def cmd_recipes_show(args: Any) -> int:
    path = find_recipe(args.name)
    sys.stdout.write(path.read_text(encoding="utf-8"))
    return 0


def _shown(folder: Path) -> str:
    """``folder`` relative to the current directory when it is inside it (``recipes``)."""
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def add_recipes_parser(sub: Any) -> None:
    """``recipes list [--json]`` and ``recipes show NAME`` on the CLI's subcommands."""
    r = sub.add_parser("recipes", help="ready-made workflows to store with your settings").add_subparsers(
        dest="sub"
    )
    rl = r.add_parser("list", help="each recipe: title, trigger, actions, settings with their defaults")
    rl.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rl.set_defaults(func=cmd_recipes_list)
    rs = r.add_parser("show", help="print a recipe file (to read, or to copy and edit)")
    rs.add_argument("name", help="the recipe's name, as recipes list shows it")
    rs.set_defaults(func=cmd_recipes_show)
