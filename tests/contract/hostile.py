"""Shared pieces of the hostile-input suites: raw stubs, the refusal check, the bystander snapshot.

The suites talk to the server through the generated stubs (not tracklane.Client), so every byte of
a hostile request reaches the server exactly as written here.
"""

from __future__ import annotations

import queue
import struct
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tracklane import exceptions
from tracklane.testing import LocalServer
from tracklane.v1 import (
    artifacts_pb2_grpc,
    common_pb2,
    registry_pb2,
    registry_pb2_grpc,
    tracking_pb2,
    tracking_pb2_grpc,
)

# Text that has broken SQL builders, LIKE escaping, terminals and bidi-unaware UIs elsewhere. Every
# one is valid free text: it must be stored and read back byte for byte.
HOSTILE_TEXT = [
    "'; DROP TABLE runs; --",
    '" OR 1=1 --',
    "' OR '1'='1",
    "Robert'); DELETE FROM experiments WHERE ('1'='1",
    "/* c */ UNION SELECT * FROM tags",
    "`backquoted` and ``doubled``",
    "100% of _ and \\% and \\_",
    "$1 %s {0} ${x} :name ?",
    "\\x00 \\0 (a backslash, not a NUL)",
    "שלום \u202eRTL override\u202c end",
    "emoji 🚀🔥 with ZWJ 👩\u200d💻",
    "e\u0301 combining, \ufeff BOM, \u00a0 nbsp",
    "tab\tnewline\ncarriage\rreturn",
    "\U0010ffff last code point",
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass
class Stubs:
    """One channel's stubs for every service."""

    channel: grpc.Channel
    tracking: tracking_pb2_grpc.TrackingServiceStub
    registry: registry_pb2_grpc.RegistryServiceStub
    artifacts: artifacts_pb2_grpc.ArtifactServiceStub
    health: health_pb2_grpc.HealthStub


def open_stubs(server: LocalServer, *, max_send: int = 256 * 1024 * 1024) -> Iterator[Stubs]:
    """Stubs over a fresh channel; the client may send more than the server accepts."""
    with grpc.insecure_channel(
        f"127.0.0.1:{server.port}", options=[("grpc.max_send_message_length", max_send)]
    ) as channel:
        yield Stubs(
            channel,
            tracking_pb2_grpc.TrackingServiceStub(channel),
            registry_pb2_grpc.RegistryServiceStub(channel),
            artifacts_pb2_grpc.ArtifactServiceStub(channel),
            health_pb2_grpc.HealthStub(channel),
        )


def refused(call: Callable[..., Any], request: Any, code: grpc.StatusCode, field: str) -> str:
    """Calls and checks the error: ``code`` and ``field`` in the BadRequest detail."""
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    err = info.value
    assert isinstance(err, grpc.Call)
    message = err.details() or ""
    assert err.code() == code, f"{err.code()}: {message}"
    parsed = exceptions.from_rpc_error(err)
    # A repeated field may be named with its index: `order_by` or `order_by[0]`.
    assert parsed.field == field or parsed.field.startswith(f"{field}["), (
        f"field {parsed.field!r}: {message!r}"
    )
    return message


def invalid(call: Callable[..., Any], request: Any, field: str) -> str:
    """Refused with INVALID_ARGUMENT; the message itself names the field too."""
    message = refused(call, request, grpc.StatusCode.INVALID_ARGUMENT, field)
    assert field.split("[")[0] in message, message
    return message


def bits(value: float) -> bytes:
    """A double's exact bytes: compares NaN payloads and the sign of zero, unlike ==."""
    return struct.pack("<d", value)


def tag(key: str, value: str) -> common_pb2.Tag:
    return common_pb2.Tag(key=key, value=value)


@dataclass(frozen=True)
class Bystander:
    """Data stored before the hostile requests, compared after each one."""

    experiment_id: str
    run_id: str
    model: str


def make_bystander(stubs: Stubs, suffix: str) -> Bystander:
    """An experiment, a run with params, metrics (NaN and ±inf included) and tags, a model version."""
    t = stubs.tracking
    experiment_id = t.CreateExperiment(
        tracking_pb2.CreateExperimentRequest(name=f"bystander-{suffix}", tags=[tag("keep", "me")])
    ).experiment.experiment_id
    run_id = t.CreateRun(
        tracking_pb2.CreateRunRequest(experiment_id=experiment_id, run_name="bystander", tags=[tag("t", "v")])
    ).run.info.run_id
    t.LogBatch(
        tracking_pb2.LogBatchRequest(
            run_id=run_id,
            metrics=[
                tracking_pb2.Metric(key="m", value=v, step=i, timestamp_ms=1000 + i)
                for i, v in enumerate([0.5, float("nan"), float("inf"), float("-inf"), -0.0])
            ],
            params=[tracking_pb2.Param(key="p", value="1")],
        )
    )
    model = f"bystander-{suffix}"
    stubs.registry.CreateRegisteredModel(registry_pb2.CreateRegisteredModelRequest(name=model))
    stubs.registry.CreateModelVersion(
        registry_pb2.CreateModelVersionRequest(name=model, source=f"runs:/{run_id}/model", run_id=run_id)
    )
    return Bystander(experiment_id, run_id, model)


def snapshot(stubs: Stubs, b: Bystander) -> list[bytes]:
    """Everything the bystander stored, as exact bytes (update times excluded: none should change)."""
    t = stubs.tracking
    experiment = t.GetExperiment(tracking_pb2.GetExperimentRequest(experiment_id=b.experiment_id)).experiment
    run = t.GetRun(tracking_pb2.GetRunRequest(run_id=b.run_id)).run
    history = t.GetMetricHistory(tracking_pb2.GetMetricHistoryRequest(run_id=b.run_id, key="m"))
    model = stubs.registry.GetRegisteredModel(registry_pb2.GetRegisteredModelRequest(name=b.model))
    version = stubs.registry.GetModelVersion(registry_pb2.GetModelVersionRequest(name=b.model, version=1))
    return [m.SerializeToString(deterministic=True) for m in (experiment, run, history, model, version)]


def serving(stubs: Stubs) -> bool:
    reply = stubs.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


class OpenStream:
    """A StreamMetrics call kept open: batches go in when the test says, answers are read one by one."""

    def __init__(self, channel: grpc.Channel, run_id: str, metadata: Sequence[tuple[str, str]] = ()) -> None:
        self.run_id = run_id
        self.writer_id = f"writer-{uuid.uuid4().hex[:8]}"
        self._sequence = 0
        self._requests: queue.Queue[Any] = queue.Queue()
        stub = tracking_pb2_grpc.TrackingServiceStub(channel)
        self._call = stub.StreamMetrics(iter(self._requests.get, None), metadata=tuple(metadata), timeout=120)
        self._answers: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for answer in self._call:
                self._answers.put(answer)
            self._answers.put(grpc.StatusCode.OK)
        except grpc.RpcError as err:
            self._answers.put(err.code())  # type: ignore[attr-defined]

    def send(self, step: int) -> None:
        self._sequence += 1
        self._requests.put(
            tracking_pb2.StreamMetricsRequest(
                run_id=self.run_id,
                writer_id=self.writer_id,
                sequence=self._sequence,
                keys=["loss"],
                key_indices=[0],
                values=[float(step)],
                steps=[step],
                timestamps_ms=[1000 + step],
            )
        )

    def answer(self, timeout: float = 30) -> Any:
        """The next ack, or the status code the stream ended with."""
        return self._answers.get(timeout=timeout)

    def close(self) -> None:
        self._requests.put(None)
        self._call.cancel()
