"""Shared fixtures: real services when configured, skipped with a reason when not.

Services come from the environment (.ci/run sets them; see README "Running the tests"):
  TRACKLANE_TEST_POSTGRES_URI   postgresql+psycopg://USER:PASSWORD@127.0.0.1:PORT/DB (a database the
                                tests may use to create their own throw-away databases)
  TRACKLANE_TEST_S3_ENDPOINT_URL, TRACKLANE_TEST_S3_ACCESS_KEY_ID, TRACKLANE_TEST_S3_SECRET_ACCESS_KEY
                                a MinIO (or any S3) the tests may create buckets in
  TRACKLANE_REQUIRE_SERVICES=1  a missing service fails the test instead of skipping it
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import tracklane
from tracklane.testing import LocalServer

REQUIRE_SERVICES = os.environ.get("TRACKLANE_REQUIRE_SERVICES") == "1"


@dataclass(frozen=True)
class S3Config:
    """Where a test's MinIO bucket is."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    bucket: str

    def server_env(self, prefix: str = "") -> dict[str, str]:
        """TRACKLANE_* variables pointing a server's artifact root at this bucket."""
        return {
            "TRACKLANE_ARTIFACT_ROOT": f"s3://{self.bucket}/{prefix}".rstrip("/"),
            "TRACKLANE_S3_ENDPOINT_URL": self.endpoint_url,
            "TRACKLANE_S3_ACCESS_KEY_ID": self.access_key_id,
            "TRACKLANE_S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }


def require_service(name: str, variable: str) -> None:
    """Skips (or, with TRACKLANE_REQUIRE_SERVICES=1, fails) a test whose service is not configured."""
    message = f"{name} not configured: set {variable} (see README, 'Running the tests')"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; TRACKLANE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_admin_uri() -> str:
    """The configured PostgreSQL URI (a database tests may create others from)."""
    uri = os.environ.get("TRACKLANE_TEST_POSTGRES_URI", "")
    if not uri:
        require_service("PostgreSQL", "TRACKLANE_TEST_POSTGRES_URI")
    return uri


@pytest.fixture(scope="session")
def postgres_uri(postgres_admin_uri: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped afterwards."""
    uri = create_postgres_database(postgres_admin_uri)
    yield uri
    drop_postgres_database(postgres_admin_uri, uri)


def create_postgres_database(admin_uri: str) -> str:
    """Creates a uniquely named database and returns its URI."""
    import sqlalchemy as sa

    name = f"tracklane_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.make_url(admin_uri).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_uri: str, uri: str) -> None:
    """Drops a database made by create_postgres_database, closing its connections."""
    import sqlalchemy as sa

    name = sa.make_url(uri).database
    engine = sa.create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(50):
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                return
            except sa.exc.ProgrammingError:
                # FORCE may not end an autovacuum worker (a superuser's session) that just started on
                # the new database; it is gone within moments.
                if attempt == 49:
                    raise
                time.sleep(0.1)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def s3_service() -> S3Config:
    """The configured MinIO, with a fresh bucket name (not yet created) for this session."""
    endpoint = os.environ.get("TRACKLANE_TEST_S3_ENDPOINT_URL", "")
    if not endpoint:
        require_service("MinIO", "TRACKLANE_TEST_S3_ENDPOINT_URL")
    return S3Config(
        endpoint_url=endpoint,
        access_key_id=os.environ.get("TRACKLANE_TEST_S3_ACCESS_KEY_ID", ""),
        secret_access_key=os.environ.get("TRACKLANE_TEST_S3_SECRET_ACCESS_KEY", ""),
        bucket=f"tracklane-test-{uuid.uuid4().hex[:12]}",
    )


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.services)]


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
        "artifact_root": f"s3://{s3.bucket}/tracklane",
        "s3_endpoint_url": s3.endpoint_url,
        "s3_access_key_id": s3.access_key_id,
        "s3_secret_access_key": s3.secret_access_key,
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


@pytest.fixture
def unique() -> str:
    """A short random suffix for names, so tests sharing a server never collide."""
    return uuid.uuid4().hex[:10]
