"""MLflow's model registry endpoints (ModelRegistryService) as calls to RegistryService.

Versions are strings in MLflow's JSON and numbers in Tracklane's; stages are MLflow's words
("None", "Staging", "Production", "Archived"). A version's source may be any of the URIs the
``mlflow`` client sends: ``runs:/RUN/PATH``, this proxy's ``mlflow-artifacts:/EXP/RUN/artifacts/PATH``
or an MLflow 3 ``models:/<model id>``; the last two are stored as ``runs:/RUN/PATH``, the form
Tracklane's own clients and the registry's run checks understand.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from tracklane.v1 import common_pb2, registry_pb2, tracking_pb2
from tracklane_server.http.mlflow_rest import present
from tracklane_server.http.mlflow_rest.calls import Call, Msg
from tracklane_server.http.mlflow_rest.calls import rpc as _rpc
from tracklane_server.http.mlflow_rest.errors import invalid
from tracklane_server.http.mlflow_rest.tracking import listing, max_results

__all__ = ["run_source", "version_number"]

_R = "/tracklane.v1.RegistryService/"
_T = "/tracklane.v1.TrackingService/"
rpc = partial(_rpc, service="ModelRegistryService")
_STAGES = {name.lower(): number for number, name in present.STAGE_NAMES.items()}


def version_number(m: Msg, field: str = "version") -> int:
    """MLflow's string version as a number, refused as MLflow refuses it."""
    text = getattr(m, field)
    try:
        return int(text)
    except ValueError:
        raise invalid(f"Parameter '{field}' must be an integer, got '{text}'.") from None


def _stage(text: str) -> registry_pb2.ModelStage.ValueType:
    try:
        return _STAGES[text.lower()]
    except KeyError:
        allowed = ", ".join(present.STAGE_NAMES.values())
        raise invalid(f"Invalid Model Version stage: {text}. Value must be one of {allowed}.") from None


def run_source(source: str) -> tuple[str, str] | None:
    """(run_id, path) of a source this server's runs hold; None for any other URI."""
    if source.startswith("runs:/"):
        run_id, _, path = source[len("runs:/") :].partition("/")
        return run_id, path
    if source.startswith("models:/"):
        return present.parse_logged_model_id(source[len("models:/") :].rstrip("/"))
    if source.startswith(present.SCHEME):
        parts = source[len(present.SCHEME) :].lstrip("/").split("/", 3)
        if len(parts) >= 3 and parts[2] == "artifacts":
            return parts[1], parts[3] if len(parts) > 3 else ""
    return None


def _tags(tags: Any) -> list[common_pb2.Tag]:
    return [common_pb2.Tag(key=t.key, value=t.value) for t in tags]


