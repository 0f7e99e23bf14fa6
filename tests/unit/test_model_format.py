"""The model folder on local disk: MLmodel round trip, sklearn and pyfunc flavors, models from code."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import tracklane
from tracklane.exceptions import InvalidArgument
from tracklane.models import Model, SchemaEnforcementError, infer_signature
from tracklane.models.uri import resolve_model_uri

pytest.importorskip("sklearn")
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def classifier(iris: tuple[pd.DataFrame, pd.Series]) -> Any:
    X, y = iris
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


def test_mlmodel_round_trip_keeps_every_field(tmp_path: Path) -> None:
    signature = infer_signature(pd.DataFrame({"x": [1.0]}), np.array([1]))
    model = Model(artifact_path="model", run_id="abc", signature=signature, metadata={"team": "risk"})
    model.add_flavor("python_function", loader_module="m", env={"virtualenv": "python_env.yaml"})
    model.extra["mlflow_version"] = "2.17.0"  # another tool's key survives
    model.save(tmp_path / "MLmodel")
    loaded = Model.load(tmp_path)
    assert loaded == model
    assert loaded.signature == signature
    assert loaded.model_uuid == model.model_uuid
    assert len(model.model_uuid) == 32
    assert loaded.extra == {"mlflow_version": "2.17.0"}
    raw = yaml.safe_load((tmp_path / "MLmodel").read_text())
    assert {"artifact_path", "flavors", "model_uuid", "run_id", "signature", "utc_time_created"} <= set(raw)
    assert isinstance(raw["signature"]["inputs"], str)  # JSON text, as MLflow writes it


def test_mlmodel_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no MLmodel"):
        Model.load(tmp_path)
    (tmp_path / "MLmodel").write_text("- a list\n")
    with pytest.raises(ValueError, match="YAML mapping"):
        Model.load(tmp_path)


def test_sklearn_save_writes_mlflow_layout(tmp_path: Path, classifier: Any, iris: Any) -> None:
    X, _ = iris
    path = tmp_path / "model"
    tracklane.sklearn.save_model(classifier, path, input_example=X.head(3))
    assert sorted(os.listdir(path)) == [
        "MLmodel",
        "input_example.json",
        "model.skops",
        "python_env.yaml",
        "requirements.txt",
    ]
    meta = Model.load(path)
    assert meta.flavors["sklearn"]["serialization_format"] == "skops"
    assert meta.flavors["python_function"]["loader_module"] == "tracklane.sklearn"
    assert meta.signature is not None  # inferred from the example and its predictions
    assert meta.signature.outputs is not None
    assert meta.get_input_schema().input_names() == list(X.columns)
    pd.testing.assert_frame_equal(meta.load_input_example(path), X.head(3))
    requirements = (path / "requirements.txt").read_text().split()
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert any(r.startswith("skops==") for r in requirements)
    env = yaml.safe_load((path / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.txt"]
    assert env["python"].count(".") == 2
    with pytest.raises(FileExistsError, match="not empty"):
        tracklane.sklearn.save_model(classifier, path)


@pytest.mark.parametrize("fmt", ["skops", "cloudpickle", "pickle"])
def test_sklearn_round_trip_each_format(tmp_path: Path, classifier: Any, iris: Any, fmt: str) -> None:
    X, _ = iris
    tracklane.sklearn.save_model(classifier, tmp_path / "m", serialization_format=fmt)
    loaded = tracklane.sklearn.load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X), classifier.predict(X))
    assert (
        tracklane.pyfunc.load_model(f"file://{tmp_path / 'm'}").predict(X).tolist()
        == classifier.predict(X).tolist()
    )


def test_sklearn_skops_refuses_untrusted_types_until_trusted(tmp_path: Path, iris: Any) -> None:
    X, y = iris
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    tracklane.sklearn.save_model(forest, tmp_path / "m")
    with pytest.raises(ValueError, match=r"sklearn\.tree\._tree\.Tree.*trusted_types"):
        tracklane.sklearn.load_model(tmp_path / "m")
    trusted = ["sklearn.tree._tree.Tree"]
    loaded = tracklane.sklearn.load_model(tmp_path / "m", trusted_types=trusted)
    np.testing.assert_array_equal(loaded.predict(X), forest.predict(X))
    assert tracklane.pyfunc.load_model(tmp_path / "m", trusted_types=trusted).predict(X).shape == (150,)


def test_sklearn_bad_arguments(tmp_path: Path, classifier: Any) -> None:
    with pytest.raises(ValueError, match="serialization_format 'json'"):
        tracklane.sklearn.save_model(classifier, tmp_path / "a", serialization_format="json")
    with pytest.raises(ValueError, match="no method 'transform_all'"):
        tracklane.sklearn.save_model(classifier, tmp_path / "b", pyfunc_predict_fn="transform_all")


def test_pyfunc_enforces_signature_of_sklearn_model(tmp_path: Path, classifier: Any, iris: Any) -> None:
    X, _ = iris
    signature = infer_signature(X, classifier.predict(X))
    tracklane.sklearn.save_model(
        classifier, tmp_path / "m", signature=signature, pyfunc_predict_fn="predict_proba"
    )
    model = tracklane.pyfunc.load_model(tmp_path / "m")
    assert model.predict(X.head(2)).shape == (2, 3)  # predict_proba
    assert model.predict(X.head(2).to_numpy()).shape == (2, 3)  # a plain matrix, columns by position
    assert model.predict(X.head(2)[list(reversed(X.columns))]).shape == (2, 3)  # reordered
    with pytest.raises(SchemaEnforcementError, match=r"missing inputs \['petal width \(cm\)'\]"):
        model.predict(X.drop(columns=["petal width (cm)"]))
    with pytest.raises(
        SchemaEnforcementError, match=r"'sepal length \(cm\)': cannot safely convert (str|object) to double"
    ):
        model.predict(X.astype(str))


class AddN(tracklane.pyfunc.PythonModel):
    def __init__(self, n: int) -> None:
        self.n = n
        self.offset = 0

    def load_context(self, context: tracklane.pyfunc.PythonModelContext) -> None:
        self.offset = int(Path(context.artifacts["offset"]).read_text())
        self.scale = context.model_config.get("scale", 1)

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        extra = (params or {}).get("extra", 0)
        return (model_input["x"] + self.n + self.offset + extra) * self.scale


def test_python_model_with_artifacts_config_and_params(tmp_path: Path) -> None:
    (tmp_path / "offset.txt").write_text("100")
    example = pd.DataFrame({"x": [1.0, 2.0]})
    tracklane.pyfunc.save_model(
        tmp_path / "m",
        python_model=AddN(5),
        artifacts={"offset": str(tmp_path / "offset.txt")},
        input_example=example,
        model_config={"scale": 2},
    )
    assert sorted(os.listdir(tmp_path / "m")) == [
        "MLmodel",
        "artifacts",
        "input_example.json",
        "python_env.yaml",
        "python_model.pkl",
        "requirements.txt",
    ]
    model = tracklane.pyfunc.load_model(tmp_path / "m")
    assert model.predict(example).tolist() == [212.0, 214.0]
    assert model.predict(example, params={"extra": 1}).tolist() == [214.0, 216.0]
    assert tracklane.pyfunc.load_model(tmp_path / "m", model_config={"scale": 1}).predict(
        example
    ).tolist() == [
        106.0,
        107.0,
    ]
    assert isinstance(model.unwrap_python_model(), AddN)
    with pytest.raises(SchemaEnforcementError, match=r"missing inputs \['x'\]"):
        model.predict(pd.DataFrame({"y": [1.0]}))


def test_models_from_code(tmp_path: Path) -> None:
    helper = tmp_path / "helpers"
    helper.mkdir()
    (helper / "scaling.py").write_text("FACTOR = 3\n")
    script = tmp_path / "my_model.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np
            import scaling
            import tracklane

            class Triple(tracklane.pyfunc.PythonModel):
                def predict(self, model_input, params=None):
                    return np.asarray(model_input) * scaling.FACTOR

            tracklane.models.set_model(Triple())
            """
        )
    )
    tracklane.pyfunc.save_model(
        tmp_path / "m", python_model=str(script), code_paths=[str(helper / "scaling.py")],
        input_example=np.array([[1.0, 2.0]]),
    )  # fmt: skip
    meta = Model.load(tmp_path / "m")
    assert meta.flavors["python_function"]["model_code_path"] == "my_model.py"
    assert "python_model" not in meta.flavors["python_function"]  # nothing pickled
    assert (tmp_path / "m" / "code" / "scaling.py").is_file()
    model = tracklane.pyfunc.load_model(tmp_path / "m")
    assert model.predict(np.array([[1.0, 2.0]])).tolist() == [[3.0, 6.0]]
    with pytest.raises(SchemaEnforcementError, match="Shape"):
        model.predict(np.array([1.0, 2.0]))


