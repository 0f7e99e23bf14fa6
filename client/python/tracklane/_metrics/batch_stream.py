"""One long-lived ``StreamMetrics`` call with a window of unacknowledged batches, resent on reconnect.

The server applies each (run, writer) sequence exactly once and refuses a batch that does not follow
the last applied one, so correctness only needs the client to send every writer's batches in
sequence order on each stream: a new stream first replays the whole window, in order, then carries
new batches. A batch leaves the window when the server acknowledges it (stored, a duplicate, or
refused for good); a retryable refusal (the database is away, or a sequence gap behind such a
refusal) ends the stream, and the next one replays from the oldest unacknowledged batch.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from tracklane import _channel
from tracklane.exceptions import TracklaneError, from_item_error, from_rpc_error
from tracklane.v1 import tracking_pb2
from tracklane.wire.headers import CLIENT_ID_HEADER

__all__ = ["BatchStream", "Pending", "client_id", "stream_channel"]

log = logging.getLogger("tracklane.metrics")

_METHOD = "/tracklane.v1.TrackingService/StreamMetrics"
# Refusals that say "not now" rather than "never": the batch is kept and sent again.
_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE.value[0],
    grpc.StatusCode.DEADLINE_EXCEEDED.value[0],
    grpc.StatusCode.ABORTED.value[0],
    grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
    grpc.StatusCode.CANCELLED.value[0],
}
_FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]
# A gap on the oldest batch of a writer means its predecessor is gone for good (e.g. a damaged
# spool); after this many tries the batch is reported instead of retried forever.
_GAP_TRIES = 3

Key = tuple[str, str, int]

_client_id = secrets.token_hex(8)


def client_id() -> str:
    """This process's random id (a forked child gets its own)."""
    return _client_id


def _new_client_id_after_fork() -> None:
    global _client_id
    _client_id = secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_client_id_after_fork)


def stream_channel(uri: str) -> grpc.Channel:
    """A channel of its own for the stream (token, TLS and client certificate as every channel):
    reconnects quickly, so a returning server is found soon."""
    return _channel.make_channel(
        uri,
        options=[
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1_000),
        ],
    )


@dataclass(eq=False)
class Pending:
    """An encoded batch on its way: in memory, in the window, or in the spool."""

    run_id: str
    writer_id: str
    sequence: int
    points: int
    payload: bytes
    #: The spool segment holding a copy, if any (released when acknowledged).
    spooled: Any = None
    #: Sender-side serial number (creation order), for flush().
    serial: int = 0
    gap_tries: int = field(default=0)

    @property
    def key(self) -> Key:
        return (self.run_id, self.writer_id, self.sequence)


#: (batch, the server's answer or None when refused, the refusal) -> None; called without locks held.
DoneCallback = Callable[[Pending, "tracking_pb2.StreamMetricsResponse", TracklaneError | None], None]


