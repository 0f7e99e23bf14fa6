"""Open Inference Protocol tensors <-> model input and output, with MLServer's ``content_type``s.

A request's ``content_type`` parameter says how its tensors make the model's input:
    pd    each input tensor (1-D, or [rows, 1]) is a column of a pandas DataFrame, named after it
    np    one tensor: that numpy array; several: a dict name -> array
Without one, a model with a column signature gets a DataFrame and a tensor signature gets arrays.
A tensor's own ``content_type`` ``str`` reads BYTES elements as UTF-8 strings (and string columns
of the signature are read so without it). Predictions go back the same way: a DataFrame as one
tensor per column (response ``content_type`` ``pd``), an array as one tensor, a dict as one per key.
Values travel as ``raw_*_contents`` (little-endian, row-major; BYTES as 4-byte length + bytes), as
Triton sends them; requests may also use the typed ``contents`` fields.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tracklane.exceptions import InvalidArgument
from tracklane.models._imports import pandas_or_none, require
from tracklane.models.schema import ColSpec, DataType, Schema, TensorSpec
from tracklane.serving.oip import open_inference_pb2 as pb

__all__ = [
    "decode_request",
    "encode_response",
    "schema_tensors",
]

_NUMPY_TO_OIP = {
    "b": {1: "BOOL"},
    "i": {1: "INT8", 2: "INT16", 4: "INT32", 8: "INT64"},
    "u": {1: "UINT8", 2: "UINT16", 4: "UINT32", 8: "UINT64"},
    "f": {2: "FP16", 4: "FP32", 8: "FP64"},
}
_OIP_TO_NUMPY = {
    name: np.dtype(f"{kind}{size}" if kind != "b" else "bool")
    for kind, sizes in _NUMPY_TO_OIP.items()
    for size, name in sizes.items()
}
# Which typed field of InferTensorContents holds each datatype.
_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_COLUMN_TO_OIP = {
    DataType.boolean: "BOOL",
    DataType.integer: "INT32",
    DataType.long: "INT64",
    DataType.float: "FP32",
    DataType.double: "FP64",
    DataType.string: "BYTES",
    DataType.binary: "BYTES",
    DataType.datetime: "BYTES",
}
CONTENT_TYPE = "content_type"
DEFAULT_OUTPUT = "output-1"  # MLServer's name for an unnamed output


def oip_datatype(dtype: np.dtype[Any]) -> str:
    """The OIP datatype of a numpy dtype (BYTES for strings, bytes and objects)."""
    return _NUMPY_TO_OIP.get(dtype.kind, {}).get(dtype.itemsize, "BYTES")


def schema_tensors(schema: Schema | None) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    """A signature's columns or tensors as ModelMetadata tensors (columns are 1-D: ``[-1]``)."""
    if schema is None:
        return []
    out = []
    for index, spec in enumerate(schema.inputs):
        name = str(spec.name) if spec.name is not None else f"{DEFAULT_OUTPUT[:-1]}{index + 1}"
        if isinstance(spec, TensorSpec):
            out.append(
                pb.ModelMetadataResponse.TensorMetadata(
                    name=name, datatype=oip_datatype(np.dtype(spec.dtype)), shape=list(spec.shape)
                )
            )
        elif isinstance(spec, ColSpec):
            out.append(
                pb.ModelMetadataResponse.TensorMetadata(
                    name=name, datatype=_COLUMN_TO_OIP.get(spec.type, "BYTES"), shape=[-1]
                )
            )
    return out


def _parameter(params: Mapping[str, pb.InferParameter], key: str) -> Any:
    if key not in params:
        return None
    param = params[key]
    which = param.WhichOneof("parameter_choice")
    return None if which is None else getattr(param, which)


def decode_request(request: pb.ModelInferRequest, schema: Schema | None) -> tuple[Any, dict[str, Any] | None]:
    """The model input and params of a ModelInfer request.

    Raises:
        InvalidArgument: a tensor whose size, shape or datatype does not hold together; the
            field names the tensor.
    """
    if request.raw_input_contents and len(request.raw_input_contents) != len(request.inputs):
        raise InvalidArgument(
            f"raw_input_contents has {len(request.raw_input_contents)} entries for "
            f"{len(request.inputs)} inputs",
            field="raw_input_contents",
        )
    string_columns = _string_columns(schema)
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for index, tensor in enumerate(request.inputs):
        raw = request.raw_input_contents[index] if request.raw_input_contents else None
        as_str = _parameter(tensor.parameters, CONTENT_TYPE) == "str" or tensor.name in string_columns
        arrays[tensor.name] = decode_tensor(tensor, raw, as_str)
    params = {key: _parameter(request.parameters, key) for key in request.parameters if key != CONTENT_TYPE}
    content_type = _parameter(request.parameters, CONTENT_TYPE)
    columns = schema is not None and not schema.is_tensor_spec
    if content_type == "pd" or (content_type is None and columns):
        return _frame(arrays), params or None
    if len(arrays) == 1 and (schema is None or not schema.has_input_names):
        return next(iter(arrays.values())), params or None
    return arrays, params or None


def _string_columns(schema: Schema | None) -> set[str]:
    if schema is None or schema.is_tensor_spec:
        return set()
    return {
        str(spec.name)
        for spec in schema.inputs
        if isinstance(spec, ColSpec) and spec.type in (DataType.string, DataType.datetime)
    }


