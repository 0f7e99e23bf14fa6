"""The on-disk spill of metric batches: append-only, framed, checksummed, fsynced, size-capped.

Files live in the spool folder (``$TRACKLANE_SPOOL_DIR``, default ``~/.cache/tracklane/spool``):

- ``WRITER.lock``: held (``flock``) by the live process that writes WRITER's segments; a replay
  (``tracklane sync``, or a new training process) skips writers whose lock is held and takes it
  while it replays. It reads ``PID\nTRACKING_URI\n``: where the batches were going;
- ``WRITER-NNNNNN.tlspool``: segments. Each starts with ``TLSPOOL1``; then records of
  ``<u32 body length><u32 CRC-32 of body>`` + body, body = ``<u64 sequence><u16 len>run_id`` + one
  serialized StreamMetricsRequest; or, with sequence 0 (batches count from 1), a run's end: a
  serialized UpdateRunRequest the server could not be sent (see ``run_ends``).

A record torn by a crash fails its length or CRC check: reading stops there, and everything before
it is intact. A segment is deleted once every record in it has been acknowledged by the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tracklane._metrics.batch_stream import Pending

__all__ = [
    "DEFAULT_SPOOL_DIR",
    "Record",
    "RecordRef",
    "Segment",
    "Spool",
    "index_segment",
    "lock_writer",
    "read_segment",
    "spool_dir",
    "writer_uri",
]

log = logging.getLogger("tracklane.metrics")

SPOOL_DIR_ENV = "TRACKLANE_SPOOL_DIR"
DEFAULT_SPOOL_DIR = Path("~/.cache/tracklane/spool")
MAGIC = b"TLSPOOL1"
SUFFIX = ".tlspool"
_FRAME = struct.Struct("<II")
_BODY = struct.Struct("<QH")


def spool_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """The argument, else $TRACKLANE_SPOOL_DIR, else ~/.cache/tracklane/spool."""
    return Path(directory or os.environ.get(SPOOL_DIR_ENV) or DEFAULT_SPOOL_DIR).expanduser()


@dataclass(frozen=True)
class Record:
    """One spooled batch."""

    run_id: str
    sequence: int
    payload: bytes


def _frame(pending: Pending) -> bytes:
    run = pending.run_id.encode()
    body = _BODY.pack(pending.sequence, len(run)) + run + pending.payload
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def _unframe(body: bytes) -> Record:
    sequence, run_len = _BODY.unpack_from(body)
    start = _BODY.size
    return Record(body[start : start + run_len].decode(), sequence, body[start + run_len :])


@dataclass(frozen=True)
class RecordRef:
    """Where a record is: enough to sort a writer's batches and read each back when it is sent."""

    run_id: str
    sequence: int
    path: Path
    offset: int
    length: int

    def read(self) -> Record:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            return _unframe(f.read(self.length))


