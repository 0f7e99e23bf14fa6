"""StreamMetrics over real gRPC on every backend: acks after commit, exactly-once, per-batch errors."""

from __future__ import annotations

import math
import queue
import uuid
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

import tracklane
from tracklane.testing import LocalServer
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc

Request = tracking_pb2.StreamMetricsRequest
Ack = tracking_pb2.StreamMetricsResponse


class Stream:
    """One open StreamMetrics call: ``send`` puts a batch on the wire, ``ack`` reads the next answer."""

    def __init__(self, stub: tracking_pb2_grpc.TrackingServiceStub) -> None:
        self._requests: queue.Queue[Request | None] = queue.Queue()
        self.call = stub.StreamMetrics(iter(self._requests.get, None), timeout=60)
        self._acks: Iterator[Ack] = iter(self.call)

    def send(self, request: Request) -> None:
        self._requests.put(request)

    def ack(self) -> Ack:
        return next(self._acks)

    def roundtrip(self, request: Request) -> Ack:
        self.send(request)
        return self.ack()

    def close(self) -> list[Ack]:
        """Half-closes and returns the acks still to come; the call then ends with OK."""
        self._requests.put(None)
        rest = list(self._acks)
        assert self.call.code() == grpc.StatusCode.OK
        return rest


@pytest.fixture
def stub(tracking_server: LocalServer) -> Iterator[tracking_pb2_grpc.TrackingServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{tracking_server.port}") as channel:
        yield tracking_pb2_grpc.TrackingServiceStub(channel)


@pytest.fixture
def stream(stub: tracking_pb2_grpc.TrackingServiceStub) -> Iterator[Stream]:
    opened = Stream(stub)
    yield opened
    opened.close()


def writer() -> str:
    return f"writer-{uuid.uuid4().hex[:12]}"


def batch(
    run_id: str,
    writer_id: str,
    sequence: int,
    points: dict[str, list[tuple[int, float]]] | None = None,
    override: dict[str, object] | None = None,
) -> Request:
    """A batch from {key: [(step, value), ...]}; timestamps are 1000 + step; ``override`` replaces fields."""
    points = {"loss": [(1, 0.5)]} if points is None else points
    keys = list(points)
    request = Request(run_id=run_id, writer_id=writer_id, sequence=sequence, keys=keys)
    for index, key in enumerate(keys):
        for step, value in points[key]:
            request.key_indices.append(index)
            request.steps.append(step)
            request.values.append(value)
            request.timestamps_ms.append(1000 + step)
    for name, replacement in (override or {}).items():
        request.ClearField(name)  # type: ignore[arg-type]
        if isinstance(replacement, list):
            getattr(request, name).extend(replacement)
        else:
            setattr(request, name, replacement)
    return request


def history(client: tracklane.Client, run_id: str, key: str) -> list[tuple[int, float, int]]:
    series = client.get_metric_history(run_id, key)
    return list(zip(series.steps, series.values, series.timestamps, strict=True))


def assert_ok(ack: Ack, sequence: int, written: int) -> None:
    assert not ack.HasField("error"), ack.error
    assert (ack.sequence, ack.points_written, ack.duplicate) == (sequence, written, False)


def test_each_batch_is_acked_after_commit_and_history_is_what_was_streamed(
    client: tracklane.Client, stream: Stream
) -> None:
    run_id = client.create_run().info.run_id
    w = writer()
    ack = stream.roundtrip(
        batch(run_id, w, 1, {"loss": [(0, 1.0), (1, 0.5)], "acc": [(0, 0.1)], "lr": [(0, 3e-4)]})
    )
    assert_ok(ack, 1, 4)
    assert (ack.run_id, ack.writer_id) == (run_id, w)
    # The ack means committed: a read right after it sees the points.
    assert history(client, run_id, "loss") == [(0, 1.0, 1000), (1, 0.5, 1001)]
    ack = stream.roundtrip(batch(run_id, w, 2, {"loss": [(3, 0.25), (2, 0.3)], "acc": [(1, 0.2)]}))
    assert_ok(ack, 2, 3)
    assert history(client, run_id, "loss") == [
        (0, 1.0, 1000),
        (1, 0.5, 1001),
        (2, 0.3, 1002),
        (3, 0.25, 1003),
    ]
    assert history(client, run_id, "acc") == [(0, 0.1, 1000), (1, 0.2, 1001)]
    assert client.get_run(run_id).data.metrics == {"loss": 0.25, "acc": 0.2, "lr": 3e-4}


def test_nan_and_infinities_are_stored_as_such(client: tracklane.Client, stream: Stream) -> None:
    run_id = client.create_run().info.run_id
    ack = stream.roundtrip(batch(run_id, writer(), 1, {"x": [(0, math.nan), (1, math.inf), (2, -math.inf)]}))
    assert_ok(ack, 1, 3)
    values = client.get_metric_history(run_id, "x").values
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]


