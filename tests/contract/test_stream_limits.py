"""max_streams_per_client: one client's open StreamMetrics calls are bounded; others are not affected."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import tracklane
from tracklane._metrics.batch_stream import client_id
from tracklane._metrics.sender import MetricsConfig, MetricSender
from tracklane.exceptions import DeadlineExceeded
from tracklane.testing import LocalServer
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc
from tracklane.wire.headers import CLIENT_ID_HEADER

LIMIT = 2


class Call:
    """An open StreamMetrics call that is known to be accepted once ``check`` got its first ack."""

    def __init__(self, channel: grpc.Channel, run_id: str, client_id: str | None) -> None:
        self._requests: queue.Queue[tracking_pb2.StreamMetricsRequest | None] = queue.Queue()
        metadata = () if client_id is None else ((CLIENT_ID_HEADER, client_id),)
        stub = tracking_pb2_grpc.TrackingServiceStub(channel)
        self.call = stub.StreamMetrics(iter(self._requests.get, None), timeout=60, metadata=metadata)
        self.run_id = run_id
        self.writer = uuid.uuid4().hex

    def check(self) -> tracking_pb2.StreamMetricsResponse:
        """Sends one batch and returns its ack (raises the call's error if it was refused)."""
        self._requests.put(
            tracking_pb2.StreamMetricsRequest(
                run_id=self.run_id,
                writer_id=self.writer,
                sequence=1,
                keys=["m"],
                key_indices=[0],
                values=[1.0],
                steps=[0],
                timestamps_ms=[1000],
            )
        )
        return next(iter(self.call))

    def close(self) -> None:
        self._requests.put(None)
        list(self.call)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(tmp_path_factory.mktemp("limits"), max_streams_per_client=LIMIT) as local:
        yield local


@pytest.fixture
def channel(server: LocalServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as opened:
        yield opened


@pytest.fixture
def run_id(server: LocalServer) -> str:
    with tracklane.Client(server.uri) as client:
        return client.create_run("0").info.run_id


def test_a_client_past_the_limit_is_refused_naming_it(channel: grpc.Channel, run_id: str) -> None:
    me = uuid.uuid4().hex
    open_calls = [Call(channel, run_id, me) for _ in range(LIMIT)]
    for call in open_calls:
        assert call.check().points_written == 1
    extra = Call(channel, run_id, me)
    with pytest.raises(grpc.RpcError) as info:
        extra.check()
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_streams_per_client" in info.value.details()
    assert f"limit is {LIMIT}" in info.value.details()
    # Another client process (another id) has a budget of its own, on the same connection.
    other = Call(channel, run_id, uuid.uuid4().hex)
    assert other.check().points_written == 1
    other.close()
    # A closed call gives its slot back.
    open_calls.pop().close()
    again = Call(channel, run_id, me)
    assert again.check().points_written == 1
    for call in [*open_calls, again]:
        call.close()


def test_clients_without_an_id_are_counted_per_connection(server: LocalServer, run_id: str) -> None:
    with (
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as first,
        grpc.insecure_channel(
            f"127.0.0.1:{server.port}", options=[("grpc.use_local_subchannel_pool", 1)]
        ) as second,
    ):
        calls = [Call(first, run_id, None) for _ in range(LIMIT)]
        for call in calls:
            call.check()
        with pytest.raises(grpc.RpcError) as info:
            Call(first, run_id, None).check()
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        separate = Call(second, run_id, None)  # a connection of its own
        assert separate.check().points_written == 1
        for call in [*calls, separate]:
            call.close()


def test_the_python_client_waits_for_a_slot_and_delivers(
    server: LocalServer, channel: grpc.Channel, run_id: str, tmp_path: Path
) -> None:
    """The client's own streams carry its process id: with its budget taken, its batches wait (the
    refusal is retryable) and are delivered once a slot is free."""
    blockers = [Call(channel, run_id, client_id()) for _ in range(LIMIT)]
    for call in blockers:
        call.check()
    sender = MetricSender(server.uri, MetricsConfig(spool_dir=tmp_path, spill_after=600))
    try:
        sender.buffer(run_id).log("waited", 2.0, 7, None)
        with pytest.raises(DeadlineExceeded, match="max_streams_per_client"):
            sender.flush(1.0)
        for call in blockers:
            call.close()
        sender.flush(30)
    finally:
        sender.close(5)
    with tracklane.Client(server.uri) as client:
        assert client.get_metric_history(run_id, "waited").values == [2.0]
