"""Per-experiment and per-registered-model permissions on SQL: the caller's level, and grants.

A user's level on an experiment (and so on its runs) or a registered model (and its versions) is
their explicit grant if there is one, else the server's default permission (``--auth-default-
permission``, NONE unless set). An explicit grant replaces the default, so a READ grant can limit
one user below a default of EDIT. Admins have every level. Nothing is cached across calls: a grant
or revocation takes effect on the next call, and every change bumps the access epoch so that open
streams check again at once (auth/revocation.py). Who may call what is auth's (auth/policy.py);
this module is the SQL that policy reads and the filters the searches apply.

Only admins learn from these calls whether a user name exists: for anyone else (``reveal_users``
False) granting to a name nobody has answers as granting does (and stores nothing: there is no one
to grant to), and removing it answers as removing a grant the user does not have.

The default permission travels with each call as a context variable (identity/principal.py, set
by the authorization interceptor), as the Principal does, so stores filtering search results need
no server handle and two servers in one process may differ.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracklane.exceptions import InvalidArgument, NotFound
from tracklane_server.identity.epoch import AccessEpoch
from tracklane_server.identity.principal import (
    Permission,
    Principal,
    current_default_permission,
    current_principal,
)
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.transactions import transaction, upsert

__all__ = [
    "Grant",
    "PermissionStore",
    "grant_creator",
    "readable_experiments",
    "readable_models",
]

log = logging.getLogger(__name__)

_exp_perms, _model_perms = t.experiment_permissions, t.registered_model_permissions


def _restricted(principal: Principal | None) -> Principal | None:
    """The principal whose reads must be filtered; None when everything is readable."""
    if principal is None or principal.is_admin:
        return None
    default = current_default_permission()
    if default is not None and default >= Permission.READ:
        return None  # every grant is READ or more: with such a default, all is readable
    return principal


def readable_experiments() -> sa.Select[tuple[int]] | None:
    """Ids of the experiments this call's caller may read, as a subquery; None: all of them."""
    principal = _restricted(current_principal())
    if principal is None:
        return None
    return sa.select(_exp_perms.c.experiment_id).where(_exp_perms.c.user_id == principal.user_id)


def readable_models() -> sa.Select[tuple[int]] | None:
    """Ids of the registered models this call's caller may read, as a subquery; None: all of them."""
    principal = _restricted(current_principal())
    if principal is None:
        return None
    return sa.select(_model_perms.c.model_id).where(_model_perms.c.user_id == principal.user_id)


def grant_creator(conn: Connection, *, experiment_id: int | None = None, model_id: int | None = None) -> None:
    """MANAGE for this call's caller on what they just created, in the creating transaction."""
    principal = current_principal()
    if principal is None:
        return
    row = {"user_id": principal.user_id, "permission": Permission.MANAGE.name}
    if experiment_id is not None:
        conn.execute(_exp_perms.insert().values(experiment_id=experiment_id, **row))
    else:
        conn.execute(_model_perms.insert().values(model_id=model_id, **row))


@dataclass(frozen=True, slots=True)
class Grant:
    """One stored permission: on experiment ``experiment_id`` or on model ``model_name``."""

    user_name: str
    permission: Permission
    experiment_id: str = ""
    model_name: str = ""


def _level(stored: str | None) -> Permission | None:
    """The caller's effective level from their stored grant (None: none) and the default."""
    return Permission[stored] if stored is not None else current_default_permission()


def _experiment_key(experiment_id: str) -> int | None:
    """The integer key, or None for an id that cannot exist (so no grant can name it)."""
    if experiment_id.isascii() and experiment_id.isdigit() and len(experiment_id) <= 18:
        return int(experiment_id)
    return None


