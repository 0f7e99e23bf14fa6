"""WatchRun over real gRPC on every backend: history from a step, then each new commit once, fast."""

from __future__ import annotations

import queue
import statistics
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest

import tracklane
from tracklane.entities import Metric
from tracklane.testing import LocalServer
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc
from tracklane_server.store.metrics.points import CHUNK_POINTS
from tracklane_server.store.metrics.watch import NEW_CHUNKS, PIECE_POINTS

Points = list[tuple[str, int, float, int]]


class Watch:
    """An open WatchRun call read by a thread; ``next`` waits (bounded) for the next response."""

    def __init__(
        self, stub: tracking_pb2_grpc.TrackingServiceStub, request: tracking_pb2.WatchRunRequest
    ) -> None:
        self.call = stub.WatchRun(request, timeout=120)
        self.received: queue.Queue[tuple[float, tracking_pb2.WatchRunResponse] | BaseException] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for response in self.call:
                self.received.put((time.monotonic(), response))
        except grpc.RpcError as exc:
            self.received.put(exc)

    def next(self, timeout: float = 10.0) -> tuple[float, Points]:
        """(arrival time, points as (key, step, value, timestamp)) of the next response."""
        item = self.received.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        arrived, response = item
        return arrived, [
            (s.key, step, value, stamp)
            for s in response.series
            for step, value, stamp in zip(s.steps, s.values, s.timestamps_ms, strict=True)
        ]

    def collect(self, count: int, timeout: float = 10.0) -> Points:
        """Responses until ``count`` points arrived."""
        points: Points = []
        deadline = time.monotonic() + timeout
        while len(points) < count:
            points.extend(self.next(max(0.01, deadline - time.monotonic()))[1])
        return points

    def wait_live(self, client: tracklane.Client, run_id: str) -> None:
        """Logs a ``zz`` point until one arrives: the call has opened (its start is the cut).

        A point committed before the server opened the call is history, not news, and a busy
        machine can take longer than any fixed sleep to open it.
        """
        for step in range(60):
            client.log_batch(run_id, metrics=[Metric("zz", 0.0, step, 1)])
            try:
                self.next(timeout=0.5)
                return
            except queue.Empty:
                continue
        raise AssertionError("WatchRun did not deliver a new point within 30 s")

    def assert_quiet(self, seconds: float = 0.3) -> None:
        """Nothing more arrives (no duplicates)."""
        with pytest.raises(queue.Empty):
            self.received.get(timeout=seconds)

    def cancel(self) -> None:
        self.call.cancel()  # type: ignore[no-untyped-call]
        self._thread.join(5)


@pytest.fixture
def stub(tracking_server: LocalServer) -> Iterator[tracking_pb2_grpc.TrackingServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{tracking_server.port}") as channel:
        yield tracking_pb2_grpc.TrackingServiceStub(channel)


def stream_batch(
    stub: tracking_pb2_grpc.TrackingServiceStub, run_id: str, writer_id: str, sequence: int, points: Points
) -> None:
    """One StreamMetrics batch on its own call; returns after its ack (the commit)."""
    keys = list(dict.fromkeys(p[0] for p in points))
    request = tracking_pb2.StreamMetricsRequest(
        run_id=run_id, writer_id=writer_id, sequence=sequence, keys=keys
    )
    for key, step, value, stamp in points:
        request.key_indices.append(keys.index(key))
        request.steps.append(step)
        request.values.append(value)
        request.timestamps_ms.append(stamp)
    [ack] = list(stub.StreamMetrics(iter([request]), timeout=30))
    assert not ack.HasField("error"), ack.error


def watch_request(run_id: str, *keys: str, start_step: int | None = None) -> tracking_pb2.WatchRunRequest:
    request = tracking_pb2.WatchRunRequest(run_id=run_id, keys=keys)
    if start_step is not None:
        request.start_step = start_step
    return request


def test_history_from_start_step_then_each_new_commit_once(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub
) -> None:
    run_id = client.create_run().info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", float(s), s, 100 + s) for s in (3, 1, 2, 0)])
    client.log_batch(run_id, metrics=[Metric("acc", 0.5, 1, 7)])
    watch = Watch(stub, watch_request(run_id, start_step=1))
    try:
        _, first = watch.next()
        assert first == [
            ("acc", 1, 0.5, 7),
            ("loss", 1, 1.0, 101),
            ("loss", 2, 2.0, 102),
            ("loss", 3, 3.0, 103),
        ]
        writer_id = f"watch-{uuid.uuid4().hex[:8]}"
        stream_batch(stub, run_id, writer_id, 1, [("loss", 4, 4.0, 104), ("acc", 2, 0.6, 8)])
        assert sorted(watch.collect(2)) == [("acc", 2, 0.6, 8), ("loss", 4, 4.0, 104)]
        client.log_batch(run_id, metrics=[Metric("loss", 5.0, 5, 105)])
        assert watch.collect(1) == [("loss", 5, 5.0, 105)]
        # Points before start_step are not for this watcher.
        stream_batch(stub, run_id, writer_id, 2, [("loss", 0, 9.0, 109), ("loss", 6, 6.0, 106)])
        assert watch.collect(1) == [("loss", 6, 6.0, 106)]
        watch.assert_quiet()
    finally:
        watch.cancel()


def test_without_start_step_only_new_points_of_the_chosen_keys(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub
) -> None:
    run_id = client.create_run().info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", 1.0, 1, 1), Metric("acc", 1.0, 1, 1)])
    watch = Watch(stub, watch_request(run_id, "loss", "new"))
    try:
        time.sleep(0.2)  # let the call open (its start is the cut); nothing may arrive meanwhile
        watch.assert_quiet(0.1)
        client.log_batch(run_id, metrics=[Metric("acc", 2.0, 2, 2)])
        client.log_batch(run_id, metrics=[Metric("loss", 2.0, 2, 2), Metric("new", 7.0, 0, 3)])
        assert sorted(watch.collect(2)) == [("loss", 2, 2.0, 2), ("new", 0, 7.0, 3)]
        watch.assert_quiet()
    finally:
        watch.cancel()


def test_a_watcher_sees_a_commit_within_200_ms(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub
) -> None:
    run_id = client.create_run().info.run_id
    watch = Watch(stub, watch_request(run_id, start_step=0))
    try:
        writer_id = f"latency-{uuid.uuid4().hex[:8]}"
        delays = []
        for sequence in range(1, 11):
            stream_batch(stub, run_id, writer_id, sequence, [("m", sequence, 1.0, sequence)])
            committed = time.monotonic()  # the ack is sent after the commit: an upper bound on it
            arrived, points = watch.next()
            assert points == [("m", sequence, 1.0, sequence)]
            delays.append(max(0.0, arrived - committed))
        # The median, so one scheduling hiccup on a shared machine does not decide it.
        assert statistics.median(delays) < 0.2, delays
        assert max(delays) < 1.0, delays
    finally:
        watch.cancel()


def test_many_commits_arrive_complete_and_in_order_per_key(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub
) -> None:
    run_id = client.create_run().info.run_id
    watch = Watch(stub, watch_request(run_id, start_step=0))
    try:
        for i in range(30):
            client.log_batch(
                run_id, metrics=[Metric("a", float(i), i, i + 1), Metric("b", float(-i), i, i + 1)]
            )
        points = watch.collect(60)
        assert [p for p in points if p[0] == "a"] == [("a", i, float(i), i + 1) for i in range(30)]
        assert [p for p in points if p[0] == "b"] == [("b", i, float(-i), i + 1) for i in range(30)]
        watch.assert_quiet()
    finally:
        watch.cancel()


def test_watch_errors(client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub) -> None:
    run_id = client.create_run().info.run_id
    for request, code, field in (
        (watch_request("0" * 32), grpc.StatusCode.NOT_FOUND, "run_id"),
        (watch_request(""), grpc.StatusCode.INVALID_ARGUMENT, "run_id"),
        (watch_request(run_id, "ok", "bad key!"), grpc.StatusCode.INVALID_ARGUMENT, "keys[1]"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            next(iter(stub.WatchRun(request, timeout=10)))
        assert err.value.code() == code
        details = err.value.details() or ""
        assert details.startswith(field) or "does not exist" in details


def test_a_cancelled_watch_leaves_the_server_serving(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub
) -> None:
    run_id = client.create_run().info.run_id
    for _ in range(5):
        watch = Watch(stub, watch_request(run_id, start_step=0))
        client.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 1)])
        watch.next()
        watch.cancel()
    assert client.get_metric_history(run_id, "m").steps == [1] * 5


