"""What WatchRun sends: a run's points by chunk sequence, so each is sent exactly once.

Chunk numbers of a (run, key) are handed out by the latest_metrics row lock, which a writer holds
until it commits; so once ``latest_metrics.chunk_seq`` shows S, every chunk up to S is committed and
visible. A watcher remembers the last chunk it sent per key and, on each wake-up, reads the chunks
after it up to the head it saw: nothing is missed and nothing is sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracklane_server.store import schema as t
from tracklane_server.store.chunk_codec import decode_ints
from tracklane_server.store.chunk_io import fetch_rows
from tracklane_server.store.sql_common import transaction
from tracklane_server.store.sql_metrics import F64, Points
from tracklane_server.store.sql_runs import RunStore
from tracklane_server.store.validation import check_key


@dataclass
class WatchCursor:
    """Where one watcher is: the last chunk sent per key."""

    run_id: str
    keys: tuple[str, ...]
    start_step: int | None
    sent: dict[str, int] = field(default_factory=dict)


class MetricWatch:
    """Opens cursors and reads what is new for them."""

    def __init__(self, engine: Engine, runs: RunStore) -> None:
        self.engine = engine
        self.runs = runs

    def open(
        self, run_id: str, keys: Sequence[str], start_step: int | None
    ) -> tuple[WatchCursor, list[tuple[str, Points]]]:
        """A cursor at the run's current points, and those with step >= ``start_step`` when given.

        Raises:
            NotFound: no such run. InvalidArgument: a bad key (``keys[i]``).
        """
        for i, key in enumerate(keys):
            check_key(key, f"keys[{i}]")
        cursor = WatchCursor(run_id, tuple(dict.fromkeys(keys)), start_step)
        with transaction(self.engine) as conn:
            self.runs.require_run(conn, run_id)
            heads = _heads(conn, cursor)
            if start_step is None:
                cursor.sent.update(heads)
                return cursor, []
            return cursor, _read(conn, cursor, heads, history=True)

    def read_new(self, cursor: WatchCursor) -> list[tuple[str, Points]]:
        """The points committed since the last read, per key (key order)."""
        with transaction(self.engine) as conn:
            return _read(conn, cursor, _heads(conn, cursor), history=False)


def _heads(conn: Connection, cursor: WatchCursor) -> dict[str, int]:
    lm = t.latest_metrics
    query = sa.select(lm.c.key, lm.c.chunk_seq).where(lm.c.run_id == cursor.run_id)
    if cursor.keys:
        query = query.where(lm.c.key.in_(cursor.keys))
    return {key: int(seq) for key, seq in conn.execute(query)}


def _read(
    conn: Connection, cursor: WatchCursor, heads: dict[str, int], *, history: bool
) -> list[tuple[str, Points]]:
    changed = {key: head for key, head in heads.items() if head > cursor.sent.get(key, 0)}
    if not changed:
        return []
    mc = t.metric_chunks
    query = sa.select(mc.c.key, mc.c.seq, mc.c.steps, mc.c["values"], mc.c.timestamps, mc.c.count).where(
        mc.c.run_id == cursor.run_id,
        mc.c.key.in_(sorted(changed)),
        mc.c.seq > min(cursor.sent.get(key, 0) for key in changed),
    )
    if cursor.start_step is not None:
        query = query.where(mc.c.last_step >= cursor.start_step)
    parts: dict[str, list[Points]] = {}
    for key, seq, steps, values, stamps, count in fetch_rows(conn, query.order_by(mc.c.key, mc.c.seq)):
        if cursor.sent.get(key, 0) < seq <= changed[key]:
            parts.setdefault(key, []).append(
                Points(decode_ints(steps, count), np.frombuffer(values, F64), decode_ints(stamps, count))
            )
    cursor.sent.update(changed)
    found: list[tuple[str, Points]] = []
    for key in sorted(parts):
        chunks = parts[key]
        points = Points(
            np.concatenate([c.steps for c in chunks]),
            np.concatenate([c.values for c in chunks]),
            np.concatenate([c.timestamps for c in chunks]),
        )
        if history:  # the existing history: in step order, like GetMetricHistory
            points = points.sorted()
        if cursor.start_step is not None:
            points = _from_step(points, cursor.start_step)
        if len(points):
            found.append((key, points))
    return found


def _from_step(points: Points, start: int) -> Points:
    keep = points.steps >= start
    if keep.all():
        return points
    return Points(points.steps[keep], points.values[keep], points.timestamps[keep])
