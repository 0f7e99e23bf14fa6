"""``tracklane run``: runs an MLflow project as ``mlflow run`` does, on a Tracklane server.

Exit status: 0 when the run FINISHED, 1 when it FAILED, 130/143 when Ctrl-C/SIGTERM stopped it
(the run ends KILLED), 2 for a usage error (a missing or mistyped parameter...).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from tracklane.projects.backends import BACKENDS
from tracklane.projects.environments import ENV_MANAGERS

__all__ = ["add_commands", "main"]


def add_commands(commands: Any) -> None:
    """Adds ``run`` to the ``tracklane`` parser's subcommands."""
    run = commands.add_parser(
        "run",
        help="run an MLflow project (MLproject) as a run",
        description="Run an MLflow project from a folder, a git URI (URI#subdir, -v commit/tag/branch) "
        "or a .zip. Its MLproject is read as MLflow reads it; the run gets the params and MLflow's tags, "
        "and the entry point attaches to it (TRACKLANE_RUN_ID / MLFLOW_RUN_ID).",
    )
    run.add_argument("uri", nargs="?", help="project folder, git URI or .zip (optional with --from-run)")
    run.add_argument(
        "-e", "--entry-point", default=None, metavar="NAME", help="entry point or .py/.sh file [main]"
    )
    run.add_argument("-v", "--version", default=None, help="git commit, tag or branch")
    run.add_argument(
        "-P",
        "--param-list",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter (repeat for more)",
    )
    run.add_argument(
        "-A",
        "--docker-args",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="a docker run flag (repeat for more)",
    )
    run.add_argument("--experiment-name", default=None, help="experiment (created when missing)")
    run.add_argument("--experiment-id", default=None, help="experiment to run in (default: the default one)")
    run.add_argument("-b", "--backend", choices=BACKENDS, default="local", help="where the entry point runs")
    run.add_argument("-c", "--backend-config", default=None, metavar="FILE", help="JSON file or JSON text")
    run.add_argument("--env-manager", choices=ENV_MANAGERS, default=None, help="default: from the project")
    run.add_argument("--storage-dir", default=None, help="where remote path parameters are downloaded")
    run.add_argument("--run-id", default=None, help=argparse.SUPPRESS)  # used by --no-wait's runner
    run.add_argument("--run-name", default=None, help="the run's name (default: a generated one)")
    run.add_argument("--build-image", action="store_true", help="docker_env: build an image with the project")
    run.add_argument("--no-wait", action="store_true", help="return once the run has started")
    run.add_argument("--from-run", default=None, metavar="RUN_ID", help="reproduce a run and its environment")
    run.add_argument(
        "--tracking-uri", default=None, help="server, e.g. grpc://HOST:50051 [env TRACKLANE_TRACKING_URI]"
    )
    run.set_defaults(standalone_command=_run)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run is stopped and ends KILLED."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise _Terminated


def _pairs(items: Sequence[str], flag: str, allow_bare: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not name or (not sep and not allow_bare):
            raise SystemExit(f"tracklane: error: {flag} expects NAME=VALUE, got {item!r}")
        if name in out:
            raise SystemExit(f"tracklane: error: {flag} {name} given twice")
        out[name] = value if sep else True
    return out


def _run(args: argparse.Namespace) -> int:
    from tracklane.projects import runner
    from tracklane.projects.errors import ExecutionException

    params = _pairs(args.param_list, "-P")
    docker_args = _pairs(args.docker_args, "-A", allow_bare=True)
    if args.no_wait:
        return _submit_detached(args, params)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        submitted = runner.run(
            args.uri,
            args.entry_point,
            args.version,
            params,
            docker_args,
            args.experiment_name,
            args.experiment_id,
            args.backend,
            args.backend_config,
            args.storage_dir,
            synchronous=True,
            run_id=args.run_id,
            run_name=args.run_name,
            env_manager=args.env_manager,
            build_image=args.build_image,
            from_run=args.from_run,
            tracking_uri=args.tracking_uri,
        )
    except ExecutionException as exc:
        if not exc.run_id:
            raise
        print(f"tracklane: {exc.message}", file=sys.stderr)
        return 1
    except _Terminated:
        return 143
    except KeyboardInterrupt:
        return 130
    print(f"tracklane: run {submitted.run_id} {submitted.get_status()}", file=sys.stderr)
    return 0


def _submit_detached(args: argparse.Namespace, params: dict[str, Any]) -> int:
    """Creates the run (checking everything first), then runs it in a process of its own."""
    from tracklane.projects import runner

    run_id = runner.create_run(
        args.uri,
        args.entry_point,
        args.version,
        params,
        args.experiment_name,
        args.experiment_id,
        args.backend,
        args.run_name,
        args.env_manager,
        from_run=args.from_run,
        tracking_uri=args.tracking_uri,
    )
    argv = [sys.executable, "-m", "tracklane.projects", "run", "--run-id", run_id]
    for flag, value in (
        ("--entry-point", args.entry_point),
        ("--version", args.version),
        ("--backend", args.backend),
        ("--backend-config", args.backend_config),
        ("--env-manager", args.env_manager),
        ("--storage-dir", args.storage_dir),
        ("--from-run", args.from_run),
        ("--tracking-uri", args.tracking_uri),
    ):
        if value is not None:
            argv += [
                flag,
                os.path.abspath(value) if flag == "--backend-config" and os.path.isfile(value) else value,
            ]
    for item in args.param_list:
        argv += ["-P", item]
    for item in args.docker_args:
        argv += ["-A", item]
    if args.build_image:
        argv.append("--build-image")
    if args.uri is not None:
        argv.append(args.uri if not os.path.exists(args.uri) else os.path.abspath(args.uri))
    log = os.path.join(tempfile.gettempdir(), f"tracklane-run-{run_id}.log")
    with open(log, "wb") as out:
        subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    print(run_id)
    print(f"tracklane: run {run_id} started in the background; its output: {log}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tracklane.projects run ...``."""
    from tracklane.exceptions import TracklaneError

    parser = argparse.ArgumentParser(prog="tracklane")
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        sys.exit(args.standalone_command(args))
    except TracklaneError as exc:
        print(f"tracklane: error: {exc.message}", file=sys.stderr)
        sys.exit(2)
