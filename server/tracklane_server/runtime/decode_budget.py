"""A cap on the bytes of large unary requests being decoded and handled at once, server-wide.

A request's decoded form and what its handler builds from it cost several times its size (a 4 MiB
LogBatch of 100,000 metrics: about 50 MiB while it is handled), so concurrent large requests are
what pushes a server's memory up. Each request of ``SMALL_BYTES`` or more holds its size here while
it is decoded and handled; one that does not fit waits for room (its raw bytes are already in
memory: they count against a second budget of the same size), and one that does not fit there
either is refused at once. So at most ``limit`` bytes of large requests are being handled and
``limit`` more wait, whatever the clients send. Small requests (almost every call) never wait.

Event-loop only: the deserializers and handlers that use it all run on the server's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["SMALL_BYTES", "WAIT_SECONDS", "DecodeBudget"]

#: Requests under this size neither wait nor count.
SMALL_BYTES = 64 * 1024
#: A large request waits at most this long for room before it is refused.
WAIT_SECONDS = 30.0


class DecodeBudget:
    """``await acquire(n)`` before decoding a request of ``n`` bytes, ``release(n)`` after its call.

    Args:
        limit: bytes of large requests handled at once (and as many waiting).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.waiting = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()  # first come, first served

    def counts(self, size: int) -> bool:
        """Whether a request of ``size`` bytes goes through the budget."""
        return size >= SMALL_BYTES

    async def acquire(self, size: int) -> bool:
        """Holds ``size`` bytes, waiting for room if needed; False when it must be refused."""
        size = min(size, self.limit)  # one request never needs more than the whole budget
        if not self._waiters and self.in_use + size <= self.limit:
            self.in_use += size
            return True
        if self.waiting + size > self.limit:
            return False
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (size, admitted)
        self._waiters.append(waiter)
        self.waiting += size
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                await admitted
        except TimeoutError:
            if admitted.done() and not admitted.cancelled():
                return True  # admitted just as the time ran out: it holds its bytes
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            return False
        except asyncio.CancelledError:  # the call was cancelled: give back what it was given
            if admitted.done() and not admitted.cancelled():
                self.release(size)
            raise
        finally:
            self.waiting -= size
        return True

    def release(self, size: int) -> None:
        """Gives back what ``acquire(size)`` took."""
        if size <= 0:
            return
        self.in_use -= min(size, self.limit)
        while self._waiters and self.in_use + self._waiters[0][0] <= self.limit:
            taken, admitted = self._waiters.popleft()
            if admitted.done():  # its caller gave up (cancelled)
                continue
            self.in_use += taken  # on the waiter's behalf: nobody can take the same room meanwhile
            admitted.set_result(None)
