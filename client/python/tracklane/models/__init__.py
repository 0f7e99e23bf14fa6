"""The model format: a folder with an ``MLmodel`` file, signatures, input examples and model URIs.

    from tracklane.models import Model, infer_signature

    signature = infer_signature(X_train, model.predict(X_train))
    Model.load("runs:/<run_id>/model").signature

``evaluate`` scores a model on labelled data (MLflow's metric names) and logs metrics and plots.

Flavors that write and read model folders: ``tracklane.sklearn`` and ``tracklane.pyfunc``.
"""

from tracklane.models.code import set_model
from tracklane.models.deploy import build_docker, predict
from tracklane.models.enforcement import SchemaEnforcementError, enforce_schema
from tracklane.models.evaluation import (
    EvaluationMetric,
    EvaluationResult,
    MetricThreshold,
    ModelValidationFailedException,
    evaluate,
    make_metric,
)
from tracklane.models.model import MLMODEL_FILE_NAME, Model, ModelInfo
from tracklane.models.schema import ColSpec, DataType, Schema, TensorSpec
from tracklane.models.signature import ModelSignature, infer_signature
from tracklane.models.uri import download_model

__all__ = [
    "MLMODEL_FILE_NAME",
    "ColSpec",
    "DataType",
    "EvaluationMetric",
    "EvaluationResult",
    "MetricThreshold",
    "Model",
    "ModelInfo",
    "ModelSignature",
    "ModelValidationFailedException",
    "Schema",
    "SchemaEnforcementError",
    "TensorSpec",
    "build_docker",
    "download_model",
    "enforce_schema",
    "evaluate",
    "infer_signature",
    "make_metric",
    "predict",
    "set_model",
]
