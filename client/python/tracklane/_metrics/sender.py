"""The background sender: buffers -> columnar batches -> one StreamMetrics call; spool when stuck.

One :class:`MetricSender` per tracking URI and process (the fluent API keeps one). Its thread wakes
when a buffer seals a segment (``flush_points`` points) and every ``flush_interval``; it cuts the
buffers into batches (sequence numbers per run for this process's random writer id), encodes them
and feeds the :class:`~tracklane._metrics.batch_stream.BatchStream` window. Where a batch waits, in order:

    buffers (per thread and run) -> outbox (memory) -> spool (disk) -> window (sent, unacked)

On its first buffer it also replays, in a background thread, the spools that writers of earlier
processes (crashed, killed) left for the same tracking URI (``spool_replay``).

When the window has made no progress for ``spill_after`` seconds (server or database away) or the
outbox passes ``max_memory_points``, the outbox and copies of the window go to the spool, and while
the spool holds unsent batches new ones queue behind them there: order is kept, memory stays
bounded. ``flush`` waits until what was logged before it is acknowledged; refusals the server
reports are raised from it as the typed errors, and logged.

Settings: :mod:`tracklane._metrics.config` (``configure_metrics`` and ``TRACKLANE_METRICS_*``).
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
import time
import weakref
from collections import Counter, deque
from typing import Any

import grpc
import numpy as np

from tracklane._metrics.batch_stream import BatchStream, Pending, stream_channel
from tracklane._metrics.buffer import Columns, MetricBuffer
from tracklane._metrics.config import MetricsConfig, configure, current_config
from tracklane._metrics.run_ends import PendingEnds
from tracklane._metrics.spool import Spool
from tracklane._metrics.spool_replay import replay_spool
from tracklane.exceptions import DeadlineExceeded, ResourceExhausted, TracklaneError
from tracklane.v1 import tracking_pb2
from tracklane.wire.metrics import encode_batch

__all__ = ["MetricSender", "MetricsConfig", "configure", "current_config"]

log = logging.getLogger("tracklane.metrics")


_live: weakref.WeakSet[MetricSender] = weakref.WeakSet()
#: Unacknowledged batches past which sealed segments wait to be cut together (see _behind).
BEHIND_BATCHES = 2
#: Seconds a replay of earlier processes' spools may take in all.
REPLAY_TIMEOUT = 600.0
#: Seconds a background thread asked to stop may take to notice (it checks every 50 ms).
_STOP_SECONDS = 1.0
_ERRORS_KEPT = 100
# Stream failures no reconnect can fix: flush raises them at once instead of waiting out its timeout.
_FATAL_STREAM_CODES = {
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
}


class MetricSender:
    """Buffers, batches and streams metric points of any number of runs to one server.

    Args:
        tracking_uri: The server.
        config: Default: ``current_config()``.
        channel: Send over this channel instead of opening one (it is not closed by ``close``).
    """

    def __init__(
        self, tracking_uri: str, config: MetricsConfig | None = None, *, channel: grpc.Channel | None = None
    ) -> None:
        self.config = config or current_config()
        self.tracking_uri = tracking_uri
        self.writer_id = secrets.token_hex(8)
        self.pid = os.getpid()
        self._own_channel = channel is None
        self._channel = channel if channel is not None else stream_channel(tracking_uri)
        self._lock = threading.RLock()
        # Flush waiters wait on this; the sender thread waits on _event (set without _lock).
        self._settled = threading.Condition(self._lock)
        self._event = threading.Event()
        self._buffers: list[MetricBuffer] = []
        self._sequences: dict[str, int] = {}
        self._outbox: deque[Pending] = deque()
        self._outbox_points = 0
        self._spool = Spool(
            self.config.spool_dir, self.writer_id, self.config.spool_max_bytes, tracking_uri=tracking_uri
        )
        self._replay: threading.Thread | None = None
        self._replay_stop = threading.Event()
        #: The replay's open stream, if any (paused around fork() like the main one).
        self._replay_streams: set[BatchStream] = set()
        self._serial = 0
        self._unsettled: dict[int, int] = {}  # serial -> points, in creation order
        self._unsettled_runs: Counter[str] = Counter()  # run_id -> batches in _unsettled
        # Set when a flush gave up waiting: the stream's last progress then (see _shutdown_budget).
        self._gave_up_at_progress: float | None = None
        self._errors: list[TracklaneError] = []
        self._errors_dropped = 0
        self._sealed = False
        self._closed = False
        self.points_acked = 0
        self.points_refused = 0
        self._stream = BatchStream(self._channel, self.config.max_inflight, self._done, self._progress)
        self._ends = PendingEnds(self._channel, self._spool, self._lock, self._run_busy)
        self._thread = threading.Thread(target=self._run, name="tracklane-metrics-sender", daemon=True)
        self._stream.start()
        self._thread.start()
        _live.add(self)

    # Producers

    def buffer(self, run_id: str) -> MetricBuffer:
        """A new buffer for one thread's points to ``run_id``."""
        buffer = MetricBuffer(run_id, self, self.config.flush_points)
        with self._lock:
            self._buffers.append(buffer)
            if self._replay is None and self.config.replay_spool:
                self._replay = threading.Thread(
                    target=self._replay_dead_writers, name="tracklane-spool-replay", daemon=True
                )
                self._replay.start()
        return buffer

    def _replay_dead_writers(self) -> None:
        try:
            report = replay_spool(
                self._channel,
                self.config.spool_dir,
                timeout=REPLAY_TIMEOUT,
                window=self.config.max_inflight,
                tracking_uri=self.tracking_uri,
                skip_writer=self.writer_id,
                streams=self._replay_streams,
                stop=self._replay_stop,
            )
        except Exception:  # a damaged spool must not take the process's own metrics down
            log.exception("replaying the metric spool of earlier processes failed")
            return
        if report.batches:
            log.info("replayed the metric spool of earlier processes: %s", report.summary())
        for error in report.errors:
            log.warning("a spooled metric batch of an earlier process was refused: %s", error)

    def release(self, buffer: MetricBuffer) -> None:
        """The buffer gets no more points; dropped once the sender has taken what it holds."""
        buffer.closed = True

    def release_run(self, run_id: str) -> None:
        """Every buffer of the run (all threads) gets no more points: the run ends."""
        with self._lock:
            for buffer in self._buffers:
                if buffer.run_id == run_id:
                    buffer.closed = True

    def sealed(self, buffer: MetricBuffer) -> None:
        """(Sink) a buffer sealed a segment: wake the sender; wait if it is far behind."""
        self._sealed = True
        self._event.set()
        # Bounded memory: a producer faster than the sender can encode waits for it here.
        limit = max(2, self.config.max_memory_points // max(1, self.config.flush_points))
        while buffer.sealed_count > limit and not self._closed and self._thread.is_alive():
            self._event.set()
            time.sleep(0.002)

    def end_run_later(self, run_id: str, end_request: bytes) -> bool:
        """Spools a run's end (serialized UpdateRunRequest), sent after its batches; False if refused."""
        return self._ends.add(run_id, self.writer_id, end_request)

    def _run_busy(self, run_id: str) -> bool:
        """(Under the lock) whether the run has points not yet acknowledged."""
        return self._unsettled_runs[run_id] > 0 or any(
            b.run_id == run_id and b.pending() for b in self._buffers
        )

    # Flush and close

    def flush(self, timeout: float | None = None) -> None:
        """Sends everything logged so far and waits until the server has acknowledged it.

        Raises:
            TracklaneError: the first batch refusal since the last flush (all are logged), typed by
                its code: NotFound, InvalidArgument, FailedPrecondition, ResourceExhausted...
            DeadlineExceeded: ``timeout`` seconds passed first; the points left are in the spool
                (``tracklane sync`` sends them if this process does not live to).
        """
        with self._settled:
            self._cut(everything=True)
            self._pump()
            target = self._serial
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._unsettled and next(iter(self._unsettled)) <= target:
                remaining = None if deadline is None else deadline - time.monotonic()
                stream_error = self._stream.last_error
                fatal = stream_error is not None and stream_error.code in _FATAL_STREAM_CODES
                if fatal or (remaining is not None and remaining <= 0):
                    self._gave_up_at_progress = self._stream.last_progress
                    self._spill(window_too=True)
                    if fatal and stream_error is not None:
                        raise stream_error  # retrying will not help: e.g. UNAUTHENTICATED
                    self._raise_errors()  # a refusal or a drop says more than the timeout
                    waiting = sum(p for s, p in self._unsettled.items() if s <= target)
                    why = f" (the stream fails with {stream_error!r})" if stream_error else ""
                    raise DeadlineExceeded(
                        f"{waiting} metric points not acknowledged after {timeout:g} s{why}; they are "
                        f"kept in {self.config.spool_dir} and sent when the server answers, or by "
                        "`tracklane sync`"
                    )
                self._settled.wait(0.05 if remaining is None else min(0.05, remaining))
            self._raise_errors()

    def close(self, timeout: float | None = None) -> None:
        """Flushes and stops, all within ``timeout`` (default ``flush_timeout``); what is not
        acknowledged by then stays in the spool. Waits not at all when a flush already gave up
        and nothing was acknowledged since: the server is still away, so spool and go."""
        if self._closed:
            return
        budget = self.shutdown_budget(self.config.flush_timeout if timeout is None else timeout)
        deadline = time.monotonic() + budget
        try:
            self.flush(budget)
        except TracklaneError as exc:
            log.warning("metrics not all delivered before closing: %s", exc)
        if len(self._ends) and deadline > time.monotonic():
            self._ends.send_ready(deadline - time.monotonic())
        self._ends.stop(max(0.0, deadline - time.monotonic()))
        replay = self._replay
        if replay is not None:
            # A short job still finishes what it began replaying; the rest waits for the next one.
            replay.join(max(0.0, deadline - time.monotonic()))
            self._replay_stop.set()
            replay.join(_STOP_SECONDS)
        self._closed = True
        self._event.set()
        self._stream.close()
        self._thread.join(timeout=5)
        with self._lock:
            self._cut(everything=True)
            self._spill(window_too=True)
            self._spool.close()
        if self._own_channel:
            self._channel.close()
        _live.discard(self)

    def shutdown_budget(self, timeout: float) -> float:
        """``timeout``, or 0 when a flush already gave up and nothing was acknowledged since."""
        last = self._gave_up_at_progress
        return 0.0 if last is not None and last == self._stream.last_progress else timeout

    def _raise_errors(self) -> None:
        errors, self._errors = self._errors, []
        more, self._errors_dropped = self._errors_dropped, 0
        if errors:
            first = errors[0]
            if len(errors) + more > 1:
                first.message = f"{first.message} (and {len(errors) + more - 1} more refusals, logged)"
                first.args = (first.message,)
            raise first

    # Sender thread

    def _run(self) -> None:
        interval = self.config.flush_interval
        next_tick = time.monotonic() + interval
        while not self._closed:
            # Woken by a sealed segment or an ack (window room), else every interval.
            self._event.wait(max(0.0, next_tick - time.monotonic()))
            self._event.clear()
            if self._closed:
                return
            tick = time.monotonic() >= next_tick
            with self._lock:
                try:
                    if tick or (self._sealed and not self._behind()):
                        self._sealed = False
                        self._cut(everything=tick)
                    self._pump()
                except Exception:  # never let the thread die: points would pile up silently
                    log.exception("metric sender failed; retrying")
                self._settled.notify_all()
            if tick:
                next_tick = time.monotonic() + interval

    def _behind(self) -> bool:
        """Whether sealed segments should wait to go out as one bigger batch.

        While the server still has BEHIND_BATCHES of ours in hand, what is sealed meanwhile is cut
        at the next ack, together: bigger batches cost less per point on both sides (one header,
        one ack, chunks of up to 4,096 points per key instead of a batch's share), and when the
        server keeps up, batches still leave as soon as they are sealed.
        """
        if len(self._stream) + len(self._outbox) < BEHIND_BATCHES:
            return False
        sealed = sum(buffer.sealed_count for buffer in self._buffers)
        return sealed * self.config.flush_points < self.config.max_batch_points

    def _cut(self, *, everything: bool) -> None:
        """Turns buffered points into encoded batches (sealed segments only, unless ``everything``)."""
        kept: list[MetricBuffer] = []
        for buffer in self._buffers:
            if everything or buffer.sealed_count:
                chunks = buffer.take(sealed_only=not everything)  # never an empty one
                if chunks:
                    self._enqueue(buffer, chunks)
            if not (buffer.closed and not buffer.pending()):
                kept.append(buffer)
        self._buffers = kept

    def _enqueue(self, buffer: MetricBuffer, chunks: list[Columns]) -> None:
        keys = np.concatenate([c.keys for c in chunks]) if len(chunks) > 1 else chunks[0].keys
        values = np.concatenate([c.values for c in chunks]) if len(chunks) > 1 else chunks[0].values
        steps = np.concatenate([c.steps for c in chunks]) if len(chunks) > 1 else chunks[0].steps
        stamps_ms = np.concatenate([c.stamps for c in chunks]) if len(chunks) > 1 else chunks[0].stamps
        names = list(buffer.key_names)  # after the points: every index in them is already named
        size = self.config.max_batch_points
        for lo in range(0, keys.shape[0], size):
            hi = lo + size
            table, indices = _compact_keys(names, keys[lo:hi])
            sequence = self._sequences.get(buffer.run_id, 0) + 1
            self._sequences[buffer.run_id] = sequence
            payload = encode_batch(
                buffer.run_id,
                self.writer_id,
                sequence,
                table,
                indices,
                values[lo:hi],
                steps[lo:hi],
                stamps_ms[lo:hi],
            )
            self._serial += 1
            points = int(indices.shape[0])
            pending = Pending(buffer.run_id, self.writer_id, sequence, points, payload, serial=self._serial)
            self._unsettled[self._serial] = points
            self._unsettled_runs[buffer.run_id] += 1
            if self._spool.has_unsent():
                self._to_spool([pending], unsent=True)  # behind what is already there: order kept
            else:
                self._outbox.append(pending)
                self._outbox_points += points

    def _pump(self) -> None:
        """Spills when stuck or over the memory bound, then fills the window: spool first, in order."""
        stream = self._stream
        stuck = len(stream) > 0 and time.monotonic() - stream.last_progress > self.config.spill_after
        if stuck or self._outbox_points > self.config.max_memory_points:
            self._spill(window_too=stuck)
        while stream.has_room():
            if self._spool.has_unsent():
                pending = self._spool.next_unsent()
            elif self._outbox:
                pending = self._outbox.popleft()
                self._outbox_points -= pending.points
            else:
                break
            stream.send(pending)

    def _spill(self, *, window_too: bool) -> None:
        if window_too:
            self._to_spool([p for p in self._stream.unacked() if p.spooled is None], unsent=False)
        if self._outbox:
            batches = list(self._outbox)
            self._outbox.clear()
            self._outbox_points = 0
            self._to_spool(batches, unsent=True)

    def _to_spool(self, batches: list[Pending], *, unsent: bool) -> None:
        if not batches:
            return
        try:
            refused = self._spool.append(batches, unsent=unsent)
        except OSError as exc:
            log.error("cannot write the metric spool in %s: %s", self.config.spool_dir, exc)
            refused = batches
        if not unsent:
            return  # copies only: the originals are still in the window
        for pending in refused:
            # Disk full or capped: the one case points are dropped, and it is reported.
            self._settle(pending)
            self.points_refused += pending.points
            self._record(
                ResourceExhausted(
                    f"metric spool {self.config.spool_dir} is full ({self.config.spool_max_bytes} bytes): "
                    f"{pending.points} points of run {pending.run_id} dropped",
                    field="spool",
                )
            )

    # Stream callbacks (stream thread)

    def _done(
        self, pending: Pending, response: tracking_pb2.StreamMetricsResponse, error: TracklaneError | None
    ) -> None:
        with self._lock:
            self._spool.release(pending)
            self._settle(pending)
            if error is None:
                self.points_acked += pending.points
            else:
                self.points_refused += pending.points
                self._record(error)
            self._settled.notify_all()

    def _progress(self) -> None:
        self._event.set()  # room in the window: the sender fills it

    def _settle(self, pending: Pending) -> None:
        if self._unsettled.pop(pending.serial, None) is not None:
            self._unsettled_runs[pending.run_id] -= 1
            if self._unsettled_runs[pending.run_id] <= 0:
                del self._unsettled_runs[pending.run_id]

    def _record(self, error: TracklaneError) -> None:
        # Kept until the next flush, a bounded number: a run deleted under a long job must not
        # fill memory (or the log) with one error per batch.
        if len(self._errors) < _ERRORS_KEPT:
            log.error("metric batch refused: %s", error)
            self._errors.append(error)
        else:
            self._errors_dropped += 1


def _compact_keys(names: list[str], indices: np.ndarray[Any, Any]) -> tuple[list[str], Any]:
    """The batch's key table: the buffer's own when small, else only the keys the batch uses."""
    if len(names) <= 64:
        return names, indices
    used, inverse = np.unique(indices, return_inverse=True)
    return [names[i] for i in used.tolist()], inverse.astype(np.uint32)


def _close_all_at_exit() -> None:
    for sender in list(_live):
        if sender.pid == os.getpid():
            sender.close()


#: How long fork() waits for a sender's stream thread to leave its gRPC call.
FORK_PAUSE_SECONDS = 2.0
_paused_for_fork: list[BatchStream] = []


def _pause_before_fork() -> None:
    # gRPC's own fork handlers (which leave the child a working gRPC) are skipped while any thread
    # is inside a call ("Other threads are currently calling into gRPC"), and a stream thread always
    # is: the child then hangs on its first call. So every stream is closed around the fork; its
    # window is kept and replayed when it reopens, and sequence numbers make the replay harmless.
    deadline = time.monotonic() + FORK_PAUSE_SECONDS
    for sender in list(_live):
        if sender.pid == os.getpid() and not sender._closed:
            _paused_for_fork.extend([sender._stream, *list(sender._replay_streams)])
    for stream in _paused_for_fork:
        if not stream.pause(max(0.0, deadline - time.monotonic())):
            log.warning("metric stream still inside gRPC at fork(); the child may not use gRPC")


def _resume_after_fork_in_parent() -> None:
    while _paused_for_fork:
        _paused_for_fork.pop().resume()


def _forget_after_fork() -> None:
    # The parent's senders have no threads here; the parent sends their points, the child must not
    # (nor keep the parent's spool lock held after the parent is gone).
    _paused_for_fork.clear()
    for sender in list(_live):
        sender._spool.forget_after_fork()
    _live.clear()


atexit.register(_close_all_at_exit)
os.register_at_fork(
    before=_pause_before_fork,
    after_in_parent=_resume_after_fork_in_parent,
    after_in_child=_forget_after_fork,
)
