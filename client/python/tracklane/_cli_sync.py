"""``tracklane sync``: sends what training processes left in the metric spool (offline mode, crashes).

Each writer's spooled batches are sent in sequence order per run over one StreamMetrics call; the
server applies each (run, writer, sequence) once, so running sync twice, or after the process itself
delivered part of its spool, stores nothing twice. Writers whose process is alive (its lock is held)
are skipped. Segment files are deleted once all of their batches are acknowledged.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracklane._metric_sender import stream_channel
from tracklane._metric_stream import BatchStream, Pending
from tracklane._spool import SUFFIX, RecordRef, index_segment, lock_writer, spool_dir
from tracklane.client import Client
from tracklane.exceptions import FailedPrecondition, TracklaneError, Unavailable
from tracklane.v1 import tracking_pb2

__all__ = ["add_commands", "sync_spool"]


def add_commands(
    commands: Any, with_common: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
) -> None:
    """Adds ``tracklane sync`` to the ``tracklane`` parser's subcommands."""
    sync = with_common(
        commands.add_parser("sync", help="send metric batches left in the spool by earlier processes")
    )
    sync.add_argument(
        "--spool-dir",
        default=None,
        help="spool folder [env TRACKLANE_SPOOL_DIR, default ~/.cache/tracklane/spool]",
    )
    sync.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for acknowledgements")
    sync.set_defaults(handler=_sync)


def _sync(client: Client, args: argparse.Namespace) -> object:
    report = sync_spool(client.tracking_uri, spool_dir(args.spool_dir), timeout=args.timeout)
    summary = report.summary()
    if report.errors:
        raise FailedPrecondition(
            f"{len(report.errors)} batches refused (first: {report.errors[0]}); {summary}", field="spool"
        )
    if report.unfinished:
        raise Unavailable(
            f"not all batches acknowledged within {args.timeout:g} s; run sync again; {summary}"
        )
    return report.as_dict()


@dataclass
class SyncReport:
    """What a sync did."""

    writers: int = 0
    skipped_live: int = 0
    batches: int = 0
    points_written: int = 0
    duplicates: int = 0
    unfinished: int = 0
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
        }

    def summary(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.as_dict().items())


def sync_spool(tracking_uri: str, directory: Path, *, timeout: float = 300.0, window: int = 16) -> SyncReport:
    """Replays every idle writer's spool in ``directory`` to the server; deletes what is acknowledged."""
    report = SyncReport()
    if not directory.is_dir():
        return report
    writers = sorted({p.name.rsplit("-", 1)[0] for p in directory.glob(f"*{SUFFIX}")})
    channel = stream_channel(tracking_uri)
    deadline = time.monotonic() + timeout
    try:
        for writer in writers:
            lock = lock_writer(directory, writer)
            if lock is None:
                report.skipped_live += 1
                continue
            report.writers += 1
            try:
                if _sync_writer(channel, directory, writer, report, deadline, window):
                    with contextlib.suppress(FileNotFoundError):
                        (directory / f"{writer}.lock").unlink()
            finally:
                os.close(lock)
    finally:
        channel.close()
    return report


def _sync_writer(
    channel: Any, directory: Path, writer: str, report: SyncReport, deadline: float, window: int
) -> bool:
    """Sends one writer's batches; True when all were settled (and its files deleted)."""
    segments = sorted(directory.glob(f"{writer}-*{SUFFIX}"))
    latest: dict[tuple[str, int], RecordRef] = {}  # a batch spooled twice is sent once
    for segment in segments:
        for ref in index_segment(segment):
            latest[(ref.run_id, ref.sequence)] = ref
    by_run: dict[str, list[RecordRef]] = defaultdict(list)
    for ref in latest.values():
        by_run[ref.run_id].append(ref)
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

    stream = BatchStream(channel, window, done, progress)
    stream.start()
    try:
        for ref in ordered:
            with settled:
                while not stream.has_room() and time.monotonic() < deadline:
                    settled.wait(0.05)
            if time.monotonic() >= deadline:
                break
            stream.send(Pending(ref.run_id, writer, ref.sequence, 0, ref.read().payload))
        with settled:
            while outstanding and time.monotonic() < deadline:
                settled.wait(0.05)
            remaining = outstanding
    finally:
        stream.close()
    report.unfinished += remaining
    if remaining:
        return False
    for segment in segments:
        with contextlib.suppress(FileNotFoundError):
            segment.unlink()
    return True
