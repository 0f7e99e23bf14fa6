"""A server killed mid-upload (SIGKILL) cannot abort its multipart upload or delete its temporary file;
the next server to start removes them once they are older than ``--artifact-multipart-max-age-seconds``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from minio import Minio

import tracklane
from tests.conftest import S3Config
from tests.e2e.test_artifact_faults import UPLOADER, _bucket_prefix, _incomplete, _wait_for
from tests.servers import clean_env, start_server
from tracklane_server.artifacts.local import TEMP_PREFIX


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.services)])
def store_args(request: pytest.FixtureRequest) -> tuple[list[str], Minio | None]:
    if request.param == "local":
        return [], None
    s3: S3Config = request.getfixturevalue("s3_service")
    minio = Minio(
        urlsplit(s3.endpoint_url).netloc,
        s3.access_key_id,
        s3.secret_access_key,
        secure=s3.endpoint_url.startswith("https"),
    )
    if not minio.bucket_exists(s3.bucket):
        minio.make_bucket(s3.bucket)
    args = [
        "--artifact-root",
        f"s3://{s3.bucket}/sweep-{uuid.uuid4().hex[:8]}",
        "--s3-endpoint-url",
        s3.endpoint_url,
        "--s3-access-key-id",
        s3.access_key_id,
        "--s3-secret-access-key",
        s3.secret_access_key,
    ]
    return args, minio


def unfinished_uploads(root: str, minio: Minio | None) -> Callable[[], list[str]]:
    """What is left of unfinished uploads under a run's artifact root, listed afresh on each call."""
    if minio is None:
        folder = Path(urlsplit(root).path)
        return lambda: sorted(p.name for p in folder.rglob(f"{TEMP_PREFIX}*"))
    bucket, prefix = _bucket_prefix(root)
    return lambda: _incomplete(minio, bucket, prefix)


def test_the_next_server_removes_what_a_killed_one_left(
    tmp_path: Path, store_args: tuple[list[str], Minio | None]
) -> None:
    args, minio = store_args
    data_dir = tmp_path / "data"
    with start_server(*args, data_dir=data_dir) as first:
        with tracklane.Client(f"grpc://{first.address}") as client:
            run_id = client.create_run().info.run_id
            unfinished = unfinished_uploads(client.get_run(run_id).info.artifact_uri, minio)
        uploader = subprocess.Popen(
            [sys.executable, "-c", UPLOADER, first.address, run_id], stdout=subprocess.PIPE, env=clean_env()
        )
        try:
            assert uploader.stdout is not None
            assert uploader.stdout.readline().strip() == b"sent"
            _wait_for(unfinished, "the upload did not start storing parts")
            first.kill()  # SIGKILL mid-upload: no abort, no clean-up
        finally:
            os.kill(uploader.pid, signal.SIGKILL)
            uploader.wait(10)
            if uploader.stdout is not None:
                uploader.stdout.close()
    left = unfinished()
    assert len(left) == 1, left  # what the sweeper is for
    time.sleep(1.5)  # older than the 1 s the next server is given
    with start_server(*args, "--artifact-multipart-max-age-seconds", "1", data_dir=data_dir) as second:
        _wait_for(lambda: not unfinished(), "the unfinished upload was not removed", timeout=60)
        with tracklane.Client(f"grpc://{second.address}") as client:
            assert client.list_artifacts(run_id, recursive=True) == []
            client.log_bytes(run_id, b"ok", "ckpt/model.bin")  # the path is free and the run fine
            assert client.read_artifact(run_id, "ckpt/model.bin") == b"ok"
        assert any("removed 1 unfinished uploads" in line for line in second.log_lines)


def test_only_configured_roots_are_swept_and_old_locations_keep_working(tmp_path: Path) -> None:
    # An experiment whose location points outside every configured root: one made before
    # locations were checked (set here in the database directly, as no client can any more).
    outside, allowed = tmp_path / "outside", tmp_path / "allowed"
    data_dir = tmp_path / "data"
    stale = [outside / "x" / f"{TEMP_PREFIX}left", allowed / "team" / f"{TEMP_PREFIX}left"]
    for path in stale:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"3 days old")
        three_days_ago = time.time() - 3 * 24 * 3600
        os.utime(path, (three_days_ago, three_days_ago))
    args = ["--allowed-artifact-roots", allowed.as_uri(), "--artifact-multipart-max-age-seconds", "3600"]
    with (
        start_server(*args, data_dir=data_dir) as first,
        tracklane.Client(f"grpc://{first.address}") as client,
    ):
        experiment_id = client.create_experiment(f"old-{uuid.uuid4().hex[:8]}")
    engine = sa.create_engine(f"sqlite:///{data_dir / 'tracklane.db'}")
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE experiments SET artifact_location = :uri WHERE experiment_id = :id"),
            {"uri": outside.as_uri(), "id": int(experiment_id)},
        )
    engine.dispose()
    with start_server(*args, data_dir=data_dir) as second:
        _wait_for(lambda: not stale[1].exists(), "the allowed root was not swept", timeout=60)
        with tracklane.Client(f"grpc://{second.address}") as client:
            run_id = client.create_run(experiment_id).info.run_id  # the old location keeps working
            client.log_bytes(run_id, b"kept", "f.bin")
            assert client.read_artifact(run_id, "f.bin") == b"kept"
        assert (outside / run_id / "artifacts" / "f.bin").read_bytes() == b"kept"
        assert stale[0].read_bytes() == b"3 days old"  # never swept: not a configured root
        assert any("outside the configured roots" in line for line in second.log_lines)
