"""The fluent API's state: the default client and metric sender, the tracking URI, the active
experiment, and each thread's stack of active runs.

The tracking URI, the active experiment and the default client are shared by the process (the
client is thread-safe and created lazily, under a lock); the stack of active runs and the last
active run are per thread. A child process after ``fork`` starts clean (no client, no runs, no
active experiment): a gRPC channel must not be used across a fork. The whole state is one object,
replaced at once (``_reset``, fork), so ``current()`` is read on every use, never kept.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from tracklane import _channel
from tracklane._metrics._native import MetricLogger
from tracklane._metrics.buffer import MetricBuffer
from tracklane._metrics.sender import MetricSender
from tracklane.client import Client

if TYPE_CHECKING:
    from tracklane.fluent.runs import ActiveRun

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "EXPERIMENT_ID_ENV",
    "EXPERIMENT_NAME_ENV",
    "RUN_ID_ENV",
    "current",
    "default_client",
    "get_tracking_uri",
    "metric_sender",
    "set_tracking_uri",
]

EXPERIMENT_NAME_ENV = "TRACKLANE_EXPERIMENT_NAME"
EXPERIMENT_ID_ENV = "TRACKLANE_EXPERIMENT_ID"
RUN_ID_ENV = "TRACKLANE_RUN_ID"
DEFAULT_EXPERIMENT_ID = "0"


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.stack: list[ActiveRun] = []
        self.last_run_id: str | None = None
        # Metric buffers of runs this thread logs to by run_id (not its active run).
        self.run_buffers: dict[str, MetricBuffer] = {}


class _State:
    """The process-wide part; replaced wholesale in a forked child."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.client: Client | None = None
        # Streams every run's metrics (created with the client's URI on the first metric).
        self.metrics: MetricSender | None = None
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.thread = _ThreadState()
        # Every thread's active runs, so that atexit can end them all.
        self.active: dict[str, ActiveRun] = {}


_state = _State()


def _reset() -> None:
    """Forgets all fluent state (client, runs, experiment, tracking URI) without ending runs.

    For tests, which call it between cases; the client is closed.
    """
    old = _state
    _replace_state(_State())
    if old.metrics is not None:
        old.metrics.close(_SWITCH_FLUSH_SECONDS)
    if old.client is not None:
        old.client.close()


# log_metric's C fast path reads this thread's runs from here (see _metrics/_native.c).
_fast_paths: list[MetricLogger] = []


def hand_fast_path(logger: MetricLogger) -> None:
    """Hands the C ``log_metric`` the per-thread runs it reads, now and whenever they are replaced."""
    _fast_paths.append(logger)
    logger.runs = _state.thread


def _replace_state(new: _State) -> None:
    global _state
    _state = new
    for logger in _fast_paths:
        logger.runs = new.thread


def current() -> _State:
    """The fluent state of this process now (read it again after a fork or ``_reset``)."""
    return _state


# Clients inherited across fork: kept referenced so that their channels are never closed (or garbage
# collected) in the child, where a shutdown could touch the parent's connection.
_inherited_clients: list[Client] = []
_inherited_senders: list[MetricSender] = []
# Replacing the sender (new tracking URI, new settings, reset) waits this long for acks; the rest
# of its points go to the spool.
_SWITCH_FLUSH_SECONDS = 5.0


def _after_fork_in_child() -> None:
    # Keep the tracking URI, which is configuration, not a connection; everything else starts over.
    if _state.client is not None:
        _inherited_clients.append(_state.client)
    if _state.metrics is not None:  # the parent sends what it buffered; the child starts empty
        _inherited_senders.append(_state.metrics)
    fresh = _State()
    fresh.tracking_uri = _state.tracking_uri
    _replace_state(fresh)


os.register_at_fork(after_in_child=_after_fork_in_child)


def default_client() -> Client:
    """The client the fluent API uses (created on first use, for ``get_tracking_uri()``).

    Returns:
        The process's default ``tracklane.Client``; it is replaced by ``set_tracking_uri`` and
        starts over in a forked child. Do not close it.
    """
    state = _state
    client = state.client
    if client is None:
        with state.lock:
            if state.client is None:
                state.client = Client(state.tracking_uri)
            client = state.client
    return client


def metric_sender() -> MetricSender:
    """The process's metric sender (created on the first metric, with the default client's URI)."""
    state = _state
    sender = state.metrics
    if sender is None:
        with state.lock:
            if state.metrics is None:
                state.metrics = MetricSender(default_client().tracking_uri)
            sender = state.metrics
    return sender


def set_tracking_uri(uri: str) -> None:
    """Sets the server the fluent API talks to; the default client is replaced.

    Args:
        uri: ``grpc://HOST:PORT`` or ``grpcs://HOST:PORT``.
    """
    state = _state
    with state.lock:
        old, state.client = state.client, None
        old_metrics, state.metrics = state.metrics, None
        state.tracking_uri = uri
        for run in state.active.values():  # their next metric gets a buffer of the new sender
            object.__setattr__(run, "_metrics", None)
    if old_metrics is not None:
        old_metrics.close(_SWITCH_FLUSH_SECONDS)
    if old is not None:
        old.close()


def get_tracking_uri() -> str:
    """The server the fluent API talks to.

    Returns:
        The URI set by ``set_tracking_uri``, else ``$TRACKLANE_TRACKING_URI``, else
        ``grpc://localhost:50051``.
    """
    return _channel.resolve_tracking_uri(_state.tracking_uri)
