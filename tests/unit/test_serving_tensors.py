"""Open Inference Protocol tensors <-> model input and output (MLServer's content types)."""

from __future__ import annotations

import re
import struct

import numpy as np
import pandas as pd
import pytest

from tracklane.exceptions import InvalidArgument
from tracklane.models.schema import ColSpec, DataType, Schema, TensorSpec
from tracklane.serving import tensors
from tracklane.serving.oip import open_inference_pb2 as pb

COLUMNS = Schema([ColSpec(DataType.string, "name"), ColSpec(DataType.double, "value")])


def _bytes(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(i)) + i for i in items)


def test_raw_tensors_make_a_frame_for_a_column_signature() -> None:
    request = pb.ModelInferRequest(model_name="m")
    request.inputs.add(name="name", datatype="BYTES", shape=[2])
    request.inputs.add(name="value", datatype="FP64", shape=[2, 1])
    request.raw_input_contents.extend([_bytes(b"a", "é".encode()), np.array([1.5, -2.0], "<f8").tobytes()])
    request.parameters["n"].int64_param = 3
    data, params = tensors.decode_request(request, COLUMNS)
    pd.testing.assert_frame_equal(
        data, pd.DataFrame({"name": ["a", "é"], "value": [1.5, -2.0]}), check_dtype=False
    )
    assert params == {"n": 3}


def test_np_content_type_and_tensor_signatures_give_arrays() -> None:
    request = pb.ModelInferRequest(model_name="m")
    request.inputs.add(name="x", datatype="INT32", shape=[2, 2]).contents.int_contents.extend([1, 2, 3, 4])
    data, _ = tensors.decode_request(request, Schema([TensorSpec(np.dtype("int32"), (-1, 2))]))
    assert data.dtype == np.int32
    assert data.tolist() == [[1, 2], [3, 4]]
    request.parameters["content_type"].string_param = "np"
    data, _ = tensors.decode_request(request, None)
    assert data.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    ("datatype", "shape", "raw", "fragment"),
    [
        ("FP32", [3], b"\0" * 8, "8 raw bytes for shape [3] of FP32"),
        ("BYTES", [2], _bytes(b"a"), "1 elements for shape [2]"),
        ("BYTES", [1], b"\x05\0\0\0ab", "truncated BYTES element"),
        ("FP64", [-1], b"", "negative dimension"),
        ("COMPLEX64", [1], b"\0" * 8, "unsupported datatype"),
    ],
)
def test_bad_tensors_name_the_input(datatype: str, shape: list[int], raw: bytes, fragment: str) -> None:
    request = pb.ModelInferRequest(model_name="m")
    request.inputs.add(name="t", datatype=datatype, shape=shape)
    request.raw_input_contents.append(raw)
    with pytest.raises(InvalidArgument, match=re.escape(fragment)) as caught:
        tensors.decode_request(request, None)
    assert caught.value.field == "t"


def test_frame_predictions_are_one_tensor_per_column() -> None:
    frame = pd.DataFrame({"label": ["x", "yz"], "score": np.array([0.25, 0.5], "float32")})
    response = tensors.encode_response(frame, "m", "2", "req", None)
    assert (response.model_name, response.model_version, response.id) == ("m", "2", "req")
    assert response.parameters["content_type"].string_param == "pd"
    label, score = response.outputs
    assert (label.name, label.datatype, list(label.shape)) == ("label", "BYTES", [2])
    assert label.parameters["content_type"].string_param == "str"
    assert response.raw_output_contents[0] == _bytes(b"x", b"yz")
    assert (score.datatype, np.frombuffer(response.raw_output_contents[1], "<f4").tolist()) == (
        "FP32",
        [0.25, 0.5],
    )


def test_array_predictions_take_the_output_signature_name() -> None:
    named = Schema([ColSpec(DataType.long, "predicted_class")])
    response = tensors.encode_response(np.array([1, 2, 0]), "m", "", "", named)
    [output] = response.outputs
    assert (output.name, output.datatype, list(output.shape)) == ("predicted_class", "INT64", [3])
    assert tensors.encode_response(np.array([1.0]), "m", "", "", None).outputs[0].name == "output-1"


def test_model_metadata_from_a_signature() -> None:
    meta = tensors.schema_tensors(Schema([ColSpec(DataType.integer, "a"), ColSpec(DataType.boolean, "b")]))
    assert [(t.name, t.datatype, list(t.shape)) for t in meta] == [("a", "INT32", [-1]), ("b", "BOOL", [-1])]
    meta = tensors.schema_tensors(Schema([TensorSpec(np.dtype("float32"), (-1, 28, 28), "image")]))
    assert [(t.name, t.datatype, list(t.shape)) for t in meta] == [("image", "FP32", [-1, 28, 28])]
    assert tensors.schema_tensors(None) == []
