"""StreamMetricsRequest bytes straight from numpy columns, without a protobuf object per batch.

Filling repeated fields through the protobuf runtime converts every element to a Python object
(~100 ns per point over four columns); writing the packed fields ourselves is a few vectorised numpy
passes. The header (run, writer, sequence, key table) still goes through protobuf, and protobuf's
parser merges concatenated fields, so the result is an ordinary, valid message.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tracklane.v1 import tracking_pb2

__all__ = ["encode_batch", "encode_series", "varint"]

_WIRE_LEN = 2
# Field numbers of StreamMetricsRequest's point columns.
_KEY_INDICES, _VALUES, _STEPS, _TIMESTAMPS = 5, 6, 7, 8
_SEVEN = np.uint64(7)
_LOW7 = np.uint64(0x7F)


def varint(values: npt.NDArray[np.uint64]) -> bytes:
    """Protobuf base-128 varints of unsigned 64-bit values (int64 negatives as their two's complement)."""
    n = values.shape[0]
    if n == 0:
        return b""
    width = max(1, (int(values.max()).bit_length() + 6) // 7)
    if width == 1:
        return values.astype(np.uint8).tobytes()
    # One byte plane per 7 bits, high bit set while more bits remain; then drop the unused planes.
    out = np.empty((n, width), np.uint8)
    rest = values.copy()
    for plane in range(width):
        low = (rest & _LOW7).astype(np.uint8)
        rest >>= _SEVEN
        if plane < width - 1:
            low |= (rest != 0).view(np.uint8) << np.uint8(7)
        out[:, plane] = low
    more = out[:, :-1] >= 0x80
    if more[:, -1].all():  # every value uses all planes (e.g. timestamps): nothing to squeeze out
        return out.tobytes()
    present = np.empty((n, width), np.bool_)
    present[:, 0] = True
    present[:, 1:] = more
    return out[present].tobytes()


def _tag_and_length(field: int, payload_len: int) -> bytes:
    return varint(np.array([(field << 3) | _WIRE_LEN, payload_len], dtype=np.uint64))


def _packed(field: int, payload: bytes) -> bytes:
    return _tag_and_length(field, len(payload)) + payload if payload else b""


def encode_batch(
    run_id: str,
    writer_id: str,
    sequence: int,
    keys: list[str],
    key_indices: npt.NDArray[np.uint32],
    values: npt.NDArray[np.float64],
    steps: npt.NDArray[np.int64],
    timestamps_ms: npt.NDArray[np.int64],
) -> bytes:
    """A serialized StreamMetricsRequest; the columns must have one entry per point."""
    header = tracking_pb2.StreamMetricsRequest(
        run_id=run_id, writer_id=writer_id, sequence=sequence, keys=keys
    ).SerializeToString()
    return b"".join(
        (
            header,
            _packed(_KEY_INDICES, varint(key_indices.astype(np.uint64))),
            _packed(_VALUES, values.astype("<f8", copy=False).tobytes()),
            _packed(_STEPS, varint(steps.astype(np.int64, copy=False).view(np.uint64))),
            _packed(_TIMESTAMPS, varint(timestamps_ms.astype(np.int64, copy=False).view(np.uint64))),
        )
    )


_SERIES_FIELDS = tracking_pb2.MetricSeries.DESCRIPTOR.fields_by_name


def encode_series(
    run_id: str,
    key: str,
    steps: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    timestamps_ms: npt.NDArray[np.int64],
) -> bytes:
    """A serialized MetricSeries (the server's history answers: 1 M points in ~30 ms, not ~300 ms)."""
    header = tracking_pb2.MetricSeries(run_id=run_id, key=key).SerializeToString()
    return b"".join(
        (
            header,
            _packed(
                _SERIES_FIELDS["steps"].number, varint(steps.astype(np.int64, copy=False).view(np.uint64))
            ),
            _packed(_SERIES_FIELDS["values"].number, values.astype("<f8", copy=False).tobytes()),
            _packed(
                _SERIES_FIELDS["timestamps_ms"].number,
                varint(timestamps_ms.astype(np.int64, copy=False).view(np.uint64)),
            ),
        )
    )