def test_models_from_code_function_and_missing_set_model(tmp_path: Path) -> None:
    script = tmp_path / "fn.py"
    script.write_text("import tracklane\ntracklane.models.set_model(lambda data: [len(data)])\n")
    tracklane.pyfunc.save_model(tmp_path / "m", python_model=str(script))
    assert tracklane.pyfunc.load_model(tmp_path / "m").predict([1, 2, 3]) == [3]
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    tracklane.pyfunc.save_model(tmp_path / "b", python_model=str(bad))
    with pytest.raises(RuntimeError, match=r"did not call tracklane\.models\.set_model"):
        tracklane.pyfunc.load_model(tmp_path / "b")
    with pytest.raises(TypeError, match="set_model expects"):
        tracklane.models.set_model(42)
    with pytest.raises(TypeError, match="python_model must be"):
        tracklane.pyfunc.save_model(tmp_path / "c", python_model=None)


def test_pyfunc_needs_its_flavor(tmp_path: Path) -> None:
    Model().add_flavor("onnx", data="model.onnx").save(tmp_path / "MLmodel")
    with pytest.raises(ValueError, match="no python_function flavor"):
        tracklane.pyfunc.load_model(tmp_path)
    with pytest.raises(ValueError, match="no sklearn flavor"):
        tracklane.sklearn.load_model(tmp_path)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://bucket/model", "cannot load a model from"),
        ("runs:/", "runs:/<run_id>/<path>"),
        ("models:/", "models:/<name>/<version>"),
        ("models:/iris", "models:/<name>/<version>"),
    ],
)
def test_bad_model_uris(uri: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        resolve_model_uri(uri)
    assert info.value.field == "model_uri"


def test_local_uris_resolve_in_place(tmp_path: Path) -> None:
    assert resolve_model_uri(str(tmp_path)) == str(tmp_path)
    assert resolve_model_uri(f"file://{tmp_path}") == str(tmp_path)
    runs = resolve_model_uri("runs:/abc123/path/to/model/")
    assert not isinstance(runs, str)
    assert (runs.run_id, runs.path, runs.uri) == ("abc123", "path/to/model", "runs:/abc123/path/to/model")


def test_reads_a_model_folder_mlflow_wrote(tmp_path: Path, classifier: Any, iris: Any) -> None:
    X, _ = iris
    import cloudpickle

    (tmp_path / "model.pkl").write_bytes(cloudpickle.dumps(classifier))
    (tmp_path / "MLmodel").write_text(
        textwrap.dedent(
            """
            artifact_path: model
            flavors:
              python_function:
                env: {conda: conda.yaml, virtualenv: python_env.yaml}
                loader_module: mlflow.sklearn
                model_path: model.pkl
                predict_fn: predict
                python_version: 3.11.7
              sklearn:
                code: null
                pickled_model: model.pkl
                serialization_format: cloudpickle
                sklearn_version: 1.5.2
            mlflow_version: 2.17.0
            model_uuid: 0b8c4c1f6f0a4f0e9b5e2d7c3a1f9e88
            run_id: 5f1e2a3b4c5d6e7f8a9b0c1d2e3f4a5b
            signature:
              inputs: '[{"type": "double", "name": "sepal length (cm)", "required": true}, {"type": "double",
                "name": "sepal width (cm)", "required": true}, {"type": "double", "name": "petal length (cm)",
                "required": true}, {"type": "double", "name": "petal width (cm)", "required": true}]'
              outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
              params: null
            utc_time_created: '2024-10-01 12:00:00.000000'
            """
        )
    )
    model = tracklane.pyfunc.load_model(tmp_path)
    assert model.loader_module == "tracklane.sklearn"
    np.testing.assert_array_equal(model.predict(X), classifier.predict(X))
    assert Model.load(tmp_path).extra == {"mlflow_version": "2.17.0"}
    with pytest.raises(SchemaEnforcementError, match="missing inputs"):
        model.predict(X.iloc[:, :2])
