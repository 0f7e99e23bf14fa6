"""``abort_stale_uploads``: what a killed server left is removed once old enough, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio import Minio

from tests.backend.test_artifact_stores import get, incomplete_uploads, local_root, payload, put
from tracklane_server.artifacts import ArtifactStore, LocalArtifactStore, S3ArtifactStore
from tracklane_server.artifacts.local import TEMP_PREFIX
from tracklane_server.artifacts.s3_writer import PART_SIZE

LONG_AGO = timedelta(hours=1)


@pytest.fixture
def store(artifact_store: ArtifactStore) -> ArtifactStore:
    """An empty local folder or S3 prefix (see conftest.artifact_store)."""
    return artifact_store


@pytest.fixture
def client(request: pytest.FixtureRequest, store: ArtifactStore) -> Minio | None:
    return request.getfixturevalue("s3_minio") if isinstance(store, S3ArtifactStore) else None


def unfinished(store: ArtifactStore, client: Minio | None) -> list[str]:
    """Multipart uploads (S3) or temporary files (local) under the store's root."""
    if isinstance(store, LocalArtifactStore):
        root = local_root(store)
        return sorted(str(p.relative_to(root)) for p in root.rglob(f"{TEMP_PREFIX}*"))
    return incomplete_uploads(store, client)


def test_only_uploads_older_than_the_cutoff_are_removed(store: ArtifactStore, client: Minio | None) -> None:
    kept = put(store, "done/model.bin", payload(PART_SIZE + 5, 1))
    # A writer never committed nor aborted: what a server killed mid-upload leaves.
    writer = store.open_writer("ckpt/partial.bin")
    writer.write(payload(PART_SIZE + 1, 2))  # past one part: S3 has begun a multipart upload
    assert len(unfinished(store, client)) == 1

    # Begun after the cutoff: an upload that may still be under way, left alone.
    assert store.abort_stale_uploads(datetime.now(UTC) - LONG_AGO) == 0
    assert len(unfinished(store, client)) == 1

    assert store.abort_stale_uploads(datetime.now(UTC) + timedelta(minutes=1)) == 1
    assert unfinished(store, client) == []
    writer.abort()  # the owner giving up afterwards is harmless
    assert [e.path for e in store.list("", recursive=True)] == ["done/model.bin"]
    assert get(store, "done/model.bin") == payload(PART_SIZE + 5, 1)
    assert store.stat("done/model.bin") == kept
    # Nothing left to do: a second pass removes nothing.
    assert store.abort_stale_uploads(datetime.now(UTC) + timedelta(minutes=1)) == 0


def test_a_root_that_does_not_exist_yet_sweeps_nothing(store: ArtifactStore) -> None:
    assert store.abort_stale_uploads(datetime.now(UTC)) == 0


def test_local_temporary_files_in_nested_folders_are_found(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    writers = [store.open_writer(path) for path in ("a.bin", "deep/er/b.bin")]
    for writer in writers:
        writer.write(b"partial")
    assert len(unfinished(store, None)) == 2
    assert store.abort_stale_uploads(datetime.now(UTC) + timedelta(minutes=1)) == 2
    assert unfinished(store, None) == []
    for writer in writers:
        writer.abort()
