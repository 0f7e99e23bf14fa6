"""tracklane.data: digests, schemas, profiles and source types of numpy and pandas datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracklane
from tracklane import data

pd = pytest.importorskip("pandas")


def test_numpy_digest_is_stable_and_content_sensitive() -> None:
    features = np.arange(12, dtype=np.float64).reshape(4, 3)
    first = data.from_numpy(features, source="/data/x.npy")
    again = data.from_numpy(features.copy(), source="/elsewhere/x.npy", name="other")
    assert first.digest == again.digest
    assert len(first.digest) == 8
    int(first.digest, 16)
    changed = features.copy()
    changed[2, 1] = -1
    assert data.from_numpy(changed, source="/data/x.npy").digest != first.digest
    assert data.from_numpy(features.astype(np.float32), source="/data/x.npy").digest != first.digest
    assert data.from_numpy(features.reshape(3, 4), source="/data/x.npy").digest != first.digest
    with_targets = data.from_numpy(features, source="/data/x.npy", targets=np.array([0, 1, 0, 1]))
    assert with_targets.digest != first.digest
    assert data.from_numpy(features, source="/d", digest="cafe0001").digest == "cafe0001"


def test_numpy_digest_sees_the_tail_of_large_arrays() -> None:
    big = np.zeros((3 * data.DIGEST_SAMPLE_ROWS, 2))
    tail = big.copy()
    tail[-1, 0] = 1
    assert data.from_numpy(big, source="/d").digest != data.from_numpy(tail, source="/d").digest


def test_numpy_schema_profile_and_entity() -> None:
    features = np.ones((5, 2, 3), dtype=np.int32)
    dataset = data.from_numpy(features, source="s3://bucket/train.npy", targets=np.zeros(5), name="train")
    assert dataset.name == "train"
    assert dataset.features is not None
    assert dataset.targets is not None
    schema = json.loads(dataset.schema)["mlflow_tensorspec"]
    assert schema["features"] == [{"type": "tensor", "tensor-spec": {"dtype": "int32", "shape": [-1, 2, 3]}}]
    assert schema["targets"] == [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]
    profile = json.loads(dataset.profile)
    assert profile["num_rows"] == 5
    assert profile["num_elements"] == 30
    assert json.loads(dataset.source) == {"uri": "s3://bucket/train.npy"}
    entity = dataset.to_entity()
    assert isinstance(entity, tracklane.Dataset)
    assert (entity.name, entity.digest, entity.source_type) == ("train", dataset.digest, "s3")
    assert entity.schema == dataset.schema
    assert entity.profile == dataset.profile
    assert data.from_numpy(features, source="/d").name == "dataset"


def test_object_arrays_hash_their_values() -> None:
    a = data.from_numpy(np.array(["a", None, "c"], dtype=object), source="/d")
    b = data.from_numpy(np.array(["a", None, "c"], dtype=object), source="/d")
    c = data.from_numpy(np.array(["a", None, "d"], dtype=object), source="/d")
    assert a.digest == b.digest != c.digest


def _frame() -> Any:
    return pd.DataFrame(
        {
            "age": np.array([31, 45, 27], dtype=np.int64),
            "score": [0.5, float("nan"), 0.25],
            "name": ["a", "b", "c"],
            "ok": [True, False, True],
            "small": np.array([1, 2, 3], dtype=np.int32),
            "label": [0, 1, 0],
        }
    )


def test_pandas_digest_is_stable_and_content_sensitive() -> None:
    df = _frame()
    first = data.from_pandas(df, source="train.csv", targets="label")
    assert first.digest == data.from_pandas(_frame(), source="other.csv").digest
    assert len(first.digest) == 8
    changed = _frame()
    changed.loc[1, "name"] = "z"
    assert data.from_pandas(changed, source="train.csv").digest != first.digest
    renamed = _frame().rename(columns={"age": "years"})
    assert data.from_pandas(renamed, source="train.csv").digest != first.digest
    assert data.from_pandas(df.iloc[:2], source="train.csv").digest != first.digest


def test_pandas_schema_and_profile() -> None:
    dataset = data.from_pandas(_frame(), source="/data/train.csv", targets="label", name="train")
    assert dataset.targets == "label"
    colspec = json.loads(dataset.schema)["mlflow_colspec"]
    assert colspec == [
        {"name": "age", "type": "long", "required": True},
        {"name": "score", "type": "double", "required": False},
        {"name": "name", "type": "string", "required": True},
        {"name": "ok", "type": "boolean", "required": True},
        {"name": "small", "type": "integer", "required": True},
        {"name": "label", "type": "long", "required": True},
    ]
    assert json.loads(dataset.profile) == {"num_rows": 3, "num_elements": 18}
    assert dataset.source_type == "local"
    assert json.loads(dataset.source) == {"uri": "/data/train.csv"}


def test_pandas_unhashable_cells_and_bad_targets() -> None:
    df = pd.DataFrame({"tokens": [[1, 2], [3]]})
    assert data.from_pandas(df, source="/d").digest == data.from_pandas(df.copy(), source="/d").digest
    with pytest.raises(ValueError, match="missing"):
        data.from_pandas(_frame(), source="/d", targets="missing")
    with pytest.raises(TypeError, match="DataFrame"):
        data.from_pandas(np.zeros(3), source="/d")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/data/train.csv", "local"),
        ("relative/train.csv", "local"),
        (Path("/data/train.csv"), "local"),
        ("file:///data/train.csv", "local"),
        ("C:\\data\\train.csv", "local"),
        ("s3://bucket/key.parquet", "s3"),
        ("s3a://bucket/key.parquet", "s3"),
        ("gs://bucket/key", "gcs"),
        ("https://example.com/train.csv", "http"),
        ("http://example.com/train.csv", "http"),
        ("hf://datasets/mnist", "hugging_face"),
        ("dbfs:/mnt/x", "dbfs"),
        ("abfss://c@a.dfs.core.windows.net/x", "abfss"),
        (None, "code"),
    ],
)
def test_source_type_inference(source: str | Path | None, expected: str) -> None:
    assert data.source_type_of(source) == expected
    assert data.from_numpy(np.zeros(2), source=source).source_type == expected


def test_missing_pandas_is_a_clear_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real_import_module = importlib.import_module

    def no_pandas(name: str, package: str | None = None) -> object:
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import_module(name, package)

    monkeypatch.setattr(importlib, "import_module", no_pandas)
    with pytest.raises(ImportError, match="pip install pandas"):
        data.from_pandas(object(), source="/d")
