"""StreamMetrics batches: decode to numpy, check, and apply exactly once per (run, writer, sequence).

The highest applied sequence of each (run, writer) lives in ``metric_writers`` and is read (row
locked) and advanced in the same transaction as the points, so a batch replayed after a reconnect
or a server restart is recognised and not written twice.

A refused batch of a live sequence (bad key, bad lengths, deleted run) still consumes its sequence
number: nothing of it is stored, and the writer's next batch follows on without a gap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracklane.entities import LifecycleStage
from tracklane.exceptions import FailedPrecondition, InvalidArgument, NotFound, TracklaneError
from tracklane.wire.metrics import decode_batch
from tracklane_server.store.db.schema import RUN_ID_LENGTH
from tracklane_server.store.db.transactions import now_ms, transaction
from tracklane_server.store.metrics.points import Points, write_points
from tracklane_server.store.tracking.runs import RunStore
from tracklane_server.store.validation import check_key

WRITER_ID_MIN = 8
WRITER_ID_MAX = 64
STREAM_BATCH_POINTS_MAX = 1_000_000
STREAM_BATCH_KEYS_MAX = 10_000


@dataclass(frozen=True)
class MetricBatch:
    """One StreamMetricsRequest as columns: per point a key index, value, step and timestamp."""

    run_id: str
    writer_id: str
    sequence: int
    keys: list[str]
    key_indices: npt.NDArray[np.uint32]
    values: npt.NDArray[np.float64]
    steps: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.int64]

    @classmethod
    def from_bytes(cls, data: bytes) -> MetricBatch:
        """A serialized StreamMetricsRequest (the StreamMetrics request deserializer).

        Raises:
            DecodeError: not a valid StreamMetricsRequest.
        """
        decoded = decode_batch(data)
        header = decoded.header
        return cls(
            run_id=header.run_id,
            writer_id=header.writer_id,
            sequence=header.sequence,
            keys=list(header.keys),
            key_indices=decoded.key_indices,
            values=decoded.values,
            steps=decoded.steps,
            timestamps=decoded.timestamps_ms,
        )

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class BatchResult:
    """What the ack says: points stored, whether it was a replay, or why it was refused."""

    points_written: int = 0
    duplicate: bool = False
    error: TracklaneError | None = None


def check_header(batch: MetricBatch) -> None:
    """The fields that say where a batch goes: without them no sequence can be recorded.

    Raises:
        InvalidArgument: ``run_id``, ``writer_id`` or ``sequence`` is missing or malformed.
        NotFound: ``run_id`` cannot be a run id.
    """
    if not batch.run_id:
        raise InvalidArgument("run_id: must not be empty", field="run_id")
    if len(batch.run_id) > RUN_ID_LENGTH or not (batch.run_id.isascii() and batch.run_id.isalnum()):
        raise NotFound(f"run {batch.run_id[:40]!r} does not exist", field="run_id")  # cannot be an id
    if not WRITER_ID_MIN <= len(batch.writer_id) <= WRITER_ID_MAX:
        raise InvalidArgument(
            f"writer_id: must be {WRITER_ID_MIN}-{WRITER_ID_MAX} characters, got {len(batch.writer_id)}",
            field="writer_id",
        )
    if not batch.writer_id.isprintable() or not batch.writer_id.isascii():
        raise InvalidArgument("writer_id: must be printable ASCII", field="writer_id")
    if batch.sequence < 1:
        raise InvalidArgument(f"sequence: must be 1 or more, got {batch.sequence}", field="sequence")


def check_points(batch: MetricBatch) -> None:
    """The key table and the point columns.

    Raises:
        InvalidArgument: naming the field, e.g. ``keys[2]``, ``steps`` or ``key_indices[7]``.
    """
    n = len(batch)
    if n > STREAM_BATCH_POINTS_MAX:
        raise InvalidArgument(
            f"values: at most {STREAM_BATCH_POINTS_MAX} points per batch, got {n}", field="values"
        )
    if len(batch.keys) > STREAM_BATCH_KEYS_MAX:
        raise InvalidArgument(
            f"keys: at most {STREAM_BATCH_KEYS_MAX} keys per batch, got {len(batch.keys)}", field="keys"
        )
    seen: set[str] = set()
    for i, key in enumerate(batch.keys):
        check_key(key, f"keys[{i}]")
        if key in seen:
            raise InvalidArgument(f"keys[{i}]: {key!r} appears twice in the key table", field=f"keys[{i}]")
        seen.add(key)
    for name, column in (
        ("key_indices", batch.key_indices),
        ("steps", batch.steps),
        ("timestamps_ms", batch.timestamps),
    ):
        if column.shape[0] != n and not (name == "timestamps_ms" and column.shape[0] == 1):
            raise InvalidArgument(
                f"{name}: {column.shape[0]} items, but values has {n}: give one per point"
                + (" (or one timestamp for all)" if name == "timestamps_ms" else ""),
                field=name,
            )
    if n and not batch.keys:
        raise InvalidArgument("keys: points need a key table to index into", field="keys")
    if n:
        bad = np.flatnonzero(batch.key_indices >= len(batch.keys))
        if bad.size:
            i = int(bad[0])
            raise InvalidArgument(
                f"key_indices[{i}]: {int(batch.key_indices[i])} is past the {len(batch.keys)} keys",
                field=f"key_indices[{i}]",
            )


def split_by_key(batch: MetricBatch) -> dict[str, Points]:
    """The batch's points per key, in arrival order within a key; a timestamp of 0 means now."""
    if not len(batch):
        return {}
    timestamps = batch.timestamps
    if not timestamps.all():
        timestamps = np.where(timestamps == 0, now_ms(), timestamps)
    if timestamps.shape[0] != len(batch):  # one timestamp for every point
        timestamps = np.full(len(batch), timestamps[0], np.int64)
    if len(batch.keys) == 1:
        return {batch.keys[0]: Points(batch.steps, batch.values, timestamps)}
    # Narrow keys sort by radix (numpy's stable sort of 8/16-bit integers): linear time.
    narrow = np.uint8 if len(batch.keys) <= 256 else np.uint16 if len(batch.keys) <= 65536 else np.uint32
    order = np.argsort(batch.key_indices.astype(narrow, copy=False), kind="stable")
    ends = np.cumsum(np.bincount(batch.key_indices, minlength=len(batch.keys))).tolist()
    steps, values, stamps = batch.steps[order], batch.values[order], timestamps[order]
    found = {}
    lo = 0
    for key, hi in zip(batch.keys, ends, strict=True):
        if hi > lo:
            found[key] = Points(steps[lo:hi], values[lo:hi], stamps[lo:hi])
        lo = hi
    return found


