"""100 concurrent metric streams from 4 client processes into one real server on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracklane
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.servers import clean_env, start_server

PROCESSES = 4
RUNS_PER_PROCESS = 25
STEPS = 4_000

# One MetricSender per run: each run has a writer and a StreamMetrics call of its own. Every process
# opens its 25 streams, says "ready", and logs only after the test says "go" to all of them.
_CLIENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tracklane._metrics.sender import MetricsConfig, MetricSender

    uri, spool, run_ids = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    config = MetricsConfig(spool_dir=spool, flush_points=1_000, flush_timeout=120, replay_spool=False)
    senders = [MetricSender(uri, config) for _ in run_ids]
    buffers = [sender.buffer(run_id) for sender, run_id in zip(senders, run_ids)]
    print("ready", flush=True)
    sys.stdin.readline()
    for step in range(STEPS):
        for index, buffer in enumerate(buffers):
            buffer.log("m", step * 0.5 + index, step, None)
            if step % 10 == 0:
                buffer.log("sparse", step, step, None)
    for sender in senders:
        sender.flush(120)
    opened = sorted({sender._stream.streams_opened for sender in senders})
    for sender in senders:
        sender.close(5)
    print("done", *opened, flush=True)
    """
).replace("STEPS", str(STEPS))


@pytest.fixture
def database(postgres_admin_uri: str) -> Iterator[str]:
    uri = create_postgres_database(postgres_admin_uri)
    yield uri
    drop_postgres_database(postgres_admin_uri, uri)


def test_100_concurrent_streams_store_every_point_once(tmp_path: Path, database: str) -> None:
    with start_server("--backend-store-uri", database, data_dir=tmp_path / "data") as server:
        uri = f"grpc://{server.address}"
        with tracklane.Client(uri) as client:
            runs = [client.create_run("0").info.run_id for _ in range(PROCESSES * RUNS_PER_PROCESS)]
        clients = [
            subprocess.Popen(
                [sys.executable, "-c", _CLIENT, uri, str(tmp_path / f"spool{i}"), *runs[i::PROCESSES]],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=clean_env(),
                text=True,
            )
            for i in range(PROCESSES)
        ]
        try:
            for proc in clients:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"
            for proc in clients:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            for proc in clients:
                out, err = proc.communicate(timeout=600)
                assert proc.returncode == 0, err
                # One stream per sender for the whole run: none was refused or broken.
                assert out.split() == ["done", "1"], (out, err)
        finally:
            for proc in clients:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
        with tracklane.Client(uri) as client:
            for number, run_id in enumerate(runs):
                index = number // PROCESSES  # its place among its process's runs
                m = client.get_metric_history(run_id, "m")
                assert m.steps == list(range(STEPS))
                assert m.values == [step * 0.5 + index for step in range(STEPS)]
                sparse = client.get_metric_history(run_id, "sparse")
                assert sparse.steps == list(range(0, STEPS, 10))
                assert client.get_run(run_id).data.metrics == {
                    "m": (STEPS - 1) * 0.5 + index,
                    "sparse": 3990.0,
                }
