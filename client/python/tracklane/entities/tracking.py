"""Tracking entities: experiments, runs and their metrics, params, tags and dataset inputs.

Times are epoch milliseconds (``int``), as in MLflow; ``None`` where unset. Each entity converts
to and from its ``tracklane.v1`` message here, and only here.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Self

import numpy as np
from google.protobuf import timestamp_pb2

from tracklane.v1 import common_pb2, tracking_pb2

__all__ = [
    "Dataset",
    "DatasetInput",
    "Experiment",
    "LifecycleStage",
    "Metric",
    "MetricSeries",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunStatus",
    "RunTag",
    "ViewType",
]


class RunStatus(enum.StrEnum):
    """Where a run is in its life; the values are MLflow's strings."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminated(self) -> bool:
        """True for FINISHED, FAILED and KILLED."""
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)

    def to_proto(self) -> tracking_pb2.RunStatus.ValueType:
        return _RUN_STATUS_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: tracking_pb2.RunStatus.ValueType) -> RunStatus:
        return _RUN_STATUS_FROM_PROTO[value]


class LifecycleStage(enum.StrEnum):
    """Live or in the trash; the values are MLflow's strings."""

    ACTIVE = "active"
    DELETED = "deleted"

    def to_proto(self) -> common_pb2.LifecycleStage.ValueType:
        return _STAGE_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: common_pb2.LifecycleStage.ValueType) -> LifecycleStage:
        return _STAGE_FROM_PROTO[value]


class ViewType(enum.StrEnum):
    """Which lifecycle stages a search returns."""

    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"

    def to_proto(self) -> common_pb2.ViewType.ValueType:
        return common_pb2.ViewType.Value(f"VIEW_TYPE_{self.value}")

    @classmethod
    def from_proto(cls, value: common_pb2.ViewType.ValueType) -> ViewType:
        if value == common_pb2.VIEW_TYPE_UNSPECIFIED:
            return cls.ACTIVE_ONLY
        return cls(common_pb2.ViewType.Name(value).removeprefix("VIEW_TYPE_"))


# Enum conversions run once per run in every listing: lookups, not name formatting.
_RUN_STATUS_TO_PROTO = {s: tracking_pb2.RunStatus.Value(f"RUN_STATUS_{s.value}") for s in RunStatus}
_RUN_STATUS_FROM_PROTO = {v: s for s, v in _RUN_STATUS_TO_PROTO.items()}
_STAGE_TO_PROTO = {s: common_pb2.LifecycleStage.Value(f"LIFECYCLE_STAGE_{s.name}") for s in LifecycleStage}
_STAGE_FROM_PROTO = {v: s for s, v in _STAGE_TO_PROTO.items()}


def millis_to_timestamp(ms: int | None) -> timestamp_pb2.Timestamp | None:
    """Epoch millis to a Timestamp (None stays unset)."""
    if ms is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def timestamp_to_millis(ts: timestamp_pb2.Timestamp, present: bool = True) -> int | None:
    """A Timestamp to epoch millis; None when the field was not set."""
    return ts.ToMilliseconds() if present else None


def _tags_from_proto(tags: Sequence[common_pb2.Tag]) -> Mapping[str, str]:
    return MappingProxyType({t.key: t.value for t in tags})


def _tags_to_proto(tags: Mapping[str, str]) -> list[common_pb2.Tag]:
    return [common_pb2.Tag(key=k, value=v) for k, v in sorted(tags.items())]


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    creation_time: int | None = None
    last_update_time: int | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""

    def to_proto(self) -> tracking_pb2.Experiment:
        return tracking_pb2.Experiment(
            experiment_id=self.experiment_id,
            name=self.name,
            artifact_location=self.artifact_location,
            lifecycle_stage=self.lifecycle_stage.to_proto(),
            create_time=millis_to_timestamp(self.creation_time),
            update_time=millis_to_timestamp(self.last_update_time),
            tags=_tags_to_proto(self.tags),
            description=self.description,
        )

    @classmethod
    def from_proto(cls, msg: tracking_pb2.Experiment) -> Self:
        return cls(
            experiment_id=msg.experiment_id,
            name=msg.name,
            artifact_location=msg.artifact_location,
            lifecycle_stage=LifecycleStage.from_proto(msg.lifecycle_stage),
            creation_time=timestamp_to_millis(msg.create_time, msg.HasField("create_time")),
            last_update_time=timestamp_to_millis(msg.update_time, msg.HasField("update_time")),
            tags=_tags_from_proto(msg.tags),
            description=msg.description,
        )


