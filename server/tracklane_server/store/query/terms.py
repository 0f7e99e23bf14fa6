"""The search languages' vocabulary and AST: entities, operators, attribute specs, and the
:class:`Comparison` and :class:`OrderKey` a filter or order-by parses into (query/filter.py), with
their rendering back to text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from tracklane_server.store.query.scanner import clip

__all__ = [
    "ALL_ENTITIES",
    "BARE_KEY",
    "DATASET_KEYS",
    "ENTITY_NAMES",
    "ENTITY_ORDER",
    "ENTITY_SPELLINGS",
    "EXAMPLE_KEYS",
    "EXPERIMENT_ATTRIBUTES",
    "MODEL_VERSION_ATTRIBUTES",
    "NULL_OPS",
    "NUMERIC_OPS",
    "REGISTERED_MODEL_ATTRIBUTES",
    "RUN_ATTRIBUTES",
    "STRING_OPS",
    "SUMMARIES",
    "SUMMARY_NAMES",
    "TAGGED_ENTITIES",
    "AttrAlias",
    "AttrSpec",
    "AttrType",
    "Comparison",
    "Entity",
    "Op",
    "OrderKey",
    "Summary",
    "Target",
    "Value",
    "render_filter",
    "render_identifier",
    "render_order_by",
    "split_summary",
]

Entity: TypeAlias = Literal["metric", "param", "tag", "attribute", "dataset"]
Op: TypeAlias = Literal[
    "=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"
]
#: A metric's summary a comparison reads; "" is its latest value.
Summary: TypeAlias = Literal["", "min", "max", "first", "count"]
SUMMARIES: Final[tuple[Summary, ...]] = ("min", "max", "first", "count")
SUMMARY_NAMES: Final[Mapping[str, Summary]] = {name: name for name in SUMMARIES}

# float for metrics and "number" attributes, int for "integer" attributes, str for string operators,
# a tuple for IN / NOT IN, None for IS [NOT] NULL.
Value: TypeAlias = int | float | str | tuple[str, ...] | None


@dataclass(frozen=True)
class Comparison:
    """One ``<entity>.<key> <op> <value>`` term; a filter is the AND of a list of them."""

    entity: Entity
    key: str  # canonical for attributes (aliases resolved) and datasets; verbatim otherwise
    op: Op
    value: Value
    summary: Summary = ""  # metrics: which summary of the key ("" = the latest value)


@dataclass(frozen=True)
class OrderKey:
    """One order-by item."""

    entity: Entity
    key: str
    ascending: bool = True
    summary: Summary = ""  # as in Comparison


@dataclass(frozen=True)
class AttrType:
    """How a searchable attribute compares.

    Attributes:
        kind: ``"string"`` takes =, !=, LIKE, ILIKE, IN, NOT IN with quoted strings; ``"number"`` takes
            =, !=, <, <=, >, >= with a float; ``"integer"`` the same with a whole number (an int).
        choices: If set, the only values = / != / IN accept (matched case-insensitively, returned as
            spelled here); LIKE patterns are not checked.
        nullable: Whether IS NULL / IS NOT NULL are allowed.
        unit: Said in error messages, e.g. "milliseconds since the epoch".
    """

    kind: Literal["string", "number", "integer"] = "string"
    choices: tuple[str, ...] = ()
    nullable: bool = False
    unit: str = ""


@dataclass(frozen=True)
class AttrAlias:
    """Another spelling of an attribute (e.g. MLflow's ``created`` for ``start_time``)."""

    target: str


AttrSpec: TypeAlias = AttrType | AttrAlias

_STRING: Final = AttrType()
_MILLIS: Final = AttrType("integer", unit="milliseconds since the epoch")

RUN_ATTRIBUTES: Final[Mapping[str, AttrSpec]] = MappingProxyType(
    {
        "run_id": _STRING,
        "run_name": _STRING,
        "status": AttrType(choices=("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")),
        "start_time": _MILLIS,
        "end_time": AttrType("integer", nullable=True, unit=_MILLIS.unit),
        "user_id": _STRING,
        "artifact_uri": _STRING,
        "lifecycle_stage": AttrType(choices=("active", "deleted")),
        "parent_run_id": AttrType(nullable=True),  # NULL for a top-level run
        "description": _STRING,
        # MLflow's spellings.
        "created": AttrAlias("start_time"),
        "run name": AttrAlias("run_name"),
    }
)
EXPERIMENT_ATTRIBUTES: Final[Mapping[str, AttrSpec]] = MappingProxyType(
    {
        "experiment_id": _STRING,
        "name": _STRING,
        "creation_time": _MILLIS,
        "last_update_time": _MILLIS,
        "create_time": AttrAlias("creation_time"),  # the proto's names
        "update_time": AttrAlias("last_update_time"),
    }
)
REGISTERED_MODEL_ATTRIBUTES: Final[Mapping[str, AttrSpec]] = MappingProxyType(
    {
        "name": _STRING,
        "create_time": _MILLIS,
        "update_time": _MILLIS,
        # MLflow's spellings.
        "creation_timestamp": AttrAlias("create_time"),
        "timestamp": AttrAlias("create_time"),
        "last_updated_timestamp": AttrAlias("update_time"),
    }
)
MODEL_VERSION_ATTRIBUTES: Final[Mapping[str, AttrSpec]] = MappingProxyType(
    {
        "name": _STRING,
        "version": AttrType("integer"),
        "run_id": _STRING,
        "source": _STRING,
        "create_time": _MILLIS,
        "update_time": _MILLIS,
        # MLflow's spellings.
        "version_number": AttrAlias("version"),
        "source_path": AttrAlias("source"),
        "creation_timestamp": AttrAlias("create_time"),
        "last_updated_timestamp": AttrAlias("update_time"),
    }
)

ENTITY_ORDER: Final[tuple[Entity, ...]] = ("metric", "param", "tag", "attribute", "dataset")  # message order
ALL_ENTITIES: Final[frozenset[Entity]] = frozenset(ENTITY_ORDER)
TAGGED_ENTITIES: Final[frozenset[Entity]] = frozenset({"tag", "attribute"})  # experiments, registry
NUMERIC_OPS: Final[tuple[Op, ...]] = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS: Final[tuple[Op, ...]] = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
NULL_OPS: Final[tuple[Op, ...]] = ("IS NULL", "IS NOT NULL")

#: How each entity may be spelled in a filter.
ENTITY_SPELLINGS: Final[tuple[tuple[Entity, tuple[str, ...]], ...]] = (
    ("metric", ("metric", "metrics")),
    ("param", ("param", "params", "parameter", "parameters")),
    ("tag", ("tag", "tags")),
    ("attribute", ("attribute", "attributes", "attr", "run")),
    ("dataset", ("dataset", "datasets")),
)
ENTITY_NAMES: Final[Mapping[str, Entity]] = {name: e for e, names in ENTITY_SPELLINGS for name in names}
EXAMPLE_KEYS: Final[Mapping[Entity, str]] = {
    "metric": "acc",
    "param": "lr",
    "tag": "team",
    "dataset": "name",
}
DATASET_KEYS: Final = ("name", "digest", "context")

#: A key that needs no quotes.
BARE_KEY: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


@dataclass(frozen=True)
class Target:
    """What an identifier resolved to, with the rules for comparing it."""

    entity: Entity
    key: str
    kind: Literal["string", "number", "integer"]
    choices: tuple[str, ...] = ()
    nullable: bool = False
    unit: str = ""
    summary: Summary = ""

    @property
    def label(self) -> str:
        return render_identifier(self.entity, clip(self.key), self.summary)

    @property
    def ops(self) -> tuple[Op, ...]:
        ops = STRING_OPS if self.kind == "string" else NUMERIC_OPS
        return ops + NULL_OPS if self.nullable else ops


def split_summary(entity: Entity, key: str) -> tuple[str, Summary]:
    """A bare metric key ``loss.min`` is the summary ``min`` of ``loss``."""
    head, dot, tail = key.rpartition(".")
    summary = SUMMARY_NAMES.get(tail.lower()) if entity == "metric" and dot and head else None
    return (head, summary) if summary else (key, "")


def render_identifier(entity: Entity, key: str, summary: Summary = "") -> str:
    """``entity.key[.summary]`` as the parser reads it back, backquoting keys that need it."""
    if not BARE_KEY.fullmatch(key) or split_summary(entity, key)[1]:
        key = "`" + key.replace("`", "``") + "`"
    return f"{entity}s.{key}" + (f".{summary}" if summary else "")


def _render_value(value: Value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, tuple):
        return "(" + ", ".join(_render_value(item) for item in value) + ")"
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("NaN cannot be written in a filter")
    return repr(value)  # floats: shortest exact form, 'inf' and '-inf' included


def render_filter(comparisons: Sequence[Comparison]) -> str:
    """The filter text :func:`parse_filter` turns back into ``comparisons``."""
    terms = []
    for c in comparisons:
        value = "" if c.value is None else " " + _render_value(c.value)
        terms.append(f"{render_identifier(c.entity, c.key, c.summary)} {c.op}{value}")
    return " AND ".join(terms)


def render_order_by(keys: Sequence[OrderKey]) -> list[str]:
    """The order-by items :func:`parse_order_by` turns back into ``keys``."""
    return [
        f"{render_identifier(k.entity, k.key, k.summary)} {'ASC' if k.ascending else 'DESC'}" for k in keys
    ]
