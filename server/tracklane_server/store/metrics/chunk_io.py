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

from tracklane_server.store.db import schema as t
from tracklane_server.store.db.transactions import now_ms
from tracklane_server.store.metrics.points_channel import CHANNEL

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


# Same rules as points._upsert_latest: a point replaces the latest value when its step is
# larger, or equal with a timestamp as late or later; the first point is replaced only by one at a
# lower step, or the same step with an earlier timestamp (so the first stored wins a full tie);
# min/max ignore NULL (a batch of only NaN); counts and chunk_seq add up.
# The same statement NOTIFYs watchers of the run (delivered at commit, never on rollback): one
# round trip less per write.
_NEWER = (
    "(excluded.step > {t}.step OR (excluded.step = {t}.step AND excluded.timestamp_ms >= {t}.timestamp_ms))"
)
_EARLIER = (
    "(excluded.first_step < {t}.first_step"
    " OR (excluded.first_step = {t}.first_step AND excluded.first_timestamp_ms < {t}.first_timestamp_ms))"
)
_SET = """
    value = CASE WHEN {newer} THEN excluded.value ELSE {t}.value END,
    step = CASE WHEN {newer} THEN excluded.step ELSE {t}.step END,
    timestamp_ms = CASE WHEN {newer} THEN excluded.timestamp_ms ELSE {t}.timestamp_ms END,
    chunk_seq = {t}.chunk_seq + excluded.chunk_seq,
    min_value = {least},
    max_value = {greatest},
    first_value = CASE WHEN {earlier} THEN excluded.first_value ELSE {t}.first_value END,
    first_step = CASE WHEN {earlier} THEN excluded.first_step ELSE {t}.first_step END,
    first_timestamp_ms = CASE WHEN {earlier} THEN excluded.first_timestamp_ms ELSE {t}.first_timestamp_ms END,
    value_count = {t}.value_count + excluded.value_count
"""


def _set(table: str, extreme: str, smallest: str, largest: str) -> str:
    """The SET clause; ``extreme`` is a NULL-skipping min/max of {a} and {b} by the function {f}."""
    return _SET.format(
        t=table,
        newer=_NEWER.format(t=table),
        earlier=_EARLIER.format(t=table),
        least=extreme.format(f=smallest, a=f"{table}.min_value", b="excluded.min_value"),
        greatest=extreme.format(f=largest, a=f"{table}.max_value", b="excluded.max_value"),
    )


_COLUMNS_LATEST = (
    "run_id, key, value, step, timestamp_ms, chunk_seq,"
    " min_value, max_value, first_value, first_step, first_timestamp_ms, value_count"
)
# PostgreSQL's LEAST/GREATEST skip NULLs.
_UPSERT_LATEST = f"""
WITH note AS MATERIALIZED (SELECT pg_notify(%(channel)s, %(run_id)s))
INSERT INTO latest_metrics AS lm ({_COLUMNS_LATEST})
SELECT %(run_id)s, u.*
FROM unnest(
    %(keys)s::text[], %(values)s::float8[], %(steps)s::int8[], %(stamps)s::int8[], %(chunks)s::int8[],
    %(mins)s::float8[], %(maxes)s::float8[], %(firsts)s::float8[], %(first_steps)s::int8[],
    %(first_stamps)s::int8[], %(counts)s::int8[]
) AS u, note
ON CONFLICT (run_id, key) DO UPDATE SET {_set("lm", "{f}({a}, {b})", "LEAST", "GREATEST")}
RETURNING key, chunk_seq
"""


# The run's change time (store/tracking/run_changes.py), after its key rows: one lock order for all writers.
_TOUCH_PG = "UPDATE runs SET changed_ms = %(now)s WHERE run_id = %(run_id)s AND changed_ms < %(now)s"
_TOUCH_SQLITE = "UPDATE runs SET changed_ms = ? WHERE run_id = ? AND changed_ms < ?"


def upsert_latest_pg(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Updates latest values and summaries and reserves chunk numbers (rows of one run), stamps the
    run changed, and notifies the run's watchers at commit; returns key -> last chunk seq."""
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
        "mins": [r["min_value"] for r in rows],
        "maxes": [r["max_value"] for r in rows],
        "firsts": [r["first_value"] for r in rows],
        "first_steps": [r["first_step"] for r in rows],
        "first_stamps": [r["first_timestamp_ms"] for r in rows],
        "counts": [r["value_count"] for r in rows],
    }
    with driver.cursor() as cursor:
        cursor.execute(_UPSERT_LATEST, params)
        found = {key: int(seq) for key, seq in cursor.fetchall()}
        cursor.execute(_TOUCH_PG, {"now": now_ms(), "run_id": params["run_id"]})
        return found


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


# SQLite's two-argument min()/max() return NULL if either is NULL: coalesce each with the other.
_UPSERT_LATEST_SQLITE = f"""
INSERT INTO latest_metrics ({_COLUMNS_LATEST}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key) DO UPDATE SET {
    _set("latest_metrics", "{f}(coalesce({a}, {b}), coalesce({b}, {a}))", "min", "max")
}
RETURNING chunk_seq
"""
_LATEST_ORDER = (
    "run_id", "key", "value", "step", "timestamp_ms", "chunk_seq",
    "min_value", "max_value", "first_value", "first_step", "first_timestamp_ms", "value_count",
)  # fmt: skip


def upsert_latest_sqlite(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """As upsert_latest_pg (rows of one run), on SQLite (watchers are woken in-process instead)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        found = {}
        for r in rows:
            cursor.execute(_UPSERT_LATEST_SQLITE, tuple(r[name] for name in _LATEST_ORDER))
            found[r["key"]] = int(cursor.fetchone()[0])
        now = now_ms()
        cursor.execute(_TOUCH_SQLITE, (now, rows[0]["run_id"], now))
        return found
    finally:
        cursor.close()
