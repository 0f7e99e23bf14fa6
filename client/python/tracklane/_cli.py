"""Client commands of ``tracklane``: ``experiments list|create``, ``runs list|get|delete``.

Tables for people; ``--output json`` for scripts (one JSON document on stdout).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tracklane import _cli_artifacts, _cli_auth, _cli_permissions, _cli_sync
from tracklane.client import Client
from tracklane.entities import Experiment, Run, ViewType
from tracklane.projects import cli as projects_cli

__all__ = ["add_commands"]

_VIEWS = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}


def add_commands(commands: Any) -> None:
    """Adds the client commands to the ``tracklane`` parser's subcommands."""
    experiments = commands.add_parser("experiments", help="list and create experiments")
    exp = experiments.add_subparsers(dest="experiments_command", required=True, metavar="COMMAND")
    listing = _with_common(exp.add_parser("list", help="list experiments, newest first"))
    listing.add_argument("--view", choices=sorted(_VIEWS), default="active")
    listing.add_argument("--filter", default="", help="e.g. \"name LIKE 'cv-%%' and tags.team = 'vision'\"")
    listing.add_argument("--max-results", type=int, default=1000)
    listing.set_defaults(handler=_experiments_list)
    create = _with_common(exp.add_parser("create", help="create an experiment; prints its id"))
    create.add_argument("name")
    create.add_argument("--artifact-location", default=None)
    create.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    create.set_defaults(handler=_experiments_create)

    runs = commands.add_parser("runs", help="list, show and delete runs")
    run = runs.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    run_list = _with_common(run.add_parser("list", help="list runs of an experiment"))
    run_list.add_argument("--experiment-id", required=True, action="append", dest="experiment_ids")
    run_list.add_argument("--filter", default="", help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\"")
    run_list.add_argument("--order-by", action="append", default=[], help="e.g. 'metrics.acc DESC'")
    run_list.add_argument("--view", choices=sorted(_VIEWS), default="active")
    run_list.add_argument("--max-results", type=int, default=1000)
    run_list.set_defaults(handler=_runs_list)
    get = _with_common(run.add_parser("get", help="show one run with its params, metrics and tags"))
    get.add_argument("run_id")
    get.set_defaults(handler=_runs_get)
    delete = _with_common(run.add_parser("delete", help="soft-delete a run (restorable)"))
    delete.add_argument("run_id")
    delete.set_defaults(handler=_runs_delete)
    _cli_artifacts.add_commands(commands, _with_common)
    _cli_sync.add_commands(commands, _with_common)
    _cli_auth.add_commands(commands, _with_common)
    _cli_permissions.add_commands(commands, _with_common)
    projects_cli.add_commands(commands)


def _with_common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--tracking-uri", default=None, help="server, e.g. grpc://HOST:50051 [env TRACKLANE_TRACKING_URI]"
    )
    parser.add_argument("--output", choices=("table", "json"), default="table")
    parser.set_defaults(client_command=True)
    return parser


def _experiments_list(client: Client, args: argparse.Namespace) -> object:
    return client.search_experiments(
        view_type=_VIEWS[args.view], max_results=args.max_results, filter_string=args.filter
    )


def _experiments_create(client: Client, args: argparse.Namespace) -> object:
    tags = dict(_key_value(t) for t in args.tag)
    return {"experiment_id": client.create_experiment(args.name, args.artifact_location, tags)}


def _runs_list(client: Client, args: argparse.Namespace) -> object:
    return client.search_runs(
        args.experiment_ids, args.filter, _VIEWS[args.view], args.max_results, args.order_by or None
    )


def _runs_get(client: Client, args: argparse.Namespace) -> object:
    return client.get_run(args.run_id)


def _runs_delete(client: Client, args: argparse.Namespace) -> object:
    client.delete_run(args.run_id)
    return {"deleted": args.run_id}


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"tracklane: error: --tag expects KEY=VALUE, got {text!r}")
    return key, value


def run_command(args: argparse.Namespace) -> None:
    """Runs a client command and prints its result."""
    handler: Callable[[Client, argparse.Namespace], object] = args.handler
    with Client(args.tracking_uri) as client:
        result = handler(client, args)
    if args.output == "json":
        json.dump(_jsonable(result), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(_table(result))


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if hasattr(value, "metrics") and "latest_metrics" in out:
            out["metrics"] = _jsonable(value.metrics)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return "NaN"  # JSON has no NaN; a string survives every parser
    return value


def _time(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(result: object) -> str:
    if hasattr(result, "render_table"):  # results that know their own layout (artifacts list)
        return str(result.render_table())
    if isinstance(result, Run):
        return _run_details(result)
    if isinstance(result, dict):
        return "".join(f"{k}: {v}\n" for k, v in result.items())
    rows: list[Sequence[str]]
    items = list(result) if isinstance(result, list) else []
    if items and isinstance(items[0], Experiment):
        header = ("EXPERIMENT_ID", "NAME", "STAGE", "CREATED", "ARTIFACT_LOCATION")
        rows = [
            (e.experiment_id, e.name, e.lifecycle_stage.value, _time(e.creation_time), e.artifact_location)
            for e in items
        ]
    else:
        header = ("RUN_ID", "NAME", "STATUS", "STARTED", "METRICS")
        rows = [
            (
                r.info.run_id,
                r.info.run_name,
                r.info.status.value,
                _time(r.info.start_time),
                " ".join(f"{k}={v:g}" for k, v in sorted(r.data.metrics.items())),
            )
            for r in items
        ]
    return _format_rows(header, rows)


def _format_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    ]
    return "\n".join(lines) + "\n"


def _run_details(run: Run) -> str:
    info = run.info
    out = [
        f"run_id:        {info.run_id}",
        f"name:          {info.run_name}",
        f"experiment_id: {info.experiment_id}",
        f"status:        {info.status.value}",
        f"started:       {_time(info.start_time)}",
        f"ended:         {_time(info.end_time)}",
        f"artifact_uri:  {info.artifact_uri}",
    ]
    if info.parent_run_id:
        out.append(f"parent_run_id: {info.parent_run_id}")
    for title, values in (
        ("params", run.data.params),
        ("metrics", run.data.metrics),
        ("tags", run.data.tags),
    ):
        out.append(f"{title}:")
        out.extend(f"  {k} = {v}" for k, v in sorted(values.items()))
    return "\n".join(out) + "\n"
