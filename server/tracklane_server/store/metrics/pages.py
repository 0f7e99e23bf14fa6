"""Metric history read chunk by chunk, so a call's memory follows its page, not the run's history.

A history's points are in one total order: step, then timestamp, then the chunk they were stored in
(its sequence number: write order), then their place in it. That is the order GetMetricHistory
returns and the order a merged, stably sorted read of every chunk gives. A page is "the ``limit``
points after position P" in that order; it is found by reading the chunks that can hold such
points in order of their first step, a few at a time, keeping only the ``limit`` smallest points
seen: once the ``limit``-th of them lies before the next chunk's first step, no unread chunk can
change the page. Memory: ``limit`` points plus one group of chunks, whatever the history.

Downsampling (M4, see points.downsample) streams the same way: the buckets are fixed by the
range's first and last step (read from the chunks' bounds, plus the chunks cut by the range), and
the points a group of chunks can contribute are those M4 keeps from that group; the answer is
exactly what M4 over the whole sorted range gives. Memory: four points per bucket plus a group.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklane_server.store.db import schema as t
from tracklane_server.store.metrics.chunk_codec import decode_ints
from tracklane_server.store.metrics.chunk_io import fetch_rows
from tracklane_server.store.metrics.points import F64, I64, Points, downsample_between

__all__ = ["GROUP_CHUNKS", "Position", "read_downsampled", "read_page"]

#: Chunks fetched and merged at once (about 32,000 points, 1.3 MiB of columns).
GROUP_CHUNKS = 8


@dataclass(frozen=True)
class Position:
    """A point's place in its history's order: the page after it starts right behind it."""

    step: int
    timestamp: int
    seq: int
    index: int


@dataclass
class _Ordered:
    """Points with the two columns that finish the order (chunk sequence, index in the chunk)."""

    steps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    timestamps: npt.NDArray[np.int64]
    seqs: npt.NDArray[np.int64]
    index: npt.NDArray[np.int64]

    @classmethod
    def empty(cls) -> _Ordered:
        e = np.empty(0, I64)
        return cls(e, np.empty(0, F64), e, e, e)

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    def keep(self, selector: npt.NDArray[np.bool_] | npt.NDArray[np.intp] | slice) -> _Ordered:
        return _Ordered(
            self.steps[selector],
            self.values[selector],
            self.timestamps[selector],
            self.seqs[selector],
            self.index[selector],
        )

    def sorted(self) -> _Ordered:
        return self.keep(np.lexsort((self.index, self.seqs, self.timestamps, self.steps)))

    def position(self, i: int) -> Position:
        return Position(int(self.steps[i]), int(self.timestamps[i]), int(self.seqs[i]), int(self.index[i]))

    def points(self) -> Points:
        return Points(self.steps, self.values, self.timestamps)

    @staticmethod
    def concat(parts: list[_Ordered]) -> _Ordered:
        if len(parts) == 1:
            return parts[0]
        return _Ordered(
            *(np.concatenate([getattr(p, name) for p in parts]) for name in _Ordered.__dataclass_fields__)
        )


@dataclass(frozen=True)
class _Chunk:
    seq: int
    first_step: int
    last_step: int
    count: int


def _chunks(
    conn: Connection, run_id: str, key: str, lo: int | None, hi: int | None, max_seq: int | None
) -> list[_Chunk]:
    """The bounds of the chunks that may hold points with lo <= step <= hi, by first step."""
    mc = t.metric_chunks
    query = sa.select(mc.c.seq, mc.c.first_step, mc.c.last_step, mc.c.count).where(
        mc.c.run_id == run_id, mc.c.key == key
    )
    if lo is not None:
        query = query.where(mc.c.last_step >= lo)
    if hi is not None:
        query = query.where(mc.c.first_step <= hi)
    if max_seq is not None:
        query = query.where(mc.c.seq <= max_seq)
    rows = conn.execute(query).all()
    chunks = (_Chunk(int(s), int(f), int(la), int(n)) for s, f, la, n in rows)
    return sorted(chunks, key=lambda c: (c.first_step, c.seq))


def _load(conn: Connection, run_id: str, key: str, seqs: list[int]) -> _Ordered:
    """The points of the chunks ``seqs``, unordered across chunks."""
    mc = t.metric_chunks
    query = sa.select(mc.c.seq, mc.c.steps, mc.c["values"], mc.c.timestamps, mc.c.count).where(
        mc.c.run_id == run_id, mc.c.key == key, mc.c.seq.in_(seqs)
    )
    parts = []
    for seq, steps, values, stamps, count in fetch_rows(conn, query):
        parts.append(
            _Ordered(
                decode_ints(steps, count),
                np.frombuffer(values, F64),
                decode_ints(stamps, count),
                np.full(count, seq, I64),
                np.arange(count, dtype=I64),
            )
        )
    return _Ordered.concat(parts) if parts else _Ordered.empty()


def _groups(chunks: list[_Chunk]) -> Iterator[tuple[list[_Chunk], int | None]]:
    """Groups of chunks in first-step order, each with the first step of the chunks after it."""
    for at in range(0, len(chunks), GROUP_CHUNKS):
        group = chunks[at : at + GROUP_CHUNKS]
        rest = chunks[at + GROUP_CHUNKS : at + GROUP_CHUNKS + 1]
        yield group, rest[0].first_step if rest else None


def _in_range(points: _Ordered, lo: int | None, hi: int | None) -> npt.NDArray[np.bool_]:
    keep = np.ones(len(points), dtype=bool)
    if lo is not None:
        keep &= points.steps >= lo
    if hi is not None:
        keep &= points.steps <= hi
    return keep


def _after(points: _Ordered, p: Position) -> npt.NDArray[np.bool_]:
    s, ts, q, i = points.steps, points.timestamps, points.seqs, points.index
    later: npt.NDArray[np.bool_] = (s > p.step) | (
        (s == p.step)
        & ((ts > p.timestamp) | ((ts == p.timestamp) & ((q > p.seq) | ((q == p.seq) & (i > p.index)))))
    )
    return later


def read_page(
    conn: Connection,
    run_id: str,
    key: str,
    *,
    start_step: int | None,
    end_step: int | None,
    after: Position | None,
    limit: int,
    max_seq: int | None = None,
) -> tuple[Points, Position | None]:
    """Up to ``limit`` points with start_step <= step <= end_step, after ``after``, in history
    order; and the position to continue from, or None when no point follows. ``max_seq`` leaves
    out chunks stored after the one with that sequence number."""
    lo = start_step if after is None else after.step
    kept, more = _Ordered.empty(), False
    for group, next_first in _groups(_chunks(conn, run_id, key, lo, end_step, max_seq)):
        loaded = _load(conn, run_id, key, [c.seq for c in group])
        wanted = _in_range(loaded, start_step, end_step)
        if after is not None:
            wanted &= _after(loaded, after)
        kept = _Ordered.concat([kept, loaded.keep(wanted)]).sorted().keep(slice(0, limit + 1))
        if next_first is None:
            more = len(kept) > limit
            break
        if len(kept) >= limit and kept.steps[limit - 1] < next_first:
            more = True  # the unread chunks hold only points after these (and some in range)
            break
    if not more:
        return kept.points(), None
    page = kept.keep(slice(0, limit))
    return page.points(), page.position(limit - 1)


def read_downsampled(
    conn: Connection, run_id: str, key: str, *, start_step: int | None, end_step: int | None, max_points: int
) -> Points:
    """The points M4 keeps (at most ``max_points``) of the whole range, read a group at a time;
    every point of the range when it holds no more than ``max_points``."""
    chunks = _chunks(conn, run_id, key, start_step, end_step, None)
    lo, hi, count = _range_bounds(conn, run_id, key, chunks, start_step, end_step)
    if count <= max_points:
        points, _ = read_page(
            conn, run_id, key, start_step=start_step, end_step=end_step, after=None, limit=max_points
        )
        return points
    kept = _Ordered.empty()
    for group, _ in _groups(chunks):
        loaded = _load(conn, run_id, key, [c.seq for c in group])
        merged = _Ordered.concat([kept, loaded.keep(_in_range(loaded, start_step, end_step))]).sorted()
        kept = merged.keep(downsample_between(merged.points(), max_points, lo, hi))
    return kept.points()


def _range_bounds(
    conn: Connection,
    run_id: str,
    key: str,
    chunks: list[_Chunk],
    start_step: int | None,
    end_step: int | None,
) -> tuple[int, int, int]:
    """The first and last step and the number of the points in range: from the chunks' bounds and
    counts, reading only the chunks the range cuts."""
    lo, hi, count = None, None, 0
    cut = []
    for c in chunks:
        if (start_step is not None and c.first_step < start_step) or (
            end_step is not None and c.last_step > end_step
        ):
            cut.append(c.seq)
            continue
        lo = c.first_step if lo is None else min(lo, c.first_step)
        hi = c.last_step if hi is None else max(hi, c.last_step)
        count += c.count
    for at in range(0, len(cut), GROUP_CHUNKS):
        loaded = _load(conn, run_id, key, cut[at : at + GROUP_CHUNKS])
        steps = loaded.steps[_in_range(loaded, start_step, end_step)]
        if steps.size:
            lo = int(steps.min()) if lo is None else min(lo, int(steps.min()))
            hi = int(steps.max()) if hi is None else max(hi, int(steps.max()))
            count += int(steps.size)
    return lo or 0, hi or 0, count
