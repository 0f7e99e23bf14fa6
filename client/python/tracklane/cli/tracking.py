"""``tracklane experiments ...`` and ``tracklane runs ...``: MLflow's CLI words, Tracklane's server.

tracklane experiments list|create|get|rename|delete|restore|set-tag|delete-tag
tracklane runs list|get|update|delete|restore
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from tracklane.cli.render import Shown, details, rows, when
from tracklane.client import Client
from tracklane.entities import Experiment, Run, RunStatus, ViewType
from tracklane.exceptions import InvalidArgument, NotFound

__all__ = ["add_commands", "key_value", "show_run"]

_VIEWS = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}
_VIEW_HELP = "which to list: active (default), deleted or all"
_MAX_HELP = "stop after this many (default: %(default)s)"
WithCommon = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def add_commands(commands: Any, with_common: WithCommon) -> None:
    """Adds ``experiments`` and ``runs``; ``with_common`` adds --tracking-uri and --output."""
    _add_experiments(commands, with_common)
    _add_runs(commands, with_common)


def _add_experiments(commands: Any, with_common: WithCommon) -> None:
    group = commands.add_parser("experiments", help="list, create, rename, delete and restore experiments")
    sub = group.add_subparsers(dest="experiments_command", required=True, metavar="COMMAND")

    listing = with_common(sub.add_parser("list", help="list experiments, newest first"))
    listing.add_argument("--view", choices=sorted(_VIEWS), default="active", help=_VIEW_HELP)
    listing.add_argument(
        "--filter", default="", help="e.g. \"name LIKE 'cv-%%' and tags.team = 'vision'\" (default: all)"
    )
    listing.add_argument("--max-results", type=int, default=1000, metavar="N", help=_MAX_HELP)
    listing.set_defaults(handler=_experiments_list)

    create = with_common(sub.add_parser("create", help="create an experiment; prints its id"))
    create.add_argument("name", help="unique experiment name")
    create.add_argument(
        "--artifact-location", default=None, help="where its runs' artifacts go (default: the server's root)"
    )
    _tag_option(create)
    create.set_defaults(handler=_experiments_create)

    get = with_common(sub.add_parser("get", help="show one experiment, by id or --name"))
    which = get.add_mutually_exclusive_group(required=True)
    which.add_argument("experiment_id", nargs="?", help="the experiment's id")
    which.add_argument("--name", default=None, help="the experiment's name, instead of its id")
    get.set_defaults(handler=_experiments_get)

    rename = with_common(sub.add_parser("rename", help="rename an experiment"))
    rename.add_argument("experiment_id", help="the experiment's id")
    rename.add_argument("new_name", help="a name no other experiment has")
    rename.set_defaults(handler=_experiments_rename)

    delete = with_common(
        sub.add_parser("delete", help="soft-delete an experiment with its live runs (restorable)")
    )
    delete.add_argument("experiment_id", help="the experiment's id")
    delete.set_defaults(handler=_experiments_delete)

    restore = with_common(
        sub.add_parser("restore", help="restore a deleted experiment with the runs deleted with it")
    )
    restore.add_argument("experiment_id", help="the experiment's id")
    restore.set_defaults(handler=_experiments_restore)

    set_tag = with_common(sub.add_parser("set-tag", help="set (or overwrite) an experiment tag"))
    set_tag.add_argument("experiment_id", help="the experiment's id")
    set_tag.add_argument("key", help="tag key")
    set_tag.add_argument("value", help="tag value")
    set_tag.set_defaults(handler=_experiments_set_tag)

    delete_tag = with_common(sub.add_parser("delete-tag", help="delete an experiment tag"))
    delete_tag.add_argument("experiment_id", help="the experiment's id")
    delete_tag.add_argument("key", help="tag key")
    delete_tag.set_defaults(handler=_experiments_delete_tag)


def _add_runs(commands: Any, with_common: WithCommon) -> None:
    group = commands.add_parser("runs", help="list, show, update, delete and restore runs")
    sub = group.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")

    listing = with_common(sub.add_parser("list", help="list runs of experiments, newest first"))
    listing.add_argument(
        "--experiment-id",
        required=True,
        action="append",
        dest="experiment_ids",
        metavar="ID",
        help="experiment to search (repeat for several)",
    )
    listing.add_argument(
        "--filter", default="", help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\" (default: all)"
    )
    listing.add_argument(
        "--order-by",
        action="append",
        default=[],
        metavar="COLUMN",
        help="e.g. 'metrics.acc DESC' (repeat for ties; default: newest first)",
    )
    listing.add_argument("--view", choices=sorted(_VIEWS), default="active", help=_VIEW_HELP)
    listing.add_argument("--max-results", type=int, default=1000, metavar="N", help=_MAX_HELP)
    listing.set_defaults(handler=_runs_list)

    get = with_common(sub.add_parser("get", help="show one run with its params, metrics and tags"))
    get.add_argument("run_id", help="the run's id")
    get.set_defaults(handler=_runs_get)

    update = with_common(sub.add_parser("update", help="rename a run or set its status"))
    update.add_argument("run_id", help="the run's id")
    update.add_argument("--name", default=None, help="new run name")
    update.add_argument(
        "--status",
        type=str.upper,
        choices=[s.value for s in RunStatus],
        default=None,
        help="new status; FINISHED, FAILED or KILLED also end the run now",
    )
    update.set_defaults(handler=_runs_update)

    delete = with_common(sub.add_parser("delete", help="soft-delete a run (restorable)"))
    delete.add_argument("run_id", help="the run's id")
    delete.set_defaults(handler=_runs_delete)

    restore = with_common(sub.add_parser("restore", help="restore a deleted run"))
    restore.add_argument("run_id", help="the run's id")
    restore.set_defaults(handler=_runs_restore)


def _tag_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag (repeat for several)"
    )


def key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of a --tag option."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"tracklane: error: --tag expects KEY=VALUE, got {text!r}")
    return key, value


# -- experiments ---------------------------------------------------------------------------------------


def _experiments_table(experiments: Sequence[Experiment]) -> Shown:
    header = ("EXPERIMENT_ID", "NAME", "STAGE", "CREATED", "ARTIFACT_LOCATION")
    body = [
        (e.experiment_id, e.name, e.lifecycle_stage.value, when(e.creation_time), e.artifact_location)
        for e in experiments
    ]
    return Shown(list(experiments), rows(header, body))


def _show_experiment(e: Experiment) -> Shown:
    fields = [
        ("experiment_id", e.experiment_id),
        ("name", e.name),
        ("stage", e.lifecycle_stage.value),
        ("created", when(e.creation_time)),
        ("updated", when(e.last_update_time)),
        ("artifact_location", e.artifact_location),
        ("description", e.description),
    ]
    return Shown(e, details(fields, {"tags": e.tags}))


def _experiments_list(client: Client, args: argparse.Namespace) -> object:
    found = client.search_experiments(
        view_type=_VIEWS[args.view], max_results=args.max_results, filter_string=args.filter
    )
    return _experiments_table(found)


def _experiments_create(client: Client, args: argparse.Namespace) -> object:
    tags = dict(key_value(t) for t in args.tag)
    return {"experiment_id": client.create_experiment(args.name, args.artifact_location, tags)}


def _experiments_get(client: Client, args: argparse.Namespace) -> object:
    if args.name is None:
        return _show_experiment(client.get_experiment(args.experiment_id))
    found = client.get_experiment_by_name(args.name)
    if found is None:
        raise NotFound(f"experiment {args.name!r} does not exist", field="name")
    return _show_experiment(found)


def _experiments_rename(client: Client, args: argparse.Namespace) -> object:
    client.rename_experiment(args.experiment_id, args.new_name)
    return _show_experiment(client.get_experiment(args.experiment_id))


def _experiments_delete(client: Client, args: argparse.Namespace) -> object:
    client.delete_experiment(args.experiment_id)
    return {"deleted": args.experiment_id}


def _experiments_restore(client: Client, args: argparse.Namespace) -> object:
    client.restore_experiment(args.experiment_id)
    return {"restored": args.experiment_id}


def _experiments_set_tag(client: Client, args: argparse.Namespace) -> object:
    client.set_experiment_tag(args.experiment_id, args.key, args.value)
    return {"experiment_id": args.experiment_id, "key": args.key, "value": args.value}


def _experiments_delete_tag(client: Client, args: argparse.Namespace) -> object:
    client.delete_experiment_tag(args.experiment_id, args.key)
    return {"experiment_id": args.experiment_id, "deleted_tag": args.key}


# -- runs ----------------------------------------------------------------------------------------------


def show_run(run: Run) -> Shown:
    """A run as ``key: value`` lines with its params, metrics and tags."""
    info = run.info
    fields: list[tuple[str, object]] = [
        ("run_id", info.run_id),
        ("name", info.run_name),
        ("experiment_id", info.experiment_id),
        ("status", info.status.value),
        ("stage", info.lifecycle_stage.value),
        ("started", when(info.start_time)),
        ("ended", when(info.end_time)),
        ("artifact_uri", info.artifact_uri),
    ]
    if info.parent_run_id:
        fields.append(("parent_run_id", info.parent_run_id))
    sections = {"params": run.data.params, "metrics": run.data.metrics, "tags": run.data.tags}
    return Shown(run, details(fields, sections))


def _runs_list(client: Client, args: argparse.Namespace) -> object:
    found = client.search_runs(
        args.experiment_ids, args.filter, _VIEWS[args.view], args.max_results, args.order_by or None
    )
    header = ("RUN_ID", "NAME", "STATUS", "STARTED", "METRICS")
    body = [
        (
            r.info.run_id,
            r.info.run_name,
            r.info.status.value,
            when(r.info.start_time),
            " ".join(f"{k}={v:g}" for k, v in sorted(r.data.metrics.items())),
        )
        for r in found
    ]
    return Shown(found, rows(header, body))


def _runs_get(client: Client, args: argparse.Namespace) -> object:
    return show_run(client.get_run(args.run_id))


def _runs_update(client: Client, args: argparse.Namespace) -> object:
    if args.name is None and args.status is None:
        raise InvalidArgument("runs update: give --name, --status or both", field="name")
    client.update_run(args.run_id, status=args.status, name=args.name)
    return show_run(client.get_run(args.run_id))


def _runs_delete(client: Client, args: argparse.Namespace) -> object:
    client.delete_run(args.run_id)
    return {"deleted": args.run_id}


def _runs_restore(client: Client, args: argparse.Namespace) -> object:
    client.restore_run(args.run_id)
    return {"restored": args.run_id}
