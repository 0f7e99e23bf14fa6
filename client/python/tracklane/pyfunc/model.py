"""``PythonModel`` (write any model as a class), ``PyFuncModel`` (any flavor behind one ``predict``).

A flavor joins ``pyfunc`` by naming, in its ``python_function`` flavor, a ``loader_module`` with
``_load_pyfunc(model_dir, **options)`` returning an object with ``predict(data, params=None)``.
``tracklane.pyfunc.model`` is itself the loader of models written as a ``PythonModel``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracklane.models._imports import require
from tracklane.models.enforcement import enforce_schema
from tracklane.models.model import Model

__all__ = ["FLAVOR_NAME", "PyFuncModel", "PythonModel", "PythonModelContext", "load_model"]

FLAVOR_NAME = "python_function"

# Loaders of model folders MLflow wrote whose data Tracklane reads as is (scikit-learn models:
# same flavor fields, same serialization formats).
_MLFLOW_LOADERS = {"mlflow.sklearn": "tracklane.sklearn"}


@dataclass(frozen=True)
class PythonModelContext:
    """What ``PythonModel.load_context`` and ``predict`` get.

    Attributes:
        artifacts: Artifact name -> local path of its copy inside the model folder.
        model_config: The ``model_config`` given at save (or load) time.
    """

    artifacts: Mapping[str, str] = field(default_factory=dict)
    model_config: Mapping[str, Any] = field(default_factory=dict)


class PythonModel:
    """Base class for a model written in Python: override ``predict`` (and ``load_context``).

    ``predict(self, context, model_input, params=None)`` as in MLflow; a ``predict(self, model_input,
    params=None)`` without the context is accepted too.
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Called once when the model is loaded: open files from ``context.artifacts`` here."""

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        """Returns predictions for ``model_input`` (already checked against the signature)."""
        raise NotImplementedError("PythonModel subclasses implement predict()")


class PyFuncModel:
    """A loaded model of any flavor; ``predict`` checks the input against the signature first.

    Attributes:
        metadata: The model's MLmodel.
        model_dir: The local folder it was loaded from.
    """

    def __init__(self, metadata: Model, impl: Any, model_dir: str) -> None:
        self.metadata = metadata
        self.model_dir = model_dir
        self._impl = impl

    @property
    def loader_module(self) -> str:
        """The module that loaded it."""
        name = str(self.metadata.flavors[FLAVOR_NAME]["loader_module"])
        return _MLFLOW_LOADERS.get(name, name)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data``.

        Args:
            data: pandas DataFrame or Series, numpy array, dict or list, as the signature allows.
            params: Inference parameters passed to the model.

        Raises:
            SchemaEnforcementError: ``data`` does not match the input signature (missing columns,
                types that cannot be converted safely, wrong tensor shapes).
        """
        schema = self.metadata.get_input_schema()
        if schema is not None:
            data = enforce_schema(data, schema)
        return self._impl.predict(data, params=params)

    def unwrap_python_model(self) -> Any:
        """The underlying PythonModel (or function), for models saved with ``python_model``."""
        model = getattr(self._impl, "python_model", None)
        if model is None:
            raise ValueError(f"this model was loaded by {self.loader_module}, not from a PythonModel")
        return model

    def get_raw_model(self) -> Any:
        """The flavor's own model object (e.g. the scikit-learn estimator)."""
        return getattr(self._impl, "raw_model", getattr(self._impl, "python_model", self._impl))

    def __repr__(self) -> str:
        return f"PyFuncModel(loader_module={self.loader_module!r}, run_id={self.metadata.run_id!r})"


def load_model(
    model_uri: str | os.PathLike[str],
    dst_path: str | None = None,
    model_config: Mapping[str, Any] | None = None,
    trusted_types: list[str] | None = None,
) -> PyFuncModel:
    """Loads any model with a ``python_function`` flavor.

    Loading runs code: a pickled model (``cloudpickle``/``pickle`` formats, ``PythonModel``) can
    do anything when unpickled, and a models-from-code script is run. Load only models you trust;
    scikit-learn models saved in the default ``skops`` format are checked against a list of
    trusted types instead of being unpickled.

    Args:
        model_uri: A local folder, ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``,
            ``models:/<name>@<alias>`` or ``models:/<name>/<stage>``.
        dst_path: Where to download a remote model (a temporary folder when None).
        model_config: Overrides the ``model_config`` saved with a PythonModel.
        trusted_types: For skops-serialized models, extra type names you reviewed and trust.

    Returns:
        A PyFuncModel.

    Raises:
        NotFound: the run, file, model, version, alias or stage does not exist.
        ValueError: the model has no python_function flavor.
    """
    from tracklane.models.uri import download_model

    local = download_model(os.fspath(model_uri), dst_path)
    meta = Model.load(local)
    conf = meta.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise ValueError(
            f"model at {model_uri} has no {FLAVOR_NAME} flavor (it has {sorted(meta.flavors)}); "
            "load it with its own flavor's load_model"
        )
    add_code_to_path(local, conf)
    options: dict[str, Any] = {}
    if model_config is not None:
        options["model_config"] = dict(model_config)
    if trusted_types is not None:
        options["trusted_types"] = list(trusted_types)
    loader_module = str(conf["loader_module"])
    loader = importlib.import_module(_MLFLOW_LOADERS.get(loader_module, loader_module))
    impl = loader._load_pyfunc(local, **options)
    return PyFuncModel(meta, impl, local)


def add_code_to_path(model_dir: str, conf: Mapping[str, Any]) -> None:
    """Puts the model's bundled ``code`` folder (from ``code_paths``) on ``sys.path``."""
    code = conf.get("code")
    if code:
        path = os.path.join(model_dir, code)
        if path not in sys.path:
            sys.path.insert(0, path)


class _PythonModelWrapper:
    """Adapts a PythonModel (or a plain function) to ``predict(data, params=None)``."""

    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.context = context
        self._target: Any = python_model.predict if isinstance(python_model, PythonModel) else python_model
        parameters = list(inspect.signature(self._target).parameters)
        self._wants_context = bool(parameters) and parameters[0] == "context"
        self._wants_params = "params" in parameters

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        args = (self.context, data) if self._wants_context else (data,)
        if self._wants_params:
            return self._target(*args, params=params)
        return self._target(*args)


def _load_pyfunc(model_dir: str, model_config: Mapping[str, Any] | None = None, **_: Any) -> Any:
    """The loader of models saved by ``tracklane.pyfunc.save_model``."""
    from tracklane.models.code import load_model_from_code

    conf = Model.load(model_dir).flavors[FLAVOR_NAME]
    artifacts = {
        name: os.path.join(model_dir, entry["path"]) for name, entry in (conf.get("artifacts") or {}).items()
    }
    config = {**(conf.get("model_config") or {}), **(model_config or {})}
    context = PythonModelContext(artifacts=artifacts, model_config=config)
    if conf.get("model_code_path"):
        python_model = load_model_from_code(os.path.join(model_dir, conf["model_code_path"]))
    else:
        with open(os.path.join(model_dir, conf["python_model"]), "rb") as src:
            python_model = require("cloudpickle").load(src)
    if isinstance(python_model, PythonModel):
        python_model.load_context(context)
    return _PythonModelWrapper(python_model, context)
