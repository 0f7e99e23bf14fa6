"""Backend fixtures: artifact stores over a local folder and over MinIO (one test body, both stores)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from minio import Minio

from tests.conftest import S3Config
from tracklane_server.artifacts import ArtifactStore, open_store


def _remove_bucket(client: Minio, bucket: str) -> None:
    """Empties (objects and unfinished uploads) and removes a bucket, if it exists."""
    if not client.bucket_exists(bucket):
        return
    for upload in client._list_multipart_uploads(bucket).uploads:
        client._abort_multipart_upload(bucket, upload.object_name, str(upload.upload_id))
    for obj in client.list_objects(bucket, recursive=True):
        client.remove_object(bucket, str(obj.object_name))
    client.remove_bucket(bucket)


@pytest.fixture(scope="session")
def s3_minio(s3_service: S3Config) -> Iterator[Minio]:
    """A plain minio client on the test MinIO, to check what stores leave behind.

    Removes the session's bucket at the end.
    """
    host = s3_service.endpoint_url.split("://", 1)[-1].rstrip("/")
    client = Minio(
        host,
        s3_service.access_key_id,
        s3_service.secret_access_key,
        secure=s3_service.endpoint_url.startswith("https://"),
    )
    yield client
    _remove_bucket(client, s3_service.bucket)


@pytest.fixture
def fresh_bucket(s3_minio: Minio) -> Iterator[str]:
    """A bucket name not yet created; the bucket is removed after the test if it was."""
    bucket = f"tracklane-test-{uuid.uuid4().hex[:12]}"
    yield bucket
    _remove_bucket(s3_minio, bucket)


@pytest.fixture
def s3_store_at(s3_service: S3Config, s3_minio: Minio) -> Callable[[str], ArtifactStore]:
    """Opens a store at ``s3://<bucket>/<prefix>`` on the test MinIO (``"bucket/prefix"`` form)."""

    def make(location: str) -> ArtifactStore:
        return open_store(
            f"s3://{location}",
            s3_endpoint_url=s3_service.endpoint_url,
            s3_access_key_id=s3_service.access_key_id,
            s3_secret_access_key=s3_service.secret_access_key,
        )

    return make


@pytest.fixture(params=["local", "s3"])
def artifact_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ArtifactStore:
    """An empty store: a fresh local folder, or a fresh prefix (like a run's root) in the session bucket.

    The local root does not exist yet and the S3 prefix is empty, as for a new run.
    """
    if request.param == "local":
        return open_store((tmp_path_factory.mktemp("artifacts") / "1" / "run" / "artifacts").as_uri())
    config: S3Config = request.getfixturevalue("s3_service")
    make: Callable[[str], ArtifactStore] = request.getfixturevalue("s3_store_at")
    result = make(f"{config.bucket}/{uuid.uuid4().hex[:8]}/run/artifacts")
    result.ensure_ready()  # creates the session bucket the first time
    return result
