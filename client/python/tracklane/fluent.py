"""MLflow's module-level API over a default ``tracklane.Client``: a training script's everyday calls.

    import tracklane

    tracklane.set_experiment("mnist")
    with tracklane.start_run(run_name="baseline"):
        tracklane.log_params({"lr": 0.01})
        tracklane.log_metric("loss", 0.31, step=10)

State, as in MLflow: the tracking URI, the active experiment and the default client are shared by the
process (the client is thread-safe and created lazily, under a lock); the stack of active runs and the
last active run are per thread, so each thread runs its own ``start_run``. A child process after
``fork`` starts clean (no client, no runs, no active experiment): a gRPC channel must not be used
across a fork. At interpreter exit, runs still active are ended FINISHED.

Environment (keyword arguments win):
  TRACKLANE_TRACKING_URI     the server, default ``grpc://localhost:50051``
  TRACKLANE_EXPERIMENT_NAME  experiment for runs when none was set (created if missing)
  TRACKLANE_EXPERIMENT_ID    experiment for runs when none was set and no name is given
  TRACKLANE_RUN_ID           the first start_run() without a run_id resumes this run (MLflow's
                             MLFLOW_RUN_ID: how `tracklane run` hands its run to the project)
"""

from __future__ import annotations

import atexit
import functools
import getpass
import importlib
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, overload

from tracklane import _channel, _metric_sender, _run_ends, system_metrics
from tracklane._metric_buffer import MetricBuffer, array_columns
from tracklane._metric_native import MetricLogger
from tracklane.client import Client
from tracklane.data import Dataset as DataDataset
from tracklane.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklane.exceptions import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    TracklaneError,
)

