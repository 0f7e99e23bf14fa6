"""Model registry entities: registered models, versions, stages, statuses and history events.

Field names follow MLflow's entities (``creation_timestamp``, ``current_stage``...) so code moves
over by search-and-replace; versions are ``int`` (MLflow uses strings of digits). Times are epoch
milliseconds. Each entity converts to and from its ``tracklane.v1`` message here, and only here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Self

from tracklane.entities.tracking import millis_to_timestamp, timestamp_to_millis
from tracklane.exceptions import InvalidArgument
from tracklane.v1 import common_pb2, registry_pb2

__all__ = [
    "ModelEvent",
    "ModelEventKind",
    "ModelStage",
    "ModelVersion",
    "ModelVersionStatus",
    "RegisteredModel",
]


class ModelStage(enum.StrEnum):
    """The classic deployment stages; the values are MLflow's strings."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    def to_proto(self) -> registry_pb2.ModelStage.ValueType:
        return registry_pb2.ModelStage.Value(f"MODEL_STAGE_{self.name}")

    @classmethod
    def from_proto(cls, value: registry_pb2.ModelStage.ValueType) -> ModelStage:
        if value == registry_pb2.MODEL_STAGE_UNSPECIFIED:
            return cls.NONE
        return cls[registry_pb2.ModelStage.Name(value).removeprefix("MODEL_STAGE_")]

    @classmethod
    def parse(cls, stage: str | ModelStage, *, field: str = "stage") -> ModelStage:
        """``"production"``, ``"Production"`` or ``ModelStage.PRODUCTION``; InvalidArgument otherwise."""
        if isinstance(stage, ModelStage):
            return stage
        for member in cls:
            if member.value.lower() == str(stage).strip().lower():
                return member
        choices = ", ".join(m.value for m in cls)
        raise InvalidArgument(f"{field}: {stage!r} is not a stage; use one of {choices}", field=field)


