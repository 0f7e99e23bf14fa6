"""Tracklane: gRPC-native tracking for machine learning.

    import tracklane

    tracklane.set_experiment("mnist")
    with tracklane.start_run():
        tracklane.log_params({"lr": 0.01})
        tracklane.log_metric("loss", 0.31, step=10)

``tracklane.Client`` exposes every RPC; ``tracklane.exceptions`` the typed errors.
"""

from tracklane import data, exceptions
from tracklane.client import Client
from tracklane.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    MetricSeries,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklane.fluent import (
    ActiveRun,
    active_run,
    delete_tag,
    end_run,
    get_experiment_by_name,
    get_run,
    get_tracking_uri,
    last_active_run,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Client",
    "Dataset",
    "DatasetInput",
    "Experiment",
    "LifecycleStage",
    "Metric",
    "MetricSeries",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunStatus",
    "RunTag",
    "ViewType",
    "__version__",
    "active_run",
    "data",
    "delete_tag",
    "end_run",
    "exceptions",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
