"""A real Tracklane server in this process, on a free loopback port: for tests and notebooks.

    with tracklane.testing.LocalServer(data_dir=tmp_path) as server:
        client = tracklane.Client(server.uri)

The server runs its own event loop in a background thread; it is the same server as
``tracklane server`` (same stores, interceptors, health and reflection).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = ["LocalServer"]


class LocalServer:
    """Starts on ``start()`` (or ``with``), stops on ``stop()``; restartable on the same data.

    Args:
        data_dir: Folder for the embedded default (SQLite and artifacts) when no URIs are given.
        **settings: Any server setting by its name (``backend_store_uri``, ``artifact_root``,
            ``s3_endpoint_url``...), as in ``tracklane server --help``.
    """

    def __init__(self, data_dir: str | Path, **settings: Any) -> None:
        from tracklane_server import settings as settings_module

        overrides = {
            "data_dir": Path(data_dir),
            "bind": "127.0.0.1:0",
            "http_bind": "127.0.0.1:0",
            **settings,
        }
        self.settings = settings_module.load(overrides, environ={})
        self.port = 0
        self.http_port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._grace = 1.0

    @property
    def uri(self) -> str:
        """``grpc://127.0.0.1:PORT`` of the running server."""
        return f"grpc://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server's HTTP listener (web UI, Connect);
        "" when ``http_bind="none"``."""
        return f"http://127.0.0.1:{self.http_port}" if self.http_port else ""

    def start(self, timeout: float = 30.0) -> LocalServer:
        """Starts and waits until it serves. Re-binds the previous ports on a restart."""
        if self.port:
            self.settings = replace(self.settings, bind=f"127.0.0.1:{self.port}")
        if self.http_port:
            host = self.settings.http_bind.rpartition(":")[0]
            self.settings = replace(self.settings, http_bind=f"{host}:{self.http_port}")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="tracklane-local-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the local Tracklane server did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, grace: float = 1.0) -> None:
        """Stops gracefully (in-flight calls get ``grace`` seconds) and waits for the thread."""
        self._grace = grace
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()
        self._thread = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            from tracklane_server.app import TracklaneServer

            server = TracklaneServer(self.settings)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        try:
            self.port = await server.start()
            self.http_port = server.http_port
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            await server.stop(0)
            return
        self._ready.set()
        await self._stop.wait()
        await server.stop(self._grace)
