"""``ModelSignature``: what a model takes and returns; ``infer_signature`` reads it off example data.

What each kind of data becomes (MLflow's rules where it has them):
  pandas DataFrame            named columns, typed by dtype; a column with missing values is optional
  pandas Series               one column, named after the Series (unnamed if it has no name)
  numpy array                 one unnamed tensor: its dtype, shape with the rows as -1
  dict of numpy arrays        named tensors
  dict of scalars or lists    named columns
  list of dicts               named columns (the rows of a table)
  list of str                 one unnamed string column
  other list or scalar        converted with ``numpy.asarray``: one tensor
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracklane.models._imports import pandas_or_none
from tracklane.models.schema import ColSpec, DataType, Schema, TensorSpec

__all__ = ["ModelSignature", "infer_signature"]


@dataclass(frozen=True)
class ModelSignature:
    """A model's input schema and, when known, its output schema."""

    inputs: Schema
    outputs: Schema | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The MLmodel form: each schema as JSON text, as MLflow writes it."""
        return {
            "inputs": self.inputs.to_json(),
            "outputs": None if self.outputs is None else self.outputs.to_json(),
            "params": None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSignature:
        """Reads the MLmodel form."""
        outputs = data.get("outputs")
        return cls(Schema.from_json(data["inputs"]), None if not outputs else Schema.from_json(outputs))


def infer_signature(model_input: Any, model_output: Any = None) -> ModelSignature:
    """Infers a signature from example input (and output) data.

    Args:
        model_input: An example of what the model takes: a pandas DataFrame or Series, a numpy
            array, a dict of arrays or of column values, a list of rows (dicts) or of values.
        model_output: An example of what it returns (e.g. ``model.predict(model_input)``), or None.

    Returns:
        The signature; ``outputs`` is None when no output was given.

    Raises:
        TypeError: the data holds something no column or tensor type describes.
    """
    outputs = None if model_output is None else infer_schema(model_output)
    return ModelSignature(infer_schema(model_input), outputs)


def infer_schema(data: Any) -> Schema:
    """The schema of one piece of example data (see the module docstring)."""
    pd = pandas_or_none()
    if pd is not None and isinstance(data, pd.DataFrame):
        return Schema(
            ColSpec(_column_type(data[column]), str(column), not bool(data[column].isna().any()))
            for column in data.columns
        )
    if pd is not None and isinstance(data, pd.Series):
        name = None if data.name is None else str(data.name)
        return Schema([ColSpec(_column_type(data), name, not bool(data.isna().any()))])
    if isinstance(data, np.ndarray):
        return Schema([_tensor_spec(data, None)])
    if isinstance(data, Mapping):
        if not data:
            raise TypeError("cannot infer a schema from an empty dict")
        if all(isinstance(value, np.ndarray) for value in data.values()):
            return Schema(_tensor_spec(value, str(key)) for key, value in data.items())
        return Schema(
            ColSpec(_values_type(_as_list(value), str(key)), str(key)) for key, value in data.items()
        )
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if data and all(isinstance(row, Mapping) for row in data):
            keys = list(dict.fromkeys(key for row in data for key in row))
            return Schema(
                ColSpec(
                    _values_type([row[key] for row in data if row.get(key) is not None], str(key)),
                    str(key),
                    all(row.get(key) is not None for row in data),
                )
                for key in keys
            )
        if data and all(isinstance(value, str) for value in data):
            return Schema([ColSpec(DataType.string)])
    array = np.asarray(data)
    if array.dtype.kind in "OUS":
        raise TypeError(f"cannot infer a schema from {type(data).__name__}: mixed or non-numeric values")
    return Schema([_tensor_spec(array, None)])


def _tensor_spec(array: np.ndarray[Any, Any], name: str | None) -> TensorSpec:
    if array.dtype.kind == "O":
        raise TypeError(
            f"cannot describe an object array{f' {name!r}' if name else ''} as a tensor; "
            "use a DataFrame column for strings"
        )
    # The first dimension is the batch: any number of rows.
    shape = (-1, *array.shape[1:]) if array.ndim else ()
    return TensorSpec(array.dtype, shape, name)


def _column_type(series: Any) -> DataType:
    dtype = series.dtype
    if getattr(dtype, "kind", "O") == "O" and str(dtype) not in ("string", "str"):
        # An object column: look at the values (str, bytes, bool...).
        return _values_type(series.dropna().tolist(), str(series.name))
    try:
        return DataType.from_numpy(dtype)
    except TypeError:
        raise TypeError(f"column {series.name!r}: no column type for dtype {dtype}") from None


def _values_type(values: list[Any], name: str) -> DataType:
    """The one column type all the (non-missing) values share."""
    found: set[DataType] = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool | np.bool_):
            found.add(DataType.boolean)
        elif isinstance(value, int | np.integer):
            found.add(DataType.long)
        elif isinstance(value, float | np.floating):
            found.add(DataType.double)
        elif isinstance(value, str):
            found.add(DataType.string)
        elif isinstance(value, bytes):
            found.add(DataType.binary)
        elif isinstance(value, dt.datetime | np.datetime64):
            found.add(DataType.datetime)
        else:
            raise TypeError(f"column {name!r}: no column type for {type(value).__name__} values")
    if found == {DataType.long, DataType.double}:
        return DataType.double
    if len(found) != 1:
        kinds = sorted(t.value for t in found) or ["nothing"]
        raise TypeError(f"column {name!r}: values must share one type, found {', '.join(kinds)}")
    return found.pop()


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, np.ndarray):
        return list(value.tolist())
    if isinstance(value, list | tuple):
        return list(value)
    return [value]
