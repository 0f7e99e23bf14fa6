"""Reading the model registry: entities from rows (a fixed number of queries per page), search with
the filter language and keyset paging, and the history listing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklane.entities.model_registry import (
    ModelEvent,
    ModelStage,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from tracklane.exceptions import InvalidArgument, NotFound
from tracklane_server.store.access import readable_models
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.page_tokens import decode_page_token, encode_page_token, fingerprint
from tracklane_server.store.query.filter import (
    MODEL_VERSION_ATTRIBUTES,
    REGISTERED_MODEL_ATTRIBUTES,
    TAGGED_ENTITIES,
    Comparison,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from tracklane_server.store.query.sql import compare, keyset_page, tag_sorted

MODEL_DEFAULT_ORDER = [OrderKey("attribute", "name")]
VERSION_DEFAULT_ORDER = [OrderKey("attribute", "name"), OrderKey("attribute", "version", ascending=False)]

_models, _versions = t.registered_models, t.model_versions


def model_row(conn: Connection, name: str, field: str = "name") -> sa.Row[Any]:
    """The registered model's row; NotFound naming ``field`` when there is none."""
    if not name:
        raise InvalidArgument(f"{field}: give a registered model name", field=field)
    row = conn.execute(sa.select(_models).where(_models.c.name == name)).first()
    if row is None:
        raise NotFound(f"registered model {name!r} does not exist", field=field)
    return row


def version_row(conn: Connection, model_id: int, name: str, version: int) -> sa.Row[Any]:
    """The version's row; NotFound (field ``version``) when the model has no such version."""
    row = conn.execute(
        sa.select(_versions).where(_versions.c.model_id == model_id, _versions.c.version == version)
    ).first()
    if row is None:
        raise NotFound(f"registered model {name!r} has no version {version}", field="version")
    return row


def load_versions(conn: Connection, version_ids: Sequence[int]) -> list[ModelVersion]:
    """ModelVersion entities with tags and aliases, in the given order; vanished ids are left out."""
    found = version_map(conn, version_ids)
    return [found[vid] for vid in version_ids if vid in found]


def version_map(conn: Connection, version_ids: Sequence[int]) -> dict[int, ModelVersion]:
    """ModelVersion entities by version id (three queries in all)."""
    if not version_ids:
        return {}
    ids = list(version_ids)
    rows = conn.execute(
        sa.select(_versions, _models.c.name)
        .join(_models, _models.c.model_id == _versions.c.model_id)
        .where(_versions.c.version_id.in_(ids))
    ).all()
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    for r in conn.execute(sa.select(t.model_version_tags).where(t.model_version_tags.c.version_id.in_(ids))):
        tags[r.version_id][r.key] = r.value
    aliases: dict[int, list[str]] = defaultdict(list)
    for r in conn.execute(sa.select(t.model_aliases).where(t.model_aliases.c.version_id.in_(ids))):
        aliases[r.version_id].append(r.alias)
    return {
        row.version_id: ModelVersion(
            name=row.name,
            version=row.version,
            creation_timestamp=row.create_time,
            last_updated_timestamp=row.update_time,
            description=row.description,
            user_id=row.user_id,
            current_stage=ModelStage(row.stage),
            source=row.source,
            run_id=row.run_id,
            status=ModelVersionStatus(row.status),
            status_message=row.status_message,
            tags=MappingProxyType(dict(sorted(tags[row.version_id].items()))),
            aliases=tuple(sorted(aliases[row.version_id])),
        )
        for row in rows
    }


def load_version(conn: Connection, version_id: int) -> ModelVersion:
    return load_versions(conn, [version_id])[0]


def latest_version_ids(
    conn: Connection, model_ids: Sequence[int], stages: Sequence[ModelStage] = ()
) -> dict[int, list[int]]:
    """Per model, the ids of its latest version in each stage (all stages when ``stages`` is empty),
    in the order None, Staging, Production, Archived."""
    latest = sa.select(
        _versions.c.model_id, _versions.c.stage, sa.func.max(_versions.c.version).label("version")
    ).where(_versions.c.model_id.in_(list(model_ids)))
    if stages:
        latest = latest.where(_versions.c.stage.in_([s.value for s in stages]))
    sub = latest.group_by(_versions.c.model_id, _versions.c.stage).subquery()
    rows = conn.execute(
        sa.select(_versions.c.version_id, _versions.c.model_id, _versions.c.stage).join(
            sub, sa.and_(sub.c.model_id == _versions.c.model_id, sub.c.version == _versions.c.version)
        )
    ).all()
    order = {stage.value: i for i, stage in enumerate(ModelStage)}
    found: dict[int, list[int]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: order[r.stage]):
        found[r.model_id].append(r.version_id)
    return found


def load_models(conn: Connection, model_ids: Sequence[int]) -> list[RegisteredModel]:
    """RegisteredModel entities with tags, aliases and latest versions, in the given order."""
    if not model_ids:
        return []
    ids = list(model_ids)
    rows = {r.model_id: r for r in conn.execute(sa.select(_models).where(_models.c.model_id.in_(ids)))}
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    for r in conn.execute(
        sa.select(t.registered_model_tags).where(t.registered_model_tags.c.model_id.in_(ids))
    ):
        tags[r.model_id][r.key] = r.value
    aliases: dict[int, dict[str, int]] = defaultdict(dict)
    alias_rows = conn.execute(
        sa.select(t.model_aliases.c.model_id, t.model_aliases.c.alias, _versions.c.version)
        .join(_versions, _versions.c.version_id == t.model_aliases.c.version_id)
        .where(t.model_aliases.c.model_id.in_(ids))
    )
    for r in alias_rows:
        aliases[r.model_id][r.alias] = r.version
    latest_ids = latest_version_ids(conn, ids)
    versions = version_map(conn, [vid for per_model in latest_ids.values() for vid in per_model])
    return [
        RegisteredModel(
            name=row.name,
            creation_timestamp=row.create_time,
            last_updated_timestamp=row.update_time,
            description=row.description,
            latest_versions=tuple(versions[v] for v in latest_ids.get(mid, []) if v in versions),
            tags=MappingProxyType(dict(sorted(tags[mid].items()))),
            aliases=MappingProxyType(dict(sorted(aliases[mid].items()))),
        )
        for mid in ids
        if (row := rows.get(mid)) is not None
    ]


