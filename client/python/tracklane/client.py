"""Client: one method per RPC, entities in and out, typed errors; MLflow's names where it has them."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from tracklane._artifacts.methods import ArtifactMethods
from tracklane._permission_methods import PermissionMethods
from tracklane._registry_methods import RegistryMethods
from tracklane.entities import (
    DatasetInput,
    Experiment,
    Metric,
    MetricSeries,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklane.exceptions import NotFound
from tracklane.v1 import common_pb2, tracking_pb2

if TYPE_CHECKING:
    from tracklane._metrics.metric_stream import MetricStream

__all__ = ["Client"]


class Client(ArtifactMethods, RegistryMethods, PermissionMethods):
    """A connection to a Tracklane server.

    Args:
        tracking_uri: ``grpc://HOST:PORT`` or ``grpcs://HOST:PORT``; default
            ``$TRACKLANE_TRACKING_URI``, else ``grpc://localhost:50051``.
        timeout: Seconds each call may take before it fails with DeadlineExceeded.
        token: API token for servers with auth; default ``$TRACKLANE_TRACKING_TOKEN``. TLS files
            come from ``$TRACKLANE_TRACKING_CA_FILE`` and, for mutual TLS,
            ``$TRACKLANE_TRACKING_CLIENT_CERT_FILE`` / ``$TRACKLANE_TRACKING_CLIENT_KEY_FILE``.

    Usable as a context manager; ``close()`` releases the connection. Safe to share between threads.
    """

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Experiments

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
    ) -> str:
        """Creates an experiment and returns its id.

        Raises:
            AlreadyExists: the name is taken. InvalidArgument: a bad name or tag.
        """
        response = self._call(
            self._tracking.CreateExperiment,
            tracking_pb2.CreateExperimentRequest(
                name=name,
                artifact_location=artifact_location or "",
                tags=_tags(tags),
                description=description,
            ),
        )
        return response.experiment.experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id. Raises NotFound."""
        response = self._call(
            self._tracking.GetExperiment, tracking_pb2.GetExperimentRequest(experiment_id=experiment_id)
        )
        return Experiment.from_proto(response.experiment)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with this exact name, or None (as in MLflow)."""
        try:
            response = self._call(
                self._tracking.GetExperimentByName, tracking_pb2.GetExperimentByNameRequest(name=name)
            )
        except NotFound:
            return None
        return Experiment.from_proto(response.experiment)

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]:
        """Experiments matching a filter on name, attributes and tags, e.g. ``name LIKE 'cv-%'``.

        Default order: newest first. Raises InvalidArgument when the filter does not parse.
        """
        request = tracking_pb2.SearchExperimentsRequest(
            filter=filter_string,
            order_by=list(order_by or ()),
            view_type=view_type.to_proto(),
            page_size=min(max_results, 1000),
        )
        found: list[Experiment] = []
        while len(found) < max_results:
            response = self._call(self._tracking.SearchExperiments, request)
            found.extend(Experiment.from_proto(e) for e in response.experiments)
            if not response.next_page_token:
                break
            request.page_token = response.next_page_token
        return found[:max_results]

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Renames an experiment. Raises AlreadyExists when the name is taken."""
        request = tracking_pb2.UpdateExperimentRequest(experiment_id=experiment_id, name=new_name)
        request.update_mask.paths.append("name")
        self._call(self._tracking.UpdateExperiment, request)

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-deletes an experiment and its live runs; restorable."""
        self._call(
            self._tracking.DeleteExperiment, tracking_pb2.DeleteExperimentRequest(experiment_id=experiment_id)
        )

    def restore_experiment(self, experiment_id: str) -> None:
        """Restores a soft-deleted experiment and the runs deleted with it."""
        self._call(
            self._tracking.RestoreExperiment,
            tracking_pb2.RestoreExperimentRequest(experiment_id=experiment_id),
        )

    def set_experiment_tag(self, experiment_id: str, key: str, value: object) -> None:
        """Sets (or overwrites) an experiment tag to ``str(value)``."""
        self._call(
            self._tracking.SetExperimentTag,
            tracking_pb2.SetExperimentTagRequest(
                experiment_id=experiment_id, tag=common_pb2.Tag(key=key, value=str(value))
            ),
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Deletes an experiment tag. Raises NotFound when it is not set."""
        self._call(
            self._tracking.DeleteExperimentTag,
            tracking_pb2.DeleteExperimentTagRequest(experiment_id=experiment_id, key=key),
        )

    # Runs

    def create_run(
        self,
        experiment_id: str = "0",
        start_time: int | None = None,
        tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
        *,
        parent_run_id: str | None = None,
        description: str = "",
        user_id: str = "",
        request_id: str | None = None,
    ) -> Run:
        """Creates a RUNNING run (name generated when not given).

        Args:
            experiment_id: The experiment; "0" is the default experiment.
            start_time: Epoch milliseconds; default now.
            tags: Initial tags.
            run_name: For humans; generated (``brave-otter-42``) when None.
            parent_run_id: Makes this a nested run.
            description: Free text.
            user_id: Who runs it.
            request_id: Idempotency key (at most 128 characters): a retry with the same key returns
                the same run. Default: a fresh one per call, so the client's own retries (on
                UNAVAILABLE) never create a second run; pass your own to retry across processes.
        """
        request = tracking_pb2.CreateRunRequest(
            experiment_id=experiment_id,
            run_name=run_name or "",
            tags=_tags(tags),
            parent_run_id=parent_run_id or "",
            description=description,
            user_id=user_id,
            request_id=request_id or uuid.uuid4().hex,
        )
        if start_time is not None:
            request.start_time.FromMilliseconds(start_time)
        return Run.from_proto(self._call(self._tracking.CreateRun, request).run)

    def get_run(self, run_id: str) -> Run:
        """The run with its params, tags, latest metrics and inputs. Raises NotFound."""
        return Run.from_proto(
            self._call(self._tracking.GetRun, tracking_pb2.GetRunRequest(run_id=run_id)).run
        )

    def update_run(
        self,
        run_id: str,
        status: RunStatus | str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> RunInfo:
        """Changes a run's status, end time, name or description (only the arguments given).

        A terminal status (FINISHED, FAILED, KILLED) without ``end_time`` ends the run now; RUNNING
        resumes it. Raises NotFound, FailedPrecondition (deleted run), InvalidArgument.
        """
        request = tracking_pb2.UpdateRunRequest(run_id=run_id)
        if status is not None:
            request.status = RunStatus(status).to_proto()
            request.update_mask.paths.append("status")
        if end_time is not None:
            request.end_time.FromMilliseconds(end_time)
            request.update_mask.paths.append("end_time")
        if name is not None:
            request.run_name = name
            request.update_mask.paths.append("run_name")
        if description is not None:
            request.description = description
            request.update_mask.paths.append("description")
        if not request.update_mask.paths:
            return self.get_run(run_id).info
        return RunInfo.from_proto(self._call(self._tracking.UpdateRun, request).run_info)

    def set_terminated(
        self, run_id: str, status: RunStatus | str = "FINISHED", end_time: int | None = None
    ) -> None:
        """Ends a run (MLflow's name): FINISHED by default, at ``end_time`` or now."""
        self.update_run(run_id, status=status, end_time=end_time)

    def delete_run(self, run_id: str) -> None:
        """Soft-deletes a run: hidden from default searches, restorable."""
        self._call(self._tracking.DeleteRun, tracking_pb2.DeleteRunRequest(run_id=run_id))

    def restore_run(self, run_id: str) -> None:
        """Restores a soft-deleted run."""
        self._call(self._tracking.RestoreRun, tracking_pb2.RestoreRunRequest(run_id=run_id))

    def delete_tag(self, run_id: str, key: str) -> None:
        """Deletes a run tag. Raises NotFound when it is not set."""
        self._call(self._tracking.DeleteTag, tracking_pb2.DeleteTagRequest(run_id=run_id, key=key))

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        """Records the datasets a run used; logging the same dataset and context again is a no-op."""
        self._call(
            self._tracking.LogInputs,
            tracking_pb2.LogInputsRequest(run_id=run_id, datasets=[d.to_proto() for d in datasets]),
        )

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_points: int = 0,
        page_size: int = 0,
    ) -> MetricSeries:
        """A metric's points in step order (ties by timestamp), all pages fetched.

        Args:
            run_id: The run.
            key: The metric.
            start_step: First step (inclusive); None from the first.
            end_step: Last step (inclusive); None to the last.
            max_points: Downsample for a chart (first, last, min and max of each bucket survive).
            page_size: Points per call; 0 for the server's default.

        Raises:
            NotFound: no such run.
        """
        request = tracking_pb2.GetMetricHistoryRequest(
            run_id=run_id, key=key, max_points=max_points, page_size=page_size
        )
        if start_step is not None:
            request.start_step = start_step
        if end_step is not None:
            request.end_step = end_step
        steps: list[int] = []
        values: list[float] = []
        stamps: list[int] = []
        while True:
            response = self._call(self._tracking.GetMetricHistory, request)
            steps.extend(response.series.steps)
            values.extend(response.series.values)
            stamps.extend(response.series.timestamps_ms)
            if not response.next_page_token:
                return MetricSeries(run_id, key, steps, values, stamps)
            request.page_token = response.next_page_token

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str = "",
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
    ) -> list[Run]:
        """Runs matching an MLflow-style filter, e.g. ``metrics.acc > 0.9 and params.model = 'rf'``.

        Args:
            experiment_ids: One or more experiments.
            filter_string: Comparisons joined by AND; empty for all runs.
            run_view_type: Live, deleted or all runs.
            max_results: Stop after this many (pages are fetched as needed).
            order_by: e.g. ``["metrics.acc DESC", "attributes.start_time"]``; default newest first.

        Raises:
            InvalidArgument: the filter or order does not parse (the message gives the column).
        """
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        request = tracking_pb2.SearchRunsRequest(
            experiment_ids=ids,
            filter=filter_string,
            order_by=list(order_by or ()),
            run_view_type=run_view_type.to_proto(),
            page_size=min(max_results, 1000),
        )
        found: list[Run] = []
        while len(found) < max_results:
            response = self._call(self._tracking.SearchRuns, request)
            found.extend(Run.from_proto(r) for r in response.runs)
            if not response.next_page_token:
                break
            request.page_token = response.next_page_token
        return found[:max_results]

    def batch_get_metric_history(
        self,
        run_ids: Sequence[str],
        keys: Sequence[str],
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_points: int = 0,
        page_size: int = 0,
    ) -> list[MetricSeries]:
        """Many runs x keys in one call (pages merged): a series per (run, key) that has points.

        Args:
            run_ids: Up to 100 runs.
            keys: Up to 100 metric keys, read for every run.
            start_step: First step (inclusive).
            end_step: Last step (inclusive).
            max_points: Downsample each series for a chart.
            page_size: Points per call across all series; 0 for the server's default.
        """
        request = tracking_pb2.BatchGetMetricHistoryRequest(
            run_ids=list(run_ids), keys=list(keys), max_points=max_points, page_size=page_size
        )
        if start_step is not None:
            request.start_step = start_step
        if end_step is not None:
            request.end_step = end_step
        merged: dict[tuple[str, str], MetricSeries] = {}
        while True:
            response = self._call(self._tracking.BatchGetMetricHistory, request)
            for s in response.series:
                series = merged.setdefault((s.run_id, s.key), MetricSeries(s.run_id, s.key, [], [], []))
                series.steps.extend(s.steps)  # type: ignore[attr-defined]
                series.values.extend(s.values)  # type: ignore[attr-defined]
                series.timestamps.extend(s.timestamps_ms)  # type: ignore[attr-defined]
            if not response.next_page_token:
                return list(merged.values())
            request.page_token = response.next_page_token

    # Logging

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Stores metrics, params and tags in one transaction: all or nothing.

        Raises:
            InvalidArgument: a bad key or value (``.field`` names it), or a param changed.
        """
        now = int(time.time() * 1000)
        self._call(
            self._tracking.LogBatch,
            tracking_pb2.LogBatchRequest(
                run_id=run_id,
                metrics=[
                    tracking_pb2.Metric(
                        key=m.key, value=m.value, step=m.step, timestamp_ms=m.timestamp or now
                    )
                    for m in metrics
                ],
                params=[p.to_proto() for p in params],
                tags=[t.to_proto() for t in tags],
            ),
        )

    def log_param(self, run_id: str, key: str, value: object) -> object:
        """Logs one param (its ``str()``); returns the value, as MLflow does."""
        self.log_batch(run_id, params=[Param(key, str(value))])
        return value

    def log_metric(
        self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int | None = None
    ) -> None:
        """Logs one metric point synchronously (training loops should prefer the fluent, buffered API)."""
        self.log_batch(run_id, metrics=[Metric(key, float(value), step or 0, timestamp or 0)])

    def metric_stream(
        self,
        *,
        flush_points: int | None = None,
        flush_interval_ms: float | None = None,
        flush_timeout: float | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
    ) -> MetricStream:
        """Buffered, streamed metric logging over this client's channel, without the fluent API.

        A context manager; its ``log_metric``/``log_metrics``/``log_metric_array`` take a ``run_id``,
        only append to memory, and a background sender streams them (exactly once, spooled when the
        server is away). ``flush()`` and the block's end wait for the acks and raise refusals.

        Args:
            flush_points: Points per batch (default ``TRACKLANE_METRICS_FLUSH_POINTS``, 10000).
            flush_interval_ms: What is buffered is sent at least this often (default 100).
            flush_timeout: Seconds ``close`` waits for acks (default 60).
            spool_dir: Spool folder (default ``$TRACKLANE_SPOOL_DIR`` or ``~/.cache/tracklane/spool``).
        """
        from tracklane._metrics.metric_stream import MetricStream  # the sender's modules load on first use

        return MetricStream(
            self,
            flush_points=flush_points,
            flush_interval_ms=flush_interval_ms,
            flush_timeout=flush_timeout,
            spool_dir=spool_dir,
        )

    def set_tag(self, run_id: str, key: str, value: object) -> None:
        """Sets (or overwrites) a run tag to ``str(value)``."""
        self.log_batch(run_id, tags=[RunTag(key, str(value))])


def _tags(tags: Mapping[str, str] | None) -> list[common_pb2.Tag]:
    return [common_pb2.Tag(key=k, value=str(v)) for k, v in (tags or {}).items()]