def test_a_large_batch_round_trips_exactly(client: tracklane.Client, stream: Stream) -> None:
    run_id = client.create_run().info.run_id
    rng = np.random.default_rng(7)
    n, keys = 50_000, [f"m{i}" for i in range(10)]
    request = Request(run_id=run_id, writer_id=writer(), sequence=1, keys=keys)
    key_indices = rng.integers(0, len(keys), n)
    values = rng.standard_normal(n)
    steps = np.arange(n)
    request.key_indices.extend(key_indices)
    request.values.extend(values)
    request.steps.extend(steps)
    request.timestamps_ms.extend(steps + 1_700_000_000_000)
    assert_ok(stream.roundtrip(request), 1, n)
    for i, key in enumerate(keys[:3]):
        mine = key_indices == i
        series = client.get_metric_history(run_id, key)
        assert series.steps == steps[mine].tolist()
        assert series.values == values[mine].tolist()


def test_a_replayed_batch_is_acked_as_duplicate_and_not_written_again(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub
) -> None:
    run_id = client.create_run().info.run_id
    w = writer()
    first = Stream(stub)
    assert_ok(first.roundtrip(batch(run_id, w, 1, {"m": [(1, 1.0)]})), 1, 1)
    assert_ok(first.roundtrip(batch(run_id, w, 2, {"m": [(2, 2.0)]})), 2, 1)
    first.close()
    # A reconnect replays what it is not sure of: both batches, then goes on.
    again = Stream(stub)
    for sequence in (1, 2):
        ack = again.roundtrip(batch(run_id, w, sequence, {"m": [(sequence, float(sequence))]}))
        assert not ack.HasField("error")
        assert (ack.sequence, ack.duplicate, ack.points_written) == (sequence, True, 0)
    assert_ok(again.roundtrip(batch(run_id, w, 3, {"m": [(3, 3.0)]})), 3, 1)
    again.close()
    assert history(client, run_id, "m") == [(1, 1.0, 1001), (2, 2.0, 1002), (3, 3.0, 1003)]


def test_a_gap_is_refused_naming_sequence_and_nothing_is_stored(
    client: tracklane.Client, stream: Stream
) -> None:
    run_id = client.create_run().info.run_id
    w = writer()
    assert_ok(stream.roundtrip(batch(run_id, w, 1, {"m": [(1, 1.0)]})), 1, 1)
    ack = stream.roundtrip(batch(run_id, w, 3, {"m": [(3, 3.0)]}))
    assert ack.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert ack.error.field == "sequence"
    assert "send batch 2 first" in ack.error.message
    assert (ack.sequence, ack.points_written, ack.duplicate) == (3, 0, False)
    assert history(client, run_id, "m") == [(1, 1.0, 1001)]
    # The stream goes on: the missing batch, then the refused one again.
    assert_ok(stream.roundtrip(batch(run_id, w, 2, {"m": [(2, 2.0)]})), 2, 1)
    assert_ok(stream.roundtrip(batch(run_id, w, 3, {"m": [(3, 3.0)]})), 3, 1)
    assert [p[0] for p in history(client, run_id, "m")] == [1, 2, 3]