def decode_tensor(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None, as_str: bool) -> Any:
    """One input tensor as a numpy array of its shape."""
    name = tensor.name
    shape = [int(d) for d in tensor.shape]
    if any(d < 0 for d in shape):
        raise InvalidArgument(f"input {name!r}: shape {shape} has a negative dimension", field=name)
    count = int(np.prod(shape)) if shape else 1
    datatype = tensor.datatype.upper()
    if datatype == "BYTES":
        items = _split_bytes(raw, name) if raw is not None else list(tensor.contents.bytes_contents)
        if len(items) != count:
            raise InvalidArgument(f"input {name!r}: {len(items)} elements for shape {shape}", field=name)
        values: list[Any] = items
        if as_str:
            try:
                values = [item.decode("utf-8") for item in items]
            except UnicodeDecodeError:
                raise InvalidArgument(
                    f"input {name!r}: content_type 'str' but not UTF-8", field=name
                ) from None
        array = np.empty(count, dtype=object)
        array[:] = values
        return array.reshape(shape)
    dtype = _OIP_TO_NUMPY.get(datatype)
    if dtype is None:
        raise InvalidArgument(f"input {name!r}: unsupported datatype {tensor.datatype!r}", field=name)
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise InvalidArgument(
                f"input {name!r}: {len(raw)} raw bytes for shape {shape} of {datatype}", field=name
            )
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(shape)
    field = _CONTENTS_FIELD.get(datatype)
    if field is None:  # FP16 has no typed field
        raise InvalidArgument(f"input {name!r}: {datatype} needs raw_input_contents", field=name)
    values_seq: Sequence[Any] = getattr(tensor.contents, field)
    if len(values_seq) != count:
        raise InvalidArgument(f"input {name!r}: {len(values_seq)} elements for shape {shape}", field=name)
    return np.array(values_seq, dtype=dtype).reshape(shape)


def _split_bytes(raw: bytes, name: str) -> list[bytes]:
    items: list[bytes] = []
    view = memoryview(raw)
    offset = 0
    while offset < len(view):
        if offset + 4 > len(view):
            raise InvalidArgument(f"input {name!r}: truncated BYTES element length", field=name)
        (size,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + size > len(view):
            raise InvalidArgument(f"input {name!r}: truncated BYTES element", field=name)
        items.append(bytes(view[offset : offset + size]))
        offset += size
    return items


def _frame(arrays: Mapping[str, np.ndarray[Any, Any]]) -> Any:
    pd = require("pandas")
    columns = {}
    for name, array in arrays.items():
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InvalidArgument(
                f"input {name!r}: a column must be 1-D (or [rows, 1]), got shape {list(array.shape)}",
                field=name,
            )
        columns[name] = array
    lengths = {len(a) for a in columns.values()}
    if len(lengths) > 1:
        raise InvalidArgument("the input columns have different lengths", field="inputs")
    return pd.DataFrame(columns)


def encode_response(
    predictions: Any, model_name: str, model_version: str, request_id: str, output_schema: Schema | None
) -> pb.ModelInferResponse:
    """Predictions as a ModelInferResponse (see the module docstring)."""
    response = pb.ModelInferResponse(model_name=model_name, model_version=model_version, id=request_id)
    pd = pandas_or_none()
    if pd is not None and isinstance(predictions, pd.DataFrame):
        response.parameters[CONTENT_TYPE].string_param = "pd"
        outputs = {str(c): predictions[c].to_numpy() for c in predictions.columns}
    elif isinstance(predictions, Mapping):
        outputs = {str(k): _as_array(v) for k, v in predictions.items()}
    else:
        outputs = {_single_output_name(predictions, output_schema): _as_array(predictions)}
    for name, array in outputs.items():
        _add_output(response, name, array)
    return response


def _single_output_name(predictions: Any, schema: Schema | None) -> str:
    pd = pandas_or_none()
    if pd is not None and isinstance(predictions, pd.Series) and predictions.name is not None:
        return str(predictions.name)
    if schema is not None and len(schema.inputs) == 1 and schema.inputs[0].name is not None:
        return str(schema.inputs[0].name)
    return DEFAULT_OUTPUT


def _as_array(value: Any) -> np.ndarray[Any, Any]:
    pd = pandas_or_none()
    if pd is not None and isinstance(value, pd.Series | pd.DataFrame):
        value = value.to_numpy()
    return np.asarray(value)


def _add_output(response: pb.ModelInferResponse, name: str, array: np.ndarray[Any, Any]) -> None:
    output = response.outputs.add(name=name, shape=list(array.shape))
    if array.dtype.kind in "biuf" and array.dtype.itemsize in _NUMPY_TO_OIP[array.dtype.kind]:
        output.datatype = oip_datatype(array.dtype)
        response.raw_output_contents.append(
            np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        )
        return
    output.datatype = "BYTES"
    flat = array.reshape(-1)
    strings = all(isinstance(v, str) for v in flat)
    if strings:
        output.parameters[CONTENT_TYPE].string_param = "str"
    parts = []
    for value in flat:
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    response.raw_output_contents.append(b"".join(parts))
