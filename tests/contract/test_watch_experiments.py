"""WatchExperiments over real gRPC (and Connect) on every backend: the snapshot, then every change of
every run, in order, resumable from a cursor without gaps, and only for readers."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest

import tracklane
from tests.auth_helpers import AuthServer
from tests.connect_helpers import server_stream
from tracklane.entities import Metric, RunTag
from tracklane.exceptions import from_rpc_error
from tracklane.testing import LocalServer
from tracklane.v1 import common_pb2, tracking_pb2, tracking_pb2_grpc


@pytest.fixture
def stub(tracking_server: LocalServer) -> Iterator[tracking_pb2_grpc.TrackingServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{tracking_server.port}") as channel:
        yield tracking_pb2_grpc.TrackingServiceStub(channel)


class Watch:
    """An open WatchExperiments call read by a thread."""

    def __init__(
        self, stub: tracking_pb2_grpc.TrackingServiceStub, *experiment_ids: str, cursor: str = ""
    ) -> None:
        request = tracking_pb2.WatchExperimentsRequest(experiment_ids=experiment_ids, cursor=cursor)
        self.call = stub.WatchExperiments(request, timeout=120)
        self.responses: queue.Queue[tracking_pb2.WatchExperimentsResponse | BaseException] = queue.Queue()
        #: The newest copy of each run received, and how many copies came.
        self.runs: dict[str, tracking_pb2.Run] = {}
        self.cursor = ""
        self.snapshots = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for response in self.call:
                self.responses.put(response)
        except grpc.RpcError as exc:
            self.responses.put(exc)

    def pump(self, until: object, timeout: float = 15.0) -> None:
        """Reads responses until ``until(self)`` is true."""
        deadline = time.monotonic() + timeout
        while not until(self):  # type: ignore[operator]
            item = self.responses.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(item, BaseException):
                raise item
            for run in item.runs:
                self.runs[run.info.run_id] = run
            self.cursor = item.cursor
            self.snapshots += item.snapshot_complete

    def cancel(self) -> None:
        self.call.cancel()  # type: ignore[no-untyped-call]


def latest(run: tracking_pb2.Run, key: str) -> float | None:
    return next((m.value for m in run.data.metrics if m.key == key), None)


def test_snapshot_then_each_change(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub, unique: str
) -> None:
    experiment_id = client.create_experiment(f"watch-{unique}")
    first = client.create_run(experiment_id, run_name="first").info.run_id
    client.log_batch(first, metrics=[Metric("loss", 1.0, 0, 1)])
    watch = Watch(stub, experiment_id)
    try:
        watch.pump(lambda w: w.snapshots == 1)
        assert list(watch.runs) == [first]
        assert latest(watch.runs[first], "loss") == 1.0
        second = client.create_run(experiment_id, run_name="second").info.run_id  # a new run
        watch.pump(lambda w: second in w.runs)
        client.log_batch(first, metrics=[Metric("loss", 0.25, 1, 2)])  # a new point: latest and summary
        watch.pump(lambda w: latest(w.runs[first], "loss") == 0.25)
        summary = next(m.summary for m in watch.runs[first].data.metrics if m.key == "loss")
        assert (summary.min, summary.max, summary.count) == (0.25, 1.0, 2)
        client.update_run(second, status="FINISHED")  # status
        watch.pump(lambda w: w.runs[second].info.status == tracking_pb2.RUN_STATUS_FINISHED)
        client.log_batch(second, tags=[RunTag("team", "vision")])  # a tag
        watch.pump(lambda w: any(t.key == "team" for t in w.runs[second].data.tags))
        client.delete_run(first)  # deletion shows as the lifecycle
        watch.pump(lambda w: w.runs[first].info.lifecycle_stage == common_pb2.LIFECYCLE_STAGE_DELETED)
        assert watch.snapshots == 1
    finally:
        watch.cancel()


def test_concurrent_writes_all_arrive_with_their_final_state(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub, unique: str
) -> None:
    experiment_id = client.create_experiment(f"watch-many-{unique}")
    watch = Watch(stub, experiment_id)
    try:
        watch.pump(lambda w: w.snapshots == 1)
        runs: list[str] = []

        def writer(offset: int) -> None:
            with tracklane.Client(client.tracking_uri) as own:
                for i in range(8):
                    run_id = own.create_run(experiment_id).info.run_id
                    runs.append(run_id)
                    for step in range(3):
                        own.log_batch(
                            run_id, metrics=[Metric("m", float(offset + i * 10 + step), step, 1 + step)]
                        )

        threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        final = {run_id: client.get_run(run_id).data.metrics["m"] for run_id in runs}
        watch.pump(lambda w: all(r in w.runs and latest(w.runs[r], "m") == final[r] for r in runs))
        assert len(watch.runs) == 24
    finally:
        watch.cancel()


def test_a_cursor_resumes_without_gaps(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub, unique: str
) -> None:
    experiment_id = client.create_experiment(f"watch-resume-{unique}")
    old = client.create_run(experiment_id).info.run_id
    watch = Watch(stub, experiment_id)
    watch.pump(lambda w: w.snapshots == 1)
    cursor = watch.cursor
    watch.cancel()
    # While nobody watches: a new run and a change of the old one.
    new = client.create_run(experiment_id).info.run_id
    client.log_batch(old, metrics=[Metric("acc", 0.9, 1, 1)])
    again = Watch(stub, experiment_id, cursor=cursor)
    try:
        again.pump(lambda w: new in w.runs and latest(w.runs.get(old, tracking_pb2.Run()), "acc") == 0.9)
        assert again.snapshots == 0  # a resumed call sends no snapshot
    finally:
        again.cancel()


def test_the_snapshot_streams_in_pages(
    client: tracklane.Client, stub: tracking_pb2_grpc.TrackingServiceStub, unique: str
) -> None:
    experiment_id = client.create_experiment(f"watch-big-{unique}")
    created = {client.create_run(experiment_id).info.run_id for _ in range(520)}
    responses = []
    for response in stub.WatchExperiments(
        tracking_pb2.WatchExperimentsRequest(experiment_ids=[experiment_id]), timeout=60
    ):
        responses.append(response)
        if response.snapshot_complete:
            break
    assert max(len(r.runs) for r in responses) == 500
    assert {run.info.run_id for r in responses for run in r.runs} == created


def test_bad_requests(
    stub: tracking_pb2_grpc.TrackingServiceStub, client: tracklane.Client, unique: str
) -> None:
    experiment_id = client.create_experiment(f"watch-bad-{unique}")
    for request, code, field in (
        (tracking_pb2.WatchExperimentsRequest(), grpc.StatusCode.INVALID_ARGUMENT, "experiment_ids"),
        (
            tracking_pb2.WatchExperimentsRequest(experiment_ids=["999999"]),
            grpc.StatusCode.NOT_FOUND,
            "experiment_ids",
        ),
        (
            tracking_pb2.WatchExperimentsRequest(experiment_ids=[experiment_id], cursor="bm9wZQ"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "cursor",
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            next(iter(stub.WatchExperiments(request, timeout=10)))
        assert err.value.code() == code  # type: ignore[attr-defined]
        assert from_rpc_error(err.value).field == field


def test_over_connect(tracking_server: LocalServer, client: tracklane.Client, unique: str) -> None:
    experiment_id = client.create_experiment(f"watch-web-{unique}")
    run_id = client.create_run(experiment_id).info.run_id
    request = tracking_pb2.WatchExperimentsRequest(experiment_ids=[experiment_id])
    with httpx.Client(base_url=tracking_server.http_url, timeout=30) as web:
        for response in server_stream(
            web, "TrackingService/WatchExperiments", request, tracking_pb2.WatchExperimentsResponse
        ):
            if response.snapshot_complete:
                break
            assert [r.info.run_id for r in response.runs] == [run_id]


def test_only_readers_may_watch(auth: AuthServer) -> None:
    owner, stranger = auth.create_user("watch-owner"), auth.create_user("watch-stranger")
    with owner.client() as client:
        experiment_id = client.create_experiment(f"watched-{owner.name}")
    request = tracking_pb2.WatchExperimentsRequest(experiment_ids=[experiment_id])
    with pytest.raises(grpc.RpcError) as err:
        next(
            iter(
                tracking_pb2_grpc.TrackingServiceStub(stranger.channel()).WatchExperiments(
                    request, timeout=10
                )
            )
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    reply = next(
        iter(tracking_pb2_grpc.TrackingServiceStub(owner.channel()).WatchExperiments(request, timeout=10))
    )
    assert reply.snapshot_complete