class PermissionStore:
    """Looks up a caller's level on a resource; grants, revokes and lists permissions."""

    def __init__(self, engine: Engine, epoch: AccessEpoch | None = None) -> None:
        self.engine = engine
        #: Bumped after every grant change (a lower or removed grant must reach open streams).
        self.epoch = epoch or AccessEpoch()

    # -- the caller's level -------------------------------------------------------------------------

    def experiment_levels(
        self, principal: Principal, experiment_ids: Sequence[str]
    ) -> dict[str, Permission | None]:
        """The caller's level on each experiment, existing or not (one query for all of them)."""
        if principal.is_admin:
            return dict.fromkeys(experiment_ids, Permission.MANAGE)
        keys = {e: _experiment_key(e) for e in experiment_ids}
        stored: dict[int, str] = {}
        if wanted := sorted({k for k in keys.values() if k is not None}):
            with transaction(self.engine) as conn:
                stored = dict(
                    conn.execute(
                        sa.select(_exp_perms.c.experiment_id, _exp_perms.c.permission).where(
                            _exp_perms.c.experiment_id.in_(wanted), _exp_perms.c.user_id == principal.user_id
                        )
                    ).all()
                )
        return {e: _level(stored.get(k) if k is not None else None) for e, k in keys.items()}

    def experiment_level_by_name(self, principal: Principal, name: str) -> Permission | None:
        """The caller's level on the experiment called ``name`` (existing or not)."""
        if principal.is_admin:
            return Permission.MANAGE
        with transaction(self.engine) as conn:
            stored = conn.execute(
                sa.select(_exp_perms.c.permission)
                .join(t.experiments, t.experiments.c.experiment_id == _exp_perms.c.experiment_id)
                .where(t.experiments.c.name == name, _exp_perms.c.user_id == principal.user_id)
            ).scalar_one_or_none()
        return _level(stored)

    def run_levels(self, principal: Principal, run_ids: Sequence[str]) -> dict[str, Permission | None]:
        """The caller's level on each run's experiment (one query for all the runs)."""
        if principal.is_admin:
            return dict.fromkeys(run_ids, Permission.MANAGE)
        unique = sorted(set(run_ids))
        with transaction(self.engine) as conn:
            stored = dict(
                conn.execute(
                    sa.select(t.runs.c.run_id, _exp_perms.c.permission)
                    .join(
                        _exp_perms,
                        sa.and_(
                            _exp_perms.c.experiment_id == t.runs.c.experiment_id,
                            _exp_perms.c.user_id == principal.user_id,
                        ),
                    )
                    .where(t.runs.c.run_id.in_(unique))
                ).all()
            )
        return {run_id: _level(stored.get(run_id)) for run_id in run_ids}

    def model_level(self, principal: Principal, name: str) -> Permission | None:
        """The caller's level on a registered model found by its current name."""
        if principal.is_admin:
            return Permission.MANAGE
        with transaction(self.engine) as conn:
            stored = conn.execute(
                sa.select(_model_perms.c.permission)
                .join(t.registered_models, t.registered_models.c.model_id == _model_perms.c.model_id)
                .where(t.registered_models.c.name == name, _model_perms.c.user_id == principal.user_id)
            ).scalar_one_or_none()
        return _level(stored)

    def model_exists(self, name: str) -> bool:
        with transaction(self.engine) as conn:
            return (
                conn.execute(
                    sa.select(t.registered_models.c.model_id).where(t.registered_models.c.name == name)
                ).first()
                is not None
            )

    # -- grants -------------------------------------------------------------------------------------

    def set_experiment_permission(
        self, experiment_id: str, user_name: str, permission: Permission, *, reveal_users: bool = True
    ) -> Grant:
        """Grants (or replaces) a user's permission on an experiment."""
        with transaction(self.engine) as conn:
            pk = self._experiment(conn, experiment_id)
            user_id = _user_id(conn, user_name, reveal_users)
            if user_id is not None:
                _replace(conn, _exp_perms, {"experiment_id": pk, "user_id": user_id}, permission)
        if user_id is None:
            _hidden_miss("experiment", str(pk))
        self.epoch.bump()
        return Grant(user_name, permission, experiment_id=str(pk))

    def delete_experiment_permission(
        self, experiment_id: str, user_name: str, *, reveal_users: bool = True
    ) -> None:
        with transaction(self.engine) as conn:
            pk = self._experiment(conn, experiment_id)
            user_id = _user_id(conn, user_name, reveal_users)
            deleted = conn.execute(
                _exp_perms.delete().where(_exp_perms.c.experiment_id == pk, _exp_perms.c.user_id == user_id)
            ).rowcount
        self.epoch.bump()
        if not deleted:
            raise NotFound(
                f"user {user_name!r} has no permission on experiment {experiment_id!r}", field="user_name"
            )

    def list_experiment_permissions(self, experiment_id: str) -> list[Grant]:
        with transaction(self.engine) as conn:
            pk = self._experiment(conn, experiment_id)
            rows = conn.execute(
                sa.select(t.users.c.name, _exp_perms.c.permission)
                .join(t.users, t.users.c.user_id == _exp_perms.c.user_id)
                .where(_exp_perms.c.experiment_id == pk)
                .order_by(t.users.c.name)
            ).all()
        return [Grant(r.name, Permission[r.permission], experiment_id=str(pk)) for r in rows]

    def set_model_permission(
        self, name: str, user_name: str, permission: Permission, *, reveal_users: bool = True
    ) -> Grant:
        """Grants (or replaces) a user's permission on a registered model (kept across renames)."""
        with transaction(self.engine) as conn:
            model_id = _model_id(conn, name)
            user_id = _user_id(conn, user_name, reveal_users)
            if user_id is not None:
                _replace(conn, _model_perms, {"model_id": model_id, "user_id": user_id}, permission)
        if user_id is None:
            _hidden_miss("registered model", name)
        self.epoch.bump()
        return Grant(user_name, permission, model_name=name)

    def delete_model_permission(self, name: str, user_name: str, *, reveal_users: bool = True) -> None:
        with transaction(self.engine) as conn:
            model_id = _model_id(conn, name)
            user_id = _user_id(conn, user_name, reveal_users)
            deleted = conn.execute(
                _model_perms.delete().where(
                    _model_perms.c.model_id == model_id, _model_perms.c.user_id == user_id
                )
            ).rowcount
        self.epoch.bump()
        if not deleted:
            raise NotFound(
                f"user {user_name!r} has no permission on registered model {name!r}", field="user_name"
            )

    def list_model_permissions(self, name: str) -> list[Grant]:
        with transaction(self.engine) as conn:
            model_id = _model_id(conn, name)
            rows = conn.execute(
                sa.select(t.users.c.name, _model_perms.c.permission)
                .join(t.users, t.users.c.user_id == _model_perms.c.user_id)
                .where(_model_perms.c.model_id == model_id)
                .order_by(t.users.c.name)
            ).all()
        return [Grant(r.name, Permission[r.permission], model_name=name) for r in rows]

    def list_user_permissions(self, user_name: str) -> tuple[list[Grant], list[Grant]]:
        """A user's grants on experiments (by id) and on registered models (by name)."""
        with transaction(self.engine) as conn:
            user_id = _user_id(conn, user_name)
            experiments = conn.execute(
                sa.select(_exp_perms.c.experiment_id, _exp_perms.c.permission)
                .where(_exp_perms.c.user_id == user_id)
                .order_by(_exp_perms.c.experiment_id)
            ).all()
            models = conn.execute(
                sa.select(t.registered_models.c.name, _model_perms.c.permission)
                .join(t.registered_models, t.registered_models.c.model_id == _model_perms.c.model_id)
                .where(_model_perms.c.user_id == user_id)
                .order_by(t.registered_models.c.name)
            ).all()
        return (
            [
                Grant(user_name, Permission[r.permission], experiment_id=str(r.experiment_id))
                for r in experiments
            ],
            [Grant(user_name, Permission[r.permission], model_name=r.name) for r in models],
        )

    @staticmethod
    def _experiment(conn: Connection, experiment_id: str) -> int:
        pk = _experiment_key(experiment_id)
        if (
            pk is None
            or conn.execute(
                sa.select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id == pk)
            ).first()
            is None
        ):
            raise NotFound(f"experiment {experiment_id!r} does not exist", field="experiment_id")
        return pk


