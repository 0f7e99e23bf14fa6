"""The input example saved beside a model, as JSON, in MLflow's forms.

    DataFrame              {"columns": [...], "data": [[...], ...]}     type dataframe, pandas_orient split
    numpy array            {"inputs": [[...], ...]}                     type ndarray, format tf-serving
    dict of numpy arrays   {"inputs": {"name": [...], ...}}             type ndarray, format tf-serving
    dict, list, scalar     the value itself                             type json_object

Arrays keep their dtype in the info (``dtype`` / ``dtypes``) so the example loads back as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from tracklane.models._imports import pandas_or_none, require

__all__ = ["INPUT_EXAMPLE_FILE_NAME", "load_input_example", "save_input_example"]

INPUT_EXAMPLE_FILE_NAME = "input_example.json"


def save_input_example(model_dir: str, example: Any) -> dict[str, Any]:
    """Writes ``example`` into ``model_dir``; returns the ``saved_input_example_info`` for MLmodel.

    Raises:
        TypeError: the example cannot be written as JSON.
    """
    pd = pandas_or_none()
    info: dict[str, Any] = {"artifact_path": INPUT_EXAMPLE_FILE_NAME}
    if pd is not None and isinstance(example, pd.Series):
        example = example.to_frame()
    if pd is not None and isinstance(example, pd.DataFrame):
        content: Any = json.loads(example.to_json(orient="split", index=False, date_format="iso"))
        content.pop("index", None)
        info.update(type="dataframe", pandas_orient="split")
        info["dtypes"] = {str(c): str(t) for c, t in example.dtypes.items()}
    elif isinstance(example, np.ndarray):
        content = {"inputs": example.tolist()}
        info.update(type="ndarray", format="tf-serving", dtype=str(example.dtype))
    elif (
        isinstance(example, Mapping)
        and example
        and all(isinstance(value, np.ndarray) for value in example.values())
    ):
        content = {"inputs": {str(k): v.tolist() for k, v in example.items()}}
        info.update(
            type="ndarray", format="tf-serving", dtypes={str(k): str(v.dtype) for k, v in example.items()}
        )
    else:
        content = example
        info.update(type="json_object")
    try:
        text = json.dumps(content, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot save the input example as JSON: {exc}") from exc
    with open(os.path.join(model_dir, INPUT_EXAMPLE_FILE_NAME), "w", encoding="utf-8") as out:
        out.write(text)
    return info


def load_input_example(model_dir: str, info: Mapping[str, Any]) -> Any:
    """Reads the input example ``info`` describes from ``model_dir``."""
    with open(os.path.join(model_dir, info["artifact_path"]), encoding="utf-8") as src:
        content = json.load(src)
    kind = info.get("type")
    if kind == "dataframe":
        frame = require("pandas").DataFrame(content["data"], columns=content["columns"])
        for column, dtype in (info.get("dtypes") or {}).items():
            if column in frame.columns:
                # When the dtype does not apply, the JSON value is the best we have.
                with contextlib.suppress(TypeError, ValueError):
                    frame[column] = frame[column].astype(dtype)
        return frame
    if kind == "ndarray":
        inputs = content["inputs"]
        if isinstance(inputs, dict):
            dtypes = info.get("dtypes") or {}
            return {name: np.asarray(value, dtype=dtypes.get(name)) for name, value in inputs.items()}
        return np.asarray(inputs, dtype=info.get("dtype"))
    return content


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
