"""Promotion in the registry: stages (with archive-existing) and aliases, each change recorded."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from tracklane.entities.model_registry import ModelEventKind, ModelStage, ModelVersion
from tracklane.exceptions import InvalidArgument, NotFound
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.transactions import now_ms, transaction, upsert
from tracklane_server.store.registry import read
from tracklane_server.store.registry.base import RegistryBase
from tracklane_server.store.registry.base import record as _record
from tracklane_server.store.registry.checks import ARCHIVING_STAGES, check_alias, check_version, require_ready

_versions, _aliases = t.model_versions, t.model_aliases


class PromotionMixin(RegistryBase):
    """Stage transitions, latest versions per stage, aliases."""

    # -- stages ---------------------------------------------------------------------------------------

    def transition_model_version_stage(
        self,
        name: str,
        version: int,
        stage: ModelStage,
        *,
        archive_existing_versions: bool = False,
        user: str = "",
    ) -> ModelVersion:
        """Moves a version to ``stage``; with ``archive_existing_versions`` (Staging and Production
        only) the other versions in that stage move to Archived, each change recorded."""
        check_version(version)
        if archive_existing_versions and stage not in ARCHIVING_STAGES:
            raise InvalidArgument(
                f"archive_existing_versions: only for Staging or Production, not {stage.value}",
                field="archive_existing_versions",
            )
        now = now_ms()
        with self._write() as conn:
            model = self._lock(conn, name, now)
            row = read.version_row(conn, model.model_id, name, version)
            require_ready(row, name)
            if archive_existing_versions:
                archived = conn.execute(
                    _versions.update()
                    .where(
                        _versions.c.model_id == model.model_id,
                        _versions.c.stage == stage.value,
                        _versions.c.version_id != row.version_id,
                    )
                    .values(stage=ModelStage.ARCHIVED.value, update_time=now)
                    .returning(_versions.c.version)
                ).scalars()
                for other in sorted(archived):
                    _record(
                        conn,
                        model.model_id,
                        user,
                        now,
                        ModelEventKind.STAGE_TRANSITION,
                        version=other,
                        old=stage.value,
                        new=ModelStage.ARCHIVED.value,
                    )
            if row.stage != stage.value:
                conn.execute(
                    _versions.update()
                    .where(_versions.c.version_id == row.version_id)
                    .values(stage=stage.value, update_time=now)
                )
                _record(
                    conn,
                    model.model_id,
                    user,
                    now,
                    ModelEventKind.STAGE_TRANSITION,
                    version=version,
                    old=row.stage,
                    new=stage.value,
                )
            return read.load_version(conn, row.version_id)

    def get_latest_versions(self, name: str, stages: Sequence[ModelStage] = ()) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (every stage when empty) that has one."""
        with transaction(self.engine) as conn:
            model = read.model_row(conn, name)
            ids = read.latest_version_ids(conn, [model.model_id], stages).get(model.model_id, [])
            return read.load_versions(conn, ids)

    # -- aliases --------------------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: int, *, user: str = "") -> None:
        """Points ``alias`` at ``version`` (one upsert: it moves atomically) and records the move."""
        check_alias(alias)
        check_version(version)
        now = now_ms()
        with self._write() as conn:
            model = self._lock(conn, name, now)
            row = read.version_row(conn, model.model_id, name, version)
            require_ready(row, name)
            previous = conn.execute(
                sa.select(_versions.c.version)
                .join(_aliases, _aliases.c.version_id == _versions.c.version_id)
                .where(_aliases.c.model_id == model.model_id, _aliases.c.alias == alias)
            ).scalar_one_or_none()
            if previous == version:
                return
            upsert(
                conn,
                _aliases,
                [{"model_id": model.model_id, "alias": alias, "version_id": row.version_id}],
                keys=["model_id", "alias"],
                update=["version_id"],
            )
            _record(
                conn,
                model.model_id,
                user,
                now,
                ModelEventKind.ALIAS_SET,
                version=version,
                alias=alias,
                old="" if previous is None else str(previous),
                new=str(version),
            )

    def delete_registered_model_alias(self, name: str, alias: str, *, user: str = "") -> None:
        check_alias(alias)
        now = now_ms()
        with self._write() as conn:
            model = self._lock(conn, name, now)
            previous = conn.execute(
                sa.select(_versions.c.version)
                .join(_aliases, _aliases.c.version_id == _versions.c.version_id)
                .where(_aliases.c.model_id == model.model_id, _aliases.c.alias == alias)
            ).scalar_one_or_none()
            if previous is None:
                raise NotFound(f"registered model {name!r} has no alias {alias!r}", field="alias")
            conn.execute(
                _aliases.delete().where(_aliases.c.model_id == model.model_id, _aliases.c.alias == alias)
            )
            _record(
                conn,
                model.model_id,
                user,
                now,
                ModelEventKind.ALIAS_DELETED,
                version=previous,
                alias=alias,
                old=str(previous),
            )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        check_alias(alias)
        with transaction(self.engine) as conn:
            model = read.model_row(conn, name)
            version_id = conn.execute(
                sa.select(_aliases.c.version_id).where(
                    _aliases.c.model_id == model.model_id, _aliases.c.alias == alias
                )
            ).scalar_one_or_none()
            if version_id is None:
                raise NotFound(f"registered model {name!r} has no alias {alias!r}", field="alias")
            return read.load_version(conn, version_id)
