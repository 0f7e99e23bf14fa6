"""``tracklane models serve``: fetch the model once, start N workers on shared ports, drain on SIGTERM.

The supervisor downloads the model (through the public Client, like any user), prepares its
environment, reserves the ports (a bound, not listening SO_REUSEPORT socket keeps port 0's pick
for the workers), starts the workers, waits until each one serves and prints one line saying
where. SIGTERM or SIGINT is passed to every worker, which finishes what it accepted; the
supervisor exits when they all have.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tracklane.exceptions import FailedPrecondition, TracklaneError, Unavailable
from tracklane.serving.metrics import MULTIPROC_ENV
from tracklane.serving.worker import WorkerConfig

if TYPE_CHECKING:
    from tracklane.client import Client

__all__ = ["ResolvedModel", "resolve_model", "serve"]

READY_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class ResolvedModel:
    """A model URI made local: its folder, and the name and version the protocols report."""

    model_dir: str
    name: str
    version: str


def resolve_model(
    model_uri: str, dst_path: str | None = None, tracking_uri: str | None = None
) -> ResolvedModel:
    """Downloads (when remote) the model at ``model_uri`` and names it.

    ``models:/`` URIs give the registered name and version; other URIs the folder's name.
    """
    from tracklane.client import Client
    from tracklane.models.uri import download_model

    scheme = urlsplit(model_uri).scheme.lower()
    if scheme in ("models", "runs"):
        if tracking_uri is None:  # the fluent API's client (set_tracking_uri, TRACKLANE_TRACKING_URI)
            from tracklane import fluent

            return _resolve_remote(model_uri, scheme, dst_path, fluent.default_client())
        with Client(tracking_uri) as client:
            return _resolve_remote(model_uri, scheme, dst_path, client)
    local = download_model(model_uri, dst_path)
    if not os.path.isfile(os.path.join(local, "MLmodel")):
        raise FailedPrecondition(
            f"{model_uri} is not a model folder: it has no MLmodel file", field="model_uri"
        )
    return ResolvedModel(local, os.path.basename(local.rstrip("/")) or "model", "")


def _resolve_remote(model_uri: str, scheme: str, dst_path: str | None, client: Client) -> ResolvedModel:
    from tracklane.models.uri import download_model, registered_version

    local = download_model(model_uri, dst_path, client=client)
    if scheme == "models":
        version = registered_version(model_uri, client)
        return ResolvedModel(local, version.name, str(version.version))
    return ResolvedModel(local, os.path.basename(local.rstrip("/")) or "model", "")


def _reserve(host: str, port: int) -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket: fixes port 0's choice and keeps it ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise Unavailable(f"cannot bind {host}:{port}: {exc.strerror}") from None
    return sock


def serve(
    model: ResolvedModel,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    grpc_port: int = 8081,
    workers: int = 1,
    python: str | None = None,
    max_batch_size: int = 1,
    max_batch_delay_ms: float = 0.0,
    max_request_bytes: int = 64 * 1024 * 1024,
    grace_seconds: float = 30.0,
    extra_env: dict[str, str] | None = None,
) -> int:
    """Serves until SIGTERM/SIGINT; returns the exit status (0 when every worker drained cleanly).

    Args:
        model: The local model folder with its name and version.
        python: The interpreter that runs the workers (another environment's); default this one.
        (the others): As the ``tracklane models serve`` flags.

    Raises:
        TracklaneError: a port cannot be bound or a worker failed to start.
    """
    if workers < 1:
        raise FailedPrecondition("--workers must be at least 1", field="workers")
    holders = [_reserve(host, port)]
    port = holders[0].getsockname()[1]
    if grpc_port:
        holders.append(_reserve(host, grpc_port))
        grpc_port = holders[1].getsockname()[1]
    metrics_dir = tempfile.mkdtemp(prefix="tracklane-serve-metrics-")
    env = {**os.environ, **(extra_env or {}), MULTIPROC_ENV: metrics_dir}
    config = WorkerConfig(
        model_dir=model.model_dir,
        model_name=model.name,
        model_version=model.version,
        host=host,
        port=port,
        grpc_port=grpc_port,
        max_batch_size=max_batch_size,
        max_batch_delay_ms=max_batch_delay_ms,
        max_request_bytes=max_request_bytes,
        grace_seconds=grace_seconds,
    )
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(workers):
            procs.append(_start_worker(python or sys.executable, config, env))
        if not stopping:
            _wait_ready(procs)
            grpc = f", OIP gRPC on {host}:{grpc_port}" if grpc_port else ""
            print(
                f"tracklane models serve: {model.name}"
                + (f" version {model.version}" if model.version else "")
                + f" on http://{host}:{port}{grpc}, {workers} worker(s)",
                flush=True,
            )
        codes = [proc.wait() for proc in procs]
    except BaseException:
        forward(signal.SIGTERM, None)
        for proc in procs:
            try:
                proc.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for holder in holders:
            holder.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    bad = [code for code in codes if code not in (0, -signal.SIGTERM, -signal.SIGINT)]
    return bad[0] if bad else 0


def _start_worker(python: str, config: WorkerConfig, env: dict[str, str]) -> subprocess.Popen[bytes]:
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [python, "-m", "tracklane.serving.worker", replace(config, ready_fd=write_fd).to_json()],
            env=env,
            pass_fds=(write_fd,),
        )
    finally:
        os.close(write_fd)
    proc.ready_fd = read_fd  # type: ignore[attr-defined]
    return proc


def _wait_ready(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Blocks until every worker wrote its ready line; a worker that exits first is an error."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    for proc in procs:
        fd: int = proc.ready_fd  # type: ignore[attr-defined]
        try:
            line = b""
            while not line.endswith(b"\n"):
                if time.monotonic() > deadline:
                    raise Unavailable(f"a worker did not start within {READY_TIMEOUT_SECONDS:.0f} s")
                chunk = os.read(fd, 64)  # returns b"" when the worker exits without a line
                if not chunk:
                    code = proc.wait()
                    raise TracklaneError(f"a worker exited with status {code} before serving (see above)")
                line += chunk
        finally:
            os.close(fd)
