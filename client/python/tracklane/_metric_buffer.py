"""The in-memory side of metric streaming: what ``log_metric`` does, in well under a microsecond.

One :class:`MetricBuffer` per (thread, run): only its thread appends, so an append takes no lock.
Points go into plain lists (the cheapest append CPython has) of the current segment; a full segment
is sealed onto a deque and a new one started. The sender thread takes points without a lock too:

- it reads the current segment *before* draining the sealed deque, so the points it takes keep the
  order they were logged in;
- within a segment it takes ``[taken:len(stamps)]``: the timestamp column is appended last, so a
  point whose timestamp is there has its key, value and step there too (each list append is atomic);
- only the sender writes ``taken``.

Keys are interned into a per-buffer table the first time they are seen (checked then, once); the
columns hold small integers. Timestamps are kept as float seconds (``time.time()``, the cheapest
clock call) and rounded to milliseconds when a batch is cut.
"""

from __future__ import annotations

import re
import time
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tracklane.exceptions import InvalidArgument

__all__ = ["Columns", "MetricBuffer", "Sink", "array_columns", "check_metric_key"]

KEY_MAX = 250
# The server's key alphabet (letters, digits, '_', '-', '.', ' ', '/'): a bad key is refused at the
# first log_metric, not later in a batch where it would take other keys' points down with it.
_KEY_RE = re.compile(r"[\w\-. /]+")
_now = time.time


def check_metric_key(key: object) -> str:
    """The key, when the server would accept it.

    Raises:
        InvalidArgument: not a string, empty, too long, or a character outside the key alphabet.
    """
    if not isinstance(key, str):
        raise InvalidArgument(f"key: must be a string, got {type(key).__name__}", field="key")
    if not key or len(key) > KEY_MAX:
        raise InvalidArgument(f"key: must be 1-{KEY_MAX} characters, got {len(key)}", field="key")
    if not _KEY_RE.fullmatch(key) or key.startswith("/") or ".." in key.split("/"):
        raise InvalidArgument(
            f"key: {key[:50]!r} may only contain letters, digits, '_', '-', '.', ' ' and '/'", field="key"
        )
    return key


class Sink(Protocol):
    """Where a buffer reports a sealed segment (the sender: wakes up, may apply backpressure)."""

    def sealed(self, buffer: MetricBuffer) -> None: ...


@dataclass
class Columns:
    """Points as numpy columns; ``keys`` indexes the buffer's key table."""

    keys: npt.NDArray[np.uint32]
    values: npt.NDArray[np.float64]
    steps: npt.NDArray[np.int64]
    stamps: npt.NDArray[np.float64]  # seconds since the epoch

    def __len__(self) -> int:
        return int(self.values.shape[0])


def array_columns(values: Any, steps: Any = None, timestamps: Any = None) -> Columns | None:
    """Columns for ``log_metric_array`` from arrays or sequences; None when there are no values.

    Args:
        values: One value per point.
        steps: One step per point; default ``0, 1, ... len(values) - 1``.
        timestamps: Epoch milliseconds, one per point or one for all; default now.

    Raises:
        InvalidArgument: ``steps`` or ``timestamps`` not of the length of ``values``.
    """
    vals = np.array(values, dtype=np.float64).ravel()
    n = vals.shape[0]
    stp = np.arange(n, dtype=np.int64) if steps is None else np.array(steps, dtype=np.int64).ravel()
    if stp.shape[0] != n:
        raise InvalidArgument(f"steps: {stp.shape[0]} items, but values has {n}", field="steps")
    if timestamps is None:
        stamps = np.full(n, _now())
    else:
        given = np.asarray(timestamps, dtype=np.float64).ravel() * 0.001
        if given.shape[0] not in (1, n):
            raise InvalidArgument(
                f"timestamps: {given.shape[0]} items, but values has {n}", field="timestamps"
            )
        stamps = np.broadcast_to(given, (n,)).copy()
    if n == 0:
        return None
    return Columns(np.empty(0, np.uint32), vals, stp, stamps)


class _Segment:
    __slots__ = ("keys", "stamps", "steps", "taken", "values")

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.values: list[float] = []
        self.steps: list[int] = []
        self.stamps: list[float] = []
        self.taken = 0  # written by the sender only

    def columns(self, end: int, errors: list[InvalidArgument]) -> Columns:
        lo, self.taken = self.taken, end
        whole = lo == 0 and end == len(self.keys)
        keys = self.keys if whole else self.keys[lo:end]
        values = self.values if whole else self.values[lo:end]
        steps = self.steps if whole else self.steps[lo:end]
        stamps = self.stamps if whole else self.stamps[lo:end]
        n = end - lo
        # fromiter with a count, and array('I') for the small key indices: the cheapest conversions.
        columns = Columns(
            np.frombuffer(array("I", keys), np.uint32)[:n],  # the producer may have appended since
            np.fromiter(values, np.float64, n),
            np.zeros(0, np.int64),
            np.fromiter(stamps, np.float64, n),
        )
        try:
            columns.steps = np.fromiter(steps, np.int64, n)
        except (TypeError, ValueError, OverflowError):
            # Steps are not checked in log_metric (it would cost every call): drop the bad points here.
            good = [i for i, step in enumerate(steps[:n]) if _is_step(step)]
            bad = next(step for step in steps[:n] if not _is_step(step))
            errors.append(
                InvalidArgument(
                    f"step: {bad!r} is not a 64-bit integer; {n - len(good)} points dropped", field="step"
                )
            )
            columns = Columns(
                columns.keys[good],
                columns.values[good],
                np.array([steps[i] for i in good], np.int64),
                columns.stamps[good],
            )
        return columns


