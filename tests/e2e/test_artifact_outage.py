"""The object store goes away (a private MinIO, SIGKILLed) and comes back, under a real server process.

While it is away, artifact calls answer UNAVAILABLE promptly (never INTERNAL, never a hang: each
call has a deadline, and running into it would fail the test with DEADLINE_EXCEEDED). Once it is
back they work again without restarting the server, and nothing half-written is visible: not the
upload cut off by the outage, nor those tried during it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

import tracklane
from tests.e2e._fault_helpers import PrivateMinio, private_minio
from tests.servers import ServerProcess, serve
from tracklane import exceptions
from tracklane.v1 import artifacts_pb2, artifacts_pb2_grpc

MiB = 1024 * 1024
DEADLINE = 30.0  # far above a prompt answer; reaching it means the call hung


def block(size: int, seed: int) -> bytes:
    return (hashlib.sha256(f"{seed}".encode()).digest() * (size // 32 + 1))[:size]


def messages(
    run_id: str, path: str, chunks: Iterator[bytes]
) -> Iterator[artifacts_pb2.UploadArtifactRequest]:
    yield artifacts_pb2.UploadArtifactRequest(header=artifacts_pb2.UploadHeader(run_id=run_id, path=path))
    for chunk in chunks:
        yield artifacts_pb2.UploadArtifactRequest(chunk=chunk)


@pytest.fixture
def outage_setup(tmp_path: Path) -> Iterator[tuple[PrivateMinio, ServerProcess]]:
    with private_minio() as minio, serve(tmp_path, *minio.server_args("outage")) as server:
        yield minio, server


def test_artifact_calls_fail_fast_while_the_store_is_away_and_recover(
    outage_setup: tuple[PrivateMinio, ServerProcess], tmp_path: Path
) -> None:
    minio, server = outage_setup
    big = block(12 * MiB, 1)  # over one 8 MiB part: a multipart upload
    with (
        tracklane.Client(f"grpc://{server.address}") as client,
        grpc.insecure_channel(server.address) as channel,
    ):
        stub = artifacts_pb2_grpc.ArtifactServiceStub(channel)
        run_id = client.create_run().info.run_id
        client.log_bytes(run_id, big, "before/big.bin")

        # An upload under way when the store dies: its first part is stored, the rest waits.
        resume = threading.Event()

        def cut_off() -> Iterator[bytes]:
            yield from (block(4 * MiB, i) for i in range(3))
            resume.wait(DEADLINE)
            yield from (block(4 * MiB, i) for i in range(3, 6))

        upload = stub.UploadArtifact.future(messages(run_id, "cut/off.bin", cut_off()), timeout=DEADLINE)
        wait_until(lambda: bool(minio.incomplete_uploads()), "the upload did not begin its multipart upload")
        minio.stop()
        resume.set()
        with pytest.raises(grpc.RpcError) as err:
            upload.result()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()

        calls: dict[str, Callable[[], object]] = {
            "small upload": lambda: stub.UploadArtifact(
                messages(run_id, "during/small.txt", iter([b"hello"])), timeout=DEADLINE
            ),
            "multipart upload": lambda: stub.UploadArtifact(
                messages(
                    run_id,
                    "during/big.bin",
                    iter([big[i : i + 4 * MiB] for i in range(0, len(big), 4 * MiB)]),
                ),
                timeout=DEADLINE,
            ),
            "download": lambda: list(
                stub.DownloadArtifact(
                    artifacts_pb2.DownloadArtifactRequest(run_id=run_id, path="before/big.bin"),
                    timeout=DEADLINE,
                )
            ),
            "list": lambda: stub.ListArtifacts(
                artifacts_pb2.ListArtifactsRequest(run_id=run_id, recursive=True), timeout=DEADLINE
            ),
            "delete": lambda: stub.DeleteArtifact(
                artifacts_pb2.DeleteArtifactRequest(run_id=run_id, path="before"), timeout=DEADLINE
            ),
            "direct upload": lambda: stub.CreatePresignedUpload(
                artifacts_pb2.CreatePresignedUploadRequest(run_id=run_id, path="during/d.bin", size=3),
                timeout=DEADLINE,
            ),
            "direct download": lambda: stub.GetPresignedDownload(
                artifacts_pb2.GetPresignedDownloadRequest(run_id=run_id, path="before/big.bin"),
                timeout=DEADLINE,
            ),
        }
        for name, call in calls.items():
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, (name, err.value.details())
            assert "object store" in (err.value.details() or ""), name
        # The client's own retries end in the typed error, naming nothing secret.
        with pytest.raises(exceptions.Unavailable):
            client.list_artifacts(run_id)

        minio.start()  # same port and data; the server is not restarted
        assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, recursive=True)] == [
            ("before/big.bin", len(big))
        ]
        assert client.read_artifact(run_id, "before/big.bin") == big
        client.log_bytes(run_id, big, "after/big.bin")
        assert client.read_artifact(run_id, "after/big.bin") == big
        local = tmp_path / "direct.bin"
        local.write_bytes(big)
        assert (
            client.log_artifact(run_id, local, "after", direct=True).sha256 == hashlib.sha256(big).hexdigest()
        )
        assert sorted(f.path for f in client.list_artifacts(run_id, recursive=True)) == [
            "after/big.bin",
            "after/direct.bin",
            "before/big.bin",
        ]


def wait_until(condition: Callable[[], bool], message: str, timeout: float = 30.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        done.wait(0.1)
    raise AssertionError(message)