__all__ = [
    "ActiveRun",
    "active_run",
    "configure_metrics",
    "delete_tag",
    "end_run",
    "flush",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_input",
    "log_metric",
    "log_metric_array",
    "log_metrics",
    "log_param",
    "log_params",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

EXPERIMENT_NAME_ENV = "TRACKLANE_EXPERIMENT_NAME"
EXPERIMENT_ID_ENV = "TRACKLANE_EXPERIMENT_ID"
RUN_ID_ENV = "TRACKLANE_RUN_ID"
DEFAULT_EXPERIMENT_ID = "0"

log = logging.getLogger(__name__)


class ActiveRun(Run):
    """The run ``start_run`` returned: ``info``, ``data`` and ``inputs`` as they were at start.

    As a context manager, leaving the ``with`` ends the run FINISHED, or FAILED when an exception
    escapes (the exception propagates). Read the run again with ``tracklane.get_run(run.info.run_id)``
    for what was logged since.
    """

    # This run's metric buffer for the thread whose stack holds it; set on the first log_metric.
    _metrics: ClassVar[MetricBuffer | None] = None

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        status = RunStatus.FINISHED if exc_type is None else RunStatus.FAILED
        _end_run_and_above(self.info.run_id, status)


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
        self.metrics: _metric_sender.MetricSender | None = None
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
    global _state
    old = _state
    _state = _State()
    if old.metrics is not None:
        old.metrics.close(_SWITCH_FLUSH_SECONDS)
    if old.client is not None:
        old.client.close()


# Clients inherited across fork: kept referenced so that their channels are never closed (or garbage
# collected) in the child, where a shutdown could touch the parent's connection.
_inherited_clients: list[Client] = []
_inherited_senders: list[_metric_sender.MetricSender] = []
# Replacing the sender (new tracking URI, new settings, reset) waits this long for acks; the rest
# of its points go to the spool.
_SWITCH_FLUSH_SECONDS = 5.0
# Ending a run asks the server at least this long, even when the metrics used up the wait.
_END_CALL_SECONDS = 1.0


def _after_fork_in_child() -> None:
    global _state
    # Keep the tracking URI, which is configuration, not a connection; everything else starts over.
    if _state.client is not None:
        _inherited_clients.append(_state.client)
    if _state.metrics is not None:  # the parent sends what it buffered; the child starts empty
        _inherited_senders.append(_state.metrics)
    uri = _state.tracking_uri
    _state = _State()
    _state.tracking_uri = uri


os.register_at_fork(after_in_child=_after_fork_in_child)


def _client() -> Client:
    state = _state
    client = state.client
    if client is None:
        with state.lock:
            if state.client is None:
                state.client = Client(state.tracking_uri)
            client = state.client
    return client


# Tracking URI


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


# Experiments


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Makes an experiment the active one for new runs; by name, it is created when missing.

    Args:
        experiment_name: The experiment's name (created if it does not exist).
        experiment_id: Or its id (must exist). Without either, ``$TRACKLANE_EXPERIMENT_NAME`` or
            ``$TRACKLANE_EXPERIMENT_ID``.

    Returns:
        The experiment.

    Raises:
        InvalidArgument: both or neither are given.
        NotFound: no experiment has that id.
        FailedPrecondition: the experiment is deleted (restore it first).
    """
    if experiment_name is None and experiment_id is None:
        experiment_name = os.environ.get(EXPERIMENT_NAME_ENV) or None
        experiment_id = None if experiment_name else os.environ.get(EXPERIMENT_ID_ENV) or None
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidArgument(
            "set_experiment needs exactly one of experiment_name and experiment_id", field="experiment_name"
        )
    client = _client()
    if experiment_id is not None:
        experiment = client.get_experiment(experiment_id)
    else:
        assert experiment_name is not None
        experiment = _get_or_create_experiment(client, experiment_name)
    if experiment.lifecycle_stage == LifecycleStage.DELETED:
        raise FailedPrecondition(
            f"experiment {experiment.name!r} (id {experiment.experiment_id}) is deleted: restore it or "
            "choose another",
            field="experiment_id",
        )
    with _state.lock:
        _state.experiment_id = experiment.experiment_id
    return experiment


def _get_or_create_experiment(client: Client, name: str) -> Experiment:
    try:
        experiment = client.get_experiment_by_name(name)
    except PermissionDenied as denied:
        # With auth on, a missing experiment and an unreadable one answer alike: try to create it
        # (the creator may manage it); if the name is taken, the refusal stands.
        try:
            return client.get_experiment(client.create_experiment(name))
        except AlreadyExists:
            raise denied from None
    if experiment is not None:
        return experiment
    try:
        return client.get_experiment(client.create_experiment(name))
    except AlreadyExists:
        # Another process created it between our get and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment with that name, or None.

    Args:
        name: The experiment's name.

    Returns:
        The experiment (possibly deleted), or None when there is none.
    """
    return _client().get_experiment_by_name(name)


def _experiment_id(experiment_id: str | None = None) -> str:
    """Argument > set_experiment > $TRACKLANE_EXPERIMENT_NAME > $TRACKLANE_EXPERIMENT_ID > "0"."""
    if experiment_id:
        return experiment_id
    if _state.experiment_id:
        return _state.experiment_id
    name = os.environ.get(EXPERIMENT_NAME_ENV)
    if name:
        return _get_or_create_experiment(_client(), name).experiment_id
    return os.environ.get(EXPERIMENT_ID_ENV) or DEFAULT_EXPERIMENT_ID


# Runs


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    parent_run_id: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Starts a run (or resumes one) and makes it this thread's active run.

    Args:
        run_id: Resume this run: it is set RUNNING again and becomes active. Default: the run in
            ``$TRACKLANE_RUN_ID`` for the first top-level run of the process (then unset).
        experiment_id: Experiment for a new run; default the active one (``set_experiment``), else the
            environment's, else the default experiment "0".
        run_name: For humans; generated when None (renames a resumed run).
        nested: Start under the active run (its ``parent_run_id``); needed when a run is active.
        tags: Tags to set on the run.
        description: Free text.
        parent_run_id: Explicit parent; must be the active run when one is active.
        log_system_metrics: Sample CPU, memory, disk, network and GPUs into ``system/...`` metrics while
            the run is active; None follows ``tracklane.enable_system_metrics_logging()`` or
            ``$TRACKLANE_ENABLE_SYSTEM_METRICS_LOGGING``. Needs psutil.

    Returns:
        The ActiveRun; use it in a ``with`` to end it FINISHED (or FAILED on an exception).

    Raises:
        FailedPrecondition: a run is already active and ``nested`` is False, the run to resume is
            deleted, or ``parent_run_id`` is not the active run.
        InvalidArgument: ``run_id`` belongs to another experiment than ``experiment_id``.
        NotFound: no run has that ``run_id``.
    """
    thread = _state.thread
    stack = thread.stack
    if stack and not nested:
        raise FailedPrecondition(
            f"run {stack[-1].info.run_id} is already active: end it with tracklane.end_run(), or start "
            "this one with nested=True",
            field="nested",
        )
    active_parent = stack[-1].info.run_id if stack else None
    if parent_run_id and active_parent and parent_run_id != active_parent:
        raise FailedPrecondition(
            f"parent_run_id {parent_run_id} is not the active run {active_parent}",
            field="parent_run_id",
        )
    parent = parent_run_id or active_parent
    sample_system = system_metrics.wanted(log_system_metrics)
    if sample_system:
        system_metrics.require_psutil()  # before the run exists: no run left behind by a missing extra
    client = _client()
    str_tags = {k: str(v) for k, v in (tags or {}).items()}
    if not run_id and not stack and os.environ.get(RUN_ID_ENV):
        # Once only, as MLflow does with MLFLOW_RUN_ID: later runs of the process are new ones.
        run_id = os.environ.pop(RUN_ID_ENV)
    if run_id and any(r.info.run_id == run_id for r in stack):
        raise FailedPrecondition(f"run {run_id} is already active in this thread", field="run_id")
    if run_id:
        run = _resume_run(client, run_id, experiment_id, run_name, str_tags, description)
    else:
        run = client.create_run(
            _experiment_id(experiment_id),
            tags=str_tags,
            run_name=run_name,
            parent_run_id=parent,
            description=description or "",
            user_id=_user(),
        )
    active = ActiveRun(run.info, run.data, run.inputs)
    stack.append(active)
    thread.last_run_id = active.info.run_id
    with _state.lock:
        _state.active[active.info.run_id] = active
    if sample_system:
        system_metrics.start_monitor(active.info.run_id, client.tracking_uri)
    return active


def _resume_run(
    client: Client,
    run_id: str,
    experiment_id: str | None,
    run_name: str | None,
    tags: Mapping[str, str],
    description: str | None,
) -> Run:
    existing = client.get_run(run_id)
    if experiment_id and existing.info.experiment_id != experiment_id:
        raise InvalidArgument(
            f"run {run_id} is in experiment {existing.info.experiment_id}, not {experiment_id}",
            field="experiment_id",
        )
    if existing.info.lifecycle_stage == LifecycleStage.DELETED:
        raise FailedPrecondition(f"run {run_id} is deleted: restore it first", field="run_id")
    client.update_run(run_id, status=RunStatus.RUNNING, name=run_name, description=description)
    if tags:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    return client.get_run(run_id)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no such user (containers) or no login
        return ""


def active_run() -> ActiveRun | None:
    """This thread's active run (the innermost when nested), or None.

    Returns:
        The ActiveRun as it was when started, or None.
    """
    stack = _state.thread.stack
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The run this thread started or ended last (the active one, if any), read again from the server.

    Returns:
        The run as stored now, or None when this thread has not run one.
    """
    run_id = _state.thread.last_run_id
    return None if run_id is None else _client().get_run(run_id)


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """Ends this thread's active run (the innermost); does nothing when none is active.

    Args:
        status: FINISHED, FAILED or KILLED.
    """
    active = active_run()
    if active is not None:
        _end_run_and_above(active.info.run_id, RunStatus(status))


def _end_run_and_above(run_id: str, status: RunStatus) -> None:
    """Ends ``run_id`` and any runs nested above it on this thread's stack (innermost first)."""
    thread = _state.thread
    stack = thread.stack
    if not any(r.info.run_id == run_id for r in stack):
        return  # already ended, e.g. by end_run() inside the with
    undelivered: Exception | None = None
    # One wait for all of it (TRACKLANE_METRICS_FLUSH_TIMEOUT), whatever the number of runs.
    deadline = time.monotonic() + _flush_timeout()
    while stack:
        # Off the stack first (as MLflow does): if the server cannot be told, the thread can go on.
        top = stack.pop()
        with _state.lock:
            _state.active.pop(top.info.run_id, None)
        thread.last_run_id = top.info.run_id
        system_metrics.stop_monitor(top.info.run_id)
        undelivered = _flush_run_metrics(top, deadline) or undelivered
        undelivered = _end_on_server(top.info.run_id, status, deadline) or undelivered
        if top.info.run_id == run_id:
            break
    if undelivered is not None:
        raise undelivered  # after the runs are ended: a metric refusal must not leave them RUNNING


def _flush_timeout() -> float:
    sender = _state.metrics
    return (sender.config if sender is not None else _metric_sender.current_config()).flush_timeout


def _flush_run_metrics(run: ActiveRun, deadline: float) -> Exception | None:
    """Waits (until ``deadline``) for the run's metrics to be acknowledged; returns the error, if any."""
    sender = _state.metrics
    if sender is None:
        return None
    sender.release_run(run.info.run_id)  # this thread's buffer and those logging to it by run_id
    object.__setattr__(run, "_metrics", None)
    try:
        sender.flush(max(0.0, deadline - time.monotonic()))
    except TracklaneError as exc:
        log.error("metrics of run %s: %s", run.info.run_id, exc)
        return exc
    return None


def _end_on_server(run_id: str, status: RunStatus, deadline: float) -> Exception | None:
    """Ends the run; when the server does not answer, its end goes to the spool (see _run_ends)."""
    error = _run_ends.end_on_server(
        _client()._channel,
        run_id,
        status,
        timeout=max(_END_CALL_SECONDS, deadline - time.monotonic()),
        keep=lambda end: _sender().end_run_later(run_id, end),
    )
    if error is not None:
        log.warning("%s", error)
    return error


def _end_all_at_exit() -> None:
    state = _state
    with state.lock:
        runs = list(state.active.values())
        state.active.clear()
    sender = state.metrics
    # One deadline for the whole exit; none at all when a flush already waited out its timeout and
    # the server has acknowledged nothing since (it is still away): spool and go.
    timeout = _flush_timeout() if sender is None else sender.shutdown_budget(_flush_timeout())
    deadline = time.monotonic() + timeout
    if sender is not None and runs:
        try:
            sender.flush(timeout)
        except TracklaneError as exc:
            log.warning("metrics not all delivered before exit: %s", exc)
    for run in reversed(runs):  # innermost (newest) first
        try:
            _end_on_server(run.info.run_id, RunStatus.FINISHED, deadline)
        except Exception as exc:  # e.g. the run was deleted meanwhile: exit anyway
            log.warning("could not end run %s at exit: %s", run.info.run_id, exc)
    if state.metrics is not None:
        state.metrics.close(max(0.0, deadline - time.monotonic()))


atexit.register(_end_all_at_exit)


def _run_id() -> str:
    """The active run's id, starting a run (in the active experiment) when none is active."""
    active = active_run()
    return (active or start_run()).info.run_id


def get_run(run_id: str) -> Run:
    """A run with its params, tags, latest metrics and inputs.

    Args:
        run_id: The run.

    Returns:
        The run as stored now.

    Raises:
        NotFound: no such run.
    """
    return _client().get_run(run_id)


# Logging


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
    _client().log_batch(_run_id(), params=[Param(key, str(value))])
    return value


def log_params(params: Mapping[str, Any]) -> None:
    """Logs several params at once (one atomic call) to the active run, started if needed.

    Args:
        params: Name -> value (each sent as its ``str()``).
    """
    _client().log_batch(_run_id(), params=[Param(k, str(v)) for k, v in params.items()])


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
# without a Python frame, reading the same state as _metric_buffer (see _metric_native.c); every
# other call goes to _log_metric above.
log_metric = functools.update_wrapper(MetricLogger(globals(), _log_metric), _log_metric)
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
    sender = _state.metrics
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
    _metric_sender.configure(
        flush_points=flush_points,
        flush_interval=None if flush_interval_ms is None else flush_interval_ms / 1000,
        max_inflight=max_inflight,
        max_memory_points=max_memory_points,
        spill_after=None if spill_after_ms is None else spill_after_ms / 1000,
        flush_timeout=flush_timeout,
        spool_dir=spool_dir,
        spool_max_bytes=spool_max_bytes,
    )
    state = _state
    with state.lock:
        old, state.metrics = state.metrics, None
        for run in state.active.values():
            object.__setattr__(run, "_metrics", None)
    if old is not None:
        old.close(_SWITCH_FLUSH_SECONDS)


def _metric_buffer(run_id: str | None = None) -> MetricBuffer:
    """This thread's buffer for its active run (started if needed) or ``run_id``: the slow path."""
    state = _state
    run = active_run()
    if run_id is not None and (run is None or run.info.run_id != run_id):
        buffers = state.thread.run_buffers
        found = buffers.get(run_id)
        if found is None or found.closed or found.sink is not state.metrics:
            found = buffers[run_id] = _sender().buffer(run_id)
        return found
    run = run or start_run()
    buffer = run._metrics
    if buffer is None:
        buffer = _sender().buffer(run.info.run_id)
        object.__setattr__(run, "_metrics", buffer)
    return buffer


def _sender() -> _metric_sender.MetricSender:
    state = _state
    sender = state.metrics
    if sender is None:
        with state.lock:
            if state.metrics is None:
                state.metrics = _metric_sender.MetricSender(_client().tracking_uri)
            sender = state.metrics
    return sender


def set_tag(key: str, value: Any) -> None:
    """Sets a tag (its ``str()``) on the active run, started if needed.

    Args:
        key: The tag's name.
        value: Its value; overwrites the previous one.
    """
    _client().log_batch(_run_id(), tags=[RunTag(key, str(value))])


def set_tags(tags: Mapping[str, Any]) -> None:
    """Sets several tags at once on the active run, started if needed.

    Args:
        tags: Name -> value (each sent as its ``str()``).
    """
    _client().log_batch(_run_id(), tags=[RunTag(k, str(v)) for k, v in tags.items()])


def delete_tag(key: str) -> None:
    """Deletes a tag from the active run, started if needed.

    Args:
        key: The tag's name.

    Raises:
        NotFound: the tag is not set.
    """
    _client().delete_tag(_run_id(), key)


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
    _client().log_inputs(_run_id(), [used])


# Search


@overload
def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str = "",
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: Sequence[str] | None = None,
    *,
    output_format: Literal["list"],
    experiment_names: Sequence[str] | None = None,
) -> list[Run]: ...


