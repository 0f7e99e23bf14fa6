"""``tracklane.models.evaluate``: MLflow's ``mlflow.evaluate`` for regressors and classifiers."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracklane.models.evaluation import plots
from tracklane.models.evaluation.metrics import EvaluationMetric, classifier_metrics, regressor_metrics
from tracklane.models.evaluation.validation import MetricThreshold, check_thresholds

__all__ = ["EvaluationArtifact", "EvaluationResult", "evaluate"]

_MODEL_TYPES = ("regressor", "classifier")
_IMPORTANCE_ROWS = 2000


@dataclass(frozen=True)
class EvaluationArtifact:
    """A file ``evaluate`` logged: its ``runs:/`` URI and its bytes."""

    uri: str
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class EvaluationResult:
    """What ``evaluate`` computed.

    Attributes:
        metrics: Metric name (with the ``metric_prefix``) -> value.
        artifacts: Artifact name -> EvaluationArtifact.
        run_id: The run they were logged to.
        feature_importance: Feature -> permutation importance (empty when not computed).
    """

    metrics: dict[str, float]
    artifacts: dict[str, EvaluationArtifact]
    run_id: str
    feature_importance: dict[str, float] = field(default_factory=dict)


def evaluate(
    model: Any = None,
    data: Any = None,
    *,
    model_type: str | None = None,
    targets: Any = None,
    predictions: str | None = None,
    feature_names: Sequence[str] | None = None,
    evaluators: str | Sequence[str] | None = None,
    evaluator_config: Mapping[str, Any] | None = None,
    extra_metrics: Sequence[EvaluationMetric] | None = None,
    custom_metrics: Sequence[EvaluationMetric] | None = None,
    validation_thresholds: Mapping[str, MetricThreshold] | None = None,
    baseline_model: Any = None,
    env_manager: str = "local",
    model_config: Mapping[str, Any] | None = None,
    inference_params: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Scores a model on labelled data and logs metrics and plots to the active run (started if none).

    Metric names are MLflow's. Regressors: ``example_count``, ``mean_absolute_error``,
    ``mean_squared_error``, ``root_mean_squared_error``, ``sum_on_target``, ``mean_on_target``,
    ``r2_score``, ``max_error``, ``mean_absolute_percentage_error``, and a residual plot.
    Classifiers: ``accuracy_score``, ``recall_score``, ``precision_score``, ``f1_score``,
    ``log_loss``, ``roc_auc`` (when the model gives probabilities); binary ones also the confusion
    counts, ``precision_recall_auc`` and ROC and precision-recall curves; always a confusion matrix.
    With a model, permutation feature importance (``log_model_explainability: False`` turns it off).

    Args:
        model: A model URI, a ``PyFuncModel``, or any object with ``predict``; None to evaluate the
            ``predictions`` column of ``data``.
        data: A pandas DataFrame (or an array, with ``targets`` an array of labels).
        model_type: ``"regressor"`` or ``"classifier"``.
        targets: The label column of ``data`` (or the labels).
        predictions: With no model, the column holding predictions.
        feature_names: The feature columns (default: all but targets and predictions).
        evaluators: ``"default"`` (the only evaluator) or None.
        evaluator_config: ``metric_prefix``, ``pos_label``, ``label_list``, ``average`` (multiclass,
            default ``"weighted"``), ``sample_weights``, ``log_model_explainability``.
        extra_metrics: Metrics made with ``make_metric``; ``custom_metrics`` is the older name.
        validation_thresholds: Metric name -> MetricThreshold; a failure raises after logging.
        baseline_model: A model to compare with (``min_absolute_change``/``min_relative_change``).
        env_manager: Only ``"local"`` (the model runs in this process).
        model_config: Passed to ``load_model`` when ``model`` is a URI.
        inference_params: Passed to ``predict``.

    Returns:
        The EvaluationResult.

    Raises:
        ValueError: a bad argument (unknown model type or evaluator, missing targets...).
        ModelValidationFailedException: a validation threshold was not met.
    """
    import pandas as pd

    from tracklane import fluent

    if model_type not in _MODEL_TYPES:
        raise ValueError(f"model_type must be one of {_MODEL_TYPES}, got {model_type!r}")
    names = [evaluators] if isinstance(evaluators, str) else list(evaluators or ["default"])
    if any(name != "default" for name in names):
        raise ValueError(f"evaluators: only 'default' exists, got {names}")
    if env_manager != "local":
        raise ValueError("env_manager: only 'local' is supported (the model runs in this process)")
    config = dict(evaluator_config or {})
    prefix = str(config.get("metric_prefix", ""))
    features, y = _split_data(data, targets, predictions, feature_names)
    predict, proba, raw = _predictors(model, model_config, inference_params)
    y_pred = data[predictions].to_numpy() if predict is None and predictions else _flat(predict(features))  # type: ignore[misc]
    if y_pred is None:
        raise ValueError("give a model, or the predictions column of data with predictions=")
    metrics, figures, _labels, _pos_label = _builtin(model_type, y, y_pred, features, proba, config)
    eval_df = pd.DataFrame({"prediction": y_pred, "target": y})
    for metric in [*(extra_metrics or []), *(custom_metrics or [])]:
        metrics.update(metric.compute(eval_df, metrics))
    importance: dict[str, float] = {}
    if predict is not None and config.get("log_model_explainability", True) and len(features.columns):
        importance = _permutation_importance(model_type, predict, features, y, config)
        figures["feature_importance"] = plots.feature_importance_png(importance)
    del raw
    prefixed = {f"{prefix}{k}": float(v) for k, v in metrics.items()}
    active = fluent.active_run()
    run = active or fluent.start_run()
    try:
        fluent.log_metrics(prefixed)
        client = fluent.default_client()
        artifacts = {}
        for name, png in figures.items():
            file = f"{prefix}{name}.png"
            client.log_bytes(run.info.run_id, png, file)
            artifacts[name] = EvaluationArtifact(f"runs:/{run.info.run_id}/{file}", png)
        if importance:
            frame = pd.DataFrame({"feature": list(importance), "importance": list(importance.values())})
            data_bytes = frame.to_csv(index=False).encode()
            client.log_bytes(run.info.run_id, data_bytes, f"{prefix}feature_importance.csv")
    finally:
        if active is None:
            fluent.end_run()
    if validation_thresholds:
        baseline_metrics = None
        if baseline_model is not None:
            base_predict, base_proba, _ = _predictors(baseline_model, None, inference_params)
            assert base_predict is not None
            baseline_metrics, *_ = _builtin(
                model_type, y, _flat(base_predict(features)), features, base_proba, {**config, "plots": False}
            )
        check_thresholds(validation_thresholds, metrics, baseline_metrics)
    return EvaluationResult(prefixed, artifacts, run.info.run_id, importance)


