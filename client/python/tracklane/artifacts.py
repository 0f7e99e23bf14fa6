"""Artifacts: files of a run (models, plots, checkpoints, tables), MLflow's names.

Fluent functions log to the active run (starting one when none is active, like ``log_param``)::

    with tracklane.start_run():
        tracklane.log_artifact("model.pt", artifact_path="checkpoints")
        tracklane.log_dict({"lr": 0.01}, "config.yaml")

Reading works on any run, by id or ``runs:/<run_id>/<path>`` URI::

    local = tracklane.artifacts.download_artifacts("runs:/0123abcd/checkpoints", dst_path="out")
    config = tracklane.artifacts.load_dict("runs:/0123abcd/config.yaml")
"""

from __future__ import annotations

import io
import json
import os
import posixpath
from collections.abc import Mapping
from typing import Any

import yaml

from tracklane import fluent
from tracklane._artifacts.transfer import FileInfo
from tracklane.exceptions import InvalidArgument

__all__ = [
    "FileInfo",
    "download_artifacts",
    "list_artifacts",
    "load_dict",
    "load_text",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_table",
    "log_text",
    "parse_runs_uri",
]

_RUNS_SCHEME = "runs:/"


def parse_runs_uri(uri: str) -> tuple[str, str]:
    """``runs:/<run_id>/<path>`` -> (run_id, path); the path may be empty.

    Raises:
        InvalidArgument: Not a ``runs:/`` URI with a run id (field ``artifact_uri``).
    """
    if not uri.startswith(_RUNS_SCHEME):
        raise InvalidArgument(
            f"artifact URI {uri!r} is not supported; use runs:/<run_id>/<path>", field="artifact_uri"
        )
    run_id, _, path = uri[len(_RUNS_SCHEME) :].lstrip("/").partition("/")
    if not run_id:
        raise InvalidArgument(
            f"artifact URI {uri!r} names no run; use runs:/<run_id>/<path>", field="artifact_uri"
        )
    return run_id, path.strip("/")


def _resolve(artifact_uri: str | None, run_id: str | None, artifact_path: str | None) -> tuple[str, str]:
    if artifact_uri is not None:
        if run_id is not None or artifact_path is not None:
            raise InvalidArgument(
                "give either artifact_uri, or run_id (and artifact_path), not both", field="artifact_uri"
            )
        return parse_runs_uri(artifact_uri)
    if not run_id:
        raise InvalidArgument("give artifact_uri or run_id", field="run_id")
    return run_id, (artifact_path or "").strip("/")


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | os.PathLike[str] | None = None,
) -> str:
    """Downloads a run's file or folder and returns its local path.

    Args:
        artifact_uri: ``runs:/<run_id>/<path>``; or give ``run_id`` and ``artifact_path``.
        run_id: The run.
        artifact_path: File or folder under the run's root; None for everything.
        dst_path: Local folder (created if missing); None: a new temporary folder.

    Returns:
        ``<dst_path>/<artifact path>``.

    Raises:
        NotFound: No such run, or nothing at the path.
    """
    run, path = _resolve(artifact_uri, run_id, artifact_path)
    return fluent.default_client().download_artifacts(run, path, dst_path)


def list_artifacts(
    artifact_uri: str | None = None, run_id: str | None = None, artifact_path: str | None = None
) -> list[FileInfo]:
    """Files and folders directly under a run's folder (``runs:/<run_id>/<path>``, or run_id + path)."""
    run, path = _resolve(artifact_uri, run_id, artifact_path)
    return fluent.default_client().list_artifacts(run, path)


def load_text(artifact_uri: str) -> str:
    """A text artifact's content (UTF-8), by ``runs:/<run_id>/<path>`` URI."""
    run, path = parse_runs_uri(artifact_uri)
    return fluent.default_client().read_artifact(run, path).decode("utf-8")


def load_dict(artifact_uri: str) -> dict[str, Any]:
    """A JSON or YAML artifact (by its extension) as a dict, by ``runs:/<run_id>/<path>`` URI."""
    text = load_text(artifact_uri)
    loaded = yaml.safe_load(text) if _is_yaml(artifact_uri) else json.loads(text)
    if not isinstance(loaded, dict):
        raise InvalidArgument(f"{artifact_uri!r} does not hold a mapping", field="artifact_uri")
    return loaded


# Fluent: the active run


