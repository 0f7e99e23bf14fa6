"""Fluent search: ``search_runs``, as a pandas DataFrame (MLflow's columns) or a list of Run."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Literal, overload

from tracklane.entities import Run, ViewType
from tracklane.exceptions import InvalidArgument
from tracklane.fluent.runs import _experiment_id
from tracklane.fluent.state import default_client

__all__ = ["search_runs"]


@overload
def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str = "",
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: Sequence[str] | None = None,
    *,
    output_format: Literal["list"],
    experiment_names: Sequence[str] | None = None,
) -> list[Run]: ...


@overload
def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str = "",
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: Sequence[str] | None = None,
    output_format: Literal["pandas"] = "pandas",
    experiment_names: Sequence[str] | None = None,
) -> Any: ...  # a pandas.DataFrame: pandas is optional, so not named in the signature


def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str = "",
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: Sequence[str] | None = None,
    output_format: Literal["pandas", "list"] = "pandas",
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs matching an MLflow-style filter, as a pandas DataFrame or a list of Run.

    The DataFrame needs pandas (``pip install 'tracklane[pandas]'``); without it this raises rather
    than return another type. ``output_format="list"`` needs nothing more.

    Args:
        experiment_ids: Experiments to search; default the active experiment.
        filter_string: e.g. ``metrics.acc > 0.9 and params.model = 'rf'``; empty for all runs.
        run_view_type: Live, deleted or all runs.
        max_results: At most this many runs.
        order_by: e.g. ``["metrics.acc DESC"]``; default newest first.
        output_format: ``"pandas"`` (a DataFrame) or ``"list"`` (a list of Run).
        experiment_names: Experiments to search by name (added to ``experiment_ids``; unknown names
            are skipped).

    Returns:
        A ``pandas.DataFrame`` with MLflow's columns (``run_id``, ``experiment_id``, ``status``,
        ``artifact_uri``, ``start_time``, ``end_time``, ``metrics.<key>``, ``params.<key>``,
        ``tags.<key>``, plus ``run_name``), one row per run; or, with ``output_format="list"``, a
        ``list[Run]``.

    Raises:
        InvalidArgument: the filter or order does not parse, or an unknown output_format.
        ImportError: ``output_format="pandas"`` and pandas is not installed.
    """
    if output_format not in ("pandas", "list"):
        raise InvalidArgument(
            f"output_format must be 'pandas' or 'list', not {output_format!r}", field="output_format"
        )
    pd: Any = _pandas_for_search() if output_format == "pandas" else None
    client = default_client()
    ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids or ())
    for name in experiment_names or ():
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            ids.append(experiment.experiment_id)
    if experiment_ids is None and experiment_names is None:
        ids = [_experiment_id()]
    runs = client.search_runs(ids, filter_string, run_view_type, max_results, order_by) if ids else []
    if pd is None:
        return runs
    return _runs_to_dataframe(pd, runs)


def _pandas_for_search() -> Any:
    """pandas, or an ImportError saying how to get it (checked before any call to the server)."""
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(
            "search_runs returns a pandas DataFrame, and pandas is not installed: "
            "pip install 'tracklane[pandas]', or pass output_format='list' for a list of Run"
        ) from exc


_INFO_COLUMNS = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time", "run_name")


def _runs_to_dataframe(pd: Any, runs: Sequence[Run]) -> Any:
    columns: dict[str, list[Any]] = {name: [] for name in _INFO_COLUMNS}
    metric_keys = sorted({k for r in runs for k in r.data.latest_metrics})
    param_keys = sorted({k for r in runs for k in r.data.params})
    tag_keys = sorted({k for r in runs for k in r.data.tags})
    for run in runs:
        info = run.info
        columns["run_id"].append(info.run_id)
        columns["experiment_id"].append(info.experiment_id)
        columns["status"].append(str(info.status))
        columns["artifact_uri"].append(info.artifact_uri)
        columns["start_time"].append(info.start_time)
        columns["end_time"].append(info.end_time)
        columns["run_name"].append(info.run_name)
    for key in metric_keys:
        columns[f"metrics.{key}"] = [
            r.data.latest_metrics[key].value if key in r.data.latest_metrics else float("nan") for r in runs
        ]
    for key in param_keys:
        columns[f"params.{key}"] = [r.data.params.get(key) for r in runs]
    for key in tag_keys:
        columns[f"tags.{key}"] = [r.data.tags.get(key) for r in runs]
    frame = pd.DataFrame(columns)
    for name in ("start_time", "end_time"):
        # Epoch millis -> timezone-aware timestamps, as MLflow returns them (NaT where unset).
        frame[name] = pd.to_datetime(frame[name], unit="ms", utc=True)
    return frame
