"""Artifact stores: one body over a local folder and MinIO (no mocks), plus store-specific cases."""

from __future__ import annotations

import hashlib
import os
import random
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from minio import Minio

from tests.conftest import S3Config
from tracklane.exceptions import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from tracklane_server.artifacts import (
    ArtifactStat,
    ArtifactStore,
    CompletedPart,
    LocalArtifactStore,
    S3ArtifactStore,
    open_store,
)
from tracklane_server.artifacts.local import TEMP_PREFIX
from tracklane_server.artifacts.s3_writer import PART_SIZE
from tracklane_server.artifacts.streaming import ChunkIterator

MiB = 1024 * 1024


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(
    store: ArtifactStore,
    path: str,
    data: bytes,
    chunk: int = 3 * MiB,
    *,
    size: int | None = None,
    sha256: str = "",
) -> ArtifactStat:
    with store.open_writer(path, size=size, sha256=sha256) as writer:
        for start in range(0, len(data), chunk):
            writer.write(data[start : start + chunk])
        return writer.commit()


def get(store: ArtifactStore, path: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join(store.read(path, offset, length))


def paths(entries: Iterator[ArtifactStat]) -> list[str]:
    return [entry.path + ("/" if entry.is_dir else "") for entry in entries]


def local_root(store: LocalArtifactStore) -> Path:
    return Path(urllib.request.url2pathname(urlsplit(store.root_uri).path))


def sha256_supported(store: ArtifactStore) -> bool:
    """Local stores keep SHA-256 in an extended attribute, which some file systems lack."""
    if not isinstance(store, LocalArtifactStore):
        return True
    probe = local_root(store) / ".xattr-probe"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.touch()
    try:
        os.setxattr(probe, "user.tracklane.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def incomplete_uploads(store: ArtifactStore, client: Minio | None) -> list[str]:
    """Keys of unfinished multipart uploads under the store's root (always [] for local stores)."""
    if not isinstance(store, S3ArtifactStore) or client is None:
        return []
    bucket, _, prefix = store.root_uri.removeprefix("s3://").partition("/")
    # MinIO lists uploads only for an exact key or the whole bucket, so list all and filter.
    uploads = client._list_multipart_uploads(bucket).uploads
    return [u.object_name for u in uploads if u.object_name.startswith(prefix + "/")]


@pytest.fixture
def store(artifact_store: ArtifactStore) -> ArtifactStore:
    """The empty store under test: a local folder or an S3 prefix (see conftest.artifact_store)."""
    return artifact_store


@pytest.fixture
def client(request: pytest.FixtureRequest, store: ArtifactStore) -> Minio | None:
    return request.getfixturevalue("s3_minio") if isinstance(store, S3ArtifactStore) else None


def assert_nothing_at(store: ArtifactStore, path: str, client: Minio | None) -> None:
    with pytest.raises(NotFound):
        store.stat(path)
    assert list(store.list("", recursive=True)) == []
    assert incomplete_uploads(store, client) == []
    if isinstance(store, LocalArtifactStore):
        root = local_root(store)
        assert not root.exists() or [p.name for p in root.rglob("*") if p.is_file()] == []


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "declare"),
    [
        (0, False),
        (1, False),
        (1, True),
        (PART_SIZE - 1, True),
        (PART_SIZE, False),  # exactly one part: a multipart upload of one part
        (PART_SIZE + 1, False),
        (20 * MiB, False),  # many parts; SHA-256 learnt at the end
        (20 * MiB, True),  # many parts; SHA-256 declared up front
    ],
)
def test_round_trip(store: ArtifactStore, client: Minio | None, size: int, declare: bool) -> None:
    data = payload(size, seed=size)
    written = put(
        store, "dir/file.bin", data, size=size if declare else None, sha256=sha(data) if declare else ""
    )
    assert (written.path, written.is_dir, written.size, written.sha256) == (
        "dir/file.bin",
        False,
        size,
        sha(data),
    )
    assert written.modify_time_ms > 0
    assert get(store, "dir/file.bin") == data
    stat = store.stat("dir/file.bin")
    assert (stat.path, stat.size) == ("dir/file.bin", size)
    assert stat.sha256 == (sha(data) if sha256_supported(store) else "")
    assert abs(stat.modify_time_ms - written.modify_time_ms) < 5_000
    assert list(store.list("dir")) == [stat]
    assert incomplete_uploads(store, client) == []