def test_a_new_writer_must_start_at_sequence_one(client: tracklane.Client, stream: Stream) -> None:
    run_id = client.create_run().info.run_id
    ack = stream.roundtrip(batch(run_id, writer(), 2))
    assert (ack.error.code, ack.error.field) == (grpc.StatusCode.FAILED_PRECONDITION.value[0], "sequence")
    assert history(client, run_id, "loss") == []


NO_RUN = "0" * 32


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"run_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "run_id"),
        ({"run_id": NO_RUN}, grpc.StatusCode.NOT_FOUND, "run_id"),
        ({"run_id": "no\x00such run"}, grpc.StatusCode.NOT_FOUND, "run_id"),
        ({"run_id": "r" * 33}, grpc.StatusCode.NOT_FOUND, "run_id"),
        ({"writer_id": "short"}, grpc.StatusCode.INVALID_ARGUMENT, "writer_id"),
        ({"writer_id": "w" * 65}, grpc.StatusCode.INVALID_ARGUMENT, "writer_id"),
        ({"writer_id": "writer\x00id"}, grpc.StatusCode.INVALID_ARGUMENT, "writer_id"),
        ({"sequence": 0}, grpc.StatusCode.INVALID_ARGUMENT, "sequence"),
        ({"sequence": -4}, grpc.StatusCode.INVALID_ARGUMENT, "sequence"),
        ({"keys": ["ok", "bad key!"]}, grpc.StatusCode.INVALID_ARGUMENT, "keys[1]"),
        ({"keys": ["ok", ""]}, grpc.StatusCode.INVALID_ARGUMENT, "keys[1]"),
        ({"keys": ["ok", "k" * 251]}, grpc.StatusCode.INVALID_ARGUMENT, "keys[1]"),
        ({"keys": ["ok", "ok"]}, grpc.StatusCode.INVALID_ARGUMENT, "keys[1]"),
        ({"keys": []}, grpc.StatusCode.INVALID_ARGUMENT, "keys"),
        ({"key_indices": [0, 1]}, grpc.StatusCode.INVALID_ARGUMENT, "key_indices"),
        ({"key_indices": [0, 0, 2]}, grpc.StatusCode.INVALID_ARGUMENT, "key_indices[2]"),
        ({"steps": [1, 2]}, grpc.StatusCode.INVALID_ARGUMENT, "steps"),
        ({"timestamps_ms": [1, 2, 3, 4]}, grpc.StatusCode.INVALID_ARGUMENT, "timestamps_ms"),
        ({"timestamps_ms": [1, 2]}, grpc.StatusCode.INVALID_ARGUMENT, "timestamps_ms"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    client: tracklane.Client, stream: Stream, fields: dict[str, object], code: grpc.StatusCode, field: str
) -> None:
    run_id = client.create_run().info.run_id
    w = writer()
    good = {"ok": [(1, 1.0), (2, 2.0), (3, 3.0)]}
    ack = stream.roundtrip(batch(run_id, w, 1, good, fields))
    assert ack.error.code == code.value[0], ack.error
    assert ack.error.field == field
    assert ack.error.message.startswith(field) or field == "run_id"
    assert ack.points_written == 0
    assert history(client, run_id, "ok") == []
    assert client.get_run(run_id).data.metrics == {}
    # The stream goes on. A refused batch of a valid (run, writer, sequence) consumes its number.
    header_refused = any(name in fields for name in ("run_id", "writer_id", "sequence"))
    next_sequence = 1 if header_refused else 2
    assert_ok(stream.roundtrip(batch(run_id, w, next_sequence, good)), next_sequence, 3)
    assert [p[0] for p in history(client, run_id, "ok")] == [1, 2, 3]


