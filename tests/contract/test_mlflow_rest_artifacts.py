"""MLflow's proxied artifact service on the HTTP listener (real HTTP, both backends: a local
folder and MinIO underneath), and what gRPC clients see of the same files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import tracklane
from tests.contract.mlflow_rest_helpers import error, get, new_experiment, new_run, ok
from tracklane.testing import LocalServer

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def web(tracking_server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tracking_server.http_url, timeout=120) as client:
        yield client


def test_upload_download_list_delete(web: httpx.Client, client: tracklane.Client, unique: str) -> None:
    experiment_id = new_experiment(web, f"proxy-{unique}")
    run_id = new_run(web, experiment_id)["info"]["run_id"]
    root = f"{PROXY}/{experiment_id}/{run_id}/artifacts"
    big = os.urandom(5 * 1024 * 1024 + 123)  # several chunks, not a multiple of the chunk size

    def body() -> Iterator[bytes]:  # streamed, no content-length: the size is found at the end
        for start in range(0, len(big), 300_000):
            yield big[start : start + 300_000]

    assert ok(web.put(f"{root}/data/big.bin", content=body())) == {}
    assert ok(web.put(f"{root}/data/empty.txt", content=b"")) == {}
    assert ok(web.put(f"{root}/notes.txt", content="ünïcode".encode())) == {}

    download = web.get(f"{root}/data/big.bin")
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == hashlib.sha256(big).hexdigest()
    assert download.headers["content-length"] == str(len(big))
    assert web.get(f"{root}/data/empty.txt").content == b""

    listed = ok(web.get(PROXY, params={"path": f"{experiment_id}/{run_id}/artifacts/data"}))
    assert {(f["path"], f.get("file_size")) for f in listed["files"]} == {
        ("big.bin", len(big)),
        ("empty.txt", 0),
    }
    top = ok(web.get(PROXY, params={"path": f"{experiment_id}/{run_id}/artifacts"}))
    assert {(f["path"], f["is_dir"]) for f in top["files"]} == {("data", True), ("notes.txt", False)}
    tracked = ok(get(web, "/artifacts/list", run_id=run_id, path="data"))
    assert tracked["root_uri"] == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"
    assert {f["path"] for f in tracked["files"]} == {"data/big.bin", "data/empty.txt"}

    # The same files over gRPC, as a Tracklane client sees them.
    assert client.read_artifact(run_id, "notes.txt") == "ünïcode".encode()
    ok(web.delete(f"{root}/data"))
    assert [f.path for f in client.list_artifacts(run_id)] == ["notes.txt"]
    error(web.get(f"{root}/data/big.bin"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_grpc_uploads_are_readable_through_the_proxy(
    web: httpx.Client, client: tracklane.Client, tmp_path: Path, unique: str
) -> None:
    experiment_id = client.create_experiment(f"grpc-{unique}")
    run = client.create_run(experiment_id)
    (tmp_path / "hello.txt").write_text("from grpc")
    client.log_artifact(run.info.run_id, str(tmp_path / "hello.txt"))
    info = ok(get(web, "/runs/get", run_id=run.info.run_id))["run"]["info"]
    download = web.get(
        f"/api/2.0/mlflow-artifacts/artifacts/{info['artifact_uri'].split(':', 1)[1].lstrip('/')}/hello.txt"
    )
    assert download.status_code == 200
    assert download.text == "from grpc"


def test_bad_paths_and_multipart(web: httpx.Client, unique: str) -> None:
    experiment_id = new_experiment(web, f"paths-{unique}")
    run_id = new_run(web, experiment_id)["info"]["run_id"]
    climbing = f"{PROXY}/{experiment_id}/{run_id}/artifacts/a/%2E%2E/%2E%2E/%2E%2E/escape"
    assert "Invalid path" in error(web.put(climbing, content=b"x"), 400, "INVALID_PARAMETER_VALUE")
    error(web.get(f"{PROXY}/{experiment_id}/{run_id}/elsewhere/file"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(
        web.put(f"{PROXY}/{experiment_id}/{'0' * 32}/artifacts/file", content=b"x"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    message = error(
        web.post(
            f"/api/2.0/mlflow-artifacts/mpu/create/{experiment_id}/{run_id}/artifacts/f",
            json={"path": "f", "num_parts": 2},
        ),
        501,
        "NOT_IMPLEMENTED",
    )
    assert "Multipart" in message
