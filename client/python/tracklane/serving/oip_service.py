"""The Open Inference Protocol's ``inference.GRPCInferenceService`` for the served model, with gRPC
health and reflection beside it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from tracklane.exceptions import InvalidArgument, NotFound, TracklaneError, Unavailable
from tracklane.serving import tensors
from tracklane.serving.oip import open_inference_pb2 as pb
from tracklane.serving.oip import open_inference_pb2_grpc as pb_grpc
from tracklane.serving.payload import ScoringError
from tracklane.serving.scoring import ServedModel

__all__ = ["SERVICE_NAME", "InferenceServicer", "build_grpc_server"]

log = logging.getLogger("tracklane.serving")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """One model behind the protocol; ``ready`` turns False while the worker drains."""

    def __init__(self, model: ServedModel, ready: Callable[[], bool]) -> None:
        import tracklane

        self.model = model
        self.ready = ready
        self._server_metadata = pb.ServerMetadataResponse(name="tracklane", version=tracklane.__version__)
        flavors = sorted(f for f in model.pyfunc.metadata.flavors if f != "python_function")
        self._model_metadata = pb.ModelMetadataResponse(
            name=model.name,
            versions=[model.version] if model.version else [],
            platform=flavors[0] if flavors else "python_function",
            inputs=tensors.schema_tensors(model.input_schema),
            outputs=tensors.schema_tensors(model.output_schema),
        )

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.ready())

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        try:
            self._check_model(request.name, request.version)
        except TracklaneError as exc:
            await _abort(context, exc)
        return pb.ModelReadyResponse(ready=self.ready())

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Any
    ) -> pb.ServerMetadataResponse:
        return self._server_metadata

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        try:
            self._check_model(request.name, request.version)
        except TracklaneError as exc:
            await _abort(context, exc)
        return self._model_metadata

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        started = time.perf_counter()
        model = self.model
        try:
            self._check_model(request.model_name, request.model_version)
            data, params = tensors.decode_request(request, model.input_schema)
            try:
                predictions = await model.predict(data, params)
            except ScoringError as exc:
                field = "inputs" if exc.error_code == "INVALID_PARAMETER_VALUE" else ""
                raise InvalidArgument(exc.message, field=field) from None
            response = tensors.encode_response(
                predictions, model.name, model.version, request.id, model.output_schema
            )
        except TracklaneError as exc:
            model.metrics.observe("ModelInfer", exc.code.name, time.perf_counter() - started, exc.code.name)
            await _abort(context, exc)
        model.metrics.observe("ModelInfer", "OK", time.perf_counter() - started)
        return response

    def _check_model(self, name: str, version: str) -> None:
        if name != self.model.name:
            raise NotFound(
                f"model {name!r} is not served here; this server serves {self.model.name!r}", field="name"
            )
        if version and version != self.model.version:
            served = self.model.version or "no version"
            raise NotFound(
                f"model {name!r} version {version!r} is not served here (serving {served})", field="version"
            )


async def _abort(context: Any, exc: TracklaneError) -> None:
    status = rpc_status.to_status(exc.to_rpc_status())
    await context.abort(status.code, status.details, status.trailing_metadata)


def build_grpc_server(
    servicer: InferenceServicer, host: str, port: int, max_request_bytes: int
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:  # type: ignore[name-defined]
    """A grpc.aio server with the protocol, health and reflection; returns it with the bound port.

    Several workers bind the same port (SO_REUSEPORT) and the kernel spreads connections over them.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", -1),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    bound = server.add_insecure_port(f"{host}:{port}" if ":" not in host else f"[{host}]:{port}")
    if bound == 0:
        raise Unavailable(f"cannot bind the gRPC port {host}:{port}", field="grpc_port")
    return server, health_servicer, bound
