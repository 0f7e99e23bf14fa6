"""Replays metric batches left in the spool by writers that are gone (crashed, killed, offline).

Each writer's spooled batches are sent in sequence order per run over one StreamMetrics call; the
server applies each (run, writer, sequence) once, so replaying twice, or after the writer itself
delivered part of its spool, stores nothing twice. Run ends the writer could not deliver (see
``run_ends``) are sent once every batch is settled, so a run is FINISHED after its metrics. A
writer is replayed only while its lock can be taken (``flock``: its process is gone, and no other
replay has it), and its segment files are deleted once all of their batches are acknowledged.

Used by ``tracklane sync`` (every writer) and by a new training process, which replays, in the
background, the writers that streamed to its own tracking URI.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import defaultdict
from collections.abc import MutableSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracklane._metrics.batch_stream import BatchStream, Pending
from tracklane._metrics.run_ends import END_SEQUENCE, RETRY_LATER, send_end
from tracklane._metrics.spool import SUFFIX, RecordRef, index_segment, lock_writer, writer_uri
from tracklane.exceptions import TracklaneError
from tracklane.v1 import tracking_pb2

__all__ = ["SyncReport", "replay_spool"]


@dataclass
class SyncReport:
    """What a sync did."""

    writers: int = 0
    skipped_live: int = 0
    batches: int = 0
    points_written: int = 0
    duplicates: int = 0
    unfinished: int = 0
    runs_ended: int = 0
    errors: list[TracklaneError] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "writers": self.writers,
            "skipped_live_writers": self.skipped_live,
            "batches": self.batches,
            "points_written": self.points_written,
            "duplicate_batches": self.duplicates,
            "refused_batches": len(self.errors),
            "unfinished_batches": self.unfinished,
            "runs_ended": self.runs_ended,
        }

    def summary(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.as_dict().items())


def replay_spool(
    channel: Any,
    directory: Path,
    *,
    timeout: float = 300.0,
    window: int = 16,
    tracking_uri: str | None = None,
    skip_writer: str = "",
    streams: MutableSet[BatchStream] | None = None,
    stop: threading.Event | None = None,
) -> SyncReport:
    """Replays the spools of idle writers in ``directory`` over ``channel``; deletes what is acknowledged.

    Args:
        tracking_uri: Only writers that streamed to this URI (recorded in their lock file); None: all.
        skip_writer: A writer never to replay (the caller's own).
        streams: The open replay stream is kept here while it runs (for pausing it around fork()).
        stop: Set to end early; what is not acknowledged stays for later.
    """
    report = SyncReport()
    if not directory.is_dir():
        return report
    writers = sorted({p.name.rsplit("-", 1)[0] for p in directory.glob(f"*{SUFFIX}")} - {skip_writer})
    deadline = time.monotonic() + timeout
    for writer in writers:
        if stop is not None and stop.is_set():
            break
        if tracking_uri is not None and writer_uri(directory, writer) != tracking_uri:
            continue
        lock = lock_writer(directory, writer)
        if lock is None:
            report.skipped_live += 1
            continue
        report.writers += 1
        try:
            if _sync_writer(channel, directory, writer, report, deadline, window, streams, stop):
                with contextlib.suppress(FileNotFoundError):
                    (directory / f"{writer}.lock").unlink()
        finally:
            os.close(lock)
    return report


def _sync_writer(
    channel: Any,
    directory: Path,
    writer: str,
    report: SyncReport,
    deadline: float,
    window: int,
    streams: MutableSet[BatchStream] | None,
    stop: threading.Event | None,
) -> bool:
    """Sends one writer's batches; True when all were settled (and its files deleted)."""
    segments = sorted(directory.glob(f"{writer}-*{SUFFIX}"))
    latest: dict[tuple[str, int], RecordRef] = {}  # a batch spooled twice is sent once
    for segment in segments:
        for ref in index_segment(segment):
            latest[(ref.run_id, ref.sequence)] = ref
    by_run: dict[str, list[RecordRef]] = defaultdict(list)
    ends: list[RecordRef] = []
    for ref in latest.values():
        (ends if ref.sequence == END_SEQUENCE else by_run[ref.run_id]).append(ref)
    ordered = [ref for run in sorted(by_run) for ref in sorted(by_run[run], key=lambda r: r.sequence)]

    settled = threading.Condition()
    outstanding = len(ordered)

    def done(
        pending: Pending, response: tracking_pb2.StreamMetricsResponse, error: TracklaneError | None
    ) -> None:
        nonlocal outstanding
        with settled:
            outstanding -= 1
            report.batches += 1
            report.points_written += response.points_written
            report.duplicates += int(response.duplicate)
            if error is not None:
                report.errors.append(error)
            settled.notify_all()

    def progress() -> None:
        with settled:
            settled.notify_all()

    def running() -> bool:
        return time.monotonic() < deadline and not (stop is not None and stop.is_set())

    if not ordered:  # only run ends: no stream to open
        return _send_ends(channel, ends, report, deadline) and _delete(segments)
    stream = BatchStream(channel, window, done, progress)
    if streams is not None:
        streams.add(stream)
    stream.start()
    try:
        for ref in ordered:
            with settled:
                while not stream.has_room() and running():
                    settled.wait(0.05)
            if not running():
                break
            stream.send(Pending(ref.run_id, writer, ref.sequence, 0, ref.read().payload))
        with settled:
            while outstanding and running():
                settled.wait(0.05)
            remaining = outstanding
    finally:
        if streams is not None:
            streams.discard(stream)
        stream.close()
    report.unfinished += remaining
    return not remaining and _send_ends(channel, ends, report, deadline) and _delete(segments)


def _delete(segments: list[Path]) -> bool:
    for segment in segments:
        with contextlib.suppress(FileNotFoundError):
            segment.unlink()
    return True


def _send_ends(channel: Any, ends: list[RecordRef], report: SyncReport, deadline: float) -> bool:
    """Sends the writer's run ends (its batches are all settled); False when one must wait."""
    for ref in sorted(ends, key=lambda r: r.run_id):
        try:
            send_end(channel, ref.read().payload, max(1.0, deadline - time.monotonic()))
        except RETRY_LATER:
            report.unfinished += 1
            return False
        except TracklaneError as exc:  # e.g. the run was deleted: there is nothing left to end
            report.errors.append(exc)
            continue
        report.runs_ended += 1
    return True
