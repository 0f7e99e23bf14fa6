"""RegistryService: validate the request, call the registry store off the event loop, convert back.

Who made a change (recorded in the model's history and as a version's ``user_id``) is the
authenticated user when auth is on; without auth it comes from the ``user`` request metadata, which
the Python client sends (other clients may send it too).
"""

from __future__ import annotations

from typing import Any

from tracklane.entities.model_registry import ModelStage
from tracklane.exceptions import InvalidArgument
from tracklane.v1 import registry_pb2, registry_pb2_grpc
from tracklane_server.identity.principal import current_principal
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.services.masks import update_fields
from tracklane_server.services.request_checks import checked_requests
from tracklane_server.store.registry.checks import check_model_name
from tracklane_server.store.registry.models import RegistryStore

Context = Any  # grpc.aio.ServicerContext; the interceptor turns TracklaneError into its status

USER_METADATA_KEY = "user"


def _user(context: Context) -> str:
    principal = current_principal()
    if principal is not None:  # with auth the metadata is the caller's claim, not a fact
        return principal.name
    for key, value in context.invocation_metadata() or ():
        if key == USER_METADATA_KEY and isinstance(value, str):
            return value
    return ""


def _stage(value: registry_pb2.ModelStage.ValueType, field: str = "stage") -> ModelStage:
    if value == registry_pb2.MODEL_STAGE_UNSPECIFIED:
        raise InvalidArgument(f"{field}: give a stage (NONE, STAGING, PRODUCTION or ARCHIVED)", field=field)
    if value not in registry_pb2.ModelStage.values():
        raise InvalidArgument(f"{field}: unknown stage {value}", field=field)
    return ModelStage.from_proto(value)


def _description(request: Any) -> str:
    """The new description; the mask may only name ``description`` (empty: the same)."""
    update_fields(request, allowed=("description",), implicit={"description": True})
    return str(request.description)


