"""Fluent experiments and runs: ``set_experiment``, ``start_run``, ``end_run``, ``active_run``...

A thread's active runs are a stack (nested runs on top); ending one ends those above it. At
interpreter exit, runs still active are ended FINISHED, after their metrics are flushed (or spooled).
"""

from __future__ import annotations

import atexit
import getpass
import logging
import os
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar

from tracklane import system_metrics
from tracklane._metrics.buffer import MetricBuffer
from tracklane._metrics.config import current_config
from tracklane._metrics.run_ends import end_on_server
from tracklane.client import Client
from tracklane.entities import Experiment, LifecycleStage, Run, RunStatus, RunTag
from tracklane.exceptions import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    TracklaneError,
)
from tracklane.fluent.state import (
    DEFAULT_EXPERIMENT_ID,
    EXPERIMENT_ID_ENV,
    EXPERIMENT_NAME_ENV,
    RUN_ID_ENV,
    current,
    default_client,
    metric_sender,
)

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "get_experiment_by_name",
    "get_run",
    "last_active_run",
    "set_experiment",
    "start_run",
]

log = logging.getLogger("tracklane.fluent")

# Ending a run asks the server at least this long, even when the metrics used up the wait.
_END_CALL_SECONDS = 1.0


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
    client = default_client()
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
    state = current()
    with state.lock:
        state.experiment_id = experiment.experiment_id
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
    return default_client().get_experiment_by_name(name)


def _experiment_id(experiment_id: str | None = None) -> str:
    """Argument > set_experiment > $TRACKLANE_EXPERIMENT_NAME > $TRACKLANE_EXPERIMENT_ID > "0"."""
    if experiment_id:
        return experiment_id
    active_experiment = current().experiment_id
    if active_experiment:
        return active_experiment
    name = os.environ.get(EXPERIMENT_NAME_ENV)
    if name:
        return _get_or_create_experiment(default_client(), name).experiment_id
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
    state = current()
    thread = state.thread
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
    client = default_client()
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
    with state.lock:
        state.active[active.info.run_id] = active
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
    stack = current().thread.stack
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The run this thread started or ended last (the active one, if any), read again from the server.

    Returns:
        The run as stored now, or None when this thread has not run one.
    """
    run_id = current().thread.last_run_id
    return None if run_id is None else default_client().get_run(run_id)


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
    state = current()
    thread = state.thread
    stack = thread.stack
    if not any(r.info.run_id == run_id for r in stack):
        return  # already ended, e.g. by end_run() inside the with
    undelivered: Exception | None = None
    # One wait for all of it (TRACKLANE_METRICS_FLUSH_TIMEOUT), whatever the number of runs.
    deadline = time.monotonic() + _flush_timeout()
    while stack:
        # Off the stack first (as MLflow does): if the server cannot be told, the thread can go on.
        top = stack.pop()
        with state.lock:
            state.active.pop(top.info.run_id, None)
        thread.last_run_id = top.info.run_id
        system_metrics.stop_monitor(top.info.run_id)
        undelivered = _flush_run_metrics(top, deadline) or undelivered
        undelivered = _end_on_server(top.info.run_id, status, deadline) or undelivered
        if top.info.run_id == run_id:
            break
    if undelivered is not None:
        raise undelivered  # after the runs are ended: a metric refusal must not leave them RUNNING


def _flush_timeout() -> float:
    sender = current().metrics
    return (sender.config if sender is not None else current_config()).flush_timeout


def _flush_run_metrics(run: ActiveRun, deadline: float) -> Exception | None:
    """Waits (until ``deadline``) for the run's metrics to be acknowledged; returns the error, if any."""
    sender = current().metrics
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
    error = end_on_server(
        default_client()._channel,
        run_id,
        status,
        timeout=max(_END_CALL_SECONDS, deadline - time.monotonic()),
        keep=lambda end: metric_sender().end_run_later(run_id, end),
    )
    if error is not None:
        log.warning("%s", error)
    return error


def _end_all_at_exit() -> None:
    state = current()
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
    return default_client().get_run(run_id)
