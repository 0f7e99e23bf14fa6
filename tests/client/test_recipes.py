"""Recipes end to end, on both backends and both templates: runs, cache, cards, registry, scoring.

Each test makes a recipe with ``tracklane recipes init`` (scikit-learn's diabetes or breast cancer
data) whose profile names the test's server, and runs it through ``tracklane.recipes.Recipe``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tracklane
from tests.client.recipe_helpers import TRAINING, RecipeUnderTest, statuses
from tracklane.exceptions import NotFound
from tracklane.recipes import RecipeConfigError, RecipeError, StepFailedError

pytest.importorskip("sklearn")
pytest.importorskip("pyarrow")
pytest.importorskip("msgspec")

TEMPLATES = ["regression", "classification"]
METRIC = {"regression": "root_mean_squared_error", "classification": "f1_score"}
FIGURE = {"regression": "test_residuals_plot.png", "classification": "test_confusion_matrix.png"}


@pytest.fixture
def make(fl: Any, client: tracklane.Client, tmp_path: Path, unique: str) -> Any:
    def build(template: str) -> RecipeUnderTest:
        return RecipeUnderTest.create(tmp_path / f"{template}-{unique}", template, client)

    return build


@pytest.mark.parametrize("template", TEMPLATES)
def test_full_run_logs_cards_and_registers_then_a_rerun_does_nothing(make: Any, template: str) -> None:
    recipe: RecipeUnderTest = make(template)
    assert recipe.run() == statuses(TRAINING, [])

    [run] = recipe.runs()
    assert run.info.status.value == "FINISHED"
    assert run.data.tags["tracklane.recipe.template"] == f"{template}/v1"
    metric = METRIC[template]
    for prefix in ("training_", "val_", "test_"):
        assert f"{prefix}{metric}" in run.data.metrics, prefix
    custom = "weighted_mean_squared_error" if template == "regression" else "balanced_error"
    assert f"test_{custom}" in run.data.metrics
    paths = recipe.artifact_paths(run.info.run_id)
    assert {f"{step}/card.html" for step in TRAINING} <= paths
    assert {"train/model/MLmodel", FIGURE[template], "val_feature_importance.png"} <= paths
    evaluate_card = recipe.card(run.info.run_id, "evaluate")
    for text in ("VALIDATED", "passed", "Worst predictions"):
        assert text in evaluate_card
    assert "Split sizes" in recipe.card(run.info.run_id, "split")
    assert "Feature importance" in recipe.card(run.info.run_id, "train")
    for step in TRAINING:  # self-contained: the UI shows it in a sandboxed frame
        card = recipe.card(run.info.run_id, step)
        for text in ("<script", "http://", "https://"):
            assert text not in card, step

    [version] = recipe.versions()
    assert (version.version, version.run_id) == (1, run.info.run_id)
    assert version.source == f"runs:/{run.info.run_id}/train/model"
    model = tracklane.pyfunc.load_model(f"models:/{recipe.model_name}/1")
    test = recipe.recipe().get_artifact("test_data")
    predicted = model.predict(test.drop(columns=["target"]))
    assert len(predicted) == len(test)

    # Nothing changed: every step skipped, no new run, no new version. Touching files changes nothing.
    for path in (recipe.root / "steps").glob("*.py"):
        os.utime(path)
    assert recipe.run() == statuses([], TRAINING)
    assert len(recipe.runs()) == 1
    assert len(recipe.versions()) == 1


@pytest.mark.parametrize("template", TEMPLATES)
def test_editing_train_reruns_train_and_what_follows_only(make: Any, template: str) -> None:
    recipe: RecipeUnderTest = make(template)
    recipe.run()
    param = "alpha: 0.1" if template == "regression" else "C: 1.0"
    recipe.edit("steps/train.py", "def estimator_fn", "# tuned by hand\n\n\ndef estimator_fn")
    assert recipe.run() == statuses(["train", "evaluate", "register"], ["ingest", "split", "transform"])
    runs = recipe.runs()
    assert len(runs) == 2
    assert [v.version for v in recipe.versions()] == [2, 1]
    # A config change reaches the step it configures (and those after it) the same way.
    recipe.edit("recipe.yaml", param, param.replace("1", "2"))
    assert recipe.run() == statuses(["train", "evaluate", "register"], ["ingest", "split", "transform"])
    # The cache follows content: editing back finds the earlier entries again, nothing re-registered.
    recipe.edit("recipe.yaml", param.replace("1", "2"), param)
    assert recipe.run() == statuses([], TRAINING)
    recipe.edit("steps/train.py", "# tuned by hand\n\n\n", "")
    assert recipe.run() == statuses([], TRAINING)
    assert len(recipe.runs()) == 3
    assert len(recipe.versions()) == 3


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_failing_threshold_registers_nothing(make: Any, template: str) -> None:
    recipe: RecipeUnderTest = make(template)
    recipe.set_profile(**({"RMSE_THRESHOLD": 1} if template == "regression" else {"F1_THRESHOLD": 1.01}))
    assert recipe.run() == statuses(TRAINING, [])
    assert recipe.versions() == []
    with pytest.raises(NotFound):
        recipe.client.get_registered_model(recipe.model_name)
    [run] = recipe.runs()
    assert run.data.tags["tracklane.recipe.model_validation_status"] == "REJECTED"
    assert "failed" in recipe.card(run.info.run_id, "evaluate")
    assert "Not registered" in recipe.card(run.info.run_id, "register")
    assert recipe.recipe().get_artifact("model_validation_status") == "REJECTED"
    assert recipe.recipe().get_artifact("registered_model_version") is None
    # Allowed explicitly: registered although REJECTED.
    recipe.edit("recipe.yaml", "allow_non_validated_model: false", "allow_non_validated_model: true")
    assert recipe.run() == statuses(["register"], TRAINING[:-1])
    [version] = recipe.versions()
    assert version.tags["tracklane.recipe.model_validation_status"] == "REJECTED"


@pytest.mark.parametrize("template", TEMPLATES)
def test_batch_scoring_writes_every_row_without_pyspark(make: Any, template: str) -> None:
    assert importlib.util.find_spec("pyspark") is None
    recipe: RecipeUnderTest = make(template)
    recipe.edit(
        "recipe.yaml",
        "    output: {{PREDICT_OUTPUT_CONFIG}}",
        "    output: {{PREDICT_OUTPUT_CONFIG}}\n    batch_size: 40",
    )
    recipe.run()
    assert recipe.run("predict") == statuses(["ingest_scoring", "predict"], [])
    scoring = pd.read_csv(recipe.root / "data" / "scoring.csv")
    scored = pd.read_parquet(recipe.root / "data" / "scored.parquet")
    assert len(scored) == len(scoring) > 40  # several batches
    assert scored["prediction"].notna().all()
    pd.testing.assert_frame_equal(scored[scoring.columns], scoring, check_dtype=False)
    model = tracklane.pyfunc.load_model(f"models:/{recipe.model_name}/1")
    expected = model.predict(scoring.head(5))
    expected = expected["predicted_label"] if isinstance(expected, pd.DataFrame) else expected
    assert scored["prediction"].head(5).tolist() == pytest.approx(list(expected))
    assert recipe.run("predict") == statuses([], ["ingest_scoring", "predict"])
    # CSV output, from the same cached scoring input.
    recipe.edit(
        "profiles/local.yaml",
        'using: parquet\n  location: "./data/scored.parquet"',
        'using: csv\n  location: "./data/scored.csv"',
    )
    assert recipe.run("predict") == statuses(["predict"], ["ingest_scoring"])
    assert len(pd.read_csv(recipe.root / "data" / "scored.csv")) == len(scoring)
    [run] = recipe.runs()
    assert {"ingest_scoring/card.html", "predict/card.html"} <= recipe.artifact_paths(run.info.run_id)


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_step_that_raises_leaves_a_failure_card_and_the_earlier_cache(make: Any, template: str) -> None:
    recipe: RecipeUnderTest = make(template)
    recipe.edit("steps/train.py", '    """A', '    raise RuntimeError("the estimator is broken")\n    """A')
    with pytest.raises(StepFailedError, match="the estimator is broken") as caught:
        recipe.run()
    assert caught.value.step == "train"
    card = Path(caught.value.card_path).read_text()
    for text in ("FAILED", "Traceback", "the estimator is broken"):
        assert text in card
    [run] = recipe.runs()
    assert run.info.status.value == "FAILED"
    logged = recipe.card(run.info.run_id, "train")
    assert "the estimator is broken" in logged
    assert {"ingest/card.html", "split/card.html", "transform/card.html"} <= recipe.artifact_paths(
        run.info.run_id
    )
    assert "Traceback" in recipe.recipe().inspect("train")._repr_html_()
    assert recipe.versions() == []
    recipe.edit("steps/train.py", '    raise RuntimeError("the estimator is broken")\n', "")
    assert recipe.run() == statuses(["train", "evaluate", "register"], ["ingest", "split", "transform"])
    assert len(recipe.versions()) == 1


def test_a_malformed_recipe_names_the_key_and_line_and_runs_nothing(make: Any) -> None:
    recipe: RecipeUnderTest = make("regression")
    recipe.edit("recipe.yaml", "    post_split_filter_method:", "    post_split_filtr_method:")
    with pytest.raises(
        RecipeConfigError, match=r"recipe\.yaml, line 10: unknown key 'steps\.split\.post_split_filtr_method'"
    ):
        recipe.run()
    assert not (recipe.root / ".tracklane").exists()
    recipe.edit("recipe.yaml", "    post_split_filtr_method:", "    post_split_filter_method:")
    recipe.edit("recipe.yaml", "      - metric: root_mean_squared_error", "      - metric: rmse")
    with pytest.raises(RecipeConfigError, match=r"unknown metric 'rmse'"):
        recipe.run()
    assert not (recipe.root / ".tracklane").exists()


def test_the_cache_moves_with_the_recipe_and_clean_forgets_steps(
    make: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe: RecipeUnderTest = make("regression")
    recipe.run()
    moved = RecipeUnderTest(tmp_path / "elsewhere" / recipe.name, recipe.client)
    shutil.copytree(recipe.root, moved.root)
    assert moved.run() == statuses([], TRAINING)
    moved.recipe().clean("transform")
    assert moved.run() == statuses(["transform", "train", "evaluate", "register"], ["ingest", "split"])
    moved.recipe().clean()
    assert not any((moved.root / ".tracklane" / "cache").iterdir())
    monkeypatch.setenv("TRACKLANE_RECIPES_CACHE", str(tmp_path / "shared-cache"))
    assert recipe.run()["ingest"] == "ran"
    assert (tmp_path / "shared-cache" / recipe.name / "ingest").is_dir()


def test_artifacts_by_name(make: Any) -> None:
    recipe: RecipeUnderTest = make("classification")
    handle = recipe.recipe()
    assert handle.get_artifact("model") is None
    handle.run()
    ingested = handle.get_artifact("ingested_data")
    parts = [handle.get_artifact(n) for n in ("training_data", "validation_data", "test_data")]
    assert sum(len(p) for p in parts) == len(ingested)
    assert len(handle.get_artifact("transformed_training_data")) == len(parts[0])
    assert hasattr(handle.get_artifact("transformer"), "transform")
    assert isinstance(handle.get_artifact("model"), tracklane.pyfunc.PyFuncModel)
    run = handle.get_artifact("run")
    assert run.info.run_id == recipe.runs()[0].info.run_id
    assert handle.get_artifact("registered_model_version").version == 1
    with pytest.raises(ValueError, match="unknown artifact"):
        handle.get_artifact("modle")
    graph = str(handle.inspect())
    assert "train" in graph
    assert "cached" in graph
    assert "model_validation_status: VALIDATED" in str(handle.inspect("evaluate"))


@pytest.mark.parametrize("algorithm", ["hyperopt.tpe.suggest", "optuna.samplers.TPESampler"])
def test_tuning_logs_one_child_run_per_trial(make: Any, algorithm: str) -> None:
    pytest.importorskip(algorithm.split(".")[0])
    recipe: RecipeUnderTest = make("regression")
    recipe.edit(
        "recipe.yaml",
        "      alpha: 0.1\n",
        "      alpha: 0.1\n    tuning:\n      enabled: true\n      max_trials: 3\n"
        f"      algorithm: {algorithm}\n      parameters:\n        alpha:\n          distribution: uniform\n"
        "          low: 0.01\n          high: 10\n",
    )
    recipe.run("train")
    runs = recipe.runs()
    [parent] = [r for r in runs if not r.info.parent_run_id]
    children = [r for r in runs if r.info.parent_run_id == parent.info.run_id]
    assert len(children) == 3
    assert all("val_root_mean_squared_error" in c.data.metrics and "alpha" in c.data.params for c in children)
    assert "Tuning trials" in recipe.card(parent.info.run_id, "train")


def test_a_recipe_written_for_mlflow_runs_unchanged(
    fl: Any, client: tracklane.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/data/recipes/nyc-taxi follows MLflow 2.x's regression template (it runs under MLflow too).

    Its profile names MLflow's SQLite store; TRACKLANE_TRACKING_URI points it at the test's server.
    """
    import sys

    source = Path(__file__).resolve().parents[1] / "data" / "recipes"
    sys.path.insert(0, str(source))
    try:
        from make_taxi_data import taxi_trips
    finally:
        sys.path.remove(str(source))
    root = tmp_path / "nyc-taxi"
    shutil.copytree(source / "nyc-taxi", root)
    (root / "data").mkdir()
    taxi_trips(3000).to_parquet(root / "data" / "sample.parquet", index=False)
    monkeypatch.chdir(root)
    from tracklane.recipes import Recipe

    with pytest.raises(
        RecipeConfigError, match=r"sqlite:///metadata/mlflow/mlruns\.db.*TRACKLANE_TRACKING_URI"
    ):
        Recipe(profile="local").run()
    monkeypatch.setenv("TRACKLANE_TRACKING_URI", client.tracking_uri)
    recipe = Recipe(profile="local")
    assert {o.step: o.status for o in recipe.run()} == statuses(TRAINING, [])
    assert recipe.get_artifact("model_validation_status") == "VALIDATED"
    version = recipe.get_artifact("registered_model_version")
    assert version.name == "taxi_fare_regressor"
    run = recipe.get_artifact("run")
    assert run.data.metrics["test_root_mean_squared_error"] < 10
    assert "test_weighted_mean_squared_error" in run.data.metrics
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "sklearn_regression_experiment"
    assert [o.status for o in recipe.run("predict")] == ["ran", "ran"]
    scored = pd.read_parquet(root / "data" / "sample_output.parquet")
    assert len(scored) == 3000
    assert scored["prediction"].notna().all()


