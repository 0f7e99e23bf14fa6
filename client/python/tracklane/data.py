"""Datasets for ``tracklane.log_input``: a name, a content digest, where it came from, schema and profile.

    import tracklane
    from tracklane.data import from_numpy, from_pandas

    dataset = from_pandas(df, source="s3://bucket/train.parquet", targets="label", name="train")
    with tracklane.start_run():
        tracklane.log_input(dataset, context="training")

The digest identifies the content, as MLflow's does: the first 8 hex characters of a SHA-256 over the
shape, the column names and types (or dtype), and the rows of a bounded sample: the first and the last
``DIGEST_SAMPLE_ROWS`` rows. Equal data always gets the same digest, across calls and processes; a change
outside the sample of a very large dataset does not change it (pass ``digest=`` to use your own).

numpy is a dependency; pandas is optional and only imported by :func:`from_pandas`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from tracklane import entities

__all__ = ["DIGEST_SAMPLE_ROWS", "Dataset", "NumpyDataset", "PandasDataset", "from_numpy", "from_pandas"]

# Rows hashed from each end of the data (MLflow hashes a bounded number of rows, too).
DIGEST_SAMPLE_ROWS = 10_000
DEFAULT_NAME = "dataset"

# URI scheme -> source type; no scheme (or file://) is "local", an unknown scheme is used as is.
_SOURCE_TYPES = {
    "file": "local",
    "s3": "s3",
    "s3a": "s3",
    "s3n": "s3",
    "gs": "gcs",
    "http": "http",
    "https": "http",
    "hf": "hugging_face",
    "dbfs": "dbfs",
}


class Dataset:
    """A dataset described for logging; ``to_entity()`` is what ``log_input`` sends.

    Attributes:
        name: For humans; ``"dataset"`` when not given.
        digest: 8 hex characters identifying the content (see the module docstring).
        source_type: ``"local"``, ``"s3"``, ``"gcs"``, ``"http"``, ``"hugging_face"``, ``"code"``...
        source: JSON ``{"uri": ...}``.
        schema: JSON, MLflow's ``mlflow_colspec`` (pandas) or ``mlflow_tensorspec`` (numpy).
        profile: JSON ``{"num_rows": ..., "num_elements": ...}``.
    """

    def __init__(
        self, *, name: str, digest: str, source_type: str, source: str, schema: str, profile: str
    ) -> None:
        self.name = name
        self.digest = digest
        self.source_type = source_type
        self.source = source
        self.schema = schema
        self.profile = profile

    def to_entity(self) -> entities.Dataset:
        """The ``tracklane.entities.Dataset`` sent to the server."""
        return entities.Dataset(
            name=self.name,
            digest=self.digest,
            source_type=self.source_type,
            source=self.source,
            schema=self.schema,
            profile=self.profile,
        )

    def to_dict(self) -> dict[str, str]:
        """The six fields as a dict of strings (MLflow's ``Dataset.to_dict``)."""
        return {
            "name": self.name,
            "digest": self.digest,
            "source_type": self.source_type,
            "source": self.source,
            "schema": self.schema,
            "profile": self.profile,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, digest={self.digest!r}, source={self.source!r})"


class NumpyDataset(Dataset):
    """A dataset over numpy arrays; ``features`` and ``targets`` keep the arrays."""

    def __init__(self, features: np.ndarray[Any, Any], targets: np.ndarray[Any, Any] | None, **fields: str):
        super().__init__(**fields)
        self.features = features
        self.targets = targets


class PandasDataset(Dataset):
    """A dataset over a pandas DataFrame; ``df`` keeps it, ``targets`` names the target column."""

    def __init__(self, df: Any, targets: str | None, **fields: str):
        super().__init__(**fields)
        self.df = df
        self.targets = targets


def from_numpy(
    features: Any,
    source: str | os.PathLike[str] | None = None,
    targets: Any = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    """Describes numpy features (and optional targets) for ``log_input``.

    Args:
        features: An array (or anything ``numpy.asarray`` accepts); rows along the first axis.
        source: Where the data came from: a path (source type ``local``) or a URI (``s3://``,
            ``gs://``, ``https://``, ``hf://``...). None means the running code (source type ``code``).
        targets: Optional array of targets, one per row.
        name: For humans; default ``"dataset"``.
        digest: Your own digest; default computed from the content.

    Returns:
        A NumpyDataset; its schema is ``{"mlflow_tensorspec": {"features": [...], "targets": [...]}}``.
    """
    array = np.asarray(features)
    target_array = None if targets is None else np.asarray(targets)
    hasher = hashlib.sha256()
    _hash_array(hasher, array)
    if target_array is not None:
        hasher.update(b"targets")
        _hash_array(hasher, target_array)
    schema = {
        "mlflow_tensorspec": {
            "features": [_tensor_spec(array)],
            "targets": None if target_array is None else [_tensor_spec(target_array)],
        }
    }
    profile = {"num_rows": _num_rows(array), "num_elements": int(array.size)}
    if target_array is not None:
        profile["num_target_elements"] = int(target_array.size)
    source_type, source_json = _source(source)
    return NumpyDataset(
        array,
        target_array,
        name=name or DEFAULT_NAME,
        digest=digest or hasher.hexdigest()[:8],
        source_type=source_type,
        source=source_json,
        schema=json.dumps(schema, sort_keys=True),
        profile=json.dumps(profile, sort_keys=True),
    )


def from_pandas(
    df: Any,
    source: str | os.PathLike[str] | None = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
) -> PandasDataset:
    """Describes a pandas DataFrame for ``log_input``.

    Args:
        df: The DataFrame.
        source: Where the data came from: a path (source type ``local``) or a URI (``s3://``,
            ``gs://``, ``https://``, ``hf://``...). None means the running code (source type ``code``).
        targets: The name of the target column, if any.
        name: For humans; default ``"dataset"``.
        digest: Your own digest; default computed from the content.

    Returns:
        A PandasDataset; its schema is ``{"mlflow_colspec": [{"name", "type", "required"}...]}``.

    Raises:
        ImportError: pandas is not installed.
        ValueError: ``targets`` is not a column of ``df``.
    """
    pd = _import_pandas()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"from_pandas expects a pandas.DataFrame, got {type(df).__name__}")
    if targets is not None and targets not in df.columns:
        raise ValueError(f"targets column {targets!r} is not in the DataFrame")
    colspec = [
        {"name": str(column), "type": _column_type(dtype), "required": not bool(df[column].isna().any())}
        for column, dtype in df.dtypes.items()
    ]
    hasher = hashlib.sha256()
    hasher.update(repr((df.shape, [(c["name"], c["type"]) for c in colspec])).encode())
    for part in _row_sample(len(df)):
        hasher.update(_hash_frame(pd, df.iloc[part]))
    schema = {"mlflow_colspec": colspec}
    profile = {"num_rows": len(df), "num_elements": int(df.size)}
    source_type, source_json = _source(source)
    return PandasDataset(
        df,
        targets,
        name=name or DEFAULT_NAME,
        digest=digest or hasher.hexdigest()[:8],
        source_type=source_type,
        source=source_json,
        schema=json.dumps(schema, sort_keys=True),
        profile=json.dumps(profile, sort_keys=True),
    )


def source_type_of(source: str | os.PathLike[str] | None) -> str:
    """The source type for a path or URI: ``local`` for paths, ``code`` for None, else by scheme."""
    if source is None:
        return "code"
    text = os.fspath(source)
    scheme = urlsplit(text).scheme.lower()
    # "C:\\data" parses with scheme "c": a Windows drive letter is a local path.
    if not scheme or len(scheme) == 1:
        return "local"
    return _SOURCE_TYPES.get(scheme, scheme)


def _source(source: str | os.PathLike[str] | None) -> tuple[str, str]:
    if source is None:
        uri = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    else:
        uri = os.fspath(source)
    return source_type_of(source), json.dumps({"uri": uri})


def _import_pandas() -> Any:
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(
            "tracklane.data.from_pandas needs the 'pandas' package: pip install pandas"
        ) from exc


def _num_rows(array: np.ndarray[Any, Any]) -> int:
    return int(array.shape[0]) if array.ndim else 1


def _row_sample(num_rows: int) -> list[slice]:
    """The first and last DIGEST_SAMPLE_ROWS rows (all rows when there are fewer than twice that)."""
    if num_rows <= 2 * DIGEST_SAMPLE_ROWS:
        return [slice(0, num_rows)]
    return [slice(0, DIGEST_SAMPLE_ROWS), slice(num_rows - DIGEST_SAMPLE_ROWS, num_rows)]


def _hash_array(hasher: Any, array: np.ndarray[Any, Any]) -> None:
    hasher.update(repr((array.shape, array.dtype.str)).encode())
    rows = array if array.ndim else array.reshape(1)
    for part in _row_sample(len(rows)):
        sample = rows[part]
        if sample.dtype.hasobject:
            # Object arrays hold pointers: hash the values' text instead of the bytes.
            hasher.update(repr(sample.tolist()).encode())
        else:
            hasher.update(np.ascontiguousarray(sample).tobytes())


def _hash_frame(pd: Any, frame: Any) -> bytes:
    try:
        hashes = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:
        # Unhashable cells (lists, dicts): hash their text.
        hashes = pd.util.hash_pandas_object(frame.astype(str), index=False)
    return bytes(np.ascontiguousarray(hashes.to_numpy(dtype=np.uint64)).tobytes())


def _tensor_spec(array: np.ndarray[Any, Any]) -> dict[str, Any]:
    # -1: the number of rows varies, as in MLflow's TensorSpec.
    shape = [-1, *array.shape[1:]] if array.ndim else []
    return {"type": "tensor", "tensor-spec": {"dtype": str(array.dtype), "shape": shape}}


def _column_type(dtype: Any) -> str:
    """MLflow's column types: boolean, integer, long, float, double, string, binary, datetime."""
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "integer" if dtype.itemsize <= 4 and not (kind == "u" and dtype.itemsize == 4) else "long"
    if kind == "f":
        return "float" if dtype.itemsize <= 4 else "double"
    if kind == "M":
        return "datetime"
    if kind == "S":
        return "binary"
    if kind in "OU" or str(dtype) in ("string", "str"):
        return "string"
    return str(dtype)
