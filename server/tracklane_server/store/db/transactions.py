"""What every SQL store needs: transactions with error translation, portable upserts, the clock."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from tracklane.exceptions import NotFound, ResourceExhausted, Unavailable


def now_ms() -> int:
    """Wall-clock epoch milliseconds."""
    return time.time_ns() // 1_000_000


# SQLite's primary result code for "database or disk is full" (extended codes keep it in the low byte).
_SQLITE_FULL = 13
# PostgreSQL's SQLSTATE disk_full ("could not extend file ...: No space left on device").
_PG_DISK_FULL = "53100"


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One database transaction; lost connections and lock time-outs become Unavailable (retryable),
    a full disk ResourceExhausted (not retryable: an operator must free space)."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        with engine.begin() as conn:
            yield conn
    except sa.exc.DBAPIError as exc:
        translated = _translated(exc)
        if translated is exc:
            raise
        raise translated from exc
    except dbapi_error as exc:
        # The hot paths run statements on the driver's own cursor: its errors come unwrapped.
        wrapped = sa.exc.DBAPIError.instance(None, None, exc, dbapi_error, dialect=engine.dialect)
        translated = _translated(wrapped) if isinstance(wrapped, sa.exc.DBAPIError) else wrapped
        if translated is wrapped:
            raise
        raise translated from exc


def _translated(exc: sa.exc.DBAPIError) -> Exception:
    """The Tracklane error for a database error, or ``exc`` itself (a fault: INTERNAL)."""
    if isinstance(exc, sa.exc.OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        if _disk_full(exc.orig):
            return ResourceExhausted(
                f"the backend store's disk is full ({reason}); nothing was stored: an operator must "
                "free space before writes can succeed"
            )
        return Unavailable(f"the backend store is unavailable: {reason}; retry later")
    if exc.connection_invalidated:
        return Unavailable("the backend store connection was lost; retry later")
    return exc


def _disk_full(error: BaseException | None) -> bool:
    sqlite_code = getattr(error, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF == _SQLITE_FULL
    return getattr(error, "sqlstate", None) == _PG_DISK_FULL


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
