"""``save_model`` / ``log_model`` for models written as a ``PythonModel`` or as a script."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from tracklane.models import saving
from tracklane.models._imports import require
from tracklane.models.environment import PYTHON_ENV_FILE_NAME, pinned
from tracklane.models.model import Model, ModelInfo
from tracklane.models.signature import ModelSignature, infer_signature
from tracklane.pyfunc.model import FLAVOR_NAME, PythonModel

__all__ = ["add_to_model", "log_model", "save_model"]

PYTHON_MODEL_FILE_NAME = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"
CODE_DIR = "code"


def add_to_model(model: Model, loader_module: str, code: str | None = None, **params: Any) -> Model:
    """Adds the ``python_function`` flavor, pointing at ``loader_module``; what flavors call."""
    import platform

    conf: dict[str, Any] = {
        "loader_module": loader_module,
        "python_version": platform.python_version(),
        "env": {"virtualenv": PYTHON_ENV_FILE_NAME},
        **params,
    }
    if code:
        conf["code"] = code
    return model.add_flavor(FLAVOR_NAME, **conf)


def save_model(
    path: str | os.PathLike[str],
    python_model: PythonModel | str | os.PathLike[str] | None = None,
    artifacts: Mapping[str, str] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    model_config: Mapping[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    _model: Model | None = None,
) -> Model:
    """Saves a python-function model to a new local folder.

    Args:
        path: The folder to create; must not exist (or be empty).
        python_model: A ``PythonModel`` instance (pickled with cloudpickle), or the path of a
            script that calls ``tracklane.models.set_model(...)`` ("models from code": the script
            is stored and run at load time, nothing is pickled).
        artifacts: Name -> local path or ``runs:/`` URI of files the model needs; copied into
            the folder and given to ``load_context`` as ``context.artifacts[name]``.
        signature: Input/output schemas; inferred from ``input_example`` (inputs only) when None.
        input_example: Example input, saved as ``input_example.json``.
        pip_requirements: Replaces the default requirements (tracklane, cloudpickle).
        extra_pip_requirements: Added to the defaults.
        code_paths: Local files or folders copied into ``code/`` and put on ``sys.path`` at load.
        model_config: Settings given to the model as ``context.model_config``.
        metadata: Free-form metadata stored in MLmodel.

    Returns:
        The Model written to MLmodel.

    Raises:
        FileExistsError: ``path`` exists and is not empty.
        TypeError: ``python_model`` is neither a PythonModel nor a script path.
    """
    folder = saving.create_model_folder(path)
    model = _model or Model()
    params: dict[str, Any] = {}
    requirements = [pinned("tracklane")]
    if isinstance(python_model, str | os.PathLike):
        script = os.fspath(python_model)
        if not os.path.isfile(script):
            raise FileNotFoundError(f"model code not found: {script}")
        params["model_code_path"] = os.path.basename(script)
        shutil.copy2(script, os.path.join(folder, params["model_code_path"]))
    elif isinstance(python_model, PythonModel):
        cloudpickle = require("cloudpickle")
        with open(os.path.join(folder, PYTHON_MODEL_FILE_NAME), "wb") as out:
            cloudpickle.dump(python_model, out)
        params["python_model"] = PYTHON_MODEL_FILE_NAME
        params["cloudpickle_version"] = cloudpickle.__version__
        requirements.append(pinned("cloudpickle"))
    else:
        raise TypeError(
            f"python_model must be a PythonModel or the path of a script, got {type(python_model).__name__}"
        )
    if artifacts:
        params["artifacts"] = _copy_artifacts(folder, artifacts)
    if model_config:
        params["model_config"] = dict(model_config)
    code = _copy_code(folder, code_paths) if code_paths else None
    add_to_model(model, "tracklane.pyfunc.model", code=code, **params)
    if signature is None and input_example is not None:
        signature = infer_signature(input_example)
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
    artifact_path: str = "model",
    python_model: PythonModel | str | os.PathLike[str] | None = None,
    artifacts: Mapping[str, str] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    model_config: Mapping[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> ModelInfo:
    """Saves a python-function model (see ``save_model``) as artifacts of the active run.

    Args:
        artifact_path: Where in the run's artifacts.
        registered_model_name: Also register it under this name (created when missing).
        (the others): As in ``save_model``.

    Returns:
        ModelInfo; ``model_uri`` loads it, ``registered_model_version`` is set when registered.
    """

    def save(folder: str, model: Model) -> Model:
        return save_model(
            folder,
            python_model=python_model,
            artifacts=artifacts,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            code_paths=code_paths,
            model_config=model_config,
            metadata=metadata,
            _model=model,
        )

    return saving.log_model(artifact_path, save, registered_model_name)


def _copy_artifacts(folder: str, artifacts: Mapping[str, str]) -> dict[str, dict[str, str]]:
    from tracklane.models.uri import download_model

    out: dict[str, dict[str, str]] = {}
    root = os.path.join(folder, ARTIFACTS_DIR)
    for name, uri in artifacts.items():
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"artifact name {name!r}: use a plain file name")
        local = download_model(uri)  # a local path in place, or a runs:/ download
        target = os.path.join(root, name)
        os.makedirs(root, exist_ok=True)
        if os.path.isdir(local):
            shutil.copytree(local, target)
        else:
            shutil.copy2(local, target)
        out[name] = {"path": f"{ARTIFACTS_DIR}/{name}", "uri": str(uri)}
    return out


def _copy_code(folder: str, code_paths: Sequence[str | os.PathLike[str]]) -> str:
    root = os.path.join(folder, CODE_DIR)
    os.makedirs(root, exist_ok=True)
    for entry in code_paths:
        source = os.fspath(entry)
        target = os.path.join(root, os.path.basename(os.path.normpath(source)))
        if os.path.isdir(source):
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    return CODE_DIR
