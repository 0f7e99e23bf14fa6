"""What every benchmark shares: free ports, scratch databases, server processes, medians, MLflow's server.

MLflow runs from its own virtualenv (default ~/.cache/tracklane-bench/mlflow-venv; create it with
`python3 -m venv VENV && VENV/bin/pip install mlflow psycopg2-binary boto3`); benchmarks skip it with a note
when it is missing.
"""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

ROUNDS = 5
MLFLOW_PYTHON = str(Path.home() / ".cache/tracklane-bench/mlflow-venv/bin/python")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def scratch_database(admin_uri: str) -> Iterator[str]:
    name = f"bench_{os.getpid()}_{random.randrange(10**6)}"
    engine = sa.create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(admin_uri).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextmanager
def process(
    argv: list[str], port: int, env: dict[str, str] | None = None, *, startup_seconds: float = 60
) -> Iterator[None]:
    """Starts a server process and waits until its port accepts connections (``startup_seconds`` at most)."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, env={**os.environ, **(env or {})})
        yield from _serve(proc, log, argv[0], port, startup_seconds)


def _serve(
    proc: subprocess.Popen[bytes], log: IO[bytes], name: str, port: int, startup_seconds: float = 60
) -> Iterator[None]:
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"{name} did not start:\n{log.read().decode()[-3000:]}") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def median_seconds(fn: Callable[[], int]) -> tuple[float, int]:
    fn()  # warm-up: connections, plans, caches
    times, count = [], 0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), count


@contextmanager
def tracklane_server(settings: list[str]) -> Iterator[str]:
    """``tracklane server`` in its own process on a free port and a throw-away data folder; yields its URI."""
    port = free_port()
    with (
        tempfile.TemporaryDirectory() as data,
        process(
            [
                sys.executable,
                "-m",
                "tracklane_server",
                "server",
                "--bind",
                f"127.0.0.1:{port}",
                "--data-dir",
                data,
                "--log-level",
                "WARNING",
                "--http-bind",
                "none",
                *settings,
            ],
            port,
        ),
    ):
        yield f"grpc://127.0.0.1:{port}"


def mlflow_db_uri(uri: str) -> str:
    """The same database as MLflow names it (it uses psycopg2)."""
    return sa.make_url(uri).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


@contextmanager
def mlflow_server(
    python: str, db_uri: str, *, workers: int = 4, extra: list[str] | None = None
) -> Iterator[str]:
    """``mlflow server`` from its virtualenv on a free port, its schema created first; yields its http URI."""
    subprocess.run(
        [python, "-c", f"import mlflow.tracking as t; t.MlflowClient({db_uri!r}).search_experiments()"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    with tempfile.TemporaryDirectory() as artifacts:
        argv = [
            str(Path(python).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--backend-store-uri",
            db_uri,
            "--artifacts-destination",
            artifacts,
            *(extra or []),
        ]
        # Four workers importing mlflow take minutes on a busy 2-core machine.
        with process(argv, port, startup_seconds=600):
            yield f"http://127.0.0.1:{port}"


def mlflow_run(python: str, postgres_admin: str, script: str, args: list[str], timeout: float = 3600) -> Any:
    """Runs ``script`` in MLflow's virtualenv next to its server on a scratch database, with argv
    ``DB_URI HTTP_URI *args``; returns the JSON of its last output line, or None (with a note) when
    the virtualenv is missing."""
    if not Path(python).exists():
        print(f"  MLflow skipped: no virtualenv at {python}")
        return None
    with scratch_database(postgres_admin) as uri:
        db_uri = mlflow_db_uri(uri)
        with mlflow_server(python, db_uri) as http_uri:
            out = subprocess.run(
                [python, "-c", script, db_uri, http_uri, *args],
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
    return json.loads(out.stdout.strip().splitlines()[-1])