class BatchStream:
    """Keeps one StreamMetrics call open on ``channel`` (reconnecting with backoff) and a window.

    Args:
        channel: The gRPC channel.
        capacity: Unacknowledged batches at most; ``send`` only when ``has_room()``.
        on_done: Called for each batch that leaves the window.
        on_progress: Called after each ack and each stream end (the owner re-checks its state).
    """

    def __init__(
        self,
        channel: grpc.Channel,
        capacity: int,
        on_done: DoneCallback,
        on_progress: Callable[[], None],
        *,
        backoff: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self._method = channel.stream_stream(
            _METHOD,
            request_serializer=None,  # payloads are already serialized (see tracklane.wire.metrics)
            response_deserializer=tracking_pb2.StreamMetricsResponse.FromString,
        )
        self.capacity = max(1, capacity)
        self._on_done = on_done
        self._on_progress = on_progress
        self._backoff = backoff
        self._lock = threading.Lock()
        self._window: dict[Key, Pending] = {}  # insertion order = send order
        self._requests: queue.SimpleQueue[bytes | None] | None = None
        self._call: Any = None
        self._closed = False
        self._wake = threading.Event()
        # fork() safety: while paused no call is open, and _quiet is set once this thread has left
        # gRPC (see pause()).
        self._paused = False
        self._resumed = threading.Event()
        self._resumed.set()
        self._quiet = threading.Event()
        self._quiet.set()
        #: Why the last stream ended, while no ack has come since; None when it works.
        self.last_error: TracklaneError | None = None
        #: time.monotonic() of the last ack (or of start): how long the window has been stuck.
        self.last_progress = time.monotonic()
        self.streams_opened = 0
        self._thread = threading.Thread(target=self._run, name="tracklane-metrics-stream", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def has_room(self) -> bool:
        return len(self._window) < self.capacity

    def unacked(self) -> list[Pending]:
        """The window's batches in send order."""
        with self._lock:
            return list(self._window.values())

    def __len__(self) -> int:
        return len(self._window)

    def send(self, pending: Pending) -> None:
        """Adds a batch to the window and to the open stream, if any (else it goes with the next)."""
        with self._lock:
            if not self._window:
                self.last_progress = time.monotonic()  # the clock runs from when there is work
            self._window[pending.key] = pending
            if self._requests is not None:
                self._requests.put(pending.payload)

    def pause(self, timeout: float) -> bool:
        """Ends the open call (the window is kept) and opens none until ``resume``.

        For ``fork()``: gRPC runs its fork handlers, which make the child's gRPC usable, only when
        no thread is inside a call, and this stream's thread always is. Returns whether the thread
        left the call within ``timeout`` seconds.
        """
        with self._lock:
            self._paused = True
            self._resumed.clear()
            call = self._call
        if call is not None:
            call.cancel()
        return self._quiet.wait(timeout)

    def resume(self) -> None:
        """Reopens the stream at once after ``pause``; it replays the window, so nothing is lost."""
        with self._lock:
            self._paused = False
        self._resumed.set()
        self._wake.set()

    def close(self) -> None:
        """Ends the stream and the thread; unacknowledged batches stay in ``unacked()``."""
        self._closed = True
        self._resumed.set()
        self._wake.set()
        with self._lock:
            call = self._call
        if call is not None:
            call.cancel()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self._closed:
            self._resumed.wait()
            requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
            with self._lock:
                if self._paused or self._closed:
                    continue
                self._quiet.clear()
                for pending in self._window.values():
                    requests.put(pending.payload)
                self._requests = requests
                call: Any = self._method(
                    _drain(requests), wait_for_ready=True, metadata=((CLIENT_ID_HEADER, _client_id),)
                )
                self._call = call
                self.streams_opened += 1
            try:
                for response in call:
                    if self._acknowledge(response):
                        call.cancel()  # a retryable refusal: replay from the oldest batch
                        break
                    failures = 0
            except grpc.RpcError as err:
                if not self._closed and err.code() != grpc.StatusCode.CANCELLED:
                    self.last_error = from_rpc_error(err)
                    log.info("metric stream interrupted (%s); reconnecting", err.code().name)
            finally:
                with self._lock:
                    self._requests = None
                    self._call = None
                    paused = self._paused
                requests.put(None)
                self._quiet.set()
            self._on_progress()
            if self._closed:
                return
            if paused:
                continue  # not a failure: reconnect as soon as resumed, without backoff
            failures += 1
            low, high = self._backoff
            self._wake.wait(min(high, low * 2 ** min(failures, 10)) * random.uniform(0.5, 1.0))
            self._wake.clear()

    def _acknowledge(self, response: tracking_pb2.StreamMetricsResponse) -> bool:
        """Handles one ack; True when the stream must be restarted to resend."""
        key = (response.run_id, response.writer_id, response.sequence)
        error: TracklaneError | None = None
        retry = False
        with self._lock:
            pending = self._window.get(key)
            if pending is None:
                return False  # an ack of a batch already settled (e.g. before a replay)
            self.last_progress = time.monotonic()
            self.last_error = None
            if response.HasField("error"):
                code = response.error.code
                if code in _RETRYABLE:
                    retry = True
                elif code == _FAILED_PRECONDITION and response.error.field == "sequence":
                    oldest = next(
                        p for p in self._window.values() if p.run_id == key[0] and p.writer_id == key[1]
                    )
                    if oldest is pending:
                        pending.gap_tries += 1
                    retry = pending.gap_tries < _GAP_TRIES
                if not retry:
                    error = from_item_error(code, response.error.message, response.error.field)
            if not retry:
                del self._window[key]
        if retry:
            return True
        self._on_done(pending, response, error)
        self._on_progress()
        return False


def _drain(requests: queue.SimpleQueue[bytes | None]) -> Iterator[bytes]:
    while (payload := requests.get()) is not None:
        yield payload