def test_ingest_reads_a_folder_and_a_custom_loader(make: Any) -> None:
    recipe: RecipeUnderTest = make("regression")
    data = recipe.root / "data"
    training = pd.read_parquet(data / "training.parquet")
    (data / "training.parquet").unlink()
    (data / "training").mkdir()
    for index, start in enumerate(range(0, len(training), 150)):
        training.iloc[start : start + 150].to_parquet(
            data / "training" / f"part-{index}.parquet", index=False
        )
    scoring = pd.read_csv(data / "scoring.csv")
    scoring.to_json(data / "scoring.json", orient="records", lines=True)
    recipe.edit("profiles/local.yaml", '"./data/training.parquet"', '"./data/training"')
    recipe.edit(
        "profiles/local.yaml",
        'using: csv\n  location: "./data/scoring.csv"',
        'using: json\n  location: "./data/scoring.json"\n  loader_method: load_file_as_dataframe',
    )
    with pytest.raises(RecipeError, match=r"no model to score with.*run the training recipe first"):
        recipe.run("predict")
    recipe.run()
    assert recipe.run("predict") == statuses(["ingest_scoring", "predict"], [])
    assert len(recipe.recipe().get_artifact("ingested_data")) == len(training)
    assert len(pd.read_parquet(data / "scored.parquet")) == len(scoring)
    # One more file in the folder is new data: ingest and everything after it runs again.
    training.head(20).to_parquet(data / "training" / "part-9.parquet", index=False)
    assert recipe.run() == statuses(TRAINING, [])
    assert len(recipe.recipe().get_artifact("ingested_data")) == len(training) + 20
