"""MLflow's tracking endpoints (MlflowService) as calls to TrackingService and ArtifactService.

Each handler reads MLflow's request message, makes the tracklane.v1 call(s) and shapes the answer
as MLflow's JSON (:mod:`present`). MLflow's system tags (``mlflow.runName``, ``mlflow.parentRunId``,
``mlflow.user``, ``mlflow.note.content``) travel as tags: the store keeps them as the run's
attributes and presents them back as tags, so nothing about them is decided here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from tracklane.v1 import artifacts_pb2, common_pb2, tracking_pb2
from tracklane_server.http.mlflow_rest import present
from tracklane_server.http.mlflow_rest.calls import Call, Msg, rpc
from tracklane_server.http.mlflow_rest.codec import double as codec_double
from tracklane_server.http.mlflow_rest.errors import invalid

__all__ = ["enum_name", "listing", "max_results", "paged", "run_id_of", "view_type"]

_T = "/tracklane.v1.TrackingService/"
_A = "/tracklane.v1.ArtifactService/"
#: MLflow's search limit per request; Tracklane pages by 1,000 underneath.
MAX_RESULTS_LIMIT = 50_000
_PAGE = 1000
_MLFLOW_RUNS_DEFAULT = 1000


def enum_name(message: Msg, field: str) -> str:
    enum = message.DESCRIPTOR.fields_by_name[field].enum_type
    return str(enum.values_by_number[getattr(message, field)].name)


def view_type(message: Msg, field: str) -> common_pb2.ViewType.ValueType:
    if not message.HasField(field):
        return common_pb2.VIEW_TYPE_ACTIVE_ONLY
    return common_pb2.ViewType.Value("VIEW_TYPE_" + enum_name(message, field))


def run_id_of(message: Msg) -> str:
    """``run_id``, or MLflow's older ``run_uuid`` when only that is sent."""
    return str(message.run_id or getattr(message, "run_uuid", ""))


