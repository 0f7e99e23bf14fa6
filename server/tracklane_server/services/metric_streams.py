"""The two streaming metric calls: StreamMetrics (batches up, acks down) and WatchRun (a live tail).

StreamMetrics applies batches strictly in arrival order and acknowledges each after its commit.
A reader task decodes up to ``READ_AHEAD`` batches while the current ones commit; past that it
stops reading, so gRPC flow control pushes back on the client instead of the server buffering
without bound. The batches already waiting when a commit starts are committed together (one
transaction, one fsync) and acknowledged one by one; groups of all streams are committed through
one CommitQueue. A refused batch is answered with an ``ItemError`` and the stream goes on, also
when the database is away (UNAVAILABLE, retryable: send it again). A server shutdown ends the
stream with UNAVAILABLE once the batches in hand are committed: reconnect and resend what was
not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from tracklane._metric_stream import CLIENT_ID_HEADER
from tracklane._metric_wire import encode_series
from tracklane.exceptions import InvalidArgument, ResourceExhausted, TracklaneError, Unavailable
from tracklane.v1 import common_pb2, tracking_pb2
from tracklane_server.services.base import BlockingCalls
from tracklane_server.services.commit_queue import CommitQueue
from tracklane_server.services.points_hub import PointsHub
from tracklane_server.store.metric_watch import MetricWatch
from tracklane_server.store.sql_metrics import Points
from tracklane_server.store.sql_stream import BatchResult, MetricBatch, StreamStore

#: Batches decoded ahead of the one committing; past that the stream is not read (flow control).
READ_AHEAD = 4
#: A group of batches already received is committed in one transaction, up to this many points.
GROUP_POINTS = 200_000
#: A watcher re-reads the store this often even without a wake-up (a safety net, not the path).
WATCH_POLL_SECONDS = 2.0
#: Points per WatchRunResponse, so a long history never exceeds the message size limit.
WATCH_RESPONSE_POINTS = 100_000
#: Default of the server setting max_streams_per_client.
MAX_STREAMS_PER_CLIENT = 64

_END = object()


def metric_series(run_id: str, key: str, points: Points) -> tracking_pb2.MetricSeries:
    """A MetricSeries from columns, parsed from bytes numpy wrote: filling the repeated fields would
    make a Python object per point (1 M points: ~300 ms, against ~30 ms for this)."""
    return tracking_pb2.MetricSeries.FromString(
        encode_series(run_id, key, points.steps, points.values, points.timestamps)
    )


class MetricStreams:
    """StreamMetrics and WatchRun over the stream store, the watch reader and the wake-up hub."""

    def __init__(
        self,
        streams: StreamStore,
        watch: MetricWatch,
        blocking: BlockingCalls,
        hub: PointsHub,
        *,
        wake_in_process: bool,
        committers: int,
        max_streams_per_client: int = MAX_STREAMS_PER_CLIENT,
    ) -> None:
        self.streams = streams
        #: StreamMetrics calls one client may have open at once (see ``client_key``).
        self.max_streams_per_client = max_streams_per_client
        self._open_streams: dict[str, int] = {}
        self.commits = CommitQueue(streams, blocking, committers=committers, max_points=GROUP_POINTS)
        self.watch = watch
        self.blocking = blocking
        self.hub = hub
        # SQLite: wake this process's watchers directly. PostgreSQL: the NOTIFY in the commit
        # reaches every process's listener, this one included.
        self.wake_in_process = wake_in_process

    def points_committed(self, run_id: str) -> None:
        """Called after a commit that stored points of ``run_id`` (StreamMetrics, LogBatch)."""
        if self.wake_in_process:
            self.hub.notify(run_id)

    def run_changed(self, run_id: str) -> None:
        """Called after a commit that changed ``run_id`` (points, info, params, tags): wakes its
        watchers and the experiment watches (PostgreSQL: the commit's NOTIFY does)."""
        self.points_committed(run_id)

    async def stream_metrics(
        self, requests: AsyncIterator[MetricBatch], context: Any
    ) -> AsyncIterator[tracking_pb2.StreamMetricsResponse]:
        client = client_key(context)
        open_now = self._open_streams.get(client, 0)
        if open_now >= self.max_streams_per_client:
            raise ResourceExhausted(
                f"max_streams_per_client: this client already has {open_now} StreamMetrics calls open "
                f"(the limit is {self.max_streams_per_client}); send all runs over one stream, or "
                "raise the server's --max-streams-per-client",
                field="max_streams_per_client",
            )
        self._open_streams[client] = open_now + 1
        try:
            async with contextlib.aclosing(self._stream_metrics(requests)) as acks:
                async for ack in acks:
                    yield ack
        finally:
            left = self._open_streams.pop(client) - 1
            if left:
                self._open_streams[client] = left

    async def _stream_metrics(
        self, requests: AsyncIterator[MetricBatch]
    ) -> AsyncGenerator[tracking_pb2.StreamMetricsResponse, None]:
        queue: asyncio.Queue[Any] = asyncio.Queue(READ_AHEAD)
        reader = asyncio.create_task(_read_batches(requests, queue))
        closing = asyncio.create_task(self.hub.wait_closed())
        held: Any = None  # an end marker or error drained from the queue after a group's batches
        next_item: asyncio.Task[Any] | None = None
        try:
            while True:
                if held is None:
                    next_item = asyncio.create_task(queue.get())
                    done, _ = await asyncio.wait({next_item, closing}, return_when=asyncio.FIRST_COMPLETED)
                    if next_item not in done:
                        raise Unavailable(
                            "the server is shutting down; reconnect and send the batches not acknowledged"
                        )
                    held = next_item.result()
                if held is _END:
                    return
                if isinstance(held, BaseException):
                    raise held
                group, held = _group(held, queue)
                for ack in await self._apply(group):
                    yield ack
        finally:
            # Also when the client cancels: no task of this call may outlive it.
            for task in (reader, closing, next_item):
                if task is None or task.done():
                    continue
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _apply(self, group: list[MetricBatch]) -> list[tracking_pb2.StreamMetricsResponse]:
        """Commits a group of batches (one transaction) and returns their acks, in order.

        The database being away refuses each batch with UNAVAILABLE (retryable: nothing was
        stored); the stream goes on.
        """
        results: list[BatchResult | TracklaneError]
        try:
            results = await self.commits.submit(group)
        except Unavailable as exc:
            results = [exc] * len(group)
        acks = []
        for batch, result in zip(group, results, strict=True):
            ack = tracking_pb2.StreamMetricsResponse(
                run_id=batch.run_id, writer_id=batch.writer_id, sequence=batch.sequence
            )
            if isinstance(result, TracklaneError):
                ack.error.CopyFrom(_item_error(result))
            else:
                ack.points_written = result.points_written
                ack.duplicate = result.duplicate
                if result.error is not None:
                    ack.error.CopyFrom(_item_error(result.error))
            acks.append(ack)
        for run_id in {b.run_id for b, a in zip(group, acks, strict=True) if a.points_written}:
            self.points_committed(run_id)
        return acks

    async def watch_run(
        self, request: tracking_pb2.WatchRunRequest, context: Any
    ) -> AsyncIterator[tracking_pb2.WatchRunResponse]:
        run_id = request.run_id
        if not run_id:
            raise InvalidArgument("run_id: must not be empty", field="run_id")
        start_step = request.start_step if request.HasField("start_step") else None
        # Subscribed before the first read: a commit between the two still rings the bell.
        with self.hub.subscribe(run_id) as bell:
            cursor, found = await self.blocking.call(self.watch.open, run_id, list(request.keys), start_step)
            for response in _responses(run_id, found):
                yield response
            while True:
                await bell.wait(WATCH_POLL_SECONDS)
                if bell.closed:
                    return  # server shutdown: end the call with OK rather than be cancelled
                found = await self.blocking.call(self.watch.read_new, cursor)
                for response in _responses(run_id, found):
                    yield response


def client_key(context: Any) -> str:
    """Whose streams count against one ``max_streams_per_client`` budget.

    The client process, by the random id the Python client sends in CLIENT_ID_HEADER: it is one
    budget however many channels the process opens, and clients behind one address (NAT, a load
    balancer, every process on a shared node) do not share theirs, which a key by peer host would
    make them do. Clients that send no id (other languages, grpcurl) are keyed by their connection
    (peer host and port). The id is not a credential: the limit catches runaway clients (a stream
    per run, a leak), not hostile ones, which an authenticated quota or the load balancer must.
    """
    for key, value in context.invocation_metadata() or ():
        if key == CLIENT_ID_HEADER and value:
            return f"id:{str(value)[:64]}"
    return f"peer:{context.peer()}"


async def _read_batches(requests: AsyncIterator[MetricBatch], queue: asyncio.Queue[Any]) -> None:
    """Moves batches (decoded by the request deserializer) into ``queue`` (bounded: a full queue
    stops the reading)."""
    try:
        async for request in requests:
            await queue.put(request)
    except Exception as exc:  # a transport error: hand it to the handler to end the call
        await queue.put(exc)
        return
    await queue.put(_END)


def _group(first: MetricBatch, queue: asyncio.Queue[Any]) -> tuple[list[MetricBatch], Any]:
    """``first`` and the batches already decoded behind it, up to GROUP_POINTS points: committed
    together, they share one transaction's round trips and fsync. Also returns an end marker or
    error met on the way (None if none), to act on after the group's acks."""
    group, points = [first], len(first)
    while points < GROUP_POINTS and not queue.empty():
        item = queue.get_nowait()
        if not isinstance(item, MetricBatch):
            return group, item
        group.append(item)
        points += len(item)
    return group, None


def _item_error(exc: TracklaneError) -> common_pb2.ItemError:
    return common_pb2.ItemError(code=exc.code.value[0], message=exc.message, field=exc.field)


def _responses(run_id: str, found: Sequence[tuple[str, Points]]) -> list[tracking_pb2.WatchRunResponse]:
    """One response for what was found, split so none holds more than WATCH_RESPONSE_POINTS points."""
    responses: list[tracking_pb2.WatchRunResponse] = []
    current = tracking_pb2.WatchRunResponse()
    room = WATCH_RESPONSE_POINTS
    for key, points in found:
        start = 0
        while start < len(points):
            take = min(room, len(points) - start)
            current.series.append(metric_series(run_id, key, points.take(start, start + take)))
            start += take
            room -= take
            if room == 0:
                responses.append(current)
                current = tracking_pb2.WatchRunResponse()
                room = WATCH_RESPONSE_POINTS
    if current.series:
        responses.append(current)
    return responses
