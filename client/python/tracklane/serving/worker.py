"""One serving process: the REST app (uvicorn) and the OIP gRPC server on one asyncio loop.

Started by the supervisor as ``python -m tracklane.serving.worker CONFIG_JSON`` (possibly with
another environment's interpreter). Both listeners set SO_REUSEPORT, so every worker binds the
same ports and the kernel spreads connections over them. On SIGTERM (or SIGINT) the worker stops
accepting, reports not ready, lets every request it accepted finish (up to the grace period), then
exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["WorkerConfig", "main", "run_worker"]

log = logging.getLogger("tracklane.serving")


@dataclass(frozen=True)
class WorkerConfig:
    """What one worker serves, and where."""

    model_dir: str
    model_name: str
    model_version: str = ""
    host: str = "127.0.0.1"
    port: int = 5000
    grpc_port: int = 8081  # 0: no gRPC
    max_batch_size: int = 1
    max_batch_delay_ms: float = 0.0
    max_request_bytes: int = 64 * 1024 * 1024
    grace_seconds: float = 30.0
    ready_fd: int = -1  # the worker writes one line here once it serves

    def to_json(self) -> str:
        """The form the supervisor passes on the command line."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        """Reads ``to_json``'s output."""
        return cls(**json.loads(text))


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with SO_REUSEPORT, shared by every worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Uvicorn:
    """uvicorn's Server with its signal handling left to the worker (which also stops gRPC)."""

    def __init__(self, app: Any, grace: float) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        config = uvicorn.Config(
            app,
            loop="none",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=int(grace),
            timeout_keep_alive=30,
        )
        self.server = Server(config)


async def run_worker(config: WorkerConfig) -> None:
    """Serves until SIGTERM/SIGINT, then drains."""
    from tracklane.serving.oip_service import InferenceServicer, build_grpc_server
    from tracklane.serving.rest import build_app
    from tracklane.serving.scoring import load_served_model

    try:
        model = load_served_model(
            config.model_dir,
            config.model_name,
            config.model_version,
            config.max_batch_size,
            config.max_batch_delay_ms,
        )
    except (ImportError, ValueError, OSError, RuntimeError) as exc:
        # A model that cannot load here (no pyfunc flavor, a missing package): one line, no traceback.
        print(f"tracklane: error: cannot load the model in {config.model_dir}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    model.batcher.start()
    draining = asyncio.Event()

    def ready() -> bool:
        return not draining.is_set()

    rest_socket = reuse_port_socket(config.host, config.port)
    uvicorn_server = _Uvicorn(build_app(model, config.max_request_bytes, ready), config.grace_seconds).server
    grpc_server = None
    health_servicer = None
    if config.grpc_port:
        from grpc_health.v1 import health_pb2

        grpc_server, health_servicer, _ = build_grpc_server(
            InferenceServicer(model, ready), config.host, config.grpc_port, config.max_request_bytes
        )
        await grpc_server.start()
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)

    loop = asyncio.get_running_loop()

    def stop() -> None:
        if not draining.is_set():
            log.info("worker %d draining", os.getpid())
            draining.set()
            uvicorn_server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    rest = asyncio.create_task(uvicorn_server.serve(sockets=[rest_socket]))
    # uvicorn has no "started" event to wait on.
    while not uvicorn_server.started and not rest.done():  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    if rest.done():
        rest.result()  # raises what stopped it
    _announce(config.ready_fd)
    await draining.wait()
    tasks = [rest]
    if grpc_server is not None and health_servicer is not None:
        await health_servicer.enter_graceful_shutdown()
        tasks.append(asyncio.create_task(grpc_server.stop(config.grace_seconds)))
    await asyncio.gather(*tasks)
    await model.batcher.close()


def _announce(fd: int) -> None:
    if fd < 0:
        return
    with contextlib.suppress(OSError):
        os.write(fd, f"ready {os.getpid()}\n".encode())
        os.close(fd)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m tracklane.serving.worker CONFIG_JSON``."""
    args = sys.argv[1:] if argv is None else argv
    config = WorkerConfig.from_json(args[0])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(process)d] %(message)s")
    try:
        import uvloop

        uvloop.run(run_worker(config))
    except ImportError:
        asyncio.run(run_worker(config))


if __name__ == "__main__":
    main()