def _millis(ms: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def _tags(tags: Any) -> list[common_pb2.Tag]:
    return [common_pb2.Tag(key=t.key, value=t.value) for t in tags]


def max_results(message: Msg, default: int) -> int:
    """MLflow's max_results (1-50,000), ``default`` when not sent."""
    if not message.HasField("max_results"):
        return default
    wanted = int(message.max_results)
    if wanted <= 0 or wanted > MAX_RESULTS_LIMIT:
        raise invalid(
            f"Invalid value {wanted} for parameter 'max_results' supplied. "
            f"It must be at least 1 and at most {MAX_RESULTS_LIMIT}."
        )
    return wanted


async def listing(
    call: Call, method: str, request: Any, field: str, wanted: int, shape: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """A search's answer in MLflow's shape: ``{field: [...], "next_page_token": ...}``, each left out
    when empty (the response field is named alike on both sides)."""
    found, token = await paged(call, method, request, field, wanted)
    out: dict[str, Any] = {field: [shape(x) for x in found]} if found else {}
    if token:
        out["next_page_token"] = token
    return out


async def paged(call: Call, method: str, request: Any, items: str, wanted: int) -> tuple[list[Any], str]:
    """Up to ``wanted`` items (MLflow allows 50,000) from Tracklane pages of at most 1,000.

    Tracklane's page tokens are bound to the page size they were made with, and MLflow's
    max_results need not be a multiple of it: the token returned here names the Tracklane page,
    its size and how many of its items were already sent (:func:`_token`), so the next call
    resumes exactly after the last item, whatever max_results it asks for.
    """
    token, size, skip = _untoken(request.page_token)
    size = size or min(_PAGE, wanted)
    out: list[Any] = []
    while True:
        request.page_size, request.page_token = size, token
        response = await call.unary(method, request)
        page = list(getattr(response, items))
        room = wanted - len(out)
        if len(page) - skip > room:  # more than wanted: stop inside this page
            out.extend(page[skip : skip + room])
            return out, _token(token, size, skip + room)
        out.extend(page[skip:])
        skip = 0
        token = response.next_page_token
        if not token:
            return out, ""
        if len(out) >= wanted:
            return out, _token(token, size, 0)


def _token(token: str, size: int, skip: int) -> str:
    raw = orjson.dumps({"t": token, "s": size, "k": skip})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad_token(text: str) -> Exception:
    return invalid(f"Invalid page token {text[:40]!r}: pass the next_page_token of the previous page")


def _untoken(text: str) -> tuple[str, int, int]:
    if not text:
        return "", 0, 0
    try:
        state = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        token, size, skip = str(state["t"]), int(state["s"]), int(state["k"])
    except (ValueError, KeyError, TypeError):
        raise invalid(
            f"Invalid page token {text[:40]!r}: pass the next_page_token of the previous page"
        ) from None
    if not 0 < size <= _PAGE or not 0 <= skip < size:
        raise invalid(f"Invalid page token {text[:40]!r}: pass the next_page_token of the previous page")
    return token, size, skip


# -- experiments ------------------------------------------------------------------------------------


@rpc("getExperimentByName")
async def get_experiment_by_name(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(
        _T + "GetExperimentByName", tracking_pb2.GetExperimentByNameRequest(name=m.experiment_name)
    )
    return {"experiment": present.experiment(reply.experiment)}


@rpc("createExperiment")
async def create_experiment(call: Call, m: Msg) -> dict[str, Any]:
    location = m.artifact_location
    if location.startswith(present.SCHEME):  # this proxy's own namespace: the server's default root
        location = ""
    reply = await call.unary(
        _T + "CreateExperiment",
        tracking_pb2.CreateExperimentRequest(name=m.name, artifact_location=location, tags=_tags(m.tags)),
    )
    return {"experiment_id": reply.experiment.experiment_id}


@rpc("searchExperiments")
async def search_experiments(call: Call, m: Msg) -> dict[str, Any]:
    request = tracking_pb2.SearchExperimentsRequest(
        filter=m.filter,
        order_by=list(m.order_by),
        view_type=view_type(m, "view_type"),
        page_token=m.page_token,
    )
    wanted = max_results(m, _PAGE)
    return await listing(call, _T + "SearchExperiments", request, "experiments", wanted, present.experiment)


@rpc("getExperiment")
async def get_experiment(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(
        _T + "GetExperiment", tracking_pb2.GetExperimentRequest(experiment_id=m.experiment_id)
    )
    return {"experiment": present.experiment(reply.experiment)}


@rpc("deleteExperiment")
async def delete_experiment(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _T + "DeleteExperiment", tracking_pb2.DeleteExperimentRequest(experiment_id=m.experiment_id)
    )
    return {}


@rpc("restoreExperiment")
async def restore_experiment(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _T + "RestoreExperiment", tracking_pb2.RestoreExperimentRequest(experiment_id=m.experiment_id)
    )
    return {}


@rpc("updateExperiment")
async def update_experiment(call: Call, m: Msg) -> dict[str, Any]:
    if m.HasField("new_name"):
        await call.unary(
            _T + "UpdateExperiment",
            tracking_pb2.UpdateExperimentRequest(
                experiment_id=m.experiment_id, name=m.new_name, update_mask=FieldMask(paths=["name"])
            ),
        )
    return {}


@rpc("setExperimentTag")
async def set_experiment_tag(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _T + "SetExperimentTag",
        tracking_pb2.SetExperimentTagRequest(
            experiment_id=m.experiment_id, tag=common_pb2.Tag(key=m.key, value=m.value)
        ),
    )
    return {}


@rpc("deleteExperimentTag")
async def delete_experiment_tag(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _T + "DeleteExperimentTag",
        tracking_pb2.DeleteExperimentTagRequest(experiment_id=m.experiment_id, key=m.key),
    )
    return {}


# -- runs -------------------------------------------------------------------------------------------


@rpc("createRun")
async def create_run(call: Call, m: Msg) -> dict[str, Any]:
    request = tracking_pb2.CreateRunRequest(
        experiment_id=m.experiment_id, run_name=m.run_name, user_id=m.user_id, tags=_tags(m.tags)
    )
    if m.HasField("start_time"):
        request.start_time.CopyFrom(_millis(m.start_time))
    reply = await call.unary(_T + "CreateRun", request)
    return {"run": present.run(reply.run)}


@rpc("updateRun")
async def update_run(call: Call, m: Msg) -> dict[str, Any]:
    request = tracking_pb2.UpdateRunRequest(run_id=run_id_of(m))
    paths = []
    if m.HasField("status"):
        request.status = tracking_pb2.RunStatus.Value("RUN_STATUS_" + enum_name(m, "status"))
        paths.append("status")
    if m.HasField("end_time"):
        request.end_time.CopyFrom(_millis(m.end_time))
        paths.append("end_time")
    if m.HasField("run_name") and m.run_name:
        request.run_name = m.run_name
        paths.append("run_name")
    if not paths:  # nothing to change: MLflow answers the run's info as it is
        run = await call.unary(_T + "GetRun", tracking_pb2.GetRunRequest(run_id=request.run_id))
        return {"run_info": present.run_info(run.run.info)}
    request.update_mask.paths.extend(paths)
    reply = await call.unary(_T + "UpdateRun", request)
    return {"run_info": present.run_info(reply.run_info)}


@rpc("deleteRun")
async def delete_run(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(_T + "DeleteRun", tracking_pb2.DeleteRunRequest(run_id=m.run_id))
    return {}


@rpc("restoreRun")
async def restore_run(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(_T + "RestoreRun", tracking_pb2.RestoreRunRequest(run_id=m.run_id))
    return {}


@rpc("getRun")
async def get_run(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(_T + "GetRun", tracking_pb2.GetRunRequest(run_id=run_id_of(m)))
    return {"run": present.run(reply.run)}


@rpc("searchRuns")
async def search_runs(call: Call, m: Msg) -> dict[str, Any]:
    request = tracking_pb2.SearchRunsRequest(
        experiment_ids=list(m.experiment_ids),
        filter=m.filter,
        order_by=list(m.order_by),
        run_view_type=view_type(m, "run_view_type"),
        page_token=m.page_token,
    )
    wanted = max_results(m, _MLFLOW_RUNS_DEFAULT)
    return await listing(call, _T + "SearchRuns", request, "runs", wanted, present.run)


def _metric(m: Msg) -> tracking_pb2.Metric:
    return tracking_pb2.Metric(key=m.key, value=m.value, step=m.step, timestamp_ms=m.timestamp)


@rpc("logMetric")
async def log_metric(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(_T + "LogBatch", tracking_pb2.LogBatchRequest(run_id=run_id_of(m), metrics=[_metric(m)]))
    return {}


@rpc("logParam")
async def log_param(call: Call, m: Msg) -> dict[str, Any]:
    param = tracking_pb2.Param(key=m.key, value=m.value)
    await call.unary(_T + "LogBatch", tracking_pb2.LogBatchRequest(run_id=run_id_of(m), params=[param]))
    return {}


@rpc("setTag")
async def set_tag(call: Call, m: Msg) -> dict[str, Any]:
    tag = common_pb2.Tag(key=m.key, value=m.value)
    await call.unary(_T + "LogBatch", tracking_pb2.LogBatchRequest(run_id=run_id_of(m), tags=[tag]))
    return {}


@rpc("deleteTag")
async def delete_tag(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(_T + "DeleteTag", tracking_pb2.DeleteTagRequest(run_id=m.run_id, key=m.key))
    return {}


@rpc("logBatch")
async def log_batch(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _T + "LogBatch",
        tracking_pb2.LogBatchRequest(
            run_id=m.run_id,
            metrics=[_metric(x) for x in m.metrics],
            params=[tracking_pb2.Param(key=p.key, value=p.value) for p in m.params],
            tags=_tags(m.tags),
        ),
    )
    return {}


@rpc("logInputs")
async def log_inputs(call: Call, m: Msg) -> dict[str, Any]:
    inputs = []
    for item in m.datasets:
        d = item.dataset
        tags = [common_pb2.Tag(key=t.key, value=t.value) for t in item.tags if t.key != "mlflow.data.context"]
        context = next((t.value for t in item.tags if t.key == "mlflow.data.context"), "")
        dataset = tracking_pb2.Dataset(
            name=d.name,
            digest=d.digest,
            source_type=d.source_type,
            source=d.source,
            schema=d.schema,
            profile=d.profile,
        )
        inputs.append(tracking_pb2.DatasetInput(dataset=dataset, context=context, tags=tags))
    if inputs:
        await call.unary(_T + "LogInputs", tracking_pb2.LogInputsRequest(run_id=m.run_id, datasets=inputs))
    else:  # models only (MLflow 3): the run must still exist and be writable
        await call.unary(_T + "LogBatch", tracking_pb2.LogBatchRequest(run_id=m.run_id))
    return {}


@rpc("logOutputs")
async def log_outputs(call: Call, m: Msg) -> dict[str, Any]:
    # A logged model is a folder of its run's artifacts (see logged_models): the link is the id.
    await call.unary(_T + "LogBatch", tracking_pb2.LogBatchRequest(run_id=m.run_id))
    return {}


_MODEL_HISTORY = "mlflow.log-model.history"


@rpc("logModel")
async def log_model(call: Call, m: Msg) -> dict[str, Any]:
    """MLflow 2's record of logged models: the MLmodel JSON appended to a run tag, as MLflow does."""
    try:
        model = json.loads(m.model_json)
    except ValueError:
        raise invalid(f"Invalid value for parameter 'model_json': not JSON: {m.model_json[:100]!r}") from None
    run = (await call.unary(_T + "GetRun", tracking_pb2.GetRunRequest(run_id=m.run_id))).run
    history: list[Any] = next((json.loads(t.value) for t in run.data.tags if t.key == _MODEL_HISTORY), [])
    history.append(model)
    tag = common_pb2.Tag(key=_MODEL_HISTORY, value=json.dumps(history))
    await call.unary(_T + "LogBatch", tracking_pb2.LogBatchRequest(run_id=m.run_id, tags=[tag]))
    return {}


# -- metric history -----------------------------------------------------------------------------


@rpc("getMetricHistory")
async def get_metric_history(call: Call, m: Msg) -> dict[str, Any]:
    run_id = run_id_of(m)
    request = tracking_pb2.GetMetricHistoryRequest(run_id=run_id, key=m.metric_key, page_token=m.page_token)
    everything = not m.HasField("max_results")
    if not everything:
        request.page_size = max(1, m.max_results)
    points: list[dict[str, Any]] = []
    key = m.metric_key
    double = codec_double
    while True:
        reply = await call.unary(_T + "GetMetricHistory", request)
        s = reply.series
        points.extend(
            {"key": key, "value": double(v), "timestamp": t, "step": st}
            for st, v, t in zip(s.steps, s.values, s.timestamps_ms, strict=True)
        )
        if not (everything and reply.next_page_token):
            break
        request.page_token = reply.next_page_token
    out: dict[str, Any] = {"metrics": points} if points else {}
    if reply.next_page_token and not everything:
        out["next_page_token"] = reply.next_page_token
    return out


@rpc("getMetricHistoryBulkInterval")
async def get_metric_history_bulk_interval(call: Call, m: Msg) -> dict[str, Any]:
    if not m.run_ids:
        raise invalid("GetMetricHistoryBulkInterval request must specify at least one run_id.")
    if len(m.run_ids) > 100:
        raise invalid(
            "GetMetricHistoryBulkInterval request cannot specify more than 100 run_ids. "
            f"Received {len(m.run_ids)} run_ids."
        )
    request = tracking_pb2.BatchGetMetricHistoryRequest(
        run_ids=list(m.run_ids),
        keys=[m.metric_key],
        max_points=m.max_results if m.HasField("max_results") else 320,
    )
    if m.HasField("start_step"):
        request.start_step = m.start_step
    if m.HasField("end_step"):
        request.end_step = m.end_step
    points: list[dict[str, Any]] = []
    double = codec_double
    while True:
        reply = await call.unary(_T + "BatchGetMetricHistory", request)
        for s in reply.series:
            points.extend(
                {"key": s.key, "value": double(v), "timestamp": t, "step": st, "run_id": s.run_id}
                for st, v, t in zip(s.steps, s.values, s.timestamps_ms, strict=True)
            )
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    return {"metrics": points} if points else {}


# -- artifacts (listing through the tracking API) -------------------------------------------------


@rpc("listArtifacts")
async def list_artifacts(call: Call, m: Msg) -> dict[str, Any]:
    run_id = run_id_of(m)
    reply = await call.unary(
        _A + "ListArtifacts",
        artifacts_pb2.ListArtifactsRequest(run_id=run_id, path=m.path.strip("/"), page_token=m.page_token),
    )
    run = await call.unary(_T + "GetRun", tracking_pb2.GetRunRequest(run_id=run_id))
    out: dict[str, Any] = {"root_uri": present.run_artifact_uri(run.run.info.experiment_id, run_id)}
    if reply.files:
        out["files"] = [_file(f) for f in reply.files]
    if reply.next_page_token:
        out["next_page_token"] = reply.next_page_token
    return out


def _file(f: artifacts_pb2.FileInfo, name: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"path": f.path if name is None else name, "is_dir": f.is_dir}
    if not f.is_dir:
        out["file_size"] = f.size
    return out
