"""Small, immutable entities returned by the Client (and built by the server's store).

Part of the shared core the server imports (with :mod:`tracklane.v1`, :mod:`tracklane.wire` and
:mod:`tracklane.exceptions`); it imports nothing else of the client. As in MLflow:

- :mod:`~tracklane.entities.tracking`: experiments, runs, metrics, params, tags, datasets.
- :mod:`~tracklane.entities.model_registry`: registered models, versions, stages, events.

Times are epoch milliseconds (``int``), as in MLflow; ``None`` where unset. Each entity converts
to and from its ``tracklane.v1`` message in its module, and only there.
"""

from tracklane.entities.tracking import (
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

__all__ = [
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
]
