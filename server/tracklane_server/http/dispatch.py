"""Calls a method as the gRPC server does: through its interceptors, into its handler.

:class:`MethodTable` is handed to the generated ``add_*Servicer_to_server`` functions in place of
the grpc.aio server; it forwards each registration to the server and keeps the handlers. An HTTP
adapter then runs the server's own interceptor list (errors, authentication, authorization, and
whatever is added later) around the same handler a gRPC call reaches, so every check is written
once. Interceptors compose as grpc.aio composes them: the first in the list is the outermost.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import grpc

from tracklane_server.http.call_context import HttpCallContext, Metadata

__all__ = ["CallDetails", "Dispatcher", "MethodTable"]

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]


class CallDetails(NamedTuple):
    """grpc.HandlerCallDetails of an HTTP call."""

    method: str
    invocation_metadata: Metadata


class MethodTable:
    """Stands for the grpc.aio server while services register; remembers every method's handler."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server
        self.handlers: dict[str, Handler] = {}

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[Any]) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, Handler]
    ) -> None:
        self._server.add_registered_method_handlers(service_name, method_handlers)  # type: ignore[attr-defined]
        for name, handler in method_handlers.items():
            self.handlers[f"/{service_name}/{name}"] = handler


class Dispatcher:
    """Runs one method's handler behind the server's interceptors."""

    def __init__(
        self, handlers: Mapping[str, Handler], interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]]
    ) -> None:
        self._handlers = dict(handlers)
        self._interceptors = tuple(interceptors)

    async def _intercepted(self, method: str, metadata: Metadata) -> Handler | None:
        async def lookup(details: CallDetails) -> Handler | None:
            return self._handlers.get(details.method)

        continuation: Callable[[Any], Awaitable[Handler | None]] = lookup
        for interceptor in reversed(self._interceptors):
            continuation = functools.partial(interceptor.intercept_service, continuation)
        return await continuation(CallDetails(method, metadata))

    async def unary(self, method: str, request: Any, context: HttpCallContext) -> Any:
        """The response of a unary method (the error interceptor's status as HttpAbort)."""
        handler = await self._handler(method, context)
        try:
            return await handler.unary_unary(request, context)
        finally:
            context.finish()

    async def client_stream(self, method: str, requests: AsyncIterator[Any], context: HttpCallContext) -> Any:
        """The response of a client-streaming method fed ``requests`` (as the handler reads them:
        raw bytes for UploadArtifact)."""
        handler = await self._handler(method, context)
        try:
            return await handler.stream_unary(requests, context)
        finally:
            context.finish()

    async def server_stream(
        self, method: str, request: Any, context: HttpCallContext
    ) -> AsyncGenerator[Any, None]:
        """The responses of a server-streaming method."""
        handler = await self._handler(method, context)
        responses = handler.unary_stream(request, context)
        cancelled = False
        try:
            async for response in responses:
                yield response
        except (asyncio.CancelledError, GeneratorExit):  # the client went away
            cancelled = True
            raise
        finally:
            await responses.aclose()
            context.finish(cancelled=cancelled)

    async def _handler(self, method: str, context: HttpCallContext) -> Any:
        handler = await self._intercepted(method, context.invocation_metadata())
        if handler is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"method {method} is not served here")
        return handler
