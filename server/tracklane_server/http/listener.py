"""uvicorn on the server's own event loop, beside grpc.aio, on a socket bound here.

Binding the socket ourselves gives the real port of ``:0``, IPv6 addresses, SO_REUSEPORT for
``--workers`` (each worker accepts on the same port, like gRPC's), and one clear error line for an
address in use. uvicorn's signal handling and logging set-up are not used: the server's own
handle both.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import ssl
from typing import Any

import uvicorn

from tracklane_server.http.coalesce import CoalescingH11Protocol

__all__ = ["HttpListener", "bind_socket"]

log = logging.getLogger("tracklane_server")
_BACKLOG = 1024


def bind_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host:port`` (a name, IPv4 or IPv6 address).

    Raises:
        OSError: with one line saying why it cannot listen there.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} (HTTP): {exc.strerror or exc}") from None
    return sock


class HttpListener:
    """Serves an ASGI app on a socket from :func:`bind_socket` until ``stop()``."""

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        host: str,
        *,
        tls_cert_file: str = "",
        tls_key_file: str = "",
        tls_client_ca_file: str = "",
    ) -> None:
        self._sock = sock
        self.host = host
        self.port: int = sock.getsockname()[1]
        self.tls = bool(tls_cert_file)
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,  # a URL may hold what a user typed; the RPC log is the server's own
            proxy_headers=False,
            server_header=False,
            http=CoalescingH11Protocol,  # h11, each small response in one write (see coalesce.py)
            ws="none",
            ssl_certfile=tls_cert_file or None,
            ssl_keyfile=tls_key_file or None,
            ssl_ca_certs=tls_client_ca_file or None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if tls_client_ca_file else ssl.CERT_NONE,
        )
        config.load()
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)
        self._ticks: asyncio.Task[None] | None = None
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        # No access log: uvicorn writes one whenever its logger has a handler (a test's capture too).
        logging.getLogger("uvicorn.access").disabled = True

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (``https`` with TLS; IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    async def start(self) -> None:
        await self._server.startup(sockets=[self._sock])
        self._ticks = asyncio.create_task(self._server.main_loop())  # keeps the Date header current

    async def stop(self, grace: float) -> None:
        """Stops accepting; open requests get ``grace`` seconds, then are cancelled."""
        self._server.config.timeout_graceful_shutdown = max(1, math.ceil(grace))
        self._server.should_exit = True
        if self._ticks is not None:
            await self._ticks
            self._ticks = None
        if self._server.started:
            await self._server.shutdown(sockets=[self._sock])
        else:
            self._sock.close()