def test_chunks_of_any_size_and_uppercase_sha256(store: ArtifactStore) -> None:
    data = payload(PART_SIZE * 2 + 12345)
    with store.open_writer("x.bin", size=len(data), sha256=sha(data).upper()) as writer:
        position = 0
        for step in [0, 1, 7, MiB - 1, 5 * MiB + 3, 11 * MiB, 10 * MiB]:
            writer.write(data[position : position + step])
            position += step
        writer.write(data[position:])
        assert writer.bytes_written == len(data)
        writer.commit()
    assert get(store, "x.bin") == data


def test_overwrite_replaces_content(store: ArtifactStore) -> None:
    put(store, "model.pt", b"old")
    put(store, "model.pt", b"new content")
    assert get(store, "model.pt") == b"new content"
    assert store.stat("model.pt").size == len(b"new content")


def test_nested_folders_and_unicode_names(store: ArtifactStore) -> None:
    names = ["a/b/c.txt", "a/b/d.txt", "a/e.txt", "a-b.txt", "f.txt", "ünï/中文 名.txt", "z/ 🚀.json"]
    for name in names:
        put(store, name, name.encode())
    for name in names:
        assert get(store, name) == name.encode()
    # Key order: a folder sorts as its path plus '/', so 'a-b.txt' ('-' < '/') comes before 'a/'.
    assert paths(store.list()) == ["a-b.txt", "a/", "f.txt", "z/", "ünï/"]
    assert paths(store.list("", recursive=True)) == [
        "a-b.txt",
        "a/b/c.txt",
        "a/b/d.txt",
        "a/e.txt",
        "f.txt",
        "z/ 🚀.json",
        "ünï/中文 名.txt",
    ]
    assert paths(store.list("a")) == ["a/b/", "a/e.txt"]
    assert paths(store.list("a/", recursive=True)) == ["a/b/c.txt", "a/b/d.txt", "a/e.txt"]
    assert paths(store.list("ünï")) == ["ünï/中文 名.txt"]
    assert all(not entry.is_dir and entry.size > 0 for entry in store.list("", recursive=True))
    folder = next(entry for entry in store.list() if entry.is_dir)
    assert (folder.size, folder.sha256) == (0, "")
    # A file, or a folder that does not exist, lists as empty.
    assert list(store.list("f.txt")) == []
    assert list(store.list("nope", recursive=True)) == []


def test_list_resumes_after_a_cursor(store: ArtifactStore) -> None:
    for name in ["a-b.txt", "a/b/c.txt", "a/b/d.txt", "a/e.txt", "f.txt"]:
        put(store, name, b"x")
    everything = list(store.list("", recursive=True))
    for index, entry in enumerate(everything):
        assert list(store.list("", recursive=True, start_after=entry.sort_key)) == everything[index + 1 :]
    level = list(store.list())
    for index, entry in enumerate(level):
        assert list(store.list(start_after=entry.sort_key)) == level[index + 1 :]
    assert paths(store.list("", recursive=True, start_after="a/b/")) == [
        "a/b/c.txt",
        "a/b/d.txt",
        "a/e.txt",
        "f.txt",
    ]


def test_large_folder_lists_in_key_order_across_pages(store: ArtifactStore) -> None:
    # Over one S3 listing page (1,000), files and folders interleaved.
    count = 1100
    for i in range(count):
        put(store, f"k{i:04d}.txt" if i % 2 else f"k{i:04d}/x", b"")
    expected = [f"k{i:04d}.txt" if i % 2 else f"k{i:04d}/" for i in range(count)]
    assert paths(store.list()) == expected
    assert paths(store.list(start_after="k0999.txt"))[:2] == ["k1000/", "k1001.txt"]
    assert len(list(store.list("", recursive=True))) == count


