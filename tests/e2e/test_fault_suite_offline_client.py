"""Fault suite, client side: the server goes away before the training process ends its run.

- ``end_run()`` with the server down keeps the run's end (status and end time) in the spool, after
  its metrics: ``tracklane sync``, the next training process on the same tracking URI, or the
  process itself once the server is back, finishes the run, at the time end_run was called.
- Exiting waits one flush timeout in all, not one per step (end_run's flush, exit's flush, the
  replay of an earlier process's spool): then it spools and goes.

Real training processes (subprocesses), a real server killed and restarted on the same address,
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracklane
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.e2e.test_stream_faults import stored
from tests.servers import ServerProcess, clean_env, fixed_bind, serve, tracklane_sync
from tracklane._metrics.run_ends import end_request
from tracklane._metrics.sender import MetricsConfig, MetricSender
from tracklane.cli.sync import sync_spool
from tracklane.entities import RunStatus
from tracklane.testing import LocalServer

pytestmark = pytest.mark.timeout(300)

FLUSH_TIMEOUT = 3.0

# argv: spool folder, what to do at the end ("end_run" or "exit"), flush timeout.
_TRAINER = textwrap.dedent(
    """
    import sys, time
    import tracklane
    spool, how, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    tracklane.configure_metrics(spool_dir=spool, spill_after_ms=200, flush_timeout=timeout)
    run = tracklane.start_run()
    print(run.info.run_id, flush=True)
    for step in range(1_000):
        tracklane.log_metric("m", float(step), step=step)
    tracklane.flush()
    print("acked", flush=True)
    sys.stdin.readline()                        # the test kills the server now
    for step in range(1_000, 3_000):            # logged while the server is away
        tracklane.log_metric("m", float(step), step=step)
    before = time.time()
    if how == "end_run":
        try:
            tracklane.end_run("FAILED")
        except tracklane.exceptions.TracklaneError as exc:
            print("raised", type(exc).__name__, flush=True)
    print("ending", int(before * 1000), int(time.time() * 1000), flush=True)
    if how == "end_run" and sys.stdin.readline().strip() == "wait":
        sys.stdin.readline()                    # the server is back: this process is still alive
    """
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def store_args(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    if request.param == "sqlite":
        yield []
        return
    admin = request.getfixturevalue("postgres_admin_uri")
    uri = create_postgres_database(admin)
    try:
        yield ["--backend-store-uri", uri]
    finally:
        drop_postgres_database(admin, uri)


class Trainer:
    """_TRAINER in a subprocess against ``server``, up to the point where it ends its run."""

    def __init__(self, server: ServerProcess, spool: Path, how: str) -> None:
        env = clean_env({"TRACKLANE_TRACKING_URI": f"grpc://{server.address}"})
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _TRAINER, str(spool), how, str(FLUSH_TIMEOUT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        self.run_id = self.proc.stdout.readline().strip()
        assert self.proc.stdout.readline().strip() == "acked"

    def close(self) -> None:
        """Kills it if still running and closes its pipes."""
        self.proc.kill()
        self.proc.wait(30)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def ended(self) -> tuple[int, int]:
        """The trainer's clock (epoch ms) just before and after it ended its run."""
        line = self.read()
        if line.startswith("raised"):
            assert line == "raised Unavailable", line  # told, not silently RUNNING
            line = self.read()
        word, before, after = line.split()
        assert word == "ending", line
        return int(before), int(after)


def run_state(server: ServerProcess, run_id: str) -> tuple[str, int | None, int]:
    """(status, end time, points of "m") as stored."""
    with tracklane.Client(f"grpc://{server.address}") as client:
        run = client.get_run(run_id)
    return run.info.status.value, run.info.end_time, len(stored(server.address, run_id, "m")[0])


def sync(server: ServerProcess, spool: Path) -> dict[str, int]:
    result = tracklane_sync(server.address, spool)
    assert result.returncode == 0, result.stderr
    report: dict[str, int] = json.loads(result.stdout)
    return report


def ended_offline(tmp_path: Path, store_args: list[str], bind: str) -> tuple[Trainer, int, int]:
    """A trainer whose server was killed before it ended its run: (trainer, end_run's clock span)."""
    server = serve(tmp_path, *store_args, bind=bind)
    trainer = Trainer(server, tmp_path / "spool", "end_run")
    server.kill()
    trainer.say("go")
    before, after = trainer.ended()
    return trainer, before, after


def test_a_run_ended_while_the_server_is_down_is_finished_by_sync(
    tmp_path: Path, store_args: list[str]
) -> None:
    spool = tmp_path / "spool"
    trainer, before, after = ended_offline(tmp_path, store_args, "127.0.0.1:0")
    server: ServerProcess | None = None
    try:
        trainer.say("exit")
        assert trainer.proc.wait(30) == 0
        server = serve(tmp_path, *store_args)
        assert run_state(server, trainer.run_id)[0] == "RUNNING"  # nothing reached the server yet
        report = sync(server, spool)
        assert (report["runs_ended"], report["refused_batches"], report["points_written"]) == (1, 0, 2_000)
        status, end_time, points = run_state(server, trainer.run_id)
        assert (status, points) == ("FAILED", 3_000)
        assert end_time is not None
        assert before <= end_time <= after  # when end_run was called, not when sync ran
        assert list(spool.glob("*.tlspool")) == []
        assert sync(server, spool)["runs_ended"] == 0  # nothing left: a second sync does nothing
    finally:
        trainer.close()
        if server is not None:
            server.kill()