@dataclass(frozen=True)
class Metric:
    """One metric point. ``value`` may be NaN or infinite."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0

    def to_proto(self) -> tracking_pb2.Metric:
        return tracking_pb2.Metric(
            key=self.key, value=self.value, step=self.step, timestamp_ms=self.timestamp
        )

    @classmethod
    def from_proto(cls, msg: tracking_pb2.Metric) -> Self:
        return cls(key=msg.key, value=msg.value, step=msg.step, timestamp=msg.timestamp_ms)

    def __eq__(self, other: object) -> bool:
        # NaN == NaN here: a stored NaN must compare equal to the NaN that was logged.
        if not isinstance(other, Metric):
            return NotImplemented
        same_value = self.value == other.value or (math.isnan(self.value) and math.isnan(other.value))
        return same_value and (self.key, self.step, self.timestamp) == (
            other.key,
            other.step,
            other.timestamp,
        )

    def __hash__(self) -> int:
        return hash((self.key, self.step, self.timestamp))


@dataclass(frozen=True)
class Param:
    """A hyperparameter; set once per run."""

    key: str
    value: str

    def to_proto(self) -> tracking_pb2.Param:
        return tracking_pb2.Param(key=self.key, value=self.value)


@dataclass(frozen=True)
class RunTag:
    """A mutable key/value label on a run."""

    key: str
    value: str

    def to_proto(self) -> common_pb2.Tag:
        return common_pb2.Tag(key=self.key, value=self.value)


@dataclass(frozen=True)
class Dataset:
    """A dataset's identity (name + digest) and description."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str = ""
    profile: str = ""

    def to_proto(self) -> tracking_pb2.Dataset:
        return tracking_pb2.Dataset(
            name=self.name,
            digest=self.digest,
            source_type=self.source_type,
            source=self.source,
            schema=self.schema,
            profile=self.profile,
        )

    @classmethod
    def from_proto(cls, msg: tracking_pb2.Dataset) -> Self:
        return cls(msg.name, msg.digest, msg.source_type, msg.source, msg.schema, msg.profile)


@dataclass(frozen=True)
class DatasetInput:
    """A dataset as used by one run, with its context (``training``, ``validation``...)."""

    dataset: Dataset
    context: str = ""
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_proto(self) -> tracking_pb2.DatasetInput:
        return tracking_pb2.DatasetInput(
            dataset=self.dataset.to_proto(), context=self.context, tags=_tags_to_proto(self.tags)
        )

    @classmethod
    def from_proto(cls, msg: tracking_pb2.DatasetInput) -> Self:
        return cls(Dataset.from_proto(msg.dataset), msg.context, _tags_from_proto(msg.tags))


@dataclass(frozen=True)
class RunInfo:
    """A run's identity and lifecycle."""

    run_id: str
    experiment_id: str
    run_name: str
    status: RunStatus
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    parent_run_id: str = ""
    user_id: str = ""
    description: str = ""

    def to_proto(self) -> tracking_pb2.RunInfo:
        msg = tracking_pb2.RunInfo()
        self.fill_proto(msg)
        return msg

    def fill_proto(self, msg: tracking_pb2.RunInfo) -> None:
        """Sets the fields of ``msg`` in place (a listing fills each run's message without copies)."""
        msg.run_id = self.run_id
        msg.experiment_id = self.experiment_id
        msg.run_name = self.run_name
        msg.status = _RUN_STATUS_TO_PROTO[self.status]
        if self.start_time is not None:
            msg.start_time.FromMilliseconds(self.start_time)
        if self.end_time is not None:
            msg.end_time.FromMilliseconds(self.end_time)
        msg.artifact_uri = self.artifact_uri
        msg.lifecycle_stage = _STAGE_TO_PROTO[self.lifecycle_stage]
        msg.parent_run_id = self.parent_run_id
        msg.user_id = self.user_id
        msg.description = self.description

    @classmethod
    def from_proto(cls, msg: tracking_pb2.RunInfo) -> Self:
        return cls(
            run_id=msg.run_id,
            experiment_id=msg.experiment_id,
            run_name=msg.run_name,
            status=_RUN_STATUS_FROM_PROTO[msg.status],
            start_time=msg.start_time.ToMilliseconds() if msg.HasField("start_time") else None,
            end_time=msg.end_time.ToMilliseconds() if msg.HasField("end_time") else None,
            artifact_uri=msg.artifact_uri,
            lifecycle_stage=_STAGE_FROM_PROTO[msg.lifecycle_stage],
            parent_run_id=msg.parent_run_id,
            user_id=msg.user_id,
            description=msg.description,
        )


