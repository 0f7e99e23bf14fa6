"""Tracklane: gRPC-native tracking for machine learning.

    import tracklane

    tracklane.set_experiment("mnist")
    with tracklane.start_run():
        tracklane.log_params({"lr": 0.01})
        tracklane.log_metric("loss", 0.31, step=10)

``tracklane.Client`` exposes every RPC; ``tracklane.exceptions`` the typed errors.
"""

from tracklane import artifacts, data, exceptions, models, pyfunc, sklearn
from tracklane.artifacts import (
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_table,
    log_text,
)
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
from tracklane.entities.model_registry import (
    ModelEvent,
    ModelStage,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from tracklane.fluent import (
    ActiveRun,
    active_run,
    configure_metrics,
    delete_tag,
    end_run,
    flush,
    get_experiment_by_name,
    get_run,
    get_tracking_uri,
    last_active_run,
    log_input,
    log_metric,
    log_metric_array,
    log_metrics,
    log_param,
    log_params,
    register_model,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from tracklane.system_metrics import (
    disable_system_metrics_logging,
    enable_system_metrics_logging,
    set_system_metrics_sampling_interval,
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
    "ModelEvent",
    "ModelStage",
    "ModelVersion",
    "ModelVersionStatus",
    "Param",
    "RegisteredModel",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunStatus",
    "RunTag",
    "ViewType",
    "__version__",
    "active_run",
    "artifacts",
    "configure_metrics",
    "data",
    "delete_tag",
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "end_run",
    "exceptions",
    "flush",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_metric",
    "log_metric_array",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "models",
    "pyfunc",
    "register_model",
    "search_runs",
    "set_experiment",
    "set_system_metrics_sampling_interval",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "sklearn",
    "start_run",
]