def load_model(conn: Connection, model_id: int) -> RegisteredModel:
    return load_models(conn, [model_id])[0]


def _tag_condition(tags: sa.Table, owner_column: Any, owner: Any, c: Comparison) -> sa.ColumnElement[bool]:
    has_key = sa.select(1).where(owner_column == owner, tags.c.key == c.key)
    if c.op == "IS NULL":
        return ~sa.exists(has_key)
    if c.op == "IS NOT NULL":
        return sa.exists(has_key)
    return sa.exists(has_key.where(compare(tags.c.value, c.op, c.value)))


def search_models(
    conn: Connection, *, filter_text: str, order_by: Sequence[str], page_size: int, page_token: str
) -> tuple[list[RegisteredModel], str]:
    """One page of registered models matching the filter (name, times, tags)."""
    comparisons = parse_filter(filter_text, attributes=REGISTERED_MODEL_ATTRIBUTES, entities=TAGGED_ENTITIES)
    order = (
        parse_order_by(order_by, attributes=REGISTERED_MODEL_ATTRIBUTES, entities=TAGGED_ENTITIES)
        or MODEL_DEFAULT_ORDER
    )
    query_id = fingerprint("registered-models", filter_text, list(order_by), page_size)
    tags = t.registered_model_tags
    query = sa.select(_models.c.model_id)
    readable = readable_models()
    if readable is not None:  # in SQL, so pages stay full and tokens right
        query = query.where(_models.c.model_id.in_(readable))
    for c in comparisons:
        if c.entity == "attribute":
            query = query.where(compare(_models.c[c.key], c.op, c.value))
        else:
            query = query.where(_tag_condition(tags, tags.c.model_id, _models.c.model_id, c))
    query, columns = tag_sorted(
        query, order, lambda k: _models.c[k], tags, tags.c.model_id, _models.c.model_id
    )
    rows, token = keyset_page(
        conn,
        query,
        order,
        columns,
        _models.c.model_id,
        page_size=page_size,
        token=page_token,
        query_id=query_id,
    )
    return load_models(conn, [r.model_id for r in rows]), token


def search_versions(
    conn: Connection, *, filter_text: str, order_by: Sequence[str], page_size: int, page_token: str
) -> tuple[list[ModelVersion], str]:
    """One page of model versions matching the filter (name, version, run_id, source, times, tags)."""
    comparisons = parse_filter(filter_text, attributes=MODEL_VERSION_ATTRIBUTES, entities=TAGGED_ENTITIES)
    order = (
        parse_order_by(order_by, attributes=MODEL_VERSION_ATTRIBUTES, entities=TAGGED_ENTITIES)
        or VERSION_DEFAULT_ORDER
    )
    query_id = fingerprint("model-versions", filter_text, list(order_by), page_size)
    tags = t.model_version_tags

    def attribute(key: str) -> Any:
        return _models.c.name if key == "name" else _versions.c[key]

    query = sa.select(_versions.c.version_id).join(_models, _models.c.model_id == _versions.c.model_id)
    readable = readable_models()
    if readable is not None:  # a version is readable with its model
        query = query.where(_versions.c.model_id.in_(readable))
    for c in comparisons:
        if c.entity == "attribute":
            query = query.where(compare(attribute(c.key), c.op, c.value))
        else:
            query = query.where(_tag_condition(tags, tags.c.version_id, _versions.c.version_id, c))
    query, columns = tag_sorted(query, order, attribute, tags, tags.c.version_id, _versions.c.version_id)
    rows, token = keyset_page(
        conn,
        query,
        order,
        columns,
        _versions.c.version_id,
        page_size=page_size,
        token=page_token,
        query_id=query_id,
    )
    return load_versions(conn, [r.version_id for r in rows]), token


def list_events(
    conn: Connection, name: str, *, version: int, page_size: int, page_token: str
) -> tuple[list[ModelEvent], str]:
    """A model's history, newest first; only one version's when ``version`` is not 0."""
    if version < 0:
        raise InvalidArgument("version: must be positive, or 0 for every version", field="version")
    query_id = fingerprint("model-events", name, version, page_size)
    model = model_row(conn, name)
    events = t.model_events
    query = sa.select(events).where(events.c.model_id == model.model_id)
    if version:
        query = query.where(events.c.version == version)
    if page_token:
        last = decode_page_token(page_token, query_fingerprint=query_id, fields={"id": int})["id"]
        query = query.where(events.c.event_id < last)
    rows = conn.execute(query.order_by(events.c.event_id.desc()).limit(page_size + 1)).all()
    token = ""
    if len(rows) > page_size:
        rows = rows[:page_size]
        token = encode_page_token({"id": rows[-1].event_id}, query_fingerprint=query_id)
    return [
        ModelEvent(
            name=model.name,
            version=r.version,
            kind=r.kind,
            alias=r.alias,
            old_value=r.old_value,
            new_value=r.new_value,
            user_id=r.user_id,
            timestamp=r.time,
        )
        for r in rows
    ], token
