"""Runs on SQL: create, get, and the atomic batch of params, tags and metrics."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping, Sequence

import coolname
import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracklane.entities import (
    DatasetInput,
    LifecycleStage,
    Run,
    RunInfo,
    RunStatus,
)
from tracklane.exceptions import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from tracklane.v1 import tracking_pb2
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.locations import run_artifact_uri
from tracklane_server.store.db.transactions import now_ms, transaction, upsert
from tracklane_server.store.metrics.points import Points, write_points
from tracklane_server.store.tracking.experiments import DEFAULT_EXPERIMENT_ID, ExperimentStore
from tracklane_server.store.tracking.run_changes import touch
from tracklane_server.store.tracking.run_loading import fill_runs
from tracklane_server.store.tracking.system_tags import RUN_ATTRIBUTE_TAGS, split_run_tags
from tracklane_server.store.validation import (
    BATCH_METRICS_MAX,
    BATCH_PARAMS_MAX,
    BATCH_TAGS_MAX,
    DESCRIPTION_MAX,
    PARAM_VALUE_MAX,
    RUN_NAME_MAX,
    TAG_VALUE_MAX,
    check_count,
    check_key,
    check_name,
    check_text,
)


def generate_run_name() -> str:
    """A memorable name like MLflow's: ``brave-otter-42``."""
    return f"{coolname.generate_slug(2)}-{random.randrange(1000)}"


def nan_to_null(value: float) -> float | None:
    """NaN is stored as NULL (see schema): it then compares false on both databases."""
    return None if value != value else value


