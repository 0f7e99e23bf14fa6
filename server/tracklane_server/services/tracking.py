"""TrackingService: validate the request, call the store off the event loop, convert the answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from tracklane.entities import DatasetInput, LifecycleStage, RunStatus, ViewType
from tracklane.exceptions import InvalidArgument
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc
from tracklane_server.artifacts.allowed_roots import AllowedRoots
from tracklane_server.identity.principal import current_principal
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.runtime.points_hub import PointsHub
from tracklane_server.services.experiment_watch import ExperimentWatch
from tracklane_server.services.masks import update_fields
from tracklane_server.services.metric_columns import metric_columns
from tracklane_server.services.metric_streams import MetricStreams, metric_series
from tracklane_server.services.request_checks import checked_requests
from tracklane_server.store.metrics.ingest import MetricBatch, StreamStore
from tracklane_server.store.metrics.points import Points
from tracklane_server.store.metrics.watch import MetricWatch
from tracklane_server.store.sql_store import SqlStore
from tracklane_server.store.tracking.run_changes import RunFeed
from tracklane_server.store.validation import SEARCH_EXPERIMENT_IDS_MAX, check_count

Context = Any  # grpc.aio.ServicerContext; the interceptor turns TracklaneError into its status


def _run_user(claimed: str) -> str:
    """A run's ``user_id``: the authenticated user when auth is on, else what the client says."""
    principal = current_principal()
    return claimed if principal is None else principal.name


