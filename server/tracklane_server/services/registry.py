"""RegistryService: registered models, versions, aliases, stages (the model registry issue)."""

from __future__ import annotations

from tracklane.v1 import registry_pb2, registry_pb2_grpc
from tracklane_server.services.base import fill_unimplemented


@fill_unimplemented(registry_pb2.DESCRIPTOR.services_by_name["RegistryService"], "model registry issue")
class RegistryService(registry_pb2_grpc.RegistryServiceServicer):
    """Registered models and their versions."""
