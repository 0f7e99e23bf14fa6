"""Experiments on SQL: create, get, rename, soft delete/restore, tags."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracklane.entities import Experiment, LifecycleStage
from tracklane.exceptions import AlreadyExists, FailedPrecondition, NotFound
from tracklane_server.store import schema as t
from tracklane_server.store.locations import child_uri
from tracklane_server.store.sql_common import now_ms, transaction, upsert
from tracklane_server.store.validation import (
    DESCRIPTION_MAX,
    EXPERIMENT_NAME_MAX,
    TAG_VALUE_MAX,
    check_key,
    check_text,
)

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


def experiment_pk(experiment_id: str) -> int:
    """The integer key behind an opaque id; an id that cannot exist is simply not found."""
    if not experiment_id.isascii() or not experiment_id.isdigit() or len(experiment_id) > 18:
        raise NotFound(f"experiment {experiment_id!r} does not exist", field="experiment_id")
    return int(experiment_id)


class ExperimentStore:
    """Experiments and their tags."""

    def __init__(self, engine: Engine, default_artifact_root: str) -> None:
        self.engine = engine
        self.default_artifact_root = default_artifact_root

    def ensure_default_experiment(self) -> None:
        """Creates experiment "0" ("Default") when missing, as MLflow does."""
        with transaction(self.engine) as conn:
            if conn.execute(
                sa.select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id == 0)
            ).first():
                return
            now = now_ms()
            conn.execute(
                t.experiments.insert().values(
                    experiment_id=0,
                    name=DEFAULT_EXPERIMENT_NAME,
                    artifact_location=child_uri(self.default_artifact_root, DEFAULT_EXPERIMENT_ID),
                    lifecycle_stage=LifecycleStage.ACTIVE.value,
                    description="",
                    creation_time=now,
                    last_update_time=now,
                )
            )

    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str = "",
        tags: Mapping[str, str] | None = None,
        description: str = "",
    ) -> Experiment:
        check_text(name, "name", EXPERIMENT_NAME_MAX, required=True)
        check_text(description, "description", DESCRIPTION_MAX)
        tags = dict(tags or {})
        for i, (key, value) in enumerate(tags.items()):
            check_key(key, f"tags[{i}].key")
            check_text(value, f"tags[{i}].value", TAG_VALUE_MAX)
        now = now_ms()
        with transaction(self.engine) as conn:
            if conn.execute(
                sa.select(t.experiments.c.experiment_id).where(t.experiments.c.name == name)
            ).first():
                raise AlreadyExists(f"experiment {name!r} already exists", field="name")
            try:
                with conn.begin_nested():
                    new_id = conn.execute(
                        t.experiments.insert()
                        .values(
                            name=name,
                            artifact_location=artifact_location,
                            lifecycle_stage=LifecycleStage.ACTIVE.value,
                            description=description,
                            creation_time=now,
                            last_update_time=now,
                        )
                        .returning(t.experiments.c.experiment_id)
                    ).scalar_one()
            except sa.exc.IntegrityError as exc:  # a concurrent create of the same name won
                raise AlreadyExists(f"experiment {name!r} already exists", field="name") from exc
            if not artifact_location:
                conn.execute(
                    t.experiments.update()
                    .where(t.experiments.c.experiment_id == new_id)
                    .values(artifact_location=child_uri(self.default_artifact_root, str(new_id)))
                )
            upsert(
                conn,
                t.experiment_tags,
                [{"experiment_id": new_id, "key": k, "value": v} for k, v in tags.items()],
                keys=["experiment_id", "key"],
                update=["value"],
            )
            return self._load(conn, new_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        pk = experiment_pk(experiment_id)
        with transaction(self.engine) as conn:
            return self._load(conn, pk)

    def get_experiment_by_name(self, name: str) -> Experiment:
        with transaction(self.engine) as conn:
            pk = conn.execute(
                sa.select(t.experiments.c.experiment_id).where(t.experiments.c.name == name)
            ).scalar_one_or_none()
            if pk is None:
                raise NotFound(f"experiment {name!r} does not exist", field="name")
            return self._load(conn, pk)

    def require_active(self, conn: Connection, experiment_id: str) -> sa.Row[tuple[int, str]]:
        """The experiment's (pk, artifact_location); FailedPrecondition if it is deleted."""
        pk = experiment_pk(experiment_id)
        row = conn.execute(
            sa.select(
                t.experiments.c.experiment_id,
                t.experiments.c.artifact_location,
                t.experiments.c.lifecycle_stage,
            ).where(t.experiments.c.experiment_id == pk)
        ).first()
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} does not exist", field="experiment_id")
        if row.lifecycle_stage != LifecycleStage.ACTIVE.value:
            raise FailedPrecondition(
                f"experiment {experiment_id!r} is deleted; restore it first", field="experiment_id"
            )
        return row  # type: ignore[return-value]

    def _load(self, conn: Connection, pk: int) -> Experiment:
        row = conn.execute(sa.select(t.experiments).where(t.experiments.c.experiment_id == pk)).first()
        if row is None:
            raise NotFound(f"experiment '{pk}' does not exist", field="experiment_id")
        tags = conn.execute(
            sa.select(t.experiment_tags.c.key, t.experiment_tags.c.value).where(
                t.experiment_tags.c.experiment_id == pk
            )
        ).all()
        return Experiment(
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_location=row.artifact_location,
            lifecycle_stage=LifecycleStage(row.lifecycle_stage),
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
            tags=MappingProxyType(dict(sorted((r.key, r.value) for r in tags))),
            description=row.description,
        )