@checked_requests
class TrackingService(tracking_pb2_grpc.TrackingServiceServicer):
    """Experiments, runs, params, metrics and tags."""

    def __init__(
        self,
        store: SqlStore,
        blocking: BlockingCalls,
        hub: PointsHub | None = None,
        *,
        allowed_roots: AllowedRoots | None = None,
        history_readers: int = 4,
    ) -> None:
        self.store = store
        self.blocking = blocking
        # History reads hold a store thread for up to seconds (a chart of 5 M points): a few at a
        # time, so the other calls always find a thread (and their memory adds up no further).
        self._history_readers = asyncio.Semaphore(history_readers)
        # Where experiments may put artifacts; by default only under the server's own root.
        self.allowed_roots = allowed_roots or AllowedRoots(store.experiments.default_artifact_root)
        self.streams = MetricStreams(
            StreamStore(store.engine, store.runs),
            MetricWatch(store.engine, store.runs),
            blocking,
            hub or PointsHub(),
            wake_in_process=store.engine.dialect.name != "postgresql",
            # SQLite has one writer at a time; PostgreSQL commits a few transactions in parallel.
            committers=4 if store.engine.dialect.name == "postgresql" else 1,
        )
        self.experiment_watch = ExperimentWatch(RunFeed(store.engine), blocking, self.streams.hub)

    async def CreateExperiment(
        self, request: tracking_pb2.CreateExperimentRequest, context: Context
    ) -> tracking_pb2.CreateExperimentResponse:
        location = request.artifact_location
        experiment = await self.blocking.call(
            self.store.experiments.create_experiment,
            request.name,
            artifact_location=self.allowed_roots.check_location(location) if location else "",
            tags={t.key: t.value for t in request.tags},
            description=request.description,
        )
        return tracking_pb2.CreateExperimentResponse(experiment=experiment.to_proto())

    async def GetExperiment(
        self, request: tracking_pb2.GetExperimentRequest, context: Context
    ) -> tracking_pb2.GetExperimentResponse:
        experiment = await self.blocking.call(self.store.experiments.get_experiment, request.experiment_id)
        return tracking_pb2.GetExperimentResponse(experiment=experiment.to_proto())

    async def GetExperimentByName(
        self, request: tracking_pb2.GetExperimentByNameRequest, context: Context
    ) -> tracking_pb2.GetExperimentByNameResponse:
        experiment = await self.blocking.call(self.store.experiments.get_experiment_by_name, request.name)
        return tracking_pb2.GetExperimentByNameResponse(experiment=experiment.to_proto())

    async def CreateRun(
        self, request: tracking_pb2.CreateRunRequest, context: Context
    ) -> tracking_pb2.CreateRunResponse:
        status = (
            RunStatus.RUNNING
            if request.status == tracking_pb2.RUN_STATUS_UNSPECIFIED
            else RunStatus.from_proto(request.status)
        )
        run = await self.blocking.call(
            self.store.runs.create_run,
            request.experiment_id,
            run_name=request.run_name,
            start_time=request.start_time.ToMilliseconds() if request.HasField("start_time") else None,
            tags=[(t.key, t.value) for t in request.tags],
            parent_run_id=request.parent_run_id,
            user_id=_run_user(request.user_id),
            description=request.description,
            status=status,
            request_id=request.request_id,
        )
        self.streams.run_changed(run.info.run_id)
        return tracking_pb2.CreateRunResponse(run=run.to_proto())

    async def GetRun(
        self, request: tracking_pb2.GetRunRequest, context: Context
    ) -> tracking_pb2.GetRunResponse:
        run = await self.blocking.call(self.store.runs.get_run_message, request.run_id)
        return tracking_pb2.GetRunResponse(run=run)

    async def LogBatch(
        self, request: tracking_pb2.LogBatchRequest, context: Context
    ) -> tracking_pb2.LogBatchResponse:
        def log() -> None:  # in a store thread: converting 100,000 metrics takes a while
            self.store.runs.log_batch(
                request.run_id,
                metrics=metric_columns(request.metrics),
                params=[(p.key, p.value) for p in request.params],
                tags=[(t.key, t.value) for t in request.tags],
            )

        await self.blocking.call(log)
        if request.metrics or request.params or request.tags:
            self.streams.run_changed(request.run_id)
        return tracking_pb2.LogBatchResponse()

    async def StreamMetrics(  # type: ignore[override]  # requests arrive decoded by MetricBatch.from_bytes
        self, request_iterator: AsyncIterator[MetricBatch], context: Context
    ) -> AsyncIterator[tracking_pb2.StreamMetricsResponse]:
        async for ack in self.streams.stream_metrics(request_iterator, context):
            yield ack

    async def WatchExperiments(
        self, request: tracking_pb2.WatchExperimentsRequest, context: Context
    ) -> AsyncIterator[tracking_pb2.WatchExperimentsResponse]:
        async for response in self.experiment_watch.watch(request):
            yield response

    async def WatchRun(
        self, request: tracking_pb2.WatchRunRequest, context: Context
    ) -> AsyncIterator[tracking_pb2.WatchRunResponse]:
        async for response in self.streams.watch_run(request, context):
            yield response

    async def GetMetricHistory(
        self, request: tracking_pb2.GetMetricHistoryRequest, context: Context
    ) -> tracking_pb2.GetMetricHistoryResponse:
        def read() -> tracking_pb2.GetMetricHistoryResponse:  # the response too: 100,000 points
            points, token = self.store.metric_history(
                request.run_id,
                request.key,
                start_step=request.start_step if request.HasField("start_step") else None,
                end_step=request.end_step if request.HasField("end_step") else None,
                max_points=request.max_points,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return tracking_pb2.GetMetricHistoryResponse(
                series=_series(request.run_id, request.key, points), next_page_token=token
            )

        async with self._history_readers:
            return await self.blocking.call(read)

    async def SearchRuns(
        self, request: tracking_pb2.SearchRunsRequest, context: Context
    ) -> tracking_pb2.SearchRunsResponse:
        check_count(len(request.experiment_ids), SEARCH_EXPERIMENT_IDS_MAX, "experiment_ids")
        return await self.blocking.call(
            self.store.search_runs,
            list(request.experiment_ids),
            filter_text=request.filter,
            order_by=list(request.order_by),
            view_type=ViewType.from_proto(request.run_view_type),
            page_size=request.page_size,
            page_token=request.page_token,
        )

    async def UpdateRun(
        self, request: tracking_pb2.UpdateRunRequest, context: Context
    ) -> tracking_pb2.UpdateRunResponse:
        fields = update_fields(
            request,
            allowed=("status", "end_time", "run_name", "description"),
            implicit={
                "status": request.status != tracking_pb2.RUN_STATUS_UNSPECIFIED,
                "end_time": request.HasField("end_time"),
                "run_name": bool(request.run_name),
                "description": bool(request.description),
            },
        )
        if "status" in fields and request.status == tracking_pb2.RUN_STATUS_UNSPECIFIED:
            raise InvalidArgument("status: give a status to set", field="status")
        info = await self.blocking.call(
            self.store.lifecycle.update_run,
            request.run_id,
            status=RunStatus.from_proto(request.status) if "status" in fields else None,
            end_time=request.end_time.ToMilliseconds()
            if "end_time" in fields and request.HasField("end_time")
            else None,
            run_name=request.run_name if "run_name" in fields else None,
            description=request.description if "description" in fields else None,
        )
        self.streams.run_changed(request.run_id)
        return tracking_pb2.UpdateRunResponse(run_info=info.to_proto())

    async def DeleteRun(
        self, request: tracking_pb2.DeleteRunRequest, context: Context
    ) -> tracking_pb2.DeleteRunResponse:
        await self.blocking.call(self.store.lifecycle.set_lifecycle, request.run_id, LifecycleStage.DELETED)
        self.streams.run_changed(request.run_id)
        return tracking_pb2.DeleteRunResponse()

    async def RestoreRun(
        self, request: tracking_pb2.RestoreRunRequest, context: Context
    ) -> tracking_pb2.RestoreRunResponse:
        await self.blocking.call(self.store.lifecycle.set_lifecycle, request.run_id, LifecycleStage.ACTIVE)
        self.streams.run_changed(request.run_id)
        return tracking_pb2.RestoreRunResponse()

    async def DeleteTag(
        self, request: tracking_pb2.DeleteTagRequest, context: Context
    ) -> tracking_pb2.DeleteTagResponse:
        await self.blocking.call(self.store.lifecycle.delete_tag, request.run_id, request.key)
        self.streams.run_changed(request.run_id)
        return tracking_pb2.DeleteTagResponse()

    async def LogInputs(
        self, request: tracking_pb2.LogInputsRequest, context: Context
    ) -> tracking_pb2.LogInputsResponse:
        inputs = [DatasetInput.from_proto(d) for d in request.datasets]
        await self.blocking.call(self.store.lifecycle.log_inputs, request.run_id, inputs)
        self.streams.run_changed(request.run_id)
        return tracking_pb2.LogInputsResponse()

    async def SearchExperiments(
        self, request: tracking_pb2.SearchExperimentsRequest, context: Context
    ) -> tracking_pb2.SearchExperimentsResponse:
        experiments, token = await self.blocking.call(
            self.store.experiments.search_experiments,
            filter_text=request.filter,
            order_by=list(request.order_by),
            view_type=ViewType.from_proto(request.view_type),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return tracking_pb2.SearchExperimentsResponse(
            experiments=[e.to_proto() for e in experiments], next_page_token=token
        )

    async def UpdateExperiment(
        self, request: tracking_pb2.UpdateExperimentRequest, context: Context
    ) -> tracking_pb2.UpdateExperimentResponse:
        fields = update_fields(
            request,
            allowed=("name", "description"),
            implicit={"name": bool(request.name), "description": bool(request.description)},
        )
        experiment = await self.blocking.call(
            self.store.experiments.update_experiment,
            request.experiment_id,
            name=request.name if "name" in fields else None,
            description=request.description if "description" in fields else None,
        )
        return tracking_pb2.UpdateExperimentResponse(experiment=experiment.to_proto())

    async def DeleteExperiment(
        self, request: tracking_pb2.DeleteExperimentRequest, context: Context
    ) -> tracking_pb2.DeleteExperimentResponse:
        await self.blocking.call(
            self.store.experiments.set_lifecycle, request.experiment_id, LifecycleStage.DELETED
        )
        return tracking_pb2.DeleteExperimentResponse()

    async def RestoreExperiment(
        self, request: tracking_pb2.RestoreExperimentRequest, context: Context
    ) -> tracking_pb2.RestoreExperimentResponse:
        await self.blocking.call(
            self.store.experiments.set_lifecycle, request.experiment_id, LifecycleStage.ACTIVE
        )
        return tracking_pb2.RestoreExperimentResponse()

    async def SetExperimentTag(
        self, request: tracking_pb2.SetExperimentTagRequest, context: Context
    ) -> tracking_pb2.SetExperimentTagResponse:
        await self.blocking.call(
            self.store.experiments.set_tag, request.experiment_id, request.tag.key, request.tag.value
        )
        return tracking_pb2.SetExperimentTagResponse()

    async def DeleteExperimentTag(
        self, request: tracking_pb2.DeleteExperimentTagRequest, context: Context
    ) -> tracking_pb2.DeleteExperimentTagResponse:
        await self.blocking.call(self.store.experiments.delete_tag, request.experiment_id, request.key)
        return tracking_pb2.DeleteExperimentTagResponse()

    async def BatchGetMetricHistory(
        self, request: tracking_pb2.BatchGetMetricHistoryRequest, context: Context
    ) -> tracking_pb2.BatchGetMetricHistoryResponse:
        async with self._history_readers:
            found, token = await self.blocking.call(
                self.store.batch_metric_history,
                list(request.run_ids),
                list(request.keys),
                start_step=request.start_step if request.HasField("start_step") else None,
                end_step=request.end_step if request.HasField("end_step") else None,
                max_points=request.max_points,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        return tracking_pb2.BatchGetMetricHistoryResponse(
            series=[_series(run_id, key, points) for run_id, key, points in found], next_page_token=token
        )


def _series(run_id: str, key: str, points: Points) -> tracking_pb2.MetricSeries:
    return metric_series(run_id, key, points)