def _split_data(
    data: Any, targets: Any, predictions: str | None, feature_names: Sequence[str] | None
) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    if data is None:
        raise ValueError("data is required")
    if isinstance(data, pd.DataFrame):
        if not isinstance(targets, str) or targets not in data.columns:
            raise ValueError(f"targets must name a column of data, got {targets!r}")
        drop = [targets, *([predictions] if predictions else [])]
        columns = list(feature_names) if feature_names else [c for c in data.columns if c not in drop]
        return data[columns], data[targets].to_numpy()
    if targets is None:
        raise ValueError("targets (the labels) are required with array data")
    array = np.asarray(data)
    names = list(feature_names) if feature_names else [f"feature_{i + 1}" for i in range(array.shape[1])]
    return pd.DataFrame(array, columns=names), np.asarray(targets)


def _predictors(
    model: Any, model_config: Mapping[str, Any] | None, params: Mapping[str, Any] | None
) -> tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None, Any]:
    if model is None:
        return None, None, None
    if isinstance(model, str | os.PathLike):
        from tracklane.pyfunc import load_model

        model = load_model(model, model_config=model_config)
    raw = model.get_raw_model() if hasattr(model, "get_raw_model") else model
    proba = getattr(raw, "predict_proba", None)
    if params and hasattr(model, "unwrap_python_model"):
        return (lambda x: model.predict(x, params=dict(params))), proba, raw
    return model.predict, proba, raw