class _LatestMetrics(Mapping[str, "Metric"]):
    """Read-only key -> Metric, decoded from the message on first use: a listing of 1,000 runs
    builds no Metric object nobody asks for."""

    __slots__ = ("_decoded", "_messages")

    def __init__(self, messages: Sequence[tracking_pb2.Metric]) -> None:
        self._messages = messages
        self._decoded: dict[str, Metric] | None = None

    def _items(self) -> dict[str, Metric]:
        if self._decoded is None:
            self._decoded = {m.key: Metric(m.key, m.value, m.step, m.timestamp_ms) for m in self._messages}
        return self._decoded

    def __getitem__(self, key: str) -> Metric:
        return self._items()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._messages)

    def __repr__(self) -> str:
        return repr(self._items())


@dataclass(frozen=True)
class RunData:
    """A run's params and tags, and the latest value of each metric.

    ``metrics`` maps key to the latest value, as in MLflow; ``latest_metrics`` keeps step and time.
    """

    latest_metrics: Mapping[str, Metric] = field(default_factory=lambda: MappingProxyType({}))
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def metrics(self) -> dict[str, float]:
        """Key -> latest value, a plain dict as in MLflow."""
        return {k: m.value for k, m in self.latest_metrics.items()}

    def to_proto(self) -> tracking_pb2.RunData:
        msg = tracking_pb2.RunData()
        self.fill_proto(msg)
        return msg

    def fill_proto(self, msg: tracking_pb2.RunData) -> None:
        """Adds the points, params and tags to ``msg``, sorted by key (``add`` beats building lists)."""
        add_metric = msg.metrics.add
        latest = self.latest_metrics
        for key in sorted(latest):
            m = latest[key]
            add_metric(key=m.key, value=m.value, step=m.step, timestamp_ms=m.timestamp)
        add_param = msg.params.add
        for key, value in sorted(self.params.items()):
            add_param(key=key, value=value)
        add_tag = msg.tags.add
        for key, value in sorted(self.tags.items()):
            add_tag(key=key, value=value)

    @classmethod
    def from_proto(cls, msg: tracking_pb2.RunData) -> Self:
        return cls(
            latest_metrics=_LatestMetrics(msg.metrics),
            params=MappingProxyType({p.key: p.value for p in msg.params}),
            tags=_tags_from_proto(msg.tags),
        )


@dataclass(frozen=True)
class RunInputs:
    """The datasets a run used, in the order they were logged."""

    dataset_inputs: tuple[DatasetInput, ...] = ()

    def to_proto(self) -> tracking_pb2.RunInputs:
        return tracking_pb2.RunInputs(dataset_inputs=[d.to_proto() for d in self.dataset_inputs])

    @classmethod
    def from_proto(cls, msg: tracking_pb2.RunInputs) -> Self:
        return cls(tuple(DatasetInput.from_proto(d) for d in msg.dataset_inputs))


@dataclass(frozen=True)
class Run:
    """A run: ``info`` (identity, status), ``data`` (params, tags, metrics), ``inputs`` (datasets)."""

    info: RunInfo
    data: RunData = field(default_factory=RunData)
    inputs: RunInputs = field(default_factory=RunInputs)

    def to_proto(self) -> tracking_pb2.Run:
        msg = tracking_pb2.Run()
        self.fill_proto(msg)
        return msg

    def fill_proto(self, msg: tracking_pb2.Run) -> None:
        """Sets the fields of ``msg`` in place."""
        self.info.fill_proto(msg.info)
        self.data.fill_proto(msg.data)
        if self.inputs.dataset_inputs:
            msg.inputs.dataset_inputs.extend(d.to_proto() for d in self.inputs.dataset_inputs)

    @classmethod
    def from_proto(cls, msg: tracking_pb2.Run) -> Self:
        return cls(
            RunInfo.from_proto(msg.info), RunData.from_proto(msg.data), RunInputs.from_proto(msg.inputs)
        )


@dataclass(frozen=True)
class MetricSeries:
    """One metric's points as columns, in step order."""

    run_id: str
    key: str
    steps: Sequence[int]
    values: Sequence[float]
    timestamps: Sequence[int]

    def __len__(self) -> int:
        return len(self.steps)

    def to_metrics(self) -> list[Metric]:
        """The points as Metric objects."""
        return [
            Metric(self.key, v, s, t)
            for s, v, t in zip(self.steps, self.values, self.timestamps, strict=True)
        ]

    @classmethod
    def from_proto(cls, msg: tracking_pb2.MetricSeries) -> Self:
        # Through numpy, which reads the packed columns in C: list() makes them one element at a time.
        return cls(
            msg.run_id,
            msg.key,
            np.asarray(msg.steps, np.int64).tolist(),
            np.asarray(msg.values, np.float64).tolist(),
            np.asarray(msg.timestamps_ms, np.int64).tolist(),
        )
