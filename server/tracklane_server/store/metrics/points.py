"""Metric points on SQL: chunked writes with the latest value kept in step, and M4 downsampling.

A chunk is one row holding up to CHUNK_POINTS points of one (run, key) as packed little-endian
arrays, sorted by (step, timestamp); steps and timestamps compactly when they follow a pattern
(chunk_codec.py). Reads fetch the chunks overlapping a step range a few at a time and merge them
(pages.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklane_server.store.db import schema as t
from tracklane_server.store.db.transactions import insert_for
from tracklane_server.store.metrics.chunk_codec import encode_ints
from tracklane_server.store.metrics.chunk_io import insert_chunks, upsert_latest_pg, upsert_latest_sqlite
from tracklane_server.store.tracking.run_changes import touch

CHUNK_POINTS = 4096

I64 = np.dtype("<i8")
F64 = np.dtype("<f8")


@dataclass(frozen=True)
class Points:
    """Columns of one metric's points: steps, values and timestamps (epoch ms) of equal length."""

    steps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    timestamps: npt.NDArray[np.int64]

    @classmethod
    def from_tuples(cls, points: Sequence[tuple[int, float, int]]) -> Points:
        """From (step, value, timestamp) tuples."""
        if not points:
            return cls.empty()
        steps, values, stamps = zip(*points, strict=True)
        return cls(np.array(steps, I64), np.array(values, F64), np.array(stamps, I64))

    @classmethod
    def empty(cls) -> Points:
        return cls(np.empty(0, I64), np.empty(0, F64), np.empty(0, I64))

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    def sorted(self) -> Points:
        """Ordered by step, then timestamp; ties keep their order (a stable sort). Free when sorted."""
        if len(self) < 2:
            return self
        # Compared pairwise, not with np.diff, which wraps around at the int64 extremes.
        s, t = self.steps, self.timestamps
        if np.all((s[1:] > s[:-1]) | ((s[1:] == s[:-1]) & (t[1:] >= t[:-1]))):
            return self
        order = np.lexsort((self.timestamps, self.steps))
        return Points(self.steps[order], self.values[order], self.timestamps[order])

    def take(self, lo: int, hi: int) -> Points:
        return Points(self.steps[lo:hi], self.values[lo:hi], self.timestamps[lo:hi])

    def step_range(self, start: int | None, end: int | None) -> Points:
        """The points with start <= step <= end (these are sorted by step)."""
        lo = 0 if start is None else int(np.searchsorted(self.steps, start, side="left"))
        hi = len(self) if end is None else int(np.searchsorted(self.steps, end, side="right"))
        return self.take(lo, hi)


def _nan_to_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def write_points(
    conn: Connection, run_id: str, by_key: Mapping[str, Points | Sequence[tuple[int, float, int]]]
) -> int:
    """Appends points to each key's history and updates its latest value and summaries; returns
    points written.

    One upsert per batch updates every key's latest value and summaries (min, max, first, count)
    and reserves its chunk numbers (the row lock serialises concurrent writers of the same key; on
    PostgreSQL it also NOTIFYs the run's watchers at commit); then one COPY (PostgreSQL) or
    multi-row insert adds the chunks. The summaries come from the chunks' own min and max: no
    extra pass over the points.
    """
    prepared: dict[str, list[_Chunk]] = {}
    # Sorted keys: concurrent writers lock latest_metrics rows in one order, so never deadlock.
    for key, points in sorted(by_key.items()):
        cols = points if isinstance(points, Points) else Points.from_tuples(points)
        if len(cols):
            cols = cols.sorted()
            prepared[key] = [
                _Chunk(cols.take(lo, lo + CHUNK_POINTS)) for lo in range(0, len(cols), CHUNK_POINTS)
            ]
    if not prepared:
        return 0
    latest_rows: list[dict[str, object]] = []
    for key, chunks in prepared.items():
        head, tail = chunks[0].points, chunks[-1].points
        lows = [c.low for c in chunks if c.low is not None]
        highs = [c.high for c in chunks if c.high is not None]
        latest_rows.append(
            {
                "run_id": run_id,
                "key": key,
                "value": _nan_to_none(tail.values[-1]),
                "step": int(tail.steps[-1]),
                "timestamp_ms": int(tail.timestamps[-1]),
                "chunk_seq": len(chunks),
                "min_value": min(lows) if lows else None,
                "max_value": max(highs) if highs else None,
                "first_value": _nan_to_none(head.values[0]),
                "first_step": int(head.steps[0]),
                "first_timestamp_ms": int(head.timestamps[0]),
                "value_count": sum(len(c.points) for c in chunks),
            }
        )
    # Each also stamps the run changed (run_changes.py), on the driver's cursor on the hot path.
    if conn.dialect.name == "postgresql":
        last_seq = upsert_latest_pg(conn, latest_rows)
    elif conn.dialect.name == "sqlite":
        last_seq = upsert_latest_sqlite(conn, latest_rows)
    else:
        last_seq = _upsert_latest(conn, latest_rows)
        touch(conn, run_id, notify=False)
    chunk_rows: list[dict[str, object]] = []
    for key, chunks in prepared.items():
        first_seq = last_seq[key] - len(chunks) + 1
        chunk_rows.extend(chunk.row(run_id, key, first_seq + i) for i, chunk in enumerate(chunks))
    insert_chunks(conn, chunk_rows)
    return sum(len(c.points) for chunks in prepared.values() for c in chunks)


