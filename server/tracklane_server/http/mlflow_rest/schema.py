"""MLflow's REST API as data: its messages in a pool of their own, its endpoints as a route table.

Both come from the generated module (proto/generate.py, from the descriptors MLflow publishes):
nothing here is written per endpoint. The pool is private, so MLflow's message names can never
clash with an ``mlflow`` package imported in the same process, and none is needed at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    field_mask_pb2,
    struct_pb2,
    timestamp_pb2,
)
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from tracklane_server.http.mlflow_rest.generated import mlflow_api

__all__ = ["MLFLOW_VERSION", "PREFIXES", "Route", "Routes", "message_class"]

MLFLOW_VERSION = mlflow_api.MLFLOW_VERSION
#: MLflow serves every endpoint under /api (its clients) and /ajax-api (its web UI).
PREFIXES = ("/api/", "/ajax-api/")
_PARAMETER = re.compile(r"<path:(\w+)>|<(\w+)>|\{(\w+)\}")


def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for module in (timestamp_pb2, duration_pb2, field_mask_pb2, struct_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    for file in descriptor_pb2.FileDescriptorSet.FromString(mlflow_api.DESCRIPTORS).file:
        pool.Add(file)
    return pool


_POOL = _pool()


@cache
def message_class(full_name: str) -> type[Message]:
    """The class of one of MLflow's messages, e.g. ``mlflow.GetRun``."""
    return GetMessageClass(_POOL.FindMessageTypeByName(full_name))


@dataclass(frozen=True)
class Route:
    """One endpoint: an HTTP method and path, and the RPC it stands for."""

    method: str
    path: str
    service: str
    rpc: str
    request: Descriptor
    response: Descriptor


class Routes:
    """Finds the route of a request path (under /api or /ajax-api) and its path parameters."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Route] = {}
        self._patterns: list[tuple[str, re.Pattern[str], Route]] = []
        for method, path, service, rpc, request, response in mlflow_api.ENDPOINTS:
            route = Route(
                method,
                path,
                service,
                rpc,
                _POOL.FindMessageTypeByName(request),
                _POOL.FindMessageTypeByName(response),
            )
            tail = path.removeprefix("/api")
            if _PARAMETER.search(tail) is None:
                self._exact.setdefault((method, tail), route)
            else:
                self._patterns.append((method, re.compile(_regex(tail)), route))

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from self._exact.values()
        for _, _, route in self._patterns:
            yield route

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route and path parameters of ``path`` (which starts with /api/ or /ajax-api/)."""
        tail = path.removeprefix("/ajax-api" if path.startswith("/ajax-api/") else "/api")
        if (route := self._exact.get((method, tail))) is not None:
            return route, {}
        for wanted, pattern, route in self._patterns:
            if wanted == method and (found := pattern.fullmatch(tail)) is not None:
                return route, found.groupdict()
        return None

    def allows(self, path: str) -> list[str]:
        """The methods some route serves at ``path`` (for 405 versus 404)."""
        tail = path.removeprefix("/ajax-api" if path.startswith("/ajax-api/") else "/api")
        methods = [m for (m, p) in self._exact if p == tail]
        methods += [m for m, pattern, _ in self._patterns if pattern.fullmatch(tail)]
        return sorted(set(methods))


def _regex(path: str) -> str:
    out, last = [], 0
    for found in _PARAMETER.finditer(path):
        out.append(re.escape(path[last : found.start()]))
        if found.group(1):
            out.append(f"(?P<{found.group(1)}>.+)")
        else:
            out.append(f"(?P<{found.group(2) or found.group(3)}>[^/]+)")
        last = found.end()
    out.append(re.escape(path[last:]))
    return "".join(out)
