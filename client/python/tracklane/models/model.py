"""``Model``: the ``MLmodel`` file at the root of every model folder, read and written.

A model folder (MLflow's layout)::

    model/
      MLmodel             this file: flavors, signature, input example, uuid, run, creation time
      model.skops         the flavor's data (model.pkl for pickle formats, python_model.pkl...)
      input_example.json  an example input, when one was given
      requirements.txt    pip requirements to load it
      python_env.yaml     Python version and build tools; installs requirements.txt

and the ``MLmodel`` YAML::

    artifact_path: model
    flavors:
      python_function: {loader_module: tracklane.sklearn, model_path: model.skops, ...}
      sklearn: {pickled_model: model.skops, serialization_format: skops, sklearn_version: 1.5.2}
    model_uuid: 6b0f...
    run_id: 9a1c...
    signature: {inputs: '[{"type": "double", "name": "x", "required": true}]', outputs: ...}
    saved_input_example_info: {artifact_path: input_example.json, type: dataframe, ...}
    utc_time_created: '2026-11-23 10:00:00.000000'
    tracklane_version: 0.1.0
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import yaml

from tracklane.models.signature import ModelSignature

__all__ = ["MLMODEL_FILE_NAME", "Model", "ModelInfo"]

MLMODEL_FILE_NAME = "MLmodel"


class Model:
    """The metadata of a model folder: what ``MLmodel`` holds.

    Attributes:
        artifact_path: Where it was logged in its run (None when only saved locally).
        run_id: The run it was logged to, if any.
        flavors: Flavor name -> that flavor's settings.
        signature: Input and output schemas, if known.
        saved_input_example_info: Where and how the input example is stored, if there is one.
        model_uuid: A random id, new for every save.
        utc_time_created: When it was saved, ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC.
        metadata: Free-form user metadata.
        model_size_bytes: Size of the folder's files when saved.
        tracklane_version: The client version that wrote it.
    """

    def __init__(
        self,
        artifact_path: str | None = None,
        run_id: str | None = None,
        utc_time_created: str | None = None,
        flavors: dict[str, dict[str, Any]] | None = None,
        signature: ModelSignature | None = None,
        saved_input_example_info: dict[str, Any] | None = None,
        model_uuid: str | None = None,
        metadata: dict[str, Any] | None = None,
        model_size_bytes: int | None = None,
        tracklane_version: str | None = None,
        **extra: Any,
    ) -> None:
        from tracklane import __version__

        self.artifact_path = artifact_path
        self.run_id = run_id
        self.utc_time_created = utc_time_created or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        self.flavors: dict[str, dict[str, Any]] = dict(flavors or {})
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.metadata = metadata
        self.model_size_bytes = model_size_bytes
        self.tracklane_version = tracklane_version or __version__
        # Keys written by other tools (e.g. MLflow's ``mlflow_version``) survive a round trip.
        self.extra: dict[str, Any] = extra

    def add_flavor(self, name: str, **params: Any) -> Model:
        """Adds (or replaces) a flavor; returns self."""
        self.flavors[name] = params
        return self

    def get_input_schema(self) -> Any:
        """The input Schema, or None."""
        return None if self.signature is None else self.signature.inputs

    def get_output_schema(self) -> Any:
        """The output Schema, or None."""
        return None if self.signature is None else self.signature.outputs

    def load_input_example(self, path: str | os.PathLike[str]) -> Any:
        """The saved input example of the model folder at ``path``, or None when there is none."""
        from tracklane.models.input_example import load_input_example

        if self.saved_input_example_info is None:
            return None
        return load_input_example(os.fspath(path), self.saved_input_example_info)

    def to_dict(self) -> dict[str, Any]:
        """The MLmodel content; None values left out."""
        out: dict[str, Any] = {
            "artifact_path": self.artifact_path,
            "flavors": self.flavors,
            "model_size_bytes": self.model_size_bytes,
            "model_uuid": self.model_uuid,
            "run_id": self.run_id,
            "saved_input_example_info": self.saved_input_example_info,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "metadata": self.metadata,
            "tracklane_version": self.tracklane_version,
            "utc_time_created": self.utc_time_created,
            **self.extra,
        }
        return {key: value for key, value in out.items() if value is not None}

    def to_yaml(self) -> str:
        """The MLmodel text."""
        return yaml.safe_dump(self.to_dict(), default_flow_style=False, sort_keys=True)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the MLmodel file to ``path`` (a file path)."""
        with open(path, "w", encoding="utf-8") as out:
            out.write(self.to_yaml())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        """Builds a Model from MLmodel content."""
        data = dict(data)
        signature = data.pop("signature", None)
        return cls(signature=None if not signature else ModelSignature.from_dict(signature), **data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Reads an MLmodel: a model folder, the MLmodel file itself, or a model URI.

        Args:
            path: A local folder or file, or a ``runs:/`` or ``models:/`` URI (only the MLmodel
                file is downloaded).

        Raises:
            FileNotFoundError: there is no MLmodel there.
        """
        from tracklane.models.uri import download_model_file

        with tempfile.TemporaryDirectory(prefix="tracklane-mlmodel-") as tmp:
            local = download_model_file(os.fspath(path), MLMODEL_FILE_NAME, tmp)
            if os.path.isdir(local):
                local = os.path.join(local, MLMODEL_FILE_NAME)
            if not os.path.isfile(local):
                raise FileNotFoundError(f"no {MLMODEL_FILE_NAME} file at {path}: is it a model folder?")
            with open(local, encoding="utf-8") as src:
                data = yaml.safe_load(src)
        if not isinstance(data, dict):
            raise ValueError(f"{local} is not an MLmodel file: expected a YAML mapping")
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.model_uuid)

    def __repr__(self) -> str:
        where = f"run_id={self.run_id!r}, artifact_path={self.artifact_path!r}"
        return f"Model({where}, flavors={list(self.flavors)})"


@dataclass(frozen=True)
class ModelInfo:
    """What ``log_model`` returns: where the model went and what it is.

    Attributes:
        model_uri: ``runs:/<run_id>/<artifact_path>``: load it with ``tracklane.pyfunc.load_model``.
        registered_model_version: The version created when ``registered_model_name`` was given.
    """

    artifact_path: str
    flavors: dict[str, dict[str, Any]]
    model_uri: str
    model_uuid: str
    run_id: str
    saved_input_example_info: dict[str, Any] | None
    signature: ModelSignature | None
    utc_time_created: str
    tracklane_version: str
    registered_model_version: int | None = None

    @classmethod
    def of(cls, model: Model, model_uri: str, registered_model_version: int | None = None) -> ModelInfo:
        """The ModelInfo of a logged Model."""
        return cls(
            artifact_path=model.artifact_path or "",
            flavors=model.flavors,
            model_uri=model_uri,
            model_uuid=model.model_uuid,
            run_id=model.run_id or "",
            saved_input_example_info=model.saved_input_example_info,
            signature=model.signature,
            utc_time_created=model.utc_time_created,
            tracklane_version=model.tracklane_version,
            registered_model_version=registered_model_version,
        )
