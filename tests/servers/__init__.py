"""The one way tests start a Tracklane server.

- In this process: ``tracklane.testing.LocalServer`` (real gRPC and HTTP listeners on free loopback
  ports, in a thread), through the fixtures of :mod:`tests.servers.in_process` (``backend``,
  ``tracking_server``, ``client``, ``auth_server``, ``auth``; every test has them) or, for other
  settings, ``LocalServer(data_dir, **settings)`` with :func:`own_backend` for a database of its own.
  Contract, client and UI tests use these.
- As a child process: :func:`start_server` in :mod:`tests.servers.process` (the ``tracklane``
  console script with ``--data-dir``, ``--bind`` and ``--http-bind`` on free ports, waits for the
  ``listening on`` line, kills the process group on exit and adds the log's tail to a failure);
  :func:`serve` retries a start on a busy machine, :func:`server_on_backend` puts it on the test's
  backend, :func:`server_argv` is the same command line for tests of a refused start. End-to-end
  and fault tests use these.

Import from here (``from tests.servers import start_server``); scripts outside pytest (bench/)
import :mod:`tests.servers.process`, which needs no pytest.
"""

from tests.servers.backends import Backend, own_backend, server_on_backend
from tests.servers.process import (
    LISTENING,
    ServerProcess,
    ServerStartError,
    clean_env,
    fixed_bind,
    fixed_port,
    free_port,
    serve,
    server_argv,
    start_server,
    tracklane_executable,
    tracklane_sync,
)

__all__ = [
    "LISTENING",
    "Backend",
    "ServerProcess",
    "ServerStartError",
    "clean_env",
    "fixed_bind",
    "fixed_port",
    "free_port",
    "own_backend",
    "serve",
    "server_argv",
    "server_on_backend",
    "start_server",
    "tracklane_executable",
    "tracklane_sync",
]
