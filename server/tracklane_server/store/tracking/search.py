"""SearchRuns in SQL: the parsed filter as EXISTS clauses with bound parameters, ordering by any
attribute, metric, param or tag (missing values last, either direction), and keyset paging.

Metric filters and sorts read ``latest_metrics`` (one row per run and key, with the latest value
and the summaries), never histories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from tracklane.entities import LifecycleStage, ViewType
from tracklane.exceptions import InvalidArgument
from tracklane_server.store.access import readable_experiments
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.page_tokens import fingerprint
from tracklane_server.store.db.transactions import experiment_pk
from tracklane_server.store.query.filter import (
    EXPERIMENT_ATTRIBUTES,
    TAGGED_ENTITIES,
    Comparison,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from tracklane_server.store.query.sql import compare, keyset_page, tag_sorted
from tracklane_server.store.tracking.system_tags import as_attribute, order_as_attribute

_VALUE_TABLES = {"metric": t.latest_metrics, "param": t.params, "tag": t.run_tags}
#: The latest_metrics column of each metric summary ("" = the latest value); each has a (key, column) index.
_SUMMARY_COLUMNS = {
    "": "value",
    "min": "min_value",
    "max": "max_value",
    "first": "first_value",
    "count": "value_count",
}
DEFAULT_ORDER = [OrderKey("attribute", "start_time", ascending=False)]


@dataclass(frozen=True)
class RunPage:
    """One page of matching run ids, in order, and the token for the next page ("" on the last)."""

    run_ids: list[str]
    next_page_token: str


def _condition(c: Comparison) -> ColumnElement[bool]:
    if c.entity == "attribute":
        return compare(t.runs.c[c.key], c.op, c.value)
    if c.entity == "dataset":
        inputs, datasets = t.run_inputs, t.datasets
        column = inputs.c.context if c.key == "context" else datasets.c[c.key]
        return sa.exists(
            sa.select(1)
            .select_from(inputs.join(datasets, datasets.c.dataset_id == inputs.c.dataset_id))
            .where(inputs.c.run_id == t.runs.c.run_id, compare(column, c.op, c.value))
        )
    table = _VALUE_TABLES[c.entity]
    has_key = sa.select(1).where(table.c.run_id == t.runs.c.run_id, table.c.key == c.key)
    if c.op == "IS NULL":
        return ~sa.exists(has_key)
    if c.op == "IS NOT NULL":
        return sa.exists(has_key)
    return sa.exists(has_key.where(compare(table.c[_SUMMARY_COLUMNS[c.summary]], c.op, c.value)))


def search_run_ids(
    conn: Connection,
    experiment_ids: Sequence[str],
    *,
    filter_text: str = "",
    order_by: Sequence[str] = (),
    view_type: ViewType = ViewType.ACTIVE_ONLY,
    page_size: int,
    page_token: str = "",
) -> RunPage:
    """Ids of the runs matching the request, one page at a time."""
    if not experiment_ids:
        raise InvalidArgument("experiment_ids: give at least one experiment", field="experiment_ids")
    pks = [experiment_pk(e) for e in experiment_ids]
    # MLflow's system tags (tags.mlflow.parentRunId...) are columns: see system_tags.
    comparisons = [as_attribute(c) for c in parse_filter(filter_text)]
    order = [order_as_attribute(k) for k in parse_order_by(order_by)] or DEFAULT_ORDER
    query_id = fingerprint("runs", sorted(pks), filter_text, list(order_by), view_type.value, page_size)

    runs = t.runs
    query = sa.select(runs.c.run_id).where(runs.c.experiment_id.in_(pks))
    if view_type is ViewType.ACTIVE_ONLY:
        query = query.where(runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value)
    elif view_type is ViewType.DELETED_ONLY:
        query = query.where(runs.c.lifecycle_stage == LifecycleStage.DELETED.value)
    for comparison in comparisons:
        query = query.where(_condition(comparison))

    sort_columns: list[Any] = []
    for i, key in enumerate(order):
        if key.entity == "attribute":
            sort_columns.append(runs.c[key.key])
            continue
        if key.entity not in _VALUE_TABLES:
            raise InvalidArgument(f"order_by[{i}]: cannot order by {key.entity}s", field="order_by")
        table = _VALUE_TABLES[key.entity].alias(f"sort_{i}")
        query = query.outerjoin(table, sa.and_(table.c.run_id == runs.c.run_id, table.c.key == key.key))
        column = table.c[_SUMMARY_COLUMNS[key.summary]]
        sort_columns.append(column)
        query = query.add_columns(column.label(f"sort_{i}"))
    for i, (key, column) in enumerate(zip(order, sort_columns, strict=True)):
        if key.entity == "attribute":
            query = query.add_columns(column.label(f"sort_{i}"))

    rows, token = keyset_page(
        conn,
        query,
        order,
        sort_columns,
        runs.c.run_id,
        page_size=page_size,
        token=page_token,
        query_id=query_id,
    )
    return RunPage([r.run_id for r in rows], token)


EXPERIMENT_DEFAULT_ORDER = [OrderKey("attribute", "creation_time", ascending=False)]


def search_experiment_ids(
    conn: Connection,
    *,
    filter_text: str = "",
    order_by: Sequence[str] = (),
    view_type: ViewType = ViewType.ACTIVE_ONLY,
    page_size: int,
    page_token: str = "",
) -> tuple[list[int], str]:
    """Keys of the experiments matching the request (name, attributes, tags), one page at a time."""
    exps, tags = t.experiments, t.experiment_tags
    comparisons = parse_filter(filter_text, attributes=EXPERIMENT_ATTRIBUTES, entities=TAGGED_ENTITIES)
    order = (
        parse_order_by(order_by, attributes=EXPERIMENT_ATTRIBUTES, entities=TAGGED_ENTITIES)
        or EXPERIMENT_DEFAULT_ORDER
    )
    query_id = fingerprint("experiments", filter_text, list(order_by), view_type.value, page_size)
    query = sa.select(exps.c.experiment_id)
    readable = readable_experiments()
    if readable is not None:  # in SQL, so pages stay full and tokens right
        query = query.where(exps.c.experiment_id.in_(readable))
    if view_type is not ViewType.ALL:
        stage = LifecycleStage.ACTIVE if view_type is ViewType.ACTIVE_ONLY else LifecycleStage.DELETED
        query = query.where(exps.c.lifecycle_stage == stage.value)
    for c in comparisons:
        if c.entity == "attribute":
            column = exps.c[c.key]
            value: Any = c.value
            if c.key == "experiment_id":  # opaque strings outside, integers inside
                if c.op in ("LIKE", "ILIKE"):
                    raise InvalidArgument("filter: experiment_id takes =, !=, IN or NOT IN", field="filter")
                value = _experiment_keys(c.value)
            query = query.where(compare(column, c.op, value))
            continue
        has_key = sa.select(1).where(tags.c.experiment_id == exps.c.experiment_id, tags.c.key == c.key)
        if c.op in ("IS NULL", "IS NOT NULL"):
            query = query.where(sa.exists(has_key) if c.op == "IS NOT NULL" else ~sa.exists(has_key))
        else:
            query = query.where(sa.exists(has_key.where(compare(tags.c.value, c.op, c.value))))
    query, columns = tag_sorted(
        query, order, lambda k: exps.c[k], tags, tags.c.experiment_id, exps.c.experiment_id
    )
    rows, token = keyset_page(
        conn,
        query,
        order,
        columns,
        exps.c.experiment_id,
        page_size=page_size,
        token=page_token,
        query_id=query_id,
    )
    return [r.experiment_id for r in rows], token


def _experiment_keys(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(int(v) if v.isdigit() else -1 for v in value)
    if isinstance(value, str):
        return int(value) if value.isdigit() else -1  # an id that cannot exist matches nothing
    return value