def test_a_deleted_run_is_refused_until_restored(client: tracklane.Client, stream: Stream) -> None:
    run_id = client.create_run().info.run_id
    w = writer()
    client.delete_run(run_id)
    ack = stream.roundtrip(batch(run_id, w, 1))
    assert (ack.error.code, ack.error.field) == (grpc.StatusCode.FAILED_PRECONDITION.value[0], "run_id")
    client.restore_run(run_id)
    assert_ok(stream.roundtrip(batch(run_id, w, 2)), 2, 1)
    assert history(client, run_id, "loss") == [(1, 0.5, 1001)]


def test_one_stream_carries_many_runs_and_writers(client: tracklane.Client, stream: Stream) -> None:
    runs = [client.create_run().info.run_id for _ in range(4)]
    writers = [writer(), writer()]
    expected: dict[tuple[str, str], list[tuple[int, float, int]]] = {}
    sent = 0
    for sequence in range(1, 6):
        for run_id in runs:
            for w_index, w in enumerate(writers):
                key = f"w{w_index}"
                points = [(sequence * 10 + i, float(sequence + i)) for i in range(3)]
                stream.send(batch(run_id, w, sequence, {key: points}))
                sent += 1
                expected.setdefault((run_id, key), []).extend((s, v, 1000 + s) for s, v in points)
    # Sent without waiting: acks come back in order, one per batch.
    acks = [stream.ack() for _ in range(sent)]
    assert [a.sequence for a in acks] == [s for s in range(1, 6) for _ in runs for _ in writers]
    assert all(not a.HasField("error") and a.points_written == 3 for a in acks)
    for (run_id, key), stored in expected.items():
        assert history(client, run_id, key) == stored


def test_an_empty_batch_advances_the_sequence(client: tracklane.Client, stream: Stream) -> None:
    run_id = client.create_run().info.run_id
    w = writer()
    assert_ok(stream.roundtrip(Request(run_id=run_id, writer_id=w, sequence=1)), 1, 0)
    assert_ok(stream.roundtrip(batch(run_id, w, 2)), 2, 1)


def test_zero_timestamps_mean_now(client: tracklane.Client, stream: Stream) -> None:
    run_id = client.create_run().info.run_id
    ack = stream.roundtrip(batch(run_id, writer(), 1, {"m": [(1, 1.0)]}, {"timestamps_ms": [0]}))
    assert_ok(ack, 1, 1)
    [(_, _, stamp)] = history(client, run_id, "m")
    assert stamp > 1_600_000_000_000


def test_one_timestamp_stands_for_every_point_of_the_batch(client: tracklane.Client, stream: Stream) -> None:
    run_id = client.create_run().info.run_id
    points = {"a": [(1, 1.0), (2, 2.0)], "b": [(1, 3.0)]}
    ack = stream.roundtrip(batch(run_id, writer(), 1, points, {"timestamps_ms": [1_700_000_000_123]}))
    assert_ok(ack, 1, 3)
    assert history(client, run_id, "a") == [(1, 1.0, 1_700_000_000_123), (2, 2.0, 1_700_000_000_123)]
    assert history(client, run_id, "b") == [(1, 3.0, 1_700_000_000_123)]


def test_streamed_points_merge_with_logbatch_points(client: tracklane.Client, stream: Stream) -> None:
    run_id = client.create_run().info.run_id
    client.log_batch(run_id, metrics=[tracklane.Metric("m", 0.0, 0, 1000)])
    assert_ok(stream.roundtrip(batch(run_id, writer(), 1, {"m": [(2, 2.0)]})), 1, 1)
    client.log_batch(run_id, metrics=[tracklane.Metric("m", 1.0, 1, 1001)])
    assert history(client, run_id, "m") == [(0, 0.0, 1000), (1, 1.0, 1001), (2, 2.0, 1002)]
    assert client.get_run(run_id).data.metrics == {"m": 2.0}


