"""What every servicer shares: store calls off the event loop, and UNIMPLEMENTED for the rest."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any, ParamSpec, TypeVar

from google.protobuf.descriptor import ServiceDescriptor

from tracklane.exceptions import Unimplemented

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=type)


class BlockingCalls:
    """Runs the synchronous store (SQLAlchemy, minio) in a bounded thread pool."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))


def fill_unimplemented(service: ServiceDescriptor, note: str) -> Callable[[C], C]:
    """Class decorator: every RPC of ``service`` the class does not define answers UNIMPLEMENTED.

    The generated base class's defaults are synchronous, which grpc.aio cannot run without a
    thread pool; these are async and say what is missing.
    """

    def decorate(cls: C) -> C:
        for method in service.methods:
            if method.name in cls.__dict__:
                continue
            message = f"{service.name}.{method.name} is not implemented yet ({note})"
            setattr(cls, method.name, _stub(message, method.server_streaming))
        return cls

    return decorate


def _stub(message: str, streaming: bool) -> Callable[..., Any]:
    if streaming:

        async def stream_stub(self: object, request: object, context: object) -> AsyncIterator[Any]:
            raise Unimplemented(message)
            yield  # an async generator, like every streaming handler here

        return stream_stub

    async def unary_stub(self: object, request: object, context: object) -> Any:
        raise Unimplemented(message)

    return unary_stub
