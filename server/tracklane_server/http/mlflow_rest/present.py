"""tracklane.v1 messages as MLflow's JSON: experiments, runs, metrics, registry objects, URIs.

Plain dicts in the shape MLflow's server writes (``message_to_json``: snake_case, enums by name,
int64 as numbers, unset fields and empty lists left out), so the ``mlflow`` client's
``parse_dict`` reads them as it reads MLflow's own answers.

Artifact locations are shown as ``mlflow-artifacts:`` URIs served by this listener's artifact
proxy (``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/<path>``): the proxy reaches every
run's files through ArtifactService, wherever its store is (a folder, S3), so runs created over
gRPC are as readable to an MLflow client as its own, and it needs no object-store credentials.
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from tracklane.v1 import common_pb2, registry_pb2, tracking_pb2
from tracklane_server.http.mlflow_rest.codec import double

__all__ = [
    "STAGE_NAMES",
    "experiment",
    "experiment_location",
    "logged_model_id",
    "metric",
    "model_version",
    "parse_logged_model_id",
    "registered_model",
    "run",
    "run_artifact_uri",
    "run_info",
]

SCHEME = "mlflow-artifacts:"
_RUN_STATUS = {
    tracking_pb2.RUN_STATUS_RUNNING: "RUNNING",
    tracking_pb2.RUN_STATUS_SCHEDULED: "SCHEDULED",
    tracking_pb2.RUN_STATUS_FINISHED: "FINISHED",
    tracking_pb2.RUN_STATUS_FAILED: "FAILED",
    tracking_pb2.RUN_STATUS_KILLED: "KILLED",
}
_STAGE = {common_pb2.LIFECYCLE_STAGE_ACTIVE: "active", common_pb2.LIFECYCLE_STAGE_DELETED: "deleted"}
STAGE_NAMES = {
    registry_pb2.MODEL_STAGE_NONE: "None",
    registry_pb2.MODEL_STAGE_STAGING: "Staging",
    registry_pb2.MODEL_STAGE_PRODUCTION: "Production",
    registry_pb2.MODEL_STAGE_ARCHIVED: "Archived",
}
_VERSION_STATUS = {
    registry_pb2.MODEL_VERSION_STATUS_PENDING_REGISTRATION: "PENDING_REGISTRATION",
    registry_pb2.MODEL_VERSION_STATUS_READY: "READY",
    registry_pb2.MODEL_VERSION_STATUS_FAILED_REGISTRATION: "FAILED_REGISTRATION",
}


def _ms(ts: Timestamp) -> int:
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def _tags(tags: Any) -> list[dict[str, str]]:
    return [{"key": t.key, "value": t.value} for t in tags]


def experiment_location(experiment_id: str) -> str:
    return f"{SCHEME}/{experiment_id}"


def run_artifact_uri(experiment_id: str, run_id: str, path: str = "") -> str:
    root = f"{SCHEME}/{experiment_id}/{run_id}/artifacts"
    return f"{root}/{path}" if path else root


def experiment(e: tracking_pb2.Experiment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": experiment_location(e.experiment_id),
        "lifecycle_stage": _STAGE.get(e.lifecycle_stage, "active"),
    }
    if e.HasField("update_time"):
        out["last_update_time"] = _ms(e.update_time)
    if e.HasField("create_time"):
        out["creation_time"] = _ms(e.create_time)
    tags = _tags(e.tags)  # the description among them, as mlflow.note.content (store/system_tags)
    if tags:
        out["tags"] = tags
    return out


def run_info(i: tracking_pb2.RunInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": i.run_id,
        "run_uuid": i.run_id,
        "run_name": i.run_name,
        "experiment_id": i.experiment_id,
        "user_id": i.user_id,
        "status": _RUN_STATUS.get(i.status, "RUNNING"),
        "artifact_uri": run_artifact_uri(i.experiment_id, i.run_id),
        "lifecycle_stage": _STAGE.get(i.lifecycle_stage, "active"),
    }
    if i.HasField("start_time"):
        out["start_time"] = _ms(i.start_time)
    if i.HasField("end_time"):
        out["end_time"] = _ms(i.end_time)
    return out


def metric(m: tracking_pb2.Metric) -> dict[str, Any]:
    return {"key": m.key, "value": double(m.value), "timestamp": m.timestamp_ms, "step": m.step}


def run(r: tracking_pb2.Run) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if r.data.metrics:
        data["metrics"] = [metric(m) for m in r.data.metrics]
    if r.data.params:
        data["params"] = [{"key": p.key, "value": p.value} for p in r.data.params]
    if r.data.tags:
        data["tags"] = _tags(r.data.tags)
    out: dict[str, Any] = {"info": run_info(r.info), "data": data}
    if r.inputs.dataset_inputs:
        out["inputs"] = {"dataset_inputs": [_dataset_input(d) for d in r.inputs.dataset_inputs]}
    else:
        out["inputs"] = {}
    return out


def _dataset_input(d: tracking_pb2.DatasetInput) -> dict[str, Any]:
    dataset = {
        "name": d.dataset.name,
        "digest": d.dataset.digest,
        "source_type": d.dataset.source_type,
        "source": d.dataset.source,
    }
    if d.dataset.schema:
        dataset["schema"] = d.dataset.schema
    if d.dataset.profile:
        dataset["profile"] = d.dataset.profile
    tags = _tags(d.tags)
    if d.context and not any(t["key"] == "mlflow.data.context" for t in tags):
        tags.append({"key": "mlflow.data.context", "value": d.context})
    out: dict[str, Any] = {"dataset": dataset}
    if tags:
        out["tags"] = tags
    return out


# -- MLflow 3 logged models: a model folder in its source run's artifacts ------------------------


def logged_model_id(run_id: str, path: str) -> str:
    """``m-<run_id>-<path, base64url>``: the id names where the model is, so no table is needed."""
    encoded = base64.urlsafe_b64encode(path.encode()).decode().rstrip("=")
    return f"m-{run_id}-{encoded}"


def parse_logged_model_id(model_id: str) -> tuple[str, str] | None:
    """(run_id, path) of an id from :func:`logged_model_id`; None for any other string."""
    if not model_id.startswith("m-") or len(model_id) < 36 or model_id[34] != "-":
        return None
    run_id, encoded = model_id[2:34], model_id[35:]
    try:
        path = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return (run_id, path) if path else None


# -- registry -----------------------------------------------------------------------------------


def model_version(v: registry_pb2.ModelVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": _ms(v.create_time),
        "last_updated_timestamp": _ms(v.update_time),
        "user_id": v.user_id,
        "current_stage": STAGE_NAMES.get(v.stage, "None"),
        "description": v.description,
        "source": v.source,
        "run_id": v.run_id,
        "status": _VERSION_STATUS.get(v.status, "READY"),
    }
    if v.status_message:
        out["status_message"] = v.status_message
    if v.tags:
        out["tags"] = _tags(v.tags)
    if v.aliases:
        out["aliases"] = list(v.aliases)
    if v.source.startswith("runs:/"):
        run_id, _, path = v.source[len("runs:/") :].partition("/")
        if path:
            out["model_id"] = logged_model_id(run_id, path)
    return out


def registered_model(m: registry_pb2.RegisteredModel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": _ms(m.create_time),
        "last_updated_timestamp": _ms(m.update_time),
        "description": m.description,
    }
    if m.latest_versions:
        out["latest_versions"] = [model_version(v) for v in m.latest_versions]
    if m.tags:
        out["tags"] = _tags(m.tags)
    if m.aliases:
        out["aliases"] = [{"alias": a.alias, "version": str(a.version)} for a in m.aliases]
    return out
