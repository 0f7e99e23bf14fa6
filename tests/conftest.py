"""Shared fixtures: real services when configured, skipped with a reason when not.

Services come from the environment (.ci/run sets them; see README "Running the tests"):
  TRACKLANE_TEST_POSTGRES_URI   postgresql+psycopg://USER:PASSWORD@127.0.0.1:PORT/DB (a database the
                                tests may use to create their own throw-away databases)
  TRACKLANE_TEST_S3_ENDPOINT_URL, TRACKLANE_TEST_S3_ACCESS_KEY_ID, TRACKLANE_TEST_S3_SECRET_ACCESS_KEY
                                a MinIO (or any S3) the tests may create buckets in
  TRACKLANE_REQUIRE_SERVICES=1  a missing service fails the test instead of skipping it

Tools some tests start themselves (a private MinIO, grpcurl) are looked up on PATH, then in the
tool cache .ci/run builds into ($TRACKLANE_CI_CACHE, default ~/.cache/tracklane-ci): see
``find_executable``. Missing ones skip (or fail) like services.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

import tracklane
from tests.fluent_helpers import fluent_on
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


def missing(message: str) -> NoReturn:
    """Skips (or, with TRACKLANE_REQUIRE_SERVICES=1, fails) a test for want of a service or tool."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; TRACKLANE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


def require_service(name: str, variable: str) -> NoReturn:
    """Skips (or fails) a test whose service is not configured."""
    missing(f"{name} not configured: set {variable} (see README, 'Running the tests')")


def tool_cache() -> Path:
    """Where .ci/run caches the tools it builds (one folder per pinned version: tools/NAME@VERSION)."""
    return Path(os.environ.get("TRACKLANE_CI_CACHE") or Path.home() / ".cache" / "tracklane-ci")


def find_executable(name: str, how_to_get: str) -> str:
    """``name`` on PATH, else the newest build of it in the CI tool cache; else the test skips (or,
    with TRACKLANE_REQUIRE_SERVICES=1, fails) saying how to get it."""
    found = shutil.which(name)
    if found:
        return found
    cache = tool_cache()
    built = sorted(cache.glob(f"tools/{name}@*/{name}"), key=lambda p: p.stat().st_mtime)
    for candidate in [*reversed(built), cache / "bin" / name]:  # bin/: caches of before the pins
        if os.access(candidate, os.X_OK) and candidate.is_file():
            return str(candidate)
    missing(f"{name} not found on PATH or in {cache}/tools: {how_to_get}, or run .ci/run once (it builds it)")


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
def fl(tracking_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fluent module on the backend's server with a private metric spool; state reset around the test."""
    with fluent_on(tracking_server.uri, tmp_path / "spool", monkeypatch) as module:
        yield module


@pytest.fixture
def unique() -> str:
    """A short random suffix for names, so tests sharing a server never collide."""
    return uuid.uuid4().hex[:10]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Skips as one line per reason with its count, instead of a line per skipped test (addopts has
    -rfE: failures and errors are still listed one by one)."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if not reasons:
        return
    terminalreporter.section("skips by reason", sep="-")
    for reason, count in reasons.most_common():
        terminalreporter.line(f"{count:5d}  {reason}")