@overload
def _user_id(conn: Connection, user_name: str, reveal: Literal[True] = ...) -> int: ...
@overload
def _user_id(conn: Connection, user_name: str, reveal: bool) -> int | None: ...
def _user_id(conn: Connection, user_name: str, reveal: bool = True) -> int | None:
    """The user's id; a missing user is NotFound when ``reveal``, else None (the caller answers as
    if the user existed)."""
    if not user_name:
        raise InvalidArgument("user_name: give the user's name", field="user_name")
    user_id = conn.execute(
        sa.select(t.users.c.user_id).where(t.users.c.name == user_name)
    ).scalar_one_or_none()
    if user_id is None:
        if not reveal:
            return None
        raise NotFound(f"user {user_name!r} does not exist", field="user_name")
    return int(user_id)


def _hidden_miss(kind: str, ident: str) -> None:
    # For the operator: many of these from one user look like someone guessing user names.
    caller = current_principal()
    log.info(
        "a grant on %s %r named a user that does not exist (by %s); answered as if it did",
        kind,
        ident,
        caller.name if caller else "?",
    )


def _model_id(conn: Connection, name: str) -> int:
    if not name:
        raise InvalidArgument("name: give a registered model name", field="name")
    model_id = conn.execute(
        sa.select(t.registered_models.c.model_id).where(t.registered_models.c.name == name)
    ).scalar_one_or_none()
    if model_id is None:
        raise NotFound(f"registered model {name!r} does not exist", field="name")
    return int(model_id)


def _replace(conn: Connection, table: sa.Table, key: dict[str, int], permission: Permission) -> None:
    """Sets the row's permission, inserting it when missing (also against a concurrent grant)."""
    upsert(conn, table, [{**key, "permission": permission.name}], keys=list(key), update=["permission"])
