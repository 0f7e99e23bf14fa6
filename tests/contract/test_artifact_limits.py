"""``max_artifact_bytes``: uploads over the limit are refused, proxied and direct, on both backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import tracklane
from tests.contract.test_artifacts import incomplete_uploads, payload, s3_location, status, upload
from tracklane import exceptions
from tracklane.testing import LocalServer
from tracklane.v1 import artifacts_pb2, artifacts_pb2_grpc

MiB = 1024 * 1024
LIMIT = 10 * MiB  # above one S3 part (8 MiB), so the stream test starts a multipart upload


@pytest.fixture(scope="module")
def limited_server(
    backend: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServer]:
    settings = {k: v for k, v in backend.items() if k != "data_dir"}
    if "artifact_root" in settings:
        settings["artifact_root"] = f"{settings['artifact_root']}-limited"
    with LocalServer(tmp_path_factory.mktemp("limited"), max_artifact_bytes=LIMIT, **settings) as server:
        yield server


@pytest.fixture
def client(limited_server: LocalServer) -> Iterator[tracklane.Client]:
    with tracklane.Client(limited_server.uri) as c:
        yield c


@pytest.fixture
def stub(limited_server: LocalServer) -> Iterator[artifacts_pb2_grpc.ArtifactServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{limited_server.port}") as channel:
        yield artifacts_pb2_grpc.ArtifactServiceStub(channel)


@pytest.fixture
def run_id(client: tracklane.Client) -> str:
    return client.create_run().info.run_id


def test_a_file_of_exactly_the_limit_is_stored(
    stub: artifacts_pb2_grpc.ArtifactServiceStub, client: tracklane.Client, run_id: str
) -> None:
    data = payload(LIMIT, 1)
    chunks = [data[i : i + 4 * MiB] for i in range(0, LIMIT, 4 * MiB)]
    assert upload(stub, run_id, "at-limit.bin", chunks).file.size == LIMIT
    assert [f.file_size for f in client.list_artifacts(run_id)] == [LIMIT]


def test_a_declared_size_over_the_limit_is_refused_up_front(
    stub: artifacts_pb2_grpc.ArtifactServiceStub, client: tracklane.Client, run_id: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        upload(stub, run_id, "big.bin", [b"x"], size=LIMIT + 1)
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "size")
    assert "max_artifact_bytes" in (err.value.details() or "")
    assert client.list_artifacts(run_id, recursive=True) == []


def test_a_stream_going_over_the_limit_is_refused_and_leaves_nothing(
    stub: artifacts_pb2_grpc.ArtifactServiceStub,
    client: tracklane.Client,
    run_id: str,
    request: pytest.FixtureRequest,
) -> None:
    chunks = [payload(4 * MiB, i) for i in range(3)]  # 12 MiB, no size declared
    with pytest.raises(grpc.RpcError) as err:
        upload(stub, run_id, "stream.bin", chunks)
    assert status(err) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "chunk")
    assert "max_artifact_bytes" in (err.value.details() or "")
    assert client.list_artifacts(run_id, recursive=True) == []
    if client.get_run(run_id).info.artifact_uri.startswith("s3://"):
        # The multipart upload begun for the first 8 MiB was aborted with the call.
        assert incomplete_uploads(*s3_location(client, run_id, request)) == []


def test_the_client_gets_a_typed_error_naming_the_size(
    client: tracklane.Client, run_id: str, tmp_path: Path
) -> None:
    local = tmp_path / "too-big.bin"
    with local.open("wb") as out:
        out.truncate(LIMIT + 1)
    for direct in (False, True):
        with pytest.raises(exceptions.InvalidArgument) as err:
            client.log_artifact(run_id, local, direct=direct)
        assert err.value.field == "size"
    assert client.list_artifacts(run_id, recursive=True) == []


def test_a_direct_upload_over_the_limit_is_refused(
    stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str
) -> None:
    # Checked before the store is asked, so a local root (no direct mode) answers the same.
    with pytest.raises(grpc.RpcError) as err:
        stub.CreatePresignedUpload(
            artifacts_pb2.CreatePresignedUploadRequest(run_id=run_id, path="d.bin", size=LIMIT + 1)
        )
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "size")


def test_the_limit_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(exceptions.InvalidArgument) as err:
        LocalServer(tmp_path, max_artifact_bytes=-1)
    assert err.value.field == "max_artifact_bytes"
    assert os.listdir(tmp_path) == []
