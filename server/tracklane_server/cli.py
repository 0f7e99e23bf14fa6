"""The ``tracklane`` command: ``tracklane server``, ``tracklane db upgrade``.

Errors a user can fix (a bad setting, a database that cannot be reached) print one line,
``tracklane: error: ...``, and exit non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Sequence

import tracklane
from tracklane.cli import commands as client_commands
from tracklane.exceptions import FailedPrecondition, TracklaneError
from tracklane_server import logs
from tracklane_server import settings as settings_module
from tracklane_server.settings import Settings

log = logging.getLogger("tracklane_server")

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141, what a shell reports for a tool SIGPIPE ended

# What `tracklane server` and `tracklane db` import beyond the client: the `server` extra.
SERVER_MODULES = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "minio",
    "coolname",
    "uvicorn",
    "starlette",
    "connectrpc",
    "orjson",
    "grpc_health",
    "grpc_reflection",
)


def require_server_extra(command: str) -> None:
    """Refuses, in one line, to run a server command in a client-only install.

    Raises:
        FailedPrecondition: a module of the ``server`` extra is not installed.
    """
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise FailedPrecondition(
            f"`tracklane {command}` needs the server's dependencies ({', '.join(missing)} not "
            "installed): pip install 'tracklane[server]'"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracklane",
        description="Tracklane: gRPC-native tracking for machine learning.",
        epilog="`tracklane COMMAND --help` describes a command and its options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tracklane {tracklane.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    server = commands.add_parser(
        "server",
        help="run the gRPC server",
        description="Serve TrackingService, ArtifactService and RegistryService, with health and "
        "reflection. With no settings: SQLite and a local artifact folder in the data folder, on "
        "127.0.0.1:50051. Every flag can also be set by the TRACKLANE_* variable shown.",
    )
    settings_module.add_arguments(server)
    server.set_defaults(handler=_server)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser(
        "upgrade", help="migrate the database schema to this version (idempotent)"
    )
    upgrade.add_argument(
        "--backend-store-uri",
        dest="backend_store_uri",
        default=None,
        help="database to migrate [env TRACKLANE_BACKEND_STORE_URI]",
    )
    upgrade.add_argument(
        "--data-dir",
        dest="data_dir",
        default=None,
        help="data folder of the embedded default [env TRACKLANE_DATA_DIR]",
    )
    upgrade.set_defaults(handler=_db_upgrade)
    client_commands.add_commands(commands)
    return parser


def _server(settings: Settings) -> None:
    from tracklane_server.app import serve
    from tracklane_server.store.db import engine as db

    logs.configure(settings.log_level, settings.log_format)
    if settings.workers == 1:
        asyncio.run(serve(settings))
        return
    if settings.host_port[1] == 0:
        raise TracklaneError("--workers > 1 needs a fixed port in --bind")
    if settings.http_host_port is not None and settings.http_host_port[1] == 0:
        raise TracklaneError("--workers > 1 needs a fixed port in --http-bind (or --http-bind none)")
    # Migrate once here, not racing in every worker.
    engine = db.create_engine(settings.resolved_backend_store_uri, pool_size=1)
    db.check_connection(engine)
    db.upgrade(engine)
    engine.dispose()
    _run_workers(settings)


def _run_workers(settings: Settings) -> None:
    """N processes share the port with SO_REUSEPORT; the kernel spreads connections over them."""
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker_main, args=(settings,), name=f"tracklane-worker-{i}", daemon=False)
        for i in range(settings.workers)
    ]
    for worker in workers:
        worker.start()

    def forward(signum: int, _frame: object) -> None:
        # Each worker stops gracefully on the same signal the parent got.
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.join()
    failed = [w.name for w in workers if w.exitcode not in (0, -signal.SIGTERM)]
    if failed:
        raise TracklaneError(f"worker(s) exited with an error: {', '.join(failed)}")


def _worker_main(settings: Settings) -> None:
    from dataclasses import replace

    from tracklane_server.app import serve

    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(serve(replace(settings, auto_migrate=False), reuse_port=True))


def _db_upgrade(settings: Settings) -> None:
    from tracklane_server.store.db import engine as db

    engine = db.create_engine(settings.resolved_backend_store_uri, pool_size=1)
    db.check_connection(engine)
    db.upgrade(engine)
    print(f"database at schema revision {db.current_revision(engine)}")
    engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "standalone_command", None) is not None:  # e.g. `models serve`
            sys.exit(args.standalone_command(args))
        if getattr(args, "client_command", False):
            client_commands.run_command(args)
            return
        require_server_extra(args.command)
        settings = settings_module.load(args)
        args.handler(settings)
    except TracklaneError as exc:
        print(f"tracklane: error: {exc.message}", file=sys.stderr)
        sys.exit(EXIT_UNAVAILABLE if exc.code.name == "UNAVAILABLE" else EXIT_USAGE)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do. stdout points at
        # /dev/null so the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    except OSError as exc:
        print(f"tracklane: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
