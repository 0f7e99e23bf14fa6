"""The connection every group of client methods shares: channel, stubs, timeout, error mapping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from tracklane import _channel
from tracklane.exceptions import from_rpc_error
from tracklane.v1 import artifacts_pb2_grpc, registry_pb2_grpc, tracking_pb2_grpc

Resp = TypeVar("Resp")


class ClientBase:
    """Holds one channel and a stub per service; ``tracklane.Client`` adds the methods."""

    def __init__(
        self, tracking_uri: str | None = None, *, timeout: float = 60.0, token: str | None = None
    ) -> None:
        self.tracking_uri = _channel.resolve_tracking_uri(tracking_uri)
        self.timeout = timeout
        self._channel = _channel.make_channel(self.tracking_uri, token=token)
        self._tracking = tracking_pb2_grpc.TrackingServiceStub(self._channel)
        self._artifacts = artifacts_pb2_grpc.ArtifactServiceStub(self._channel)
        self._registry = registry_pb2_grpc.RegistryServiceStub(self._channel)

    def close(self) -> None:
        """Closes the connection."""
        self._channel.close()

    def _call(self, method: Callable[..., Resp], request: Any) -> Resp:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
