"""Checks and converts a model's input against its signature before ``predict`` sees it.

Column schemas give a pandas DataFrame with the schema's columns, in its order (extra columns are
dropped, so a model fitted on named features gets them as it was fitted). Tensor schemas give a
numpy array (or a dict of arrays for named tensors) of the declared dtype and shape.

Conversions allowed, as in MLflow: those that lose nothing (int32 -> int64, float32 -> float64,
small ints -> float32), and any integer to double, as a model trained on floats is routinely
called with whole numbers. Anything else (float -> int, str -> number...) is an error naming the
column and both types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tracklane.exceptions import InvalidArgument
from tracklane.models._imports import pandas_or_none, require
from tracklane.models.schema import ColSpec, DataType, Schema, TensorSpec

__all__ = ["SchemaEnforcementError", "enforce_schema"]


class SchemaEnforcementError(InvalidArgument):
    """Input that does not match the model's signature; ``field`` names the column or tensor."""


def enforce_schema(data: Any, schema: Schema) -> Any:
    """Returns ``data`` checked against ``schema`` and converted to it.

    Args:
        data: A pandas DataFrame or Series, a numpy array, a dict of columns or arrays, a list of
            rows (dicts) or of values.
        schema: The model's input schema.

    Raises:
        SchemaEnforcementError: missing columns or tensors, incompatible types or shapes.
    """
    if schema.is_tensor_spec:
        return _enforce_tensors(data, schema)
    return _enforce_columns(data, schema)


def _enforce_columns(data: Any, schema: Schema) -> Any:
    pd = require("pandas")
    frame = _to_frame(pd, data, schema)
    specs = [spec for spec in schema.inputs if isinstance(spec, ColSpec)]
    if not schema.has_input_names:
        # Positional columns: the first len(schema) columns, whatever their names.
        if frame.shape[1] < len(specs):
            raise SchemaEnforcementError(
                f"Model expects {len(specs)} input columns, got {frame.shape[1]}", field="inputs"
            )
        frame = frame.iloc[:, : len(specs)]
        frame.columns = [str(i) for i in range(len(specs))]
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    names = schema.input_names()
    missing = [n for n, s in zip(names, specs, strict=True) if s.required and n not in columns]
    if missing:
        extra = [c for c in columns if c not in names]
        hint = f". Note that there were extra inputs: {extra}" if extra else ""
        raise SchemaEnforcementError(f"Model is missing inputs {missing}{hint}", field=missing[0])
    converted: dict[str, Any] = {}
    unchanged = True
    for name, spec in zip(names, specs, strict=True):
        if name in columns:
            original = frame[name]
            converted[name] = _enforce_column(name, original, spec.type)
            unchanged = unchanged and converted[name] is original
    if unchanged and list(converted) == columns:
        return frame  # already what the schema says: no copy
    return pd.DataFrame(converted, index=frame.index)


def _to_frame(pd: Any, data: Any, schema: Schema) -> Any:
    names = schema.input_names()
    if isinstance(data, pd.DataFrame):
        return data.copy(deep=False)
    if isinstance(data, pd.Series):
        return data.to_frame(name=data.name if data.name is not None else names[0])
    if isinstance(data, Mapping):
        scalar = all(np.ndim(v) == 0 for v in data.values())
        return pd.DataFrame(dict(data), index=[0] if scalar else None)
    rows = isinstance(data, Sequence) and not isinstance(data, str | bytes) and bool(data)
    if rows and all(isinstance(row, Mapping) for row in data):
        return pd.DataFrame(list(data))
    array = np.asarray(data)
    if array.ndim == 1 and len(names) == 1:
        return pd.DataFrame({names[0]: array})
    if array.ndim == 2 and array.shape[1] == len(names):
        # A plain matrix: its columns are the schema's, by position.
        return pd.DataFrame(array, columns=names)
    raise SchemaEnforcementError(
        f"Model expects a table with columns {names}; got {type(data).__name__}"
        + (f" of shape {array.shape}" if array.ndim else ""),
        field="inputs",
    )