def test_key_order_merge_of_listing_pages() -> None:
    from tracklane_server.artifacts.s3 import _in_key_order

    def page(files: list[str], folders: list[str]) -> list[ArtifactStat]:
        return [ArtifactStat(f) for f in files] + [ArtifactStat(f, is_dir=True) for f in folders]

    pages = [
        *page(["a", "c"], ["b", "d"]),
        *page(["e", "g"], []),
        *page([], ["h", "i"]),
        *page(["j"], ["i0"]),
        *page(["k"], ["j0"]),
    ]
    merged = [entry.sort_key for entry in _in_key_order(iter(pages)) if entry is not None]
    assert merged == sorted(merged)
    assert len(merged) == len(pages)
    many = [ArtifactStat(f"f{i:05d}") for i in range(5000)]
    stream = _in_key_order(iter(many))
    assert [next(stream) for _ in range(4001)] == many[:4001]  # streamed, not held to the end


# --- reads with offset and length ---------------------------------------------------------------


def test_read_ranges_resume(store: ArtifactStore) -> None:
    data = payload(PART_SIZE + 1000)
    put(store, "big.bin", data)
    size = len(data)
    for offset, length in [
        (0, None),
        (1, None),
        (PART_SIZE - 10, 20),
        (size - 1, None),
        (5, 0),
        (0, size + 99),
    ]:
        assert (
            get(store, "big.bin", offset, length)
            == data[offset : None if length is None else offset + length]
        )
    # Resuming at the very end is an empty read, not an error.
    assert get(store, "big.bin", size) == b""
    # An interrupted download resumes from where it stopped.
    first = b""
    for chunk in store.read("big.bin", chunk_size=MiB):
        first += chunk
        if len(first) >= 3 * MiB:
            break
    assert first + get(store, "big.bin", len(first)) == data
    chunks = list(store.read("big.bin", 10, 3 * MiB, chunk_size=MiB))
    assert [len(c) for c in chunks] == [MiB, MiB, MiB]
    with pytest.raises(InvalidArgument) as info:
        store.read("big.bin", size + 1)
    assert info.value.field == "offset"
    with pytest.raises(InvalidArgument) as info:
        store.read("big.bin", -1)
    assert info.value.field == "offset"


def test_read_of_empty_file(store: ArtifactStore) -> None:
    put(store, "empty", b"")
    assert get(store, "empty") == b""
    assert get(store, "empty", 0, 10) == b""
    with pytest.raises(InvalidArgument):
        store.read("empty", 1)


def test_unread_download_releases_its_resources(store: ArtifactStore) -> None:
    put(store, "f", payload(3 * MiB))
    for _ in range(30):  # more than any connection pool: leaked connections would block or warn
        stream = store.read("f", chunk_size=MiB)
        del stream
    stream = store.read("f")
    next(stream)
    assert isinstance(stream, ChunkIterator)
    stream.close()
    assert list(stream) == []
    assert get(store, "f", 0, 1) == payload(3 * MiB)[:1]


# --- verification, abort: nothing visible ------------------------------------------------------


@pytest.mark.parametrize("size", [10, 20 * MiB])
@pytest.mark.parametrize("mismatch", ["smaller", "larger", "sha256"])
def test_declared_size_or_sha256_mismatch_stores_nothing(
    store: ArtifactStore, client: Minio | None, size: int, mismatch: str
) -> None:
    data = payload(size)
    declared_size, declared_sha256 = {
        "smaller": (size - 1, ""),
        "larger": (size + 1, ""),
        "sha256": (size, sha(data + b"!")),
    }[mismatch]
    with pytest.raises(InvalidArgument) as info:
        put(store, "dir/x.bin", data, size=declared_size, sha256=declared_sha256)
    assert info.value.field == ("sha256" if mismatch == "sha256" else "size")
    assert_nothing_at(store, "dir/x.bin", client)


def test_mismatch_keeps_the_previous_version(store: ArtifactStore) -> None:
    put(store, "x", b"good")
    with pytest.raises(InvalidArgument):
        put(store, "x", payload(PART_SIZE * 2), size=1)
    assert get(store, "x") == b"good"


@pytest.mark.parametrize("size", [0, 100, 20 * MiB])
def test_abort_leaves_nothing(store: ArtifactStore, client: Minio | None, size: int) -> None:
    writer = store.open_writer("a/b/c.bin")
    writer.write(payload(size))
    if isinstance(store, LocalArtifactStore):
        # In progress: the temporary file is hidden from listings.
        assert list(store.list("", recursive=True)) == []
    writer.abort()
    writer.abort()  # idempotent
    assert_nothing_at(store, "a/b/c.bin", client)
    with pytest.raises(FailedPrecondition):
        writer.write(b"more")
    with pytest.raises(FailedPrecondition):
        writer.commit()


