"""Fault suite, artifact side: a private MinIO, and the server, failing in the middle of an upload.

- The server is killed -9 mid-upload and restarted: the files acknowledged before are listed and
  download intact, the cut file is not listed, and the multipart upload it left is swept at start.
- PostgreSQL restarts while uploads go on: every acknowledged file is there, nothing else.
- MinIO is killed mid-upload: the upload fails with UNAVAILABLE (not a hang), artifact calls fail
  fast with UNAVAILABLE while metadata calls go on, and once MinIO is back everything recovers by
  itself; the upload can be made again and nothing half-done is listed.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

import tracklane
from tests.e2e._fault_helpers import (
    PrivateMinio,
    private_minio,
    restart_postgres,
    retried,
)
from tests.e2e.test_artifact_faults import UPLOADER
from tests.e2e.test_stream_faults import PrivatePostgres, private_postgres
from tests.servers import ServerProcess, clean_env, fixed_bind, serve

__all__ = ["private_postgres"]  # the fixture, imported to be used here

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

MiB = 1024 * 1024
HANG = 30.0  # seconds; only there to turn a hang into a failure
# Unfinished uploads older than this are swept when a server starts.
SWEEP_AT_START = {"TRACKLANE_ARTIFACT_MULTIPART_MAX_AGE_SECONDS": "1"}


@pytest.fixture
def minio() -> Iterator[PrivateMinio]:
    with private_minio() as store:
        yield store


def start(tmp_path: Path, database: str, minio: PrivateMinio, bind: str) -> ServerProcess:
    return serve(
        tmp_path, "--backend-store-uri", database, *minio.server_args(), bind=bind, env=SWEEP_AT_START
    )


def new_run(client: tracklane.Client) -> str:
    """A run in a new experiment, so under this server's artifact root: the session's database may
    hold experiments of earlier tests whose roots are elsewhere (the default one's included)."""
    experiment_id = client.create_experiment(f"faults-{uuid.uuid4().hex[:8]}")
    return client.create_run(experiment_id).info.run_id


def acknowledged_files(client: tracklane.Client, run_id: str) -> dict[str, bytes]:
    files = {f"ok/file-{i}.bin": os.urandom(i * 3 * MiB + 17) for i in range(3)}  # 0, 1 and >1 parts
    for path, data in files.items():
        client.log_bytes(run_id, data, path)
    return files


def check_nothing_half_done(client: tracklane.Client, run_id: str, files: dict[str, bytes]) -> None:
    listed = {f.path for f in client.list_artifacts(run_id, recursive=True) if not f.is_dir}
    assert listed == set(files)  # the cut upload is not there
    for path, data in files.items():
        assert hashlib.sha256(client.read_artifact(run_id, path)).digest() == hashlib.sha256(data).digest()


@contextmanager
def uploading(address: str, run_id: str) -> Iterator[subprocess.Popen[bytes]]:
    """A client streaming ``ckpt/model.bin`` without end, once it has sent 24 MiB; killed at exit."""
    with subprocess.Popen(
        [sys.executable, "-c", UPLOADER, address, run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"sent"
            yield proc
        finally:
            proc.kill()


def cut_upload_in(minio: PrivateMinio) -> bool:
    return any(name.endswith("ckpt/model.bin") for name in minio.incomplete_uploads())


def wait_for(condition: object, what: str, timeout: float = 90.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_server_killed_mid_upload(tmp_path: Path, postgres_uri: str, minio: PrivateMinio) -> None:
    bind = fixed_bind()
    servers = [start(tmp_path, postgres_uri, minio, bind)]
    try:
        with tracklane.Client(f"grpc://{bind}") as client:
            run_id = new_run(client)
            files = acknowledged_files(client, run_id)
            with uploading(bind, run_id) as upload:
                wait_for(lambda: cut_upload_in(minio), "the upload")
                servers[0].kill()
                assert upload.wait(HANG) != 0
            servers.append(start(tmp_path, postgres_uri, minio, bind))
            check_nothing_half_done(client, run_id, files)
            wait_for(lambda: minio.incomplete_uploads() == [], "the sweep of the cut upload")
            data = os.urandom(20 * MiB)
            client.log_bytes(run_id, data, "ckpt/model.bin")  # made again, whole this time
            assert client.read_artifact(run_id, "ckpt/model.bin") == data
    finally:
        for s in servers:
            s.kill()


def test_minio_killed_mid_upload(tmp_path: Path, postgres_uri: str, minio: PrivateMinio) -> None:
    bind = fixed_bind()
    servers = [start(tmp_path, postgres_uri, minio, bind)]
    try:
        with tracklane.Client(f"grpc://{bind}", timeout=HANG) as client:
            run_id = new_run(client)
            files = acknowledged_files(client, run_id)
            with uploading(bind, run_id) as upload:
                wait_for(lambda: cut_upload_in(minio), "the upload")
                minio.stop()
                assert upload.wait(HANG) != 0
                assert upload.stderr is not None
                assert b"UNAVAILABLE" in upload.stderr.read()
            try:
                for call in (
                    lambda: client.list_artifacts(run_id),
                    lambda: client.read_artifact(run_id, "ok/file-1.bin"),
                    lambda: client.log_bytes(run_id, b"x", "during-outage.txt"),
                ):
                    started = time.monotonic()
                    with pytest.raises(tracklane.exceptions.Unavailable) as caught:
                        call()
                    assert time.monotonic() - started < HANG, "an artifact call hung"
                    assert "object store" in str(caught.value)
                assert client.get_run(run_id).info.run_id == run_id  # metadata is not held up
            finally:
                minio.start()
            check_nothing_half_done(client, run_id, files)  # recovered by itself, no restart
            data = os.urandom(20 * MiB)
            client.log_bytes(run_id, data, "ckpt/model.bin")
            assert client.read_artifact(run_id, "ckpt/model.bin") == data
            # The server could not abort the cut upload while MinIO was away; a restart sweeps it.
            assert servers[0].terminate(60) == 0
            servers.append(start(tmp_path, postgres_uri, minio, bind))
            wait_for(lambda: minio.incomplete_uploads() == [], "the sweep of the cut upload")
            check_nothing_half_done(client, run_id, {**files, "ckpt/model.bin": data})
    finally:
        for s in servers:
            s.kill()


def test_postgres_restarts_mid_uploads(
    tmp_path: Path, private_postgres: PrivatePostgres, minio: PrivateMinio
) -> None:
    server = start(tmp_path, private_postgres.uri, minio, "127.0.0.1:0")
    acked: dict[str, bytes] = {}
    lock = threading.Lock()
    halfway = threading.Event()

    def upload(client: tracklane.Client, run_id: str, worker: int) -> None:
        for i in range(8):
            path, data = f"w{worker}/file-{i}.bin", os.urandom(6 * MiB + i)
            retried(functools.partial(client.log_bytes, run_id, data, path))  # again: same outcome
            with lock:
                acked[path] = data
            if i == 2:
                halfway.set()

    try:
        with tracklane.Client(f"grpc://{server.address}", timeout=HANG) as client:
            run_id = new_run(client)
            with ThreadPoolExecutor(2) as pool:
                uploads = [pool.submit(upload, client, run_id, w) for w in range(2)]
                assert halfway.wait(HANG)
                for _ in range(2):
                    restart_postgres(private_postgres)
                for future in uploads:
                    future.result()
            assert len(acked) == 16
            check_nothing_half_done(client, run_id, acked)
            wait_for(lambda: minio.incomplete_uploads() == [], "the uploads cut by the restart to be aborted")
    finally:
        server.kill()
