"""The SQL every search shares: comparisons with bound values, keyset pages behind opaque tokens,
and ordering by attributes or tags (NULLs last either way). Used by run, experiment and registry
search alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from tracklane.exceptions import InvalidArgument
from tracklane_server.store.db.page_tokens import decode_page_token, encode_page_token
from tracklane_server.store.query.terms import OrderKey

__all__ = ["compare", "keyset_page", "tag_sorted"]


def compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
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


def keyset_page(
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


def tag_sorted(
    query: Any,
    order: Sequence[Any],
    attribute: Callable[[str], Any],
    tags: sa.Table,
    tag_owner: sa.Column[Any],
    owner: sa.Column[Any],
) -> tuple[Any, list[Any]]:
    """Adds one ``sort_i`` column per order key: an attribute, or a tag joined from ``tags`` (NULL when
    the entity lacks it). Returns the query and the sort columns for ``keyset_page``."""
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
