"""MLflow 3's logged models, kept where Tracklane keeps a model: a folder of its run's artifacts.

``mlflow.<flavor>.log_model`` in MLflow 3 first creates a LoggedModel, uploads the model files to
its ``artifact_uri``, then registers ``models:/<model_id>``. Here a logged model IS the folder
``<name>`` of its source run's artifacts, as ``tracklane.sklearn.log_model`` and MLflow 2 lay it out:
its id (``m-<run_id>-<name, base64url>``, :func:`present.logged_model_id`) says where, so no
record is stored, Tracklane's own clients see the model in the run's artifacts, and the registry
stores ``runs:/<run_id>/<name>``. It is READY once its folder holds an ``MLmodel`` file.

What this leaves out, on purpose: a logged model needs a source run (MLflow also allows none);
tags and params given to a logged model are accepted and not kept (``log_model`` sends the run's
own params); search understands ``name = '...'`` and ``source_run_id = '...'`` (ANDed) and reads
at most the 100 newest runs of the experiments when no run is named.
"""

from __future__ import annotations

import re
import time
from typing import Any

from tracklane.v1 import artifacts_pb2, tracking_pb2
from tracklane_server.http.mlflow_rest import present
from tracklane_server.http.mlflow_rest.calls import Call, Msg, rpc
from tracklane_server.http.mlflow_rest.errors import invalid, not_found

_T = "/tracklane.v1.TrackingService/"
_A = "/tracklane.v1.ArtifactService/"
_MLMODEL = "MLmodel"
_TERM = re.compile(r"\s*(name|source_run_id)\s*=\s*'((?:[^']|'')*)'\s*", re.IGNORECASE)
_SCAN_RUNS = 100


def _where(model_id: str) -> tuple[str, str]:
    found = present.parse_logged_model_id(model_id)
    if found is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return found


async def _run(call: Call, run_id: str) -> tracking_pb2.Run:
    reply: tracking_pb2.GetRunResponse = await call.unary(
        _T + "GetRun", tracking_pb2.GetRunRequest(run_id=run_id)
    )
    return reply.run


def _model(
    run: tracking_pb2.Run, path: str, *, ready: bool, stamp_ms: int, extra: Msg | None = None
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": present.logged_model_id(run.info.run_id, path),
        "experiment_id": run.info.experiment_id,
        "name": path.rsplit("/", 1)[-1],
        "creation_timestamp_ms": stamp_ms,
        "last_updated_timestamp_ms": stamp_ms,
        "artifact_uri": present.run_artifact_uri(run.info.experiment_id, run.info.run_id, path),
        "status": "LOGGED_MODEL_READY" if ready else "LOGGED_MODEL_PENDING",
        "source_run_id": run.info.run_id,
    }
    data: dict[str, Any] = {}
    if extra is not None:
        if extra.model_type:
            info["model_type"] = extra.model_type
        if extra.tags:
            info["tags"] = [{"key": t.key, "value": t.value} for t in extra.tags]
        if extra.params:
            data["params"] = [{"key": p.key, "value": p.value} for p in extra.params]
    return {"info": info, "data": data}


async def _state(call: Call, run: tracking_pb2.Run, path: str) -> tuple[bool, int]:
    """(ready, time): ready when the folder holds MLmodel, timed by that file (else the run's start)."""
    listing = await call.unary(
        _A + "ListArtifacts", artifacts_pb2.ListArtifactsRequest(run_id=run.info.run_id, path=path)
    )
    for f in listing.files:
        if f.path.rsplit("/", 1)[-1] == _MLMODEL and not f.is_dir:
            return True, f.modify_time.seconds * 1000 + f.modify_time.nanos // 1_000_000
    return False, run.info.start_time.seconds * 1000 + run.info.start_time.nanos // 1_000_000


@rpc("createLoggedModel")
async def create_logged_model(call: Call, m: Msg) -> dict[str, Any]:
    if not m.source_run_id:
        raise invalid(
            "Tracklane keeps a logged model in its source run's artifacts: log it inside a run "
            "(mlflow.start_run()) or pass source_run_id."
        )
    name = m.name or "model"
    if "/" in name.strip("/") or name in (".", ".."):
        raise invalid(
            f"Invalid value '{name}' for parameter 'name': a logged model's name is one path segment."
        )
    run = await _run(call, m.source_run_id)
    if m.experiment_id and m.experiment_id != run.info.experiment_id:
        raise invalid(
            f"The source run {m.source_run_id} belongs to experiment {run.info.experiment_id}, "
            f"not {m.experiment_id}."
        )
    await call.unary(
        _T + "LogBatch", tracking_pb2.LogBatchRequest(run_id=run.info.run_id)
    )  # may the caller write it?
    return {"model": _model(run, name, ready=False, stamp_ms=int(time.time() * 1000), extra=m)}


