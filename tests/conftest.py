"""Shared fixtures: real services when configured, skipped with a reason when not.

The suite has one folder per layer (unit, backend, contract, client, e2e, ui: see tests/__init__.py
and each folder's docstring). Servers come from tests/servers/ (registered below): ``backend``,
``tracking_server`` and ``client`` run each test on SQLite + a folder and on PostgreSQL + MinIO
(the ``services`` mark); ``auth_server`` is the same with auth on; ``fl`` is the fluent API on the
backend's server. Everything a test starts binds 127.0.0.1 only.

Services come from the environment (.ci/run sets them; see README "Running the tests"):
  TRACKLANE_TEST_POSTGRES_URI   postgresql+psycopg://USER:PASSWORD@127.0.0.1:PORT/DB (a database the
                                tests may use to create their own throw-away databases)
  TRACKLANE_TEST_S3_ENDPOINT_URL, TRACKLANE_TEST_S3_ACCESS_KEY_ID, TRACKLANE_TEST_S3_SECRET_ACCESS_KEY
                                a MinIO (or any S3) the tests may create buckets in
  TRACKLANE_REQUIRE_SERVICES=1  a missing service (or Chromium, or a tool below) fails the test
                                instead of skipping it
  TRACKLANE_REQUIRE_TOOLCHAINS=1  the same for the toolchains of the e2e tests of other languages'
                                clients (go, node, java) and the stock MLflow virtualenv
                                (TRACKLANE_MLFLOW_PYTHON names another interpreter)
  TRACKLANE_CHROMIUM, TRACKLANE_UI_SCREENSHOTS  the browser of the ui tests and where they save
                                their screenshots

Tools some tests start themselves (a private MinIO, grpcurl) are looked up on PATH, then in the
tool cache .ci/run builds into ($TRACKLANE_CI_CACHE, default ~/.cache/tracklane-ci): see
``find_executable``. Missing ones skip (or fail) like services. Servers under test never see the
caller's own TRACKLANE_* variables (``tests.servers.clean_env``).
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

from tests.fluent_helpers import fluent_on
from tracklane.testing import LocalServer

REQUIRE_SERVICES = os.environ.get("TRACKLANE_REQUIRE_SERVICES") == "1"

#: The server fixtures (backend, tracking_server, client, auth_server, auth) live with the rest of
#: the one way to start a test server, in tests/servers/.
pytest_plugins = ["tests.servers.in_process"]

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.services)]


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

    def server_settings(self, prefix: str = "") -> dict[str, object]:
        """The same as keyword settings of an in-process server (``LocalServer``)."""
        return {
            "artifact_root": f"s3://{self.bucket}/{prefix}".rstrip("/"),
            "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": self.access_key_id,
            "s3_secret_access_key": self.secret_access_key,
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
