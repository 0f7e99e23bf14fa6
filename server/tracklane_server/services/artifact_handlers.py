"""Registers ArtifactService with raw-bytes (de)serialization for its two byte-streaming RPCs.

UploadArtifact receives its requests, and DownloadArtifact sends its responses, as serialized
bytes that :mod:`tracklane.wire.artifacts` reads and writes without extra copies of the payload.
Every other RPC uses the generated classes. The wire format is unchanged, so reflection, grpcurl
and generated clients in any language see the service exactly as ``artifacts.proto`` declares it.
"""

from __future__ import annotations

from typing import Any

import grpc

from tracklane.v1 import artifacts_pb2
from tracklane_server.services.service_handlers import add_service

__all__ = ["RAW_REQUESTS", "RAW_RESPONSES", "add_artifact_service"]

RAW_REQUESTS = frozenset({"UploadArtifact"})
RAW_RESPONSES = frozenset({"DownloadArtifact"})


def add_artifact_service(servicer: Any, server: grpc.aio.Server) -> None:
    """Like the generated ``add_ArtifactServiceServicer_to_server``, with raw bytes where named above."""
    add_service(
        servicer,
        server,
        artifacts_pb2,
        "ArtifactService",
        request_deserializers=dict.fromkeys(RAW_REQUESTS),
        raw_responses=RAW_RESPONSES,
    )
