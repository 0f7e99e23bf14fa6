"""Fault suite, database side: a private PostgreSQL stopped or restarted under a live server.

- While the database is down, unary calls answer UNAVAILABLE with a message naming the backend
  store, and do not hang (a generous 15 s bound catches a hang; speed is for bench/).
- When it is back, calls succeed again by themselves: the pool hands out no dead connection, so
  even a write (never retried by the client) succeeds at its first attempt.
- ``pg_ctl restart -m fast`` in the middle of a metric stream loses and doubles nothing.
- SIGTERM in the middle of a stream: every acknowledged batch is stored, the rest is replayed.
- Pooled connections give up on a database host that vanished without a word (TCP keepalives and
  a TCP user timeout), instead of waiting for the kernel's retransmission limit.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import tracklane
from tests.e2e._fault_helpers import restart_postgres
from tests.e2e.test_stream_faults import PrivatePostgres, private_postgres, stored, wait_for
from tests.servers import fixed_bind, serve
from tracklane._metrics.sender import MetricsConfig, MetricSender
from tracklane_server.store.db import engine as db

__all__ = ["private_postgres"]  # the fixture, imported to be used here

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

HANG = 15.0  # seconds; far above "fast", only there to turn a hang into a failure


def test_database_down_fails_fast_then_recovers(tmp_path: Path, private_postgres: PrivatePostgres) -> None:
    server = serve(tmp_path, "--backend-store-uri", private_postgres.uri)
    try:
        with tracklane.Client(f"grpc://{server.address}") as client:
            run_id = client.create_run("0").info.run_id
            client.create_registered_model("m")
            client.create_model_version("m", "s3://bucket/v1")
            private_postgres.stop()
            try:
                calls: dict[str, Callable[[], object]] = {
                    "get_run": lambda: client.get_run(run_id),
                    "search_runs": lambda: client.search_runs(["0"]),
                    "create_run": lambda: client.create_run("0", run_name="during-outage"),
                    "log_param": lambda: client.log_param(run_id, "p", 1),
                    "create_model_version": lambda: client.create_model_version("m", "s3://bucket/lost"),
                    "set_alias": lambda: client.set_registered_model_alias("m", "a", 1),
                    "get_model_version": lambda: client.get_model_version("m", 1),
                }
                for name, call in calls.items():
                    started = time.monotonic()
                    with pytest.raises(tracklane.exceptions.Unavailable) as caught:
                        call()
                    assert time.monotonic() - started < HANG, f"{name} hung"
                    assert "backend store" in str(caught.value), name
            finally:
                private_postgres.start()
            # No retry here: a pooled connection from before the outage must not be handed out.
            client.create_run("0", run_name="after")
            assert client.get_run(run_id).info.run_id == run_id
            client.log_param(run_id, "p", 2)
            assert client.create_model_version("m", "s3://bucket/v2").version == 2
            names = sorted(r.info.run_name for r in client.search_runs(["0"]))
            assert names == sorted([client.get_run(run_id).info.run_name, "after"])  # none half-made
            assert client.get_run(run_id).data.params == {"p": "2"}
            assert [v.version for v in client.search_model_versions("name = 'm'")] == [2, 1]
    finally:
        server.kill()
    assert "Traceback" not in server.log


def test_postgres_restart_mid_stream_and_mid_calls(tmp_path: Path, private_postgres: PrivatePostgres) -> None:
    server = serve(tmp_path, "--backend-store-uri", private_postgres.uri)
    config = MetricsConfig(spool_dir=tmp_path / "spool", spill_after=0.5, flush_points=5_000)
    sender = MetricSender(f"grpc://{server.address}", config)
    try:
        with tracklane.Client(f"grpc://{server.address}") as client:
            run_id = client.create_run("0").info.run_id
            buffer = sender.buffer(run_id)
            step = -1
            for _ in range(20_000):
                step += 1
                buffer.log("m", step, step, None)
            wait_for(lambda: sender.points_acked >= 10_000, 60, "the first acks")
            restarts = threading.Thread(target=restart_postgres, args=(private_postgres,))
            restarts.start()
            while restarts.is_alive():  # training and searches go on while the database restarts
                for _ in range(500):
                    step += 1
                    buffer.log("m", step, step, None)
                with contextlib.suppress(tracklane.exceptions.Unavailable):  # while it is down
                    client.search_runs(["0"])
                time.sleep(0.01)
            restarts.join()
            # The database is up: the very next write works (pre-ping drops the cut connections).
            client.log_param(run_id, "after_restart", 1)
            for _ in range(5_000):
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


def test_sigterm_mid_stream_keeps_every_acknowledged_batch(tmp_path: Path, postgres_uri: str) -> None:
    bind = fixed_bind()
    server = serve(tmp_path, "--backend-store-uri", postgres_uri, bind=bind)
    with tracklane.Client(f"grpc://{server.address}") as client:
        run_id = client.create_run("0").info.run_id
    config = MetricsConfig(spool_dir=tmp_path / "spool", spill_after=0.5, flush_points=2_000)
    sender = MetricSender(f"grpc://{server.address}", config)
    buffer = sender.buffer(run_id)
    n = 200_000
    late = None
    try:
        for step in range(n // 2):
            buffer.log("m", step, step, None)
        wait_for(lambda: sender.points_acked >= 20_000, 60, "the first acks")
        assert server.terminate(60) == 0  # graceful: in-flight batches commit and are acknowledged
        acked = sender.points_acked
        assert 0 < acked <= n // 2
        # Every batch the client holds as acknowledged is stored (read from the database directly,
        # through a second server, before the client replays anything).
        with serve(tmp_path / "reader", "--backend-store-uri", postgres_uri) as reader:
            steps, _ = stored(reader.address, run_id, "m")
        assert len(steps) >= acked
        assert steps == list(range(len(steps)))  # a prefix, no hole and no point twice
        for step in range(n // 2, n):
            buffer.log("m", step, step, None)
        late = serve(tmp_path, "--backend-store-uri", postgres_uri, bind=bind)
        sender.flush(120)
        assert stored(late.address, run_id, "m") == (list(range(n)), [float(s) for s in range(n)])
    finally:
        sender.close(5)
        if late is not None:
            late.kill()
    assert "Traceback" not in server.log


def test_pooled_connections_notice_a_vanished_host(postgres_uri: str) -> None:
    """A host gone without a word (power cut, network partition) sends no RST: the pool's sockets
    must give up on their own (a blackhole needs NET_ADMIN to stage, so the options are checked)."""
    engine = db.create_engine(postgres_uri)
    try:
        with engine.connect() as conn:
            fd = conn.connection.dbapi_connection.pgconn.socket  # type: ignore[union-attr]
            with socket.socket(fileno=os.dup(fd)) as sock:
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                assert 0 < sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) <= 60
                assert 0 < sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) <= 60_000
    finally:
        engine.dispose()
