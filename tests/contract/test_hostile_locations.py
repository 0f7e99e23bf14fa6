"""Clients cannot choose where the server writes: CreateExperiment's ``artifact_location``.

A location must be a well-formed ``file:///`` or ``s3://`` URI under a root the operator configured
(``--artifact-root``, ``--allowed-artifact-roots``); anything else is INVALID_ARGUMENT naming
``artifact_location``, and nothing is created. Otherwise a client could make the server write
anywhere on its disk, or spend its S3 credentials on someone else's bucket (a confused deputy).
On every backend: SQLite + folder, PostgreSQL + MinIO.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest

import tracklane
from tests.contract.hostile import Stubs, invalid
from tracklane.testing import LocalServer
from tracklane.v1 import tracking_pb2

pytestmark = pytest.mark.usefixtures("server_survives")


def hostile_locations(root: str) -> list[str]:
    scheme = urlsplit(root).scheme
    bucket_or_empty = urlsplit(root).netloc
    return [
        "garbage",
        "relative/path",
        "./here",
        "../up",
        "/absolute/but/no/scheme",
        "http://example.com/artifacts",
        "https://example.com/artifacts",
        "ftp://example.com/x",
        "gs://bucket/x",
        "file:///",
        "file:///etc",
        "file:///tmp/elsewhere",
        "file://otherhost/tmp/x",
        "file:relative",
        "s3://any-bucket/x",
        "s3://someone-elses-bucket",
        "s3://AKIAKEY:secret@bucket/x",
        "s3://Not_A_Bucket/x",
        f"{root}/../escape",
        f"{root}/a/../../escape",
        f"{root}/%2e%2e/escape",
        f"{root}//double",
        f"{root}/./dot",
        f"{root}x",  # a sibling whose name starts like the root's
        f"{root}-other/x",
        f"{root}/sub?query=1",
        f"{root}/sub#fragment",
        f"{root}/tab\tin/name",
        f"{scheme}://{bucket_or_empty}",  # the root's parent bucket or the file system's root
    ]


@pytest.fixture(scope="module")
def root(tracking_server: LocalServer) -> str:
    """The server's own artifact root (experiment 0 may have been made by another server on the
    session's database, with another root)."""
    return tracking_server.settings.resolved_artifact_root.rstrip("/")


@pytest.mark.parametrize("index", range(29))
def test_locations_outside_the_configured_roots_are_refused(stubs: Stubs, root: str, index: int) -> None:
    locations = hostile_locations(root)
    assert len(locations) == 29
    location = locations[index]
    name = f"loc-{uuid.uuid4().hex[:10]}"
    message = invalid(
        stubs.tracking.CreateExperiment,
        tracking_pb2.CreateExperimentRequest(name=name, artifact_location=location),
        "artifact_location",
    )
    assert "secret" not in message  # never echo credentials
    with pytest.raises(grpc.RpcError) as err:
        stubs.tracking.GetExperimentByName(tracking_pb2.GetExperimentByNameRequest(name=name))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_locations_under_the_root_work_and_are_normalized(
    client: tracklane.Client, root: str, unique: str, tmp_path: Path
) -> None:
    experiment_id = client.create_experiment(f"under-{unique}", artifact_location=f"{root}/teams/{unique}/")
    experiment = client.get_experiment(experiment_id)
    assert experiment.artifact_location == f"{root}/teams/{unique}"  # the trailing '/' dropped
    run_id = client.create_run(experiment_id).info.run_id
    assert client.get_run(run_id).info.artifact_uri == f"{root}/teams/{unique}/{run_id}/artifacts"
    local = tmp_path / "f.txt"
    local.write_text("under the root")
    client.log_artifact(run_id, local)
    assert client.read_artifact(run_id, "f.txt") == b"under the root"


@pytest.fixture
def allowing_server(
    backend: dict[str, object], tmp_path: Path, s3_other_bucket: str
) -> Iterator[tuple[LocalServer, list[str]]]:
    """A second server over the backend's database, allowing a folder and (on MinIO) another bucket."""
    settings = {k: v for k, v in backend.items() if k != "data_dir"}  # SQLite: a database of its own
    allowed = [(tmp_path / "team-folder").as_uri()]
    if s3_other_bucket:
        allowed.append(f"s3://{s3_other_bucket}/team")
    with LocalServer(tmp_path / "data", allowed_artifact_roots=",".join(allowed), **settings) as server:
        yield server, allowed


@pytest.fixture
def s3_other_bucket(backend: dict[str, object], request: pytest.FixtureRequest) -> Iterator[str]:
    if not str(backend.get("artifact_root", "")).startswith("s3://"):
        yield ""
        return
    from minio import Minio

    s3 = request.getfixturevalue("s3_service")
    minio = Minio(
        urlsplit(s3.endpoint_url).netloc,
        s3.access_key_id,
        s3.secret_access_key,
        secure=s3.endpoint_url.startswith("https"),
    )
    bucket = f"{s3.bucket}-allowed"
    yield bucket
    if minio.bucket_exists(bucket):
        for item in minio.list_objects(bucket, recursive=True):
            minio.remove_object(bucket, str(item.object_name))
        minio.remove_bucket(bucket)


def test_allowed_roots_accept_locations_below_them_only(
    allowing_server: tuple[LocalServer, list[str]], tmp_path: Path, unique: str
) -> None:
    server, allowed = allowing_server
    local = tmp_path / "f.txt"
    local.write_text("there")
    with tracklane.Client(server.uri) as client:
        for i, root in enumerate(allowed):
            experiment_id = client.create_experiment(f"allowed-{unique}-{i}", artifact_location=f"{root}/x")
            run_id = client.create_run(experiment_id).info.run_id
            assert client.get_run(run_id).info.artifact_uri.startswith(f"{root}/x/")
            client.log_artifact(run_id, local)
            assert client.read_artifact(run_id, "f.txt") == b"there"
            client.delete_artifacts(run_id)
            with pytest.raises(tracklane.exceptions.InvalidArgument) as err:
                client.create_experiment(f"beside-{unique}-{i}", artifact_location=f"{root}-sibling/x")
            assert err.value.field == "artifact_location"
    folder = tmp_path / "team-folder" / "x"
    assert folder.is_dir()  # the run's folder was made there, and emptied by the delete
