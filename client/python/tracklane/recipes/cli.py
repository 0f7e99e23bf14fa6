"""``tracklane recipes run|inspect|clean|get-artifact|init``: MLflow 2.x's ``mlflow recipes`` commands."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["register"]

PROFILE_ENV = "TRACKLANE_RECIPES_PROFILE"


@dataclass(frozen=True)
class _Text:
    """A command's output, printed as is."""

    text: str

    def render_table(self) -> str:
        return self.text


def register(commands: Any) -> None:
    """Adds ``recipes`` to the ``tracklane`` command's subcommands."""
    recipes = commands.add_parser("recipes", help="run step pipelines (MLflow 2.x recipes)")
    sub = recipes.add_subparsers(dest="recipes_command", required=True, metavar="COMMAND")
    run = _common(
        sub.add_parser("run", help="run the recipe, or one step and what it needs; cached steps are skipped")
    )
    run.add_argument("--step", "-s", default=None, help="the step to run (default: register)")
    run.set_defaults(handler=_run)
    inspect = _common(sub.add_parser("inspect", help="the step graph, or a step's last card"))
    inspect.add_argument("--step", "-s", default=None)
    inspect.add_argument("--html", action="store_true", help="print the card's HTML instead of a summary")
    inspect.set_defaults(handler=_inspect)
    clean = _common(sub.add_parser("clean", help="remove cached outputs (of a step and those after it)"))
    clean.add_argument("--step", "-s", default=None)
    clean.set_defaults(handler=_clean)
    get = _common(
        sub.add_parser("get-artifact", help="where an output is (a file, a run id, a model version)")
    )
    get.add_argument(
        "name", nargs="?", help="ingested_data, training_data, model, run, registered_model_version..."
    )
    get.add_argument(
        "--artifact", "-a", dest="artifact", default=None, help="the same as NAME (MLflow's flag)"
    )
    get.set_defaults(handler=_get_artifact)
    init = sub.add_parser("init", help="write a runnable recipe with data from scikit-learn")
    init.add_argument("directory")
    init.add_argument("--template", "-t", choices=("regression", "classification"), default="regression")
    init.add_argument("--tracking-uri", default=None, help="the server its local profile names")
    init.set_defaults(handler=_init, client_command=True, output="table")


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--profile",
        "-p",
        default=os.environ.get(PROFILE_ENV),
        help=f"profiles/<PROFILE>.yaml [env {PROFILE_ENV}]",
    )
    parser.add_argument(
        "--recipe-root", default=None, help="the recipe folder (default: the nearest one from here up)"
    )
    parser.add_argument(
        "--tracking-uri", default=None, help="server, e.g. grpc://HOST:50051 (overrides the profile's)"
    )
    parser.set_defaults(client_command=True, output="table")
    return parser


def _recipe(args: argparse.Namespace) -> Any:
    from tracklane.recipes.config import PROFILES_DIR, find_recipe_root
    from tracklane.recipes.recipe import Recipe

    profile = args.profile
    root = find_recipe_root(args.recipe_root)
    if profile is None and (root / PROFILES_DIR / "local.yaml").is_file():
        profile = "local"  # MLflow's default outside Databricks
    return Recipe(profile=profile, recipe_root=root, tracking_uri=args.tracking_uri)


def _run(_client: Any, args: argparse.Namespace) -> _Text:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    outcomes = _recipe(args).run(args.step)
    lines = [f"{o.step:<15} {o.status:<7} {o.seconds:7.2f} s" for o in outcomes]
    ran = sum(o.status == "ran" for o in outcomes)
    lines.append(f"{ran} step(s) ran, {len(outcomes) - ran} cached")
    return _Text("\n".join(lines) + "\n")


def _inspect(_client: Any, args: argparse.Namespace) -> _Text:
    found = _recipe(args).inspect(args.step)
    return _Text(found._repr_html_() if args.html else str(found))


def _clean(_client: Any, args: argparse.Namespace) -> _Text:
    _recipe(args).clean(args.step)
    return _Text(f"cleaned {args.step + ' and the steps after it' if args.step else 'every step'}\n")


def _get_artifact(_client: Any, args: argparse.Namespace) -> _Text:
    name = args.name or args.artifact
    if not name:
        raise SystemExit("tracklane: error: recipes get-artifact needs an artifact NAME")
    where = _recipe(args).artifact_location(name)
    if where is None:
        return _Text(f"{name}: not produced yet (run its step first)\n")
    return _Text(f"{where}\n")


def _init(_client: Any, args: argparse.Namespace) -> _Text:
    from tracklane.recipes.init import init_recipe

    root = init_recipe(Path(args.directory), args.template, args.tracking_uri)
    return _Text(f"wrote a {args.template} recipe in {root}: cd {args.directory} && tracklane recipes run\n")
