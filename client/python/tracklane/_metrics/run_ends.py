"""A run's end (terminal status and end time) the server could not be told of: kept in the spool.

``end_run()`` while the server is away must not leave the run RUNNING forever. The UpdateRun it
could not send goes to the metric spool as a record of its own (sequence 0, which no batch uses;
the payload is the serialized UpdateRunRequest), so it survives the process. It is sent:

- by this process, in the background, once the run's batches are acknowledged;
- else by whoever replays the spool (``tracklane sync``, or the next training process on the same
  tracking URI), after the run's batches.

The end time is the one ``end_run`` took, not the time the end reaches the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from tracklane._metrics.batch_stream import Pending
from tracklane._metrics.spool import Spool
from tracklane.entities import RunStatus
from tracklane.exceptions import (
    Aborted,
    DeadlineExceeded,
    ResourceExhausted,
    TracklaneError,
    Unavailable,
    from_rpc_error,
)
from tracklane.v1 import tracking_pb2

__all__ = ["END_SEQUENCE", "RETRY_LATER", "PendingEnds", "end_on_server", "end_request", "send_end"]

log = logging.getLogger("tracklane.metrics")

#: The spool record sequence of a run end (metric batches count from 1).
END_SEQUENCE = 0
#: Refusals that mean "not now": the end is kept and sent again later.
RETRY_LATER = (Unavailable, DeadlineExceeded, Aborted, ResourceExhausted)
_METHOD = "/tracklane.v1.TrackingService/UpdateRun"
_RETRY_SECONDS = 1.0
_CALL_SECONDS = 2.0


def end_request(run_id: str, status: RunStatus, end_time_ms: int) -> bytes:
    """The serialized UpdateRunRequest that ends ``run_id`` with ``status`` at ``end_time_ms``."""
    request = tracking_pb2.UpdateRunRequest(run_id=run_id, status=status.to_proto())
    request.end_time.FromMilliseconds(end_time_ms)
    request.update_mask.paths.extend(["status", "end_time"])
    return request.SerializeToString()


def send_end(channel: grpc.Channel, payload: bytes, timeout: float) -> None:
    """Sends a serialized end (see ``end_request``).

    Raises:
        TracklaneError: Typed by its code; ``RETRY_LATER`` ones mean the end should be kept.
    """
    method = channel.unary_unary(
        _METHOD, request_serializer=None, response_deserializer=tracking_pb2.UpdateRunResponse.FromString
    )
    try:
        method(payload, timeout=timeout)
    except grpc.RpcError as err:
        raise from_rpc_error(err) from None


def end_on_server(
    channel: grpc.Channel, run_id: str, status: RunStatus, *, timeout: float, keep: Callable[[bytes], bool]
) -> TracklaneError | None:
    """Ends the run now; when the server does not answer, hands the end to ``keep`` (the spool).

    Returns:
        None when the run is ended; else an Unavailable saying where its end is.

    Raises:
        TracklaneError: A refusal that keeping cannot help (NotFound, FailedPrecondition...).
    """
    payload = end_request(run_id, status, time.time_ns() // 1_000_000)
    try:
        send_end(channel, payload, timeout)
    except RETRY_LATER as exc:
        where = (
            "its end is kept in the metric spool and sent when the server answers, or by `tracklane sync`"
            if keep(payload)
            else "the metric spool could not keep its end"
        )
        return Unavailable(f"run {run_id} could not be ended on the server ({exc.message}); {where}")
    return None


class PendingEnds:
    """One process's spooled run ends, sent by a background thread (started with the first end).

    Args:
        channel: Where to send them (the metric sender's channel: its token and TLS).
        spool: The sender's spool; an end is written to it first and released once sent.
        lock: The sender's lock, which guards the spool.
        busy: Whether a run still has batches not acknowledged (its end waits for them).
    """

    def __init__(
        self, channel: grpc.Channel, spool: Spool, lock: threading.RLock, busy: Callable[[str], bool]
    ) -> None:
        self._channel = channel
        self._spool = spool
        self._lock = lock
        self._busy = busy
        self._ends: dict[str, Pending] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._ends)

    def add(self, run_id: str, writer_id: str, payload: bytes) -> bool:
        """Writes an end to the spool (replacing an earlier one of the run); False if the spool is full."""
        pending = Pending(run_id, writer_id, END_SEQUENCE, 0, payload)
        with self._lock:
            try:
                refused = self._spool.append([pending], unsent=False)
            except OSError as exc:
                log.error("cannot write the end of run %s to the metric spool: %s", run_id, exc)
                return False
            if refused:
                log.error("the metric spool is full: the end of run %s is not kept", run_id)
                return False
            earlier = self._ends.pop(run_id, None)
            if earlier is not None:
                self._spool.release(earlier)
            self._ends[run_id] = pending
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tracklane-run-ends", daemon=True)
                self._thread.start()
        return True

    def send_ready(self, timeout: float = _CALL_SECONDS) -> None:
        """Sends the ends whose runs have nothing left to acknowledge; stops at the first "not now"."""
        for run_id, pending in list(self._ends.items()):
            with self._lock:
                if self._ends.get(run_id) is not pending or self._busy(run_id):
                    continue
            try:
                send_end(self._channel, pending.payload, timeout)
            except RETRY_LATER:
                return  # the server is still away: try again later
            except TracklaneError as exc:  # e.g. the run was deleted meanwhile: nothing to end
                log.warning("the spooled end of run %s was refused: %s", run_id, exc)
            with self._lock:
                if self._ends.get(run_id) is pending:
                    del self._ends[run_id]
                    self._spool.release(pending)
            log.info("run %s ended on the server (from the spool)", run_id)

    def stop(self, timeout: float) -> None:
        """Stops the thread (waiting at most ``timeout`` for a call in flight); ends not sent stay
        in the spool for a replay."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(_RETRY_SECONDS):
            try:
                self.send_ready()
            except Exception:  # never let the thread die: the ends would wait for a replay
                log.exception("sending spooled run ends failed; retrying")
            if not self._ends:
                with self._lock:
                    if not self._ends:
                        self._thread = None
                        return
