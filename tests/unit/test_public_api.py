"""The public names are a promise: adding one is a decision, removing one breaks users."""

from __future__ import annotations

import tracklane


def test_top_level_all_is_pinned() -> None:
    assert sorted(tracklane.__all__) == sorted(
        [
            "ActiveRun", "Client", "Dataset", "DatasetInput", "Experiment", "LifecycleStage", "Metric",
            "MetricSeries", "Param", "Run", "RunData", "RunInfo", "RunInputs", "RunStatus", "RunTag",
            "ViewType", "__version__", "active_run", "data", "delete_tag", "end_run", "exceptions",
            "get_experiment_by_name",
            "get_run", "get_tracking_uri", "last_active_run", "log_input", "log_metric", "log_metrics",
            "log_param", "log_params", "search_runs", "set_experiment", "set_tag", "set_tags",
            "set_tracking_uri", "start_run",
        ]
    )  # fmt: skip
    for name in tracklane.__all__:
        assert hasattr(tracklane, name), name
