"""Metric summaries: min, max, first and count per (run, key) beside the latest value, indexed;
and ``runs.changed_ms``, when each run last changed (WatchExperiments reads it).

Existing rows get their summaries from the stored chunks: min and max and count from the chunks'
own columns in one statement; the first point from the chunks that start at the key's lowest step
(usually one), decoded here.

Plain ALTERs and CREATE INDEX, not batch mode: SQLite adds columns in place, where a batch rebuild
would copy the table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 17:02:00.000000
"""

from __future__ import annotations

import math

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SUMMARY_COLUMNS = ("min_value", "max_value", "first_value", "value_count")
_BATCH = 1000


def upgrade() -> None:
    for name in ("min_value", "max_value", "first_value"):
        op.add_column("latest_metrics", sa.Column(name, sa.Float(precision=53), nullable=True))
    # The server default stays: a replica still on the previous version inserts rows without them.
    for name in ("first_step", "first_timestamp_ms", "value_count"):
        op.add_column("latest_metrics", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    _backfill(op.get_bind())
    for name in _SUMMARY_COLUMNS:
        op.create_index(f"ix_latest_metrics_key_{name}", "latest_metrics", ["key", name])
    op.add_column("runs", sa.Column("changed_ms", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute("UPDATE runs SET changed_ms = COALESCE(deleted_time, end_time, start_time)")
    op.create_index("ix_runs_experiment_changed", "runs", ["experiment_id", "changed_ms", "run_id"])


def _backfill(conn: sa.Connection) -> None:
    conn.execute(
        sa.text(
            """
            UPDATE latest_metrics SET
                min_value = (SELECT MIN(c.min_value) FROM metric_chunks AS c
                             WHERE c.run_id = latest_metrics.run_id AND c.key = latest_metrics.key),
                max_value = (SELECT MAX(c.max_value) FROM metric_chunks AS c
                             WHERE c.run_id = latest_metrics.run_id AND c.key = latest_metrics.key),
                value_count = COALESCE((SELECT SUM(c.count) FROM metric_chunks AS c
                             WHERE c.run_id = latest_metrics.run_id AND c.key = latest_metrics.key), 0)
            """
        )
    )
    # The first point: among the chunks starting at the lowest step, each chunk's first point
    # (chunks are sorted by step, then timestamp); the earliest timestamp wins, then the lowest seq.
    rows = conn.execute(
        sa.text(
            """
            SELECT c.run_id, c.key, c.seq, c.count, c.steps, c."values", c.timestamps
            FROM metric_chunks AS c
            WHERE c.first_step = (SELECT MIN(m.first_step) FROM metric_chunks AS m
                                  WHERE m.run_id = c.run_id AND m.key = c.key)
            ORDER BY c.run_id, c.key, c.seq
            """
        )
    )
    best: dict[tuple[str, str], tuple[int, int, int, float]] = {}
    updates: list[dict[str, object]] = []
    for run_id, key, seq, count, steps, values, stamps in rows:
        step, stamp, value = _first_point(bytes(steps), bytes(values), bytes(stamps), int(count))
        found = best.get((run_id, key))
        if found is None or (step, stamp, seq) < found[:3]:
            best[(run_id, key)] = (step, stamp, seq, value)
    for (run_id, key), (step, stamp, _, value) in best.items():
        updates.append(
            {
                "r": run_id,
                "k": key,
                "s": step,
                "t": stamp,
                "v": None if math.isnan(value) else value,
            }
        )
    statement = sa.text(
        "UPDATE latest_metrics SET first_step = :s, first_timestamp_ms = :t, first_value = :v "
        "WHERE run_id = :r AND key = :k"
    )
    for start in range(0, len(updates), _BATCH):
        conn.execute(statement, updates[start : start + _BATCH])


def _first_point(steps: bytes, values: bytes, stamps: bytes, count: int) -> tuple[int, int, float]:
    from tracklane_server.store.metrics.chunk_codec import decode_ints  # the stored format's one decoder

    return (
        int(decode_ints(steps, count)[0]),
        int(decode_ints(stamps, count)[0]),
        float(np.frombuffer(values, "<f8", count=1)[0]),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_experiment_changed", table_name="runs")
    op.drop_column("runs", "changed_ms")
    for name in _SUMMARY_COLUMNS:
        op.drop_index(f"ix_latest_metrics_key_{name}", table_name="latest_metrics")
    for name in ("min_value", "max_value", "first_value", "first_step", "first_timestamp_ms", "value_count"):
        op.drop_column("latest_metrics", name)
