"""In-process fan-out of "run X has new points" (or other changes) to the WatchRun and
WatchExperiments calls of this server process.

Wake-ups come from this process's own writes (``notify``, any thread) and, on PostgreSQL, from
the one LISTEN connection of the process (store/metrics/pg_listen.py), which hears every replica's
commits. A wake-up carries no data: a watcher reads what is new from the store, so a lost or
doubled wake-up can delay a point but never lose or repeat one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Protocol

from sqlalchemy.engine import Engine

from tracklane_server.store.metrics.pg_listen import PointsListener
from tracklane_server.store.metrics.sqlite_changes import SqliteChanges


class Subscription:
    """One watcher's doorbell: set by a wake-up for its run, or by the hub closing."""

    def __init__(self, hub: PointsHub) -> None:
        self._hub = hub
        self._event = asyncio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Until a wake-up (or ``seconds``, a safety net); then re-arms."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        self._event.clear()

    @property
    def closed(self) -> bool:
        """The server is shutting down: the watcher should end its call."""
        return self._hub.closed


#: Subscribes to every run's wake-ups (no run has an empty id): the experiment watches.
ANY_RUN = ""


class PointsHub:
    """Rings the subscriptions of a run (and of ANY_RUN); lives on the server's event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[str, set[Subscription]] = {}
        self._closed = asyncio.Event()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop that owns the subscriptions (the server's); ``notify`` hops onto it."""
        self._loop = loop

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        """Until ``close()``: the server is shutting down."""
        await self._closed.wait()

    @contextmanager
    def subscribe(self, run_id: str) -> Iterator[Subscription]:
        """A subscription to ``run_id``'s wake-ups for the ``with`` block (event-loop thread only)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        sub = Subscription(self)
        self._subscribers.setdefault(run_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subscribers.get(run_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[run_id]

    def notify(self, run_id: str) -> None:
        """Wakes ``run_id``'s watchers; safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._ring(run_id)
        else:
            loop.call_soon_threadsafe(self._ring, run_id)

    @property
    def watching(self) -> bool:
        """Whether any watcher is subscribed."""
        return bool(self._subscribers)

    def notify_all(self) -> None:
        """Wakes every watcher (after a listener reconnect: wake-ups may have been missed)."""
        for run_id in list(self._subscribers):
            self.notify(run_id)

    def close(self) -> None:
        """Shutting down: wakes every watcher for the last time (event-loop thread)."""
        self._closed.set()
        for subs in self._subscribers.values():
            for sub in subs:
                sub.ring()

    def _ring(self, run_id: str) -> None:
        for sub in self._subscribers.get(run_id, ()):
            sub.ring()
        for sub in self._subscribers.get(ANY_RUN, ()):
            sub.ring()


class PointsFeed(Protocol):
    """What wakes the hub for commits made by other processes."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def points_feed(engine: Engine, hub: PointsHub) -> PointsFeed | None:
    """PostgreSQL: one LISTEN connection. SQLite file: a data_version poll (for `--workers`)."""
    if engine.dialect.name == "postgresql":
        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PointsListener(conninfo, hub.notify, hub.notify_all)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return SqliteChanges(database, hub.notify_all, lambda: hub.watching)
    return None
