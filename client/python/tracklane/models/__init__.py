"""The model format: a folder with an ``MLmodel`` file, signatures, input examples and model URIs.

    from tracklane.models import Model, infer_signature

    signature = infer_signature(X_train, model.predict(X_train))
    Model.load("runs:/<run_id>/model").signature

Flavors that write and read model folders: ``tracklane.sklearn`` and ``tracklane.pyfunc``.
"""

from tracklane.models.code import set_model
from tracklane.models.deploy import build_docker, predict
from tracklane.models.enforcement import SchemaEnforcementError, enforce_schema
from tracklane.models.model import MLMODEL_FILE_NAME, Model, ModelInfo
from tracklane.models.schema import ColSpec, DataType, Schema, TensorSpec
from tracklane.models.signature import ModelSignature, infer_signature
from tracklane.models.uri import download_model

__all__ = [
    "MLMODEL_FILE_NAME",
    "ColSpec",
    "DataType",
    "Model",
    "ModelInfo",
    "ModelSignature",
    "Schema",
    "SchemaEnforcementError",
    "TensorSpec",
    "build_docker",
    "download_model",
    "enforce_schema",
    "infer_signature",
    "predict",
    "set_model",
]