def test_context_manager_aborts_on_error_and_without_commit(
    store: ArtifactStore, client: Minio | None
) -> None:
    def client_goes_away() -> None:
        with store.open_writer("x.bin") as writer:
            writer.write(payload(PART_SIZE + 5))
            raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        client_goes_away()
    with store.open_writer("y.bin") as writer:
        writer.write(b"never committed")
    assert_nothing_at(store, "x.bin", client)
    assert_nothing_at(store, "y.bin", client)


def test_invalid_declarations(store: ArtifactStore) -> None:
    with pytest.raises(InvalidArgument) as info:
        store.open_writer("x", size=-1)
    assert info.value.field == "size"
    with pytest.raises(InvalidArgument) as info:
        store.open_writer("x", sha256="abc")
    assert info.value.field == "sha256"


# --- stat, delete, not found ----------------------------------------------------------------------


def test_stat(store: ArtifactStore) -> None:
    put(store, "a/b/c.txt", b"abc")
    assert store.stat("a") == ArtifactStat("a", is_dir=True, modify_time_ms=store.stat("a").modify_time_ms)
    assert store.stat("a/b/").is_dir
    assert store.stat("").is_dir
    assert store.stat("a/b/c.txt").size == 3
    for missing in ["nope", "a/nope", "a/b/c.txt/d", "a/b/c"]:
        with pytest.raises(NotFound):
            store.stat(missing)


def test_not_found(store: ArtifactStore) -> None:
    put(store, "dir/file", b"x")
    for path in ["missing", "dir/missing", "dir", "dir/file/below"]:
        with pytest.raises(NotFound):
            store.read(path)
    with pytest.raises(NotFound):
        store.delete("missing")
    with pytest.raises(NotFound):
        store.delete("dir/file/below")


def test_delete_file_folder_and_root(store: ArtifactStore) -> None:
    for name in ["a/b/c.txt", "a/b/d.txt", "a/e.txt", "a-b.txt", "f.txt"]:
        put(store, name, b"x")
    assert store.delete("a/e.txt") == 1
    assert store.delete("a/b") == 2
    # Emptied folders disappear, as on S3 where folders are only key prefixes.
    assert paths(store.list()) == ["a-b.txt", "f.txt"]
    with pytest.raises(NotFound):
        store.delete("a")
    assert store.delete("") == 2
    assert list(store.list("", recursive=True)) == []
    assert store.delete("") == 0


# --- path safety --------------------------------------------------------------------------------

