"""The browser's RPC: Connect (and gRPC-Web) over HTTP/1.1, into the same servicers as gRPC.

The wire protocols (Connect unary and server streaming, JSON or binary protobuf, gzip, timeouts,
gRPC-Web) are the ``connectrpc`` package's; its endpoints are built here from the services'
descriptors rather than from generated stubs, and each one calls the method through the gRPC
server's own interceptors (:mod:`tracklane_server.http.dispatch`): the same authentication,
permissions, limits and error details. A status the error interceptor set becomes a Connect error
with the same code, message and ``google.rpc`` details (BadRequest naming the field, ErrorInfo).
Client- and bidirectional-streaming methods (StreamMetrics, UploadArtifact) need HTTP/2 streams
a browser cannot open; they answer UNIMPLEMENTED here and are served over gRPC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
from connectrpc.code import Code
from connectrpc.compat import google_protobuf_codecs
from connectrpc.compression.gzip import GzipCompression
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass
from google.rpc import status_pb2
from protobuf.wkt import Any as WktAny

from tracklane.exceptions import TracklaneError
from tracklane_server.http.call_context import HttpAbort, HttpCallContext, Metadata
from tracklane_server.http.dispatch import Dispatcher

__all__ = ["ConnectApp", "connect_error", "error_of"]

#: Headers that are the HTTP layer's, not call metadata (cookies carry the session, never passed on).
_NOT_METADATA = frozenset({"cookie", "host", "content-length", "connection", "transfer-encoding"})

#: Metadata of a call, from its HTTP headers and the credentials the session layer found.
MetadataOf = Callable[[RequestContext[Any, Any]], Metadata]


def _code(code: grpc.StatusCode) -> Code:
    return Code.CANCELED if code is grpc.StatusCode.CANCELLED else Code[code.name]


def connect_error(abort: HttpAbort) -> ConnectError:
    """The Connect error of a status set by the error interceptor (or a handler's abort)."""
    details: list[ErrorDetail] = []
    if raw := abort.status_details:
        status = status_pb2.Status.FromString(raw)
        details = [ErrorDetail(WktAny(type_url=d.type_url, value=d.value)) for d in status.details]
    return ConnectError(_code(abort.code), abort.details, details)


def error_of(exc: TracklaneError) -> ConnectError:
    """A domain error raised by the HTTP layer itself (the session checks), with its details."""
    status = exc.to_rpc_status()
    details = [ErrorDetail(WktAny(type_url=d.type_url, value=d.value)) for d in status.details]
    return ConnectError(_code(exc.code), exc.message, details)


def headers_metadata(ctx: RequestContext[Any, Any]) -> Metadata:
    """Call metadata from the request's headers, as gRPC would pass them (names lowercased)."""
    return tuple(
        (name, value) for name, value in ctx.request_headers.allitems() if name.lower() not in _NOT_METADATA
    )


def peer(ctx: RequestContext[Any, Any]) -> str:
    """gRPC's spelling of the caller's address (``ipv4:HOST:PORT``, ``ipv6:[HOST]:PORT``)."""
    address = ctx.client_address
    if not address:
        return "unknown"
    host, _, port = address.rpartition(":")
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


class ConnectApp(ConnectASGIApplication[None]):
    """One ASGI app serving every method of ``services`` at ``/PACKAGE.SERVICE/METHOD``."""

    def __init__(
        self,
        services: Iterable[ServiceDescriptor],
        dispatcher: Dispatcher,
        metadata_of: MetadataOf,
        *,
        read_max_bytes: int,
    ) -> None:
        self._dispatcher = dispatcher
        self._metadata_of = metadata_of
        endpoints: dict[str, Any] = {}
        for service in services:
            for method in service.methods:
                endpoints[f"/{service.full_name}/{method.name}"] = self._endpoint(service, method)
        self.paths = frozenset(endpoints)
        super().__init__(
            service=None,
            endpoints=lambda _service: endpoints,
            read_max_bytes=read_max_bytes,
            # Level 1: several times faster than 6 on metric columns, most of the size saving.
            compressions=[GzipCompression(level=1)],
            codecs=google_protobuf_codecs(),
        )

    @property
    def path(self) -> str:
        return "/"

    def _endpoint(self, service: ServiceDescriptor, method: MethodDescriptor) -> Any:
        name = f"/{service.full_name}/{method.name}"
        output = GetMessageClass(method.output_type)
        streaming = method.client_streaming, method.server_streaming
        info = MethodInfo(
            name=method.name,
            service_name=service.full_name,
            input=GetMessageClass(method.input_type),
            output=output,
            idempotency_level=IdempotencyLevel.UNKNOWN,
            stream_type={
                (False, False): StreamType.UNARY,
                (False, True): StreamType.SERVER_STREAM,
                (True, False): StreamType.CLIENT_STREAM,
                (True, True): StreamType.BIDI_STREAM,
            }[streaming],
        )
        if streaming == (False, False):
            return Endpoint.unary(info, self._unary(name, output))
        if streaming == (False, True):
            return Endpoint.server_stream(info, self._server_stream(name, output))
        if streaming == (True, False):
            return Endpoint.client_stream(info, _not_over_http(name))
        return Endpoint.bidi_stream(info, _not_over_http_stream(name))

    def _context(self, ctx: RequestContext[Any, Any]) -> HttpCallContext:
        try:
            metadata = self._metadata_of(ctx)
        except TracklaneError as exc:
            raise error_of(exc) from None
        return HttpCallContext(metadata, peer(ctx), timeout_ms=ctx.timeout_ms)

    def _unary(self, name: str, output: type[Any]) -> Callable[[Any, RequestContext[Any, Any]], Any]:
        async def call(request: Any, ctx: RequestContext[Any, Any]) -> Any:
            context = self._context(ctx)
            try:
                return _message(output, await self._dispatcher.unary(name, request, context))
            except HttpAbort as abort:
                raise connect_error(abort) from None

        return call

    def _server_stream(
        self, name: str, output: type[Any]
    ) -> Callable[[Any, RequestContext[Any, Any]], AsyncIterator[Any]]:
        async def call(request: Any, ctx: RequestContext[Any, Any]) -> AsyncIterator[Any]:
            context = self._context(ctx)
            try:
                async for response in self._dispatcher.server_stream(name, request, context):
                    yield _message(output, response)
            except HttpAbort as abort:
                raise connect_error(abort) from None

        return call


def _message(output: type[Any], response: Any) -> Any:
    """Handlers that write raw bytes on gRPC (DownloadArtifact) answer bytes: parse them here."""
    return output.FromString(response) if isinstance(response, bytes | bytearray) else response


def _client_streaming(name: str) -> ConnectError:
    return ConnectError(
        Code.UNIMPLEMENTED, f"{name} streams from the client, which HTTP/1.1 cannot carry: call it over gRPC"
    )


def _not_over_http(name: str) -> Callable[[Any, RequestContext[Any, Any]], Any]:
    async def call(_requests: Any, _ctx: RequestContext[Any, Any]) -> Any:
        raise _client_streaming(name)

    return call


def _not_over_http_stream(name: str) -> Callable[[Any, RequestContext[Any, Any]], AsyncIterator[Any]]:
    async def call(_requests: Any, _ctx: RequestContext[Any, Any]) -> AsyncIterator[Any]:
        raise _client_streaming(name)
        yield  # an async generator, as the endpoint kind requires

    return call