class RunStore:
    """Runs, their params and tags; metric points go through metrics/points.py."""

    def __init__(self, engine: Engine, experiments: ExperimentStore) -> None:
        self.engine = engine
        self.experiments = experiments

    def create_run(
        self,
        experiment_id: str = "",
        *,
        run_name: str = "",
        start_time: int | None = None,
        tags: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        parent_run_id: str = "",
        user_id: str = "",
        description: str = "",
        status: RunStatus = RunStatus.RUNNING,
        request_id: str = "",
    ) -> Run:
        experiment_id = experiment_id or DEFAULT_EXPERIMENT_ID
        run_name = check_name(run_name, "run_name", RUN_NAME_MAX, required=False)
        check_text(description, "description", DESCRIPTION_MAX)
        if status not in (RunStatus.RUNNING, RunStatus.SCHEDULED):
            raise InvalidArgument("status: a new run is RUNNING or SCHEDULED", field="status")
        tag_rows, system = split_run_tags(_checked_tags(tags, "tags"))
        # The request's own fields win over MLflow's system tags for the same attribute.
        run_name = run_name or system.get("run_name", "")
        parent_run_id = parent_run_id or system.get("parent_run_id", "")
        user_id = user_id or system.get("user_id", "")
        description = description or system.get("description", "")
        check_text(run_name, "tags.mlflow.runName", RUN_NAME_MAX)
        check_text(description, "tags.mlflow.note.content", DESCRIPTION_MAX)
        with transaction(self.engine) as conn:
            if request_id:
                existing = conn.execute(
                    sa.select(t.runs.c.run_id).where(t.runs.c.request_id == request_id)
                ).scalar_one_or_none()
                if existing is not None:
                    return self.load_runs(conn, [existing])[0]
            experiment = self.experiments.require_active(conn, experiment_id)
            if parent_run_id:
                self._check_parent(conn, parent_run_id, str(experiment.experiment_id))
            run_id = uuid.uuid4().hex
            try:
                with conn.begin_nested():
                    conn.execute(
                        t.runs.insert().values(
                            run_id=run_id,
                            experiment_id=experiment.experiment_id,
                            run_name=run_name or generate_run_name(),
                            user_id=user_id,
                            status=status.value,
                            start_time=start_time if start_time is not None else now_ms(),
                            end_time=None,
                            lifecycle_stage=LifecycleStage.ACTIVE.value,
                            artifact_uri=run_artifact_uri(experiment.artifact_location, run_id),
                            parent_run_id=parent_run_id or None,
                            description=description,
                            request_id=request_id or None,
                            changed_ms=now_ms(),
                        )
                    )
            except sa.exc.IntegrityError as exc:  # a concurrent retry with the same request_id won
                raise AlreadyExists(
                    "a run with this request_id is being created", field="request_id"
                ) from exc
            upsert(
                conn,
                t.run_tags,
                [{"run_id": run_id, "key": k, "value": v} for k, v in tag_rows],
                keys=["run_id", "key"],
                update=["value"],
            )
            touch(conn, run_id)  # a new run: wakes the experiment's watchers on every replica
            return self.load_runs(conn, [run_id])[0]

    def get_run(self, run_id: str) -> Run:
        return Run.from_proto(self.get_run_message(run_id))

    def artifact_location(self, run_id: str) -> tuple[str, str]:
        """The run's ``artifact_uri`` and lifecycle stage. NotFound (``run_id``)."""
        with transaction(self.engine) as conn:
            row = conn.execute(
                sa.select(t.runs.c.artifact_uri, t.runs.c.lifecycle_stage).where(t.runs.c.run_id == run_id)
            ).first()
        if row is None:
            raise NotFound(f"run {run_id!r} does not exist", field="run_id")
        return str(row.artifact_uri), str(row.lifecycle_stage)

    def get_run_message(self, run_id: str) -> tracking_pb2.Run:
        """The run as GetRun sends it (metric summaries included), straight from the rows.

        Raises:
            NotFound: no such run.
        """
        messages = tracking_pb2.SearchRunsResponse().runs
        with transaction(self.engine) as conn:
            fill_runs(conn, [run_id], messages)
        if not messages:
            raise NotFound(f"run {run_id!r} does not exist", field="run_id")
        return messages[0]

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Mapping[str, Points] | None = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        tags: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    ) -> None:
        """Stores params, tags and metric points (columns per key; timestamp 0: now) in one
        transaction: all or nothing.

        Raises:
            InvalidArgument: a bad key or value (``field`` names it, e.g. ``params[2].value``), or a
                param already set to another value.
            NotFound: no such run. FailedPrecondition: the run is deleted.
        """
        metrics = metrics or {}
        param_items = list(params.items()) if isinstance(params, Mapping) else list(params)
        tag_rows, system = split_run_tags(_checked_tags(tags, "tags"))
        check_count(sum(len(points) for points in metrics.values()), BATCH_METRICS_MAX, "metrics")
        check_count(len(param_items), BATCH_PARAMS_MAX, "params")
        for i, (key, value) in enumerate(param_items):
            check_key(key, f"params[{i}].key")
            check_text(value, f"params[{i}].value", PARAM_VALUE_MAX)
        for key in metrics:
            check_key(key, "metrics.key")
        with transaction(self.engine) as conn:
            self.require_active_run(conn, run_id)
            if system:
                self._set_system_attributes(conn, run_id, system)
            self._log_params(conn, run_id, param_items)
            upsert(
                conn,
                t.run_tags,
                [{"run_id": run_id, "key": k, "value": v} for k, v in tag_rows],
                keys=["run_id", "key"],
                update=["value"],
            )
            if param_items or tag_rows:
                touch(conn, run_id)
            if metrics:
                now = now_ms()
                write_points(conn, run_id, {key: _stamped(points, now) for key, points in metrics.items()})

    def _set_system_attributes(self, conn: Connection, run_id: str, system: Mapping[str, str]) -> None:
        """MLflow's mlflow.runName / note.content / parentRunId / user tags, as the run's attributes."""
        values: dict[str, object] = {}
        if "run_name" in system:
            name = system["run_name"]
            values["run_name"] = check_text(name, "tags.mlflow.runName", RUN_NAME_MAX, required=True)
        if "description" in system:
            note = system["description"]
            values["description"] = check_text(note, "tags.mlflow.note.content", DESCRIPTION_MAX)
        row = conn.execute(
            sa.select(t.runs.c.experiment_id, t.runs.c.user_id).where(t.runs.c.run_id == run_id)
        ).one()
        if "user_id" in system and system["user_id"] != row.user_id:
            raise InvalidArgument(
                "tags.mlflow.user: is the run's creator (user_id), given when the run is created",
                field="tags",
            )
        if "parent_run_id" in system:
            parent = system["parent_run_id"]
            if parent == run_id:
                raise InvalidArgument("tags.mlflow.parentRunId: a run cannot be its own parent", field="tags")
            if parent:
                self._check_parent(conn, parent, str(row.experiment_id))
            values["parent_run_id"] = parent or None
        if values:
            conn.execute(t.runs.update().where(t.runs.c.run_id == run_id).values(**values))

    def _check_parent(self, conn: Connection, parent_run_id: str, experiment_id: str) -> None:
        parent_experiment = conn.execute(
            sa.select(t.runs.c.experiment_id).where(t.runs.c.run_id == parent_run_id)
        ).scalar_one_or_none()
        if parent_experiment is None:
            raise NotFound(f"parent run {parent_run_id!r} does not exist", field="parent_run_id")
        if str(parent_experiment) != experiment_id:
            raise InvalidArgument(
                "parent_run_id: the parent run belongs to another experiment", field="parent_run_id"
            )

    def require_run(self, conn: Connection, run_id: str) -> str:
        """The run's lifecycle stage; NotFound for an unknown run."""
        stage = conn.execute(
            sa.select(t.runs.c.lifecycle_stage).where(t.runs.c.run_id == run_id)
        ).scalar_one_or_none()
        if stage is None:
            raise NotFound(f"run {run_id!r} does not exist", field="run_id")
        return str(stage)

    def require_active_run(self, conn: Connection, run_id: str) -> None:
        """NotFound for an unknown run, FailedPrecondition for a deleted one."""
        if self.require_run(conn, run_id) != LifecycleStage.ACTIVE.value:
            raise FailedPrecondition(f"run {run_id!r} is deleted; restore it first", field="run_id")

    def _log_params(self, conn: Connection, run_id: str, items: list[tuple[str, str]]) -> None:
        if not items:
            return
        first: dict[str, tuple[int, str]] = {}
        for i, (key, value) in enumerate(items):
            if key in first and first[key][1] != value:
                raise InvalidArgument(
                    f"params[{i}].value: param {key!r} appears twice in the batch with different values",
                    field=f"params[{i}].value",
                )
            first.setdefault(key, (i, value))
        upsert(
            conn,
            t.params,
            [{"run_id": run_id, "key": k, "value": v} for k, (_, v) in first.items()],
            keys=["run_id", "key"],
            update=[],
        )
        # Compare after inserting: a concurrent writer of the same key is caught too.
        stored = conn.execute(
            sa.select(t.params.c.key, t.params.c.value).where(
                t.params.c.run_id == run_id, t.params.c.key.in_(list(first))
            )
        ).all()
        for key, value in stored:
            index, wanted = first[key]
            if value != wanted:
                raise InvalidArgument(
                    f"params[{index}].value: param {key!r} is already {value[:100]!r} for this run; "
                    "params cannot change (log a new key or use a tag)",
                    field=f"params[{index}].value",
                )

    def load_runs(self, conn: Connection, run_ids: Sequence[str]) -> list[Run]:
        """Full Run entities for ids, in the given order; unknown ids are left out."""
        messages = tracking_pb2.SearchRunsResponse().runs
        fill_runs(conn, run_ids, messages)
        return [Run.from_proto(m) for m in messages]