def _flat(values: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.DataFrame):
        for column in ("predicted_label", "prediction"):
            if column in values.columns:
                return values[column].to_numpy()
        if values.shape[1] == 1:
            return values.iloc[:, 0].to_numpy()
        raise ValueError(f"the model returned columns {list(values.columns)}: which one is the prediction?")
    return np.asarray(values).reshape(len(values), -1)[:, 0] if np.ndim(values) > 1 else np.asarray(values)


def _builtin(
    model_type: str, y: Any, y_pred: Any, features: Any, proba_fn: Any, config: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, bytes], list[Any], Any]:
    import numpy as np

    weights = config.get("sample_weights")
    draw = config.get("plots", True)
    if model_type == "regressor":
        drawn = {"residuals_plot": plots.residuals_png(y, y_pred)} if draw else {}
        return regressor_metrics(y, y_pred, weights), drawn, [], None
    labels = list(
        config.get("label_list") or sorted(set(np.asarray(y).tolist()) | set(np.asarray(y_pred).tolist()))
    )
    pos_label = config.get("pos_label", labels[-1] if len(labels) <= 2 else None)
    if len(labels) <= 2 and pos_label is not None and pos_label not in labels:
        labels.append(pos_label)
    proba = None
    if proba_fn is not None:
        proba = np.asarray(proba_fn(features))
        classes = getattr(getattr(proba_fn, "__self__", None), "classes_", None)
        if classes is not None and list(classes) != labels and set(labels) <= set(classes):
            proba = proba[:, [list(classes).index(label) for label in labels]]
        if proba.ndim != 2 or proba.shape[1] != len(labels):
            proba = None
    metrics = classifier_metrics(
        y, y_pred, proba, labels, pos_label, str(config.get("average", "weighted")), weights
    )
    figures: dict[str, bytes] = {}
    if draw:
        figures["confusion_matrix"] = plots.confusion_matrix_png(y, y_pred, labels)
        if proba is not None and len(labels) == 2 and len(set(np.asarray(y).tolist())) == 2:
            truth = np.asarray(y) == pos_label
            score = proba[:, labels.index(pos_label)]
            figures["roc_curve_plot"] = plots.roc_curve_png(truth, score)
            figures["precision_recall_curve_plot"] = plots.pr_curve_png(truth, score)
    return metrics, figures, labels, pos_label


def _permutation_importance(
    model_type: str, predict: Callable[[Any], Any], features: Any, y: Any, config: Mapping[str, Any]
) -> dict[str, float]:
    import numpy as np
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import accuracy_score, mean_squared_error

    sample = features
    truth = np.asarray(y)
    if len(features) > _IMPORTANCE_ROWS:
        rows = np.random.default_rng(0).choice(len(features), _IMPORTANCE_ROWS, replace=False)
        sample, truth = features.iloc[rows], truth[rows]

    def score(_estimator: Any, x: Any, target: Any) -> float:
        predicted = _flat(predict(x))
        if model_type == "regressor":
            return -float(np.sqrt(mean_squared_error(target, predicted)))
        return float(accuracy_score(target, predicted))

    result = permutation_importance(_NoFit(), sample, truth, scoring=score, n_repeats=3, random_state=0)
    return {
        str(name): float(value) for name, value in zip(sample.columns, result.importances_mean, strict=True)
    }


class _NoFit:
    """permutation_importance wants an estimator; the scorer calls the model itself."""

    def fit(self, *_: Any) -> _NoFit:
        return self