def index_segment(path: Path) -> Iterator[RecordRef]:
    """The records of a segment file in order (payloads not kept), up to the first torn or damaged one."""
    with path.open("rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            log.warning("%s: not a Tracklane spool segment; skipped", path)
            return
        while True:
            frame = f.read(_FRAME.size)
            if len(frame) < _FRAME.size:
                if frame:
                    log.warning("%s: torn record at the end (a crash while writing); ignored", path)
                return
            length, crc = _FRAME.unpack(frame)
            offset = f.tell()
            body = f.read(length)
            if len(body) < length or zlib.crc32(body) != crc:
                log.warning("%s: damaged record at byte %d; the rest of the file is ignored", path, offset)
                return
            record = _unframe(body)
            yield RecordRef(record.run_id, record.sequence, path, offset, length)


def read_segment(path: Path) -> Iterator[Record]:
    """The records of a segment file in order, up to the first torn or damaged one."""
    for ref in index_segment(path):
        yield ref.read()


def lock_writer(directory: Path, writer_id: str) -> int | None:
    """Takes WRITER.lock without waiting; the open descriptor holds it, None when someone else does."""
    fd = os.open(directory / f"{writer_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def writer_uri(directory: Path, writer_id: str) -> str | None:
    """The tracking URI WRITER's lock file names; None when it names none (or is gone)."""
    try:
        lines = (directory / f"{writer_id}.lock").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[1] if len(lines) > 1 and lines[1] else None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Segment:
    """One spool file being written or replayed by this process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        #: Records in it not yet acknowledged.
        self.outstanding = 0
        self.writable = True


@dataclass(frozen=True)
class _Unsent:
    segment: Segment
    offset: int
    length: int
    run_id: str
    writer_id: str
    sequence: int
    points: int
    serial: int


class Spool:
    """This process's spill file for one writer: created on the first spill, removed when all is acked.

    Args:
        directory: The spool folder.
        writer_id: The writer whose batches these are.
        max_bytes: Cap on this writer's segment files together; past it, ``append`` refuses batches.
        segment_bytes: A new segment is started past this size (so acked ones can be deleted).
        tracking_uri: Where the batches go, written to the lock file for a later replay.
    """

    def __init__(
        self,
        directory: Path,
        writer_id: str,
        max_bytes: int,
        segment_bytes: int = 64 << 20,
        *,
        tracking_uri: str = "",
    ) -> None:
        self.directory = directory
        self.writer_id = writer_id
        self.tracking_uri = tracking_uri
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._segment: Segment | None = None
        self._segments: list[Segment] = []
        self._count = 0
        self._unsent: deque[_Unsent] = deque()
        self.unsent_points = 0

    @property
    def bytes_on_disk(self) -> int:
        return sum(s.size for s in self._segments)

    def has_unsent(self) -> bool:
        return bool(self._unsent)

    def append(self, batches: Sequence[Pending], *, unsent: bool) -> list[Pending]:
        """Writes batches (in order) and fsyncs; returns the ones refused because the spool is full.

        Args:
            batches: Batches not yet in the spool.
            unsent: True when they are to be read back and sent (``next_unsent``); False for copies of
                batches already in the window (kept only to survive a crash).
        """
        refused: list[Pending] = []
        wrote = False
        for pending in batches:
            frame = _frame(pending)
            if self.bytes_on_disk + len(frame) > self.max_bytes:
                refused.append(pending)
                continue
            segment = self._writable_segment(len(frame))
            assert self._fd is not None
            offset = segment.size
            os.pwrite(self._fd, frame, offset)
            segment.size += len(frame)
            segment.outstanding += 1
            pending.spooled = segment
            wrote = True
            if unsent:
                self._unsent.append(
                    _Unsent(
                        segment,
                        offset + _FRAME.size,
                        len(frame) - _FRAME.size,
                        pending.run_id,
                        pending.writer_id,
                        pending.sequence,
                        pending.points,
                        pending.serial,
                    )
                )
                self.unsent_points += pending.points
        if wrote and self._fd is not None:
            os.fsync(self._fd)
        return refused

    def next_unsent(self) -> Pending:
        """The oldest spooled batch not yet handed out, read back from disk."""
        item = self._unsent.popleft()
        self.unsent_points -= item.points
        fd = os.open(item.segment.path, os.O_RDONLY)
        try:
            body = os.pread(fd, item.length, item.offset)
        finally:
            os.close(fd)
        record = _unframe(body)
        return Pending(
            item.run_id,
            item.writer_id,
            item.sequence,
            item.points,
            record.payload,
            spooled=item.segment,
            serial=item.serial,
        )

    def release(self, pending: Pending) -> None:
        """A spooled batch was acknowledged: its segment goes once all of its records have."""
        segment = pending.spooled
        if not isinstance(segment, Segment):
            return
        pending.spooled = None
        segment.outstanding -= 1
        if segment.outstanding <= 0 and not segment.writable:
            self._delete(segment)

    def close(self) -> None:
        """Closes the files; an empty spool is removed, one with unacked records stays for ``sync``."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        for segment in list(self._segments):
            segment.writable = False
            if segment.outstanding <= 0:
                self._delete(segment)
        if self._lock_fd is not None:
            if not self._segments:
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / f"{self.writer_id}.lock").unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    def forget_after_fork(self) -> None:
        """(In a forked child) closes the inherited descriptors without unlocking: the lock stays the
        parent's, and is not kept held by a child outliving it."""
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = None
        self._segments = []
        self._unsent.clear()

    def _writable_segment(self, frame_len: int) -> Segment:
        segment = self._segment
        if segment is not None and segment.size + frame_len <= self.segment_bytes:
            return segment
        if self._lock_fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = lock_writer(self.directory, self.writer_id)
            if self._lock_fd is not None:
                os.ftruncate(self._lock_fd, 0)
                os.pwrite(self._lock_fd, f"{os.getpid()}\n{self.tracking_uri}\n".encode(), 0)
                os.fsync(self._lock_fd)
        if segment is not None and self._fd is not None:
            os.close(self._fd)
            segment.writable = False
            if segment.outstanding <= 0:
                self._delete(segment)
        self._count += 1
        path = self.directory / f"{self.writer_id}-{self._count:06d}{SUFFIX}"
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(self._fd, MAGIC)
        segment = Segment(path)
        segment.size = len(MAGIC)
        self._segment = segment
        self._segments.append(segment)
        _fsync_dir(self.directory)
        return segment

    def _delete(self, segment: Segment) -> None:
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        self._segments.remove(segment)
        if segment is self._segment:
            self._segment = None