@rpc("createRegisteredModel")
async def create_registered_model(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(
        _R + "CreateRegisteredModel",
        registry_pb2.CreateRegisteredModelRequest(name=m.name, description=m.description, tags=_tags(m.tags)),
    )
    return {"registered_model": present.registered_model(reply.registered_model)}


@rpc("renameRegisteredModel")
async def rename_registered_model(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(
        _R + "RenameRegisteredModel",
        registry_pb2.RenameRegisteredModelRequest(name=m.name, new_name=m.new_name),
    )
    return {"registered_model": present.registered_model(reply.registered_model)}


@rpc("updateRegisteredModel")
async def update_registered_model(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(
        _R + "UpdateRegisteredModel",
        registry_pb2.UpdateRegisteredModelRequest(
            name=m.name, description=m.description, update_mask=FieldMask(paths=["description"])
        ),
    )
    return {"registered_model": present.registered_model(reply.registered_model)}


@rpc("deleteRegisteredModel")
async def delete_registered_model(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(_R + "DeleteRegisteredModel", registry_pb2.DeleteRegisteredModelRequest(name=m.name))
    return {}


@rpc("getRegisteredModel")
async def get_registered_model(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(_R + "GetRegisteredModel", registry_pb2.GetRegisteredModelRequest(name=m.name))
    return {"registered_model": present.registered_model(reply.registered_model)}


@rpc("searchRegisteredModels")
async def search_registered_models(call: Call, m: Msg) -> dict[str, Any]:
    request = registry_pb2.SearchRegisteredModelsRequest(
        filter=m.filter, order_by=list(m.order_by), page_token=m.page_token
    )
    wanted = max_results(m, 100)
    method = _R + "SearchRegisteredModels"
    return await listing(call, method, request, "registered_models", wanted, present.registered_model)


@rpc("getLatestVersions")
async def get_latest_versions(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(
        _R + "GetLatestVersions",
        registry_pb2.GetLatestVersionsRequest(name=m.name, stages=[_stage(s) for s in m.stages]),
    )
    return (
        {"model_versions": [present.model_version(v) for v in reply.model_versions]}
        if reply.model_versions
        else {}
    )


@rpc("createModelVersion")
async def create_model_version(call: Call, m: Msg) -> dict[str, Any]:
    source, run_id = m.source, m.run_id
    if m.model_id and not run_source(source):
        source = f"models:/{m.model_id}"
    if (found := run_source(source)) is not None:
        source_run, path = found
        source = f"runs:/{source_run}/{path}" if path else f"runs:/{source_run}"
        run_id = run_id or source_run
    reply = await call.unary(
        _R + "CreateModelVersion",
        registry_pb2.CreateModelVersionRequest(
            name=m.name, source=source, run_id=run_id, description=m.description, tags=_tags(m.tags)
        ),
    )
    return {"model_version": present.model_version(reply.model_version)}


@rpc("updateModelVersion")
async def update_model_version(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(
        _R + "UpdateModelVersion",
        registry_pb2.UpdateModelVersionRequest(
            name=m.name,
            version=version_number(m),
            description=m.description,
            update_mask=FieldMask(paths=["description"]),
        ),
    )
    return {"model_version": present.model_version(reply.model_version)}


@rpc("transitionModelVersionStage")
async def transition_model_version_stage(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(
        _R + "TransitionModelVersionStage",
        registry_pb2.TransitionModelVersionStageRequest(
            name=m.name,
            version=version_number(m),
            stage=_stage(m.stage),
            archive_existing_versions=m.archive_existing_versions,
        ),
    )
    return {"model_version": present.model_version(reply.model_version)}


@rpc("deleteModelVersion")
async def delete_model_version(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _R + "DeleteModelVersion",
        registry_pb2.DeleteModelVersionRequest(name=m.name, version=version_number(m)),
    )
    return {}


@rpc("getModelVersion")
async def get_model_version(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(
        _R + "GetModelVersion", registry_pb2.GetModelVersionRequest(name=m.name, version=version_number(m))
    )
    return {"model_version": present.model_version(reply.model_version)}


@rpc("searchModelVersions")
async def search_model_versions(call: Call, m: Msg) -> dict[str, Any]:
    request = registry_pb2.SearchModelVersionsRequest(
        filter=m.filter, order_by=list(m.order_by), page_token=m.page_token
    )
    wanted = max_results(m, 10_000)
    method = _R + "SearchModelVersions"
    return await listing(call, method, request, "model_versions", wanted, present.model_version)


@rpc("getModelVersionDownloadUri")
async def get_model_version_download_uri(call: Call, m: Msg) -> dict[str, Any]:
    version = (
        await call.unary(
            _R + "GetModelVersion",
            registry_pb2.GetModelVersionRequest(name=m.name, version=version_number(m)),
        )
    ).model_version
    found = run_source(version.source)
    if found is None:  # stored from elsewhere: the registry's own answer
        reply = await call.unary(
            _R + "GetModelVersionDownloadUri",
            registry_pb2.GetModelVersionDownloadUriRequest(name=m.name, version=version.version),
        )
        return {"artifact_uri": reply.artifact_uri}
    run_id, path = found
    run = await call.unary(_T + "GetRun", tracking_pb2.GetRunRequest(run_id=run_id))
    return {"artifact_uri": present.run_artifact_uri(run.run.info.experiment_id, run_id, path)}


@rpc("setRegisteredModelTag")
async def set_registered_model_tag(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _R + "SetRegisteredModelTag",
        registry_pb2.SetRegisteredModelTagRequest(name=m.name, tag=common_pb2.Tag(key=m.key, value=m.value)),
    )
    return {}


@rpc("setModelVersionTag")
async def set_model_version_tag(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _R + "SetModelVersionTag",
        registry_pb2.SetModelVersionTagRequest(
            name=m.name, version=version_number(m), tag=common_pb2.Tag(key=m.key, value=m.value)
        ),
    )
    return {}


@rpc("deleteRegisteredModelTag")
async def delete_registered_model_tag(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _R + "DeleteRegisteredModelTag", registry_pb2.DeleteRegisteredModelTagRequest(name=m.name, key=m.key)
    )
    return {}


@rpc("deleteModelVersionTag")
async def delete_model_version_tag(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _R + "DeleteModelVersionTag",
        registry_pb2.DeleteModelVersionTagRequest(name=m.name, version=version_number(m), key=m.key),
    )
    return {}


@rpc("setRegisteredModelAlias")
async def set_registered_model_alias(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _R + "SetRegisteredModelAlias",
        registry_pb2.SetRegisteredModelAliasRequest(name=m.name, alias=m.alias, version=version_number(m)),
    )
    return {}


@rpc("deleteRegisteredModelAlias")
async def delete_registered_model_alias(call: Call, m: Msg) -> dict[str, Any]:
    await call.unary(
        _R + "DeleteRegisteredModelAlias",
        registry_pb2.DeleteRegisteredModelAliasRequest(name=m.name, alias=m.alias),
    )
    return {}


@rpc("getModelVersionByAlias")
async def get_model_version_by_alias(call: Call, m: Msg) -> dict[str, Any]:
    reply = await call.unary(
        _R + "GetModelVersionByAlias", registry_pb2.GetModelVersionByAliasRequest(name=m.name, alias=m.alias)
    )
    return {"model_version": present.model_version(reply.model_version)}
