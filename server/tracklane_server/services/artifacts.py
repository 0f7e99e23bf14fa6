"""ArtifactService: chunked upload/download, list, delete and presigned URLs (the artifacts issue)."""

from __future__ import annotations

from tracklane.v1 import artifacts_pb2, artifacts_pb2_grpc
from tracklane_server.services.base import fill_unimplemented


@fill_unimplemented(artifacts_pb2.DESCRIPTOR.services_by_name["ArtifactService"], "artifacts issue")
class ArtifactService(artifacts_pb2_grpc.ArtifactServiceServicer):
    """A run's files."""
