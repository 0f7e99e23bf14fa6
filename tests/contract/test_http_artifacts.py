"""Artifact downloads over plain HTTP (real HTTP, folder and MinIO): ranges for previews, streaming,
a sandboxing policy, and the same permissions and errors as DownloadArtifact over gRPC."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest

import tracklane
from tests.auth_helpers import AuthServer
from tracklane.testing import LocalServer

DATA = os.urandom(300_000) + b"tail"


@pytest.fixture
def http(tracking_server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tracking_server.http_url, timeout=30) as web:
        yield web


@pytest.fixture(scope="module")
def run_id(tracking_server: LocalServer) -> str:
    with tracklane.Client(tracking_server.uri) as client:
        run = client.create_run().info.run_id
        client.log_bytes(run, DATA, "data/blob.bin")
        client.log_bytes(run, b"<script>alert(1)</script>", "report.html")
        client.log_bytes(run, b"", "empty.txt")
        client.log_bytes(run, "naïve: 1\n".encode(), "conf/params y.yaml")
    return run


def test_whole_file(http: httpx.Client, run_id: str) -> None:
    reply = http.get(f"/artifacts/{run_id}/data/blob.bin")
    assert reply.status_code == 200
    assert reply.content == DATA
    assert reply.headers["content-length"] == str(len(DATA))
    assert reply.headers["accept-ranges"] == "bytes"
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.headers["etag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    again = http.get(f"/artifacts/{run_id}/data/blob.bin", headers={"if-none-match": reply.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-1023", 0, 1023),
        ("bytes=299990-", 299_990, len(DATA) - 1),
        ("bytes=-4", len(DATA) - 4, len(DATA) - 1),
        ("bytes=100-99999999", 100, len(DATA) - 1),  # past the end: cut to the size
    ],
)
def test_one_range(http: httpx.Client, run_id: str, header: str, first: int, last: int) -> None:
    reply = http.get(f"/artifacts/{run_id}/data/blob.bin", headers={"range": header})
    assert reply.status_code == 206
    assert reply.content == DATA[first : last + 1]
    assert reply.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert reply.headers["content-length"] == str(last - first + 1)


def test_unsatisfiable_and_multiple_ranges(http: httpx.Client, run_id: str) -> None:
    past = http.get(f"/artifacts/{run_id}/data/blob.bin", headers={"range": f"bytes={len(DATA) + 10}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(DATA)}"
    empty = http.get(f"/artifacts/{run_id}/empty.txt", headers={"range": "bytes=0-10"})
    assert empty.status_code == 416
    several = http.get(f"/artifacts/{run_id}/data/blob.bin", headers={"range": "bytes=0-1,5-6"})
    assert (several.status_code, several.content) == (200, DATA)


def test_head_describes_without_a_body(http: httpx.Client, run_id: str) -> None:
    reply = http.head(f"/artifacts/{run_id}/data/blob.bin")
    assert reply.status_code == 200
    assert reply.headers["content-length"] == str(len(DATA))
    assert reply.content == b""


def test_html_is_sandboxed_and_names_are_kept(http: httpx.Client, run_id: str) -> None:
    page = http.get(f"/artifacts/{run_id}/report.html")
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert policy.startswith("sandbox")
    assert "script-src" not in policy  # default-src 'none' covers scripts
    assert "default-src 'none'" in policy
    yaml = http.get(f"/artifacts/{run_id}/conf/params%20y.yaml", params={"download": "1"})
    assert yaml.content == "naïve: 1\n".encode()
    assert yaml.headers["content-disposition"] == "attachment; filename*=UTF-8''params%20y.yaml"


def test_errors_are_the_grpc_ones(http: httpx.Client, run_id: str) -> None:
    missing = http.get(f"/artifacts/{run_id}/nope.txt")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    folder = http.get(f"/artifacts/{run_id}/data")
    assert folder.status_code == 404
    escape = http.get(f"/artifacts/{run_id}/data/..%2F..%2Fetc/passwd")
    assert escape.status_code == 400
    assert escape.json()["code"] == "invalid_argument"
    no_run = http.get(f"/artifacts/{'0' * 32}/x.txt")
    assert no_run.status_code == 404


def test_a_user_without_read_gets_nothing(auth: AuthServer) -> None:
    owner, stranger = auth.create_user("art-owner"), auth.create_user("art-stranger")
    with owner.client() as client:
        experiment_id = client.create_experiment(f"secret-files-{owner.name}")
        run = client.create_run(experiment_id).info.run_id
        client.log_bytes(run, b"secret", "s.txt")
    with httpx.Client(base_url=auth.local.http_url, timeout=30) as web:
        assert web.get(f"/artifacts/{run}/s.txt").status_code == 401  # not signed in
        assert web.post("/auth/session", json={"token": stranger.token}).status_code == 200
        refused = web.get(f"/artifacts/{run}/s.txt")
        assert refused.status_code == 403
        assert b"secret" not in refused.content
        assert web.post("/auth/session", json={"token": owner.token}).status_code == 200
        assert web.get(f"/artifacts/{run}/s.txt").content == b"secret"  # the cookie, no CSRF for a GET
