"""MLflow's system tags that are Tracklane attributes: one source of truth, shown under both names.

MLflow keeps a run's name, parent, user and description as tags (``mlflow.runName``,
``mlflow.parentRunId``, ``mlflow.user``, ``mlflow.note.content``; an experiment's description is
its ``mlflow.note.content``). Tracklane keeps them as first-class columns. The store maps between
the two here, so every client sees the same run:

- Writing one of these tags (CreateRun, LogBatch, DeleteTag, over gRPC or MLflow's REST API) sets
  the attribute, never a tag row: ``mlflow.runName`` renames the run, ``mlflow.note.content``
  sets the description, ``mlflow.parentRunId`` the parent; ``mlflow.user`` is the creator, given
  when the run is created (a later different value is refused: it would rewrite who made it).
- Reading a run (GetRun, SearchRuns) lists them among its tags, from the attributes.
- Searching ``tags.mlflow.parentRunId = '<id>'`` (how MLflow users find a sweep's children),
  ``tags.mlflow.runName`` and the others compares the attributes, as ``attributes.parent_run_id``
  does; ordering by them too.

Other ``mlflow.*`` tags (``mlflow.source.name``, ``mlflow.source.git.commit``,
``mlflow.log-model.history``...) have no attribute and are stored as plain tags.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracklane.exceptions import InvalidArgument
from tracklane_server.store.query.filter import Comparison, OrderKey

__all__ = [
    "EXPERIMENT_NOTE",
    "RUN_ATTRIBUTE_TAGS",
    "as_attribute",
    "order_as_attribute",
    "run_system_tags",
    "split_run_tags",
]

RUN_NAME = "mlflow.runName"
PARENT_RUN_ID = "mlflow.parentRunId"
USER = "mlflow.user"
NOTE = "mlflow.note.content"
EXPERIMENT_NOTE = NOTE
#: MLflow's tag -> the runs column that holds it.
RUN_ATTRIBUTE_TAGS = {
    RUN_NAME: "run_name",
    PARENT_RUN_ID: "parent_run_id",
    USER: "user_id",
    NOTE: "description",
}


def split_run_tags(tags: Sequence[tuple[str, str]]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(plain tags, {column: value}) of a request's tags; the last value of a repeated key wins."""
    plain: list[tuple[str, str]] = []
    attributes: dict[str, str] = {}
    for key, value in tags:
        column = RUN_ATTRIBUTE_TAGS.get(key)
        if column is None:
            plain.append((key, value))
        else:
            attributes[column] = value
    return plain, attributes


def run_system_tags(
    run_name: str, parent_run_id: str | None, user_id: str, description: str
) -> list[tuple[str, str]]:
    """The tags MLflow shows for these attributes (only those that are set)."""
    out = [(RUN_NAME, run_name)] if run_name else []
    if parent_run_id:
        out.append((PARENT_RUN_ID, parent_run_id))
    if user_id:
        out.append((USER, user_id))
    if description:
        out.append((NOTE, description))
    return out


def as_attribute(c: Comparison) -> Comparison:
    """A comparison of one of these tags as the comparison of its attribute; others unchanged."""
    if c.entity != "tag" or c.key not in RUN_ATTRIBUTE_TAGS:
        return c
    column = RUN_ATTRIBUTE_TAGS[c.key]
    if column in ("description", "user_id", "run_name") and c.op in ("IS NULL", "IS NOT NULL"):
        # Never NULL: an unset one is "" (a run always has a name).
        return Comparison("attribute", column, "=" if c.op == "IS NULL" else "!=", "")
    if isinstance(c.value, float | int):
        raise InvalidArgument(f"filter: tags.{c.key} is a string; quote the value", field="filter")
    return Comparison("attribute", column, c.op, c.value)


def order_as_attribute(key: OrderKey) -> OrderKey:
    if key.entity != "tag" or key.key not in RUN_ATTRIBUTE_TAGS:
        return key
    return OrderKey("attribute", RUN_ATTRIBUTE_TAGS[key.key], key.ascending)
