"""``Client.metric_stream()``: buffered, streamed metric logging for code that does not use the fluent API.

Services that hold a ``tracklane.Client`` (and log to runs by id, often several at once) get the same
path as ``tracklane.log_metric``: an append to an in-memory buffer, a background sender, one
``StreamMetrics`` call carried over the client's own channel (so its token and TLS apply), the spool
when the server is away, and exactly-once delivery.

    with client.metric_stream() as metrics:
        for step, loss in enumerate(losses):
            metrics.log_metric(run_id, "loss", loss, step=step)
    # exit: waits for the acks; refusals are raised
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tracklane._metrics.buffer import MetricBuffer, array_columns
from tracklane._metrics.sender import MetricSender, current_config
from tracklane._metrics.spool import spool_dir as resolve_spool_dir

if TYPE_CHECKING:
    from tracklane._client_base import ClientBase

__all__ = ["MetricStream"]


class MetricStream:
    """Streams metric points of any runs through one client; thread-safe. See the module docstring.

    Args:
        client: Its channel carries the stream (it is not closed with the stream).
        flush_points: Points per batch.
        flush_interval_ms: What is buffered is sent at least this often.
        flush_timeout: Seconds ``close`` (and the ``with`` block's end) waits for acknowledgements.
        spool_dir: Folder for batches the server cannot take now (default the fluent API's).
    """

    def __init__(
        self,
        client: ClientBase,
        *,
        flush_points: int | None = None,
        flush_interval_ms: float | None = None,
        flush_timeout: float | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        changes: dict[str, Any] = {
            "flush_points": flush_points,
            "flush_interval": None if flush_interval_ms is None else flush_interval_ms / 1000,
            "flush_timeout": flush_timeout,
            "spool_dir": None if spool_dir is None else resolve_spool_dir(spool_dir),
        }
        config = dataclasses.replace(current_config(), **{k: v for k, v in changes.items() if v is not None})
        self._sender = MetricSender(client.tracking_uri, config, channel=client._channel)
        # Buffers are single-writer: one per (thread, run).
        self._local = threading.local()

    def _buffer(self, run_id: str) -> MetricBuffer:
        buffers: dict[str, MetricBuffer] | None = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        buffer = buffers.get(run_id)
        if buffer is None:
            buffer = buffers[run_id] = self._sender.buffer(run_id)
        return buffer

    def log_metric(
        self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int | None = None
    ) -> None:
        """Buffers one point (no network wait; the sender ships it).

        Raises:
            InvalidArgument: a bad key (checked at its first use).
        """
        self._buffer(run_id).log(key, value, step, timestamp)

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], timestamp: int | None = None, step: int | None = None
    ) -> None:
        """Buffers one point per key, all at the same step and time."""
        self._buffer(run_id).log_many(metrics, step, timestamp)

    def log_metric_array(
        self, run_id: str, key: str, values: Any, steps: Any = None, timestamps: Any = None
    ) -> None:
        """Buffers many points of one metric from arrays; see ``tracklane.log_metric_array``."""
        columns = array_columns(values, steps, timestamps)
        if columns is not None:
            self._buffer(run_id).log_array(key, columns)

    def flush(self, timeout: float | None = None) -> None:
        """Waits until every point logged so far is acknowledged.

        Raises:
            TracklaneError: a batch the server refused since the last flush (NotFound, ...).
            DeadlineExceeded: not all acknowledged in ``timeout`` (default ``flush_timeout``); the
                rest is in the spool.
        """
        self._sender.flush(self._sender.config.flush_timeout if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flushes (raising as ``flush`` does), then stops the sender; what is unacked stays spooled."""
        try:
            self.flush(timeout)
        finally:
            self._sender.close(0)

    def __enter__(self) -> MetricStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
        else:  # keep the body's error; what could not be delivered is logged and spooled
            self._sender.close()
