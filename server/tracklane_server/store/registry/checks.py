"""Checks on registry requests: model names, aliases, versions, tags, sources."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklane.entities import LifecycleStage
from tracklane.entities.model_registry import ModelStage, ModelVersionStatus
from tracklane.exceptions import FailedPrecondition, InvalidArgument, NotFound
from tracklane_server.store.db import schema as t
from tracklane_server.store.validation import TAG_VALUE_MAX, check_key, check_name, check_text

SOURCE_MAX = 8_192
TAGS_MAX = 1_000
# Letters, digits, `_` and `-`; `v<number>` would read as a version in `models:/name@v3`-style URIs.
_ALIAS_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
_VERSION_LIKE_RE = re.compile(r"[vV][0-9]+")
_RESERVED_ALIASES = frozenset({"latest"})  # `models:/name@latest` means the newest version
# `/` and `@` would make `models:/<name>/<version>` and `models:/<name>@<alias>` ambiguous.
_NAME_FORBIDDEN = ("/", "@")
_RUNS_URI_RE = re.compile(r"runs:/([^/]+)(?:/(.*))?")
ARCHIVING_STAGES = (ModelStage.STAGING, ModelStage.PRODUCTION)


def check_model_name(name: str, field: str = "name") -> str:
    """A registered model's name, returned in NFC: 1-250 characters of visible text, no ``/`` or
    ``@``, no surrounding spaces."""
    name = check_name(name, field, t.MODEL_NAME_LENGTH)
    if name != name.strip():
        raise InvalidArgument(f"{field}: must not start or end with spaces", field=field)
    for char in _NAME_FORBIDDEN:
        if char in name:
            raise InvalidArgument(f"{field}: {name[:50]!r} must not contain {char!r}", field=field)
    return name


def check_alias(alias: str, field: str = "alias") -> str:
    """An alias: letters, digits, ``_`` and ``-``, not ``v<number>`` and not ``latest``."""
    if not _ALIAS_RE.fullmatch(alias):
        raise InvalidArgument(
            f"{field}: {alias[:50]!r} must be 1-255 letters, digits, '_' or '-'", field=field
        )
    if _VERSION_LIKE_RE.fullmatch(alias) or alias.lower() in _RESERVED_ALIASES:
        raise InvalidArgument(
            f"{field}: {alias!r} is reserved (versions are written v<number>; 'latest' is the newest)",
            field=field,
        )
    return alias


def check_version(version: int, field: str = "version") -> int:
    if version <= 0:
        raise InvalidArgument(f"{field}: must be a positive version number, got {version}", field=field)
    return version


def check_tags(tags: Mapping[str, str], field: str) -> None:
    if len(tags) > TAGS_MAX:
        raise InvalidArgument(f"{field}: at most {TAGS_MAX} tags, got {len(tags)}", field=field)
    for i, (key, value) in enumerate(tags.items()):
        check_key(key, f"{field}[{i}].key")
        check_text(value, f"{field}[{i}].value", TAG_VALUE_MAX)


def split_source(source: str, run_id: str) -> tuple[str, str | None]:
    """(run id, path inside the run or None when the source is not ``runs:/``)."""
    match = _RUNS_URI_RE.fullmatch(source)
    if match is None:
        if source.startswith("runs:"):
            raise InvalidArgument(f"source: {source[:80]!r} is not runs:/<run_id>/<path>", field="source")
        return run_id, None
    source_run, path = match.group(1), (match.group(2) or "").strip("/")
    if run_id and run_id != source_run:
        raise InvalidArgument(
            f"run_id: {run_id!r} differs from the run in source ({source_run!r}); make them agree",
            field="run_id",
        )
    if ".." in path.split("/"):
        raise InvalidArgument("source: the path must not contain '..'", field="source")
    return source_run, path


def active_run_artifact_uri(conn: Connection, run_id: str, *, field: str) -> str:
    row = conn.execute(
        sa.select(t.runs.c.artifact_uri, t.runs.c.lifecycle_stage).where(t.runs.c.run_id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist", field=field)
    if row.lifecycle_stage != LifecycleStage.ACTIVE.value:
        raise FailedPrecondition(f"run {run_id!r} is deleted; restore it first", field=field)
    return str(row.artifact_uri)


def require_ready(row: sa.Row[Any], name: str) -> None:
    if row.status != ModelVersionStatus.READY.value:
        raise FailedPrecondition(
            f"version {row.version} of {name!r} is {row.status}, not READY", field="version"
        )
