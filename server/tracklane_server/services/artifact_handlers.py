"""Registers ArtifactService with raw-bytes (de)serialization for its two byte-streaming RPCs.

UploadArtifact receives its requests, and DownloadArtifact sends its responses, as serialized
bytes that :mod:`tracklane._artifact_wire` reads and writes without extra copies of the payload.
Every other RPC uses the generated classes. The wire format is unchanged, so reflection, grpcurl
and generated clients in any language see the service exactly as ``artifacts.proto`` declares it.
"""

from __future__ import annotations

from typing import Any

import grpc

from tracklane.v1 import artifacts_pb2

__all__ = ["RAW_REQUESTS", "RAW_RESPONSES", "add_artifact_service"]

_SERVICE = artifacts_pb2.DESCRIPTOR.services_by_name["ArtifactService"]
RAW_REQUESTS = frozenset({"UploadArtifact"})
RAW_RESPONSES = frozenset({"DownloadArtifact"})


def add_artifact_service(servicer: Any, server: grpc.aio.Server) -> None:
    """Like the generated ``add_ArtifactServiceServicer_to_server``, with raw bytes where named above."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in _SERVICE.methods:
        request = getattr(artifacts_pb2, method.input_type.name)
        response = getattr(artifacts_pb2, method.output_type.name)
        kinds = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }
        make: Any = kinds[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=None if method.name in RAW_REQUESTS else request.FromString,
            response_serializer=None if method.name in RAW_RESPONSES else response.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(_SERVICE.full_name, handlers)  # type: ignore[attr-defined]
