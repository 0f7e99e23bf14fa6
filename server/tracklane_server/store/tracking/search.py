"""SearchRuns in SQL: the parsed filter as EXISTS clauses with bound parameters, ordering by any
attribute, metric, param or tag (missing values last, either direction), and keyset paging.

Metric filters and sorts read ``latest_metrics`` (one row per run and key, with the latest value
and the summaries), never histories.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from tracklane.entities import LifecycleStage, ViewType
from tracklane.exceptions import InvalidArgument
from tracklane_server.store.access import readable_experiments
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.page_tokens import decode_page_token, encode_page_token, fingerprint
from tracklane_server.store.db.transactions import experiment_pk
from tracklane_server.store.query.filter import (
    EXPERIMENT_ATTRIBUTES,
    TAGGED_ENTITIES,
    Comparison,
    OrderKey,
    parse_filter,
    parse_order_by,
)
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


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    """``column <op> value`` with the value bound, never spliced into the SQL."""
    match op:
        case "=":
            return column == value  # type: ignore[no-any-return]
        case "!=":
            return column != value  # type: ignore[no-any-return]
        case "<":
            return column < value  # type: ignore[no-any-return]
        case "<=":
            return column <= value  # type: ignore[no-any-return]
        case ">":
            return column > value  # type: ignore[no-any-return]
        case ">=":
            return column >= value  # type: ignore[no-any-return]
        case "LIKE":
            return column.like(value)  # type: ignore[no-any-return]
        case "ILIKE":
            return sa.func.lower(column).like(sa.func.lower(sa.literal(value)))
        case "IN":
            return column.in_(list(value))  # type: ignore[no-any-return]
        case "NOT IN":
            return column.not_in(list(value))  # type: ignore[no-any-return]
        case "IS NULL":
            return column.is_(None)  # type: ignore[no-any-return]
        case "IS NOT NULL":
            return column.is_not(None)  # type: ignore[no-any-return]
    raise InvalidArgument(f"filter: unsupported operator {op}", field="filter")


def _condition(c: Comparison) -> ColumnElement[bool]:
    if c.entity == "attribute":
        return _compare(t.runs.c[c.key], c.op, c.value)
    if c.entity == "dataset":
        inputs, datasets = t.run_inputs, t.datasets
        column = inputs.c.context if c.key == "context" else datasets.c[c.key]
        return sa.exists(
            sa.select(1)
            .select_from(inputs.join(datasets, datasets.c.dataset_id == inputs.c.dataset_id))
            .where(inputs.c.run_id == t.runs.c.run_id, _compare(column, c.op, c.value))
        )
    table = _VALUE_TABLES[c.entity]
    has_key = sa.select(1).where(table.c.run_id == t.runs.c.run_id, table.c.key == c.key)
    if c.op == "IS NULL":
        return ~sa.exists(has_key)
    if c.op == "IS NOT NULL":
        return sa.exists(has_key)
    return sa.exists(has_key.where(_compare(table.c[_SUMMARY_COLUMNS[c.summary]], c.op, c.value)))


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

    rows, token = _keyset_page(
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


def _after(
    order: Sequence[OrderKey], columns: Sequence[Any], values: Sequence[Any], id_column: Any, last_id: object
) -> Any:
    """Rows strictly after the cursor in the (key..., id) order, NULLs last on every key."""
    clauses = []
    equal_so_far: list[Any] = []
    for key, column, value in zip(order, columns, values, strict=True):
        if value is None:
            # Nothing non-null sorts after a NULL; only other NULLs tie with it.
            equal_so_far.append(column.is_(None))
            continue
        beyond = column > value if key.ascending else column < value
        clauses.append(sa.and_(*equal_so_far, sa.or_(beyond, column.is_(None))))
        equal_so_far.append(column == value)
    clauses.append(sa.and_(*equal_so_far, id_column > last_id))
    return sa.or_(*clauses)


def _keyset_page(
    conn: Connection,
    query: Any,
    order: Sequence[OrderKey],
    columns: Sequence[Any],
    id_column: Any,
    *,
    page_size: int,
    token: str,
    query_id: str,
) -> tuple[list[Any], str]:
    """One page of ``query`` (which selects ``id_column`` and the ``sort_<i>`` columns) after the
    cursor in ``token``, and the token for the page after it ("" on the last page)."""
    if token:
        cursor = decode_page_token(token, query_fingerprint=query_id)
        values, last_id = cursor.get("v"), cursor.get("id")
        if (
            not isinstance(values, list)
            or len(values) != len(order)
            or not _fits(id_column, last_id)
            or not all(v is None or _fits(c, v) for c, v in zip(columns, values, strict=True))
        ):
            raise InvalidArgument("page_token: not a token for this search", field="page_token")
        query = query.where(_after(order, columns, values, id_column, last_id))
    rows = conn.execute(query.order_by(*_ordering(order, columns, id_column)).limit(page_size + 1)).all()
    if len(rows) <= page_size:
        return list(rows), ""
    rows = rows[:page_size]
    last = rows[-1]
    cursor_values = [getattr(last, f"sort_{i}") for i in range(len(order))]
    next_token = encode_page_token({"v": cursor_values, "id": last[0]}, query_fingerprint=query_id)
    return list(rows), next_token


_INT64 = range(-(2**63), 2**63)


def _fits(column: Any, value: object) -> bool:
    """Whether a cursor value can be compared with the column: anyone can forge a token, and a
    list, a bool or a string where a number goes must be INVALID_ARGUMENT, not a database error."""
    kind = column.type
    if isinstance(kind, sa.String):
        return isinstance(value, str) and "\x00" not in value
    if isinstance(value, bool):
        return False
    if isinstance(kind, sa.Integer):
        return isinstance(value, int) and value in _INT64
    if isinstance(kind, sa.Float | sa.Numeric):
        return isinstance(value, float) or (isinstance(value, int) and value in _INT64)
    return False


def _ordering(order: Sequence[OrderKey], columns: Sequence[Any], id_column: Any) -> list[Any]:
    ordering: list[Any] = []
    for key, column in zip(order, columns, strict=True):
        ordering.append(column.is_(None))  # false sorts first: missing values last, either direction
        ordering.append(column.asc() if key.ascending else column.desc())
    ordering.append(id_column.asc())
    return ordering


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
            query = query.where(_compare(column, c.op, value))
            continue
        has_key = sa.select(1).where(tags.c.experiment_id == exps.c.experiment_id, tags.c.key == c.key)
        if c.op in ("IS NULL", "IS NOT NULL"):
            query = query.where(sa.exists(has_key) if c.op == "IS NOT NULL" else ~sa.exists(has_key))
        else:
            query = query.where(sa.exists(has_key.where(_compare(tags.c.value, c.op, c.value))))
    query, columns = _tag_sorted(
        query, order, lambda k: exps.c[k], tags, tags.c.experiment_id, exps.c.experiment_id
    )
    rows, token = _keyset_page(
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


def _tag_sorted(
    query: Any,
    order: Sequence[Any],
    attribute: Callable[[str], Any],
    tags: sa.Table,
    tag_owner: sa.Column[Any],
    owner: sa.Column[Any],
) -> tuple[Any, list[Any]]:
    """Adds one ``sort_i`` column per order key: an attribute, or a tag joined from ``tags`` (NULL when
    the entity lacks it). Returns the query and the sort columns for ``_keyset_page``."""
    columns: list[Any] = []
    for i, key in enumerate(order):
        if key.entity == "attribute":
            columns.append(attribute(key.key))
        else:
            alias = tags.alias(f"sort_{i}")
            query = query.outerjoin(alias, sa.and_(alias.c[tag_owner.key] == owner, alias.c.key == key.key))
            columns.append(alias.c.value)
        query = query.add_columns(columns[-1].label(f"sort_{i}"))
    return query, columns
