"""Faults while metrics stream: a real server process on real PostgreSQL, killed, starved, late.

In every case the stored history must equal exactly what was logged (no point lost, none twice):
- the server is killed with SIGKILL in the middle of a 1 M-point stream and restarted;
- PostgreSQL stops for 10 s in the middle of a stream (a private cluster, so that nothing else
  sharing the machine's PostgreSQL is disturbed);
- the client starts streaming while no server is up, and one comes up later;
- the training process is killed after it logged (part acked, part spooled while the server was
  away), and ``tracklane sync`` delivers the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import tracklane
from tests.conftest import create_postgres_database, drop_postgres_database, missing
from tests.servers import (
    ServerProcess,
    ServerStartError,
    clean_env,
    fixed_port,
    free_port,
    start_server,
    tracklane_sync,
)
from tracklane._metrics.sender import MetricsConfig, MetricSender

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]


@pytest.fixture
def database(postgres_admin_uri: str) -> Iterator[str]:
    uri = create_postgres_database(postgres_admin_uri)
    yield uri
    drop_postgres_database(postgres_admin_uri, uri)


def serve(tmp_path: Path, uri: str, bind: str = "127.0.0.1:0") -> ServerProcess:
    """The server on ``uri``; a start that fails (a busy shared PostgreSQL, say) is tried again."""
    for attempt in range(3):
        try:
            return start_server("--backend-store-uri", uri, data_dir=tmp_path / "data", bind=bind)
        except ServerStartError:
            if attempt == 2:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def new_run(address: str) -> str:
    with tracklane.Client(f"grpc://{address}") as client:
        return client.create_run("0").info.run_id


def stored(address: str, run_id: str, key: str) -> tuple[list[int], list[float]]:
    with tracklane.Client(f"grpc://{address}") as client:
        series = client.get_metric_history(run_id, key)
    assert all(series.timestamps)
    return list(series.steps), list(series.values)


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_kill_9_mid_stream_and_restart(tmp_path: Path, database: str) -> None:
    server = serve(tmp_path, database, bind=f"127.0.0.1:{fixed_port()}")
    run_id = new_run(server.address)
    sender = MetricSender(f"grpc://{server.address}", MetricsConfig(spool_dir=tmp_path / "spool"))
    buffer = sender.buffer(run_id)
    n = 500_000  # x 2 keys: a 1 M-point stream
    restarted: list[ServerProcess] = []
    acked_at_kill: list[int] = []

    def crash_and_restart() -> None:
        wait_for(lambda: sender.points_acked >= 200_000, 60, "the first acks")
        acked_at_kill.append(sender.points_acked)
        server.kill()
        restarted.append(serve(tmp_path, database, bind=server.bind))

    chaos = threading.Thread(target=crash_and_restart)
    chaos.start()
    try:
        for step in range(n):
            buffer.log("loss", step * 0.5, step, None)
            buffer.log("acc", -step, step, None)
            if step % 50_000 == 0:
                time.sleep(0.05)  # a training step's pause: lets the kill land mid-stream
        chaos.join(60)
        assert acked_at_kill[0] < 2 * n  # the kill came while points were still streaming
        sender.flush(120)
        assert sender.points_acked == 2 * n
        address = restarted[0].address
        assert stored(address, run_id, "loss") == (list(range(n)), [s * 0.5 for s in range(n)])
        assert stored(address, run_id, "acc") == (list(range(n)), [float(-s) for s in range(n)])
        assert sender._stream.streams_opened >= 2
    finally:
        sender.close(5)
        chaos.join(60)
        for s in (server, *restarted):
            s.kill()


# A private PostgreSQL cluster that the test may stop and start.


def _pg_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PrivatePostgres:
    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.data = root / "pgdata"
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        subprocess.run(
            _as_postgres([str(bin_dir / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.uri = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", *args]),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        self.pg_ctl("-l", str(self.data / "log"), "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = _pg_bin()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        missing("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed")
    # Not under pytest's tmp_path: the postgres user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="tracklane-pg-"))
    try:
        pg = PrivatePostgres(root, bin_dir)
        pg.start()
        try:
            yield pg
        finally:
            subprocess.run(
                _as_postgres([str(pg.bin / "pg_ctl"), "-D", str(pg.data), "-m", "immediate", "stop"]),
                capture_output=True,
                timeout=60,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_stopped_for_10_seconds_mid_stream(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    server = serve(tmp_path, private_postgres.uri)
    run_id = new_run(server.address)
    config = MetricsConfig(spool_dir=tmp_path / "spool", spill_after=0.5, flush_points=5_000)
    sender = MetricSender(f"grpc://{server.address}", config)
    buffer = sender.buffer(run_id)
    try:
        step = 0
        for step in range(50_000):
            buffer.log("m", step, step, None)
        wait_for(lambda: sender.points_acked >= 20_000, 60, "the first acks")
        private_postgres.stop()
        try:
            stopped = time.monotonic()
            while time.monotonic() - stopped < 10:  # training goes on while the database is away
                for _ in range(1_000):
                    step += 1
                    buffer.log("m", step, step, None)
                time.sleep(0.01)
            assert sender.points_acked < step + 1  # nothing could be acknowledged meanwhile
            assert list((tmp_path / "spool").glob("*.tlspool"))  # the backlog spilled to disk
        finally:
            private_postgres.start()
        for _ in range(10_000):
            step += 1
            buffer.log("m", step, step, None)
        sender.flush(120)
        assert stored(server.address, run_id, "m") == (
            list(range(step + 1)),
            [float(s) for s in range(step + 1)],
        )
    finally:
        sender.close(5)
        server.kill()
    assert list((tmp_path / "spool").glob("*.tlspool")) == []  # all acknowledged: the spool is gone


def test_client_first_server_later(tmp_path: Path, database: str) -> None:
    server = serve(tmp_path, database, bind=f"127.0.0.1:{fixed_port()}")
    run_id = new_run(server.address)
    bind = server.bind
    assert server.terminate() == 0
    config = MetricsConfig(spool_dir=tmp_path / "spool", spill_after=0.3, flush_points=2_000)
    sender = MetricSender(f"grpc://{bind}", config)
    buffer = sender.buffer(run_id)
    late: ServerProcess | None = None
    try:
        values = np.random.default_rng(3).normal(size=30_000)
        for step, value in enumerate(values.tolist()):
            buffer.log("m", value, step, None)
        time.sleep(1.0)  # no server: batches wait, then spill
        assert sender.points_acked == 0
        late = serve(tmp_path, database, bind=bind)
        sender.flush(120)
        assert stored(late.address, run_id, "m") == (list(range(30_000)), values.tolist())
    finally:
        sender.close(5)
        if late is not None:
            late.kill()


_TRAINING = textwrap.dedent(
    """
    import sys, time
    import tracklane
    tracklane.configure_metrics(spool_dir=sys.argv[2], spill_after_ms=200, flush_points=1000)
    run = tracklane.start_run()
    print(run.info.run_id, flush=True)
    for step in range(20_000):                 # acknowledged while the server is up
        tracklane.log_metric("m", step * 2.0, step=step)
    tracklane.flush()
    print("acked", flush=True)
    sys.stdin.readline()                       # the test kills the server now
    for step in range(20_000, 60_000):         # logged while the server is away
        tracklane.log_metric("m", step * 2.0, step=step)
    try:
        tracklane.flush(timeout=1)
    except tracklane.exceptions.DeadlineExceeded:
        print("spooled", flush=True)
    time.sleep(600)                            # killed here
    """
)


def _trainer_killed_after_spooling(server: ServerProcess, spool: Path) -> str:
    """Runs _TRAINING against ``server`` until its first 20,000 points are acknowledged, kills the
    server, lets the trainer spool the other 40,000, then kills the trainer; returns the run id."""
    env = clean_env({"TRACKLANE_TRACKING_URI": f"grpc://{server.address}"})
    with subprocess.Popen(
        [sys.executable, "-c", _TRAINING, server.address, str(spool)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    ) as training:
        assert training.stdin is not None
        assert training.stdout is not None
        try:
            run_id = training.stdout.readline().strip()
            assert training.stdout.readline().strip() == "acked"
            server.kill()
            training.stdin.write("go\n")
            training.stdin.flush()
            assert training.stdout.readline().strip() == "spooled"
        finally:
            training.kill()
    return run_id


def test_training_killed_then_tracklane_sync(tmp_path: Path, database: str) -> None:
    server = serve(tmp_path, database)
    spool = tmp_path / "spool"
    try:
        run_id = _trainer_killed_after_spooling(server, spool)
        assert list(spool.glob("*.tlspool"))
        server = serve(tmp_path, database)
        result = tracklane_sync(server.address, spool)
        assert result.returncode == 0, result.stderr
        assert '"refused_batches": 0' in result.stdout
        assert list(spool.glob("*.tlspool")) == []
        expected = (list(range(60_000)), [s * 2.0 for s in range(60_000)])
        assert stored(server.address, run_id, "m") == expected
        again = tracklane_sync(server.address, spool)
        assert again.returncode == 0, again.stderr
        assert stored(server.address, run_id, "m") == expected
    finally:
        server.kill()


_NEXT_TRAINING = textwrap.dedent(
    """
    import sys
    import tracklane
    tracklane.configure_metrics(spool_dir=sys.argv[1])
    with tracklane.start_run() as run:         # its first metric starts the replay of dead writers
        for step in range(1_000):
            tracklane.log_metric("own", step, step=step)
    print(run.info.run_id, flush=True)
    """
)


def test_training_killed_then_the_next_training_replays_its_spool(tmp_path: Path, database: str) -> None:
    """kill -9 of a trainer holding a spool; the next trainer on the same URI delivers it, exactly once,
    by itself. A spool left for another URI is not its to send."""
    server = serve(tmp_path, database, bind=f"127.0.0.1:{fixed_port()}")
    spool = tmp_path / "spool"
    elsewhere = MetricSender("grpc://127.0.0.1:1", MetricsConfig(spool_dir=spool, spill_after=0.1))
    elsewhere.buffer(new_run(server.address)).log("m", 1.0, 0, None)
    elsewhere.close(0.5)  # nothing listens there: left in the spool
    foreign = sorted(p.name for p in spool.glob("*.tlspool"))
    assert foreign
    try:
        run_id = _trainer_killed_after_spooling(server, spool)
        assert len(list(spool.glob("*.tlspool"))) > len(foreign)
        server = serve(tmp_path, database, bind=server.bind)  # the same tracking URI
        env = clean_env({"TRACKLANE_TRACKING_URI": f"grpc://{server.address}"})
        expected = (list(range(60_000)), [s * 2.0 for s in range(60_000)])
        for _ in range(2):  # the second finds nothing left: nothing is stored twice
            nxt = subprocess.run(
                [sys.executable, "-c", _NEXT_TRAINING, str(spool)],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            assert nxt.returncode == 0, nxt.stderr
            assert stored(server.address, run_id, "m") == expected
            own = nxt.stdout.strip()
            assert stored(server.address, own, "own") == (
                list(range(1_000)),
                [float(s) for s in range(1_000)],
            )
            assert sorted(p.name for p in spool.glob("*.tlspool")) == foreign
    finally:
        server.kill()
