"""The database: engine creation, connectivity check and schema migration (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from tracklane.exceptions import FailedPrecondition, InvalidArgument, Unavailable

__all__ = ["check_connection", "create_engine", "current_revision", "head_revision", "upgrade"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant: serialises concurrent `db upgrade`s (replicas starting together) on PostgreSQL.
_MIGRATION_LOCK_ID = 0x7472_616B
# A database host that vanishes (power loss, network cut) sends no RST: without these, a pooled
# connection's next query (even the pre-ping) waits for the kernel's ~15 min retransmission limit.
# Unacknowledged data for 15 s, or 3 keepalives unanswered after 20 s idle, ends the connection.
_DEAD_PEER_DETECTION = {
    "keepalives": 1,
    "keepalives_idle": 20,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}


def create_engine(uri: str, *, pool_size: int = 16) -> Engine:
    """An engine for ``sqlite:///PATH`` or ``postgresql+psycopg://...``, tuned for the server.

    Raises:
        InvalidArgument: the URI does not parse or names an unsupported database.
    """
    try:
        url = sa.make_url(uri)
    except sa.exc.ArgumentError:
        raise InvalidArgument(
            f"backend store URI does not parse: {uri!r}", field="backend_store_uri"
        ) from None
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if url.drivername != "postgresql+psycopg":
            raise InvalidArgument(
                f"unsupported PostgreSQL driver {url.drivername!r}: use postgresql+psycopg://",
                field="backend_store_uri",
            )
        return sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,  # a restarted PostgreSQL costs one failed call, not a broken pool
            connect_args={"connect_timeout": 5, "application_name": "tracklane", **_DEAD_PEER_DETECTION},
        )
    raise InvalidArgument(
        f"unsupported backend store {url.get_backend_name()!r}: use sqlite:/// or postgresql+psycopg://",
        field="backend_store_uri",
    )


def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database and url.database != ":memory:":
        path = Path(url.database).expanduser()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created 0600 before SQLite opens it (SQLite would make it 0644): it holds every
        # experiment and the users' token hashes; its -wal and -shm files copy this mode.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        # WAL: readers don't block the writer; NORMAL sync is durable across process crashes in WAL.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # LIKE is case-sensitive on PostgreSQL; make SQLite agree (ILIKE is the insensitive one).
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    return engine


def check_connection(engine: Engine) -> None:
    """Raises Unavailable, with one line naming the database, when it cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        where = engine.url.render_as_string(hide_password=True)
        raise Unavailable(f"cannot reach the backend store {where}: {reason}") from None


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration this code ships."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's migration, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrates the schema to the newest revision (a no-op when it is there already).

    Args:
        engine: the database.
        revision: stop at this revision instead (the migration tests load rows of an older schema).

    Raises:
        FailedPrecondition: the database was migrated by a newer Tracklane.
    """
    config = _alembic_config()
    scripts = ScriptDirectory.from_config(config)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and scripts.get_revision(current) is None:
            raise FailedPrecondition(
                f"the database is at schema revision {current!r}, which this Tracklane does not know: "
                "upgrade Tracklane"
            )
        if current == (scripts.get_current_head() if revision == "head" else revision):
            return
        config.attributes["connection"] = conn
        log.info("migrating database schema", extra={"from_revision": current, "to_revision": revision})
        command.upgrade(config, revision)
