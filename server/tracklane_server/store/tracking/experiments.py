"""Experiments on SQL: create, get, rename, soft delete/restore, tags."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracklane.entities import Experiment, LifecycleStage, ViewType
from tracklane.exceptions import AlreadyExists, FailedPrecondition, NotFound
from tracklane_server.store.access import grant_creator
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.locations import child_uri
from tracklane_server.store.db.transactions import experiment_pk, now_ms, transaction, upsert
from tracklane_server.store.tracking.search import search_experiment_ids
from tracklane_server.store.tracking.system_tags import EXPERIMENT_NOTE
from tracklane_server.store.validation import (
    DESCRIPTION_MAX,
    EXPERIMENT_NAME_MAX,
    TAG_VALUE_MAX,
    check_key,
    check_name,
    check_text,
)
from tracklane_server.store.validation import page_size as check_page_size

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


class ExperimentStore:
    """Experiments and their tags."""

    def __init__(self, engine: Engine, default_artifact_root: str) -> None:
        self.engine = engine
        self.default_artifact_root = default_artifact_root

    def ensure_default_experiment(self) -> None:
        """Creates experiment "0" ("Default") when missing, as MLflow does. Workers starting together
        may race to create it: the one that loses finds it made."""
        with contextlib.suppress(sa.exc.IntegrityError):
            self._insert_default_experiment()

    def _insert_default_experiment(self) -> None:
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
        name = check_name(name, "name", EXPERIMENT_NAME_MAX)
        tags = dict(tags or {})
        # MLflow's description tag is the description (see system_tags); the field wins.
        description = description or tags.get(EXPERIMENT_NOTE, "")
        tags.pop(EXPERIMENT_NOTE, None)
        check_text(description, "description", DESCRIPTION_MAX)
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
            grant_creator(conn, experiment_id=new_id)  # MANAGE for whoever creates it
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
        """The experiment's (pk, artifact_location), locked against a concurrent delete until the
        transaction ends; FailedPrecondition if it is deleted."""
        pk = experiment_pk(experiment_id)
        row = conn.execute(
            sa.select(
                t.experiments.c.experiment_id,
                t.experiments.c.artifact_location,
                t.experiments.c.lifecycle_stage,
            )
            .where(t.experiments.c.experiment_id == pk)
            # FOR SHARE (PostgreSQL; SQLite has one writer anyway): a run created while the experiment
            # is being deleted waits for that delete and is refused, instead of staying live in it.
            .with_for_update(read=True)
        ).first()
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} does not exist", field="experiment_id")
        if row.lifecycle_stage != LifecycleStage.ACTIVE.value:
            raise FailedPrecondition(
                f"experiment {experiment_id!r} is deleted; restore it first", field="experiment_id"
            )
        return row  # type: ignore[return-value]

    def _load(self, conn: Connection, pk: int) -> Experiment:
        found = self.load_experiments(conn, [pk])
        if not found:
            raise NotFound(f"experiment '{pk}' does not exist", field="experiment_id")
        return found[0]

    def load_experiments(self, conn: Connection, pks: Sequence[int]) -> list[Experiment]:
        """Experiments with their tags, in the given order (two queries in all)."""
        if not pks:
            return []
        rows = {
            r.experiment_id: r
            for r in conn.execute(sa.select(t.experiments).where(t.experiments.c.experiment_id.in_(pks)))
        }
        tags: dict[int, dict[str, str]] = {pk: {} for pk in pks}
        for r in conn.execute(sa.select(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(pks))):
            tags[r.experiment_id][r.key] = r.value
        return [
            Experiment(
                experiment_id=str(row.experiment_id),
                name=row.name,
                artifact_location=row.artifact_location,
                lifecycle_stage=LifecycleStage(row.lifecycle_stage),
                creation_time=row.creation_time,
                last_update_time=row.last_update_time,
                tags=MappingProxyType(dict(sorted(_with_note(tags[pk], row.description).items()))),
                description=row.description,
            )
            for pk in pks
            if (row := rows.get(pk)) is not None
        ]

    def search_experiments(
        self,
        *,
        filter_text: str = "",
        order_by: Sequence[str] = (),
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[Experiment], str]:
        """One page of experiments matching ``filter_text`` and the next page's token."""
        with transaction(self.engine) as conn:
            pks, token = search_experiment_ids(
                conn,
                filter_text=filter_text,
                order_by=order_by,
                view_type=view_type,
                page_size=check_page_size(page_size),
                page_token=page_token,
            )
            return self.load_experiments(conn, pks), token

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment:
        """Renames an experiment or changes its description. AlreadyExists if the name is taken."""
        pk = experiment_pk(experiment_id)
        values: dict[str, object] = {"last_update_time": now_ms()}
        if name is not None:
            values["name"] = name = check_name(name, "name", EXPERIMENT_NAME_MAX)
        if description is not None:
            values["description"] = check_text(description, "description", DESCRIPTION_MAX)
        with transaction(self.engine) as conn:
            if self._load(conn, pk).lifecycle_stage is not LifecycleStage.ACTIVE:
                # As MLflow: a deleted experiment is read-only until restored.
                raise FailedPrecondition(f"experiment {experiment_id!r} is deleted; restore it first")
            if (
                name is not None
                and conn.execute(
                    sa.select(t.experiments.c.experiment_id).where(
                        t.experiments.c.name == name, t.experiments.c.experiment_id != pk
                    )
                ).first()
            ):
                raise AlreadyExists(f"experiment {name!r} already exists", field="name")
            try:
                with conn.begin_nested():
                    conn.execute(
                        t.experiments.update().where(t.experiments.c.experiment_id == pk).values(**values)
                    )
            except sa.exc.IntegrityError as exc:
                raise AlreadyExists(f"experiment {name!r} already exists", field="name") from exc
            return self._load(conn, pk)

    def set_lifecycle(self, experiment_id: str, stage: LifecycleStage) -> None:
        """Soft-deletes an experiment with its live runs, or restores it with the runs deleted with it.

        Runs deleted on their own (before, after or in the same millisecond) stay deleted: the runs
        the experiment's delete took along carry ``deleted_with_experiment``, and only those return.
        """
        pk = experiment_pk(experiment_id)
        if pk == 0 and stage is LifecycleStage.DELETED:
            raise FailedPrecondition("the default experiment cannot be deleted", field="experiment_id")
        now = now_ms()
        deleting = stage is LifecycleStage.DELETED
        with transaction(self.engine) as conn:
            self._load(conn, pk)  # NotFound first
            # Conditional, so of two concurrent deletes (or restores) one does the work and the other
            # waits for its row lock and then finds nothing to do.
            changed = conn.execute(
                t.experiments.update()
                .where(t.experiments.c.experiment_id == pk, t.experiments.c.lifecycle_stage != stage.value)
                .values(lifecycle_stage=stage.value, last_update_time=now)
            ).rowcount
            if not changed:
                return
            runs = t.runs.update().where(t.runs.c.experiment_id == pk)
            if deleting:
                runs = runs.where(t.runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value).values(
                    lifecycle_stage=stage.value, deleted_time=now, deleted_with_experiment=True
                )
            else:
                runs = runs.where(
                    t.runs.c.lifecycle_stage == LifecycleStage.DELETED.value,
                    t.runs.c.deleted_with_experiment.is_(True),
                ).values(lifecycle_stage=stage.value, deleted_time=None, deleted_with_experiment=False)
            conn.execute(runs)

    def set_tag(self, experiment_id: str, key: str, value: str) -> None:
        pk = experiment_pk(experiment_id)
        check_key(key, "tag.key")
        check_text(value, "tag.value", TAG_VALUE_MAX)
        if key == EXPERIMENT_NOTE:
            self.update_experiment(experiment_id, description=value)
            return
        with transaction(self.engine) as conn:
            self._load(conn, pk)
            upsert(
                conn,
                t.experiment_tags,
                [{"experiment_id": pk, "key": key, "value": value}],
                keys=["experiment_id", "key"],
                update=["value"],
            )

    def delete_tag(self, experiment_id: str, key: str) -> None:
        pk = experiment_pk(experiment_id)
        if key == EXPERIMENT_NOTE:
            self.update_experiment(experiment_id, description="")
            return
        with transaction(self.engine) as conn:
            self._load(conn, pk)
            deleted = conn.execute(
                t.experiment_tags.delete().where(
                    t.experiment_tags.c.experiment_id == pk, t.experiment_tags.c.key == key
                )
            ).rowcount
            if not deleted:
                raise NotFound(f"experiment {experiment_id!r} has no tag {key!r}", field="key")


def _with_note(tags: dict[str, str], description: str) -> dict[str, str]:
    """The tags as MLflow shows them: the description is also ``mlflow.note.content``."""
    return {**tags, EXPERIMENT_NOTE: description} if description else tags