def _run_info(row: sa.Row[tuple[object, ...]]) -> RunInfo:
    return RunInfo(
        run_id=row.run_id,
        experiment_id=str(row.experiment_id),
        run_name=row.run_name,
        status=RunStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
        parent_run_id=row.parent_run_id or "",
        user_id=row.user_id,
        description=row.description,
    )


def _checked_tags(tags: Mapping[str, str] | Sequence[tuple[str, str]], field: str) -> list[tuple[str, str]]:
    items = list(tags.items()) if isinstance(tags, Mapping) else list(tags)
    check_count(len(items), BATCH_TAGS_MAX, field)
    for i, (key, value) in enumerate(items):
        check_key(key, f"{field}[{i}].key")
        check_text(value, f"{field}[{i}].value", TAG_VALUE_MAX)
    # The last value of a key repeated in one request wins, as with separate calls.
    return list(dict(items).items())


class RunLifecycle:
    """Status, name and lifecycle changes, tag deletion and dataset inputs of existing runs."""

    def __init__(self, engine: Engine, runs: RunStore) -> None:
        self.engine = engine
        self.runs = runs

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
        description: str | None = None,
    ) -> RunInfo:
        """Changes the given fields. A terminal status without an end time ends the run now."""
        values: dict[str, object] = {}
        if status is not None:
            values["status"] = status.value
            if status.is_terminated and end_time is None:
                end_time = now_ms()
            if not status.is_terminated:
                values["end_time"] = None  # a resumed run is running again
        if end_time is not None:
            values["end_time"] = end_time
        if run_name is not None:
            values["run_name"] = check_name(run_name, "run_name", RUN_NAME_MAX)
        if description is not None:
            values["description"] = check_text(description, "description", DESCRIPTION_MAX)
        with transaction(self.engine) as conn:
            self.runs.require_active_run(conn, run_id)
            if values:
                conn.execute(t.runs.update().where(t.runs.c.run_id == run_id).values(**values))
                touch(conn, run_id)
            return self.runs.load_runs(conn, [run_id])[0].info

    def set_lifecycle(self, run_id: str, stage: LifecycleStage) -> None:
        """Soft-deletes or restores a run (idempotent).

        Deleting a deleted run changes nothing (it keeps its deletion time, and a run its experiment
        took along still returns with the experiment). A run deleted or restored on its own is no
        longer the experiment's: restoring the experiment leaves it as it is.
        """
        deleting = stage is LifecycleStage.DELETED
        with transaction(self.engine) as conn:
            self.runs.require_run(conn, run_id)
            # The stage in the WHERE clause, not checked before: a concurrent experiment delete either
            # took this run first (then this delete is a no-op) or finds it deleted already.
            conn.execute(
                t.runs.update()
                .where(t.runs.c.run_id == run_id, t.runs.c.lifecycle_stage != stage.value)
                .values(
                    lifecycle_stage=stage.value,
                    deleted_time=now_ms() if deleting else None,
                    deleted_with_experiment=False,
                )
            )
            touch(conn, run_id)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Deletes a tag; MLflow's system tags clear their attribute where it may be empty."""
        column = RUN_ATTRIBUTE_TAGS.get(key)
        if column in ("run_name", "user_id"):
            raise InvalidArgument(f"key: {key} is the run's {column}, which cannot be removed", field="key")
        with transaction(self.engine) as conn:
            self.runs.require_active_run(conn, run_id)
            if column is not None:
                conn.execute(
                    t.runs.update()
                    .where(t.runs.c.run_id == run_id)
                    .values({column: "" if column == "description" else None})
                )
                return
            deleted = conn.execute(
                t.run_tags.delete().where(t.run_tags.c.run_id == run_id, t.run_tags.c.key == key)
            ).rowcount
            if not deleted:
                raise NotFound(f"run {run_id!r} has no tag {key!r}", field="key")
            touch(conn, run_id)

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        """Records datasets a run used; the same dataset (name, digest) and context again is a no-op."""
        check_count(len(inputs), BATCH_TAGS_MAX, "datasets")
        for i, item in enumerate(inputs):
            d = item.dataset
            check_text(d.name, f"datasets[{i}].dataset.name", RUN_NAME_MAX, required=True)
            check_text(d.digest, f"datasets[{i}].dataset.digest", 64, required=True)
            check_text(d.source_type, f"datasets[{i}].dataset.source_type", 64)
            check_text(d.source, f"datasets[{i}].dataset.source", TAG_VALUE_MAX)
            check_text(d.schema, f"datasets[{i}].dataset.schema", TAG_VALUE_MAX)
            check_text(d.profile, f"datasets[{i}].dataset.profile", TAG_VALUE_MAX)
            check_text(item.context, f"datasets[{i}].context", 64)
            _checked_tags(item.tags, f"datasets[{i}].tags")
        with transaction(self.engine) as conn:
            self.runs.require_active_run(conn, run_id)
            touch(conn, run_id)
            experiment_id = conn.execute(
                sa.select(t.runs.c.experiment_id).where(t.runs.c.run_id == run_id)
            ).scalar_one()
            position = conn.execute(
                sa.select(sa.func.count()).select_from(t.run_inputs).where(t.run_inputs.c.run_id == run_id)
            ).scalar_one()
            for item in inputs:
                d = item.dataset
                upsert(
                    conn,
                    t.datasets,
                    [
                        {
                            "dataset_id": uuid.uuid4().hex,
                            "experiment_id": experiment_id,
                            "name": d.name,
                            "digest": d.digest,
                            "source_type": d.source_type,
                            "source": d.source,
                            "schema": d.schema,
                            "profile": d.profile,
                        }
                    ],
                    keys=["experiment_id", "name", "digest"],
                    update=[],
                )
                dataset_id = conn.execute(
                    sa.select(t.datasets.c.dataset_id).where(
                        t.datasets.c.experiment_id == experiment_id,
                        t.datasets.c.name == d.name,
                        t.datasets.c.digest == d.digest,
                    )
                ).scalar_one()
                position += 1
                upsert(
                    conn,
                    t.run_inputs,
                    [
                        {
                            "run_id": run_id,
                            "dataset_id": dataset_id,
                            "context": item.context,
                            "tags": json.dumps(dict(item.tags), sort_keys=True),
                            "position": position,
                        }
                    ],
                    keys=["run_id", "dataset_id", "context"],
                    update=[],
                )


def _stamped(points: Points, now: int) -> Points:
    """Timestamp 0 means "now"."""
    unset = points.timestamps == 0
    if not unset.any():
        return points
    return Points(points.steps, points.values, np.where(unset, now, points.timestamps))