def _is_step(step: Any) -> bool:
    try:
        value = int(step)
    except (TypeError, ValueError, OverflowError):
        return False
    return -(2**63) <= value < 2**63


class MetricBuffer:
    """Points one thread logs to one run, until the sender takes them.

    Args:
        run_id: The run.
        sink: Told when a segment is sealed.
        segment_points: Seal (and wake the sender) every this many points.
    """

    __slots__ = (
        "_k",
        "_room",
        "_s",
        "_seg",
        "_t",
        "_v",
        "closed",
        "errors",
        "key_ids",
        "key_names",
        "run_id",
        "sealed",
        "segment_points",
        "sink",
    )

    def __init__(self, run_id: str, sink: Sink, segment_points: int) -> None:
        self.run_id = run_id
        self.sink = sink
        self.segment_points = max(1, segment_points)
        self.key_ids: dict[str, int] = {}
        self.key_names: list[str] = []
        self.sealed: deque[_Segment | Columns] = deque()
        self.closed = False
        #: Points refused when the sender converted them (e.g. a step that is not an integer).
        self.errors: list[InvalidArgument] = []
        self._start_segment()

    def _start_segment(self) -> None:
        seg = _Segment()
        self._seg = seg
        # Bound methods cached: an append is then one attribute load and a call.
        self._k = seg.keys.append
        self._v = seg.values.append
        self._s = seg.steps.append
        self._t = seg.stamps.append
        self._room = self.segment_points

    def intern(self, key: str) -> int:
        """The key's index in this buffer's key table, adding (and checking) it on first use."""
        index = self.key_ids.get(key)
        if index is None:
            check_metric_key(key)
            index = len(self.key_names)
            self.key_names.append(key)  # before the index is used: the sender reads names after points
            self.key_ids[key] = index
        return index

    def log(self, key: str, value: float, step: int | None, timestamp: int | None) -> None:
        """Appends one point; no lock, no I/O."""
        index = self.key_ids.get(key)
        if index is None:
            index = self.intern(key)
        self._k(index)
        self._v(float(value))
        self._s(step or 0)
        self._t(timestamp * 0.001 if timestamp else _now())  # last: marks the point complete
        self._room -= 1
        if not self._room:
            self.seal()

    def log_many(self, metrics: Any, step: int | None, timestamp: int | None) -> None:
        """Appends one point per (key, value) of a mapping, all at the same step and time."""
        stamp = timestamp * 0.001 if timestamp else _now()
        step = step or 0
        for key, value in metrics.items():
            index = self.key_ids.get(key)
            if index is None:
                index = self.intern(key)
            self._k(index)
            self._v(float(value))
            self._s(step)
            self._t(stamp)
            self._room -= 1
            if not self._room:
                self.seal()

    def log_array(self, key: str, columns: Columns) -> None:
        """Appends points given as numpy columns (``columns.keys`` is ignored: all are ``key``)."""
        columns.keys = np.full(len(columns), self.intern(key), np.uint32)
        if self._seg.stamps:
            self.seal()
        self.sealed.append(columns)
        self.sink.sealed(self)

    def seal(self) -> None:
        """Closes the current segment for the sender and starts a new one."""
        seg = self._seg
        self._start_segment()
        self.sealed.append(seg)
        self.sink.sealed(self)

    def take(self, *, sealed_only: bool = False) -> list[Columns]:
        """(Sender thread) every complete point logged so far (or in sealed segments), in order."""
        current = self._seg  # read before the sealed deque: see the module docstring
        out: list[Columns] = []
        while self.sealed:
            item = self.sealed.popleft()
            if isinstance(item, Columns):
                out.append(item)
            elif len(item.stamps) > item.taken:
                out.append(item.columns(len(item.stamps), self.errors))
        end = len(current.stamps)
        if not sealed_only and end > current.taken:
            out.append(current.columns(end, self.errors))
        return out

    def pending(self) -> bool:
        """(Sender thread) whether ``take`` would return anything."""
        return bool(self.sealed) or len(self._seg.stamps) > self._seg.taken
