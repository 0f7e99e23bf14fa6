"""``tracklane models ...``: the model registry from the shell, with the Client's (MLflow's) words.

tracklane models list|get|create|rename|update|delete|history|download
tracklane models set-tag|delete-tag|set-alias|delete-alias
tracklane models versions list|get|create|update|delete|transition-stage|set-tag|delete-tag
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from tracklane.cli.render import Shown, details, rows, when
from tracklane.cli.tracking import key_value
from tracklane.client import Client
from tracklane.entities.model_registry import ModelStage, ModelVersion, RegisteredModel

__all__ = ["add_commands"]

WithCommon = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
_STAGES = [s.value for s in ModelStage]


def add_commands(commands: Any, with_common: WithCommon) -> Any:
    """Adds ``models`` and its subcommands; returns its subparsers, for commands added elsewhere
    (serving). ``with_common`` adds --tracking-uri and --output."""
    group = commands.add_parser("models", help="the model registry: models, versions, aliases, stages")
    sub = group.add_subparsers(dest="models_command", required=True, metavar="COMMAND")

    listing = with_common(sub.add_parser("list", help="list registered models, by name"))
    listing.add_argument(
        "--filter", default="", help="e.g. \"name LIKE 'fraud%%' and tags.team = 'risk'\" (default: all)"
    )
    _order_and_max(listing, 1000)
    listing.set_defaults(handler=_models_list)

    get = with_common(sub.add_parser("get", help="show a registered model with its aliases and tags"))
    _name(get)
    get.set_defaults(handler=_models_get)

    create = with_common(sub.add_parser("create", help="create a registered model (no versions yet)"))
    _name(create, "unique model name")
    create.add_argument("--description", default=None, help="free text")
    _tags(create)
    create.set_defaults(handler=_models_create)

    rename = with_common(sub.add_parser("rename", help="rename a registered model"))
    _name(rename)
    rename.add_argument("new_name", help="a name no other model has")
    rename.set_defaults(handler=_models_rename)

    update = with_common(sub.add_parser("update", help="change a model's description"))
    _name(update)
    update.add_argument("--description", required=True, help="the new description")
    update.set_defaults(handler=_models_update)

    delete = with_common(
        sub.add_parser("delete", help="delete a model with its versions, aliases, tags and history")
    )
    _name(delete)
    delete.set_defaults(handler=_models_delete)

    history = with_common(sub.add_parser("history", help="every change: alias moves, stages, versions"))
    _name(history)
    history.add_argument("--version", type=int, default=None, help="one version's changes only")
    history.set_defaults(handler=_models_history)

    download = with_common(sub.add_parser("download", help="download a model's files"))
    download.add_argument(
        "--model-uri",
        "-m",
        required=True,
        help="models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/STAGE or runs:/RUN_ID/PATH",
    )
    download.add_argument("--dst-path", "-d", default=".", help="local folder to download into (default: .)")
    download.set_defaults(handler=_models_download)

    set_tag = with_common(sub.add_parser("set-tag", help="set (or overwrite) a model tag"))
    _name(set_tag)
    set_tag.add_argument("key", help="tag key")
    set_tag.add_argument("value", help="tag value")
    set_tag.set_defaults(handler=_models_set_tag)

    delete_tag = with_common(sub.add_parser("delete-tag", help="delete a model tag"))
    _name(delete_tag)
    delete_tag.add_argument("key", help="tag key")
    delete_tag.set_defaults(handler=_models_delete_tag)

    set_alias = with_common(
        sub.add_parser("set-alias", help="point an alias at a version (moving it if it exists)")
    )
    _name(set_alias)
    set_alias.add_argument("alias", help="letters, digits, _ and - (v<number> and latest are reserved)")
    set_alias.add_argument("version", type=int, help="version number")
    set_alias.set_defaults(handler=_models_set_alias)

    delete_alias = with_common(sub.add_parser("delete-alias", help="remove an alias"))
    _name(delete_alias)
    delete_alias.add_argument("alias", help="the alias")
    delete_alias.set_defaults(handler=_models_delete_alias)

    _add_versions(sub, with_common)
    return sub


def _add_versions(models: Any, with_common: WithCommon) -> None:
    group = models.add_parser("versions", help="a model's numbered versions")
    sub = group.add_subparsers(dest="versions_command", required=True, metavar="COMMAND")

    listing = with_common(sub.add_parser("list", help="list versions of a model, or matching --filter"))
    listing.add_argument("name", nargs="?", default=None, help="registered model name (default: every model)")
    listing.add_argument(
        "--filter", default="", help="e.g. \"run_id = 'abc' and tags.validated = 'true'\" (default: all)"
    )
    _order_and_max(listing, 10_000)
    listing.set_defaults(handler=_versions_list)

    get = with_common(sub.add_parser("get", help="show one version, by number or --alias"))
    _name(get)
    which = get.add_mutually_exclusive_group(required=True)
    which.add_argument("version", type=int, nargs="?", help="version number")
    which.add_argument("--alias", default=None, help="the version this alias points at, instead")
    get.set_defaults(handler=_versions_get)

    create = with_common(sub.add_parser("create", help="register the next version of a model"))
    _name(create)
    create.add_argument("--source", required=True, help="runs:/RUN_ID/PATH or an artifact URI")
    create.add_argument(
        "--run-id", default=None, help="the run that produced it (default: from a runs:/ source)"
    )
    create.add_argument("--description", default=None, help="free text")
    _tags(create)
    create.set_defaults(handler=_versions_create)

    update = with_common(sub.add_parser("update", help="change a version's description"))
    _version(update)
    update.add_argument("--description", required=True, help="the new description")
    update.set_defaults(handler=_versions_update)

    delete = with_common(sub.add_parser("delete", help="delete a version (its number is not reused)"))
    _version(delete)
    delete.set_defaults(handler=_versions_delete)

    stage = with_common(sub.add_parser("transition-stage", help="move a version to a stage"))
    _version(stage)
    stage.add_argument("stage", type=str.capitalize, choices=_STAGES, help=", ".join(_STAGES))
    stage.add_argument(
        "--archive-existing-versions",
        action="store_true",
        help="move the model's other versions in that stage to Archived",
    )
    stage.set_defaults(handler=_versions_transition_stage)

    set_tag = with_common(sub.add_parser("set-tag", help="set (or overwrite) a version tag"))
    _version(set_tag)
    set_tag.add_argument("key", help="tag key")
    set_tag.add_argument("value", help="tag value")
    set_tag.set_defaults(handler=_versions_set_tag)

    delete_tag = with_common(sub.add_parser("delete-tag", help="delete a version tag"))
    _version(delete_tag)
    delete_tag.add_argument("key", help="tag key")
    delete_tag.set_defaults(handler=_versions_delete_tag)


def _name(parser: argparse.ArgumentParser, text: str = "registered model name") -> None:
    parser.add_argument("name", help=text)


def _version(parser: argparse.ArgumentParser) -> None:
    _name(parser)
    parser.add_argument("version", type=int, help="version number")


def _tags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag (repeat for several)"
    )


def _order_and_max(parser: argparse.ArgumentParser, most: int) -> None:
    parser.add_argument(
        "--order-by", action="append", default=[], metavar="COLUMN", help="e.g. 'name DESC' (repeat for ties)"
    )
    parser.add_argument(
        "--max-results",
        type=int,
        default=most,
        metavar="N",
        help="stop after this many (default: %(default)s)",
    )


# -- rendering -----------------------------------------------------------------------------------------


def _aliases_of(model: RegisteredModel) -> str:
    return " ".join(f"{a}={v}" for a, v in sorted(model.aliases.items()))


def _show_model(model: RegisteredModel) -> Shown:
    latest = " ".join(f"{v.current_stage.value}={v.version}" for v in model.latest_versions)
    fields = [
        ("name", model.name),
        ("created", when(model.creation_timestamp)),
        ("updated", when(model.last_updated_timestamp)),
        ("description", model.description),
        ("latest_versions", latest),
        ("aliases", _aliases_of(model)),
    ]
    return Shown(model, details(fields, {"tags": model.tags}))


def _show_version(version: ModelVersion) -> Shown:
    fields = [
        ("name", version.name),
        ("version", version.version),
        ("stage", version.current_stage.value),
        ("status", version.status.value),
        ("aliases", " ".join(version.aliases)),
        ("source", version.source),
        ("run_id", version.run_id),
        ("user_id", version.user_id),
        ("created", when(version.creation_timestamp)),
        ("updated", when(version.last_updated_timestamp)),
        ("description", version.description),
    ]
    return Shown(version, details(fields, {"tags": version.tags}))


def _versions_table(versions: Sequence[ModelVersion]) -> Shown:
    header = ("NAME", "VERSION", "STAGE", "ALIASES", "CREATED", "RUN_ID", "SOURCE")
    body = [
        (
            v.name,
            str(v.version),
            v.current_stage.value,
            ",".join(v.aliases),
            when(v.creation_timestamp),
            v.run_id,
            v.source,
        )
        for v in versions
    ]
    return Shown(list(versions), rows(header, body))


# -- models --------------------------------------------------------------------------------------------


def _models_list(client: Client, args: argparse.Namespace) -> object:
    found = client.search_registered_models(args.filter, args.max_results, args.order_by or None)
    header = ("NAME", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION")
    body = [
        (
            m.name,
            str(max((v.version for v in m.latest_versions), default="")),
            _aliases_of(m),
            when(m.last_updated_timestamp),
            m.description.splitlines()[0] if m.description else "",
        )
        for m in found
    ]
    return Shown(found, rows(header, body))


def _models_get(client: Client, args: argparse.Namespace) -> object:
    return _show_model(client.get_registered_model(args.name))


def _models_create(client: Client, args: argparse.Namespace) -> object:
    tags = dict(key_value(t) for t in args.tag)
    return _show_model(client.create_registered_model(args.name, tags, args.description))


def _models_rename(client: Client, args: argparse.Namespace) -> object:
    return _show_model(client.rename_registered_model(args.name, args.new_name))


def _models_update(client: Client, args: argparse.Namespace) -> object:
    return _show_model(client.update_registered_model(args.name, args.description))


def _models_delete(client: Client, args: argparse.Namespace) -> object:
    client.delete_registered_model(args.name)
    return {"deleted": args.name}


def _models_history(client: Client, args: argparse.Namespace) -> object:
    events = client.list_model_events(args.name, args.version)
    header = ("TIME", "VERSION", "KIND", "ALIAS", "FROM", "TO", "USER")
    body = [
        (
            when(e.timestamp),
            str(e.version or ""),
            str(e.kind),
            e.alias,
            e.old_value,
            e.new_value,
            e.user_id,
        )
        for e in events
    ]
    return Shown(events, rows(header, body))


def _models_download(client: Client, args: argparse.Namespace) -> object:
    from tracklane.models.uri import download_model  # here: tracklane.models imports numpy

    return {"local_path": download_model(args.model_uri, args.dst_path, client)}


def _models_set_tag(client: Client, args: argparse.Namespace) -> object:
    client.set_registered_model_tag(args.name, args.key, args.value)
    return {"name": args.name, "key": args.key, "value": args.value}


def _models_delete_tag(client: Client, args: argparse.Namespace) -> object:
    client.delete_registered_model_tag(args.name, args.key)
    return {"name": args.name, "deleted_tag": args.key}


def _models_set_alias(client: Client, args: argparse.Namespace) -> object:
    client.set_registered_model_alias(args.name, args.alias, args.version)
    return _show_version(client.get_model_version_by_alias(args.name, args.alias))


def _models_delete_alias(client: Client, args: argparse.Namespace) -> object:
    client.delete_registered_model_alias(args.name, args.alias)
    return {"name": args.name, "deleted_alias": args.alias}


# -- versions ------------------------------------------------------------------------------------------


def _versions_list(client: Client, args: argparse.Namespace) -> object:
    clauses = [f"name = '{_quoted(args.name)}'"] if args.name is not None else []
    if args.filter:
        clauses.append(args.filter)  # the grammar has AND only: no parentheses needed
    found = client.search_model_versions(" and ".join(clauses), args.max_results, args.order_by or None)
    return _versions_table(found)


def _quoted(text: str) -> str:
    return text.replace("'", "''")  # the filter grammar's (and SQL's) escape


def _versions_get(client: Client, args: argparse.Namespace) -> object:
    if args.alias is not None:
        return _show_version(client.get_model_version_by_alias(args.name, args.alias))
    return _show_version(client.get_model_version(args.name, args.version))


def _versions_create(client: Client, args: argparse.Namespace) -> object:
    tags = dict(key_value(t) for t in args.tag)
    version = client.create_model_version(args.name, args.source, args.run_id, tags, args.description)
    return _show_version(version)


def _versions_update(client: Client, args: argparse.Namespace) -> object:
    return _show_version(client.update_model_version(args.name, args.version, args.description))


def _versions_delete(client: Client, args: argparse.Namespace) -> object:
    client.delete_model_version(args.name, args.version)
    return {"name": args.name, "deleted_version": args.version}


def _versions_transition_stage(client: Client, args: argparse.Namespace) -> object:
    version = client.transition_model_version_stage(
        args.name, args.version, args.stage, archive_existing_versions=args.archive_existing_versions
    )
    return _show_version(version)


def _versions_set_tag(client: Client, args: argparse.Namespace) -> object:
    client.set_model_version_tag(args.name, args.version, args.key, args.value)
    return {"name": args.name, "version": args.version, "key": args.key, "value": args.value}


def _versions_delete_tag(client: Client, args: argparse.Namespace) -> object:
    client.delete_model_version_tag(args.name, args.version, args.key)
    return {"name": args.name, "version": args.version, "deleted_tag": args.key}
