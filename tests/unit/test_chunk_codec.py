"""Stored step and timestamp columns: compact forms round-trip exactly, raw chunks still read."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracklane_server.store.metrics.chunk_codec import decode_ints, encode_ints

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(st.lists(INT64, max_size=60))
def test_any_column_round_trips(numbers: list[int]) -> None:
    column = np.array(numbers, np.int64)
    assert decode_ints(encode_ints(column), len(numbers)).tolist() == numbers


@given(INT64, INT64, st.integers(min_value=3, max_value=5000))
def test_arithmetic_columns_take_17_bytes_even_when_they_wrap(start: int, stride: int, n: int) -> None:
    column = np.int64(start) + np.int64(stride) * np.arange(n, dtype=np.int64)  # int64 wrap-around
    stored = encode_ints(column)
    assert len(stored) == 17
    assert decode_ints(stored, n).tolist() == column.tolist()


@given(st.lists(st.tuples(INT64, st.integers(min_value=1, max_value=50)), min_size=1, max_size=20))
def test_repeating_columns_are_stored_as_runs_when_shorter(runs: list[tuple[int, int]]) -> None:
    column = np.repeat(np.array([v for v, _ in runs], np.int64), [k for _, k in runs])
    stored = encode_ints(column)
    assert len(stored) <= 8 * len(column)
    assert decode_ints(stored, len(column)).tolist() == column.tolist()


def test_a_fast_loops_timestamps_shrink_to_a_few_bytes_a_millisecond() -> None:
    stamps = 1_763_900_000_000 + np.arange(4096, dtype=np.int64) // 100  # 100 points per millisecond
    stored = encode_ints(stamps)
    assert len(stored) == 16 * 41 + 1
    assert decode_ints(stored, 4096).tolist() == stamps.tolist()


def test_chunks_written_raw_before_compact_forms_still_read() -> None:
    column = np.arange(10, dtype=np.int64) * 3  # arithmetic, but stored raw by an older server
    assert decode_ints(column.tobytes(), 10).tolist() == column.tolist()


@pytest.mark.parametrize(
    ("stored", "count"),
    [
        (np.arange(4, dtype=np.int64).tobytes(), 5),  # raw, wrong count
        (np.array([5, 3], np.int64).tobytes() + b"\x02", 4),  # runs of 3 points, 4 expected
        (b"\x00" * 17, 4),  # unknown tag
        (b"\x00" * 3, 1),
    ],
)
def test_a_damaged_column_is_an_error_not_wrong_points(stored: bytes, count: int) -> None:
    with pytest.raises(ValueError, match="int64 column"):
        decode_ints(stored, count)