class StreamStore:
    """Applies metric batches: a group of batches in one transaction, each exactly once."""

    def __init__(self, engine: Engine, runs: RunStore) -> None:
        self.engine = engine
        self.runs = runs

    def apply(self, batch: MetricBatch) -> BatchResult:
        """One batch; see ``apply_many``. A refusal that records nothing is raised.

        Raises:
            InvalidArgument: a bad run_id, writer_id or sequence (nothing recorded).
            NotFound: no such run. FailedPrecondition: a sequence gap (nothing recorded).
            Unavailable: the database cannot be reached; the batch may be sent again.
        """
        [result] = self.apply_many([batch])
        if isinstance(result, TracklaneError):
            raise result
        return result

    def apply_many(self, batches: Sequence[MetricBatch]) -> list[BatchResult | TracklaneError]:
        """Stores batches in order, in one transaction (one commit for many acks), skipping replays.

        Per batch: a BatchResult (applied, replayed, or refused with its sequence consumed), or the
        error that refused it without recording anything (bad header, unknown run, sequence gap).

        Raises:
            Unavailable: the database cannot be reached; nothing was stored, all may be sent again.
        """
        results: list[BatchResult | TracklaneError] = []
        # Points are split by key before the transaction: its locks are held for the writes only.
        checked: list[tuple[int, MetricBatch, TracklaneError | None, dict[str, Points]]] = []
        for i, batch in enumerate(batches):
            try:
                check_header(batch)
            except TracklaneError as exc:
                results.append(exc)
                continue
            results.append(BatchResult())
            try:
                check_points(batch)
                checked.append((i, batch, None, split_by_key(batch)))
            except InvalidArgument as exc:
                checked.append((i, batch, exc, {}))
        if not checked:
            return results
        # Claims in (run, writer) order, each writer's batches in arrival order (a stable sort):
        # transactions of concurrent committers lock writer rows in one order, and each writer's
        # consecutive sequences are claimed in one statement.
        checked.sort(key=lambda c: (c[1].run_id, c[1].writer_id))
        with transaction(self.engine) as conn:
            by_run: dict[str, dict[str, list[Points]]] = {}
            start = 0
            while start < len(checked):
                # Consecutive sequences of one writer (the usual group) are claimed in one statement.
                end = _contiguous(checked, start)
                first, last = checked[start][1], checked[end - 1][1]
                stage = _claim(conn, first.run_id, first.writer_id, first.sequence, last.sequence)
                for i, batch, refusal, by_key in checked[start:end]:
                    outcome = stage if stage is not None else _claim_one(conn, batch)
                    if not isinstance(outcome, str):
                        results[i] = outcome
                        continue
                    if refusal is None and outcome != LifecycleStage.ACTIVE.value:
                        refusal = FailedPrecondition(
                            f"run {batch.run_id!r} is deleted; restore it first", field="run_id"
                        )
                    if refusal is not None:
                        results[i] = BatchResult(error=refusal)
                        continue
                    keys = by_run.setdefault(batch.run_id, {})
                    for key, points in by_key.items():
                        keys.setdefault(key, []).append(points)
                    results[i] = BatchResult(points_written=len(batch))
                start = end
            for run_id, keys in sorted(by_run.items()):  # one lock order across streams: no deadlock
                write_points(conn, run_id, {key: _concat(parts) for key, parts in keys.items()})
        return results


