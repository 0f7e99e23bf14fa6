"""What the fault suite shares: a private MinIO it may stop, retried calls, a PostgreSQL restart.

Its servers are started with :mod:`tests.servers` (``serve``, ``fixed_bind``, ``server_on_backend``).

The private PostgreSQL cluster lives in :mod:`tests.e2e.test_stream_faults` (``private_postgres``);
this adds its twin for the object store. Neither is the shared instance other tests use: the
fault tests stop, kill and restart them at will.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from minio import Minio

import tracklane
from tests.conftest import find_executable
from tests.e2e.test_stream_faults import PrivatePostgres
from tests.servers import clean_env, fixed_port

__all__ = [
    "PrivateMinio",
    "PrivatePostgres",
    "Transient",
    "private_minio",
    "restart_postgres",
    "retried",
]

MINIO_HOW_TO = "bash .ci/services.sh start builds it (go install github.com/minio/minio)"

T = TypeVar("T")

#: What a call may meet while the server or a service it uses is away; retried by the test clients.
Transient = (tracklane.exceptions.Unavailable, tracklane.exceptions.Aborted)


def retried(
    call: Callable[[], T],
    *,
    timeout: float = 120.0,
    on_retry: Callable[[], T | None] | None = None,
    failures: list[Exception] | None = None,
) -> T:
    """``call()`` until it answers without a transient error.

    ``on_retry`` runs before each retry; a value it returns ends the loop (a create whose first
    attempt committed although its answer was lost is found this way, not made twice). The
    transient errors met are appended to ``failures``.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except Transient as exc:
            if failures is not None:
                failures.append(exc)
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)
        while on_retry is not None:
            try:
                found = on_retry()
            except Transient:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            if found is not None:
                return found
            break


class PrivateMinio:
    """A MinIO of the test's own on a free port and a throw-away folder; stop and start keep the data."""

    def __init__(self, root: Path, binary: str) -> None:
        self.root = root
        self.binary = binary
        self.port = fixed_port()
        self.access_key = "fault-suite"
        self.secret_key = secrets.token_hex(16)
        self.bucket = "faults"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server_args(self, prefix: str = "run") -> list[str]:
        """``tracklane server`` flags for an artifact root in this MinIO."""
        return [
            "--artifact-root",
            f"s3://{self.bucket}/{prefix}",
            "--s3-endpoint-url",
            self.endpoint_url,
            "--s3-access-key-id",
            self.access_key,
            "--s3-secret-access-key",
            self.secret_key,
        ]

    def client(self) -> Minio:
        return Minio(f"127.0.0.1:{self.port}", self.access_key, self.secret_key, secure=False)

    def start(self) -> None:
        env = clean_env({"MINIO_ROOT_USER": self.access_key, "MINIO_ROOT_PASSWORD": self.secret_key})
        argv = [self.binary, "server", str(self.root / "data"), "--address", f"127.0.0.1:{self.port}"]
        argv += ["--console-address", "127.0.0.1:0", "--quiet"]
        log = (self.root / "minio.log").open("ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if self.client().bucket_exists(self.bucket) or self._make_bucket():
                    return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def _make_bucket(self) -> bool:
        self.client().make_bucket(self.bucket)
        return True

    def stop(self) -> None:
        """SIGKILL: the object store vanishes mid-request, as in a crash or a network cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.proc = None

    def incomplete_uploads(self) -> list[str]:
        """Object names of multipart uploads begun and neither completed nor aborted."""
        uploads = self.client()._list_multipart_uploads(self.bucket).uploads
        return [str(u.object_name) for u in uploads]


@contextmanager
def private_minio() -> Iterator[PrivateMinio]:
    """A MinIO of the test's own; skips (or fails, with TRACKLANE_REQUIRE_SERVICES=1) without the binary."""
    binary = find_executable("minio", MINIO_HOW_TO)
    # In memory where the machine has it: a disk busy with other work can stall MinIO's fsyncs for
    # a minute, which would look like the faults under test.
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="tracklane-minio-", dir=shm if shm.is_dir() else None))
    minio = PrivateMinio(root, binary)
    try:
        minio.start()
        yield minio
    finally:
        minio.stop()
        shutil.rmtree(root, ignore_errors=True)


def restart_postgres(pg: PrivatePostgres) -> None:
    """``pg_ctl restart -m fast``: every open connection is cut, then the database is back."""
    # With its log file, as at start: else the new postmaster keeps pg_ctl's captured stdout open.
    pg.pg_ctl("-l", str(pg.data / "log"), "-m", "fast", "restart")
