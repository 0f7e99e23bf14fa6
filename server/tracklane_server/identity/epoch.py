"""The access epoch: a counter bumped by every change that can take access away.

The users and permission stores bump it after such a change commits; open streams wait on it to
check their caller again at once (auth/revocation.py). Neutral ground: both the store and auth use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

__all__ = ["AccessEpoch"]


class AccessEpoch:
    """A counter bumped by every change that can take access away; open calls wait on it."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def value(self) -> int:
        return self._value

    def bump(self) -> None:
        """Called after such a change is committed; from any thread."""
        with self._lock:
            self._value += 1
            waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, seen: int, seconds: float) -> None:
        """Until the counter moves past ``seen``, or ``seconds``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (loop, future)
        with self._lock:
            if self._value != seen:
                return
            self._waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, seconds)
        finally:
            with self._lock:
                self._waiters.discard(waiter)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
