"""Connections and calls that hold a real ``tracklane server`` process without doing anything: sockets
that never speak HTTP/2, connections without calls, uploads that send nothing, streams opened with
a fresh client id each; and listening on IPv6.
"""

from __future__ import annotations

import queue
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.conftest import BACKENDS
from tests.contract.hostile import OpenStream
from tests.servers import ServerProcess, ServerStartError, server_on_backend, start_server
from tracklane.v1 import artifacts_pb2, artifacts_pb2_grpc, tracking_pb2, tracking_pb2_grpc
from tracklane.wire.headers import CLIENT_ID_HEADER

pytestmark = pytest.mark.timeout(180)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _closed_by_server(sockets: list[socket.socket], within: float) -> int:
    """How many of ``sockets`` the server closed within ``within`` seconds."""
    deadline = time.monotonic() + within
    closed: set[int] = set()
    while len(closed) < len(sockets) and time.monotonic() < deadline:
        for i, sock in enumerate(sockets):
            if i in closed:
                continue
            try:
                while sock.recv(65536):  # whatever the server said (SETTINGS, GOAWAY) until it closes
                    pass
                closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.05)
    return len(closed)


def _connect(server: ServerProcess, count: int, send: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((server.host, server.port), timeout=5)
        if send:
            sock.sendall(send)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


@pytest.mark.parametrize(
    ("send", "flag"),
    [
        (b"", "--handshake-timeout-seconds"),  # not even the preface
        (PREFACE, "--handshake-timeout-seconds"),  # the preface, never its SETTINGS
        (PREFACE + EMPTY_SETTINGS, "--connection-idle-seconds"),  # a connection never used for a call
    ],
    ids=["silent", "preface-only", "no-call"],
)
def test_connections_that_do_nothing_are_closed(tmp_path: Path, send: bytes, flag: str) -> None:
    with start_server(flag, "1", data_dir=tmp_path / "data") as server:
        sockets = _connect(server, 100, send)
        try:
            assert _closed_by_server(sockets, within=10) == len(sockets)
            with grpc.insecure_channel(server.address) as channel:  # and the server still serves
                tracking_pb2_grpc.TrackingServiceStub(channel).GetExperiment(
                    tracking_pb2.GetExperimentRequest(experiment_id="0"), timeout=10
                )
        finally:
            for sock in sockets:
                sock.close()


@pytest.fixture(params=BACKENDS)
def upload_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    args = ("--upload-idle-timeout-seconds", "1")
    with server_on_backend(request, tmp_path / "data", *args, s3_prefix="idle") as process:
        yield process


def test_uploads_that_send_nothing_are_ended(upload_server: ServerProcess) -> None:
    with grpc.insecure_channel(upload_server.address) as channel:
        run_id = (
            tracking_pb2_grpc.TrackingServiceStub(channel)
            .CreateRun(tracking_pb2.CreateRunRequest(), timeout=30)
            .run.info.run_id
        )
        artifacts = artifacts_pb2_grpc.ArtifactServiceStub(channel)
        stalled: list[queue.Queue[Any]] = []
        calls = []
        for i in range(20):
            requests: queue.Queue[Any] = queue.Queue()
            if i % 2:  # half send their header (and a first chunk), then nothing
                requests.put(
                    artifacts_pb2.UploadArtifactRequest(
                        header=artifacts_pb2.UploadHeader(run_id=run_id, path=f"f{i}.bin")
                    )
                )
                requests.put(artifacts_pb2.UploadArtifactRequest(chunk=b"x" * 1000))
            stalled.append(requests)
            calls.append(artifacts.UploadArtifact.future(iter(requests.get, None), timeout=60))
        started = time.monotonic()
        codes = [call.exception().code() for call in calls]  # type: ignore[union-attr]
        assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * 20
        assert time.monotonic() - started < 15
        for requests in stalled:
            requests.put(None)
        listed = artifacts.ListArtifacts(artifacts_pb2.ListArtifactsRequest(run_id=run_id), timeout=30)
        assert list(listed.files) == []  # nothing half-written is visible


def test_fresh_client_ids_do_not_lift_the_per_peer_stream_limit(tmp_path: Path) -> None:
    """Without auth the limit is per peer address: any number of client ids from one machine."""
    with (
        start_server("--max-streams-per-user", "3", data_dir=tmp_path / "data") as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        run_id = (
            tracking_pb2_grpc.TrackingServiceStub(channel)
            .CreateRun(tracking_pb2.CreateRunRequest(), timeout=30)
            .run.info.run_id
        )
        streams = [OpenStream(channel, run_id, [(CLIENT_ID_HEADER, uuid.uuid4().hex)]) for _ in range(4)]
        try:
            for step, stream in enumerate(streams[:3]):
                stream.send(step)
                assert stream.answer().points_written == 1
            assert streams[3].answer() == grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            for stream in streams:
                stream.close()


# -- IPv6 --------------------------------------------------------------------------------------------


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback on this machine")


def _free_ipv6_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.bind(("::1", 0))
        return int(probe.getsockname()[1])


@needs_ipv6
@pytest.mark.parametrize("fixed", [False, True], ids=["port-0", "fixed-port"])
def test_the_server_listens_on_ipv6(tmp_path: Path, fixed: bool) -> None:
    bind = f"[::1]:{_free_ipv6_port() if fixed else 0}"
    with start_server(data_dir=tmp_path / "data", bind=bind) as server:
        assert server.host == "::1"
        assert any(f"listening on [::1]:{server.port}" in line for line in server.listening_lines())
        with grpc.insecure_channel(f"[::1]:{server.port}") as channel:
            created = tracking_pb2_grpc.TrackingServiceStub(channel).CreateExperiment(
                tracking_pb2.CreateExperimentRequest(name=f"v6-{uuid.uuid4().hex[:6]}"), timeout=30
            )
        assert created.experiment.experiment_id
        if fixed:  # the same address again: one clear line, not a hang or a traceback
            with pytest.raises(ServerStartError, match=r"cannot listen on \[::1\]"):
                start_server(data_dir=tmp_path / "other", bind=bind, ready_timeout=30)
