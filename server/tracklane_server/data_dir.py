"""The data folder and the server's own files in it are private: other local accounts read nothing.

The embedded default keeps the SQLite database (experiments, runs, users' token hashes) and the
artifacts in the data folder, so it is created 0700 and new databases 0600 (SQLite gives its WAL
and shared-memory files the database's mode). With auth on, what an older version left readable
to others (a 0755 folder, a 0644 database or token file) is narrowed at start, with a warning.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import sqlalchemy as sa

from tracklane_server.settings import Settings

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "prepare_data_dir"]

log = logging.getLogger("tracklane_server")

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# What lives in the data folder besides artifacts (see auth.bootstrap for the token file).
_SQLITE_SUFFIXES = ("", "-wal", "-shm")
_TOKEN_FILE = "admin-token"


def prepare_data_dir(settings: Settings) -> None:
    """Creates the data folder 0700 when the server keeps anything there; with auth, narrows the
    folder, the SQLite files and the token file when others may read them."""
    keeps_files = not settings.backend_store_uri or not settings.artifact_root or settings.auth
    if keeps_files:
        settings.data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if not settings.auth:
        return
    if keeps_files:
        _narrow(settings.data_dir, PRIVATE_DIR_MODE)
        _narrow(settings.data_dir / _TOKEN_FILE, PRIVATE_FILE_MODE)
    database = sqlite_path(settings.resolved_backend_store_uri)
    if database is not None:
        for suffix in _SQLITE_SUFFIXES:
            _narrow(database.with_name(database.name + suffix), PRIVATE_FILE_MODE)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URI; None for other databases and memory."""
    url = sa.make_url(uri)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser()


def _narrow(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return
    if path.is_symlink() or not current & 0o077:
        return
    os.chmod(path, current & mode)
    log.warning(
        "%s was readable by other local accounts (mode %o); made it %o: with auth on, only the "
        "server's account may read its data",
        path,
        current,
        current & mode,
        extra={"path": str(path)},
    )
