"""MLflow's scoring protocol: request bodies to model input, predictions to JSON.

One module for the REST server and ``tracklane models predict``, so both read input alike:

    application/json   {"dataframe_split": {"columns": [...], "data": [[...]]}}
                       {"dataframe_records": [{"col": value, ...}, ...]}
                       {"instances": [...]}  or  {"inputs": {...} | [...]}   (TF-serving style)
                       each with an optional "params": {...} for the model
    text/csv           a table with a header row
    application/vnd.apache.parquet   a Parquet file

Errors carry MLflow's shape (``{"error_code": ..., "message": ...}``) and HTTP status: BAD_REQUEST
for input that does not parse, INVALID_PARAMETER_VALUE for input that parses but does not fit the
signature, 415 for another content type.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from tracklane.models._imports import require
from tracklane.models.schema import DataType, Schema

__all__ = [
    "CONTENT_TYPES",
    "CONTENT_TYPE_CSV",
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PARQUET",
    "ModelInput",
    "ScoringError",
    "parse_request",
    "render_predictions",
]

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"
CONTENT_TYPE_PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (CONTENT_TYPE_CSV, CONTENT_TYPE_JSON, CONTENT_TYPE_PARQUET)

DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
INPUT_FIELDS = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
PARAMS = "params"
_REQUIRED = f"The input must be a JSON dictionary with exactly one of the input fields {set(INPUT_FIELDS)}"


class ScoringError(Exception):
    """A request the model cannot score; ``status`` is the HTTP status, ``error_code`` MLflow's."""

    def __init__(self, message: str, *, status: int = 400, error_code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code

    def to_json(self) -> bytes:
        """MLflow's error body."""
        return orjson.dumps({"error_code": self.error_code, "message": self.message})


def invalid_input(message: str) -> ScoringError:
    """MLflow's wording for input that does not parse."""
    return ScoringError(f"Invalid input. {message}")


@dataclass(frozen=True)
class ModelInput:
    """Parsed input: ``data`` for ``predict``, and the request's ``params`` (None when absent)."""

    data: Any
    params: dict[str, Any] | None = None


def parse_request(body: bytes, content_type: str | None, schema: Schema | None) -> ModelInput:
    """Reads a scoring request's body as its content type says.

    Args:
        body: The raw request body.
        content_type: The Content-Type header (``charset=utf-8`` is the only parameter allowed).
        schema: The model's input schema, to read CSV columns and JSON values as it declares.

    Raises:
        ScoringError: 415 for another content type or charset, 400 for a body that does not parse.
    """
    mime, charset = _split_content_type(content_type or "")
    if charset not in ("", "utf-8", "utf8"):
        raise ScoringError("The scoring server only supports UTF-8", status=415, error_code="BAD_REQUEST")
    if mime == CONTENT_TYPE_JSON:
        return parse_json(body, schema)
    if mime == CONTENT_TYPE_CSV:
        return ModelInput(parse_csv(body, schema))
    if mime == CONTENT_TYPE_PARQUET:
        return ModelInput(parse_parquet(body))
    raise ScoringError(
        f"This predictor only supports the following content types: Types: {list(CONTENT_TYPES)}."
        f" Got '{content_type or ''}'.",
        status=415,
    )


def _split_content_type(content_type: str) -> tuple[str, str]:
    mime, _, rest = content_type.partition(";")
    charset = ""
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
        elif key.strip():
            raise ScoringError(f"Unrecognized content type parameters: {key.strip()}.", status=415)
    return mime.strip().lower(), charset


def parse_json(body: bytes | str, schema: Schema | None) -> ModelInput:
    """A JSON scoring request (see the module docstring)."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_input(f"Ensure that input is a valid JSON formatted string. Error: '{exc}'") from None
    if not isinstance(decoded, dict):
        kind = "a list" if isinstance(decoded, list) else f"unexpected input type '{type(decoded).__name__}'"
        raise invalid_input(f"{_REQUIRED}. Received {kind}.")
    params = decoded.get(PARAMS)
    if params is not None and not isinstance(params, dict):
        raise invalid_input(f"'params' must be a JSON object, got {type(params).__name__}.")
    found = [key for key in INPUT_FIELDS if key in decoded]
    unknown = [key for key in decoded if key not in (*INPUT_FIELDS, PARAMS)]
    if len(found) != 1 or unknown:
        raise invalid_input(f"{_REQUIRED}. Received dictionary with input fields: {list(decoded)}.")
    field = found[0]
    value = decoded[field]
    if field == DF_SPLIT:
        data = _dataframe_split(value, schema)
    elif field == DF_RECORDS:
        data = _dataframe_records(value, schema)
    elif field == INSTANCES:
        data = _instances(value, schema)
    else:
        data = _tensors(value, schema, field)
    return ModelInput(data, params)


def _dataframe_split(value: Any, schema: Schema | None) -> Any:
    pd = require("pandas")
    if not isinstance(value, dict):
        raise invalid_input(f"Dataframe split format must be a dictionary. Got {type(value).__name__}.")
    keys = set(value)
    if "data" not in keys or keys - {"columns", "data", "index"}:
        raise invalid_input(
            "Dataframe split format must have 'data' field and optionally 'columns' and 'index' fields."
            f" Got {sorted(keys)}."
        )
    try:
        frame = pd.DataFrame(data=value["data"], columns=value.get("columns"), index=value.get("index"))
    except (ValueError, TypeError) as exc:
        raise invalid_input(
            f"Provided dataframe_split field is not a valid dataframe representation in 'split' format. "
            f"Error: '{exc}'"
        ) from None
    return _binary_columns(frame, schema)


def _dataframe_records(value: Any, schema: Schema | None) -> Any:
    pd = require("pandas")
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise invalid_input("Dataframe records format must be a list of records (JSON objects).")
    return _binary_columns(pd.DataFrame(value), schema)


def _binary_columns(frame: Any, schema: Schema | None) -> Any:
    """Binary columns travel base64-encoded in JSON, as MLflow sends them."""
    if schema is None or schema.is_tensor_spec:
        return frame
    import base64

    for spec in schema.inputs:
        if getattr(spec, "type", None) is DataType.binary and spec.name in frame.columns:
            try:
                frame[spec.name] = [None if v is None else base64.b64decode(v) for v in frame[spec.name]]
            except (ValueError, TypeError):
                raise invalid_input(f"column {spec.name!r} must hold base64-encoded bytes") from None
    return frame


def _instances(value: Any, schema: Schema | None) -> Any:
    if not isinstance(value, list):
        raise invalid_input(f"'instances' must be a list, got {type(value).__name__}.")
    if value and all(isinstance(row, dict) for row in value):
        # Row objects: one column (or tensor) per key, as TF serving's row format.
        keys = list(dict.fromkeys(key for row in value for key in row))
        return _tensors({key: [row.get(key) for row in value] for key in keys}, schema, INSTANCES)
    return _tensors(value, schema, INSTANCES)


def _tensors(value: Any, schema: Schema | None, field: str) -> Any:
    tensor = schema is not None and schema.is_tensor_spec
    try:
        if isinstance(value, dict):
            if schema is not None and not tensor:
                return value  # named columns: the signature's enforcement makes the table
            return {name: _array(column, schema, name) for name, column in value.items()}
        if not isinstance(value, list):
            raise invalid_input(f"'{field}' must be a list or a JSON object, got {type(value).__name__}.")
        if not tensor and value and all(isinstance(v, str) for v in value):
            return value
        return _array(value, schema, None)
    except ValueError as exc:
        raise invalid_input(f"'{field}' does not form a tensor: {exc}") from None


def _array(values: Any, schema: Schema | None, name: str | None) -> np.ndarray[Any, Any]:
    dtype = None
    if schema is not None and schema.is_tensor_spec:
        specs = [s for s in schema.inputs if name is None or s.name == name]
        spec_dtype = getattr(specs[0], "dtype", None) if specs else None
        # Read JSON numbers straight into the declared numeric dtype; enforcement checks the rest.
        if spec_dtype is not None and np.dtype(spec_dtype).kind in "iufb":
            dtype = spec_dtype
    array = np.asarray(values)
    if dtype is not None and array.dtype.kind in "iub" and np.dtype(dtype).kind == "f":
        return array.astype(dtype)
    return array


def parse_csv(body: bytes, schema: Schema | None) -> Any:
    """A CSV table with a header row; string columns of the signature stay strings."""
    pd = require("pandas")
    dtypes: dict[str, Any] = {}
    if schema is not None and not schema.is_tensor_spec and schema.has_input_names:
        dtypes = {str(s.name): object for s in schema.inputs if getattr(s, "type", None) is DataType.string}
    try:
        return pd.read_csv(io.BytesIO(body), dtype=dtypes or None)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise invalid_input(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted "
            f"Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: '{exc}'"
        ) from None


def parse_parquet(body: bytes) -> Any:
    """A Parquet file."""
    pd = require("pandas")
    try:
        return pd.read_parquet(io.BytesIO(body))
    except Exception as exc:  # pyarrow raises its own error types for every kind of bad file
        raise invalid_input(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid Parquet Pandas "
            f"DataFrame produced using the `pandas.DataFrame.to_parquet()` method. Error: '{exc}'"
        ) from None


def jsonable(predictions: Any) -> Any:
    """Predictions as values orjson writes: tables as records, arrays as (nested) lists."""
    pd = _pandas()
    if pd is not None:
        if isinstance(predictions, pd.DataFrame):
            return [{str(k): _scalar(v) for k, v in row.items()} for row in predictions.to_dict("records")]
        if isinstance(predictions, pd.Series):
            return jsonable(predictions.to_numpy())
    if isinstance(predictions, np.ndarray):
        return predictions if predictions.dtype.kind in "iufb" else predictions.tolist()
    if isinstance(predictions, Mapping):
        return {str(k): jsonable(v) for k, v in predictions.items()}
    if isinstance(predictions, list | tuple):
        return [jsonable(v) for v in predictions]
    return _scalar(predictions)


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write a prediction of type {type(value).__name__} as JSON")


def render_predictions(predictions: Any) -> bytes:
    """``{"predictions": ...}`` as MLflow's scoring server writes it (NaN as null)."""
    return orjson.dumps(
        {"predictions": jsonable(predictions)},
        default=_default,
        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
    )


def _pandas() -> Any:
    from tracklane.models._imports import pandas_or_none

    return pandas_or_none()
