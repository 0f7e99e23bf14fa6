"""The whole model story on a real server, on both backends, through the fluent API.

Train a scikit-learn classifier on iris; log params, the training data, a metric, a tag and the model
(signature, input example); load it by run URI and from a downloaded folder; register it; load it by
version, alias and stage; promote a second version, roll the alias back; read both moves in the history.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tracklane
from tracklane.exceptions import NotFound
from tracklane.models import Model, SchemaEnforcementError, infer_signature

pytest.importorskip("sklearn")
pytest.importorskip("skops")
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _train_and_log(X: Any, y: Any, c: float, registered_model_name: str | None = None) -> Any:
    """One training run: params, dataset, metric, tag and the model; returns (model, ModelInfo)."""
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    with tracklane.start_run(run_name=f"logreg-C{c}"):
        tracklane.log_params({"C": c, "max_iter": 500, "scaler": "standard"})
        train = X_train.assign(target=y_train)
        tracklane.log_input(
            tracklane.data.from_pandas(train, targets="target", name="iris-train"), context="training"
        )
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(X_train, y_train)
        tracklane.log_metric("accuracy", float(clf.score(X_test, y_test)))
        tracklane.set_tag("model_family", "logistic_regression")
        info = tracklane.sklearn.log_model(
            clf,
            "model",
            signature=infer_signature(X_train, clf.predict(X_train)),
            input_example=X_train.head(5),
            registered_model_name=registered_model_name,
        )
    return clf, info


def test_model_story(fl: None, client: tracklane.Client, unique: str, tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    tracklane.set_experiment(f"iris-{unique}")
    clf, info = _train_and_log(X, y, c=1.0)
    run_id = info.run_id
    assert info.model_uri == f"runs:/{run_id}/model"
    assert info.registered_model_version is None

    # What the run recorded.
    run = client.get_run(run_id)
    assert run.data.params == {"C": "1.0", "max_iter": "500", "scaler": "standard"}
    assert run.data.metrics["accuracy"] > 0.8
    assert run.data.tags["model_family"] == "logistic_regression"
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "iris-train"
    assert dataset_input.context == "training"
    files = {f.path for f in client.list_artifacts(run_id, "model")}
    assert {
        "model/MLmodel",
        "model/model.skops",
        "model/input_example.json",
        "model/requirements.txt",
    } <= files

    # Load it back by run URI: pyfunc with the signature enforced, and the estimator itself.
    model = tracklane.pyfunc.load_model(info.model_uri)
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    assert model.metadata.run_id == run_id
    assert model.metadata.artifact_path == "model"
    with pytest.raises(SchemaEnforcementError, match=r"missing inputs \['petal width \(cm\)'\]"):
        model.predict(X.drop(columns=["petal width (cm)"]))
    np.testing.assert_array_equal(tracklane.sklearn.load_model(info.model_uri).predict(X), clf.predict(X))

    # Download it to a folder and load it from there, no server involved.
    local = tracklane.artifacts.download_artifacts(artifact_uri=info.model_uri, dst_path=str(tmp_path / "dl"))
    assert sorted(os.listdir(local)) == [
        "MLmodel", "input_example.json", "model.skops", "python_env.yaml", "requirements.txt",
    ]  # fmt: skip
    meta = Model.load(local)
    assert (meta.run_id, meta.model_uuid) == (run_id, info.model_uuid)
    example = meta.load_input_example(local)
    np.testing.assert_array_equal(tracklane.pyfunc.load_model(local).predict(example), clf.predict(example))
    np.testing.assert_array_equal(tracklane.sklearn.load_model(local).predict(X), clf.predict(X))
    assert Model.load(info.model_uri).model_uuid == info.model_uuid  # MLmodel alone, by URI

    # Register it; load by version, alias and stage.
    name = f"iris-classifier-{unique}"
    v1 = tracklane.register_model(info.model_uri, name)
    assert (v1.version, v1.run_id) == (1, run_id)
    client.set_registered_model_alias(name, "champion", 1)
    client.transition_model_version_stage(name, 1, "Production")
    for uri in (
        f"models:/{name}/1",
        f"models:/{name}@champion",
        f"models:/{name}/Production",
        f"models:/{name}/production",
    ):
        loaded = tracklane.pyfunc.load_model(uri)
        assert loaded.metadata.run_id == run_id, uri
        np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    with pytest.raises(NotFound, match="Staging"):
        tracklane.pyfunc.load_model(f"models:/{name}/Staging")
    with pytest.raises(NotFound):
        tracklane.pyfunc.load_model(f"models:/{name}@challenger")
    with pytest.raises(NotFound):
        tracklane.pyfunc.load_model(f"models:/{name}/7")

    # A second version, logged and registered in one step; promote it.
    clf2, info2 = _train_and_log(X, y, c=0.01, registered_model_name=name)
    assert info2.registered_model_version == 2
    client.transition_model_version_stage(name, 2, "Production", archive_existing_versions=True)
    client.set_registered_model_alias(name, "champion", 2)
    champion = tracklane.pyfunc.load_model(f"models:/{name}@champion")
    assert champion.metadata.run_id == info2.run_id
    np.testing.assert_array_equal(champion.predict(X), clf2.predict(X))
    assert tracklane.pyfunc.load_model(f"models:/{name}/Production").metadata.run_id == info2.run_id
    assert tracklane.pyfunc.load_model(f"models:/{name}/Archived").metadata.run_id == run_id
    assert tracklane.pyfunc.load_model(f"models:/{name}/latest").metadata.run_id == info2.run_id

    # Roll the alias back: one call.
    client.set_registered_model_alias(name, "champion", 1)
    rolled_back = tracklane.pyfunc.load_model(f"models:/{name}@champion")
    assert rolled_back.metadata.run_id == run_id
    np.testing.assert_array_equal(rolled_back.predict(X), clf.predict(X))

    # The history shows both moves (newest first), and the stage transitions.
    events = client.list_model_events(name)
    alias_moves = [
        (e.old_value, e.new_value) for e in events if e.kind == "alias_set" and e.alias == "champion"
    ]
    assert alias_moves == [("2", "1"), ("1", "2"), ("", "1")]
    stages = [(e.version, e.old_value, e.new_value) for e in events if e.kind == "stage_transition"]
    assert (2, "None", "Production") in stages
    assert (1, "Production", "Archived") in stages
    assert all(e.timestamp for e in events)


class Scaled(tracklane.pyfunc.PythonModel):
    """Multiplies column x by a factor read from an artifact at load time."""

    def load_context(self, context: tracklane.pyfunc.PythonModelContext) -> None:
        self.factor = float(Path(context.artifacts["factor"]).read_text())

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return model_input["x"] * self.factor


def test_python_models_logged_registered_copied_and_loaded(
    fl: None, client: tracklane.Client, unique: str, tmp_path: Path
) -> None:
    tracklane.set_experiment(f"pyfunc-{unique}")
    name = f"scaler-{unique}"
    (tmp_path / "factor.txt").write_text("3")
    script = tmp_path / "double.py"
    script.write_text("import tracklane\ntracklane.models.set_model(lambda df: df['x'] * 2)\n")
    example = pd.DataFrame({"x": [1.0, 2.0]})
    with tracklane.start_run() as run:
        tracklane.log_artifact(str(tmp_path / "factor.txt"), "config")
        factor_uri = f"runs:/{run.info.run_id}/config/factor.txt"  # an artifact taken from the run
        info = tracklane.pyfunc.log_model(
            "scaled",
            python_model=Scaled(),
            artifacts={"factor": factor_uri},
            input_example=example,
            registered_model_name=name,
        )
        code_info = tracklane.pyfunc.log_model(
            "doubled", python_model=str(script), input_example=example, registered_model_name=name
        )
    assert (info.registered_model_version, code_info.registered_model_version) == (1, 2)
    files = {f.path for f in client.list_artifacts(run.info.run_id, "scaled", recursive=True)}
    assert "scaled/artifacts/factor" in files
    assert "doubled/double.py" in {f.path for f in client.list_artifacts(run.info.run_id, "doubled")}

    assert tracklane.pyfunc.load_model(f"models:/{name}/1").predict(example).tolist() == [3.0, 6.0]
    client.set_registered_model_alias(name, "live", 2)
    live = tracklane.pyfunc.load_model(f"models:/{name}@live")
    assert live.predict(example).tolist() == [2.0, 4.0]
    with pytest.raises(SchemaEnforcementError, match=r"missing inputs \['x'\]"):
        live.predict(pd.DataFrame({"y": [1.0]}))

    # Promotion between registered models: the copy loads the same files.
    copied = client.copy_model_version(f"models:/{name}@live", f"{name}-prod")
    assert copied.version == 1
    assert tracklane.pyfunc.load_model(f"models:/{name}-prod/1").predict(example).tolist() == [2.0, 4.0]


def test_log_model_starts_a_run_when_none_is_active(fl: None, client: tracklane.Client, unique: str) -> None:
    tracklane.set_experiment(f"autostart-{unique}")
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    assert tracklane.active_run() is None
    info = tracklane.sklearn.log_model(clf, "nested/clf", serialization_format="cloudpickle")
    active = tracklane.active_run()
    assert active is not None
    assert active.info.run_id == info.run_id  # left active, as MLflow does
    tracklane.end_run()
    assert info.model_uri == f"runs:/{info.run_id}/nested/clf"
    loaded = tracklane.sklearn.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert Model.load(info.model_uri).flavors["sklearn"]["serialization_format"] == "cloudpickle"
    with pytest.raises(NotFound):
        tracklane.pyfunc.load_model(f"runs:/{info.run_id}/no-such-model")
