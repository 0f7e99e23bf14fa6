"""Faults around transfers, with the real ``tracklane server`` process.

A client killed mid-upload (SIGKILL, no goodbye) leaves nothing behind: no file, no temporary file,
no incomplete multipart upload in MinIO. A server killed mid-download and restarted: the client
resumes from the byte it reached."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from minio import Minio

import tracklane
from tests.conftest import S3Config
from tests.servers import ServerProcess, clean_env, start_server

MiB = 1024 * 1024

# Sends a header and then 4 MiB chunks forever, announcing on stdout once 24 MiB are out.
UPLOADER = textwrap.dedent(
    """
    import sys, time, grpc
    from tracklane.v1 import artifacts_pb2 as pb, artifacts_pb2_grpc as rpc

    address, run_id = sys.argv[1], sys.argv[2]

    def messages():
        yield pb.UploadArtifactRequest(header=pb.UploadHeader(run_id=run_id, path="ckpt/model.bin"))
        for i in range(10**6):
            yield pb.UploadArtifactRequest(chunk=bytes([i % 256]) * (4 * 1024 * 1024))
            if i == 5:
                print("sent", flush=True)
            if i >= 5:
                time.sleep(0.05)

    rpc.ArtifactServiceStub(grpc.insecure_channel(address)).UploadArtifact(messages())
    """
)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.services)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, Minio | None]]:
    args: list[str] = []
    minio: Minio | None = None
    if request.param == "s3":
        s3: S3Config = request.getfixturevalue("s3_service")
        args = [
            "--artifact-root",
            f"s3://{s3.bucket}/faults-{uuid.uuid4().hex[:8]}",
            "--s3-endpoint-url",
            s3.endpoint_url,
            "--s3-access-key-id",
            s3.access_key_id,
            "--s3-secret-access-key",
            s3.secret_access_key,
        ]
        host = urlsplit(s3.endpoint_url).netloc
        minio = Minio(
            host, s3.access_key_id, s3.secret_access_key, secure=s3.endpoint_url.startswith("https")
        )
    with start_server(*args, data_dir=tmp_path / "data") as process:
        yield process, minio


def test_client_killed_mid_upload_leaves_nothing(server: tuple[ServerProcess, Minio | None]) -> None:
    process, minio = server
    with tracklane.Client(f"grpc://{process.address}") as client:
        run_id = client.create_run().info.run_id
        root = client.get_run(run_id).info.artifact_uri
        uploader = subprocess.Popen(
            [sys.executable, "-c", UPLOADER, process.address, run_id],
            stdout=subprocess.PIPE,
            env=clean_env(),
        )
        try:
            assert uploader.stdout is not None
            assert uploader.stdout.readline().strip() == b"sent"
            if minio is not None:
                bucket, prefix = _bucket_prefix(root)
                _wait_for(lambda: _incomplete(minio, bucket, prefix), "no multipart upload under way")
        finally:
            os.kill(uploader.pid, signal.SIGKILL)
            uploader.wait(10)
            if uploader.stdout is not None:
                uploader.stdout.close()
        assert client.list_artifacts(run_id, recursive=True) == []
        if minio is None:
            folder = Path(urlsplit(root).path)
            _wait_for(lambda: not [p for p in folder.rglob("*") if p.is_file()], "temporary files left")
        else:
            bucket, prefix = _bucket_prefix(root)
            _wait_for(lambda: not _incomplete(minio, bucket, prefix), "incomplete multipart upload left")
        # The run and the server are fine afterwards.
        client.log_bytes(run_id, b"ok", "ckpt/model.bin")
        assert client.read_artifact(run_id, "ckpt/model.bin") == b"ok"


def _bucket_prefix(root: str) -> tuple[str, str]:
    parts = urlsplit(root)
    return parts.netloc, parts.path.lstrip("/")


def _incomplete(minio: Minio, bucket: str, prefix: str) -> list[str]:
    # MinIO lists uploads only for an exact key or the whole bucket: list all, filter.
    uploads = minio._list_multipart_uploads(bucket).uploads
    return [str(u.object_name) for u in uploads if str(u.object_name).startswith(prefix + "/")]


def _wait_for(condition: object, message: str, timeout: float = 15.0) -> None:
    # The server learns of the dead client when the connection drops (at once on loopback).
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)


def test_download_resumes_after_the_server_restarts(tmp_path: Path) -> None:
    """The server dies mid-download (SIGKILL) and comes back: the client resumes from its offset."""
    data_dir = tmp_path / "data"
    block = os.urandom(MiB)
    size = 384 * MiB
    source = tmp_path / "big.bin"
    with source.open("wb") as out:
        for i in range(size // MiB):
            out.write(bytes([i % 256]) + block[1:])
    with start_server(data_dir=data_dir) as first:
        bind = first.bind
        client = tracklane.Client(f"grpc://{first.address}")
        run_id = client.create_run().info.run_id
        client.log_artifact(run_id, source)
        part = tmp_path / "out" / ".big.bin.tracklane-part"
        result: dict[str, object] = {}

        def download() -> None:
            try:
                result["path"] = client.download_artifacts(run_id, "big.bin", tmp_path / "out")
            except Exception as exc:
                result["error"] = exc

        thread = threading.Thread(target=download)
        thread.start()
        _wait_for(lambda: part.exists() and part.stat().st_size > 16 * MiB, "the download did not start")
        first.kill()
        received = part.stat().st_size
    assert 0 < received < size
    with start_server(data_dir=data_dir, bind=bind):
        thread.join(60)
    client.close()
    assert "error" not in result, result.get("error")
    downloaded = Path(str(result["path"]))
    assert downloaded.stat().st_size == size
    assert _sha256(downloaded) == _sha256(source)
    assert not part.exists()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()
