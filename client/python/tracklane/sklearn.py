"""The scikit-learn flavor: save, log and load estimators (and pipelines) as model folders.

    import tracklane

    with tracklane.start_run():
        info = tracklane.sklearn.log_model(clf, "model", input_example=X[:5])
    clf = tracklane.sklearn.load_model(info.model_uri)
    tracklane.pyfunc.load_model(info.model_uri).predict(X)   # the signature enforced

Serialization: ``skops`` (the default) stores the estimator without pickle and, when loading,
refuses any type not on its list of trusted types: a model file cannot run code just by being
loaded. Some estimators hold types skops does not trust by default (e.g. the trees of
RandomForest*); it then names them, and you pass the ones you reviewed as ``trusted_types``.
``cloudpickle`` and ``pickle`` store anything, and LOADING A PICKLE RUNS CODE: use them only for
models you trust, as anyone who can write the file can run code where it is loaded.

scikit-learn and skops are optional: ``pip install "tracklane[sklearn]"``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from typing import Any

from tracklane.models import saving
from tracklane.models._imports import require
from tracklane.models.environment import pinned
from tracklane.models.model import Model, ModelInfo
from tracklane.models.signature import ModelSignature, infer_signature
from tracklane.models.uri import download_model
from tracklane.pyfunc.saving import add_to_model

__all__ = [
    "FLAVOR_NAME",
    "SERIALIZATION_FORMATS",
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_SKOPS",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "sklearn"
SERIALIZATION_FORMAT_SKOPS = "skops"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMATS = (
    SERIALIZATION_FORMAT_SKOPS,
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_PICKLE,
)
_FILE_NAMES = {
    SERIALIZATION_FORMAT_SKOPS: "model.skops",
    SERIALIZATION_FORMAT_CLOUDPICKLE: "model.pkl",
    SERIALIZATION_FORMAT_PICKLE: "model.pkl",
}


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    serialization_format: str = SERIALIZATION_FORMAT_SKOPS,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    _model: Model | None = None,
) -> Model:
    """Saves a scikit-learn estimator to a new local model folder.

    Args:
        sk_model: A fitted estimator or pipeline.
        path: The folder to create; must not exist (or be empty).
        serialization_format: ``"skops"`` (safe to load), ``"cloudpickle"`` or ``"pickle"``
            (loading runs code).
        signature: Input/output schemas; when None and ``input_example`` is given, inferred from
            the example and ``sk_model``'s predictions on it.
        input_example: Example input, saved as ``input_example.json``.
        pip_requirements: Replaces the default requirements (tracklane, scikit-learn, serializer).
        extra_pip_requirements: Added to the defaults.
        pyfunc_predict_fn: The method ``pyfunc`` calls: ``predict``, ``predict_proba``...
        metadata: Free-form metadata stored in MLmodel.

    Returns:
        The Model written to MLmodel.

    Raises:
        ValueError: an unknown serialization format or predict method.
        FileExistsError: ``path`` exists and is not empty.
    """
    sklearn = require("sklearn")
    if serialization_format not in SERIALIZATION_FORMATS:
        raise ValueError(
            f"serialization_format {serialization_format!r}: use one of {', '.join(SERIALIZATION_FORMATS)}"
        )
    if not callable(getattr(sk_model, pyfunc_predict_fn, None)):
        raise ValueError(
            f"{type(sk_model).__name__} has no method {pyfunc_predict_fn!r} for pyfunc_predict_fn"
        )
    folder = saving.create_model_folder(path)
    file_name = _FILE_NAMES[serialization_format]
    _serialize(sk_model, os.path.join(folder, file_name), serialization_format)
    model = _model or Model()
    model.add_flavor(
        FLAVOR_NAME,
        pickled_model=file_name,
        serialization_format=serialization_format,
        sklearn_version=sklearn.__version__,
        code=None,
    )
    add_to_model(model, "tracklane.sklearn", model_path=file_name, predict_fn=pyfunc_predict_fn)
    if signature is None and input_example is not None:
        signature = infer_signature(input_example, getattr(sk_model, pyfunc_predict_fn)(input_example))
    serializer = "skops" if serialization_format == SERIALIZATION_FORMAT_SKOPS else "cloudpickle"
    requirements = [pinned("tracklane"), pinned("scikit-learn")]
    if serialization_format != SERIALIZATION_FORMAT_PICKLE:
        requirements.append(pinned(serializer))
    return saving.finish_model_folder(
        folder,
        model,
        signature=signature,
        input_example=input_example,
        default_requirements=requirements,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def log_model(
    sk_model: Any,
    artifact_path: str = "model",
    serialization_format: str = SERIALIZATION_FORMAT_SKOPS,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
) -> ModelInfo:
    """Saves an estimator (see ``save_model``) as artifacts of the active run (started if none).

    Args:
        sk_model: A fitted estimator or pipeline.
        artifact_path: Where in the run's artifacts.
        registered_model_name: Also register it under this name (created when missing).
        (the others): As in ``save_model``.

    Returns:
        ModelInfo; ``model_uri`` is ``runs:/<run_id>/<artifact_path>``.
    """

    def save(folder: str, model: Model) -> Model:
        return save_model(
            sk_model,
            folder,
            serialization_format=serialization_format,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            pyfunc_predict_fn=pyfunc_predict_fn,
            metadata=metadata,
            _model=model,
        )

    return saving.log_model(artifact_path, save, registered_model_name)


def load_model(
    model_uri: str | os.PathLike[str], dst_path: str | None = None, trusted_types: Sequence[str] | None = None
) -> Any:
    """Loads the scikit-learn estimator of a model folder or URI.

    Args:
        model_uri: A local folder, ``runs:/``, or ``models:/`` URI.
        dst_path: Where to download a remote model (a temporary folder when None).
        trusted_types: For skops files: type names (as skops reports them) you reviewed and trust,
            beyond skops' defaults.

    Returns:
        The estimator.

    Raises:
        ValueError: the model has no sklearn flavor, or (skops) holds types not trusted.
    """
    local = download_model(os.fspath(model_uri), dst_path)
    return _load_from_folder(local, trusted_types)


def _load_from_folder(local: str, trusted_types: Sequence[str] | None) -> Any:
    meta = Model.load(local)
    conf = meta.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise ValueError(f"model at {local} has no {FLAVOR_NAME} flavor (it has {sorted(meta.flavors)})")
    return _deserialize(
        os.path.join(local, conf["pickled_model"]),
        conf.get("serialization_format", SERIALIZATION_FORMAT_CLOUDPICKLE),
        trusted_types,
    )


def _serialize(sk_model: Any, path: str, serialization_format: str) -> None:
    if serialization_format == SERIALIZATION_FORMAT_SKOPS:
        require("skops.io").dump(sk_model, path)
        return
    with open(path, "wb") as out:
        if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE:
            require("cloudpickle").dump(sk_model, out)
        else:
            pickle.dump(sk_model, out, protocol=pickle.DEFAULT_PROTOCOL)


def _deserialize(path: str, serialization_format: str, trusted_types: Sequence[str] | None) -> Any:
    if serialization_format == SERIALIZATION_FORMAT_SKOPS:
        skops_io = require("skops.io")
        untrusted = [t for t in skops_io.get_untrusted_types(file=path) if t not in (trusted_types or ())]
        if untrusted:
            raise ValueError(
                f"the model file holds types skops does not trust by default: {untrusted}. "
                "If you trust where this model comes from, review them and pass them as "
                "trusted_types=[...] to load_model"
            )
        return skops_io.load(path, trusted=list(trusted_types or []))
    if serialization_format not in SERIALIZATION_FORMATS:
        raise ValueError(f"unknown serialization_format {serialization_format!r} in MLmodel")
    # Unpickling runs code: only models from trusted sources get here (see the module docstring).
    with open(path, "rb") as src:
        return pickle.load(src)  # cloudpickle output is read by pickle


class _SklearnModelWrapper:
    """``predict(data, params=None)`` for pyfunc, calling the configured method."""

    def __init__(self, raw_model: Any, predict_fn: str) -> None:
        self.raw_model = raw_model
        self._predict = getattr(raw_model, predict_fn)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self._predict(data)


def _load_pyfunc(
    model_dir: str, trusted_types: Sequence[str] | None = None, **_: Any
) -> _SklearnModelWrapper:
    """The pyfunc loader for sklearn model folders."""
    conf = Model.load(model_dir).flavors["python_function"]
    return _SklearnModelWrapper(
        _load_from_folder(model_dir, trusted_types), conf.get("predict_fn", "predict")
    )
