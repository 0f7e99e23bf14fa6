"""WatchExperiments: every run of some experiments, then each run again whenever it changes.

Over the run feed (store/tracking/run_changes.py) and the wake-up hub: the snapshot is read in pages of
(changed_ms, run_id) order, so a big experiment streams with gRPC's flow control instead of being
held in memory; then each wake-up (any run committing, on any replica; a poll every
``POLL_SECONDS`` as a safety net) re-reads the window of changes that may still become visible
(``LATE_COMMIT_MS``) and sends the runs not yet sent at that change time. Wake-ups within
``COALESCE_SECONDS`` are served by one read. A watcher remembers only the runs sent within the
window (and at most ``MAX_REMEMBERED``; past that it forgets, and a run may come twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from tracklane.exceptions import InvalidArgument
from tracklane.v1 import tracking_pb2
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.runtime.points_hub import ANY_RUN, PointsHub
from tracklane_server.store.db.page_tokens import decode_page_token, encode_page_token, fingerprint
from tracklane_server.store.db.transactions import now_ms
from tracklane_server.store.tracking.run_changes import LATE_COMMIT_MS, RunFeed

__all__ = ["ExperimentWatch"]

#: Runs per response (and per read of the feed).
PAGE = 500
#: Experiments one call may watch.
MAX_EXPERIMENTS = 100
POLL_SECONDS = 5.0
COALESCE_SECONDS = 0.2
MAX_REMEMBERED = 100_000


class ExperimentWatch:
    """Serves WatchExperiments calls."""

    def __init__(self, feed: RunFeed, blocking: BlockingCalls, hub: PointsHub) -> None:
        self.feed = feed
        self.blocking = blocking
        self.hub = hub

    async def watch(
        self, request: tracking_pb2.WatchExperimentsRequest
    ) -> AsyncIterator[tracking_pb2.WatchExperimentsResponse]:
        ids = list(dict.fromkeys(request.experiment_ids))
        if not 1 <= len(ids) <= MAX_EXPERIMENTS:
            raise InvalidArgument(
                f"experiment_ids: give 1 to {MAX_EXPERIMENTS} experiments, got {len(ids)}",
                field="experiment_ids",
            )
        pks = await self.blocking.call(self.feed.require_experiments, ids)
        query = fingerprint("watch-experiments", sorted(pks))
        resumed = bool(request.cursor)
        # The newest change time sent so far; a resumed call re-reads the window before it.
        high = _cursor_time(request.cursor, query) if resumed else 0
        sent: dict[str, int] = {}
        # Subscribed before the first read: a commit between the two still rings the bell.
        with self.hub.subscribe(ANY_RUN) as bell:
            position = (high - LATE_COMMIT_MS, "") if resumed else (-1, "")
            while True:
                async for response in self._read(pks, position, sent):
                    high = max(high, _last_change(response, sent))
                    response.cursor = _cursor(high, query)
                    yield response
                if not resumed:
                    yield tracking_pb2.WatchExperimentsResponse(
                        cursor=_cursor(high, query), snapshot_complete=True
                    )
                    resumed = True
                await bell.wait(POLL_SECONDS)
                if bell.closed:
                    return  # server shutdown: end the call with OK rather than be cancelled
                await asyncio.sleep(COALESCE_SECONDS)
                position = (min(high, now_ms()) - LATE_COMMIT_MS, "")
                _forget(sent, position[0])

    async def _read(
        self, pks: Sequence[int], position: tuple[int, str], sent: dict[str, int]
    ) -> AsyncIterator[tracking_pb2.WatchExperimentsResponse]:
        """Responses for the changes after ``position`` not sent yet, page by page."""
        while True:
            rows = await self.blocking.call(self.feed.changed_after, pks, *position, PAGE)
            fresh = [(run_id, changed) for run_id, changed in rows if sent.get(run_id) != changed]
            if fresh:
                response = tracking_pb2.WatchExperimentsResponse()
                await self.blocking.call(self.feed.runs, [run_id for run_id, _ in fresh], response.runs)
                sent.update(fresh)
                yield response
            if len(rows) < PAGE:
                return
            position = (rows[-1][1], rows[-1][0])


def _last_change(response: tracking_pb2.WatchExperimentsResponse, sent: dict[str, int]) -> int:
    return max((sent.get(run.info.run_id, 0) for run in response.runs), default=0)


def _forget(sent: dict[str, int], before: int) -> None:
    """Drops what no later read can return again (changes before the window); caps the rest."""
    for run_id in [r for r, changed in sent.items() if changed < before]:
        del sent[run_id]
    if len(sent) > MAX_REMEMBERED:
        sent.clear()  # a run may be sent twice; never missed


def _cursor(high: int, query: str) -> str:
    return encode_page_token({"t": high}, query_fingerprint=query)


def _cursor_time(cursor: str, query: str) -> int:
    try:
        return int(decode_page_token(cursor, query_fingerprint=query, fields={"t": int})["t"])
    except InvalidArgument:
        raise InvalidArgument(
            "cursor: not a cursor of a watch of these experiment_ids; start again without one", field="cursor"
        ) from None
