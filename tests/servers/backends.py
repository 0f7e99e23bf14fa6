"""A backend of a test's own, for a server of its own (in this process or a child process).

The session's ``tracking_server`` shares one database per backend; a test that changes what every
caller sees (auth settings, user tables, restarts) takes a backend of its own instead::

    with own_backend(request, s3_prefix="limits") as backend:     # request.param: sqlite | postgres
        with LocalServer(data_dir, **backend.settings()) as server: ...
        with start_server(*backend.server_args(), data_dir=d, env=backend.server_env()) as p: ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import S3Config, create_postgres_database, drop_postgres_database
from tests.servers.process import ServerProcess, start_server

__all__ = ["Backend", "own_backend", "server_on_backend"]


@dataclass(frozen=True)
class Backend:
    """Where a server keeps its data: SQLite and a folder, or PostgreSQL (and MinIO)."""

    kind: str
    #: The fresh PostgreSQL database; "" on SQLite (the data folder's own file).
    database_uri: str = ""
    #: The session's MinIO, when artifacts go there; None keeps them in the data folder.
    s3: S3Config | None = None
    s3_prefix: str = ""

    def settings(self) -> dict[str, object]:
        """As keyword settings of an in-process server (``LocalServer``)."""
        settings: dict[str, object] = {}
        if self.database_uri:
            settings["backend_store_uri"] = self.database_uri
        if self.s3 is not None:
            settings |= self.s3.server_settings(self.s3_prefix)
        return settings

    def server_args(self) -> list[str]:
        """As ``tracklane server`` flags (the S3 secrets go in :meth:`server_env`, off the command line)."""
        return ["--backend-store-uri", self.database_uri] if self.database_uri else []

    def server_env(self) -> dict[str, str]:
        """As ``TRACKLANE_*`` variables of a server process: the artifact root in MinIO, if any."""
        return self.s3.server_env(self.s3_prefix) if self.s3 is not None else {}


@contextmanager
def own_backend(request: pytest.FixtureRequest, *, s3_prefix: str = "") -> Iterator[Backend]:
    """The test's backend (``request.param``): SQLite, or a fresh database on the shared PostgreSQL
    (dropped afterwards) and, with ``s3_prefix``, artifacts under that prefix of the session's bucket."""
    if request.param != "postgres":
        yield Backend("sqlite")
        return
    admin_uri: str = request.getfixturevalue("postgres_admin_uri")
    s3: S3Config | None = request.getfixturevalue("s3_service") if s3_prefix else None
    uri = create_postgres_database(admin_uri)
    try:
        yield Backend("postgres", uri, s3, s3_prefix)
    finally:
        drop_postgres_database(admin_uri, uri)


@contextmanager
def server_on_backend(
    request: pytest.FixtureRequest,
    data_dir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    s3_prefix: str = "",
) -> Iterator[ServerProcess]:
    """A server process on a backend of the test's own (see :func:`own_backend`)."""
    with own_backend(request, s3_prefix=s3_prefix) as backend:
        environ = {**(env or {}), **backend.server_env()}
        with start_server(*args, *backend.server_args(), data_dir=data_dir, env=environ) as process:
            yield process