def test_a_long_history_comes_in_bounded_responses_in_step_order(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub
) -> None:
    run_id = client.create_run().info.run_id
    n = 250_000
    request = tracking_pb2.StreamMetricsRequest(
        run_id=run_id, writer_id=f"history-{uuid.uuid4().hex[:8]}", sequence=1, keys=["m"]
    )
    request.key_indices.extend([0] * n)
    request.steps.extend(range(n - 1, -1, -1))  # logged backwards: the watch sends them in step order
    request.values.extend(float(s) for s in range(n - 1, -1, -1))
    request.timestamps_ms.extend([5] * n)
    [ack] = list(stub.StreamMetrics(iter([request]), timeout=60))
    assert ack.points_written == n
    watch = Watch(stub, watch_request(run_id, start_step=1000))
    try:
        sizes: list[int] = []
        steps: list[int] = []
        while len(steps) < n - 1000:
            _, points = watch.next()
            sizes.append(len(points))
            steps.extend(p[1] for p in points)
        assert steps == list(range(1000, n))
        assert max(sizes) <= PIECE_POINTS  # one piece at a time, however long the history
        assert len(sizes) >= 3
        watch.assert_quiet()
    finally:
        watch.cancel()


def test_a_burst_of_new_points_comes_in_bounded_responses_each_point_once(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub
) -> None:
    """One commit of several keys with more chunks than one read takes: split, nothing lost or doubled."""
    run_id = client.create_run().info.run_id
    watch = Watch(stub, watch_request(run_id))
    try:
        watch.wait_live(client, run_id)
        per_key = CHUNK_POINTS * NEW_CHUNKS + 100  # each key alone needs more than one read
        keys = ["a", "b", "c"]
        request = tracking_pb2.StreamMetricsRequest(
            run_id=run_id, writer_id=f"burst-{uuid.uuid4().hex[:8]}", sequence=1, keys=keys
        )
        for index in range(len(keys)):
            request.key_indices.extend([index] * per_key)
            request.steps.extend(range(per_key))
            request.values.extend([float(index)] * per_key)
        request.timestamps_ms.append(9)
        [ack] = list(stub.StreamMetrics(iter([request]), timeout=60))
        assert ack.points_written == per_key * len(keys)
        got: Points = []
        sizes: list[int] = []
        while len(got) < per_key * len(keys):
            points = [p for p in watch.next()[1] if p[0] != "zz"]  # late live-check points first
            sizes.append(len(points))
            got.extend(points)
        assert sorted(got) == sorted((k, s, float(i), 9) for i, k in enumerate(keys) for s in range(per_key))
        assert max(sizes) <= NEW_CHUNKS * CHUNK_POINTS
        assert len(sizes) > len(keys)
        watch.assert_quiet()
    finally:
        watch.cancel()