@overload
def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str = "",
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: Sequence[str] | None = None,
    output_format: Literal["pandas"] = "pandas",
    experiment_names: Sequence[str] | None = None,
) -> Any: ...  # a pandas.DataFrame: pandas is optional, so not named in the signature


def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str = "",
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: Sequence[str] | None = None,
    output_format: Literal["pandas", "list"] = "pandas",
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs matching an MLflow-style filter, as a pandas DataFrame or a list of Run.

    The DataFrame needs pandas (``pip install 'tracklane[pandas]'``); without it this raises rather
    than return another type. ``output_format="list"`` needs nothing more.

    Args:
        experiment_ids: Experiments to search; default the active experiment.
        filter_string: e.g. ``metrics.acc > 0.9 and params.model = 'rf'``; empty for all runs.
        run_view_type: Live, deleted or all runs.
        max_results: At most this many runs.
        order_by: e.g. ``["metrics.acc DESC"]``; default newest first.
        output_format: ``"pandas"`` (a DataFrame) or ``"list"`` (a list of Run).
        experiment_names: Experiments to search by name (added to ``experiment_ids``; unknown names
            are skipped).

    Returns:
        A ``pandas.DataFrame`` with MLflow's columns (``run_id``, ``experiment_id``, ``status``,
        ``artifact_uri``, ``start_time``, ``end_time``, ``metrics.<key>``, ``params.<key>``,
        ``tags.<key>``, plus ``run_name``), one row per run; or, with ``output_format="list"``, a
        ``list[Run]``.

    Raises:
        InvalidArgument: the filter or order does not parse, or an unknown output_format.
        ImportError: ``output_format="pandas"`` and pandas is not installed.
    """
    if output_format not in ("pandas", "list"):
        raise InvalidArgument(
            f"output_format must be 'pandas' or 'list', not {output_format!r}", field="output_format"
        )
    pd: Any = _pandas_for_search() if output_format == "pandas" else None
    client = _client()
    ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids or ())
    for name in experiment_names or ():
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            ids.append(experiment.experiment_id)
    if experiment_ids is None and experiment_names is None:
        ids = [_experiment_id()]
    runs = client.search_runs(ids, filter_string, run_view_type, max_results, order_by) if ids else []
    if pd is None:
        return runs
    return _runs_to_dataframe(pd, runs)


def _pandas_for_search() -> Any:
    """pandas, or an ImportError saying how to get it (checked before any call to the server)."""
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(
            "search_runs returns a pandas DataFrame, and pandas is not installed: "
            "pip install 'tracklane[pandas]', or pass output_format='list' for a list of Run"
        ) from exc


_INFO_COLUMNS = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time", "run_name")


def _runs_to_dataframe(pd: Any, runs: Sequence[Run]) -> Any:
    columns: dict[str, list[Any]] = {name: [] for name in _INFO_COLUMNS}
    metric_keys = sorted({k for r in runs for k in r.data.latest_metrics})
    param_keys = sorted({k for r in runs for k in r.data.params})
    tag_keys = sorted({k for r in runs for k in r.data.tags})
    for run in runs:
        info = run.info
        columns["run_id"].append(info.run_id)
        columns["experiment_id"].append(info.experiment_id)
        columns["status"].append(str(info.status))
        columns["artifact_uri"].append(info.artifact_uri)
        columns["start_time"].append(info.start_time)
        columns["end_time"].append(info.end_time)
        columns["run_name"].append(info.run_name)
    for key in metric_keys:
        columns[f"metrics.{key}"] = [
            r.data.latest_metrics[key].value if key in r.data.latest_metrics else float("nan") for r in runs
        ]
    for key in param_keys:
        columns[f"params.{key}"] = [r.data.params.get(key) for r in runs]
    for key in tag_keys:
        columns[f"tags.{key}"] = [r.data.tags.get(key) for r in runs]
    frame = pd.DataFrame(columns)
    for name in ("start_time", "end_time"):
        # Epoch millis -> timezone-aware timestamps, as MLflow returns them (NaT where unset).
        frame[name] = pd.to_datetime(frame[name], unit="ms", utc=True)
    return frame
