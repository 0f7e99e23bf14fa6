"""Fluent logging to the active run (started if needed): params, metrics, tags, dataset inputs.

Metrics are buffered and streamed in the background (see :mod:`tracklane._metrics`); params, tags
and inputs are one call each.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from tracklane._metrics._native import MetricLogger
from tracklane._metrics.buffer import MetricBuffer, array_columns
from tracklane._metrics.config import configure
from tracklane.data import Dataset as DataDataset
from tracklane.entities import Dataset, DatasetInput, Param, RunTag
from tracklane.fluent.runs import _run_id, active_run, start_run
from tracklane.fluent.state import (
    _SWITCH_FLUSH_SECONDS,
    current,
    default_client,
    hand_fast_path,
    metric_sender,
)

__all__ = [
    "configure_metrics",
    "delete_tag",
    "flush",
    "log_input",
    "log_metric",
    "log_metric_array",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
]


def log_param(key: str, value: Any) -> Any:
    """Logs a param (its ``str()``) to the active run, started if needed.

    Args:
        key: The param's name.
        value: Its value; a param is set once (logging the same value again is fine).

    Returns:
        ``value``, as MLflow does.

    Raises:
        InvalidArgument: a bad key, or a different value for a param already set.
    """
    default_client().log_batch(_run_id(), params=[Param(key, str(value))])
    return value


def log_params(params: Mapping[str, Any]) -> None:
    """Logs several params at once (one atomic call) to the active run, started if needed.

    Args:
        params: Name -> value (each sent as its ``str()``).
    """
    default_client().log_batch(_run_id(), params=[Param(k, str(v)) for k, v in params.items()])


def _log_metric(
    key: str,
    value: float,
    step: int | None = None,
    timestamp: int | None = None,
    *,
    run_id: str | None = None,
) -> None:
    """Logs a metric point to the active run, started if needed: buffered, sent in the background.

    Costs well under a microsecond and never waits for the network; ``flush()`` or the end of the
    run waits for the server's acknowledgement (and raises what it refused).

    Args:
        key: The metric's name.
        value: Its value (NaN and infinities are kept).
        step: Training step; default 0.
        timestamp: Epoch milliseconds; default now.
        run_id: Log to this run instead of the active one (e.g. from a background thread).

    Raises:
        InvalidArgument: a bad key (checked on its first use in the run), or a value, step or
            timestamp that is not a number of the right kind.
    """
    _metric_buffer(run_id).log(key, value, step, timestamp)


# The common call (this thread's active run already has its buffer, plain arguments) runs in C
# without a Python frame, on the runs the state hands it (see _metrics/_native.c); every other call
# goes to _log_metric above. tests/unit/test_log_metric_fast_path.py fails when it stops doing so.
_fast_path = MetricLogger(_log_metric)
hand_fast_path(_fast_path)
log_metric = functools.update_wrapper(_fast_path, _log_metric)
log_metric.__name__ = log_metric.__qualname__ = "log_metric"


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    timestamp: int | None = None,
    *,
    run_id: str | None = None,
) -> None:
    """Logs several metrics at the same step and time to the active run, started if needed (buffered).

    Args:
        metrics: Name -> value.
        step: Training step; default 0.
        timestamp: Epoch milliseconds; default now.
        run_id: Log to this run instead of the active one.
    """
    _metric_buffer(run_id).log_many(metrics, step, timestamp)


def log_metric_array(
    key: str, values: Any, steps: Any = None, timestamps: Any = None, *, run_id: str | None = None
) -> None:
    """Logs many points of one metric at once from arrays (numpy or sequences): for vectorised producers.

    Args:
        key: The metric's name.
        values: One value per point.
        steps: One step per point; default ``0, 1, ... len(values) - 1``.
        timestamps: Epoch milliseconds, one per point or one for all; default now.
        run_id: Log to this run instead of the active one.

    Raises:
        InvalidArgument: a bad key, or ``steps``/``timestamps`` not of the length of ``values``.
    """
    columns = array_columns(values, steps, timestamps)
    if columns is not None:
        _metric_buffer(run_id).log_array(key, columns)


def flush(timeout: float | None = None) -> None:
    """Waits until every metric logged so far (by any thread) is acknowledged by the server.

    Args:
        timeout: Seconds; default ``TRACKLANE_METRICS_FLUSH_TIMEOUT`` (60).

    Raises:
        TracklaneError: a batch the server refused since the last flush (NotFound for a run that is
            gone, InvalidArgument...); every refusal is also logged.
        DeadlineExceeded: not all acknowledged in time; what is left is in the spool and is sent
            when the server answers, or by ``tracklane sync``.
    """
    sender = current().metrics
    if sender is not None:
        sender.flush(sender.config.flush_timeout if timeout is None else timeout)


def configure_metrics(
    *,
    flush_points: int | None = None,
    flush_interval_ms: float | None = None,
    max_inflight: int | None = None,
    max_memory_points: int | None = None,
    spill_after_ms: float | None = None,
    flush_timeout: float | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    spool_max_bytes: int | None = None,
) -> None:
    """Tunes metric streaming (over the ``TRACKLANE_METRICS_*`` variables); call before logging.

    Args:
        flush_points: Points per batch; a batch is cut as soon as a thread has logged this many.
        flush_interval_ms: What is buffered is sent at least this often.
        max_inflight: Batches sent and not yet acknowledged, at most.
        max_memory_points: Points waiting in memory before they spill to the spool.
        spill_after_ms: Spill when the server has not acknowledged anything for this long.
        flush_timeout: Seconds ``end_run``, ``flush()`` and interpreter exit wait for acks.
        spool_dir: Folder of the spool (default ``~/.cache/tracklane/spool``).
        spool_max_bytes: Cap on one process's spool; batches past it are dropped and reported.
    """
    configure(
        flush_points=flush_points,
        flush_interval=None if flush_interval_ms is None else flush_interval_ms / 1000,
        max_inflight=max_inflight,
        max_memory_points=max_memory_points,
        spill_after=None if spill_after_ms is None else spill_after_ms / 1000,
        flush_timeout=flush_timeout,
        spool_dir=spool_dir,
        spool_max_bytes=spool_max_bytes,
    )
    state = current()
    with state.lock:
        old, state.metrics = state.metrics, None
        for run in state.active.values():
            object.__setattr__(run, "_metrics", None)
    if old is not None:
        old.close(_SWITCH_FLUSH_SECONDS)


def _metric_buffer(run_id: str | None = None) -> MetricBuffer:
    """This thread's buffer for its active run (started if needed) or ``run_id``: the slow path."""
    state = current()
    run = active_run()
    if run_id is not None and (run is None or run.info.run_id != run_id):
        buffers = state.thread.run_buffers
        found = buffers.get(run_id)
        if found is None or found.closed or found.sink is not state.metrics:
            found = buffers[run_id] = metric_sender().buffer(run_id)
        return found
    run = run or start_run()
    buffer = run._metrics
    if buffer is None:
        buffer = metric_sender().buffer(run.info.run_id)
        object.__setattr__(run, "_metrics", buffer)
    return buffer


