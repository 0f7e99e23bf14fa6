"""Around every handler: TracklaneError -> gRPC status (codes are set only here), access log.

A TracklaneError becomes its status code with the message, a google.rpc.BadRequest naming the
field and an ErrorInfo with the reason; anything else is logged with its traceback and answered
INTERNAL "internal error", never UNKNOWN and never with SQL or paths in the message.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc_status import rpc_status

from tracklane.exceptions import TracklaneError

log = logging.getLogger("tracklane_server.rpc")

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Maps domain errors to status codes for unary and streaming handlers alike."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(handler.stream_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream(handler.stream_stream, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _wrap_unary(behaviour: Callable[..., Any], method: str) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        try:
            response = await behaviour(request, context)
        except Exception as exc:
            await _abort(exc, context, method, started)
            raise  # _abort always raises; keeps type checkers content
        _log_done(method, "OK", started)
        return response

    return wrapper


def _wrap_stream(behaviour: Callable[..., Any], method: str) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            result = behaviour(request, context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            else:  # a coroutine that writes with context.write (or raises before streaming)
                await result
        except Exception as exc:
            await _abort(exc, context, method, started)
        _log_done(method, "OK", started)

    return wrapper


async def _abort(
    exc: Exception, context: grpc.aio.ServicerContext[Any, Any], method: str, started: float
) -> None:
    if isinstance(exc, grpc.aio.AbortError):
        raise exc  # the handler aborted on purpose; its status stands
    if isinstance(exc, TracklaneError):
        _log_done(method, exc.code.name, started, field=exc.field)
        status = rpc_status.to_status(exc.to_rpc_status())
        await context.abort(status.code, status.details, status.trailing_metadata)
    log.exception("unhandled error in %s", method, extra={"method": method})
    _log_done(method, "INTERNAL", started)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the server logged the details")


def _log_done(method: str, code: str, started: float, **extra: str) -> None:
    if log.isEnabledFor(logging.DEBUG):
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        log.debug(
            "%s %s %.3f ms",
            method,
            code,
            elapsed_ms,
            extra={"method": method, "code": code, "ms": elapsed_ms, **extra},
        )
