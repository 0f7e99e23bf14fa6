"""``tracklane permissions set|delete|list``: who may read, edit or manage an experiment or a model.

tracklane permissions set --experiment-id 7 alice EDIT
tracklane permissions delete --model churn alice
tracklane permissions list --experiment-id 7      # needs MANAGE on it
tracklane permissions list [--user bob]           # your own grants (anyone's, for admins)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from tracklane._permission_methods import PERMISSIONS, ExperimentPermission, RegisteredModelPermission
from tracklane.client import Client

__all__ = ["PermissionListing", "add_commands"]


@dataclass(frozen=True)
class PermissionListing:
    """What ``permissions list`` prints: one row per grant."""

    experiments: list[ExperimentPermission] = field(default_factory=list)
    registered_models: list[RegisteredModelPermission] = field(default_factory=list)

    def render_table(self) -> str:
        rows = [("experiment", p.experiment_id, p.user_name, p.permission) for p in self.experiments]
        rows += [("registered model", p.name, p.user_name, p.permission) for p in self.registered_models]
        header = ("KIND", "RESOURCE", "USER", "PERMISSION")
        widths = [max([len(header[i]), *(len(r[i]) for r in rows)]) for i in range(4)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]
        ]
        return "\n".join(lines) + "\n"


def add_commands(commands: Any, with_common: Any) -> None:
    """Adds ``permissions`` and its subcommands; ``with_common`` adds --tracking-uri and --output."""
    permissions = commands.add_parser(
        "permissions", help="grant, revoke and list permissions on experiments and registered models"
    )
    sub = permissions.add_subparsers(dest="permissions_command", required=True, metavar="COMMAND")

    grant = with_common(sub.add_parser("set", help="grant (or replace) a user's permission"))
    _resource(grant, required=True)
    grant.add_argument("user", help="user name")
    grant.add_argument("permission", type=str.upper, choices=PERMISSIONS, help="READ, EDIT or MANAGE")
    grant.set_defaults(handler=_set)

    revoke = with_common(sub.add_parser("delete", help="remove a user's permission"))
    _resource(revoke, required=True)
    revoke.add_argument("user", help="user name")
    revoke.set_defaults(handler=_delete)

    listing = with_common(
        sub.add_parser("list", help="the grants on a resource, or a user's grants (default: yours)")
    )
    _resource(listing, required=False)
    listing.add_argument("--user", default="", help="whose grants (admins only for others)")
    listing.set_defaults(handler=_list)


def _resource(parser: argparse.ArgumentParser, *, required: bool) -> None:
    which = parser.add_mutually_exclusive_group(required=required)
    which.add_argument("--experiment-id", default="", help="an experiment (and its runs)")
    which.add_argument("--model", default="", help="a registered model by name (and its versions)")


def _set(client: Client, args: argparse.Namespace) -> object:
    if args.experiment_id:
        granted = client.set_experiment_permission(args.experiment_id, args.user, args.permission)
        return PermissionListing(experiments=[granted])
    return PermissionListing(
        registered_models=[client.set_registered_model_permission(args.model, args.user, args.permission)]
    )


def _delete(client: Client, args: argparse.Namespace) -> object:
    if args.experiment_id:
        client.delete_experiment_permission(args.experiment_id, args.user)
        return {"deleted": f"{args.user} on experiment {args.experiment_id}"}
    client.delete_registered_model_permission(args.model, args.user)
    return {"deleted": f"{args.user} on registered model {args.model}"}


def _list(client: Client, args: argparse.Namespace) -> object:
    if args.experiment_id:
        return PermissionListing(experiments=client.list_experiment_permissions(args.experiment_id))
    if args.model:
        return PermissionListing(registered_models=client.list_registered_model_permissions(args.model))
    experiments, models = client.list_user_permissions(args.user)
    return PermissionListing(experiments, models)
