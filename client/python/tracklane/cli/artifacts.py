"""``tracklane artifacts list|download|upload``: a run's files from the shell.

Readable tables by default, ``--output json`` for scripts, like the other client commands.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tracklane._artifacts.transfer import FileInfo
from tracklane.artifacts import parse_runs_uri
from tracklane.client import Client

__all__ = ["FileListing", "add_commands"]


@dataclass(frozen=True)
class FileListing:
    """What ``artifacts list`` prints: the run's root and the entries."""

    root_uri: str
    files: list[FileInfo] = field(default_factory=list)

    def render_table(self) -> str:
        """Columns for people: size, modified, path (folders end in ``/``)."""
        rows = [
            (
                "-" if f.is_dir else _size(f.file_size or 0),
                _time(f.modify_time),
                f"{f.path}/" if f.is_dir else f.path,
            )
            for f in self.files
        ]
        header = ("SIZE", "MODIFIED", "PATH")
        widths = [max([len(header[i]), *(len(r[i]) for r in rows)]) for i in range(2)]
        lines = [f"{a.rjust(widths[0])}  {b.ljust(widths[1])}  {c}".rstrip() for a, b, c in [header, *rows]]
        return "\n".join(lines) + "\n"


def add_commands(commands: Any, with_common: Any) -> None:
    """Adds ``artifacts`` and its subcommands; ``with_common`` adds --tracking-uri and --output."""
    artifacts = commands.add_parser("artifacts", help="list, download and upload a run's files")
    sub = artifacts.add_subparsers(dest="artifacts_command", required=True, metavar="COMMAND")

    listing = with_common(sub.add_parser("list", help="list a run's files and folders"))
    _where(listing)
    listing.add_argument("--recursive", "-r", action="store_true", help="every file below, not one level")
    listing.set_defaults(handler=_list)

    download = with_common(sub.add_parser("download", help="download a file or folder"))
    _where(download)
    download.add_argument("--dst-path", "-d", default=".", help="local folder to download into (default: .)")
    download.add_argument("--direct", action="store_true", help="straight from the object store")
    download.set_defaults(handler=_download)

    upload = with_common(sub.add_parser("upload", help="upload a local file or folder to a run"))
    upload.add_argument("--run-id", required=True, help="the run to upload to")
    upload.add_argument("local_path", help="file or folder")
    upload.add_argument("--artifact-path", "-a", default=None, help="folder under the run's root")
    upload.add_argument("--direct", action="store_true", help="straight to the object store")
    upload.set_defaults(handler=_upload)


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id", default=None, help="the run (or give --artifact-uri)")
    parser.add_argument("--artifact-path", "-a", default=None, help="file or folder under the run's root")
    parser.add_argument("--artifact-uri", "-u", default=None, help="runs:/RUN_ID/PATH, instead of --run-id")


def _run_and_path(args: argparse.Namespace) -> tuple[str, str]:
    if args.artifact_uri:
        if args.run_id or args.artifact_path:
            raise SystemExit("tracklane: error: give --artifact-uri, or --run-id and --artifact-path")
        return parse_runs_uri(args.artifact_uri)
    if not args.run_id:
        raise SystemExit("tracklane: error: give --run-id or --artifact-uri")
    return args.run_id, (args.artifact_path or "").strip("/")


def _list(client: Client, args: argparse.Namespace) -> object:
    run_id, path = _run_and_path(args)
    files = client.list_artifacts(run_id, path, recursive=args.recursive)
    root = client.get_run(run_id).info.artifact_uri
    return FileListing(root, files)


def _download(client: Client, args: argparse.Namespace) -> object:
    run_id, path = _run_and_path(args)
    local = client.download_artifacts(run_id, path, args.dst_path, direct=args.direct or None)
    return {"local_path": local}


def _upload(client: Client, args: argparse.Namespace) -> object:
    direct = args.direct or None
    if os.path.isdir(args.local_path):
        files = client.log_artifacts(args.run_id, args.local_path, args.artifact_path, direct=direct)
        return {"uploaded": len(files), "bytes": sum(f.file_size or 0 for f in files)}
    info = client.log_artifact(args.run_id, args.local_path, args.artifact_path, direct=direct)
    return {"path": info.path, "size": info.file_size, "sha256": info.sha256}


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TiB"


def _time(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