def test_a_stream_cancelled_mid_flight_loses_nothing_and_stores_nothing_twice(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub
) -> None:
    run_id = client.create_run().info.run_id
    w = writer()
    steps_per_batch = 2_000
    batches = [
        batch(
            run_id,
            w,
            sequence,
            {
                "m": [
                    (s, float(s)) for s in range((sequence - 1) * steps_per_batch, sequence * steps_per_batch)
                ]
            },
        )
        for sequence in range(1, 21)
    ]
    first = Stream(stub)
    for request in batches:
        first.send(request)
    acked = [first.ack().sequence for _ in range(3)]
    first.call.cancel()  # type: ignore[no-untyped-call]  # the client goes away mid-flight
    assert acked == [1, 2, 3]
    # A new stream replays everything from the first unacknowledged batch (here: all of them).
    again = Stream(stub)
    for request in batches:
        again.send(request)
    acks = [again.ack() for _ in batches]
    again.close()
    assert all(not a.HasField("error") for a in acks)
    assert [a.sequence for a in acks] == list(range(1, 21))
    assert acks[0].duplicate  # acknowledged before the cancel; later ones may or may not have landed
    assert (
        sum(a.points_written for a in acks) + sum(a.duplicate for a in acks) * steps_per_batch
        == 20 * steps_per_batch
    )
    assert client.get_metric_history(run_id, "m", page_size=100_000).steps == list(
        range(20 * steps_per_batch)
    )


def test_pipelined_replays_gaps_and_new_batches_of_one_writer(
    client: tracklane.Client, stream: Stream
) -> None:
    run_id = client.create_run().info.run_id
    w = writer()

    def numbered(sequence: int) -> Request:
        return batch(run_id, w, sequence, {"m": [(sequence, float(sequence))]})

    # Sent back to back, so the server commits several in one group (of contiguous sequences or not).
    order = [1, 2, 3, 4, 5, 4, 5, 6, 7, 9, 8, 9, 10]
    for sequence in order:
        stream.send(numbered(sequence))
    acks = [stream.ack() for _ in order]
    assert [a.sequence for a in acks] == order
    assert [a.duplicate for a in acks] == [False] * 5 + [True, True] + [False] * 6
    assert [a.error.field for a in acks] == [""] * 9 + ["sequence"] + [""] * 3
    assert [p[0] for p in history(client, run_id, "m")] == list(range(1, 11))


def test_two_streams_racing_with_one_writers_batches_apply_each_once(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub
) -> None:
    # An old stream still draining while the reconnected one replays the same batches.
    run_id = client.create_run().info.run_id
    w = writer()
    batches = [batch(run_id, w, s, {"m": [(s * 10 + i, float(i)) for i in range(10)]}) for s in range(1, 31)]
    streams = [Stream(stub), Stream(stub)]
    for request in batches:
        for stream in streams:
            stream.send(request)
    acks = [[stream.ack() for _ in batches] for stream in streams]
    for stream in streams:
        stream.close()
    for sequence in range(1, 31):
        pair = [mine[sequence - 1] for mine in acks]
        assert [a.sequence for a in pair] == [sequence, sequence]
        # Once applied somewhere, a duplicate elsewhere; a gap (the other stream is behind) is retried.
        applied = [a for a in pair if a.points_written == 10]
        assert len(applied) <= 1, pair
    stored = [p[0] for p in history(client, run_id, "m")]
    assert sorted(set(stored)) == stored  # never twice
    # Whatever was refused as a gap is applied by resending in order on a fresh stream.
    again = Stream(stub)
    for request in batches:
        ack = again.roundtrip(request)
        assert not ack.HasField("error"), ack
    again.close()
    assert [p[0] for p in history(client, run_id, "m")] == [
        s * 10 + i for s in range(1, 31) for i in range(10)
    ]
