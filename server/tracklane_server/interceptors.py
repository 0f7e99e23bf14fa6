"""Around every handler: TracklaneError -> gRPC status (codes are set only here), access log, and
the limits on reading requests (LimitsInterceptor).

A TracklaneError becomes its status code with the message, a google.rpc.BadRequest naming the
field and an ErrorInfo with the reason; anything else is logged with its traceback and answered
INTERNAL "internal error", never UNKNOWN and never with SQL or paths in the message. A request that
does not parse as its message type is INVALID_ARGUMENT (gRPC itself would answer UNKNOWN), and
messages are cut to MAX_MESSAGE_CHARS: one echoing a huge input would overflow gRPC's header limit.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from tracklane.exceptions import DeadlineExceeded, InvalidArgument, ResourceExhausted, TracklaneError
from tracklane_server.runtime.decode_budget import DecodeBudget

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


def decode_request(deserializer: Callable[[bytes], Any] | None, data: bytes) -> Any:
    """``data`` parsed as the method's request message; INVALID_ARGUMENT when it does not parse."""
    if deserializer is None:
        return data
    try:
        return deserializer(data)
    except DecodeError as exc:
        return _refuse_undecodable(_Undecodable(str(exc)))


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


class LimitsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Reads a unary request only when its handler runs, and decodes a large one within the budget.

    gRPC reads a unary method's request before any interceptor's behaviour runs; here each unary
    method becomes a streaming-request one that reads its single message itself. So the
    authentication interceptor outside this one refuses a caller before a byte of the body is
    buffered, and a request of DecodeBudget.SMALL_BYTES or more is decoded only once the budget
    has room (RESOURCE_EXHAUSTED when it has none); it holds its bytes there until its call ends
    (a streaming response's call: until the request is decoded). Client-streaming methods keep
    their shape: each message is bounded by the message limit and read under flow control; those
    in ``idle_seconds`` (uploads) end with DEADLINE_EXCEEDED when no message comes for that long.
    """

    def __init__(self, budget: DecodeBudget, idle_seconds: Mapping[str, float] | None = None) -> None:
        self.budget = budget
        self.idle_seconds = dict(idle_seconds or {})

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.request_streaming:
            seconds = self.idle_seconds.get(handler_call_details.method)
            if seconds is None:
                return handler
            return rewrap_handler(handler, lambda behaviour, _cs, _ss: _idle_limited(behaviour, seconds))
        read = self._reader(handler.request_deserializer)
        serializer = handler.response_serializer
        if handler.response_streaming:
            stream_behaviour = handler.unary_stream
            assert stream_behaviour is not None

            async def streaming(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[Any]:
                request, held = await read(requests)
                self.budget.release(held)
                async for response in responses(stream_behaviour(request, context)):
                    yield response

            return grpc.stream_stream_rpc_method_handler(streaming, response_serializer=serializer)
        unary_behaviour = handler.unary_unary
        assert unary_behaviour is not None

        async def unary(requests: AsyncIterator[bytes], context: Any) -> Any:
            request, held = await read(requests)
            try:
                return await unary_behaviour(request, context)
            finally:
                self.budget.release(held)

        return grpc.stream_unary_rpc_method_handler(unary, response_serializer=serializer)

    def _reader(
        self, deserializer: Callable[[bytes], Any] | None
    ) -> Callable[[AsyncIterator[bytes]], Awaitable[tuple[Any, int]]]:
        budget = self.budget

        async def read(requests: AsyncIterator[bytes]) -> tuple[Any, int]:
            """The request and the bytes it holds in the budget."""
            raw = await anext(aiter(requests), None)
            if raw is None:
                raise InvalidArgument("request: the call carried no request message", field="request")
            size = len(raw)
            if not budget.counts(size):
                return decode_request(deserializer, raw), 0
            if not await budget.acquire(size):
                raise ResourceExhausted(
                    f"request: the server is handling {budget.in_use // 2**20} MiB of other large "
                    f"requests (its --max-decoding-bytes is {budget.limit // 2**20} MiB); retry shortly, "
                    "or send bulk data over StreamMetrics / UploadArtifact",
                    field="request",
                    reason="SERVER_BUSY",
                )
            try:
                return decode_request(deserializer, raw), size
            except BaseException:
                budget.release(size)
                raise

        return read


def _idle_limited(behaviour: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    """A client-streaming behaviour whose request iterator ends the call after ``seconds`` of silence."""

    async def messages(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        source = aiter(requests)
        while True:
            try:
                async with asyncio.timeout(seconds):
                    message = await anext(source)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise DeadlineExceeded(
                    f"no message for {seconds:g} s: the call was abandoned (the server's "
                    "--upload-idle-timeout-seconds); send it again",
                    field="upload_idle_timeout_seconds",
                ) from None
            yield message

    if inspect.isasyncgenfunction(behaviour):

        async def streaming(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            async for response in behaviour(messages(requests), context):
                yield response

        return streaming

    async def unary(requests: AsyncIterator[Any], context: Any) -> Any:
        return await behaviour(messages(requests), context)

    return unary