class ModelVersionStatus(enum.StrEnum):
    """Where a version is in its registration; the values are MLflow's strings."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    READY = "READY"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"

    def to_proto(self) -> registry_pb2.ModelVersionStatus.ValueType:
        return registry_pb2.ModelVersionStatus.Value(f"MODEL_VERSION_STATUS_{self.value}")

    @classmethod
    def from_proto(cls, value: registry_pb2.ModelVersionStatus.ValueType) -> ModelVersionStatus:
        if value == registry_pb2.MODEL_VERSION_STATUS_UNSPECIFIED:
            return cls.READY
        return cls(registry_pb2.ModelVersionStatus.Name(value).removeprefix("MODEL_VERSION_STATUS_"))


def _tags_to_proto(tags: Mapping[str, str]) -> list[common_pb2.Tag]:
    return [common_pb2.Tag(key=k, value=v) for k, v in sorted(tags.items())]


def _tags_from_proto(tags: Sequence[common_pb2.Tag]) -> Mapping[str, str]:
    return MappingProxyType({t.key: t.value for t in tags})


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ModelVersion:
    """One numbered version of a registered model."""

    name: str
    version: int
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str = ""
    user_id: str = ""
    current_stage: ModelStage = ModelStage.NONE
    source: str = ""
    run_id: str = ""
    status: ModelVersionStatus = ModelVersionStatus.READY
    status_message: str = ""
    tags: Mapping[str, str] = field(default_factory=_empty)
    aliases: tuple[str, ...] = ()

    def to_proto(self) -> registry_pb2.ModelVersion:
        return registry_pb2.ModelVersion(
            name=self.name,
            version=self.version,
            create_time=millis_to_timestamp(self.creation_timestamp),
            update_time=millis_to_timestamp(self.last_updated_timestamp),
            description=self.description,
            user_id=self.user_id,
            stage=self.current_stage.to_proto(),
            source=self.source,
            run_id=self.run_id,
            status=self.status.to_proto(),
            status_message=self.status_message,
            tags=_tags_to_proto(self.tags),
            aliases=sorted(self.aliases),
        )

    @classmethod
    def from_proto(cls, msg: registry_pb2.ModelVersion) -> Self:
        return cls(
            name=msg.name,
            version=msg.version,
            creation_timestamp=timestamp_to_millis(msg.create_time, msg.HasField("create_time")),
            last_updated_timestamp=timestamp_to_millis(msg.update_time, msg.HasField("update_time")),
            description=msg.description,
            user_id=msg.user_id,
            current_stage=ModelStage.from_proto(msg.stage),
            source=msg.source,
            run_id=msg.run_id,
            status=ModelVersionStatus.from_proto(msg.status),
            status_message=msg.status_message,
            tags=_tags_from_proto(msg.tags),
            aliases=tuple(msg.aliases),
        )


@dataclass(frozen=True)
class RegisteredModel:
    """A named model with numbered versions; ``aliases`` maps alias -> version."""

    name: str
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str = ""
    latest_versions: tuple[ModelVersion, ...] = ()
    tags: Mapping[str, str] = field(default_factory=_empty)
    aliases: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def to_proto(self) -> registry_pb2.RegisteredModel:
        return registry_pb2.RegisteredModel(
            name=self.name,
            create_time=millis_to_timestamp(self.creation_timestamp),
            update_time=millis_to_timestamp(self.last_updated_timestamp),
            description=self.description,
            latest_versions=[v.to_proto() for v in self.latest_versions],
            tags=_tags_to_proto(self.tags),
            aliases=[registry_pb2.ModelAlias(alias=a, version=v) for a, v in sorted(self.aliases.items())],
        )

    @classmethod
    def from_proto(cls, msg: registry_pb2.RegisteredModel) -> Self:
        return cls(
            name=msg.name,
            creation_timestamp=timestamp_to_millis(msg.create_time, msg.HasField("create_time")),
            last_updated_timestamp=timestamp_to_millis(msg.update_time, msg.HasField("update_time")),
            description=msg.description,
            latest_versions=tuple(ModelVersion.from_proto(v) for v in msg.latest_versions),
            tags=_tags_from_proto(msg.tags),
            aliases=MappingProxyType({a.alias: a.version for a in msg.aliases}),
        )


class ModelEventKind(enum.StrEnum):
    """What a :class:`ModelEvent` records."""

    MODEL_CREATED = "model_created"
    MODEL_RENAMED = "model_renamed"
    VERSION_CREATED = "version_created"
    VERSION_DELETED = "version_deleted"
    DESCRIPTION_CHANGED = "description_changed"
    STAGE_TRANSITION = "stage_transition"
    ALIAS_SET = "alias_set"
    ALIAS_DELETED = "alias_deleted"


@dataclass(frozen=True)
class ModelEvent:
    """A recorded change: who changed what, when, from which value to which.

    ``version`` is 0 for a model-level event. For alias events ``old_value`` / ``new_value`` are
    version numbers ("" when the alias was not set / was removed); for stage transitions, stages.
    """

    name: str
    version: int
    kind: str
    alias: str = ""
    old_value: str = ""
    new_value: str = ""
    user_id: str = ""
    timestamp: int | None = None

    def to_proto(self) -> registry_pb2.ModelEvent:
        return registry_pb2.ModelEvent(
            name=self.name,
            version=self.version,
            kind=self.kind,
            alias=self.alias,
            old_value=self.old_value,
            new_value=self.new_value,
            user_id=self.user_id,
            time=millis_to_timestamp(self.timestamp),
        )

    @classmethod
    def from_proto(cls, msg: registry_pb2.ModelEvent) -> Self:
        return cls(
            name=msg.name,
            version=msg.version,
            kind=msg.kind,
            alias=msg.alias,
            old_value=msg.old_value,
            new_value=msg.new_value,
            user_id=msg.user_id,
            timestamp=timestamp_to_millis(msg.time, msg.HasField("time")),
        )
