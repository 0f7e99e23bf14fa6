"""What every servicer shares: store calls off the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class BlockingCalls:
    """Runs the synchronous store (SQLAlchemy, minio) in a bounded thread pool."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        # As asyncio.to_thread does: the call's context (the caller's Principal) goes along.
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, functools.partial(context.run, fn, *args, **kwargs))
