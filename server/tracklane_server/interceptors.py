"""Around every handler: TracklaneError -> gRPC status (codes are set only here), access log.

A TracklaneError becomes its status code with the message, a google.rpc.BadRequest naming the
field and an ErrorInfo with the reason; anything else is logged with its traceback and answered
INTERNAL "internal error", never UNKNOWN and never with SQL or paths in the message. A request that
does not parse as its message type is INVALID_ARGUMENT (gRPC itself would answer UNKNOWN), and
messages are cut to MAX_MESSAGE_CHARS: one echoing a huge input would overflow gRPC's header limit.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from tracklane.exceptions import InvalidArgument, TracklaneError

log = logging.getLogger("tracklane_server.rpc")

#: Longest status message sent; gRPC refuses trailers over 16 KiB (its default header list size).
MAX_MESSAGE_CHARS = 1024

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

        def wrap(behaviour: Callable[..., Any], client_streaming: bool, server_streaming: bool) -> Any:
            make = _wrap_stream if server_streaming else _wrap_unary
            return make(behaviour, method, streamed=client_streaming)

        return rewrap_handler(handler, wrap, request_deserializer=_tolerant(handler.request_deserializer))


#: A handler behaviour's replacement: wrap(behaviour, client_streaming, server_streaming).
Wrap = Callable[[Callable[..., Any], bool, bool], Callable[..., Any]]
_SAME: Any = object()


def rewrap_handler(handler: Handler, wrap: Wrap, *, request_deserializer: Any = _SAME) -> Handler:
    """The same method handler (same call shape and serializers) with its behaviour wrapped: what
    every interceptor here does, whichever of the four call shapes the method has."""
    deserializer = handler.request_deserializer if request_deserializer is _SAME else request_deserializer
    shapes = (
        (handler.unary_unary, False, False, grpc.unary_unary_rpc_method_handler),
        (handler.stream_unary, True, False, grpc.stream_unary_rpc_method_handler),
        (handler.unary_stream, False, True, grpc.unary_stream_rpc_method_handler),
        (handler.stream_stream, True, True, grpc.stream_stream_rpc_method_handler),
    )
    for behaviour, client_streaming, server_streaming, make in shapes:
        if behaviour is not None:
            return make(
                wrap(behaviour, client_streaming, server_streaming),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
    raise AssertionError("a method handler without behaviour")


async def responses(result: Any) -> AsyncIterator[Any]:
    """A server-streaming handler's answers: an async generator, or a coroutine that writes them
    with ``context.write`` (or raises before streaming)."""
    if inspect.isasyncgen(result):
        async for response in result:
            yield response
    else:
        await result


class _Undecodable:
    """Stands for a request message that did not parse, so the wrappers can refuse it properly."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:  # raw bytes (artifact uploads): nothing to parse here
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:
            return _Undecodable(str(exc))

    return deserialize


def _refuse_undecodable(request: Any) -> Any:
    if type(request) is _Undecodable:
        raise InvalidArgument(
            f"request: not a valid message of this method ({request.error})", field="request"
        )
    return request


async def _checked_messages(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _refuse_undecodable(request)


def _checked(request: Any, streamed: bool) -> Any:
    return _checked_messages(request) if streamed else _refuse_undecodable(request)


def _wrap_unary(
    behaviour: Callable[..., Any], method: str, *, streamed: bool = False
) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        try:
            response = await behaviour(_checked(request, streamed), context)
        except Exception as exc:
            await _abort(exc, context, method, started)
            raise  # _abort always raises; keeps type checkers content
        _log_done(method, "OK", started)
        return response

    return wrapper


def _wrap_stream(
    behaviour: Callable[..., Any], method: str, *, streamed: bool = False
) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            async for response in responses(behaviour(_checked(request, streamed), context)):
                yield response
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
        if len(exc.message) > MAX_MESSAGE_CHARS:
            exc.message = exc.message[: MAX_MESSAGE_CHARS - 1] + "…"
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
