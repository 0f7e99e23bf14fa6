"""Registers a servicer like the generated ``add_*Servicer_to_server``, with chosen (de)serializers.

Some RPCs read or write their messages without the generated classes: StreamMetrics decodes its
point columns straight into numpy, the artifact byte streams handle raw bytes. The wire format is
unchanged, so reflection, grpcurl and generated clients in any language see the service exactly
as its .proto declares it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import ModuleType
from typing import Any

import grpc

__all__ = ["add_service"]

_KINDS: dict[tuple[bool, bool], Any] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_service(
    servicer: Any,
    server: grpc.aio.Server,
    messages: ModuleType,
    service: str,
    *,
    request_deserializers: Mapping[str, Callable[[bytes], Any] | None] | None = None,
    raw_responses: Collection[str] = (),
) -> None:
    """Adds ``service`` (declared in the ``messages`` *_pb2 module) served by ``servicer``.

    Args:
        request_deserializers: Per method name, what turns request bytes into the handler's
            request (None: the bytes as they are); other methods parse the generated class.
        raw_responses: Methods whose handlers answer with serialized bytes.
    """
    descriptor = messages.DESCRIPTOR.services_by_name[service]
    custom = request_deserializers or {}
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in descriptor.methods:
        request = getattr(messages, method.input_type.name)
        response = getattr(messages, method.output_type.name)
        make = _KINDS[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=custom.get(method.name, request.FromString),
            response_serializer=None if method.name in raw_responses else response.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(descriptor.full_name, handlers),))
    server.add_registered_method_handlers(descriptor.full_name, handlers)  # type: ignore[attr-defined]
