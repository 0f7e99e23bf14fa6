"""What every SQL store needs: transactions with error translation, portable upserts, the clock."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from tracklane.exceptions import NotFound, Unavailable


def now_ms() -> int:
    """Wall-clock epoch milliseconds."""
    return time.time_ns() // 1_000_000


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One database transaction; lost connections and lock time-outs become Unavailable (retryable)."""
    try:
        with engine.begin() as conn:
            yield conn
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise Unavailable(f"the backend store is unavailable: {reason}; retry later") from exc
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise Unavailable("the backend store connection was lost; retry later") from exc
        raise


def insert_for(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT construct, which has ``on_conflict_do_update/nothing`` on both databases."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET update = excluded.update, for many rows."""
    if not rows:
        return
    stmt = insert_for(conn, table)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: getattr(stmt.excluded, c) for c in update}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt, list(rows))


def experiment_pk(experiment_id: str) -> int:
    """The integer key behind an opaque experiment id; an id that cannot exist is simply not found."""
    if not experiment_id.isascii() or not experiment_id.isdigit() or len(experiment_id) > 18:
        raise NotFound(f"experiment {experiment_id!r} does not exist", field="experiment_id")
    return int(experiment_id)
