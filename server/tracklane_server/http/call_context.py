"""What a servicer and the interceptors see of an HTTP call: grpc.aio.ServicerContext's interface.

The HTTP adapters (Connect, later MLflow's REST) run the gRPC server's own interceptor chain and
servicer methods; this object stands in for gRPC's context. ``abort`` raises :class:`HttpAbort`
(a grpc.aio.AbortError, so the error interceptor lets it through as gRPC's would) carrying the
status, message and trailing metadata (``grpc-status-details-bin``) for the adapter to translate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import grpc

__all__ = ["HttpAbort", "HttpCallContext", "Metadata", "peer_of"]

Metadata = tuple[tuple[str, str | bytes], ...]
_STATUS_DETAILS = "grpc-status-details-bin"


class HttpAbort(grpc.aio.AbortError):
    """The call ended with a status: ``context.abort(code, details, trailing_metadata)``."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Sequence[Any] = ()) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailing_metadata = tuple(trailing_metadata or ())

    @property
    def status_details(self) -> bytes:
        """The serialized google.rpc.Status of the error interceptor, or b"" when there is none."""
        for key, value in self.trailing_metadata:
            if key == _STATUS_DETAILS and isinstance(value, bytes):
                return value
        return b""


def peer_of(client: tuple[str, int] | None) -> str:
    """gRPC's spelling of a peer address: ``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000``."""
    if client is None:
        return "unknown"
    host, port = client[0], client[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


class HttpCallContext:
    """One HTTP call's context, with the parts of grpc.aio.ServicerContext that handlers use."""

    def __init__(self, metadata: Metadata, peer: str, *, timeout_ms: float | None = None) -> None:
        self._metadata = metadata
        self._peer = peer
        self._deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._trailing: tuple[Any, ...] = ()
        self._callbacks: list[Callable[[Any], None]] = []
        self._done = False
        self._cancelled = False

    # -- what the call came with -------------------------------------------------------------------

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}  # no client certificates over HTTP

    # -- ending it ----------------------------------------------------------------------------------

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> NoReturn:
        raise HttpAbort(code, details, trailing_metadata or self._trailing)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def set_trailing_metadata(self, trailing_metadata: Any) -> None:
        self._trailing = tuple(trailing_metadata)

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    def set_compression(self, _compression: Any) -> None:
        """Compression is negotiated by the HTTP layer."""

    def disable_next_message_compression(self) -> None:
        """Compression is negotiated by the HTTP layer."""

    async def send_initial_metadata(self, _metadata: Any) -> None:
        """Headers are written by the HTTP layer."""

    # -- its life ------------------------------------------------------------------------------------

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._callbacks.append(callback)

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def finish(self, *, cancelled: bool = False) -> None:
        """Called once by the adapter when the call ends; runs the done callbacks."""
        if self._done:
            return
        self._done = True
        self._cancelled = cancelled
        for callback in self._callbacks:
            callback(self)

    async def write(self, _message: Any) -> None:
        raise HttpAbort(
            grpc.StatusCode.INTERNAL, "a handler wrote with context.write, which HTTP calls do not support"
        )

    async def read(self) -> Any:
        await asyncio.sleep(0)
        raise HttpAbort(grpc.StatusCode.UNIMPLEMENTED, "client streaming is not served over HTTP; use gRPC")
