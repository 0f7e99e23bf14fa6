"""The in-process server fixtures: a real server (``tracklane.testing.LocalServer``: real gRPC and
HTTP listeners on free loopback ports, in a thread of the test process) per backend.

Registered for every test by tests/conftest.py (``pytest_plugins``):

- ``backend``: the settings of one backend, SQLite + a folder or PostgreSQL + MinIO (the
  ``postgres`` case is marked ``services``); session scope, so each backend is set up once.
- ``tracking_server``: the session's server over ``backend`` (no auth), shared by most tests.
- ``client``: a ``tracklane.Client`` on it, per test.
- ``auth_server`` / ``auth``: a server with auth on, on a backend of its own (tests/auth_helpers.py).

A test that needs other settings (limits, a UI build, auth defaults) starts its own ``LocalServer``,
with :func:`tests.servers.own_backend` for a database of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import tracklane
from tests.auth_helpers import AuthServer, start_auth_server
from tests.conftest import BACKENDS, S3Config
from tests.servers.backends import own_backend
from tracklane.testing import LocalServer


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Server settings for one backend: SQLite + a local folder, or PostgreSQL + MinIO."""
    data_dir = tmp_path_factory.mktemp(f"tracklane-{request.param}")
    if request.param == "sqlite":
        return {"data_dir": data_dir}
    s3: S3Config = request.getfixturevalue("s3_service")
    return {
        "data_dir": data_dir,
        "backend_store_uri": request.getfixturevalue("postgres_uri"),
        **s3.server_settings("tracklane"),
    }


@pytest.fixture(scope="session")
def tracking_server(backend: dict[str, object]) -> Iterator[LocalServer]:
    """A real server on a free loopback port over the backend; one per backend per session."""
    settings = dict(backend)
    data_dir = settings.pop("data_dir")
    assert isinstance(data_dir, os.PathLike)
    with LocalServer(data_dir, **settings) as server:
        yield server


@pytest.fixture
def client(tracking_server: LocalServer) -> Iterator[tracklane.Client]:
    """A tracklane.Client connected to the backend's server."""
    with tracklane.Client(tracking_server.uri) as c:
        yield c


@pytest.fixture(scope="session", params=BACKENDS)
def auth_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthServer]:
    """A real server with auth on, over SQLite + folder or PostgreSQL + MinIO, on a database of its own."""
    data_dir = tmp_path_factory.mktemp(f"tracklane-auth-{request.param}")
    with own_backend(request, s3_prefix="tracklane-auth") as own:
        server = start_auth_server(data_dir, **own.settings())
        try:
            yield server
        finally:
            server.close_clients()
            server.local.stop()


@pytest.fixture
def auth(auth_server: AuthServer) -> Iterator[AuthServer]:
    """The backend's auth server; the clients and channels a test makes are closed after it."""
    yield auth_server
    auth_server.close_clients()
