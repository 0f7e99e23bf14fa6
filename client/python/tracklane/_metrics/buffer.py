"""The in-memory side of metric streaming: what ``log_metric`` does, in well under a microsecond.

One :class:`MetricBuffer` per (thread, run): only its thread appends. The columns live in C
(``_native.PointBuffer``): a point is four stores, with no Python object kept per point. A
full segment is sealed (copied out as bytes) and the sender woken; the sender thread's ``take``
runs under the GIL like every append, so it always sees whole points, in the order they were logged.

Keys are interned into a per-buffer table the first time they are seen (checked then, once); the
columns hold small integers. Timestamps are epoch milliseconds; a bad value, step or timestamp is
refused at the call that gives it (InvalidArgument naming the field), before anything is buffered.
"""

from __future__ import annotations

import numbers
import operator
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tracklane._metrics._native import PointBuffer
from tracklane.exceptions import InvalidArgument
from tracklane.wire.limits import KEY_MAX, is_valid_key

__all__ = ["Columns", "MetricBuffer", "Sink", "array_columns", "check_metric_key"]


def check_metric_key(key: object) -> str:
    """The key, when the server would accept it.

    Raises:
        InvalidArgument: not a string, empty, too long, or a character outside the key alphabet.
    """
    if not isinstance(key, str):
        raise InvalidArgument(f"key: must be a string, got {type(key).__name__}", field="key")
    if not key or len(key) > KEY_MAX:
        raise InvalidArgument(f"key: must be 1-{KEY_MAX} characters, got {len(key)}", field="key")
    if not is_valid_key(key):
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
    stamps: npt.NDArray[np.int64]  # epoch milliseconds

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
        stamps = np.full(n, time.time_ns() // 1_000_000, np.int64)
    else:
        given = np.asarray(timestamps, dtype=np.int64).ravel()
        if given.shape[0] not in (1, n):
            raise InvalidArgument(
                f"timestamps: {given.shape[0]} items, but values has {n}", field="timestamps"
            )
        stamps = np.broadcast_to(given, (n,)).copy()
    if n == 0:
        return None
    return Columns(np.empty(0, np.uint32), vals, stp, stamps)


class MetricBuffer(PointBuffer):
    """Points one thread logs to one run, until the sender takes them.

    ``log`` is the C fast path (``PointBuffer.log``); arguments it does not take as they are come
    to ``_log_slow`` here, which checks and converts them or refuses them with InvalidArgument.

    Args:
        run_id: The run.
        sink: Told when a segment is sealed.
        segment_points: Seal (and wake the sender) every this many points.
    """

    def __init__(self, run_id: str, sink: Sink, segment_points: int) -> None:
        super().__init__(segment_points)
        self.run_id = run_id
        self.sink = sink
        self.key_names: list[str] = []
        self.closed = False

    def intern(self, key: str) -> int:
        """The key's index in this buffer's key table, adding (and checking) it on first use."""
        index = self.key_ids.get(key) if isinstance(key, str) else None
        if index is None:
            check_metric_key(key)
            index = len(self.key_names)
            self.key_names.append(key)  # before the index is used: the sender reads names after points
            self.key_ids[key] = index
        return index

    def _log_slow(self, key: Any, value: Any, step: Any, timestamp: Any) -> None:
        """(From ``log``) a new key, or a value, step or timestamp that is not a plain float or int."""
        self.append(self.intern(key), _number(value), _int64(step, "step"), _int64(timestamp, "timestamp"))

    def _on_seal(self) -> None:
        self.sink.sealed(self)

    def log_many(self, metrics: Any, step: int | None, timestamp: int | None) -> None:
        """Appends one point per (key, value) of a mapping, all at the same step and time."""
        stamp = timestamp or time.time_ns() // 1_000_000
        log = self.log
        for key, value in metrics.items():
            log(key, value, step, stamp)

    def log_array(self, key: str, columns: Columns) -> None:
        """Appends points given as numpy columns (``columns.keys`` is ignored: all are ``key``)."""
        columns.keys = np.full(len(columns), self.intern(key), np.uint32)
        self.push(columns)
        self.sink.sealed(self)

    def take(self, *, sealed_only: bool = False) -> list[Columns]:
        """(Sender thread) every point logged so far (or in sealed segments only), in order."""
        return [
            item if isinstance(item, Columns) else _segment_columns(*item)
            for item in super().take(sealed_only=sealed_only)
        ]


def _segment_columns(keys: bytes, values: bytes, steps: bytes, stamps: bytes) -> Columns:
    return Columns(
        np.frombuffer(keys, np.uint32),
        np.frombuffer(values, np.float64),
        np.frombuffer(steps, np.int64),
        np.frombuffer(stamps, np.int64),
    )


def _number(value: Any) -> float:
    if isinstance(value, str | bytes) or not isinstance(value, numbers.Real | np.generic):
        raise InvalidArgument(f"value: must be a number, got {type(value).__name__}", field="value")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"value: {value!r} is not a number ({exc})", field="value") from None


def _int64(number: Any, field: str) -> int:
    """A step or timestamp as an int64 (None is 0: the default step, or now)."""
    if number is None:
        return 0
    try:
        value = operator.index(number)
    except TypeError:
        raise InvalidArgument(
            f"{field}: must be an integer, got {type(number).__name__} {number!r:.40}", field=field
        ) from None
    if not -(2**63) <= value < 2**63:
        raise InvalidArgument(f"{field}: {value} is not a 64-bit integer", field=field)
    return value
