"""Direct uploads record the SHA-256 the client computed, so listings show it as for proxied ones (MinIO)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import urllib3

import tracklane
from tests.conftest import S3Config
from tests.contract.test_artifacts import payload, s3_location, sha, status
from tracklane.testing import LocalServer
from tracklane.v1 import artifacts_pb2, artifacts_pb2_grpc

pytestmark = pytest.mark.services

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LocalServer]:
    s3: S3Config = request.getfixturevalue("s3_service")
    with LocalServer(tmp_path_factory.mktemp("direct-sha"), **s3.server_settings("direct-sha256")) as server:
        yield server


@pytest.fixture
def client(s3_server: LocalServer) -> Iterator[tracklane.Client]:
    with tracklane.Client(s3_server.uri) as c:
        yield c


@pytest.fixture
def stub(s3_server: LocalServer) -> Iterator[artifacts_pb2_grpc.ArtifactServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{s3_server.port}") as channel:
        yield artifacts_pb2_grpc.ArtifactServiceStub(channel)


@pytest.fixture
def run_id(client: tracklane.Client) -> str:
    return client.create_run().info.run_id


@pytest.mark.parametrize("size", [0, 5, 9 * MiB + 3], ids=["empty", "one-part", "multipart"])
def test_direct_uploads_list_their_sha256(
    client: tracklane.Client,
    stub: artifacts_pb2_grpc.ArtifactServiceStub,
    run_id: str,
    tmp_path: Path,
    size: int,
) -> None:
    data = payload(size, size)
    local = tmp_path / "f.bin"
    local.write_bytes(data)
    info = client.log_artifact(run_id, local, "d", direct=True)
    assert (info.file_size, info.sha256) == (size, sha(data))
    [listed] = client.list_artifacts(run_id, "d")
    assert (listed.path, listed.file_size, listed.sha256) == ("d/f.bin", size, sha(data))
    presigned = stub.GetPresignedDownload(
        artifacts_pb2.GetPresignedDownloadRequest(run_id=run_id, path="d/f.bin")
    )
    assert presigned.file.sha256 == sha(data)
    # A download that checks the hash accepts it.
    got = client.download_artifacts(run_id, "d/f.bin", tmp_path / "out", verify=True)
    assert Path(got).read_bytes() == data


def put_parts(
    created: artifacts_pb2.CreatePresignedUploadResponse, data: bytes
) -> list[artifacts_pb2.CompletedPart]:
    parts = []
    for part in created.parts:
        response = urllib3.request("PUT", part.url, body=data[part.offset : part.offset + part.length])
        assert response.status == 200
        etag = str(response.headers["ETag"]).strip('"')
        parts.append(artifacts_pb2.CompletedPart(part_number=part.part_number, etag=etag))
    return parts


def complete(
    stub: artifacts_pb2_grpc.ArtifactServiceStub,
    run_id: str,
    path: str,
    data: bytes,
    declared: str,
    reported: str,
) -> artifacts_pb2.CompletePresignedUploadResponse:
    created = stub.CreatePresignedUpload(
        artifacts_pb2.CreatePresignedUploadRequest(run_id=run_id, path=path, size=len(data), sha256=declared)
    )
    return stub.CompletePresignedUpload(
        artifacts_pb2.CompletePresignedUploadRequest(
            run_id=run_id,
            path=path,
            upload_id=created.upload_id,
            parts=put_parts(created, data),
            sha256=reported,
        )
    )


def test_a_reported_sha256_differing_from_the_declared_one_is_refused(
    client: tracklane.Client, stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str
) -> None:
    data = b"declared at the start"
    other = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(grpc.RpcError) as err:
        complete(stub, run_id, "mismatch.bin", data, sha(data), other)
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "sha256")
    assert client.list_artifacts(run_id, recursive=True) == []
    # Both agreeing: stored, with that hash.
    assert complete(stub, run_id, "agree.bin", data, sha(data), sha(data)).file.sha256 == sha(data)


def test_a_malformed_sha256_is_refused_before_completing(
    client: tracklane.Client,
    stub: artifacts_pb2_grpc.ArtifactServiceStub,
    run_id: str,
    request: pytest.FixtureRequest,
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        complete(stub, run_id, "bad.bin", b"abc", "", "not-a-sha256")
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "sha256")
    assert client.list_artifacts(run_id, recursive=True) == []
    minio, bucket, prefix = s3_location(client, run_id, request)
    for upload in minio._list_multipart_uploads(bucket).uploads:  # the caller still has to abort it
        if str(upload.object_name).startswith(prefix + "/"):
            minio._abort_multipart_upload(bucket, str(upload.object_name), str(upload.upload_id))


def test_without_a_reported_sha256_the_hash_stays_unknown(
    client: tracklane.Client, stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str
) -> None:
    # Older clients send none: the file is stored, its hash unknown rather than guessed.
    assert complete(stub, run_id, "old-client.bin", b"abc", "", "").file.sha256 == ""
    [listed] = client.list_artifacts(run_id)
    assert (listed.file_size, listed.sha256) == (3, "")
