"""What every registry change shares: one transaction that starts by locking the model's row.

Every change to a model starts with one UPDATE of its row (:meth:`RegistryBase._lock`). That
takes the row lock on PostgreSQL and the database write lock on SQLite before anything is read,
so changes to one model are serialised: version numbers come from a counter on the row without
gaps or duplicates, an alias moves atomically, and each history entry records the true old value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracklane.entities.model_registry import ModelEventKind
from tracklane.exceptions import Aborted, AlreadyExists, InvalidArgument, NotFound
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.transactions import transaction

_models = t.registered_models


def record(
    conn: Connection,
    model_id: int,
    user: str,
    now: int,
    kind: ModelEventKind,
    *,
    version: int = 0,
    alias: str = "",
    old: str = "",
    new: str = "",
) -> None:
    """Appends one entry to the model's history, in the transaction of the change it records."""
    conn.execute(
        t.model_events.insert().values(
            model_id=model_id,
            version=version,
            kind=kind.value,
            alias=alias,
            old_value=old,
            new_value=new,
            user_id=user[: t.USER_LENGTH],
            time=now,
        )
    )


class RegistryBase:
    """The engine and the locked-transaction helpers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- plumbing -------------------------------------------------------------------------------------

    @contextmanager
    def _write(self, *, exists: str = "", field: str = "name") -> Iterator[Connection]:
        """A transaction in which a unique-constraint race becomes AlreadyExists(``exists``)
        and any other constraint race Aborted (retryable)."""
        try:
            with transaction(self.engine) as conn:
                yield conn
        except sa.exc.IntegrityError as exc:
            if not exists:
                raise Aborted("a concurrent change to this model got in the way; retry") from exc
            raise AlreadyExists(exists, field=field) from exc

    @staticmethod
    def _lock(conn: Connection, name: str, now: int, *, bump_version: bool = False) -> sa.Row[Any]:
        """Touches the model's update time (and counter), locking it; NotFound when it is missing."""
        if not name:
            raise InvalidArgument("name: give a registered model name", field="name")
        values: dict[str, Any] = {"update_time": now}
        if bump_version:
            values["last_version"] = _models.c.last_version + 1
        row = conn.execute(
            _models.update()
            .where(_models.c.name == name)
            .values(**values)
            .returning(_models.c.model_id, _models.c.name, _models.c.last_version, _models.c.description)
        ).first()
        if row is None:
            raise NotFound(f"registered model {name!r} does not exist", field="name")
        return row