def _enforce_column(name: str, values: Any, expected: DataType) -> Any:
    dtype = values.dtype
    # pandas extension dtypes (Int64, boolean...) expose their numpy counterpart.
    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)
    kind = getattr(numpy_dtype, "kind", "O")
    target = expected.to_numpy()
    if expected is DataType.string and str(dtype) in ("string", "str"):
        return values  # pandas' string dtypes hold only str (or missing values)
    if expected in (DataType.string, DataType.binary):
        python_type = str if expected is DataType.string else bytes
        present = values.dropna()
        if all(isinstance(v, python_type) for v in present):
            return values
        return _incompatible(name, dtype, expected)
    if expected is DataType.datetime:
        if kind == "M":
            return values
        if kind == "O":
            try:
                return require("pandas").to_datetime(values)
            except (ValueError, TypeError):
                pass
        return _incompatible(name, dtype, expected)
    if expected is DataType.boolean:
        return values if kind == "b" else _incompatible(name, dtype, expected)
    if kind not in "iuf":
        return _incompatible(name, dtype, expected)
    if numpy_dtype == target:
        return values
    safe = np.can_cast(numpy_dtype, target, casting="safe")
    if safe or (expected is DataType.double and kind in "iu"):
        if target.kind != "f" and values.isna().any():
            # Missing values have no numpy integer representation.
            return _incompatible(name, dtype, expected)
        return values.astype(target)
    return _incompatible(name, dtype, expected)


def _incompatible(name: str, dtype: Any, expected: DataType) -> Any:
    raise SchemaEnforcementError(
        f"Incompatible input types for column {name!r}: cannot safely convert {dtype} to {expected.value}",
        field=name,
    )


def _enforce_tensors(data: Any, schema: Schema) -> Any:
    specs = [spec for spec in schema.inputs if isinstance(spec, TensorSpec)]
    if not schema.has_input_names:
        if len(specs) != 1:
            raise SchemaEnforcementError(
                "a schema of several unnamed tensors is not supported", field="inputs"
            )
        return _enforce_tensor("input", _to_array(data), specs[0])
    pd = pandas_or_none()
    if pd is not None and isinstance(data, pd.DataFrame):
        data = {str(c): data[c].to_numpy() for c in data.columns}
    if not isinstance(data, Mapping):
        if len(specs) == 1:
            return {specs[0].name: _enforce_tensor(str(specs[0].name), _to_array(data), specs[0])}
        raise SchemaEnforcementError(
            f"Model expects named tensors {schema.input_names()}; pass a dict of arrays", field="inputs"
        )
    missing = [spec.name for spec in specs if spec.name not in data]
    if missing:
        raise SchemaEnforcementError(f"Model is missing inputs {missing}", field=str(missing[0]))
    return {
        str(spec.name): _enforce_tensor(str(spec.name), _to_array(data[spec.name]), spec) for spec in specs
    }


def _to_array(data: Any) -> np.ndarray[Any, Any]:
    pd = pandas_or_none()
    if pd is not None and isinstance(data, pd.DataFrame | pd.Series):
        return np.asarray(data.to_numpy())
    return np.asarray(data)


def _enforce_tensor(name: str, array: np.ndarray[Any, Any], spec: TensorSpec) -> np.ndarray[Any, Any]:
    shape_ok = array.ndim == len(spec.shape) and all(
        want == -1 or want == got for want, got in zip(spec.shape, array.shape, strict=True)
    )
    if not shape_ok:
        raise SchemaEnforcementError(
            f"Shape of input {name!r} does not match: expected {list(spec.shape)}, got {list(array.shape)}",
            field=name,
        )
    if array.dtype == spec.dtype:
        return array
    if np.can_cast(array.dtype, spec.dtype, casting="safe"):
        return array.astype(spec.dtype)
    raise SchemaEnforcementError(
        f"dtype of input {name!r} does not match: expected {spec.dtype}, got {array.dtype}"
        " (only conversions that lose nothing are made)",
        field=name,
    )