def _upsert_latest(conn: Connection, rows: list[dict[str, object]]) -> dict[str, int]:
    """The portable form of chunk_io's upserts (same rules), for other dialects."""
    lm = t.latest_metrics
    stmt = insert_for(conn, lm)
    ex = stmt.excluded
    newer = sa.or_(ex.step > lm.c.step, sa.and_(ex.step == lm.c.step, ex.timestamp_ms >= lm.c.timestamp_ms))
    earlier = sa.or_(
        ex.first_step < lm.c.first_step,
        sa.and_(ex.first_step == lm.c.first_step, ex.first_timestamp_ms < lm.c.first_timestamp_ms),
    )

    def either(mine: Any, theirs: Any, pick: Any) -> Any:  # NULL (no finite value) loses to any value
        return sa.case(
            (mine.is_(None), theirs), (theirs.is_(None), mine), else_=sa.case((pick, theirs), else_=mine)
        )

    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={
            "value": sa.case((newer, ex.value), else_=lm.c.value),
            "step": sa.case((newer, ex.step), else_=lm.c.step),
            "timestamp_ms": sa.case((newer, ex.timestamp_ms), else_=lm.c.timestamp_ms),
            "chunk_seq": lm.c.chunk_seq + ex.chunk_seq,
            "min_value": either(lm.c.min_value, ex.min_value, ex.min_value < lm.c.min_value),
            "max_value": either(lm.c.max_value, ex.max_value, ex.max_value > lm.c.max_value),
            "first_value": sa.case((earlier, ex.first_value), else_=lm.c.first_value),
            "first_step": sa.case((earlier, ex.first_step), else_=lm.c.first_step),
            "first_timestamp_ms": sa.case((earlier, ex.first_timestamp_ms), else_=lm.c.first_timestamp_ms),
            "value_count": lm.c.value_count + ex.value_count,
        },
    ).returning(lm.c.key, lm.c.chunk_seq)
    return {key: seq for key, seq in conn.execute(stmt, rows)}


class _Chunk:
    """One chunk's points with its finite min and max (None when all are NaN)."""

    __slots__ = ("high", "low", "points")

    def __init__(self, points: Points) -> None:
        self.points = points
        # fmin/fmax skip NaN (NaN only when every value is NaN), without copying the finite values.
        self.low = _nan_to_none(np.fmin.reduce(points.values))
        self.high = _nan_to_none(np.fmax.reduce(points.values))

    def row(self, run_id: str, key: str, seq: int) -> dict[str, object]:
        cols = self.points
        return {
            "run_id": run_id,
            "key": key,
            "seq": seq,
            "first_step": int(cols.steps[0]),
            "last_step": int(cols.steps[-1]),
            "count": len(cols),
            "min_value": self.low,
            "max_value": self.high,
            "steps": encode_ints(cols.steps),
            "values": cols.values.astype(F64, copy=False).tobytes(),
            "timestamps": encode_ints(cols.timestamps),
        }


def downsample_between(points: Points, max_points: int, first: int, last: int) -> npt.NDArray[np.intp]:
    """The indices of the points M4 keeps for a chart of at most ``max_points`` points, spikes kept:
    the steps ``first``..``last`` are cut into ``max_points // 4`` equal-width buckets and each keeps
    its first and last point and the points holding its minimum and maximum (the first of equals).

    ``points`` are sorted (step, then timestamp, then write order). O(n), no sort. The same buckets
    for every part of a range make the parts' picks the only candidates of the whole: M4 over the
    picks of each part is M4 over the whole (store/metrics/pages.py streams a history that way).
    """
    n = len(points)
    if n == 0:
        return np.empty(0, np.intp)
    buckets = max(1, max_points // 4)
    steps = points.steps
    edges = np.linspace(float(first), float(last), buckets + 1)[1:-1]
    bucket = np.searchsorted(edges, steps, side="right")
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], n] - 1
    keep = [starts, ends]
    values = points.values
    counts = np.diff(np.r_[starts, n])
    with np.errstate(invalid="ignore"):
        for reduce in (np.fmin, np.fmax):  # fmin/fmax skip NaN: a NaN is never a bucket's extreme
            extreme = np.repeat(reduce.reduceat(values, starts), counts)
            hits = np.flatnonzero(values == extreme)
            hit_bucket = bucket[hits]  # non-decreasing: the first hit of each bucket is where it changes
            keep.append(hits[np.r_[True, hit_bucket[1:] != hit_bucket[:-1]]])
    return np.unique(np.concatenate(keep))