def set_tag(key: str, value: Any) -> None:
    """Sets a tag (its ``str()``) on the active run, started if needed.

    Args:
        key: The tag's name.
        value: Its value; overwrites the previous one.
    """
    default_client().log_batch(_run_id(), tags=[RunTag(key, str(value))])


def set_tags(tags: Mapping[str, Any]) -> None:
    """Sets several tags at once on the active run, started if needed.

    Args:
        tags: Name -> value (each sent as its ``str()``).
    """
    default_client().log_batch(_run_id(), tags=[RunTag(k, str(v)) for k, v in tags.items()])


def delete_tag(key: str) -> None:
    """Deletes a tag from the active run, started if needed.

    Args:
        key: The tag's name.

    Raises:
        NotFound: the tag is not set.
    """
    default_client().delete_tag(_run_id(), key)


def log_input(
    dataset: DataDataset | Dataset, context: str | None = None, tags: Mapping[str, Any] | None = None
) -> None:
    """Records a dataset the active run (started if needed) uses.

    Args:
        dataset: From ``tracklane.data.from_numpy`` / ``from_pandas``, or a ``tracklane.Dataset``.
        context: What it is used for: ``"training"``, ``"validation"``...
        tags: Tags on this use of the dataset.
    """
    entity = dataset.to_entity() if isinstance(dataset, DataDataset) else dataset
    used = DatasetInput(entity, context or "", {k: str(v) for k, v in (tags or {}).items()})
    default_client().log_inputs(_run_id(), [used])
