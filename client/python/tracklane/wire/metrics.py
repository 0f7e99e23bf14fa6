"""StreamMetricsRequest bytes straight from numpy columns and back, without a protobuf object per batch.

Filling repeated fields through the protobuf runtime converts every element to a Python object
(~100 ns per point over four columns); writing the packed fields ourselves is a memory copy for the
values and one C pass per varint column (``_varints.encode_varints``: ~10 ns a timestamp).
The header (run, writer, sequence, key table) still goes through protobuf, and protobuf's parser
merges concatenated fields, so the result is an ordinary, valid message.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from google.protobuf.internal.decoder import _DecodeVarint  # type: ignore[attr-defined]
from google.protobuf.message import DecodeError

from tracklane.v1 import tracking_pb2
from tracklane.wire._varints import decode_varints, encode_varints

__all__ = ["BatchColumns", "decode_batch", "encode_batch", "encode_series", "varint"]

_WIRE_LEN = 2
# Field numbers of StreamMetricsRequest's point columns.
_KEY_INDICES, _VALUES, _STEPS, _TIMESTAMPS = 5, 6, 7, 8


def varint(values: npt.NDArray[np.uint64] | npt.NDArray[np.int64] | npt.NDArray[np.uint32]) -> bytes:
    """Protobuf base-128 varints (int64 negatives as their two's complement, as protobuf does)."""
    return encode_varints(np.ascontiguousarray(values))


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
    """A serialized StreamMetricsRequest; the columns must have one entry per point (a single
    timestamp goes out when all are the same)."""
    # The first and last compared first: a batch of many times is told apart without a pass.
    first = timestamps_ms[:1]
    if timestamps_ms.shape[0] > 1 and first[0] == timestamps_ms[-1] and (timestamps_ms == first[0]).all():
        timestamps_ms = first
    header = tracking_pb2.StreamMetricsRequest(
        run_id=run_id, writer_id=writer_id, sequence=sequence, keys=keys
    ).SerializeToString()
    return b"".join(
        (
            header,
            _packed(_KEY_INDICES, varint(key_indices.astype(np.uint32, copy=False))),
            _packed(_VALUES, values.astype("<f8", copy=False).tobytes()),
            _packed(_STEPS, varint(steps.astype(np.int64, copy=False))),
            _packed(_TIMESTAMPS, varint(timestamps_ms.astype(np.int64, copy=False))),
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
            _packed(_SERIES_FIELDS["steps"].number, varint(steps.astype(np.int64, copy=False))),
            _packed(_SERIES_FIELDS["values"].number, values.astype("<f8", copy=False).tobytes()),
            _packed(
                _SERIES_FIELDS["timestamps_ms"].number,
                varint(timestamps_ms.astype(np.int64, copy=False)),
            ),
        )
    )


class BatchColumns(NamedTuple):
    """A StreamMetricsRequest as its header message (no point columns) and numpy point columns."""

    header: tracking_pb2.StreamMetricsRequest
    key_indices: npt.NDArray[np.uint32]
    values: npt.NDArray[np.float64]
    steps: npt.NDArray[np.int64]
    timestamps_ms: npt.NDArray[np.int64]


def decode_batch(data: bytes) -> BatchColumns:
    """The inverse of ``encode_batch``, for any valid serialized StreamMetricsRequest.

    The point columns are cut out of the bytes and decoded in C (~15 ns a point, against ~85 for
    protobuf's parser filling repeated fields and numpy copying them out); the rest parses as usual.
    A column sent unpacked (legal, though no protobuf library writes it) takes the general parser.

    Raises:
        DecodeError: the bytes are not a valid StreamMetricsRequest.
    """
    view = memoryview(data)
    columns: dict[int, list[memoryview]] = {field: [] for field in _COLUMN_FIELDS}
    header: list[memoryview] = []
    kept_from = pos = 0
    end = len(data)
    try:
        while pos < end:
            start = pos
            tag, pos = _DecodeVarint(data, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                _, pos = _DecodeVarint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == _WIRE_LEN:
                length, pos = _DecodeVarint(data, pos)
                if field in columns:
                    columns[field].append(view[pos : pos + length])
                    header.append(view[kept_from:start])
                    kept_from = pos + length
                pos += length
            elif wire == 5:
                pos += 4
            else:
                raise DecodeError(f"wire type {wire} of field {field} is not valid here")
            if field in columns and wire != _WIRE_LEN:
                return _decode_general(data)
        if pos != end:
            raise DecodeError("truncated message")
        header.append(view[kept_from:end])
        message = tracking_pb2.StreamMetricsRequest.FromString(b"".join(header))
        raw_values = b"".join(columns[_VALUES])
        if len(raw_values) % 8:
            raise DecodeError("values: packed doubles must be a multiple of 8 bytes")
        return BatchColumns(
            message,
            _varints(columns[_KEY_INDICES], np.uint64).astype(np.uint32),
            np.frombuffer(raw_values, "<f8"),
            _varints(columns[_STEPS], np.int64),
            _varints(columns[_TIMESTAMPS], np.int64),
        )
    except (ValueError, IndexError) as exc:
        raise DecodeError(str(exc)) from None


_COLUMN_FIELDS = (_KEY_INDICES, _VALUES, _STEPS, _TIMESTAMPS)


def _varints(parts: list[memoryview], dtype: type[np.integer[Any]]) -> npt.NDArray[Any]:
    if not parts:
        return np.empty(0, dtype)
    return np.frombuffer(decode_varints(parts[0] if len(parts) == 1 else b"".join(parts)), dtype)


def _decode_general(data: bytes) -> BatchColumns:
    message = tracking_pb2.StreamMetricsRequest.FromString(data)
    columns = BatchColumns(
        message,
        np.array(message.key_indices, np.uint32),
        np.array(message.values, np.float64),
        np.array(message.steps, np.int64),
        np.array(message.timestamps_ms, np.int64),
    )
    for name in ("key_indices", "values", "steps", "timestamps_ms"):
        message.ClearField(name)
    return columns
