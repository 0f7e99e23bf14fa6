"""How a chunk's step and timestamp columns are stored: compactly when they follow a pattern.

Steps usually count up by a fixed stride and timestamps repeat (one per array, or one per
millisecond in a fast loop). Stored raw they were two thirds of every chunk's bytes, and
PostgreSQL's CPU per point grows with the bytes it writes (TOAST, WAL): 24 bytes a point cost it
~230 ns, 8 bytes ~55 ns (COPY of 1 M points on this 2-core machine). So an int64 column is stored as:

* raw: little-endian int64, 8 bytes per point (always a multiple of 8 bytes long; every chunk
  written before this module existed is raw);
* arithmetic: ``start, stride`` then the tag byte 1 (17 bytes), for more than two points;
* runs: the distinct consecutive values, then their run lengths, then the tag byte 2 (16 bytes per
  run + 1), when that is shorter than raw.

The tag byte makes every compact form one byte past a multiple of 8, so it is never read as raw.
Values (float64) stay raw: they rarely repeat, and min/max and reads use them as they are.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["decode_ints", "encode_ints"]

I64 = np.dtype("<i8")
_ARITHMETIC = b"\x01"
_RUNS = b"\x02"


def encode_ints(column: npt.NDArray[np.int64]) -> bytes:
    """The stored bytes of one chunk's int64 column (steps or timestamps)."""
    n = column.shape[0]
    column = column.astype(I64, copy=False)
    if n > 2:
        stride = column[1:2] - column[:1]  # int64 arithmetic wraps; decoding wraps the same way
        if np.array_equal(column, column[0] + stride * np.arange(n, dtype=I64)):
            return np.concatenate((column[:1], stride)).tobytes() + _ARITHMETIC
        starts = np.flatnonzero(column[1:] != column[:-1]) + 1
        if 2 * (starts.shape[0] + 1) < n:
            bounds = np.concatenate(([0], starts, [n]))
            lengths = np.diff(bounds).astype(I64)
            return column[bounds[:-1]].tobytes() + lengths.tobytes() + _RUNS
    return column.tobytes()


def decode_ints(blob: bytes, count: int) -> npt.NDArray[np.int64]:
    """The int64 column of ``count`` points from its stored bytes.

    Raises:
        ValueError: the bytes are not a column of ``count`` points.
    """
    size = len(blob)
    if size % 8 == 0:
        column = np.frombuffer(blob, I64)
    elif size == 17 and blob[16:] == _ARITHMETIC:
        start, stride = np.frombuffer(blob, I64, 2)
        column = start + stride * np.arange(count, dtype=I64)
    elif size % 16 == 1 and blob[-1:] == _RUNS:
        runs = (size - 1) // 16
        values = np.frombuffer(blob, I64, runs)
        lengths = np.frombuffer(blob, I64, runs, offset=8 * runs)
        column = np.repeat(values, lengths)
    else:
        raise ValueError(f"a stored int64 column of {size} bytes is in no known form")
    if column.shape[0] != count:
        raise ValueError(f"a stored int64 column holds {column.shape[0]} points, not {count}")
    return column
