"""Fast paths of the metric write and chunk reads, per dialect, under SQLAlchemy's transaction.

PostgreSQL: chunk rows by COPY, latest values by one array upsert. COPY skips per-row statement
parsing and planning: with packed-bytea chunks stored uncompressed (`STORAGE EXTERNAL`, migration
0001) it moves several million points per second from one process. The latest-value upsert sends
its rows as arrays (`unnest`): one short statement psycopg prepares once, instead of SQLAlchemy
building a multi-row VALUES statement per call (0.5 ms instead of 1.7). Chunk reads use a binary
cursor: in the text format bytea travels hex-encoded, twice the bytes.

SQLite: the same statements straight on the sqlite3 connection (cached, prepared once), without
SQLAlchemy building and compiling a statement per call: with many runs per transaction (many
concurrent streams) that building was a third of the server's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklane_server.store import schema as t
from tracklane_server.store.points_channel import CHANNEL

# The metric_chunks columns in COPY order, with the binary wire type of each.
_COLUMNS = (
    ("run_id", "text"),
    ("key", "text"),
    ("seq", "int8"),
    ("first_step", "int8"),
    ("last_step", "int8"),
    ("count", "int4"),
    ("min_value", "float8"),
    ("max_value", "float8"),
    ("steps", "bytea"),
    ("values", "bytea"),
    ("timestamps", "bytea"),
)
_COPY_SQL = "COPY metric_chunks ({}) FROM STDIN (FORMAT BINARY)".format(
    ", ".join(f'"{name}"' for name, _ in _COLUMNS)
)
_TYPES = [kind for _, kind in _COLUMNS]
_INSERT_SQLITE = "INSERT INTO metric_chunks ({}) VALUES ({})".format(
    ", ".join(f'"{name}"' for name, _ in _COLUMNS), ", ".join("?" for _ in _COLUMNS)
)


def insert_chunks(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Adds chunk rows inside the connection's current transaction."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.executemany(_INSERT_SQLITE, [tuple(row[name] for name, _ in _COLUMNS) for row in rows])
        return
    if conn.dialect.name != "postgresql":
        conn.execute(t.metric_chunks.insert(), list(rows))
        return
    # The psycopg connection under SQLAlchemy's: same session, same open transaction.
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
        copy.set_types(_TYPES)
        for row in rows:
            copy.write_row([row[name] for name, _ in _COLUMNS])


# Same rule as sql_metrics._upsert_latest: a point replaces the latest value when its step is
# larger, or equal with a timestamp as late or later; chunk_seq always advances.
# The same statement NOTIFYs watchers of the run (delivered at commit, never on rollback): one
# round trip less per write.
_UPSERT_LATEST = """
WITH note AS MATERIALIZED (SELECT pg_notify(%(channel)s, %(run_id)s))
INSERT INTO latest_metrics AS lm (run_id, key, value, step, timestamp_ms, chunk_seq)
SELECT %(run_id)s, u.key, u.value, u.step, u.timestamp_ms, u.chunk_seq
FROM unnest(%(keys)s::text[], %(values)s::float8[], %(steps)s::int8[], %(stamps)s::int8[], %(chunks)s::int8[])
    AS u(key, value, step, timestamp_ms, chunk_seq), note
ON CONFLICT (run_id, key) DO UPDATE SET
    value = CASE WHEN {newer} THEN excluded.value ELSE lm.value END,
    step = CASE WHEN {newer} THEN excluded.step ELSE lm.step END,
    timestamp_ms = CASE WHEN {newer} THEN excluded.timestamp_ms ELSE lm.timestamp_ms END,
    chunk_seq = lm.chunk_seq + excluded.chunk_seq
RETURNING key, chunk_seq
""".format(
    newer="(excluded.step > lm.step"
    " OR (excluded.step = lm.step AND excluded.timestamp_ms >= lm.timestamp_ms))"
)


def upsert_latest_pg(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Updates latest values and reserves chunk numbers (rows of one run), and notifies the run's
    watchers at commit; returns key -> last chunk seq."""
    driver = conn.connection.driver_connection
    assert driver is not None
    params = {
        "channel": CHANNEL,
        "run_id": rows[0]["run_id"],
        "keys": [r["key"] for r in rows],
        "values": [r["value"] for r in rows],
        "steps": [r["step"] for r in rows],
        "stamps": [r["timestamp_ms"] for r in rows],
        "chunks": [r["chunk_seq"] for r in rows],
    }
    with driver.cursor() as cursor:
        cursor.execute(_UPSERT_LATEST, params)
        return {key: int(seq) for key, seq in cursor.fetchall()}


def fetch_rows(conn: Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of a query; on PostgreSQL through a binary-format cursor (bytea as raw bytes)."""
    if conn.dialect.name != "postgresql":
        return [tuple(row) for row in conn.execute(query)]
    # render_postcompile: expanding IN lists become plain parameters psycopg understands.
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor(binary=True) as cursor:
        cursor.execute(str(compiled), compiled.construct_params())
        return list(cursor.fetchall())


_UPSERT_LATEST_SQLITE = """
INSERT INTO latest_metrics (run_id, key, value, step, timestamp_ms, chunk_seq) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key) DO UPDATE SET
    value = CASE WHEN {newer} THEN excluded.value ELSE latest_metrics.value END,
    step = CASE WHEN {newer} THEN excluded.step ELSE latest_metrics.step END,
    timestamp_ms = CASE WHEN {newer} THEN excluded.timestamp_ms ELSE latest_metrics.timestamp_ms END,
    chunk_seq = latest_metrics.chunk_seq + excluded.chunk_seq
RETURNING chunk_seq
""".format(
    newer="(excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step"
    " AND excluded.timestamp_ms >= latest_metrics.timestamp_ms))"
)


def upsert_latest_sqlite(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """As upsert_latest_pg, on SQLite (watchers are woken in-process instead)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        found = {}
        for r in rows:
            cursor.execute(
                _UPSERT_LATEST_SQLITE,
                (r["run_id"], r["key"], r["value"], r["step"], r["timestamp_ms"], r["chunk_seq"]),
            )
            found[r["key"]] = int(cursor.fetchone()[0])
        return found
    finally:
        cursor.close()
