"""Metric streams against real `tracklane server` processes: SIGTERM, kill -9 and restart, replicas."""

from __future__ import annotations

import queue
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.conftest import create_postgres_database, drop_postgres_database
from tests.servers import ServerProcess, start_server
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc

Request = tracking_pb2.StreamMetricsRequest


class OpenStream:
    """A StreamMetrics call whose batches come from a queue, so it stays open between them."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._requests: queue.Queue[Request | None] = queue.Queue()
        self.call = tracking_pb2_grpc.TrackingServiceStub(channel).StreamMetrics(
            iter(self._requests.get, None), timeout=60
        )
        self._acks = iter(self.call)

    def roundtrip(self, request: Request) -> tracking_pb2.StreamMetricsResponse:
        self._requests.put(request)
        return next(self._acks)

    def close(self) -> None:
        self._requests.put(None)


def create_run(channel: grpc.Channel) -> str:
    stub = tracking_pb2_grpc.TrackingServiceStub(channel)
    experiment = stub.CreateExperiment(
        tracking_pb2.CreateExperimentRequest(name=f"stream-{uuid.uuid4().hex[:8]}"), timeout=10
    ).experiment
    run = stub.CreateRun(
        tracking_pb2.CreateRunRequest(experiment_id=experiment.experiment_id), timeout=10
    ).run
    return str(run.info.run_id)


def batch(run_id: str, writer_id: str, sequence: int, points: int = 1000) -> Request:
    """``points`` points of key ``m`` at steps (sequence - 1) * points ... (value = step)."""
    first = (sequence - 1) * points
    steps = list(range(first, first + points))
    return Request(
        run_id=run_id,
        writer_id=writer_id,
        sequence=sequence,
        keys=["m"],
        key_indices=[0] * points,
        values=[float(s) for s in steps],
        steps=steps,
        timestamps_ms=[1_700_000_000_000 + s for s in steps],
    )


def history_steps(channel: grpc.Channel, run_id: str) -> list[int]:
    stub = tracking_pb2_grpc.TrackingServiceStub(channel)
    request = tracking_pb2.GetMetricHistoryRequest(run_id=run_id, key="m", page_size=1_000_000)
    return list(stub.GetMetricHistory(request, timeout=30).series.steps)


def assert_clean_log(server: ServerProcess) -> None:
    for bad in ("Traceback", "CancelledError", "ERROR"):
        assert bad not in server.log, server.log


def test_sigterm_ends_open_streams_promptly_and_exits_0(tmp_path: Path) -> None:
    grace = 5.0
    with (
        start_server("--shutdown-grace-seconds", str(grace), data_dir=tmp_path / "data") as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        run_id = create_run(channel)
        stream = OpenStream(channel)
        assert stream.roundtrip(batch(run_id, "e2e-writer-1", 1)).points_written == 1000
        watch = tracking_pb2_grpc.TrackingServiceStub(channel).WatchRun(
            tracking_pb2.WatchRunRequest(run_id=run_id, start_step=0), timeout=60
        )
        assert len(next(iter(watch)).series[0].steps) == 1000
        # Both calls are open (not half-closed) when SIGTERM arrives.
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        # The watch ends with OK and the stream with UNAVAILABLE (reconnect elsewhere and replay),
        # right away: neither waits for the grace period.
        assert list(watch) == []
        assert watch.code() == grpc.StatusCode.OK
        with pytest.raises(grpc.RpcError) as ended:
            stream.roundtrip(batch(run_id, "e2e-writer-1", 2))
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        code = server.wait(timeout=grace + 15)
        took = time.monotonic() - started
        stream.close()
    assert code == 0, server.log
    assert took < grace, (
        f"stopped after {took:.1f} s; open streams should not hold it for the {grace} s grace"
    )
    assert_clean_log(server)


def test_replay_after_kill_9_and_restart_is_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    writer_id = "crash-writer-1"
    with start_server(data_dir=data) as server, grpc.insecure_channel(server.address) as channel:
        run_id = create_run(channel)
        stream = OpenStream(channel)
        for sequence in range(1, 6):
            assert stream.roundtrip(batch(run_id, writer_id, sequence)).points_written == 1000
        server.kill()
        stream.close()
    with (
        start_server(data_dir=data, bind=server.bind) as again,
        grpc.insecure_channel(again.address) as channel,
    ):
        # The client does not know which batches made it: it replays them all, then goes on.
        stream = OpenStream(channel)
        acks = [stream.roundtrip(batch(run_id, writer_id, sequence)) for sequence in range(1, 8)]
        stream.close()
        assert [a.duplicate for a in acks] == [True] * 5 + [False] * 2
        assert [a.points_written for a in acks] == [0] * 5 + [1000] * 2
        assert history_steps(channel, run_id) == list(range(7000))


@pytest.fixture
def shared_postgres(postgres_admin_uri: str) -> Iterator[str]:
    uri = create_postgres_database(postgres_admin_uri)
    yield uri
    drop_postgres_database(postgres_admin_uri, uri)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def replica_settings(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[tuple[str, ...], Path, Path]:
    """(flags, data dir A, data dir B) of two server processes over one database: one SQLite file
    (as `--workers` shares it) or one PostgreSQL database."""
    if request.param == "sqlite":
        return (), tmp_path / "shared", tmp_path / "shared"
    uri = request.getfixturevalue("shared_postgres")
    return ("--backend-store-uri", uri), tmp_path / "a", tmp_path / "b"


def test_a_watch_on_one_replica_sees_commits_made_through_another(
    replica_settings: tuple[tuple[str, ...], Path, Path],
) -> None:
    args, data_a, data_b = replica_settings
    with (
        start_server(*args, data_dir=data_a) as replica_a,
        start_server(*args, data_dir=data_b) as replica_b,
        grpc.insecure_channel(replica_a.address) as channel_a,
        grpc.insecure_channel(replica_b.address) as channel_b,
    ):
        run_id = create_run(channel_a)
        watch = tracking_pb2_grpc.TrackingServiceStub(channel_a).WatchRun(
            tracking_pb2.WatchRunRequest(run_id=run_id, start_step=0), timeout=60
        )
        arrivals: queue.Queue[tuple[float, list[int]]] = queue.Queue()

        def read() -> None:
            try:
                for response in watch:
                    arrivals.put((time.monotonic(), [s for series in response.series for s in series.steps]))
            except grpc.RpcError:
                pass

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        stream = OpenStream(channel_b)
        delays, seen = [], []
        for sequence in range(1, 6):
            assert (
                stream.roundtrip(batch(run_id, "replica-writer", sequence, points=100)).points_written == 100
            )
            committed = time.monotonic()
            arrived, steps = arrivals.get(timeout=10)
            seen.extend(steps)
            delays.append(max(0.0, arrived - committed))
        stream.close()
        watch.cancel()  # type: ignore[no-untyped-call]
        reader.join(5)
        assert seen == list(range(500))
        assert sorted(delays)[len(delays) // 2] < 0.2, delays
        assert replica_a.terminate() == 0
        assert replica_b.terminate() == 0
        assert_clean_log(replica_a)
        assert_clean_log(replica_b)


@pytest.mark.services
def test_watchers_recover_when_the_listen_connection_is_lost(tmp_path: Path, shared_postgres: str) -> None:
    import sqlalchemy as sa

    with (
        start_server("--backend-store-uri", shared_postgres, data_dir=tmp_path / "data") as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        run_id = create_run(channel)
        watch = tracking_pb2_grpc.TrackingServiceStub(channel).WatchRun(
            tracking_pb2.WatchRunRequest(run_id=run_id, start_step=0), timeout=60
        )
        arrivals: queue.Queue[list[int]] = queue.Queue()

        def read() -> None:
            try:
                for response in watch:
                    arrivals.put([s for series in response.series for s in series.steps])
            except grpc.RpcError:
                pass

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        stream = OpenStream(channel)
        assert stream.roundtrip(batch(run_id, "listen-writer", 1, points=10)).points_written == 10
        assert arrivals.get(timeout=10) == list(range(10))
        # Cut the server's LISTEN connection from the database side, as a PostgreSQL restart would.
        engine = sa.create_engine(shared_postgres)
        with engine.begin() as conn:
            cut = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'tracklane-listen' AND datname = current_database()"
                )
            ).scalar_one()
        engine.dispose()
        assert cut == 1
        # Points committed meanwhile or after still arrive, each once.
        assert stream.roundtrip(batch(run_id, "listen-writer", 2, points=10)).points_written == 10
        seen: list[int] = []
        while len(seen) < 10:
            seen.extend(arrivals.get(timeout=10))
        assert seen == list(range(10, 20))
        stream.close()
        watch.cancel()  # type: ignore[no-untyped-call]
        reader.join(5)
        assert "listening for new points again" in server.log or "points listener lost" in server.log
        assert server.terminate() == 0
    assert_clean_log(server)


@pytest.mark.services
def test_a_database_outage_refuses_batches_as_unavailable_and_the_stream_goes_on(
    tmp_path: Path, shared_postgres: str, postgres_admin_uri: str
) -> None:
    import sqlalchemy as sa

    database = sa.make_url(shared_postgres).database
    admin = sa.create_engine(postgres_admin_uri, isolation_level="AUTOCOMMIT")

    def allow_connections(allow: bool) -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allow).lower()}'))
            if not allow:  # and cut the server's open ones: its database is "down"
                conn.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
                    {"db": database},
                )

    try:
        with (
            start_server("--backend-store-uri", shared_postgres, data_dir=tmp_path / "data") as server,
            grpc.insecure_channel(server.address) as channel,
        ):
            run_id = create_run(channel)
            stream = OpenStream(channel)
            assert stream.roundtrip(batch(run_id, "outage-writer", 1, points=10)).points_written == 10
            allow_connections(False)
            refused = stream.roundtrip(batch(run_id, "outage-writer", 2, points=10))
            assert refused.error.code == grpc.StatusCode.UNAVAILABLE.value[0], refused
            assert refused.points_written == 0
            allow_connections(True)
            # Same stream, the refused batch again, then the next: nothing lost, nothing twice.
            assert stream.roundtrip(batch(run_id, "outage-writer", 2, points=10)).points_written == 10
            assert stream.roundtrip(batch(run_id, "outage-writer", 3, points=10)).points_written == 10
            stream.close()
            assert history_steps(channel, run_id) == list(range(30))
            assert server.terminate() == 0
        assert "Traceback" not in server.log, server.log
    finally:
        allow_connections(True)
        admin.dispose()
