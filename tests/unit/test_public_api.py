"""The public names are a promise: adding one is a decision, removing one breaks users."""

from __future__ import annotations

import tracklane


def test_top_level_all_is_pinned() -> None:
    assert sorted(tracklane.__all__) == sorted(
        [
            "Client", "Dataset", "DatasetInput", "Experiment", "LifecycleStage", "Metric", "MetricSeries",
            "Param", "Run", "RunData", "RunInfo", "RunInputs", "RunStatus", "RunTag", "ViewType",
            "__version__", "exceptions",
        ]
    )  # fmt: skip
    for name in tracklane.__all__:
        assert hasattr(tracklane, name), name
