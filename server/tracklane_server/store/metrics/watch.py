"""What WatchRun sends: a run's stored points from a step, then each new point exactly once, read a
bounded piece at a time.

Chunk numbers of a (run, key) are handed out by the latest_metrics row lock, which a writer holds
until it commits; so once ``latest_metrics.chunk_seq`` shows S, every chunk up to S is committed and
visible. A watcher remembers the head it saw per key when it opened: the history it sends (from
``start_step``, in step order) is the chunks up to that head, in pages (store/metrics/pages.py);
what is new is every chunk after the last one it sent, in chunk order, a few chunks per read.
Nothing is missed and nothing is sent twice, and a watcher holds one piece at a time, however long
the history or large the burst: the next piece is read only once the previous one was handed to
gRPC, whose flow control holds a watcher that does not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracklane_server.store.db import schema as t
from tracklane_server.store.db.transactions import transaction
from tracklane_server.store.metrics.chunk_codec import decode_ints
from tracklane_server.store.metrics.chunk_io import fetch_rows
from tracklane_server.store.metrics.pages import Position, read_page
from tracklane_server.store.metrics.points import F64, Points
from tracklane_server.store.tracking.runs import RunStore
from tracklane_server.store.validation import check_key

#: Points per piece of history; chunks per read of what is new (about as many points). A watcher
#: that stops reading holds one piece (about 0.6 MiB on the wire, twice that decoded).
PIECE_POINTS = 25_000
NEW_CHUNKS = 6


@dataclass
class WatchCursor:
    """Where one watcher is: the last chunk sent per key, and the history still to send."""

    run_id: str
    keys: tuple[str, ...]
    start_step: int | None
    sent: dict[str, int] = field(default_factory=dict)
    #: Per key still sending its history: the head chunk it ends at, and the last point sent.
    history: dict[str, tuple[int, Position | None]] = field(default_factory=dict)


class MetricWatch:
    """Opens cursors and reads their next piece."""

    def __init__(self, engine: Engine, runs: RunStore) -> None:
        self.engine = engine
        self.runs = runs

    def open(self, run_id: str, keys: Sequence[str], start_step: int | None) -> WatchCursor:
        """A cursor at the run's current points; with ``start_step``, those from it are still to send.

        Raises:
            NotFound: no such run. InvalidArgument: a bad key (``keys[i]``).
        """
        for i, key in enumerate(keys):
            check_key(key, f"keys[{i}]")
        cursor = WatchCursor(run_id, tuple(dict.fromkeys(keys)), start_step)
        with transaction(self.engine) as conn:
            self.runs.require_run(conn, run_id)
            heads = _heads(conn, cursor)
        cursor.sent.update(heads)
        if start_step is not None:
            cursor.history = {key: (head, None) for key, head in sorted(heads.items())}
        return cursor

    def read_history(self, cursor: WatchCursor, limit: int = PIECE_POINTS) -> list[tuple[str, Points]]:
        """The next piece of the stored history: up to ``limit`` points, key by key in step order;
        empty once all of it was read."""
        found: list[tuple[str, Points]] = []
        room = limit
        with transaction(self.engine) as conn:
            while cursor.history and room > 0:
                key, (head, after) = next(iter(cursor.history.items()))
                points, last = read_page(
                    conn,
                    cursor.run_id,
                    key,
                    start_step=cursor.start_step,
                    end_step=None,
                    after=after,
                    limit=room,
                    max_seq=head,
                )
                if last is None:
                    del cursor.history[key]
                else:
                    cursor.history[key] = (head, last)
                if len(points):
                    found.append((key, points))
                    room -= len(points)
        return found

    def read_new(
        self, cursor: WatchCursor, max_chunks: int = NEW_CHUNKS
    ) -> tuple[list[tuple[str, Points]], bool]:
        """Points committed since the last read, per key (key order), at most ``max_chunks`` chunks;
        and whether more is already waiting."""
        with transaction(self.engine) as conn:
            heads = _heads(conn, cursor)
            changed = {key: head for key, head in heads.items() if head > cursor.sent.get(key, 0)}
            if not changed:
                return [], False
            mc = t.metric_chunks
            wanted = [
                sa.and_(mc.c.key == key, mc.c.seq > cursor.sent.get(key, 0), mc.c.seq <= head)
                for key, head in sorted(changed.items())
            ]
            query = sa.select(mc.c.key, mc.c.seq, mc.c.steps, mc.c["values"], mc.c.timestamps, mc.c.count)
            query = query.where(mc.c.run_id == cursor.run_id, sa.or_(*wanted))
            if cursor.start_step is not None:
                query = query.where(mc.c.last_step >= cursor.start_step)
            rows = fetch_rows(conn, query.order_by(mc.c.key, mc.c.seq).limit(max_chunks + 1))
        more = len(rows) > max_chunks
        rows = rows[:max_chunks]
        parts: dict[str, list[Points]] = {}
        for key, seq, steps, values, stamps, count in rows:
            parts.setdefault(key, []).append(
                Points(decode_ints(steps, count), np.frombuffer(values, F64), decode_ints(stamps, count))
            )
            cursor.sent[key] = seq
        if not more:
            cursor.sent.update(changed)  # chunks left out for start_step count as sent too
        else:
            # Rows come grouped by key: every key before the last one read was read to its head;
            # the last resumes after its last chunk; keys not reached keep their place.
            for key in dict.fromkeys(row[0] for row in rows[:-1]):
                if key != rows[-1][0]:
                    cursor.sent[key] = changed[key]
        found: list[tuple[str, Points]] = []
        for key in sorted(parts):
            chunks = parts[key]
            points = Points(
                np.concatenate([c.steps for c in chunks]),
                np.concatenate([c.values for c in chunks]),
                np.concatenate([c.timestamps for c in chunks]),
            )
            if cursor.start_step is not None:
                points = _from_step(points, cursor.start_step)
            if len(points):
                found.append((key, points))
        return found, more


def _heads(conn: Connection, cursor: WatchCursor) -> dict[str, int]:
    lm = t.latest_metrics
    query = sa.select(lm.c.key, lm.c.chunk_seq).where(lm.c.run_id == cursor.run_id)
    if cursor.keys:
        query = query.where(lm.c.key.in_(cursor.keys))
    return {key: int(seq) for key, seq in conn.execute(query)}


def _from_step(points: Points, start: int) -> Points:
    keep = points.steps >= start
    if keep.all():
        return points
    return Points(points.steps[keep], points.values[keep], points.timestamps[keep])
