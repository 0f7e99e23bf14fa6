"""``tracklane.models.evaluate`` on a real server: MLflow's metric names, logged metrics and plots."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import tracklane
from tracklane.models import MetricThreshold, ModelValidationFailedException, evaluate, make_metric

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
from sklearn import metrics as sk
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

REGRESSOR_METRICS = {
    "example_count", "mean_absolute_error", "mean_squared_error", "root_mean_squared_error",
    "sum_on_target", "mean_on_target", "r2_score", "max_error", "mean_absolute_percentage_error",
}  # fmt: skip


def _diabetes() -> tuple[pd.DataFrame, LinearRegression]:
    data = load_diabetes(as_frame=True).frame
    return data, LinearRegression().fit(data.drop(columns="target"), data["target"])


def test_regressor_metrics_plots_and_custom_metrics_land_on_the_active_run(
    fl: Any, client: tracklane.Client, unique: str
) -> None:
    data, model = _diabetes()
    tracklane.set_experiment(f"evaluate-{unique}")

    def share_within_50(eval_df: pd.DataFrame, builtin_metrics: dict[str, float]) -> float:
        assert "root_mean_squared_error" in builtin_metrics
        return float(((eval_df["prediction"] - eval_df["target"]).abs() < 50).mean())

    def bias(predictions: pd.Series, targets: pd.Series) -> float:
        return float((predictions - targets).mean())

    with tracklane.start_run() as run:
        result = evaluate(
            model,
            data,
            targets="target",
            model_type="regressor",
            extra_metrics=[
                make_metric(eval_fn=share_within_50, greater_is_better=True),
                make_metric(eval_fn=bias, greater_is_better=False, name="mean_bias"),
            ],
            evaluator_config={"metric_prefix": "test_"},
        )
    predicted = model.predict(data.drop(columns="target"))
    assert {f"test_{m}" for m in REGRESSOR_METRICS} <= set(result.metrics)
    assert result.metrics["test_root_mean_squared_error"] == pytest.approx(
        np.sqrt(sk.mean_squared_error(data["target"], predicted))
    )
    assert result.metrics["test_r2_score"] == pytest.approx(sk.r2_score(data["target"], predicted))
    within = float((np.abs(predicted - data["target"]) < 50).mean())
    assert result.metrics["test_share_within_50"] == pytest.approx(within)
    assert result.metrics["test_mean_bias"] == pytest.approx(
        float((predicted - data["target"]).mean()), abs=1e-9
    )
    assert result.run_id == run.info.run_id
    logged = client.get_run(run.info.run_id).data.metrics
    assert logged["test_share_within_50"] == pytest.approx(within)
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"test_residuals_plot.png", "test_feature_importance.png", "test_feature_importance.csv"} <= files
    assert client.read_artifact(run.info.run_id, "test_residuals_plot.png").startswith(b"\x89PNG")
    assert max(result.feature_importance, key=result.feature_importance.__getitem__) in {"s5", "bmi", "s1"}


def test_binary_classifier_curves_and_confusion_counts(fl: Any, client: tracklane.Client) -> None:
    data = load_breast_cancer(as_frame=True).frame
    features = data.drop(columns="target")
    model = LogisticRegression(max_iter=5000).fit(features, data["target"])
    result = evaluate(
        model, data, targets="target", model_type="classifier", evaluator_config={"pos_label": 1}
    )
    predicted = model.predict(features)
    tn, fp, fn, tp = sk.confusion_matrix(data["target"], predicted).ravel()
    m = result.metrics
    assert (m["true_negatives"], m["false_positives"], m["false_negatives"], m["true_positives"]) == (
        tn,
        fp,
        fn,
        tp,
    )
    assert m["f1_score"] == pytest.approx(sk.f1_score(data["target"], predicted))
    assert m["roc_auc"] == pytest.approx(
        sk.roc_auc_score(data["target"], model.predict_proba(features)[:, 1])
    )
    assert {"log_loss", "precision_recall_auc", "accuracy_score"} <= set(m)
    assert {"confusion_matrix", "roc_curve_plot", "precision_recall_curve_plot"} <= set(result.artifacts)
    run = client.get_run(result.run_id)  # no run was active: one was started and ended
    assert run.info.status.value == "FINISHED"
    assert tracklane.active_run() is None


def test_multiclass_metrics(fl: Any) -> None:
    data = load_iris(as_frame=True).frame
    model = LogisticRegression(max_iter=1000).fit(data.drop(columns="target"), data["target"])
    result = evaluate(model, data, targets="target", model_type="classifier")
    predicted = model.predict(data.drop(columns="target"))
    assert result.metrics["f1_score"] == pytest.approx(
        sk.f1_score(data["target"], predicted, average="weighted")
    )
    assert result.metrics["f1_score_macro"] == pytest.approx(
        sk.f1_score(data["target"], predicted, average="macro")
    )
    assert "roc_auc" in result.metrics
    assert "true_positives" not in result.metrics


def test_a_threshold_not_met_raises_after_logging(fl: Any, client: tracklane.Client) -> None:
    data, model = _diabetes()
    with tracklane.start_run() as run:
        with pytest.raises(ModelValidationFailedException, match=r"r2_score: 0\.5\d+ is not >= 0\.9"):
            evaluate(
                model,
                data,
                targets="target",
                model_type="regressor",
                validation_thresholds={
                    "r2_score": MetricThreshold(threshold=0.9, greater_is_better=True),
                    "max_error": MetricThreshold(threshold=1000, greater_is_better=False),
                },
            )
        mean = float(data["target"].mean())

        class Constant:  # a candidate worse than the baseline model
            def predict(self, x: pd.DataFrame) -> np.ndarray:
                return np.full(len(x), mean)

        with pytest.raises(ModelValidationFailedException, match="does not beat the baseline"):
            evaluate(
                Constant(),
                data,
                targets="target",
                model_type="regressor",
                baseline_model=model,
                validation_thresholds={
                    "r2_score": MetricThreshold(min_absolute_change=0.01, greater_is_better=True)
                },
            )
    assert "r2_score" in client.get_run(run.info.run_id).data.metrics


def test_predictions_column_and_bad_arguments(fl: Any) -> None:
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "p": [1.0, 2.5, 2.5, 4.0]})
    result = evaluate(data=frame, targets="y", predictions="p", model_type="regressor")
    assert result.metrics["max_error"] == 0.5
    assert not result.feature_importance
    with pytest.raises(ValueError, match="model_type must be one of"):
        evaluate(data=frame, targets="y", predictions="p", model_type="ranker")
    with pytest.raises(ValueError, match="only 'default'"):
        evaluate(data=frame, targets="y", predictions="p", model_type="regressor", evaluators=["shap"])
    with pytest.raises(ValueError, match="targets must name a column"):
        evaluate(data=frame, targets="label", predictions="p", model_type="regressor")
    with pytest.raises(ValueError, match="greater_is_better"):
        MetricThreshold(threshold=1)
    with pytest.raises(ValueError, match="name= is required"):
        make_metric(eval_fn=lambda eval_df, builtin: 1.0, greater_is_better=True)
