"""Tracklane: gRPC-native tracking for machine learning.

import tracklane
client = tracklane.Client()  # $TRACKLANE_TRACKING_URI or grpc://localhost:50051
experiment_id = client.create_experiment("mnist")
run = client.create_run(experiment_id)
"""

from tracklane import exceptions
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

__version__ = "0.1.0"

__all__ = [
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
    "exceptions",
]