@checked_requests
class RegistryService(registry_pb2_grpc.RegistryServiceServicer):
    """Registered models and their versions."""

    def __init__(self, store: RegistryStore, blocking: BlockingCalls) -> None:
        self.store = store
        self.blocking = blocking

    # -- registered models ----------------------------------------------------------------------------

    async def CreateRegisteredModel(
        self, request: registry_pb2.CreateRegisteredModelRequest, context: Context
    ) -> registry_pb2.CreateRegisteredModelResponse:
        model = await self.blocking.call(
            self.store.create_registered_model,
            request.name,
            description=request.description,
            tags={tag.key: tag.value for tag in request.tags},
            user=_user(context),
        )
        return registry_pb2.CreateRegisteredModelResponse(registered_model=model.to_proto())

    async def GetRegisteredModel(
        self, request: registry_pb2.GetRegisteredModelRequest, context: Context
    ) -> registry_pb2.GetRegisteredModelResponse:
        model = await self.blocking.call(self.store.get_registered_model, request.name)
        return registry_pb2.GetRegisteredModelResponse(registered_model=model.to_proto())

    async def SearchRegisteredModels(
        self, request: registry_pb2.SearchRegisteredModelsRequest, context: Context
    ) -> registry_pb2.SearchRegisteredModelsResponse:
        models, token = await self.blocking.call(
            self.store.search_registered_models,
            filter_text=request.filter,
            order_by=list(request.order_by),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return registry_pb2.SearchRegisteredModelsResponse(
            registered_models=[m.to_proto() for m in models], next_page_token=token
        )

    async def RenameRegisteredModel(
        self, request: registry_pb2.RenameRegisteredModelRequest, context: Context
    ) -> registry_pb2.RenameRegisteredModelResponse:
        model = await self.blocking.call(
            self.store.rename_registered_model, request.name, request.new_name, user=_user(context)
        )
        return registry_pb2.RenameRegisteredModelResponse(registered_model=model.to_proto())

    async def UpdateRegisteredModel(
        self, request: registry_pb2.UpdateRegisteredModelRequest, context: Context
    ) -> registry_pb2.UpdateRegisteredModelResponse:
        model = await self.blocking.call(
            self.store.update_registered_model,
            request.name,
            description=_description(request),
            user=_user(context),
        )
        return registry_pb2.UpdateRegisteredModelResponse(registered_model=model.to_proto())

    async def DeleteRegisteredModel(
        self, request: registry_pb2.DeleteRegisteredModelRequest, context: Context
    ) -> registry_pb2.DeleteRegisteredModelResponse:
        await self.blocking.call(self.store.delete_registered_model, request.name)
        return registry_pb2.DeleteRegisteredModelResponse()

    async def SetRegisteredModelTag(
        self, request: registry_pb2.SetRegisteredModelTagRequest, context: Context
    ) -> registry_pb2.SetRegisteredModelTagResponse:
        await self.blocking.call(
            self.store.set_registered_model_tag, request.name, request.tag.key, request.tag.value
        )
        return registry_pb2.SetRegisteredModelTagResponse()

    async def DeleteRegisteredModelTag(
        self, request: registry_pb2.DeleteRegisteredModelTagRequest, context: Context
    ) -> registry_pb2.DeleteRegisteredModelTagResponse:
        await self.blocking.call(self.store.delete_registered_model_tag, request.name, request.key)
        return registry_pb2.DeleteRegisteredModelTagResponse()

    # -- versions -------------------------------------------------------------------------------------

    async def CreateModelVersion(
        self, request: registry_pb2.CreateModelVersionRequest, context: Context
    ) -> registry_pb2.CreateModelVersionResponse:
        version = await self.blocking.call(
            self.store.create_model_version,
            request.name,
            request.source,
            run_id=request.run_id,
            description=request.description,
            tags={tag.key: tag.value for tag in request.tags},
            user=_user(context),
            request_id=request.request_id,
        )
        return registry_pb2.CreateModelVersionResponse(model_version=version.to_proto())

    async def GetModelVersion(
        self, request: registry_pb2.GetModelVersionRequest, context: Context
    ) -> registry_pb2.GetModelVersionResponse:
        version = await self.blocking.call(self.store.get_model_version, request.name, request.version)
        return registry_pb2.GetModelVersionResponse(model_version=version.to_proto())

    async def SearchModelVersions(
        self, request: registry_pb2.SearchModelVersionsRequest, context: Context
    ) -> registry_pb2.SearchModelVersionsResponse:
        versions, token = await self.blocking.call(
            self.store.search_model_versions,
            filter_text=request.filter,
            order_by=list(request.order_by),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return registry_pb2.SearchModelVersionsResponse(
            model_versions=[v.to_proto() for v in versions], next_page_token=token
        )

    async def UpdateModelVersion(
        self, request: registry_pb2.UpdateModelVersionRequest, context: Context
    ) -> registry_pb2.UpdateModelVersionResponse:
        version = await self.blocking.call(
            self.store.update_model_version,
            request.name,
            request.version,
            description=_description(request),
            user=_user(context),
        )
        return registry_pb2.UpdateModelVersionResponse(model_version=version.to_proto())

    async def DeleteModelVersion(
        self, request: registry_pb2.DeleteModelVersionRequest, context: Context
    ) -> registry_pb2.DeleteModelVersionResponse:
        await self.blocking.call(
            self.store.delete_model_version, request.name, request.version, user=_user(context)
        )
        return registry_pb2.DeleteModelVersionResponse()

    async def SetModelVersionTag(
        self, request: registry_pb2.SetModelVersionTagRequest, context: Context
    ) -> registry_pb2.SetModelVersionTagResponse:
        await self.blocking.call(
            self.store.set_model_version_tag,
            request.name,
            request.version,
            request.tag.key,
            request.tag.value,
        )
        return registry_pb2.SetModelVersionTagResponse()

    async def DeleteModelVersionTag(
        self, request: registry_pb2.DeleteModelVersionTagRequest, context: Context
    ) -> registry_pb2.DeleteModelVersionTagResponse:
        await self.blocking.call(
            self.store.delete_model_version_tag, request.name, request.version, request.key
        )
        return registry_pb2.DeleteModelVersionTagResponse()

    async def GetModelVersionDownloadUri(
        self, request: registry_pb2.GetModelVersionDownloadUriRequest, context: Context
    ) -> registry_pb2.GetModelVersionDownloadUriResponse:
        uri = await self.blocking.call(
            self.store.get_model_version_download_uri, request.name, request.version
        )
        return registry_pb2.GetModelVersionDownloadUriResponse(artifact_uri=uri)

    # -- stages, aliases, copy, history ---------------------------------------------------------------

    async def TransitionModelVersionStage(
        self, request: registry_pb2.TransitionModelVersionStageRequest, context: Context
    ) -> registry_pb2.TransitionModelVersionStageResponse:
        version = await self.blocking.call(
            self.store.transition_model_version_stage,
            request.name,
            request.version,
            _stage(request.stage),
            archive_existing_versions=request.archive_existing_versions,
            user=_user(context),
        )
        return registry_pb2.TransitionModelVersionStageResponse(model_version=version.to_proto())

    async def GetLatestVersions(
        self, request: registry_pb2.GetLatestVersionsRequest, context: Context
    ) -> registry_pb2.GetLatestVersionsResponse:
        stages = [_stage(s, f"stages[{i}]") for i, s in enumerate(request.stages)]
        versions = await self.blocking.call(self.store.get_latest_versions, request.name, stages)
        return registry_pb2.GetLatestVersionsResponse(model_versions=[v.to_proto() for v in versions])

    async def SetRegisteredModelAlias(
        self, request: registry_pb2.SetRegisteredModelAliasRequest, context: Context
    ) -> registry_pb2.SetRegisteredModelAliasResponse:
        await self.blocking.call(
            self.store.set_registered_model_alias,
            request.name,
            request.alias,
            request.version,
            user=_user(context),
        )
        return registry_pb2.SetRegisteredModelAliasResponse()

    async def DeleteRegisteredModelAlias(
        self, request: registry_pb2.DeleteRegisteredModelAliasRequest, context: Context
    ) -> registry_pb2.DeleteRegisteredModelAliasResponse:
        await self.blocking.call(
            self.store.delete_registered_model_alias, request.name, request.alias, user=_user(context)
        )
        return registry_pb2.DeleteRegisteredModelAliasResponse()

    async def GetModelVersionByAlias(
        self, request: registry_pb2.GetModelVersionByAliasRequest, context: Context
    ) -> registry_pb2.GetModelVersionByAliasResponse:
        version = await self.blocking.call(self.store.get_model_version_by_alias, request.name, request.alias)
        return registry_pb2.GetModelVersionByAliasResponse(model_version=version.to_proto())

    async def CopyModelVersion(
        self, request: registry_pb2.CopyModelVersionRequest, context: Context
    ) -> registry_pb2.CopyModelVersionResponse:
        check_model_name(request.name)
        version = await self.blocking.call(
            self.store.copy_model_version,
            request.name,
            request.version,
            request.destination_name,
            user=_user(context),
        )
        return registry_pb2.CopyModelVersionResponse(model_version=version.to_proto())

    async def ListModelEvents(
        self, request: registry_pb2.ListModelEventsRequest, context: Context
    ) -> registry_pb2.ListModelEventsResponse:
        events, token = await self.blocking.call(
            self.store.list_model_events,
            request.name,
            version=request.version,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return registry_pb2.ListModelEventsResponse(
            events=[e.to_proto() for e in events], next_page_token=token
        )
