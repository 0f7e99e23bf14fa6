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
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from tracklane.exceptions import InvalidArgument, ResourceExhausted, TracklaneError, Unavailable
from tracklane.v1 import common_pb2, tracking_pb2
from tracklane.wire.headers import CLIENT_ID_HEADER
from tracklane.wire.metrics import encode_series
from tracklane_server.identity.principal import current_principal
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.runtime.commit_queue import CommitQueue
from tracklane_server.runtime.points_hub import PointsHub
from tracklane_server.store.metrics.ingest import BatchResult, MetricBatch, StreamStore
from tracklane_server.store.metrics.points import Points
from tracklane_server.store.metrics.watch import MetricWatch

#: Batches decoded ahead of the one committing; past that the stream is not read (flow control).
READ_AHEAD = 4
#: A group of batches already received is committed in one transaction, up to this many points.
GROUP_POINTS = 200_000
#: A watcher re-reads the store this often even without a wake-up (a safety net, not the path).
WATCH_POLL_SECONDS = 2.0
#: Defaults of the server settings max_streams_per_client and max_streams_per_user.
MAX_STREAMS_PER_CLIENT = 64
MAX_STREAMS_PER_USER = 256

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
        max_streams_per_user: int = MAX_STREAMS_PER_USER,
    ) -> None:
        self.streams = streams
        #: StreamMetrics calls one client may have open at once (see ``client_key``).
        self.per_client = OpenCalls(max_streams_per_client)
        #: StreamMetrics and WatchRun calls one user, or peer address without auth, may have open.
        self.per_user = OpenCalls(max_streams_per_user)
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
        client, owner = client_key(context), owner_key(context)
        with (
            self.per_client.hold(
                client,
                lambda n: (
                    f"max_streams_per_client: this client already has {n} StreamMetrics calls open "
                    f"(the limit is {self.per_client.limit}); send all runs over one stream, or "
                    "raise the server's --max-streams-per-client"
                ),
                "max_streams_per_client",
            ),
            self._per_user(owner),
        ):
            async with contextlib.aclosing(self._stream_metrics(requests)) as acks:
                async for ack in acks:
                    yield ack

    def _per_user(self, owner: str) -> contextlib.AbstractContextManager[None]:
        who = "user " + owner[5:] if owner.startswith("user:") else "address " + owner[5:]
        return self.per_user.hold(
            owner,
            lambda n: (
                f"max_streams_per_user: {who} already has {n} StreamMetrics and WatchRun calls "
                f"open (the limit is {self.per_user.limit}); close some, or raise the server's "
                "--max-streams-per-user"
            ),
            "max_streams_per_user",
        )

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

        The database being away refuses each batch with UNAVAILABLE, its disk being full with
        RESOURCE_EXHAUSTED (nothing was stored; clients keep the batches and send them again);
        the stream goes on.
        """
        results: list[BatchResult | TracklaneError]
        try:
            results = await self.commits.submit(group)
        except (Unavailable, ResourceExhausted) as exc:
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
        with self._per_user(owner_key(context)), self.hub.subscribe(run_id) as bell:
            cursor = await self.blocking.call(self.watch.open, run_id, list(request.keys), start_step)
            # One piece at a time: the next is read only after gRPC took this one (flow control).
            while found := await self.blocking.call(self.watch.read_history, cursor):
                for response in _responses(run_id, found):
                    yield response
            while True:
                found, more = await self.blocking.call(self.watch.read_new, cursor)
                for response in _responses(run_id, found):
                    yield response
                if more:
                    continue
                await bell.wait(WATCH_POLL_SECONDS)
                if bell.closed:
                    return  # server shutdown: end the call with OK rather than be cancelled


def client_key(context: Any) -> str:
    """Whose streams count against one ``max_streams_per_client`` budget.

    The client process, by the random id the Python client sends in CLIENT_ID_HEADER: it is one
    budget however many channels the process opens, and clients behind one address (NAT, a load
    balancer, every process on a shared node) do not share theirs, which a key by peer host would
    make them do. Clients that send no id (other languages, grpcurl) are keyed by their connection
    (peer host and port). The id is not a credential: this limit catches runaway clients (a stream
    per run, a leak); hostile ones, which may send any id, meet the per-user limit (``owner_key``).
    """
    for key, value in context.invocation_metadata() or ():
        if key == CLIENT_ID_HEADER and value:
            return f"id:{str(value)[:64]}"
    return f"peer:{context.peer()}"


def owner_key(context: Any) -> str:
    """Whose calls count against one ``max_streams_per_user`` budget: the authenticated user, or
    without auth the peer's address (its host, not its port: one machine opening many connections
    is one budget). Unlike the client id, neither is the client's to choose."""
    principal = current_principal()
    if principal is not None:
        return f"user:{principal.name}"
    peer = str(context.peer())  # ipv4:127.0.0.1:5555, ipv6:[::1]:5555, unix:/path
    host = peer.rpartition(":")[0] if peer.startswith(("ipv4:", "ipv6:")) else peer
    return f"peer:{host.split(':', 1)[-1]}"


class OpenCalls:
    """Calls open per key, refused with RESOURCE_EXHAUSTED beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, key: str, refusal: Callable[[int], str], field: str) -> Iterator[None]:
        """Counts one call of ``key`` for the block; ``refusal(open_now)`` is the error's message."""
        open_now = self._open.get(key, 0)
        if open_now >= self.limit:
            raise ResourceExhausted(refusal(open_now), field=field)
        self._open[key] = open_now + 1
        try:
            yield
        finally:
            left = self._open.pop(key) - 1
            if left:
                self._open[key] = left


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
    """The response for one piece read (store/metrics/watch.py bounds a piece's points); none if empty."""
    if not found:
        return []
    series = [metric_series(run_id, key, points) for key, points in found]
    return [tracking_pb2.WatchRunResponse(series=series)]
