"""Every field of every unary RPC, one hostile value at a time, over real gRPC on every backend.

The requests are generated from the service descriptors, so a new RPC or field is covered without
editing this file. Each request is a plausible one (real run, experiment and model) with exactly one
field made hostile: a NUL character, a string far over any limit, a negative or extreme integer,
NaN or ±infinity in a double, an out-of-range Timestamp, an unknown enum number. The answer may be
any client error (or success where the value is legal), never INTERNAL or UNKNOWN; a refusal names
a field; and the server's health and the bystander's data survive all of them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from tests.contract.hostile import (
    INT64_MAX,
    INT64_MIN,
    Bystander,
    Stubs,
    make_bystander,
    serving,
    snapshot,
)
from tracklane import exceptions
from tracklane.v1 import artifacts_pb2, registry_pb2, tracking_pb2

# Long-lived streams are the streaming suite's: WatchRun on a valid run never ends by itself.
SKIPPED = {"StreamMetrics", "WatchRun", "UploadArtifact"}
CLIENT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.OUT_OF_RANGE,
}

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (INT64_MIN, INT64_MAX),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
}


@dataclass(frozen=True)
class Hostile:
    """One request with one hostile field."""

    service: str
    method: MethodDescriptor
    path: str  # e.g. "tags[0].value"
    label: str  # what the value is, for the test id
    value: Any

    @property
    def id(self) -> str:
        return f"{self.method.name}.{self.path}={self.label}"


def _values(field: FieldDescriptor) -> list[tuple[str, Any]]:
    if field.type == FieldDescriptor.TYPE_STRING:
        return [("nul", "a\x00b"), ("20k", "x" * 20_000)]
    if field.type in _INT_RANGES:
        low, high = _INT_RANGES[field.type]
        return [("min", low), ("max", high)] + ([("-1", -1)] if low < 0 else [])
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return [("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf)]
    if field.type == FieldDescriptor.TYPE_ENUM:
        return [("enum999", 999)]
    return []


def _fields(
    message: Descriptor, prefix: str = "", depth: int = 0
) -> Iterator[tuple[str, FieldDescriptor, Any]]:
    """(path, field, value) for every scalar reachable in ``message``, three levels deep."""
    for field in message.fields:
        repeated = field.is_repeated
        path = f"{prefix}{field.name}{'[0]' if repeated else ''}"
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.full_name == "google.protobuf.Timestamp":
                for label, ts in [
                    ("ts-max", (INT64_MAX, 0)),
                    ("ts-min", (INT64_MIN, 0)),
                    ("ts-nanos", (0, -1)),
                ]:
                    yield f"{path}", field, (label, ts)
            elif field.message_type.full_name != "google.protobuf.FieldMask" and depth < 3:
                yield from _fields(field.message_type, f"{path}.", depth + 1)
            continue
        for value in _values(field):
            yield path, field, value


def _cases() -> list[Hostile]:
    cases = []
    for module in (tracking_pb2, registry_pb2, artifacts_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.client_streaming or method.name in SKIPPED:
                    continue
                for path, _field, (label, value) in _fields(method.input_type):
                    cases.append(Hostile(service.full_name, method, path, label, value))
    return cases


CASES = [pytest.param(c, id=c.id) for c in _cases()]


@pytest.fixture(scope="module")
def victim(stubs: Stubs) -> Bystander:
    """What the plausible parts of the requests point at; the requests may change it."""
    return make_bystander(stubs, "victim-" + uuid.uuid4().hex[:10])


def _plausible(service: str, field: FieldDescriptor, v: Bystander) -> Any:
    """A valid value for a field the hostile one is not, so the request gets past its other checks."""
    known: dict[str, Any] = {
        "run_id": v.run_id,
        "experiment_id": v.experiment_id,
        "name": v.model,  # the experiment has the model's name too
        "version": 1,
        "key": "m",
        "source": f"runs:/{v.run_id}/model",
        "alias": "champion",
        "value": "v",
    }
    repeated = {"experiment_ids": [v.experiment_id], "run_ids": [v.run_id], "keys": ["m"]}
    return repeated.get(field.name, known.get(field.name))


def _request(case: Hostile, v: Bystander) -> Message:
    cls = GetMessageClass(case.method.input_type)
    request = cls()
    for field in case.method.input_type.fields:
        value = _plausible(case.service, field, v)
        if value is not None:
            target = getattr(request, field.name)
            target.extend(value) if isinstance(value, list) else setattr(request, field.name, value)
    _set(request, case.path.split("."), case.value)
    return request


def _set(message: Message, parts: list[str], value: Any) -> None:
    name, repeated = parts[0].removesuffix("[0]"), parts[0].endswith("[0]")
    field = message.DESCRIPTOR.fields_by_name[name]
    container = getattr(message, name)
    if len(parts) > 1 or field.type == FieldDescriptor.TYPE_MESSAGE:
        child = (container.add() if not container else container[0]) if repeated else container
        if len(parts) == 1:  # a Timestamp
            child.seconds, child.nanos = value
            return
        _set(child, parts[1:], value)
        return
    if repeated:
        del container[:]
        container.append(value)
    else:
        setattr(message, name, value)


def _call(stubs: Stubs, path: str, server_streaming: bool, request: Message) -> grpc.Call | None:
    """The call's error, or None when it succeeded."""
    serialize = type(request).SerializeToString
    try:
        if server_streaming:
            for _ in stubs.channel.unary_stream(path, request_serializer=serialize)(request, timeout=30):
                pass
        else:
            stubs.channel.unary_unary(path, request_serializer=serialize)(request, timeout=30)
    except grpc.RpcError as err:
        if not isinstance(err, grpc.Call):
            raise
        return err
    return None


@pytest.mark.parametrize("case", CASES)
def test_one_hostile_field(
    stubs: Stubs, victim: Bystander, bystander: tuple[Bystander, list[bytes]], case: Hostile
) -> None:
    request = _request(case, victim)
    path = f"/{case.service}/{case.method.name}"
    err = _call(stubs, path, case.method.server_streaming, request)
    if err is None:
        assert case.label != "nul", "a NUL character can never be stored (PostgreSQL refuses it)"
    else:
        message = err.details() or ""
        assert err.code() in CLIENT_ERRORS, f"{err.code()}: {message[:300]}"
        assert len(message) < 2_000, "messages echo at most a clipped copy of the input"
        if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
            assert exceptions.from_rpc_error(err).field, message
    assert serving(stubs)


def test_bystander_is_intact(stubs: Stubs, bystander: tuple[Bystander, list[bytes]]) -> None:
    b, before = bystander
    assert snapshot(stubs, b) == before
