"""What every flavor's ``save_model`` and ``log_model`` share: the folder, MLmodel, upload, registration."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tracklane.models.environment import write_environment
from tracklane.models.input_example import save_input_example
from tracklane.models.model import MLMODEL_FILE_NAME, Model, ModelInfo
from tracklane.models.signature import ModelSignature

__all__ = ["create_model_folder", "finish_model_folder", "log_model"]


def create_model_folder(path: str | os.PathLike[str]) -> str:
    """Creates an empty model folder; returns its absolute path.

    Raises:
        FileExistsError: ``path`` exists and is not an empty folder (a model is never overwritten).
    """
    folder = os.path.abspath(os.fspath(path))
    if os.path.exists(folder) and (not os.path.isdir(folder) or os.listdir(folder)):
        raise FileExistsError(f"{folder} already exists and is not empty; save the model somewhere new")
    os.makedirs(folder, exist_ok=True)
    return folder


def finish_model_folder(
    folder: str,
    model: Model,
    *,
    signature: ModelSignature | None,
    input_example: Any,
    default_requirements: Iterable[str],
    pip_requirements: Sequence[str] | None,
    extra_pip_requirements: Sequence[str] | None,
    metadata: dict[str, Any] | None,
) -> Model:
    """Writes the input example, the environment files and MLmodel, once the flavor data is there."""
    model.signature = signature
    if input_example is not None:
        model.saved_input_example_info = save_input_example(folder, input_example)
    if metadata is not None:
        model.metadata = metadata
    write_environment(folder, default_requirements, pip_requirements, extra_pip_requirements)
    model.model_size_bytes = sum(
        os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names
    )
    model.save(os.path.join(folder, MLMODEL_FILE_NAME))
    return model


def log_model(
    artifact_path: str,
    save: Callable[[str, Model], Model],
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Saves a model with ``save`` into a temporary folder and uploads it to the active run.

    A run is started when none is active, as MLflow does. With ``registered_model_name``, the
    model is registered (the registered model is created when missing).

    Args:
        artifact_path: Where in the run's artifacts, e.g. ``"model"``.
        save: The flavor's save: ``save(folder, model)`` fills ``folder`` and returns the Model.
        registered_model_name: Register the logged model under this name.

    Returns:
        The ModelInfo; ``model_uri`` is ``runs:/<run_id>/<artifact_path>``.
    """
    from tracklane import fluent

    artifact_path = artifact_path.strip("/")
    if not artifact_path:
        raise ValueError("artifact_path must not be empty")
    run = fluent.active_run() or fluent.start_run()
    run_id = run.info.run_id
    with tempfile.TemporaryDirectory(prefix="tracklane-log-model-") as tmp:
        folder = os.path.join(tmp, "model")
        model = save(folder, Model(artifact_path=artifact_path, run_id=run_id))
        fluent.default_client().log_artifacts(run_id, folder, artifact_path)
    model_uri = f"runs:/{run_id}/{artifact_path}"
    version = None
    if registered_model_name is not None:
        from tracklane.fluent import register_model

        version = int(register_model(model_uri, registered_model_name).version)
    return ModelInfo.of(model, model_uri, version)
