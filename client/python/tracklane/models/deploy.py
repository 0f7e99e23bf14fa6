"""``predict`` and ``build_docker``: a model scored from a file, or packaged as a serving image.

Both take MLflow's arguments. The scoring code is the model server's (``tracklane.serving``), so a
file scores here exactly as a request to ``tracklane models serve`` would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["build_docker", "predict"]


def predict(
    model_uri: str,
    input_data: Any = None,
    input_path: str | None = None,
    content_type: str = "json",
    output_path: str | None = None,
    env_manager: str = "local",
    install_mlflow: bool = False,
    pip_requirements_override: Sequence[str] | None = None,
    extra_envs: Mapping[str, str] | None = None,
) -> None:
    """Scores input with a model and writes ``{"predictions": ...}``, as the model server would.

    Args:
        model_uri: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME/STAGE``,
            ``runs:/RUN_ID/PATH`` or a local folder.
        input_data: The input itself: a pandas DataFrame, numpy array, dict or list (sent as
            ``dataframe_split`` or ``inputs``), or a request body as a string.
        input_path: A file holding a request body; neither this nor ``input_data``: stdin.
        content_type: ``json``, ``csv`` or ``parquet``: how the body is written.
        output_path: Where to write the predictions; None: stdout.
        env_manager: ``local`` (this interpreter), ``uv``/``virtualenv`` (an environment built
            from the model's requirements, cached) or ``conda``. MLflow defaults to virtualenv.
        install_mlflow: Accepted for MLflow's callers; Tracklane's client is always installed.
        pip_requirements_override: Requirements installed on top of the model's (not ``local``).
        extra_envs: Environment variables for the scoring process (not ``local``).

    Raises:
        ValueError: both ``input_data`` and ``input_path``, or an unknown content type.
        tracklane.serving.payload.ScoringError: the input does not parse or fit the signature.
    """
    from tracklane.serving.environments import prepare_python
    from tracklane.serving.predicting import CONTENT_TYPE_NAMES, predict_file
    from tracklane.serving.supervisor import resolve_model

    del install_mlflow
    if input_data is not None and input_path is not None:
        raise ValueError("pass input_data or input_path, not both")
    if content_type not in CONTENT_TYPE_NAMES:
        raise ValueError(f"content_type {content_type!r}: use one of {', '.join(CONTENT_TYPE_NAMES)}")
    with tempfile.TemporaryDirectory(prefix="tracklane-predict-") as tmp:
        model = resolve_model(model_uri, dst_path=os.path.join(tmp, "model"))
        source = input_path or "-"
        if input_data is not None:
            source = os.path.join(tmp, "input")
            with open(source, "wb") as out:
                out.write(_serialize_input(input_data, content_type))
        target = output_path or "-"
        python = prepare_python(model.model_dir, env_manager, pip_requirements_override)
        if python == sys.executable and not extra_envs:
            predict_file(model.model_dir, source, target, content_type)
            return
        cmd = [python, "-m", "tracklane.serving.predicting", model.model_dir, source, target, content_type]
        result = subprocess.run(cmd, env={**os.environ, **(extra_envs or {})}, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"scoring in the model's environment failed (exit {result.returncode})")


def _serialize_input(data: Any, content_type: str) -> bytes:
    from tracklane.models._imports import pandas_or_none
    from tracklane.serving.payload import jsonable

    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    pd = pandas_or_none()
    frame = pd is not None and isinstance(data, pd.DataFrame)
    if content_type == "csv" and frame:
        return str(data.to_csv(index=False)).encode("utf-8")
    if content_type == "parquet" and frame:
        return bytes(data.to_parquet(index=False))
    if content_type != "json":
        raise ValueError(f"input_data for content_type {content_type!r} must be a pandas DataFrame")
    import orjson

    if frame:
        split = data.to_dict(orient="split")
        body = {"dataframe_split": {"columns": split["columns"], "data": jsonable(split["data"])}}
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return orjson.dumps({"inputs": jsonable(data)}, option=orjson.OPT_SERIALIZE_NUMPY)


def build_docker(
    model_uri: str | None = None,
    name: str = "tracklane-pyfunc",
    env_manager: str = "virtualenv",
    mlflow_home: str | None = None,
    install_java: bool = False,
    install_mlflow: bool = False,
    enable_mlserver: bool = False,
    base_image: str | None = None,
) -> None:
    """Builds a container image whose entrypoint serves the model: REST on 8080, OIP gRPC on 8081.

    The model's requirements are installed with uv into the image (the environment MLflow's
    ``virtualenv`` manager would make); it runs as a non-root user and has a HEALTHCHECK. Built
    with ``docker`` when a Docker engine answers, else with ``buildah``.

    Args:
        model_uri: The model to put in the image (required: Tracklane builds per-model images).
        name: The image's name (tag).
        env_manager: Accepted for MLflow's callers; the image always uses the model's requirements.
        mlflow_home: Not supported (Tracklane installs its own client).
        install_java: Not supported (Spark UDFs are out of scope).
        install_mlflow: Accepted; Tracklane's client is always installed.
        enable_mlserver: Accepted; the image always serves the Open Inference Protocol too.
        base_image: A Debian-like image with python3 (default ``python:3.11-slim-bookworm``).

    Raises:
        ValueError: no model_uri, or an unsupported option.
        tracklane.exceptions.FailedPrecondition: neither docker nor buildah works here.
    """
    from tracklane.serving.images import build_image

    del env_manager, install_mlflow, enable_mlserver
    if model_uri is None:
        raise ValueError("build_docker needs a model_uri: Tracklane images serve one model each")
    if mlflow_home is not None or install_java:
        raise ValueError("mlflow_home and install_java are not supported by Tracklane's images")
    build_image(model_uri, name, base_image)
