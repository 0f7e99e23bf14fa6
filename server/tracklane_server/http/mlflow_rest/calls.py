"""One HTTP request's calls into the servicers, through the gRPC server's interceptors.

The adapter never reaches a store: each MLflow endpoint is one or a few calls to the tracklane.v1
methods gRPC serves, made here with the request's credentials (the session cookie, a Bearer
token, or MLflow's Basic user + token) as call metadata, so authentication, permissions, limits
and exactly-once rules are the servicers' own.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from tracklane_server.http.call_context import HttpCallContext, Metadata, peer_of
from tracklane_server.http.dispatch import Dispatcher

__all__ = ["Call", "Handler", "Msg", "RawHandler", "handlers", "raw_handlers", "rpc"]

_NOT_METADATA = frozenset({"cookie", "host", "content-length", "connection", "transfer-encoding"})


@dataclass
class Call:
    """The calls one HTTP request makes; ``metadata`` carries its credentials."""

    dispatcher: Dispatcher
    metadata: Metadata
    peer: str
    request: Request | None = None
    #: Per-request memo (e.g. a run's experiment id, looked up once).
    memo: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, dispatcher: Dispatcher, request: Request, credentials: Callable[[Request, Metadata], Metadata]
    ) -> Call:
        metadata = tuple((k, v) for k, v in request.headers.items() if k not in _NOT_METADATA)
        client = request.client
        peer = peer_of((client.host, client.port) if client else None)
        return cls(dispatcher, credentials(request, metadata), peer, request)

    def _context(self) -> HttpCallContext:
        return HttpCallContext(self.metadata, self.peer)

    async def unary(self, method: str, request: Any) -> Any:
        """The response of a unary method; raises HttpAbort with the call's status."""
        return await self.dispatcher.unary(method, request, self._context())

    def server_stream(self, method: str, request: Any) -> AsyncGenerator[Any, None]:
        return self.dispatcher.server_stream(method, request, self._context())

    async def client_stream(self, method: str, requests: AsyncIterator[Any]) -> Any:
        return await self.dispatcher.client_stream(method, requests, self._context())


#: An MLflow request message: its class is built from descriptors at run time, so no static type.
Msg = Any
Handler = Callable[[Call, Any], Any]  # (call, MLflow request message) -> JSON dict
RawHandler = Callable[[Call, Request, Mapping[str, str]], Any]  # -> a Starlette Response

_HANDLERS: dict[str, Handler] = {}
_RAW: dict[str, RawHandler] = {}


def rpc(name: str, *, service: str = "MlflowService", raw: bool = False) -> Callable[[Any], Any]:
    """Registers the handler of MLflow's RPC ``name`` of ``service`` (as MLflow's protos name them,
    e.g. ``getRun`` of ``MlflowService``). A raw handler gets the HTTP request itself (bodies that
    are files, not JSON)."""

    def register(function: Any) -> Any:
        (_RAW if raw else _HANDLERS)[f"{service}.{name}"] = function
        return function

    return register


def handlers() -> Mapping[str, Handler]:
    return _HANDLERS


def raw_handlers() -> Mapping[str, RawHandler]:
    return _RAW
