"""The public names are a promise: adding one is a decision, removing one breaks users."""

from __future__ import annotations

import tracklane


def test_top_level_all_is_pinned() -> None:
    assert sorted(tracklane.__all__) == sorted(
        [
            "ActiveRun", "Client", "Dataset", "DatasetInput", "Experiment", "LifecycleStage", "Metric",
            "MetricSeries", "ModelEvent", "ModelStage", "ModelVersion", "ModelVersionStatus", "Param",
            "RegisteredModel", "Run", "RunData", "RunInfo", "RunInputs", "RunStatus", "RunTag",
            "ViewType", "__version__", "active_run", "artifacts", "data", "delete_tag", "end_run",
            "exceptions",
            "get_experiment_by_name",
            "get_run", "get_tracking_uri", "last_active_run", "log_artifact", "log_artifacts", "log_dict",
            "log_figure", "log_image", "log_input", "log_metric", "log_metrics",
            "log_param", "log_params", "log_table", "log_text", "register_model", "search_runs",
            "set_experiment", "set_tag",
            "set_tags",
            "set_tracking_uri", "start_run", "models", "pyfunc", "sklearn",
            "configure_metrics", "flush", "log_metric_array",
            "disable_system_metrics_logging", "enable_system_metrics_logging",
            "set_system_metrics_sampling_interval",
        ]
    )  # fmt: skip
    for name in tracklane.__all__:
        assert hasattr(tracklane, name), name
