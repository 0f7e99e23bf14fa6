"""One commit path for every metric stream of the process: what waits is committed together.

With many streams of small batches, a transaction per batch spends its time on round trips, the
fsync and (on SQLite) the single write lock. Here each stream hands its batches over and waits;
a few committer tasks take everything waiting, up to ``max_points``, and apply it in one
transaction. A stream submits its next batches only after its previous ones are acknowledged, so
every writer's batches still arrive in order. Committers exist only while there is work: an idle
server holds no task.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence

from tracklane.exceptions import ResourceExhausted, TracklaneError, Unavailable
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.store.metrics.ingest import BatchResult, MetricBatch, StreamStore

log = logging.getLogger(__name__)

Results = list[BatchResult | TracklaneError]


class CommitQueue:
    """``await submit(batches)`` -> one result per batch, after the transaction that held them."""

    def __init__(
        self, streams: StreamStore, blocking: BlockingCalls, *, committers: int, max_points: int
    ) -> None:
        self._streams = streams
        self._blocking = blocking
        self._max_committers = committers
        self._max_points = max_points
        self._waiting: deque[tuple[list[MetricBatch], asyncio.Future[Results]]] = deque()
        self._committers = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, batches: list[MetricBatch]) -> Results:
        """Commits ``batches`` (with whatever else is waiting) and returns their results in order.

        Raises:
            Unavailable: the database is away; nothing of these batches was stored.
            ResourceExhausted: the database's disk is full; nothing of these batches was stored.
        """
        future: asyncio.Future[Results] = asyncio.get_running_loop().create_future()
        self._waiting.append((batches, future))
        if self._committers < self._max_committers:
            self._committers += 1
            task = asyncio.create_task(self._commit_while_waiting(), name="tracklane-metric-commit")
            self._tasks.add(task)  # the loop keeps only a weak reference
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _commit_while_waiting(self) -> None:
        try:
            while self._waiting:
                taken = self._take()
                try:
                    await self._commit(taken)
                except BaseException as exc:  # e.g. the loop shutting down: nobody is left waiting
                    for _, future in taken:
                        if not future.done():
                            future.set_exception(Unavailable("the server is shutting down; reconnect"))
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._committers -= 1

    def _take(self) -> list[tuple[list[MetricBatch], asyncio.Future[Results]]]:
        taken = [self._waiting.popleft()]
        points = sum(len(b) for b in taken[0][0])
        while self._waiting and points < self._max_points:
            batches, future = self._waiting.popleft()
            taken.append((batches, future))
            points += sum(len(b) for b in batches)
        return taken

    async def _commit(self, taken: Sequence[tuple[list[MetricBatch], asyncio.Future[Results]]]) -> None:
        flat = [batch for batches, _ in taken for batch in batches]
        try:
            results = await self._blocking.call(self._streams.apply_many, flat)
        except (Unavailable, ResourceExhausted) as exc:  # the database away or its disk full
            for _, future in taken:
                _settle(future, exc)
            return
        except Exception:
            if len(taken) == 1:
                log.exception("committing a metric batch failed")
                _settle(taken[0][1], TracklaneError("internal error storing the batch; the server logged it"))
                return
            # One stream's batches broke the shared transaction: commit each stream's alone.
            for batches, future in taken:
                await self._commit([(batches, future)])
            return
        start = 0
        for batches, future in taken:
            if not future.done():
                future.set_result(results[start : start + len(batches)])
            start += len(batches)


def _settle(future: asyncio.Future[Results], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
