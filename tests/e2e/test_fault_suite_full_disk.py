"""Fault suite, a full disk under the database: RESOURCE_EXHAUSTED, nothing lost, back by itself.

A full disk is not "retry later" (UNAVAILABLE, which clients retry on their own): an operator must
free space. So database writes answer RESOURCE_EXHAUSTED, like uploads do, quickly; metric batches
refused meanwhile are kept by the client (spooled), not dropped; what was stored before is
intact; and once space is freed, writes succeed again without a restart.

Real file systems fill up: a small tmpfs holds the SQLite database (and the artifact folder), or,
on PostgreSQL, the tablespace of a throw-away database in a private cluster (the shared one is
never touched). Mounting needs root; elsewhere the tests skip, saying so.
"""

from __future__ import annotations

import errno
import os
import secrets
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

import tracklane
from tests.e2e.test_stream_faults import PrivatePostgres, private_postgres, stored
from tests.servers import serve
from tracklane._metrics.sender import MetricsConfig, MetricSender
from tracklane.entities import Param
from tracklane.exceptions import DeadlineExceeded, ResourceExhausted, TracklaneError

__all__ = ["private_postgres"]  # the fixture, imported to be used here

pytestmark = [pytest.mark.timeout(300)]

HANG = 15.0  # seconds a refused write may take at most; only there to turn a hang into a failure
POINTS = 20_000


@contextmanager
def small_disk(megabytes: int, owner: str = "root") -> Iterator[Path]:
    """A tmpfs of ``megabytes`` MiB, owned by ``owner``, unmounted afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="tracklane-small-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        if owner != "root":
            subprocess.run(["chown", owner, str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)  # lazy: a server may hold files
        folder.rmdir()


def fill(disk: Path) -> Path:
    """Writes a file until ``disk`` has no byte left; delete it to free the space."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def incompressible(chars: int) -> str:
    # PostgreSQL compresses long values (TOAST): random text makes every write take its size.
    return secrets.token_urlsafe(chars)[:chars]


def write_until_refused(client: tracklane.Client, run_id: str) -> tuple[list[str], TracklaneError]:
    """Sets 60 KB tags until the server refuses one; returns the keys stored and the refusal."""
    stored_keys: list[str] = []
    for i in range(2_000):
        key = f"fill{i}"
        started = time.monotonic()
        try:
            client.set_tag(run_id, key, incompressible(60_000))
        except TracklaneError as exc:
            assert time.monotonic() - started < HANG, "a refused write hung"
            return stored_keys, exc
        stored_keys.append(key)
    raise AssertionError("2,000 writes of 60 KB fitted on the small disk")


def full_disk_story(address: str, disk: Path, tmp_path: Path, *, artifacts_on_disk: bool) -> str:
    """Fills ``disk`` under a running server, checks every refusal, frees it, checks recovery."""
    uri = f"grpc://{address}"
    with tracklane.Client(uri) as client:
        run_id = client.create_run("0", run_name="before").info.run_id
        client.log_param(run_id, "before", "1")
        sender = MetricSender(
            uri, MetricsConfig(spool_dir=tmp_path / "spool", spill_after=0.5, flush_points=1_000)
        )
        buffer = sender.buffer(run_id)
        try:
            filler = fill(disk)
            try:
                written, refusal = write_until_refused(client, run_id)
                assert isinstance(refusal, ResourceExhausted), repr(refusal)
                assert "full" in refusal.message, refusal.message
                # Every other kind of write says the same, at once (no client retries).
                for write in (
                    lambda: client.create_run("0", run_name="during", tags={"t": incompressible(60_000)}),
                    lambda: client.log_batch(
                        run_id, params=[Param(f"p{i}", incompressible(6_000)) for i in range(20)]
                    ),
                ):
                    started = time.monotonic()
                    with pytest.raises(ResourceExhausted):
                        write()
                    assert time.monotonic() - started < HANG
                if artifacts_on_disk:
                    big = tmp_path / "big.bin"
                    big.write_bytes(os.urandom(1 << 20))
                    with pytest.raises(ResourceExhausted):
                        client.log_artifact(run_id, big)
                # Metric batches refused meanwhile are kept, not dropped.
                for step in range(POINTS):
                    buffer.log("m", float(step), step, None)
                with pytest.raises(DeadlineExceeded):
                    sender.flush(5)
                assert sender.points_refused == 0
                assert client.get_run(run_id).data.params == {"before": "1"}  # reads still work
            finally:
                filler.unlink()
            # Space is back: writes succeed without a restart, and nothing was lost or half-made.
            client.log_param(run_id, "after", "1")
            sender.flush(120)
            assert sender.points_refused == 0
        finally:
            sender.close(5)
        run = client.get_run(run_id)
        assert run.data.params == {"before": "1", "after": "1"}
        assert set(written) <= set(run.data.tags)
        assert stored(address, run_id, "m") == (list(range(POINTS)), [float(s) for s in range(POINTS)])
        names = sorted(r.info.run_name for r in client.search_runs(["0"]))
        assert names == ["before"]  # the refused CreateRun left nothing behind
    return run_id


def test_sqlite_on_a_full_disk(tmp_path: Path) -> None:
    with small_disk(24) as disk:
        database = disk / "tracklane.db"
        server = serve(
            tmp_path,
            "--backend-store-uri",
            f"sqlite:///{database}",
            "--artifact-root",
            (disk / "artifacts").as_uri(),
        )
        try:
            full_disk_story(server.address, disk, tmp_path, artifacts_on_disk=True)
        finally:
            server.kill()
        assert "Traceback" not in server.log
        with sqlite3.connect(database) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.services
def test_postgres_on_a_full_tablespace(tmp_path: Path, private_postgres: PrivatePostgres) -> None:
    # A private cluster (not the shared one); the database lives in a tablespace on a small tmpfs,
    # its WAL on the cluster's own disk, as an operator's data volume filling up would.
    with small_disk(48, owner="postgres") as disk:
        subprocess.run(["runuser", "-u", "postgres", "--", "mkdir", str(disk / "ts")], check=True)
        admin = sa.create_engine(private_postgres.uri, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f"CREATE TABLESPACE small LOCATION '{disk / 'ts'}'"))
                conn.execute(sa.text("CREATE DATABASE full_disk TABLESPACE small"))
        finally:
            admin.dispose()
        uri = (
            sa.make_url(private_postgres.uri).set(database="full_disk").render_as_string(hide_password=False)
        )
        server = serve(tmp_path, "--backend-store-uri", uri)
        try:
            full_disk_story(server.address, disk, tmp_path, artifacts_on_disk=False)
        finally:
            server.kill()
        assert "Traceback" not in server.log
