"""Request batching: concurrent requests for a row-wise model scored in one ``predict`` call.

A model call costs a fixed overhead (input checks, the framework's dispatch, a 200-tree forest's
walk set-up) plus a little per row, so under load one call over 32 one-row requests is far cheaper
than 32 calls. The batcher keeps one model call running at a time (the GIL would serialize them
anyway) and, while it runs, queues what arrives; the next call takes up to ``max_batch_size``
queued requests, after waiting up to ``max_batch_delay`` for more when fewer are queued. With
``max_batch_size=1`` every request is its own call, in arrival order.

Only tables (pandas DataFrames with the same columns) without params are merged; predictions are
split back by row counts, and a result that is not one row per input row is recomputed request by
request, so batching never changes an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracklane.models._imports import pandas_or_none

__all__ = ["Batcher"]

Predict = Callable[[Any, dict[str, Any] | None], Any]


@dataclass
class _Item:
    data: Any
    params: dict[str, Any] | None
    future: asyncio.Future[Any]
    rows: int = field(default=-1)  # -1: not mergeable


class Batcher:
    """Runs ``predict`` on one thread, merging queued table requests up to ``max_batch_size``."""

    def __init__(self, predict: Predict, max_batch_size: int = 1, max_batch_delay: float = 0.0) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_batch_delay < 0:
            raise ValueError("max_batch_delay must not be negative")
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_batch_delay = max_batch_delay
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tracklane-predict")
        self._task: asyncio.Task[None] | None = None
        #: Requests per model call, for the metrics (None: not recorded).
        self.on_batch: Callable[[int], None] | None = None

    def start(self) -> None:
        """Starts the consumer on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tracklane-batcher")

    async def close(self) -> None:
        """Stops the consumer once the queue is empty and in-flight calls returned."""
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data``, maybe computed together with other requests'."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        item = _Item(data, params, future, _mergeable_rows(data, params) if self.max_batch_size > 1 else -1)
        self._queue.put_nowait(item)
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            batch = [first]
            if first.rows >= 0:
                await self._gather(batch)
            try:
                await self._score(loop, batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _gather(self, batch: list[_Item]) -> None:
        deadline = time.monotonic() + self.max_batch_delay
        columns = list(batch[0].data.columns)
        while len(batch) < self.max_batch_size:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    return
            if item.rows < 0 or list(item.data.columns) != columns:
                # Not mergeable with this batch: score it alone right after.
                await self._score(asyncio.get_running_loop(), [item])
                self._queue.task_done()
                continue
            batch.append(item)

    async def _score(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        if self.on_batch is not None:
            self.on_batch(len(batch))
        if len(batch) == 1:
            item = batch[0]
            _settle(item, await _attempt(loop, self._executor, self._predict, item.data, item.params))
            return
        pd = pandas_or_none()
        merged = pd.concat([item.data for item in batch], ignore_index=True)
        result = await _attempt(loop, self._executor, self._predict, merged, None)
        parts = None if isinstance(result, BaseException) else _split(result, [i.rows for i in batch])
        if parts is None:
            # An error (maybe one request's rows) or not one prediction per row: each on its own.
            for item in batch:
                _settle(item, await _attempt(loop, self._executor, self._predict, item.data, item.params))
            return
        for item, part in zip(batch, parts, strict=True):
            _settle(item, part)


async def _attempt(
    loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor, predict: Predict, data: Any, params: Any
) -> Any:
    try:
        return await loop.run_in_executor(executor, predict, data, params)
    except Exception as exc:  # handed to the request that caused it
        return exc


def _settle(item: _Item, result: Any) -> None:
    if item.future.done():  # the caller went away (client disconnected)
        return
    if isinstance(result, BaseException):
        item.future.set_exception(result)
    else:
        item.future.set_result(result)


def _mergeable_rows(data: Any, params: dict[str, Any] | None) -> int:
    pd = pandas_or_none()
    if params or pd is None or not isinstance(data, pd.DataFrame):
        return -1
    return len(data)


def _split(result: Any, rows: list[int]) -> list[Any] | None:
    """``result`` cut into one piece per request, or None when it is not one row per input row."""
    pd = pandas_or_none()
    total = sum(rows)
    if isinstance(result, list):
        result = np.asarray(result)
    if not hasattr(result, "__len__") or len(result) != total:
        return None
    offsets = np.cumsum([0, *rows])
    pieces = []
    for start, stop in itertools.pairwise(offsets):
        if pd is not None and isinstance(result, pd.DataFrame | pd.Series):
            pieces.append(result.iloc[start:stop].reset_index(drop=True))
        elif isinstance(result, np.ndarray):
            pieces.append(result[start:stop])
        else:
            return None
    return pieces