BAD_PATHS = [
    "../x",
    "a/../../x",
    "/etc/passwd",
    "\\\\server\\share",
    "C:\\x",
    "C:/x",
    "a//b",
    "a/./b",
    "a\x00b",
]


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_bad_paths_rejected_everywhere(store: ArtifactStore, bad: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.open_writer(bad),
        lambda: store.read(bad),
        lambda: store.stat(bad),
        lambda: list(store.list(bad)),
        lambda: store.delete(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument) as info:
            call()
        assert info.value.field == "path"


def test_empty_path_only_where_it_means_the_root(store: ArtifactStore) -> None:
    with pytest.raises(InvalidArgument):
        store.open_writer("")
    with pytest.raises(InvalidArgument):
        store.read("")


# --- S3 only: bucket creation, direct (presigned) transfers ---------------------------------------

StoreAt = Callable[[str], ArtifactStore]


def http(method: str, url: str, data: bytes | None = None) -> tuple[bytes, str]:
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:  # loopback MinIO only
        return response.read(), response.headers.get("ETag", "")


def test_ensure_ready_creates_a_missing_bucket(
    s3_minio: Minio, s3_store_at: StoreAt, fresh_bucket: str
) -> None:
    store = s3_store_at(f"{fresh_bucket}/prefix")
    assert store.root_uri == f"s3://{fresh_bucket}/prefix"
    assert not s3_minio.bucket_exists(fresh_bucket)
    store.ensure_ready()
    assert s3_minio.bucket_exists(fresh_bucket)
    store.ensure_ready()  # idempotent
    put(store, "x", b"x")
    assert s3_minio.get_object(fresh_bucket, "prefix/x").data == b"x"


def test_writes_to_a_missing_bucket_fail_cleanly(s3_store_at: StoreAt, fresh_bucket: str) -> None:
    store = s3_store_at(f"{fresh_bucket}/p")
    with pytest.raises(FailedPrecondition, match="does not exist"):
        put(store, "x", b"x")
    with pytest.raises(FailedPrecondition):
        put(store, "x", payload(PART_SIZE + 1))


def test_whole_bucket_root(s3_store_at: StoreAt, fresh_bucket: str) -> None:
    store = s3_store_at(fresh_bucket)
    assert store.root_uri == f"s3://{fresh_bucket}"
    store.ensure_ready()
    put(store, "a/b", b"1")
    assert paths(store.list()) == ["a/"]
    assert store.delete("") == 1


@pytest.mark.parametrize("size", [0, 5, PART_SIZE, 2 * PART_SIZE + 3])
@pytest.mark.parametrize("declare_sha256", [True, False])
def test_presigned_upload_and_download(
    s3_minio: Minio, s3_store_at: StoreAt, s3_service: S3Config, size: int, declare_sha256: bool
) -> None:
    store = s3_store_at(f"{s3_service.bucket}/{uuid.uuid4().hex[:8]}")
    store.ensure_ready()
    data = payload(size, seed=size)
    upload = store.create_presigned_upload("dir/direct.bin", size, sha256=sha(data) if declare_sha256 else "")
    assert [(p.part_number, p.offset, p.length) for p in upload.parts] == [
        (n + 1, n * PART_SIZE, min(PART_SIZE, size - n * PART_SIZE))
        for n in range(max(1, -(-size // PART_SIZE)))
    ]
    # Nothing is visible until the server completes the upload.
    for part in upload.parts:
        http("PUT", part.url, data[part.offset : part.offset + part.length])
    assert list(store.list("", recursive=True)) == []
    etags = [
        CompletedPart(p.part_number, http("PUT", p.url, data[p.offset : p.offset + p.length])[1])
        for p in upload.parts
    ]
    stat = store.complete_presigned_upload("dir/direct.bin", upload.upload_id, list(reversed(etags)))
    assert (stat.size, stat.sha256) == (size, sha(data) if declare_sha256 else "")
    assert get(store, "dir/direct.bin") == data
    assert incomplete_uploads(store, s3_minio) == []
    body, _ = http("GET", store.presign_get("dir/direct.bin", timedelta(minutes=5)))
    assert body == data


def test_presigned_upload_part_plan_for_large_files() -> None:
    from tracklane_server.artifacts.s3_presign import plan_parts

    assert len(plan_parts(1024 * MiB)) == 128
    assert plan_parts(1024 * MiB)[-1] == (128, 127 * PART_SIZE, PART_SIZE)
    assert len(plan_parts(500 * 1024 * MiB)) == 1000
    assert len(plan_parts(501 * 1024 * MiB)) == 1002
    huge = plan_parts(5 * 1024 * 1024 * MiB)
    assert len(huge) <= 10_000
    assert all(length >= 5 * MiB for _, _, length in huge[:-1])
    assert sum(length for _, _, length in huge) == 5 * 1024 * 1024 * MiB
    with pytest.raises(InvalidArgument):
        plan_parts(5 * 1024 * 1024 * MiB + 1)


def test_presigned_upload_mismatches(s3_minio: Minio, s3_store_at: StoreAt, s3_service: S3Config) -> None:
    store = s3_store_at(f"{s3_service.bucket}/{uuid.uuid4().hex[:8]}")
    data = payload(100)

    def start(path: str, size: int = 100, sha256: str = "") -> tuple[str, CompletedPart]:
        upload = store.create_presigned_upload(path, size, sha256=sha256)
        (part,) = upload.parts
        return upload.upload_id, CompletedPart(1, http("PUT", part.url, data)[1])

    # Wrong or missing parts: refused, the upload stays open so the client can fix it.
    upload_id, part = start("a")
    for bad in [[], [part, part], [CompletedPart(2, part.etag)], [CompletedPart(1, '"0123"')]]:
        with pytest.raises(InvalidArgument) as info:
            store.complete_presigned_upload("a", upload_id, bad)
        assert info.value.field == "parts"
    assert store.complete_presigned_upload("a", upload_id, [part]).size == 100
    # Size mismatch: aborted, nothing visible.
    upload_id, part = start("b", size=99)
    with pytest.raises(InvalidArgument) as info:
        store.complete_presigned_upload("b", upload_id, [part])
    assert info.value.field == "size"
    with pytest.raises(NotFound):
        store.stat("b")
    with pytest.raises(NotFound):
        store.complete_presigned_upload("b", upload_id, [part])
    # SHA-256 mismatch: found after completion, the object is deleted again.
    upload_id, part = start("c", sha256=sha(b"other"))
    with pytest.raises(InvalidArgument) as info:
        store.complete_presigned_upload("c", upload_id, [part])
    assert info.value.field == "sha256"
    with pytest.raises(NotFound):
        store.stat("c")
    # Abort frees the parts; aborting twice is fine.
    upload_id, part = start("d")
    store.abort_presigned_upload("d", upload_id)
    store.abort_presigned_upload("d", upload_id)
    with pytest.raises(NotFound):
        store.complete_presigned_upload("d", upload_id, [part])
    assert paths(store.list()) == ["a"]
    assert incomplete_uploads(store, s3_minio) == []
    for bad_id in ["", "nope", "x.abc", "12."]:
        with pytest.raises(InvalidArgument) as info:
            store.complete_presigned_upload("a", bad_id, [part])
        assert info.value.field == "upload_id"
    with pytest.raises(InvalidArgument) as info:
        store.presign_get("a", timedelta(days=8))
    assert info.value.field == "expires"


def test_s3_sha256_tag_of_replaced_content_reads_as_unknown(
    s3_minio: Minio, s3_store_at: StoreAt, s3_service: S3Config
) -> None:
    from minio.commonconfig import Tags

    prefix = uuid.uuid4().hex[:8]
    store = s3_store_at(f"{s3_service.bucket}/{prefix}")
    data = payload(PART_SIZE + 1)
    assert put(store, "big", data).sha256 == sha(data)  # undeclared multipart: hash kept in a tag
    assert store.stat("big").sha256 == sha(data)
    assert [entry.sha256 for entry in store.list()] == [sha(data)]
    # Another writer's content with our (now stale) tag on it: unknown, never wrong.
    tags = Tags.new_object_tags()
    tags["tracklane-sha256"] = f"{sha(data)}.0123456789abcdef0123456789abcdef-2"
    s3_minio.set_object_tags(s3_service.bucket, f"{prefix}/big", tags)
    assert store.stat("big").sha256 == ""
    assert [entry.sha256 for entry in store.list()] == [""]


def test_s3_key_length_includes_the_prefix(s3_store_at: StoreAt, s3_service: S3Config) -> None:
    store = s3_store_at(f"{s3_service.bucket}/{'p' * 200}")
    path = "/".join(["x" * 200] * 5)  # 1004 bytes: a valid path, but with the prefix over 1024
    with pytest.raises(InvalidArgument) as info:
        store.open_writer(path)
    assert info.value.field == "path"


def test_stores_share_one_client_per_endpoint_and_key(s3_store_at: StoreAt, s3_service: S3Config) -> None:
    first = s3_store_at(f"{s3_service.bucket}/1/a/artifacts")
    second = s3_store_at(f"{s3_service.bucket}/2/b/artifacts")
    assert isinstance(first, S3ArtifactStore)
    assert isinstance(second, S3ArtifactStore)
    assert first._client is second._client


# --- S3 unreachable or misconfigured ------------------------------------------------------------


def test_unreachable_endpoint_is_unavailable() -> None:
    store = open_store(
        "s3://bucket/prefix",
        s3_endpoint_url="http://127.0.0.1:1",
        s3_access_key_id="AKIAEXAMPLE",
        s3_secret_access_key="very-secret-value",
    )
    calls: list[Callable[[], object]] = [
        store.ensure_ready,
        lambda: store.stat("x"),
        lambda: store.read("x"),
        lambda: list(store.list()),
        lambda: store.delete("x"),
        lambda: put(store, "x", b"x"),
        lambda: put(store, "x", payload(PART_SIZE + 1)),
        lambda: store.presign_get("x"),
    ]
    for call in calls:
        with pytest.raises(Unavailable) as info:
            call()
        message = str(info.value)
        assert "127.0.0.1:1" in message
        assert "\n" not in message
        assert "very-secret-value" not in message
        assert "AKIAEXAMPLE" not in message


def test_wrong_credentials_are_unavailable(s3_service: S3Config) -> None:
    store = open_store(
        f"s3://{s3_service.bucket}/p",
        s3_endpoint_url=s3_service.endpoint_url,
        s3_access_key_id=s3_service.access_key_id,
        s3_secret_access_key="wrong-secret-value",
    )
    with pytest.raises(Unavailable, match="credentials") as info:
        store.ensure_ready()
    assert "wrong-secret-value" not in str(info.value)


# --- local only: no direct mode, symbolic links ----------------------------------------------------


def test_local_store_has_no_direct_mode(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    assert not store.supports_presign
    calls: list[Callable[[], object]] = [
        lambda: store.presign_get("x"),
        lambda: store.create_presigned_upload("x", 1),
        lambda: store.complete_presigned_upload("x", "1.id", []),
        lambda: store.abort_presigned_upload("x", "1.id"),
    ]
    for call in calls:
        with pytest.raises(FailedPrecondition):
            call()


@pytest.fixture
def escape(tmp_path: Path) -> tuple[LocalArtifactStore, Path]:
    """A local root with links leading out of it (to ``outside``) and one staying inside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret").write_bytes(b"secret")
    (outside / "sub" / "deep").write_bytes(b"deep")
    (root / "inside").mkdir(parents=True)
    (root / "inside" / "ok.txt").write_bytes(b"ok")
    (root / "out-dir").symlink_to(outside, target_is_directory=True)
    (root / "out-file").symlink_to(outside / "secret")
    (root / "relative").symlink_to("../outside/secret")
    (root / "in-dir").symlink_to(root / "inside", target_is_directory=True)
    (root / "in-file").symlink_to("inside/ok.txt")
    store = open_store(root.as_uri())
    assert isinstance(store, LocalArtifactStore)
    return store, outside


ESCAPING = ["out-dir", "out-dir/secret", "out-dir/sub/deep", "out-file", "relative"]
INSIDE_LINKS = ["in-dir", "in-dir/ok.txt", "in-file"]
OPERATIONS: dict[str, Callable[[ArtifactStore, str], object]] = {
    "read": lambda store, path: store.read(path),
    "stat": lambda store, path: store.stat(path),
    "list": lambda store, path: list(store.list(path, recursive=True)),
    "delete": lambda store, path: store.delete(path),
    "write": lambda store, path: put(store, path, b"x"),
    "write below": lambda store, path: put(store, f"{path}/new", b"x"),
}


def tree(folder: Path) -> list[tuple[str, bytes]]:
    return sorted(
        (str(p.relative_to(folder)), p.read_bytes() if p.is_file() and not p.is_symlink() else b"")
        for p in folder.rglob("*")
    )


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("path", ESCAPING + INSIDE_LINKS)
def test_symlinks_are_never_followed(
    escape: tuple[LocalArtifactStore, Path], path: str, operation: str
) -> None:
    # Following a link only when it stays inside would need a check before the use: a race. So
    # no link is followed, wherever it leads.
    store, outside = escape
    before = tree(outside), tree(outside.parent / "root")
    with pytest.raises(InvalidArgument, match="symbolic link") as info:
        OPERATIONS[operation](store, path)
    assert info.value.field == "path"
    assert (tree(outside), tree(outside.parent / "root")) == before


def test_symlinks_are_not_listed(escape: tuple[LocalArtifactStore, Path]) -> None:
    store, _ = escape
    assert paths(store.list()) == ["inside/"]
    assert paths(store.list("", recursive=True)) == ["inside/ok.txt"]
    assert get(store, "inside/ok.txt") == b"ok"


def test_a_link_on_the_way_to_the_root_is_refused(tmp_path: Path) -> None:
    # The run's own folder swapped for a link (the race of the fault suite, frozen in place).
    base, outside = tmp_path / "base", tmp_path / "outside"
    (outside / "artifacts").mkdir(parents=True)
    (outside / "artifacts" / "secret").write_bytes(b"secret")
    base.mkdir()
    (base / "run").symlink_to(outside, target_is_directory=True)
    store = open_store((base / "run" / "artifacts").as_uri(), local_base=str(base))
    for call in (
        lambda: store.read("secret"),
        lambda: store.stat("secret"),
        lambda: list(store.list()),
        lambda: store.delete("secret"),
        lambda: put(store, "new", b"x"),
    ):
        with pytest.raises(FailedPrecondition, match="symbolic link"):
            call()
    assert sorted(p.name for p in (outside / "artifacts").iterdir()) == ["secret"]


def test_links_in_the_configured_root_itself_are_the_operators(tmp_path: Path) -> None:
    # /data -> /mnt/disk is how operators place data: the configured root's own path may use links.
    (tmp_path / "disk").mkdir()
    (tmp_path / "data").symlink_to(tmp_path / "disk", target_is_directory=True)
    base = tmp_path / "data" / "artifacts"
    store = open_store((base / "1" / "run" / "artifacts").as_uri(), local_base=str(base))
    store.ensure_ready()
    put(store, "a/b.txt", b"x")
    assert get(store, "a/b.txt") == b"x"
    assert (tmp_path / "disk" / "artifacts" / "1" / "run" / "artifacts" / "a" / "b.txt").read_bytes() == b"x"


def test_local_paths_that_cannot_be_files(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    put(store, "file", b"x")
    put(store, "dir/x", b"x")
    with pytest.raises(InvalidArgument):
        put(store, "file/below", b"x")
    with pytest.raises(InvalidArgument):
        put(store, "dir", b"x")
    with pytest.raises(InvalidArgument, match="reserved"):
        store.open_writer(f"{TEMP_PREFIX}x")
    assert paths(store.list("", recursive=True)) == ["dir/x", "file"]


def test_local_files_written_by_other_tools(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    (tmp_path / "plain.txt").write_bytes(b"hello")
    assert store.stat("plain.txt").sha256 == ""  # unknown, not wrong
    put(store, "tracked.txt", b"hello")
    if sha256_supported(store):
        assert store.stat("tracked.txt").sha256 == sha(b"hello")
    with (tmp_path / "tracked.txt").open("ab") as file:
        file.write(b" world")
    os.utime(tmp_path / "tracked.txt", ns=(1, 1))
    assert store.stat("tracked.txt").sha256 == ""  # changed behind our back: no stale hash


def test_local_ensure_ready_creates_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    store = open_store(root.as_uri())
    assert store.root_uri == root.as_uri()
    store.ensure_ready()
    assert root.is_dir()
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(Unavailable):
        open_store((tmp_path / "file" / "below").as_uri()).ensure_ready()


# --- open_store ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "relative/folder",
        "/abs/folder",
        "http://example.com/x",
        "gs://bucket/x",
        "file://host/folder",
        "file:relative",
        "s3://",
        "s3://Bad_Bucket/x",
        "s3://bucket/../x",
        "s3://bucket//x",
        "s3://bucket/x?y=1",
    ],
)
def test_open_store_rejects_bad_uris(uri: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        open_store(uri)
    assert info.value.field == "artifact_uri"


def test_open_store_never_echoes_credentials() -> None:
    for uri in ["s3://AKIAKEY:secretvalue@bucket/x", "ftp://user:secretvalue@host/x"]:
        with pytest.raises(InvalidArgument) as info:
            open_store(uri)
        assert "secretvalue" not in str(info.value)
    for endpoint in ["http://key:secretvalue@127.0.0.1:9000", "127.0.0.1:9000", "http://h:9000/path"]:
        with pytest.raises(InvalidArgument) as info:
            open_store("s3://bucket/x", s3_endpoint_url=endpoint)
        assert info.value.field == "s3_endpoint_url"
        assert "secretvalue" not in str(info.value)


def test_open_store_uris(tmp_path: Path) -> None:
    folder = tmp_path / "with space"
    local = open_store(folder.as_uri())
    assert isinstance(local, LocalArtifactStore)
    assert local.root_uri == folder.as_uri()
    s3 = open_store("s3://bucket/some/prefix/", s3_endpoint_url="http://127.0.0.1:9")
    assert isinstance(s3, S3ArtifactStore)
    assert s3.root_uri == "s3://bucket/some/prefix"
    assert s3.supports_presign
