"""Removes the unfinished uploads a killed server leaves behind, at start and then hourly.

Only the artifact roots the operator configured are swept (``--artifact-root`` and
``--allowed-artifact-roots``): never a folder or bucket an experiment's location names by itself.

A server that dies mid-upload cannot abort its multipart upload (or delete its local temporary
file), so the parts would stay in the object store, unseen but paid for, until a bucket lifecycle
rule expires them, if there is one. Any replica may sweep: aborting an upload twice is harmless,
and only uploads older than ``artifact_multipart_max_age_seconds`` (longer than any upload takes)
are touched, so uploads still under way on other replicas are left alone.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from tracklane.exceptions import TracklaneError
from tracklane_server.artifacts.run_roots import RunRoots
from tracklane_server.runtime.blocking import BlockingCalls

__all__ = ["SWEEP_INTERVAL_SECONDS", "StaleUploadSweeper", "outermost"]

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 3600.0


class StaleUploadSweeper:
    """Aborts unfinished uploads older than ``max_age_seconds`` under every configured artifact root.

    Args:
        roots: Opens the stores; its ``allowed`` roots are the ones swept.
        max_age_seconds: Uploads begun longer ago than this are abandoned.
    """

    def __init__(self, roots: RunRoots, max_age_seconds: float) -> None:
        self._roots = roots
        self._max_age = timedelta(seconds=max_age_seconds)

    def sweep(self) -> int:
        """One pass over every root; returns how many uploads were removed. Never raises for a root."""
        cutoff = datetime.now(UTC) - self._max_age
        removed = 0
        for uri in outermost(list(self._roots.allowed.uris)):
            try:
                removed += self._roots.store(uri).abort_stale_uploads(cutoff)
            except TracklaneError as exc:  # an unreachable store: the next pass tries again
                log.warning("could not sweep unfinished uploads under %s: %s", uri, exc.message)
        if removed:
            log.info("removed %d unfinished uploads older than %s", removed, self._max_age)
        return removed

    async def run(self, blocking: BlockingCalls, interval: float = SWEEP_INTERVAL_SECONDS) -> None:
        """Sweeps now, then every ``interval`` seconds, until cancelled."""
        while True:
            try:
                await blocking.call(self.sweep)
            except Exception:  # e.g. the database away: log, keep the server up, try later
                log.exception("sweeping unfinished uploads failed")
            await asyncio.sleep(interval)


def outermost(uris: list[str]) -> list[str]:
    """The URIs not inside another one of them (sweeping a root covers everything below it)."""
    unique = sorted(set(u.rstrip("/") for u in uris))
    kept: list[str] = []
    for uri in unique:  # sorted: a root comes right before the URIs below it
        if not any(uri.startswith(root + "/") for root in kept):
            kept.append(uri)
    return kept
