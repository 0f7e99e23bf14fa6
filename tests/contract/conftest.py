"""Fixtures of the contract tests: a server with auth enabled (see tests/auth_helpers.py), and the
raw stubs and bystander of the hostile-input suites (see tests/contract/hostile.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.auth_helpers import AuthServer, start_auth_server
from tests.conftest import BACKENDS, S3Config, create_postgres_database, drop_postgres_database
from tests.contract.hostile import Bystander, Stubs, make_bystander, open_stubs, serving, snapshot
from tracklane.testing import LocalServer


@pytest.fixture(scope="session", params=BACKENDS)
def auth_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthServer]:
    """A real server with auth on, over SQLite + folder or PostgreSQL + MinIO, on a database of its own."""
    data_dir = tmp_path_factory.mktemp(f"tracklane-auth-{request.param}")
    settings: dict[str, object] = {}
    admin_uri = ""
    if request.param == "postgres":
        admin_uri = request.getfixturevalue("postgres_admin_uri")
        s3: S3Config = request.getfixturevalue("s3_service")
        settings = {
            "backend_store_uri": create_postgres_database(admin_uri),
            "artifact_root": f"s3://{s3.bucket}/tracklane-auth",
            "s3_endpoint_url": s3.endpoint_url,
            "s3_access_key_id": s3.access_key_id,
            "s3_secret_access_key": s3.secret_access_key,
        }
    server = start_auth_server(data_dir, **settings)
    try:
        yield server
    finally:
        server.close_clients()
        server.local.stop()
        if admin_uri:
            drop_postgres_database(admin_uri, str(settings["backend_store_uri"]))


@pytest.fixture
def auth(auth_server: AuthServer) -> Iterator[AuthServer]:
    """The backend's auth server; the clients and channels a test makes are closed after it."""
    yield auth_server
    auth_server.close_clients()


@pytest.fixture(scope="module")
def stubs(tracking_server: LocalServer) -> Iterator[Stubs]:
    yield from open_stubs(tracking_server)


@pytest.fixture(scope="module")
def bystander(stubs: Stubs) -> tuple[Bystander, list[bytes]]:
    b = make_bystander(stubs, uuid.uuid4().hex[:10])
    return b, snapshot(stubs, b)


@pytest.fixture
def server_survives(stubs: Stubs, bystander: tuple[Bystander, list[bytes]]) -> Iterator[None]:
    """After the test: the server still answers and the bystander's data is byte-identical."""
    yield
    assert serving(stubs)
    b, before = bystander
    assert snapshot(stubs, b) == before
