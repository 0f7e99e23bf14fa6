"""The model registry on SQL: registered models, numbered versions, tags, copies and history.

Stages and aliases are in :mod:`promotion`; every change runs in a transaction that
first locks the model's row (:mod:`base`), so changes to one model are serialised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklane.entities.model_registry import (
    ModelEvent,
    ModelEventKind,
    ModelStage,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from tracklane.exceptions import AlreadyExists, InvalidArgument, NotFound
from tracklane_server.store.access import grant_creator
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.locations import child_uri
from tracklane_server.store.db.transactions import insert_for, now_ms, transaction, upsert
from tracklane_server.store.registry import read
from tracklane_server.store.registry.base import record as _record
from tracklane_server.store.registry.checks import (
    SOURCE_MAX,
    active_run_artifact_uri,
    check_model_name,
    check_tags,
    check_version,
    require_ready,
    split_source,
)
from tracklane_server.store.registry.promotion import PromotionMixin
from tracklane_server.store.validation import (
    DESCRIPTION_MAX,
    REQUEST_ID_MAX,
    TAG_VALUE_MAX,
    check_key,
    check_text,
)
from tracklane_server.store.validation import page_size as check_page_size

_models, _versions, _aliases = t.registered_models, t.model_versions, t.model_aliases


class _Replayed(Exception):
    """Leaves a CreateModelVersion transaction, rolling back its counter bump, with the version an
    earlier call with the same request_id created."""

    def __init__(self, version: ModelVersion) -> None:
        super().__init__(version.version)
        self.version = version


class RegistryStore(PromotionMixin):
    """Registered models and their versions, aliases, stages, tags and history."""

    # -- registered models ----------------------------------------------------------------------------

    def create_registered_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None, user: str = ""
    ) -> RegisteredModel:
        name = check_model_name(name)
        check_text(description, "description", DESCRIPTION_MAX)
        tags = dict(tags or {})
        check_tags(tags, "tags")
        now = now_ms()
        with self._write(exists=f"registered model {name!r} already exists") as conn:
            model_id = self._insert_model(conn, name, description, now, user)
            if model_id is None:
                raise AlreadyExists(f"registered model {name!r} already exists", field="name")
            self._upsert_model_tags(conn, model_id, tags)
            return read.load_model(conn, model_id)

    def _insert_model(self, conn: Connection, name: str, description: str, now: int, user: str) -> int | None:
        """Inserts a model unless the name is taken (then None); the first write of its transaction."""
        model_id = conn.execute(
            insert_for(conn, _models)
            .values(name=name, description=description, create_time=now, update_time=now, last_version=0)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(_models.c.model_id)
        ).scalar_one_or_none()
        if model_id is not None:
            _record(conn, model_id, user, now, ModelEventKind.MODEL_CREATED, new=name)
            grant_creator(conn, model_id=model_id)  # MANAGE for whoever creates it (also by copy)
        return model_id

    @staticmethod
    def _upsert_model_tags(conn: Connection, model_id: int, tags: Mapping[str, str]) -> None:
        upsert(
            conn,
            t.registered_model_tags,
            [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()],
            keys=["model_id", "key"],
            update=["value"],
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        with transaction(self.engine) as conn:
            return read.load_model(conn, read.model_row(conn, name).model_id)

    def search_registered_models(
        self, *, filter_text: str = "", order_by: Sequence[str] = (), page_size: int = 0, page_token: str = ""
    ) -> tuple[list[RegisteredModel], str]:
        size = check_page_size(page_size)
        with transaction(self.engine) as conn:
            return read.search_models(
                conn, filter_text=filter_text, order_by=order_by, page_size=size, page_token=page_token
            )

    def rename_registered_model(self, name: str, new_name: str, *, user: str = "") -> RegisteredModel:
        new_name = check_model_name(new_name, "new_name")
        now = now_ms()
        taken = f"registered model {new_name!r} already exists"
        with self._write(exists=taken, field="new_name") as conn:
            model = self._lock(conn, name, now)
            if new_name == name:
                return read.load_model(conn, model.model_id)
            if conn.execute(sa.select(_models.c.model_id).where(_models.c.name == new_name)).first():
                raise AlreadyExists(taken, field="new_name")
            conn.execute(_models.update().where(_models.c.model_id == model.model_id).values(name=new_name))
            _record(conn, model.model_id, user, now, ModelEventKind.MODEL_RENAMED, old=name, new=new_name)
            return read.load_model(conn, model.model_id)

    def update_registered_model(self, name: str, *, description: str, user: str = "") -> RegisteredModel:
        check_text(description, "description", DESCRIPTION_MAX)
        now = now_ms()
        with self._write() as conn:
            model = self._lock(conn, name, now)
            if description != model.description:
                conn.execute(
                    _models.update()
                    .where(_models.c.model_id == model.model_id)
                    .values(description=description)
                )
                _record(
                    conn,
                    model.model_id,
                    user,
                    now,
                    ModelEventKind.DESCRIPTION_CHANGED,
                    old=model.description,
                    new=description,
                )
            return read.load_model(conn, model.model_id)

    def delete_registered_model(self, name: str) -> None:
        """Deletes the model with its versions, tags, aliases and history (foreign keys cascade)."""
        if not name:
            raise InvalidArgument("name: give a registered model name", field="name")
        with transaction(self.engine) as conn:
            if conn.execute(_models.delete().where(_models.c.name == name)).rowcount == 0:
                raise NotFound(f"registered model {name!r} does not exist", field="name")

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        check_key(key, "tag.key")
        check_text(value, "tag.value", TAG_VALUE_MAX)
        with self._write() as conn:
            model = self._lock(conn, name, now_ms())
            self._upsert_model_tags(conn, model.model_id, {key: value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        tags = t.registered_model_tags
        with self._write() as conn:
            model = self._lock(conn, name, now_ms())
            deleted = conn.execute(
                tags.delete().where(tags.c.model_id == model.model_id, tags.c.key == key)
            ).rowcount
            if not deleted:
                raise NotFound(f"registered model {name!r} has no tag {key!r}", field="key")

    # -- versions -------------------------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        *,
        run_id: str = "",
        description: str = "",
        tags: Mapping[str, str] | None = None,
        user: str = "",
        request_id: str = "",
    ) -> ModelVersion:
        """Registers the next version of ``name`` from ``source``; ``runs:/`` sources are resolved
        against the run's artifact location, which the download URI then gives.

        With a ``request_id`` (AIP-155), a retry returns the version that id created, unchanged.
        """
        check_text(source, "source", SOURCE_MAX, required=True)
        check_text(description, "description", DESCRIPTION_MAX)
        check_text(request_id, "request_id", REQUEST_ID_MAX)
        tags = dict(tags or {})
        check_tags(tags, "tags")
        run_id, run_path = split_source(source, run_id)
        now = now_ms()
        try:
            with self._write() as conn:
                model = self._lock(conn, name, now, bump_version=True)  # first: the counter is the lock
                if request_id:
                    # Under the model's lock, so a concurrent call with the same id waits, then finds it.
                    done = conn.execute(
                        sa.select(_versions.c.version_id).where(
                            _versions.c.model_id == model.model_id, _versions.c.request_id == request_id
                        )
                    ).scalar_one_or_none()
                    if done is not None:
                        raise _Replayed(read.load_version(conn, done))  # rolls back the counter bump
                storage = source
                if run_id:
                    artifact_uri = active_run_artifact_uri(
                        conn, run_id, field="source" if run_path is not None else "run_id"
                    )
                    if run_path is not None:
                        storage = child_uri(artifact_uri, run_path) if run_path else artifact_uri
                version_id = self._insert_version(
                    conn,
                    model,
                    source=source,
                    run_id=run_id,
                    storage=storage,
                    description=description,
                    tags=tags,
                    user=user,
                    now=now,
                    request_id=request_id,
                )
                return read.load_version(conn, version_id)
        except _Replayed as replayed:
            return replayed.version

    def _insert_version(
        self,
        conn: Connection,
        model: sa.Row[Any],
        *,
        source: str,
        run_id: str,
        storage: str,
        description: str,
        tags: Mapping[str, str],
        user: str,
        now: int,
        copied_from: str = "",
        request_id: str = "",
    ) -> int:
        version_id: int = conn.execute(
            _versions.insert()
            .values(
                model_id=model.model_id,
                version=model.last_version,
                description=description,
                user_id=user[: t.USER_LENGTH],
                stage=ModelStage.NONE.value,
                source=source,
                run_id=run_id,
                storage_location=storage,
                status=ModelVersionStatus.READY.value,
                status_message="",
                create_time=now,
                update_time=now,
                request_id=request_id or None,
            )
            .returning(_versions.c.version_id)
        ).scalar_one()
        upsert(
            conn,
            t.model_version_tags,
            [{"version_id": version_id, "key": k, "value": v} for k, v in tags.items()],
            keys=["version_id", "key"],
            update=["value"],
        )
        _record(
            conn,
            model.model_id,
            user,
            now,
            ModelEventKind.VERSION_CREATED,
            version=model.last_version,
            old=copied_from,
            new=source,
        )
        return version_id

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        check_version(version)
        with transaction(self.engine) as conn:
            model = read.model_row(conn, name)
            return read.load_version(conn, read.version_row(conn, model.model_id, name, version).version_id)

    def get_model_version_download_uri(self, name: str, version: int) -> str:
        check_version(version)
        with transaction(self.engine) as conn:
            model = read.model_row(conn, name)
            return str(read.version_row(conn, model.model_id, name, version).storage_location)

    def search_model_versions(
        self, *, filter_text: str = "", order_by: Sequence[str] = (), page_size: int = 0, page_token: str = ""
    ) -> tuple[list[ModelVersion], str]:
        size = check_page_size(page_size)
        with transaction(self.engine) as conn:
            return read.search_versions(
                conn, filter_text=filter_text, order_by=order_by, page_size=size, page_token=page_token
            )

    def update_model_version(
        self, name: str, version: int, *, description: str, user: str = ""
    ) -> ModelVersion:
        check_version(version)
        check_text(description, "description", DESCRIPTION_MAX)
        now = now_ms()
        with self._write() as conn:
            model = self._lock(conn, name, now)
            row = read.version_row(conn, model.model_id, name, version)
            if description != row.description:
                conn.execute(
                    _versions.update()
                    .where(_versions.c.version_id == row.version_id)
                    .values(description=description, update_time=now)
                )
                _record(
                    conn,
                    model.model_id,
                    user,
                    now,
                    ModelEventKind.DESCRIPTION_CHANGED,
                    version=version,
                    old=row.description,
                    new=description,
                )
            return read.load_version(conn, row.version_id)

    def delete_model_version(self, name: str, version: int, *, user: str = "") -> None:
        """Deletes a version with its tags and the aliases on it (recorded as alias deletions)."""
        check_version(version)
        now = now_ms()
        with self._write() as conn:
            model = self._lock(conn, name, now)
            row = read.version_row(conn, model.model_id, name, version)
            for alias in conn.execute(
                sa.select(_aliases.c.alias).where(_aliases.c.version_id == row.version_id)
            ).scalars():
                _record(
                    conn,
                    model.model_id,
                    user,
                    now,
                    ModelEventKind.ALIAS_DELETED,
                    version=version,
                    alias=alias,
                    old=str(version),
                )
            conn.execute(_aliases.delete().where(_aliases.c.version_id == row.version_id))
            conn.execute(_versions.delete().where(_versions.c.version_id == row.version_id))
            _record(conn, model.model_id, user, now, ModelEventKind.VERSION_DELETED, version=version)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        check_version(version)
        check_key(key, "tag.key")
        check_text(value, "tag.value", TAG_VALUE_MAX)
        now = now_ms()
        with self._write() as conn:
            row = self._locked_version(conn, name, version, now)
            upsert(
                conn,
                t.model_version_tags,
                [{"version_id": row.version_id, "key": key, "value": value}],
                keys=["version_id", "key"],
                update=["value"],
            )

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        check_version(version)
        tags = t.model_version_tags
        with self._write() as conn:
            row = self._locked_version(conn, name, version, now_ms())
            deleted = conn.execute(
                tags.delete().where(tags.c.version_id == row.version_id, tags.c.key == key)
            ).rowcount
            if not deleted:
                raise NotFound(f"version {version} of {name!r} has no tag {key!r}", field="key")

    def _locked_version(self, conn: Connection, name: str, version: int, now: int) -> sa.Row[Any]:
        model = self._lock(conn, name, now)
        row = read.version_row(conn, model.model_id, name, version)
        conn.execute(
            _versions.update().where(_versions.c.version_id == row.version_id).values(update_time=now)
        )
        return row

    # -- copy and history -----------------------------------------------------------------------------

    def copy_model_version(
        self, name: str, version: int, destination_name: str, *, user: str = ""
    ) -> ModelVersion:
        """Registers version ``version`` of ``name`` as the next version of ``destination_name``
        (created when missing) with the same source, run, files, description and tags."""
        check_version(version)
        destination_name = check_model_name(destination_name, "destination_name")
        now = now_ms()
        with self._write() as conn:
            # A write first (SQLite's write lock), then the reads.
            self._insert_model(conn, destination_name, "", now, user)
            source_model = read.model_row(conn, name)
            row = read.version_row(conn, source_model.model_id, name, version)
            require_ready(row, name)
            tag_rows = conn.execute(
                sa.select(t.model_version_tags.c.key, t.model_version_tags.c.value).where(
                    t.model_version_tags.c.version_id == row.version_id
                )
            )
            tags = {r.key: r.value for r in tag_rows}
            destination = self._lock(conn, destination_name, now, bump_version=True)
            version_id = self._insert_version(
                conn,
                destination,
                source=row.source,
                run_id=row.run_id,
                storage=row.storage_location,
                description=row.description,
                tags=tags,
                user=user,
                now=now,
                copied_from=f"models:/{name}/{version}",
            )
            return read.load_version(conn, version_id)

    def list_model_events(
        self, name: str, *, version: int = 0, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[ModelEvent], str]:
        size = check_page_size(page_size)
        with transaction(self.engine) as conn:
            return read.list_events(conn, name, version=version, page_size=size, page_token=page_token)
