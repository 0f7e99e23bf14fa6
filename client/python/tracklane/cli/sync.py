"""``tracklane sync``: sends what training processes left in the metric spool (offline mode, crashes).

Every idle writer's spool is replayed (see ``_metrics.spool_replay``), whatever tracking URI it streamed
to: the one given here is where it goes. Writers whose process is alive (its lock is held) are
skipped.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracklane._metrics.batch_stream import stream_channel
from tracklane._metrics.spool import spool_dir
from tracklane._metrics.spool_replay import SyncReport, replay_spool
from tracklane.client import Client
from tracklane.exceptions import FailedPrecondition, Unavailable

__all__ = ["add_commands", "sync_spool"]


def add_commands(
    commands: Any, with_common: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
) -> None:
    """Adds ``tracklane sync`` to the ``tracklane`` parser's subcommands."""
    sync = with_common(
        commands.add_parser("sync", help="send metric batches left in the spool by earlier processes")
    )
    sync.add_argument(
        "--spool-dir",
        default=None,
        help="spool folder [env TRACKLANE_SPOOL_DIR, default ~/.cache/tracklane/spool]",
    )
    sync.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for acknowledgements")
    sync.set_defaults(handler=_sync)


def _sync(client: Client, args: argparse.Namespace) -> object:
    # Over the client's channel: its token and TLS settings apply to the stream too.
    report = replay_spool(client._channel, spool_dir(args.spool_dir), timeout=args.timeout)
    summary = report.summary()
    if report.errors:
        raise FailedPrecondition(
            f"{len(report.errors)} batches or run ends refused (first: {report.errors[0]}); {summary}",
            field="spool",
        )
    if report.unfinished:
        raise Unavailable(
            f"not all batches acknowledged within {args.timeout:g} s; run sync again; {summary}"
        )
    return report.as_dict()


def sync_spool(tracking_uri: str, directory: Path, *, timeout: float = 300.0, window: int = 16) -> SyncReport:
    """Replays every idle writer's spool in ``directory`` to the server; deletes what is acknowledged."""
    channel = stream_channel(tracking_uri)
    try:
        return replay_spool(channel, directory, timeout=timeout, window=window)
    finally:
        channel.close()
