"""ArtifactService over real gRPC on both backends (SQLite + local folder, PostgreSQL + MinIO)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
from minio import Minio

import tracklane
from tests.conftest import S3Config
from tracklane import exceptions
from tracklane._artifacts.transfer import CHUNK_BYTES
from tracklane.testing import LocalServer
from tracklane.v1 import artifacts_pb2, artifacts_pb2_grpc
from tracklane_server.services.artifacts import DOWNLOAD_CHUNK_BYTES, MAX_CHUNK_BYTES

MiB = 1024 * 1024


def payload(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(f"{seed}".encode()).digest() * (MiB // 32)
    return (block * (size // len(block) + 1))[:size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_s3(client: tracklane.Client, run_id: str) -> bool:
    return client.get_run(run_id).info.artifact_uri.startswith("s3://")


@pytest.fixture
def stub(tracking_server: LocalServer) -> Iterator[artifacts_pb2_grpc.ArtifactServiceStub]:
    with grpc.insecure_channel(
        f"127.0.0.1:{tracking_server.port}", options=[("grpc.max_send_message_length", 64 * MiB)]
    ) as channel:
        yield artifacts_pb2_grpc.ArtifactServiceStub(channel)


@pytest.fixture
def run_id(client: tracklane.Client) -> str:
    return client.create_run().info.run_id


def upload(
    stub: artifacts_pb2_grpc.ArtifactServiceStub,
    run_id: str,
    path: str,
    chunks: list[bytes],
    *,
    size: int | None = None,
    sha256: str = "",
) -> artifacts_pb2.UploadArtifactResponse:
    header = artifacts_pb2.UploadHeader(run_id=run_id, path=path, sha256=sha256)
    if size is not None:
        header.size = size
    messages = [artifacts_pb2.UploadArtifactRequest(header=header)]
    messages += [artifacts_pb2.UploadArtifactRequest(chunk=c) for c in chunks]
    return stub.UploadArtifact(iter(messages))


def download(
    stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str, path: str, offset: int = 0, length: int = 0
) -> tuple[artifacts_pb2.FileInfo, bytes]:
    info = artifacts_pb2.FileInfo()
    data = bytearray()
    for i, message in enumerate(
        stub.DownloadArtifact(
            artifacts_pb2.DownloadArtifactRequest(run_id=run_id, path=path, offset=offset, length=length)
        )
    ):
        assert message.HasField("file") == (i == 0)
        if i == 0:
            info = message.file
        data += message.chunk
    return info, bytes(data)


def status(err: pytest.ExceptionInfo[grpc.RpcError]) -> tuple[grpc.StatusCode, str]:
    """The code and the field named in the BadRequest detail."""
    error = exceptions.from_rpc_error(err.value)
    return err.value.code(), error.field


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK_BYTES, 9 * CHUNK_BYTES + 17],  # the last: many chunks, and S3 multipart (8 MiB parts)
    ids=["empty", "one-byte", "exactly-one-chunk", "many-chunks"],
)
def test_round_trip_through_the_client(
    client: tracklane.Client, run_id: str, tmp_path: Path, size: int
) -> None:
    data = payload(size, size)
    local = tmp_path / "up" / "weights.bin"
    local.parent.mkdir()
    local.write_bytes(data)
    info = client.log_artifact(run_id, local, "model")
    assert (info.path, info.file_size, info.sha256) == ("model/weights.bin", size, sha(data))
    [listed] = client.list_artifacts(run_id, "model")
    assert (listed.path, listed.is_dir, listed.file_size, listed.sha256) == info_tuple(info)
    target = client.download_artifacts(run_id, "model/weights.bin", tmp_path / "down")
    assert target == str(tmp_path / "down" / "model" / "weights.bin")
    assert Path(target).read_bytes() == data
    assert not [p for p in (tmp_path / "down" / "model").iterdir() if p.name.startswith(".")]


def info_tuple(info: tracklane.artifacts.FileInfo) -> tuple[object, ...]:
    return info.path, info.is_dir, info.file_size, info.sha256


def test_nested_folders_and_unicode_names(client: tracklane.Client, run_id: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    files = {
        "a.txt": b"top",
        "plots/loss.png": b"png",
        "plots/deep/er/x.bin": payload(5000),
        "données/résumé ☃.txt": "é".encode(),
        "日本/ファイル.json": b"{}",
    }
    for rel, content in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(content)
    stored = client.log_artifacts(run_id, source, "out")
    assert sorted(f.path for f in stored) == sorted(f"out/{p}" for p in files)
    top = client.list_artifacts(run_id, "out")
    assert [(f.path, f.is_dir) for f in top] == [
        ("out/a.txt", False),
        ("out/données", True),
        ("out/plots", True),
        ("out/日本", True),
    ]
    everything = client.list_artifacts(run_id, "out", recursive=True)
    assert [f.path for f in everything] == sorted(f"out/{p}" for p in files)
    assert all(f.sha256 == sha(files[f.path[4:]]) for f in everything)
    local = client.download_artifacts(run_id, "out", tmp_path / "dst")
    for rel, content in files.items():
        assert (Path(local) / rel).read_bytes() == content
    whole = client.download_artifacts(run_id, dst_path=tmp_path / "all")
    assert (Path(whole) / "out" / "données" / "résumé ☃.txt").read_bytes() == "é".encode()


def test_download_resumes_from_an_offset(
    client: tracklane.Client, stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str
) -> None:
    data = payload(2 * DOWNLOAD_CHUNK_BYTES + 1000, 7)
    upload(stub, run_id, "ckpt.bin", [data[i : i + MiB] for i in range(0, len(data), MiB)])
    info, whole = download(stub, run_id, "ckpt.bin")
    assert whole == data
    assert (info.path, info.size, info.sha256) == ("ckpt.bin", len(data), sha(data))
    step = DOWNLOAD_CHUNK_BYTES
    for offset, length in [(1, 0), (step - 1, 3), (step + 5, 0), (step - 7, step + 9), (len(data) - 1, 10)]:
        _, part = download(stub, run_id, "ckpt.bin", offset, length)
        assert part == data[offset : offset + length if length else None]
    info, rest = download(stub, run_id, "ckpt.bin", len(data))
    assert (rest, info.size) == (b"", len(data))  # resuming a finished download is no error
    with pytest.raises(grpc.RpcError) as err:
        download(stub, run_id, "ckpt.bin", len(data) + 1)
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "offset")
    for field, request in [("offset", {"offset": -1}), ("length", {"length": -1})]:
        with pytest.raises(grpc.RpcError) as err:
            list(
                stub.DownloadArtifact(
                    artifacts_pb2.DownloadArtifactRequest(run_id=run_id, path="ckpt.bin", **request)
                )
            )
        assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, field)


@pytest.mark.parametrize("size", [10, 9 * MiB], ids=["small", "multipart"])
def test_checksum_or_size_mismatch_stores_nothing(
    client: tracklane.Client, stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str, size: int
) -> None:
    data = payload(size, 3)
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, size, CHUNK_BYTES)]
    cases = [
        ({"sha256": sha(b"other")}, "sha256"),
        ({"size": size + 1}, "size"),
        ({"size": size - 1}, "size"),
        ({"sha256": "not-hex"}, "sha256"),
    ]
    for declared, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            upload(stub, run_id, "bad.bin", chunks, **declared)  # type: ignore[arg-type]
        assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, field)
    assert client.list_artifacts(run_id) == []
    response = upload(stub, run_id, "good.bin", chunks, size=size, sha256=sha(data).upper())
    assert (response.file.size, response.file.sha256) == (size, sha(data))


BAD_PATHS = [
    "../escape",
    "a/../../escape",
    "..",
    "a/..",
    "./a",
    "a/./b",
    "/etc/passwd",
    "a//b",
    "nul\x00byte",
    "tab\tname",
    "x" * 256,
    "/".join(["abcdefgh"] * 120),
    "C:/windows",
    "a\\..\\b",
]


@pytest.mark.parametrize("bad", BAD_PATHS, ids=[repr(p)[:30] for p in BAD_PATHS])
def test_path_traversal_is_refused_everywhere(
    client: tracklane.Client, stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str, bad: str
) -> None:
    local = client.get_run(run_id).info.artifact_uri.startswith("file://")
    calls: dict[str, Callable[[], object]] = {
        "upload": lambda: upload(stub, run_id, bad, [b"x"]),
        "download": lambda: download(stub, run_id, bad),
        "list": lambda: stub.ListArtifacts(artifacts_pb2.ListArtifactsRequest(run_id=run_id, path=bad)),
        "delete": lambda: stub.DeleteArtifact(artifacts_pb2.DeleteArtifactRequest(run_id=run_id, path=bad)),
    }
    if not local:
        calls["presign-upload"] = lambda: stub.CreatePresignedUpload(
            artifacts_pb2.CreatePresignedUploadRequest(run_id=run_id, path=bad, size=1)
        )
        calls["presign-download"] = lambda: stub.GetPresignedDownload(
            artifacts_pb2.GetPresignedDownloadRequest(run_id=run_id, path=bad)
        )
    for name, call in calls.items():
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "path"), name
    assert client.list_artifacts(run_id, recursive=True) == []


def test_upload_temp_names_are_reserved_in_local_stores_only(
    client: tracklane.Client, stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str
) -> None:
    name = ".tracklane-upload-x"  # the local store writes its temporary files under this prefix
    if client.get_run(run_id).info.artifact_uri.startswith("file://"):
        with pytest.raises(grpc.RpcError) as err:
            upload(stub, run_id, name, [b"x"])
        assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "path")
        assert client.list_artifacts(run_id, recursive=True) == []
    else:  # an object store has no temporary files: the name is as good as any
        upload(stub, run_id, name, [b"x"])
        assert [f.path for f in client.list_artifacts(run_id, recursive=True)] == [name]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # symbolic links exist in local stores only
def test_symlink_escaping_a_local_root_is_refused(
    client: tracklane.Client, stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str, tmp_path: Path
) -> None:
    root_uri = client.get_run(run_id).info.artifact_uri
    assert root_uri.startswith("file://")
    root = Path(urlsplit(root_uri).path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root.mkdir(parents=True, exist_ok=True)
    (root / "link").symlink_to(outside)
    for call in (
        lambda: download(stub, run_id, "link/secret.txt"),
        lambda: upload(stub, run_id, "link/new.txt", [b"x"]),
        lambda: stub.DeleteArtifact(
            artifacts_pb2.DeleteArtifactRequest(run_id=run_id, path="link/secret.txt")
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "path")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_list_pages_and_delete(
    client: tracklane.Client, stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str
) -> None:
    names = [f"f{i:02d}.txt" for i in range(5)] + ["sub/x.txt", "sub/y.txt"]
    for name in names:
        upload(stub, run_id, name, [name.encode()])
    seen: list[str] = []
    token = ""
    while True:
        page = stub.ListArtifacts(
            artifacts_pb2.ListArtifactsRequest(run_id=run_id, page_size=2, page_token=token)
        )
        assert len(page.files) <= 2
        assert page.root_uri == client.get_run(run_id).info.artifact_uri
        seen += [f.path + ("/" if f.is_dir else "") for f in page.files]
        token = page.next_page_token
        if not token:
            break
    assert seen == [*names[:5], "sub/"]
    with pytest.raises(grpc.RpcError) as err:
        stub.ListArtifacts(
            artifacts_pb2.ListArtifactsRequest(run_id=run_id, recursive=True, page_token="junk")
        )
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "page_token")
    assert client.list_artifacts(run_id, "f00.txt") == []  # a file lists as empty
    with pytest.raises(exceptions.NotFound) as folder:
        client.read_artifact(run_id, "sub")  # a folder is no file
    assert folder.value.field == "path"
    client.delete_artifacts(run_id, "f00.txt")
    client.delete_artifacts(run_id, "sub")
    assert [f.path for f in client.list_artifacts(run_id, recursive=True)] == names[1:5]
    with pytest.raises(exceptions.NotFound):
        client.delete_artifacts(run_id, "sub")
    with pytest.raises(exceptions.NotFound):
        client.download_artifacts(run_id, "f00.txt")
    client.delete_artifacts(run_id)
    assert client.list_artifacts(run_id, recursive=True) == []


def test_missing_and_deleted_runs(
    client: tracklane.Client, stub: artifacts_pb2_grpc.ArtifactServiceStub
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        upload(stub, "0" * 32, "a.txt", [b"x"])
    assert status(err) == (grpc.StatusCode.NOT_FOUND, "run_id")
    with pytest.raises(grpc.RpcError) as err:
        stub.ListArtifacts(artifacts_pb2.ListArtifactsRequest(run_id=""))
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "run_id")
    run_id = client.create_run().info.run_id
    upload(stub, run_id, "kept.txt", [b"kept"])
    client.delete_run(run_id)
    for call in (
        lambda: upload(stub, run_id, "a.txt", [b"x"]),
        lambda: stub.DeleteArtifact(artifacts_pb2.DeleteArtifactRequest(run_id=run_id, path="kept.txt")),
        lambda: stub.CreatePresignedUpload(
            artifacts_pb2.CreatePresignedUploadRequest(run_id=run_id, path="a.txt", size=1)
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert status(err) == (grpc.StatusCode.FAILED_PRECONDITION, "run_id")
    assert download(stub, run_id, "kept.txt")[1] == b"kept"  # deleted runs stay readable
    client.restore_run(run_id)
    upload(stub, run_id, "a.txt", [b"x"])


def test_malformed_uploads(
    client: tracklane.Client, stub: artifacts_pb2_grpc.ArtifactServiceStub, run_id: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.UploadArtifact(iter([artifacts_pb2.UploadArtifactRequest(chunk=b"no header")]))
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "header")
    with pytest.raises(grpc.RpcError) as err:
        stub.UploadArtifact(iter([]))
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "header")
    header = artifacts_pb2.UploadHeader(run_id=run_id, path="twice.txt")
    with pytest.raises(grpc.RpcError) as err:
        stub.UploadArtifact(
            iter(
                [
                    artifacts_pb2.UploadArtifactRequest(header=header),
                    artifacts_pb2.UploadArtifactRequest(header=header),
                ]
            )
        )
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "header")
    with pytest.raises(grpc.RpcError) as err:
        upload(stub, run_id, "big-chunk.bin", [b"x" * (MAX_CHUNK_BYTES + 1)])
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "chunk")
    with pytest.raises(grpc.RpcError) as err:
        upload(stub, run_id, "", [b"x"])
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "path")
    assert client.list_artifacts(run_id, recursive=True) == []


def test_cancelled_upload_leaves_nothing(
    client: tracklane.Client,
    stub: artifacts_pb2_grpc.ArtifactServiceStub,
    run_id: str,
    request: pytest.FixtureRequest,
) -> None:
    sent = threading.Event()

    def messages() -> Iterator[artifacts_pb2.UploadArtifactRequest]:
        yield artifacts_pb2.UploadArtifactRequest(
            header=artifacts_pb2.UploadHeader(run_id=run_id, path="half.bin")
        )
        for i in range(6):  # 24 MiB: several multipart parts on S3
            yield artifacts_pb2.UploadArtifactRequest(chunk=payload(MAX_CHUNK_BYTES, i))
        sent.set()
        threading.Event().wait(10)  # then hang, as a stuck client would

    future = stub.UploadArtifact.future(messages())
    assert sent.wait(30)
    s3 = s3_location(client, run_id, request) if is_s3(client, run_id) else None
    if s3 is not None:
        for _ in range(100):  # the server has started the multipart upload
            if incomplete_uploads(*s3):
                break
            threading.Event().wait(0.1)
        assert incomplete_uploads(*s3)
    future.cancel()  # type: ignore[no-untyped-call]
    assert client.list_artifacts(run_id, recursive=True) == []
    if s3 is not None:
        assert_no_incomplete_uploads(*s3)


def s3_location(
    client: tracklane.Client, run_id: str, request: pytest.FixtureRequest
) -> tuple[Minio, str, str]:
    s3: S3Config = request.getfixturevalue("s3_service")
    parts = urlsplit(client.get_run(run_id).info.artifact_uri)
    host = urlsplit(s3.endpoint_url).netloc
    minio = Minio(host, s3.access_key_id, s3.secret_access_key, secure=s3.endpoint_url.startswith("https"))
    return minio, parts.netloc, parts.path.lstrip("/")


def incomplete_uploads(minio: Minio, bucket: str, prefix: str) -> list[str]:
    # MinIO lists uploads only for an exact key or the whole bucket: list all, filter.
    uploads = minio._list_multipart_uploads(bucket).uploads
    return [str(u.object_name) for u in uploads if str(u.object_name).startswith(prefix + "/")]


def assert_no_incomplete_uploads(minio: Minio, bucket: str, prefix: str) -> None:
    # The abort runs as the server notices the cancellation: give it a moment.
    for _ in range(50):
        left = incomplete_uploads(minio, bucket, prefix)
        if not left:
            return
        threading.Event().wait(0.1)
    raise AssertionError(f"incomplete multipart uploads left: {left}")


def test_direct_mode(
    client: tracklane.Client,
    stub: artifacts_pb2_grpc.ArtifactServiceStub,
    run_id: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    data = payload(9 * MiB + 3, 11)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    if not is_s3(client, run_id):
        with pytest.raises(grpc.RpcError) as err:
            stub.CreatePresignedUpload(
                artifacts_pb2.CreatePresignedUploadRequest(run_id=run_id, path="a", size=1)
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert exceptions.from_rpc_error(err.value).reason == "NO_DIRECT_MODE"
        # The client falls back to the server for local-folder roots.
        assert client.log_artifact(run_id, local, direct=True).file_size == len(data)
        assert (
            Path(client.download_artifacts(run_id, "big.bin", tmp_path / "d", direct=True)).read_bytes()
            == data
        )
        return
    info = client.log_artifact(run_id, local, "direct", direct=True)
    assert (info.path, info.file_size) == ("direct/big.bin", len(data))
    got = client.download_artifacts(run_id, "direct/big.bin", tmp_path / "d", direct=True)
    assert Path(got).read_bytes() == data
    assert download(stub, run_id, "direct/big.bin")[1] == data  # and through the server
    # A direct upload whose parts are never sent completes with an error and can be aborted.
    created = stub.CreatePresignedUpload(
        artifacts_pb2.CreatePresignedUploadRequest(run_id=run_id, path="never.bin", size=10)
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.CompletePresignedUpload(
            artifacts_pb2.CompletePresignedUploadRequest(
                run_id=run_id,
                path="never.bin",
                upload_id=created.upload_id,
                parts=[artifacts_pb2.CompletedPart(part_number=1, etag="x")],
            )
        )
    assert status(err) == (grpc.StatusCode.INVALID_ARGUMENT, "parts")
    stub.AbortPresignedUpload(
        artifacts_pb2.AbortPresignedUploadRequest(
            run_id=run_id, path="never.bin", upload_id=created.upload_id
        )
    )
    minio, bucket, prefix = s3_location(client, run_id, request)
    assert_no_incomplete_uploads(minio, bucket, prefix)
    with pytest.raises(grpc.RpcError) as err:
        stub.GetPresignedDownload(artifacts_pb2.GetPresignedDownloadRequest(run_id=run_id, path="never.bin"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_public_endpoint_for_presigned_urls(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    s3: S3Config = request.getfixturevalue("s3_service")
    # The same MinIO under another name: what clients use when they reach it by another address.
    public = s3.endpoint_url.replace("127.0.0.1", "localhost")
    assert public != s3.endpoint_url
    with (
        LocalServer(
            tmp_path,
            **s3.server_settings("public-endpoint"),
            s3_public_endpoint_url=public,
        ) as server,
        tracklane.Client(server.uri) as client,
    ):
        run_id = client.create_run().info.run_id
        local = tmp_path / "p.bin"
        local.write_bytes(b"public")
        client.log_artifact(run_id, local, direct=True)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = artifacts_pb2_grpc.ArtifactServiceStub(channel)
            url = stub.GetPresignedDownload(
                artifacts_pb2.GetPresignedDownloadRequest(run_id=run_id, path="p.bin")
            ).url
        assert urlsplit(url).hostname == "localhost"
        assert (
            Path(client.download_artifacts(run_id, "p.bin", tmp_path / "d", direct=True)).read_bytes()
            == b"public"
        )
