"""Signatures: inference from example data, the MLmodel JSON form, and enforcement before predict."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from tracklane.exceptions import InvalidArgument
from tracklane.models import (
    ColSpec,
    DataType,
    ModelSignature,
    Schema,
    SchemaEnforcementError,
    TensorSpec,
    enforce_schema,
    infer_signature,
)


def test_infer_from_dataframe_types_and_required() -> None:
    df = pd.DataFrame(
        {
            "i32": np.array([1, 2], dtype=np.int32),
            "i64": [1, 2],
            "f32": np.array([0.5, 1.5], dtype=np.float32),
            "f64": [0.5, None],
            "s": ["a", "b"],
            "b": [True, False],
            "bytes": [b"x", b"y"],
            "when": pd.to_datetime(["2026-01-01", "2026-01-02"]),
        }
    )
    schema = infer_signature(df).inputs
    assert [(c.name, c.type, c.required) for c in schema.inputs if isinstance(c, ColSpec)] == [
        ("i32", DataType.integer, True),
        ("i64", DataType.long, True),
        ("f32", DataType.float, True),
        ("f64", DataType.double, False),
        ("s", DataType.string, True),
        ("b", DataType.boolean, True),
        ("bytes", DataType.binary, True),
        ("when", DataType.datetime, True),
    ]
    assert not schema.is_tensor_spec
    assert schema.has_input_names


def test_infer_from_numpy_gives_tensor_with_variable_rows() -> None:
    signature = infer_signature(np.zeros((10, 28, 28), dtype=np.float32), np.zeros(10, dtype=np.int64))
    assert signature.inputs.inputs == [TensorSpec(np.dtype("float32"), (-1, 28, 28))]
    assert signature.outputs is not None
    assert signature.outputs.inputs == [TensorSpec(np.dtype("int64"), (-1,))]


def test_infer_from_dicts_lists_and_series() -> None:
    named = infer_signature({"a": np.zeros((2, 3)), "b": np.ones(2, dtype=np.int8)}).inputs
    assert named.inputs == [
        TensorSpec(np.dtype("float64"), (-1, 3), "a"),
        TensorSpec(np.dtype("int8"), (-1,), "b"),
    ]
    columns = infer_signature({"x": [1, 2], "y": "hi", "z": [1, 2.5]}).inputs
    assert [(c.name, c.type) for c in columns.inputs if isinstance(c, ColSpec)] == [
        ("x", DataType.long),
        ("y", DataType.string),
        ("z", DataType.double),
    ]
    rows = infer_signature([{"q": "a", "n": 1}, {"q": "b"}]).inputs
    assert [(c.name, c.type, c.required) for c in rows.inputs if isinstance(c, ColSpec)] == [
        ("q", DataType.string, True),
        ("n", DataType.long, False),
    ]
    assert infer_signature(["a", "b"]).inputs.inputs == [ColSpec(DataType.string)]
    assert infer_signature(pd.Series([1.0, 2.0], name="v")).inputs.inputs == [ColSpec(DataType.double, "v")]
    assert infer_signature([[1, 2], [3, 4]]).inputs.inputs == [TensorSpec(np.dtype("int64"), (-1, 2))]


def test_infer_rejects_what_no_type_describes() -> None:
    with pytest.raises(TypeError, match="'c'"):
        infer_signature({"c": [1, "a"]})
    with pytest.raises(TypeError, match="empty dict"):
        infer_signature({})
    with pytest.raises(TypeError, match="object"):
        infer_signature(np.array([{"a": 1}], dtype=object))


def test_signature_json_round_trip_matches_mlflow_form() -> None:
    signature = ModelSignature(
        Schema([ColSpec(DataType.double, "x"), ColSpec(DataType.string, "s", required=False)]),
        Schema([TensorSpec(np.dtype("float32"), (-1, 3), "probs")]),
    )
    as_dict = signature.to_dict()
    assert json.loads(as_dict["inputs"] or "") == [
        {"type": "double", "name": "x", "required": True},
        {"type": "string", "name": "s", "required": False},
    ]
    assert json.loads(as_dict["outputs"] or "") == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}, "name": "probs"}
    ]
    assert ModelSignature.from_dict(as_dict) == signature


def test_schema_rules() -> None:
    with pytest.raises(ValueError, match="either all columns or all tensors"):
        Schema([ColSpec(DataType.long, "a"), TensorSpec(np.dtype("int64"), (-1,), "b")])
    with pytest.raises(ValueError, match="every column"):
        Schema([ColSpec(DataType.long, "a"), ColSpec(DataType.long)])
    with pytest.raises(ValueError, match="duplicate"):
        Schema([ColSpec(DataType.long, "a"), ColSpec(DataType.long, "a")])
    with pytest.raises(ValueError, match="unknown column type 'decimal'"):
        Schema.from_json('[{"type": "decimal", "name": "a"}]')


COLUMNS = Schema([ColSpec(DataType.double, "x"), ColSpec(DataType.long, "n"), ColSpec(DataType.string, "s")])


def test_enforce_columns_converts_safely_orders_and_drops_extras() -> None:
    df = pd.DataFrame({"extra": [9, 9], "s": ["a", "b"], "n": np.array([1, 2], dtype=np.int32), "x": [1, 2]})
    out = enforce_schema(df, COLUMNS)
    assert list(out.columns) == ["x", "n", "s"]
    assert out["x"].dtype == np.float64  # int -> double, as MLflow allows
    assert out["n"].dtype == np.int64  # int32 -> long
    assert out["s"].tolist() == ["a", "b"]


def test_enforce_columns_missing_names_them() -> None:
    with pytest.raises(
        SchemaEnforcementError, match=r"missing inputs \['n', 's'\].*extra inputs: \['y'\]"
    ) as info:
        enforce_schema(pd.DataFrame({"x": [1.0], "y": [2]}), COLUMNS)
    assert info.value.field == "n"
    assert isinstance(info.value, InvalidArgument)


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("n", [1.5, 2.5], "cannot safely convert float64 to long"),
        ("x", ["1", "2"], "to double"),
        ("s", [1, 2], "cannot safely convert int64 to string"),
    ],
)
def test_enforce_columns_wrong_type_names_the_column(column: str, values: list[object], message: str) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0], "n": [1, 2], "s": ["a", "b"]})
    df[column] = values
    with pytest.raises(SchemaEnforcementError, match=message) as info:
        enforce_schema(df, COLUMNS)
    assert info.value.field == column
    assert repr(column) in str(info.value)


def test_enforce_columns_optional_float32_and_other_inputs() -> None:
    schema = Schema([ColSpec(DataType.double, "x"), ColSpec(DataType.float, "f", required=False)])
    assert list(enforce_schema(pd.DataFrame({"x": [1.0]}), schema).columns) == ["x"]
    with pytest.raises(SchemaEnforcementError, match="float64 to float"):
        enforce_schema(pd.DataFrame({"x": [1.0], "f": [0.5]}), schema)  # double -> float loses precision
    ok = enforce_schema(pd.DataFrame({"x": [1.0], "f": np.array([1], dtype=np.int16)}), schema)
    assert ok["f"].dtype == np.float32
    assert enforce_schema({"x": 1.0}, schema)["x"].tolist() == [1.0]
    assert enforce_schema([{"x": 1.0}, {"x": 2.0}], schema)["x"].tolist() == [1.0, 2.0]
    pair = Schema([ColSpec(DataType.double, "x"), ColSpec(DataType.double, "y")])
    matrix = enforce_schema(np.array([[1.0, 2.0]]), pair)  # a matrix's columns, by position
    assert matrix.to_dict("records") == [{"x": 1.0, "y": 2.0}]
    with pytest.raises(SchemaEnforcementError, match="columns"):
        enforce_schema(np.zeros((2, 5)), pair)
    datetimes = Schema([ColSpec(DataType.datetime, "t")])
    converted = enforce_schema(pd.DataFrame({"t": [dt.datetime(2026, 1, 1)]}, dtype=object), datetimes)
    assert converted["t"].dtype.kind == "M"
    assert enforce_schema(pd.DataFrame({"b": [True]}), Schema([ColSpec(DataType.boolean, "b")]))["b"].all()
    with pytest.raises(SchemaEnforcementError, match="to boolean"):
        enforce_schema(pd.DataFrame({"b": [1]}), Schema([ColSpec(DataType.boolean, "b")]))


def test_enforce_unnamed_columns_by_position() -> None:
    schema = Schema([ColSpec(DataType.double), ColSpec(DataType.double)])
    out = enforce_schema(pd.DataFrame({"a": [1], "b": [2], "c": [3]}), schema)
    assert out.to_numpy().tolist() == [[1.0, 2.0]]
    with pytest.raises(SchemaEnforcementError, match="expects 2 input columns, got 1"):
        enforce_schema(pd.DataFrame({"a": [1.0]}), schema)


def test_enforce_tensor_shape_and_dtype() -> None:
    schema = Schema([TensorSpec(np.dtype("float64"), (-1, 3))])
    out = enforce_schema(np.ones((4, 3), dtype=np.float32), schema)
    assert out.dtype == np.float64  # float32 -> float64 loses nothing
    assert enforce_schema([[1, 2, 3]], schema).dtype == np.float64
    assert enforce_schema(pd.DataFrame(np.ones((2, 3))), schema).shape == (2, 3)
    with pytest.raises(SchemaEnforcementError, match=r"expected \[-1, 3\], got \[4, 2\]"):
        enforce_schema(np.ones((4, 2)), schema)
    ints = Schema([TensorSpec(np.dtype("int32"), (-1,))])
    with pytest.raises(SchemaEnforcementError, match="expected int32, got float64"):
        enforce_schema(np.ones(3), ints)


def test_enforce_named_tensors() -> None:
    schema = Schema(
        [TensorSpec(np.dtype("float64"), (-1,), "a"), TensorSpec(np.dtype("int64"), (-1, 2), "b")]
    )
    out = enforce_schema({"a": np.ones(2, dtype=np.float32), "b": np.ones((2, 2), dtype=np.int64)}, schema)
    assert out["a"].dtype == np.float64
    with pytest.raises(SchemaEnforcementError, match=r"missing inputs \['b'\]") as info:
        enforce_schema({"a": np.ones(2)}, schema)
    assert info.value.field == "b"
    with pytest.raises(SchemaEnforcementError, match="dict of arrays"):
        enforce_schema(np.ones(2), schema)