def _active_run_id() -> str:
    active = fluent.active_run()
    return (active or fluent.start_run()).info.run_id


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> FileInfo:
    """Uploads a local file to the active run, as ``<artifact_path>/<its name>``.

    Large files stream in chunks (with a progress bar in a terminal); set
    ``TRACKLANE_ARTIFACT_TRANSFER=direct`` to send them straight to the object store.
    """
    return fluent.default_client().log_artifact(_active_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> list[FileInfo]:
    """Uploads every file below a local folder to the active run (a few at once), keeping the layout."""
    return fluent.default_client().log_artifacts(_active_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> FileInfo:
    """Stores ``text`` (UTF-8) as ``artifact_file`` of the active run, e.g. ``"notes/summary.txt"``."""
    return _log_bytes(text.encode("utf-8"), artifact_file)


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> FileInfo:
    """Stores a dict as JSON, or YAML when ``artifact_file`` ends in ``.yaml``/``.yml``."""
    if _is_yaml(artifact_file):
        text = yaml.safe_dump(dict(dictionary), sort_keys=False, allow_unicode=True)
    else:
        text = json.dumps(dictionary, indent=2, ensure_ascii=False, default=str)
    return log_text(text, artifact_file)


def log_figure(figure: Any, artifact_file: str, *, save_kwargs: Mapping[str, Any] | None = None) -> FileInfo:
    """Stores a matplotlib figure (any format it saves, by extension) or a plotly figure (``.html``,
    or an image format when kaleido is installed).

    Raises:
        InvalidArgument: Not a matplotlib or plotly figure.
    """
    kwargs = dict(save_kwargs or {})
    module = type(figure).__module__
    if module.startswith("matplotlib"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=_extension(artifact_file) or "png", **kwargs)
        return _log_bytes(buffer.getvalue(), artifact_file)
    if module.startswith("plotly"):
        if _extension(artifact_file) in ("html", "htm"):
            return log_text(figure.to_html(**kwargs), artifact_file)
        return _log_bytes(figure.to_image(format=_extension(artifact_file), **kwargs), artifact_file)
    raise InvalidArgument(
        f"log_figure takes a matplotlib or plotly figure, not {type(figure).__name__}", field="figure"
    )


def log_image(image: Any, artifact_file: str) -> FileInfo:
    """Stores an image: a PIL image, or a numpy array (H x W grey, H x W x 3 RGB, H x W x 4 RGBA).

    Arrays hold floats in [0, 1] or integers in [0, 255]. The format follows the extension of
    ``artifact_file`` (``.png``, ``.jpg``...). Needs Pillow (``pip install pillow``).

    Raises:
        InvalidArgument: An array of another shape or range.
    """
    try:
        from PIL import Image
    except ImportError:
        raise InvalidArgument("log_image needs Pillow: pip install pillow", field="image") from None
    if isinstance(image, Image.Image):
        return _log_pil(image, artifact_file)
    import numpy as np

    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidArgument(f"image must be H x W or H x W x 1/3/4; got shape {array.shape}", field="image")
    if array.dtype.kind == "f":
        if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 1):
            raise InvalidArgument("float images must hold values in [0, 1]", field="image")
        array = np.rint(np.nan_to_num(array) * 255)
    elif array.dtype.kind in "iu":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise InvalidArgument("integer images must hold values in [0, 255]", field="image")
    elif array.dtype.kind == "b":
        array = array * 255
    else:
        raise InvalidArgument(f"image values must be numbers, not {array.dtype}", field="image")
    return _log_pil(Image.fromarray(array.astype(np.uint8)), artifact_file)


def _log_pil(image: Any, artifact_file: str) -> FileInfo:
    buffer = io.BytesIO()
    extension = _extension(artifact_file) or "png"
    image.save(buffer, format={"jpg": "jpeg", "tif": "tiff"}.get(extension, extension))
    return _log_bytes(buffer.getvalue(), artifact_file)


def log_table(data: Any, artifact_file: str) -> FileInfo:
    """Stores a table (a pandas DataFrame or a dict of columns) as JSON: ``{"columns", "data"}``.

    Raises:
        InvalidArgument: ``artifact_file`` does not end in ``.json``.
    """
    if _extension(artifact_file) != "json":
        raise InvalidArgument(
            "tables are stored as JSON: end artifact_file with .json", field="artifact_file"
        )
    if isinstance(data, Mapping):  # columns by name: no pandas needed
        columns = [str(c) for c in data]
        try:
            rows = [list(row) for row in zip(*(list(v) for v in data.values()), strict=True)]
        except ValueError:
            raise InvalidArgument("every column must have the same length", field="data") from None
        text = json.dumps({"columns": columns, "data": rows}, ensure_ascii=False, default=str)
    elif hasattr(data, "to_json"):
        text = data.to_json(orient="split", index=False, date_format="iso")
    else:
        raise InvalidArgument(
            f"log_table takes a DataFrame or a dict of columns, not {type(data).__name__}", field="data"
        )
    return log_text(text, artifact_file)


def _log_bytes(data: bytes, artifact_file: str) -> FileInfo:
    return fluent.default_client().log_bytes(_active_run_id(), data, artifact_file)


def _extension(path: str) -> str:
    return posixpath.splitext(path)[1].lstrip(".").lower()


def _is_yaml(path: str) -> bool:
    return _extension(path) in ("yaml", "yml")