_NEXT_TRAINING = textwrap.dedent(
    """
    import sys
    import tracklane
    tracklane.configure_metrics(spool_dir=sys.argv[1])
    with tracklane.start_run():                 # its first metric starts the replay of dead writers
        tracklane.log_metric("own", 1.0)
    """
)


def test_the_next_training_process_finishes_the_run(tmp_path: Path, store_args: list[str]) -> None:
    spool = tmp_path / "spool"
    bind = fixed_bind()
    trainer, _, _ = ended_offline(tmp_path, store_args, bind)
    server: ServerProcess | None = None
    try:
        trainer.say("exit")
        assert trainer.proc.wait(30) == 0
        server = serve(tmp_path, *store_args, bind=bind)  # the same tracking URI
        env = clean_env({"TRACKLANE_TRACKING_URI": f"grpc://{server.address}"})
        nxt = subprocess.run(
            [sys.executable, "-c", _NEXT_TRAINING, str(spool)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert nxt.returncode == 0, nxt.stderr
        status, _, points = run_state(server, trainer.run_id)
        assert (status, points) == ("FAILED", 3_000)
        assert list(spool.glob("*.tlspool")) == []
    finally:
        trainer.close()
        if server is not None:
            server.kill()


def test_the_process_itself_finishes_the_run_when_the_server_returns(
    tmp_path: Path, store_args: list[str]
) -> None:
    spool = tmp_path / "spool"
    bind = fixed_bind()
    trainer, before, after = ended_offline(tmp_path, store_args, bind)
    server: ServerProcess | None = None
    try:
        trainer.say("wait")
        server = serve(tmp_path, *store_args, bind=bind)
        deadline = time.monotonic() + 60
        while run_state(server, trainer.run_id)[:1] != ("FAILED",):  # no sync, no new process
            assert time.monotonic() < deadline, "the live process did not end its run"
            time.sleep(0.2)
        status, end_time, points = run_state(server, trainer.run_id)
        assert (status, points) == ("FAILED", 3_000)
        assert end_time is not None
        assert before <= end_time <= after
        trainer.say("exit")
        assert trainer.proc.wait(30) == 0
        assert list(spool.glob("*.tlspool")) == []  # delivered: nothing left for a sync
    finally:
        trainer.close()
        if server is not None:
            server.kill()


def test_exit_with_the_server_down_waits_one_flush_timeout_in_all(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    bind = fixed_bind()
    server = serve(tmp_path, bind=bind)
    # An earlier process's spool for the same URI: the next trainer replays it in the background,
    # and that replay is stuck too while the server is down.
    first = Trainer(server, spool, "exit")
    server.kill()
    first.say("go")
    first.ended()
    assert first.proc.wait(30) == 0
    first.close()
    assert list(spool.glob("*.tlspool"))
    server = serve(tmp_path, bind=bind)
    second = Trainer(server, spool, "end_run")
    try:
        server.kill()
        started = time.monotonic()
        second.say("go")  # logs (its first buffer starts the replay), ends its run, exits
        second.ended()
        second.say("exit")
        assert second.proc.wait(60) == 0
        elapsed = time.monotonic() - started
        # One flush timeout (end_run's) plus the process's own start-up of gRPC and teardown; it
        # was three in a row (end_run's flush, exit's flush, the replay's join).
        assert elapsed < 2 * FLUSH_TIMEOUT, (
            f"exit took {elapsed:.1f} s with a {FLUSH_TIMEOUT:g} s flush timeout"
        )
    finally:
        second.close()


def test_a_spool_holding_only_run_ends_is_replayed(tmp_path: Path) -> None:
    # A run whose metrics were all acknowledged, whose end alone did not reach the server.
    spool = tmp_path / "spool"
    with LocalServer(tmp_path / "data") as server, tracklane.Client(server.uri) as client:
        run_ids = [client.create_run().info.run_id for _ in range(2)]
        away = MetricSender("grpc://127.0.0.1:1", MetricsConfig(spool_dir=spool))  # nothing listens
        for run_id, status in zip(run_ids, (RunStatus.FINISHED, RunStatus.KILLED), strict=True):
            assert away.end_run_later(run_id, end_request(run_id, status, 1_700_000_000_000))
        away.close(0.5)
        assert list(spool.glob("*.tlspool"))
        report = sync_spool(server.uri, spool, timeout=30)
        assert (report.runs_ended, report.batches, report.errors) == (2, 0, [])
        ended = [client.get_run(run_id).info for run_id in run_ids]
        assert [(i.status, i.end_time) for i in ended] == [
            (RunStatus.FINISHED, 1_700_000_000_000),
            (RunStatus.KILLED, 1_700_000_000_000),
        ]
        assert list(spool.glob("*.tlspool")) == []
