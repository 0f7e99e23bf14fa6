"""Client commands of ``tracklane``: experiments, runs, models, artifacts, sync, users, tokens and
permissions, each in its own module of this package.

Tables for people; ``--output json`` for scripts (one JSON document on stdout). A server that is
not running is said so, with how to start one; output cut short by a closed pipe (``| head``)
ends the command quietly, as Unix tools do.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

from tracklane.cli import (
    artifacts as artifact_commands,
)
from tracklane.cli import (
    auth as auth_commands,
)
from tracklane.cli import (
    connect,
)
from tracklane.cli import (
    models as model_commands,
)
from tracklane.cli import (
    permissions as permission_commands,
)
from tracklane.cli import (
    sync as sync_commands,
)
from tracklane.cli import (
    tracking as tracking_commands,
)
from tracklane.cli.render import details, jsonable
from tracklane.client import Client
from tracklane.exceptions import Unavailable
from tracklane.projects import cli as projects_cli
from tracklane.recipes import cli as recipes_cli
from tracklane.serving import cli as serving_cli

__all__ = ["add_commands", "run_command"]


def add_commands(commands: Any) -> None:
    """Adds the client commands to the ``tracklane`` parser's subcommands."""
    tracking_commands.add_commands(commands, _with_common)
    serving_cli.add_commands(model_commands.add_commands(commands, _with_common))
    artifact_commands.add_commands(commands, _with_common)
    sync_commands.add_commands(commands, _with_common)
    auth_commands.add_commands(commands, _with_common)
    permission_commands.add_commands(commands, _with_common)
    recipes_cli.register(commands)
    projects_cli.add_commands(commands)


def _with_common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="server, e.g. grpc://HOST:50051 [env TRACKLANE_TRACKING_URI, default grpc://localhost:50051]",
    )
    parser.add_argument(
        "--output",
        choices=("table", "json"),
        default="table",
        help="table for people (default) or json for scripts (one document on stdout)",
    )
    parser.set_defaults(client_command=True)
    return parser


def run_command(args: argparse.Namespace) -> None:
    """Runs a client command and prints its result.

    Raises:
        TracklaneError: what the server (or the check for one) answered; the caller prints it.
    """
    handler: Callable[[Client, argparse.Namespace], object] = args.handler
    connect.check_server(args.tracking_uri)
    try:
        with Client(args.tracking_uri) as client:
            result = handler(client, args)
    except Unavailable as exc:
        raise connect.explain_unavailable(exc, args.tracking_uri) from None
    if args.output == "json":
        json.dump(jsonable(result), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(_table(result))
    sys.stdout.flush()  # here, so a closed pipe is met inside main's handler, not at exit


def _table(result: object) -> str:
    if hasattr(result, "render_table"):  # results that know their own layout
        return str(result.render_table())
    if isinstance(result, dict):
        return "".join(f"{k}: {v}\n" for k, v in result.items())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return details([(f.name, getattr(result, f.name)) for f in dataclasses.fields(result)])
    return f"{result}\n"
