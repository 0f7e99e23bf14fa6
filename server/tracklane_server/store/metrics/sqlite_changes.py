"""Wake-ups across processes on SQLite: `PRAGMA data_version` changes when another connection commits.

Writes through this process already wake its watchers directly; this covers the other processes
of `--workers N` sharing one database file. A read-only connection checks the counter every
``interval`` seconds while someone watches (a read of the WAL index in shared memory, no I/O).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable

log = logging.getLogger(__name__)


class SqliteChanges:
    """``start()`` polls in a task on the running loop; ``stop()`` ends it."""

    def __init__(
        self, path: str, on_change: Callable[[], None], active: Callable[[], bool], interval: float = 0.05
    ) -> None:
        self._path = path
        self._on_change = on_change
        self._active = active
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tracklane-sqlite-changes")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=0.1, check_same_thread=False)
        try:
            seen = _version(conn)
            while True:
                await asyncio.sleep(self._interval)
                if not self._active():
                    continue
                try:
                    version = _version(conn)
                except sqlite3.Error as exc:  # busy or locked for a moment: look again next time
                    log.debug("data_version check failed: %s", exc)
                    continue
                if version != seen:
                    seen = version
                    self._on_change()
        finally:
            conn.close()


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