async def _get(call: Call, model_id: str) -> dict[str, Any]:
    run_id, path = _where(model_id)
    run = await _run(call, run_id)
    ready, stamp = await _state(call, run, path)
    return {"model": _model(run, path, ready=ready, stamp_ms=stamp)}


@rpc("getLoggedModel")
async def get_logged_model(call: Call, m: Msg) -> dict[str, Any]:
    return await _get(call, m.model_id)


@rpc("finalizeLoggedModel")
async def finalize_logged_model(call: Call, m: Msg) -> dict[str, Any]:
    return await _get(call, m.model_id)


@rpc("deleteLoggedModel")
async def delete_logged_model(call: Call, m: Msg) -> dict[str, Any]:
    run_id, path = _where(m.model_id)
    await call.unary(_A + "DeleteArtifact", artifacts_pb2.DeleteArtifactRequest(run_id=run_id, path=path))
    return {}


async def _accept(call: Call, m: Msg) -> dict[str, Any]:
    run_id, _ = _where(m.model_id)
    await call.unary(_T + "LogBatch", tracking_pb2.LogBatchRequest(run_id=run_id))
    return {}


for _name in ("setLoggedModelTags", "deleteLoggedModelTag", "LogLoggedModelParams"):
    rpc(_name)(_accept)


@rpc("listLoggedModelArtifacts")
async def list_logged_model_artifacts(call: Call, m: Msg) -> dict[str, Any]:
    run_id, root = _where(m.model_id)
    run = await _run(call, run_id)
    folder = "/".join(p for p in (root, m.artifact_directory_path.strip("/")) if p)
    reply = await call.unary(
        _A + "ListArtifacts",
        artifacts_pb2.ListArtifactsRequest(run_id=run_id, path=folder, page_token=m.page_token),
    )
    out: dict[str, Any] = {"root_uri": present.run_artifact_uri(run.info.experiment_id, run_id, root)}
    files = []
    for f in reply.files:
        entry: dict[str, Any] = {"path": f.path[len(root) + 1 :] if root else f.path, "is_dir": f.is_dir}
        if not f.is_dir:
            entry["file_size"] = f.size
        files.append(entry)
    if files:
        out["files"] = files
    if reply.next_page_token:
        out["next_page_token"] = reply.next_page_token
    return out


def _filter(text: str) -> dict[str, str]:
    terms: dict[str, str] = {}
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        found = _TERM.fullmatch(part)
        if found is None:
            raise invalid(
                f"Invalid filter {text!r}: Tracklane searches logged models by name = '...' and "
                "source_run_id = '...' (joined by AND)."
            )
        terms[found.group(1).lower()] = found.group(2).replace("''", "'")
    return terms


@rpc("searchLoggedModels")
async def search_logged_models(call: Call, m: Msg) -> dict[str, Any]:
    terms = _filter(m.filter)
    if "source_run_id" in terms:
        runs = [await _run(call, terms["source_run_id"])]
    else:
        reply = await call.unary(
            _T + "SearchRuns",
            tracking_pb2.SearchRunsRequest(experiment_ids=list(m.experiment_ids), page_size=_SCAN_RUNS),
        )
        runs = list(reply.runs)
    models = []
    for run in runs:
        if m.experiment_ids and run.info.experiment_id not in m.experiment_ids:
            continue
        listing = await call.unary(
            _A + "ListArtifacts",
            artifacts_pb2.ListArtifactsRequest(run_id=run.info.run_id, recursive=True, page_size=10_000),
        )
        for f in listing.files:
            folder, _, name = f.path.rpartition("/")
            if name != _MLMODEL or not folder:
                continue
            if "name" in terms and folder.rsplit("/", 1)[-1] != terms["name"]:
                continue
            stamp = f.modify_time.seconds * 1000 + f.modify_time.nanos // 1_000_000
            models.append(_model(run, folder, ready=True, stamp_ms=stamp))
    models.sort(key=lambda x: -x["info"]["creation_timestamp_ms"])
    limit = m.max_results if m.HasField("max_results") and m.max_results > 0 else 100
    return {"models": models[:limit]} if models else {}
