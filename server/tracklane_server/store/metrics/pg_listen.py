"""One LISTEN connection per server process: PostgreSQL's commit notifications, fanned out in-process.

Every replica's writers NOTIFY on commit (points_channel.py); this hears them all and calls
``on_notify(run_id)``. When the connection drops it reconnects with back-off and calls
``on_reconnect()``, since notifications sent meanwhile are gone: watchers then re-read the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

from tracklane_server.store.metrics.points_channel import CHANNEL

log = logging.getLogger(__name__)

_BACKOFF_FIRST = 0.2
_BACKOFF_MAX = 5.0


class PointsListener:
    """``start()`` connects and listens in a task on the running loop; ``stop()`` ends it quietly."""

    def __init__(
        self, conninfo: str, on_notify: Callable[[str], None], on_reconnect: Callable[[], None]
    ) -> None:
        self._conninfo = conninfo
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self, wait_seconds: float = 10.0) -> None:
        """Starts listening; waits (up to ``wait_seconds``) for the first LISTEN, so that no commit
        after the server starts is missed. If PostgreSQL is away it keeps trying in the background."""
        self._task = asyncio.create_task(self._run(), name="tracklane-points-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), wait_seconds)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        delay = _BACKOFF_FIRST
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, application_name="tracklane-listen"
                ) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                    if self._listening.is_set():
                        log.info("listening for new points again")
                    self._listening.set()
                    delay = _BACKOFF_FIRST
                    self._on_reconnect()
                    async for note in conn.notifies():
                        self._on_notify(note.payload)
            except psycopg.Error as exc:
                # One warning per outage; the retries of a long one are debug lines.
                log.log(
                    logging.WARNING if delay == _BACKOFF_FIRST else logging.DEBUG,
                    "the points listener lost PostgreSQL (%s); retrying in %.1f s",
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)
