"""Client methods for RegistryService; mixed into ``tracklane.Client``. Names are MLflow's.

Every change sends the ``user`` request metadata (the login name), which the server records as a
version's ``user_id`` and in the model's history.
"""

from __future__ import annotations

import functools
import getpass
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from google.protobuf import field_mask_pb2

from tracklane._client_base import ClientBase
from tracklane.entities.model_registry import ModelEvent, ModelStage, ModelVersion, RegisteredModel
from tracklane.exceptions import InvalidArgument
from tracklane.v1 import common_pb2, registry_pb2

Resp = TypeVar("Resp")
Item = TypeVar("Item")

_MODELS_URI_RE = re.compile(r"models:/([^/@]+)(?:/([^/]+)|@([^/]+))/?")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no such user (containers) or no login
        return ""


def _tags(tags: Mapping[str, object] | None) -> list[common_pb2.Tag]:
    return [common_pb2.Tag(key=k, value=str(v)) for k, v in (tags or {}).items()]


def _version(version: int | str) -> int:
    """MLflow passes versions as strings of digits; the wire carries int64."""
    try:
        return int(version)
    except (TypeError, ValueError):
        raise InvalidArgument(f"version: {version!r} is not a version number", field="version") from None


class RegistryMethods(ClientBase):
    """Registered models, versions, aliases, stages and history; MLflow's method names."""

    def _change(self, method: Callable[..., Resp], request: Any) -> Resp:
        """A call that changes something: it says who makes the change."""
        return self._call(functools.partial(method, metadata=(("user", _user()),)), request)

    def _pages(
        self,
        method: Callable[..., Any],
        request: Any,
        items: Callable[[Any], Sequence[Item]],
        max_results: int,
    ) -> list[Item]:
        found: list[Item] = []
        request.page_size = min(max_results, 1000)
        while len(found) < max_results:
            response = self._call(method, request)
            found.extend(items(response))
            if not response.next_page_token:
                break
            request.page_token = response.next_page_token
        return found[:max_results]

    # -- registered models ----------------------------------------------------------------------------

    def create_registered_model(
        self, name: str, tags: Mapping[str, object] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Creates a registered model. Raises AlreadyExists when the name is taken."""
        request = registry_pb2.CreateRegisteredModelRequest(
            name=name, description=description or "", tags=_tags(tags)
        )
        return RegisteredModel.from_proto(
            self._change(self._registry.CreateRegisteredModel, request).registered_model
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its tags, aliases and latest version per stage. Raises NotFound."""
        request = registry_pb2.GetRegisteredModelRequest(name=name)
        return RegisteredModel.from_proto(
            self._call(self._registry.GetRegisteredModel, request).registered_model
        )

    def search_registered_models(
        self, filter_string: str = "", max_results: int = 1000, order_by: Sequence[str] | None = None
    ) -> list[RegisteredModel]:
        """Models matching a filter on name, times and tags, e.g. ``name LIKE 'fraud-%'``; all pages.

        Default order: by name. Raises InvalidArgument when the filter does not parse.
        """
        request = registry_pb2.SearchRegisteredModelsRequest(filter=filter_string, order_by=order_by or ())
        return self._pages(
            self._registry.SearchRegisteredModels,
            request,
            lambda r: [RegisteredModel.from_proto(m) for m in r.registered_models],
            max_results,
        )

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Renames a model; its versions and aliases follow. Raises AlreadyExists when taken."""
        request = registry_pb2.RenameRegisteredModelRequest(name=name, new_name=new_name)
        return RegisteredModel.from_proto(
            self._change(self._registry.RenameRegisteredModel, request).registered_model
        )

    def update_registered_model(self, name: str, description: str | None = None) -> RegisteredModel:
        """Changes a model's description (recorded in its history)."""
        request = registry_pb2.UpdateRegisteredModelRequest(
            name=name,
            description=description or "",
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        )
        return RegisteredModel.from_proto(
            self._change(self._registry.UpdateRegisteredModel, request).registered_model
        )

    def delete_registered_model(self, name: str) -> None:
        """Deletes a model with its versions, tags, aliases and history."""
        self._change(
            self._registry.DeleteRegisteredModel, registry_pb2.DeleteRegisteredModelRequest(name=name)
        )

    def set_registered_model_tag(self, name: str, key: str, value: object) -> None:
        """Sets (or overwrites) a model tag to ``str(value)``."""
        request = registry_pb2.SetRegisteredModelTagRequest(
            name=name, tag=common_pb2.Tag(key=key, value=str(value))
        )
        self._change(self._registry.SetRegisteredModelTag, request)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Removes a model tag. Raises NotFound when it is not set."""
        request = registry_pb2.DeleteRegisteredModelTagRequest(name=name, key=key)
        self._change(self._registry.DeleteRegisteredModelTag, request)

    # -- versions -------------------------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, object] | None = None,
        description: str | None = None,
        *,
        request_id: str | None = None,
    ) -> ModelVersion:
        """Registers the next version of ``name`` (1, 2, 3...) from ``source``.

        Args:
            name: An existing registered model.
            source: ``runs:/<run_id>/<path>`` or an artifact URI.
            run_id: The run that produced it; taken from a ``runs:/`` source when omitted.
            tags: Initial version tags.
            description: Free text.
            request_id: Idempotency key (at most 128 characters): a retry with the same key returns
                the version it created instead of registering another. Default: a fresh one per
                call, which covers retries of this call; pass your own to retry across restarts.

        Raises:
            NotFound: The model or the run does not exist.
            FailedPrecondition: The run is deleted.
        """
        request = registry_pb2.CreateModelVersionRequest(
            name=name,
            source=source,
            run_id=run_id or "",
            description=description or "",
            tags=_tags(tags),
            request_id=request_id or uuid.uuid4().hex,
        )
        return ModelVersion.from_proto(self._change(self._registry.CreateModelVersion, request).model_version)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """One version. Raises NotFound."""
        request = registry_pb2.GetModelVersionRequest(name=name, version=_version(version))
        return ModelVersion.from_proto(self._call(self._registry.GetModelVersion, request).model_version)

    def search_model_versions(
        self, filter_string: str = "", max_results: int = 10_000, order_by: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """Versions matching a filter on name, version, run_id, source and tags; all pages.

        e.g. ``name = 'fraud' and tags.validated = 'true'``. Default order: name, then newest first.
        """
        request = registry_pb2.SearchModelVersionsRequest(filter=filter_string, order_by=order_by or ())
        return self._pages(
            self._registry.SearchModelVersions,
            request,
            lambda r: [ModelVersion.from_proto(v) for v in r.model_versions],
            max_results,
        )

    def update_model_version(
        self, name: str, version: int | str, description: str | None = None
    ) -> ModelVersion:
        """Changes a version's description (recorded in the model's history)."""
        request = registry_pb2.UpdateModelVersionRequest(
            name=name,
            version=_version(version),
            description=description or "",
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        )
        return ModelVersion.from_proto(self._change(self._registry.UpdateModelVersion, request).model_version)

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Deletes a version and the aliases on it; other versions keep their numbers."""
        request = registry_pb2.DeleteModelVersionRequest(name=name, version=_version(version))
        self._change(self._registry.DeleteModelVersion, request)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: object) -> None:
        """Sets (or overwrites) a version tag to ``str(value)``."""
        request = registry_pb2.SetModelVersionTagRequest(
            name=name, version=_version(version), tag=common_pb2.Tag(key=key, value=str(value))
        )
        self._change(self._registry.SetModelVersionTag, request)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Removes a version tag. Raises NotFound when it is not set."""
        request = registry_pb2.DeleteModelVersionTagRequest(name=name, version=_version(version), key=key)
        self._change(self._registry.DeleteModelVersionTag, request)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Where the version's files are (the run's artifact location for a ``runs:/`` source)."""
        request = registry_pb2.GetModelVersionDownloadUriRequest(name=name, version=_version(version))
        return self._call(self._registry.GetModelVersionDownloadUri, request).artifact_uri

    # -- stages ---------------------------------------------------------------------------------------

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str | ModelStage, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """Moves a version to ``stage`` ("None", "Staging", "Production", "Archived"; any case).

        With ``archive_existing_versions`` (Staging and Production only), the versions now in that
        stage move to Archived.
        """
        request = registry_pb2.TransitionModelVersionStageRequest(
            name=name,
            version=_version(version),
            stage=ModelStage.parse(stage).to_proto(),
            archive_existing_versions=archive_existing_versions,
        )
        return ModelVersion.from_proto(
            self._change(self._registry.TransitionModelVersionStage, request).model_version
        )

    def get_latest_versions(
        self, name: str, stages: Sequence[str | ModelStage] | None = None
    ) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (every stage when omitted) that has one."""
        request = registry_pb2.GetLatestVersionsRequest(
            name=name,
            stages=[ModelStage.parse(s, field=f"stages[{i}]").to_proto() for i, s in enumerate(stages or ())],
        )
        response = self._call(self._registry.GetLatestVersions, request)
        return [ModelVersion.from_proto(v) for v in response.model_versions]

    # -- aliases --------------------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Points ``alias`` at ``version``, moving it from any other version in one step.

        Moving it back is a rollback; both moves show in :meth:`list_model_events`.
        """
        request = registry_pb2.SetRegisteredModelAliasRequest(
            name=name, alias=alias, version=_version(version)
        )
        self._change(self._registry.SetRegisteredModelAlias, request)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Removes an alias. Raises NotFound when it is not set."""
        request = registry_pb2.DeleteRegisteredModelAliasRequest(name=name, alias=alias)
        self._change(self._registry.DeleteRegisteredModelAlias, request)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at. Raises NotFound."""
        request = registry_pb2.GetModelVersionByAliasRequest(name=name, alias=alias)
        return ModelVersion.from_proto(
            self._call(self._registry.GetModelVersionByAlias, request).model_version
        )

    # -- copy and history -----------------------------------------------------------------------------

    def copy_model_version(self, src_model_uri: str, dst_name: str) -> ModelVersion:
        """Copies ``models:/<name>/<version>`` (or ``models:/<name>@<alias>``) as the next version of
        ``dst_name``, which is created when missing. Source, run, tags and description come along."""
        match = _MODELS_URI_RE.fullmatch(src_model_uri)
        if match is None:
            raise InvalidArgument(
                f"src_model_uri: {src_model_uri!r} is not models:/<name>/<version> or models:/<name>@<alias>",
                field="src_model_uri",
            )
        name, version, alias = match.groups()
        if alias is not None:
            number = self.get_model_version_by_alias(name, alias).version
        elif version is not None and version.isdigit():
            number = int(version)
        else:
            raise InvalidArgument(
                f"src_model_uri: {src_model_uri!r} must name a version number or an alias",
                field="src_model_uri",
            )
        request = registry_pb2.CopyModelVersionRequest(name=name, version=number, destination_name=dst_name)
        return ModelVersion.from_proto(self._change(self._registry.CopyModelVersion, request).model_version)

    def list_model_events(
        self, name: str, version: int | str | None = None, max_results: int = 10_000
    ) -> list[ModelEvent]:
        """A model's history, newest first: creations, alias moves, stage transitions, description
        changes and deletions, each with who and when. Only one version's with ``version``."""
        request = registry_pb2.ListModelEventsRequest(
            name=name, version=0 if version is None else _version(version)
        )
        return self._pages(
            self._registry.ListModelEvents,
            request,
            lambda r: [ModelEvent.from_proto(e) for e in r.events],
            max_results,
        )
