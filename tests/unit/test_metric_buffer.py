"""The metric buffer (lock-free single producer, sender takes concurrently) and the wire encoding."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracklane._metric_buffer import Columns, MetricBuffer, check_metric_key
from tracklane._metric_wire import encode_batch, varint
from tracklane.exceptions import InvalidArgument
from tracklane.v1 import tracking_pb2


class CountingSink:
    def __init__(self) -> None:
        self.seals = 0

    def sealed(self, buffer: MetricBuffer) -> None:
        self.seals += 1


def collect(chunks: list[Columns]) -> tuple[list[int], list[float], list[int], list[float]]:
    keys: list[int] = []
    values: list[float] = []
    steps: list[int] = []
    stamps: list[float] = []
    for c in chunks:
        keys += c.keys.tolist()
        values += c.values.tolist()
        steps += c.steps.tolist()
        stamps += c.stamps.tolist()
    return keys, values, steps, stamps


def test_points_come_out_in_order_with_interned_keys() -> None:
    sink = CountingSink()
    buffer = MetricBuffer("run", sink, segment_points=4)
    for i in range(10):
        buffer.log("loss" if i % 2 else "acc", i * 0.5, i, 1_700_000_000_000 + i)
    assert sink.seals == 2  # every 4 points
    keys, values, steps, stamps = collect(buffer.take())
    assert buffer.key_names == ["acc", "loss"]
    assert keys == [i % 2 for i in range(10)]
    assert values == [i * 0.5 for i in range(10)]
    assert steps == list(range(10))
    assert np.rint(np.array(stamps) * 1000).astype(int).tolist() == [1_700_000_000_000 + i for i in range(10)]
    assert buffer.take() == []
    assert not buffer.pending()


def test_defaults_step_zero_and_now() -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=100)
    buffer.log("m", 1, None, None)
    buffer.log_many({"a": 2, "b": 3.5}, None, None)
    _keys, values, steps, stamps = collect(buffer.take())
    assert values == [1.0, 2.0, 3.5]
    assert steps == [0, 0, 0]
    assert all(s > 1.6e9 for s in stamps)
    assert stamps[1] == stamps[2]  # log_many: one timestamp for all


def test_array_chunks_keep_their_place_between_scalar_points() -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=100)
    buffer.log("a", 1.0, 1, 1000)
    n = 5
    buffer.log_array(
        "b", Columns(np.empty(0, np.uint32), np.arange(n, dtype=float), np.arange(n), np.full(n, 2.0))
    )
    buffer.log("a", 2.0, 2, 3000)
    keys, values, steps, _ = collect(buffer.take())
    assert keys == [0, 1, 1, 1, 1, 1, 0]
    assert values == [1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 2.0]
    assert steps == [1, 0, 1, 2, 3, 4, 2]


@pytest.mark.parametrize("key", ["", "a" * 251, "bad!key", "/abs", "a/../b", 3])
def test_bad_keys_are_refused_on_first_use(key: object) -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=100)
    with pytest.raises(InvalidArgument) as info:
        buffer.log(key, 1.0, 0, None)  # type: ignore[arg-type]
    assert info.value.field == "key"
    assert buffer.take() == []


def test_good_keys_pass() -> None:
    for key in ["loss", "train/loss", "a.b-c d_e", "x" * 250]:
        assert check_metric_key(key) == key


def test_a_non_number_is_refused_at_the_call() -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=100)
    with pytest.raises((TypeError, ValueError)):
        buffer.log("m", "not a number", 0, None)  # type: ignore[arg-type]


def test_concurrent_take_loses_and_duplicates_nothing() -> None:
    """The producer appends without a lock while another thread takes: every point exactly once, in order."""
    buffer = MetricBuffer("run", CountingSink(), segment_points=997)
    n = 200_000
    taken: list[Columns] = []
    done = threading.Event()

    def sender() -> None:
        while not done.is_set():
            taken.extend(buffer.take())
        taken.extend(buffer.take())

    thread = threading.Thread(target=sender)
    thread.start()
    for i in range(n):
        buffer.log("k", float(i), i, 5)
    done.set()
    thread.join()
    _, values, steps, _ = collect(taken)
    assert steps == list(range(n))
    assert values == [float(i) for i in range(n)]


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=50))
def test_varint_matches_protobuf(numbers: list[int]) -> None:
    message = tracking_pb2.StreamMetricsRequest(steps=numbers)
    expected = message.SerializeToString()
    encoded = varint(np.array(numbers, dtype=np.int64).view(np.uint64))
    assert expected == (b"" if not numbers else expected[: len(expected) - len(encoded)] + encoded)


def test_encoded_batch_parses_to_the_same_columns() -> None:
    rng = np.random.default_rng(7)
    n = 5000
    keys = rng.integers(0, 3, n).astype(np.uint32)
    values = np.r_[rng.normal(size=n - 3), [np.nan, np.inf, -np.inf]]
    steps = rng.integers(-(2**40), 2**40, n)
    stamps = 1_700_000_000_000 + np.arange(n, dtype=np.int64)
    payload = encode_batch("run-1", "writer-abcdef", 42, ["a", "b", "c"], keys, values, steps, stamps)
    message = tracking_pb2.StreamMetricsRequest.FromString(payload)
    assert (message.run_id, message.writer_id, message.sequence) == ("run-1", "writer-abcdef", 42)
    assert list(message.keys) == ["a", "b", "c"]
    assert list(message.key_indices) == keys.tolist()
    np.testing.assert_array_equal(np.array(message.values), values)
    assert list(message.steps) == steps.tolist()
    assert list(message.timestamps_ms) == stamps.tolist()


def test_bad_steps_are_dropped_and_reported() -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=100)
    buffer.log("m", 1.0, 1, None)
    buffer.log("m", 2.0, "x", None)  # type: ignore[arg-type]
    buffer.log("m", 3.0, 2**64, None)
    buffer.log("m", 4.0, 4, None)
    _, values, steps, _ = collect(buffer.take())
    assert (steps, values) == ([1, 4], [1.0, 4.0])
    assert len(buffer.errors) == 1
    assert buffer.errors[0].field == "step"
    assert "2 points dropped" in str(buffer.errors[0])


def test_take_sealed_only_leaves_the_current_segment() -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=3)
    for i in range(5):
        buffer.log("m", i, i, None)
    _, _, steps, _ = collect(buffer.take(sealed_only=True))
    assert steps == [0, 1, 2]
    _, _, steps, _ = collect(buffer.take())
    assert steps == [3, 4]