# Claims sequences first..last of a writer in one statement: inserts a new writer (first = 1) or
# advances a known one from first - 1 (its row locked until commit), and says whether the run is
# live. No row back means nothing changed: an unknown run, a replay or a gap (see _claim_one).
_CLAIM = """
    INSERT INTO metric_writers (run_id, writer_id, last_sequence)
    SELECT r.run_id, CAST(:writer_id AS VARCHAR(64)), CAST(:last AS BIGINT) FROM runs AS r
    WHERE r.run_id = :run_id AND (
        CAST(:first AS BIGINT) = 1
        OR EXISTS (SELECT 1 FROM metric_writers AS w WHERE w.run_id = :run_id AND w.writer_id = :writer_id)
    )
    ON CONFLICT (run_id, writer_id) DO UPDATE SET last_sequence = excluded.last_sequence
    WHERE metric_writers.last_sequence = CAST(:first AS BIGINT) - 1
    RETURNING (SELECT lifecycle_stage FROM runs WHERE run_id = :run_id)
    """
# Run on the driver's connection (sqlite3 takes :name, psycopg %(name)s): no SQLAlchemy statement
# machinery per batch, which was a tenth of the server's time with many small streams.
_CLAIM_BY_DIALECT = {"sqlite": _CLAIM, "postgresql": re.sub(r":(\w+)", r"%(\1)s", _CLAIM)}
_WHERE_IS = sa.text(
    """
    SELECT (SELECT lifecycle_stage FROM runs WHERE run_id = :run_id),
           (SELECT last_sequence FROM metric_writers WHERE run_id = :run_id AND writer_id = :writer_id)
    """
)


def _contiguous(checked: Sequence[tuple[int, MetricBatch, Any, Any]], start: int) -> int:
    """End (exclusive) of the entries from ``start`` that continue one writer's sequence by one."""
    end = start + 1
    first = checked[start][1]
    while end < len(checked):
        batch = checked[end][1]
        if (batch.run_id, batch.writer_id, batch.sequence) != (
            first.run_id,
            first.writer_id,
            first.sequence + end - start,
        ):
            break
        end += 1
    return end


def _claim(conn: Connection, run_id: str, writer_id: str, first: int, last: int) -> str | None:
    """The run's lifecycle stage if sequences first..last are now claimed, else None."""
    params = {"run_id": run_id, "writer_id": writer_id, "first": first, "last": last}
    sql = _CLAIM_BY_DIALECT.get(conn.dialect.name)
    if sql is None:
        stage = conn.execute(sa.text(_CLAIM), params).scalar_one_or_none()
        return None if stage is None else str(stage)
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else str(row[0])


def _claim_one(conn: Connection, batch: MetricBatch) -> str | BatchResult | TracklaneError:
    """One batch's claim: the run's stage when claimed; else the ack (a replay) or the error."""
    stage = _claim(conn, batch.run_id, batch.writer_id, batch.sequence, batch.sequence)
    if stage is not None:
        return stage
    found, last = conn.execute(_WHERE_IS, {"run_id": batch.run_id, "writer_id": batch.writer_id}).one()
    if found is None:
        return NotFound(f"run {batch.run_id!r} does not exist", field="run_id")
    last = int(last or 0)
    if batch.sequence <= last:
        return BatchResult(duplicate=True)
    return FailedPrecondition(
        f"sequence: {batch.sequence} does not follow {last}, the last applied for this writer: "
        f"send batch {last + 1} first",
        field="sequence",
    )


def _concat(parts: list[Points]) -> Points:
    if len(parts) == 1:
        return parts[0]
    return Points(
        np.concatenate([p.steps for p in parts]),
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.timestamps for p in parts]),
    )
