"""The metric buffer (C columns: one producer, the sender takes concurrently) and the wire encoding."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from tracklane._metrics.buffer import Columns, MetricBuffer, check_metric_key
from tracklane.exceptions import InvalidArgument
from tracklane.v1 import tracking_pb2
from tracklane.wire._varints import decode_varints
from tracklane.wire.metrics import decode_batch, encode_batch, varint


class CountingSink:
    def __init__(self) -> None:
        self.seals = 0

    def sealed(self, buffer: MetricBuffer) -> None:
        self.seals += 1


def collect(chunks: list[Columns]) -> tuple[list[int], list[float], list[int], list[int]]:
    keys: list[int] = []
    values: list[float] = []
    steps: list[int] = []
    stamps: list[int] = []
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
    assert stamps == [1_700_000_000_000 + i for i in range(10)]
    assert buffer.take() == []
    assert not buffer.pending()


def test_defaults_step_zero_and_now() -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=100)
    buffer.log("m", 1, None, None)
    buffer.log_many({"a": 2, "b": 3.5}, None, None)
    _keys, values, steps, stamps = collect(buffer.take())
    assert values == [1.0, 2.0, 3.5]
    assert steps == [0, 0, 0]
    assert all(s > 1_600_000_000_000 for s in stamps)  # epoch milliseconds
    assert stamps[1] == stamps[2]  # log_many: one timestamp for all


def test_array_chunks_keep_their_place_between_scalar_points() -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=100)
    buffer.log("a", 1.0, 1, 1000)
    n = 5
    buffer.log_array(
        "b", Columns(np.empty(0, np.uint32), np.arange(n, dtype=float), np.arange(n), np.full(n, 2000))
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


@pytest.mark.parametrize("value", ["1.5", None, [1.0], b"1", object()])
def test_a_non_number_is_refused_at_the_call(value: object) -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=100)
    buffer.log("m", 1.0, 0, None)
    with pytest.raises(InvalidArgument) as info:
        buffer.log("m", value, 0, None)  # type: ignore[arg-type]
    assert info.value.field == "value"
    _, values, _, _ = collect(buffer.take())
    assert values == [1.0]  # the point before is kept, nothing half-appended


def test_numbers_of_other_types_are_converted() -> None:
    """numpy scalars, bools and big ints take the slow path and come out as the plain numbers."""
    buffer = MetricBuffer("run", CountingSink(), segment_points=100)
    buffer.log("m", np.float32(1.5), np.int64(3), np.int64(1_700_000_000_001))
    buffer.log("m", True, np.uint8(4), None)
    buffer.log("m", 2**70, 2**63 - 1, 1_700_000_000_002)
    buffer.log("m", np.float64("nan"), -(2**63), 1_700_000_000_003)
    _, values, steps, stamps = collect(buffer.take())
    assert values[:3] == [1.5, 1.0, float(2**70)]
    assert np.isnan(values[3])
    assert steps == [3, 4, 2**63 - 1, -(2**63)]
    assert stamps[0] == 1_700_000_000_001
    assert stamps[2:] == [1_700_000_000_002, 1_700_000_000_003]


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


@pytest.mark.parametrize(
    ("field", "step", "timestamp"),
    [
        ("step", "x", None),
        ("step", 2**64, None),
        ("step", 1.5, None),
        ("timestamp", 0, 2**63),
        ("timestamp", 0, "now"),
    ],
)
def test_bad_steps_and_timestamps_are_refused_at_the_call(
    field: str, step: object, timestamp: object
) -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=100)
    buffer.log("m", 1.0, 1, None)
    with pytest.raises(InvalidArgument) as info:
        buffer.log("m", 2.0, step, timestamp)  # type: ignore[arg-type]
    assert info.value.field == field
    buffer.log("m", 4.0, 4, None)
    _, values, steps, _ = collect(buffer.take())
    assert (steps, values) == ([1, 4], [1.0, 4.0])


def test_varint_decoding_round_trips_and_refuses_malformed_input() -> None:
    numbers = np.array([0, 1, 127, 128, 300, -1, 2**63 - 1, -(2**63)], np.int64)
    assert np.frombuffer(decode_varints(varint(numbers)), np.int64).tolist() == numbers.tolist()
    assert decode_varints(b"") == b""
    for malformed in (b"\x80", b"\x01\xff", b"\xff" * 10 + b"\x01"):
        with pytest.raises(ValueError, match="varint"):
            decode_varints(malformed)


def test_big_segments_grow_as_points_come_and_keep_every_point() -> None:
    sink = CountingSink()
    buffer = MetricBuffer("run", sink, segment_points=50_000)  # columns start at 4,096 points
    for i in range(120_000):
        buffer.log("k", i * 0.5, i, 1_700_000_000_000 + i)
    assert sink.seals == 2
    chunks = buffer.take()
    assert [len(c) for c in chunks] == [50_000, 50_000, 20_000]
    _, values, steps, stamps = collect(chunks)
    assert steps == list(range(120_000))
    assert values == [i * 0.5 for i in range(120_000)]
    assert stamps == [1_700_000_000_000 + i for i in range(120_000)]


def test_take_sealed_only_leaves_the_current_segment() -> None:
    buffer = MetricBuffer("run", CountingSink(), segment_points=3)
    for i in range(5):
        buffer.log("m", i, i, None)
    _, _, steps, _ = collect(buffer.take(sealed_only=True))
    assert steps == [0, 1, 2]
    _, _, steps, _ = collect(buffer.take())
    assert steps == [3, 4]


def test_decoded_batch_equals_what_protobuf_parses() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    keys = rng.integers(0, 4, n).astype(np.uint32)
    values = np.r_[rng.normal(size=n - 2), [np.nan, -np.inf]]
    steps = rng.integers(-(2**62), 2**62, n)
    stamps = 1_700_000_000_000 + rng.integers(0, 10**6, n)
    payload = encode_batch("run-2", "writer-123456", 9, ["a", "b", "c", "d"], keys, values, steps, stamps)
    # Unknown fields and a second packed piece of a column are legal protobuf: both must survive.
    extra = tracking_pb2.StreamMetricsRequest(steps=[5, -6], key_indices=[1, 2]).SerializeToString()
    decoded = decode_batch(payload + b"\xf8\x07\x01" + extra)  # field 127, varint 1
    reference = tracking_pb2.StreamMetricsRequest.FromString(payload + extra)
    assert (decoded.header.run_id, decoded.header.writer_id, decoded.header.sequence) == (
        "run-2",
        "writer-123456",
        9,
    )
    assert list(decoded.header.keys) == ["a", "b", "c", "d"]
    assert decoded.key_indices.tolist() == list(reference.key_indices)
    np.testing.assert_array_equal(decoded.values, np.array(reference.values))
    assert decoded.steps.tolist() == list(reference.steps)
    assert decoded.timestamps_ms.tolist() == list(reference.timestamps_ms)


def test_a_batch_of_one_time_sends_one_timestamp() -> None:
    n = 1000
    stamps = np.full(n, 1_700_000_000_000, np.int64)
    payload = encode_batch(
        "r", "writer-1", 1, ["k"], np.zeros(n, np.uint32), np.ones(n), np.arange(n), stamps
    )
    assert list(tracking_pb2.StreamMetricsRequest.FromString(payload).timestamps_ms) == [1_700_000_000_000]
    stamps[-1] += 1
    payload = encode_batch(
        "r", "writer-1", 1, ["k"], np.zeros(n, np.uint32), np.ones(n), np.arange(n), stamps
    )
    assert list(tracking_pb2.StreamMetricsRequest.FromString(payload).timestamps_ms) == stamps.tolist()


def test_decoding_an_unpacked_column_takes_the_general_parser() -> None:
    header = tracking_pb2.StreamMetricsRequest(run_id="r", writer_id="w" * 8, sequence=1, keys=["k"])
    unpacked = b"".join(
        (
            header.SerializeToString(),
            b"\x28\x00\x28\x00",  # key_indices 0, 0 as two varint fields (field 5, wire type 0)
            tracking_pb2.StreamMetricsRequest(values=[1.5, 2.5], steps=[3, 4]).SerializeToString(),
            b"\x40\x07\x40\x08",  # timestamps_ms 7, 8 unpacked (field 8)
        )
    )
    decoded = decode_batch(unpacked)
    assert decoded.key_indices.tolist() == [0, 0]
    assert decoded.values.tolist() == [1.5, 2.5]
    assert decoded.steps.tolist() == [3, 4]
    assert decoded.timestamps_ms.tolist() == [7, 8]


@pytest.mark.parametrize(
    "payload",
    [
        b"\x3a\x02\x80",  # steps: a length past the end
        b"\x3a\x01\x80",  # steps: a varint cut off inside the column
        b"\x32\x03abc",  # values: not a multiple of 8 bytes
        b"\x0a\x02\xff\xfe",  # run_id: not UTF-8
        b"\x0b",  # wire type 3 (a group)
        b"\x08",  # a tag without its value
    ],
)
def test_a_malformed_batch_is_a_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_batch(payload)
