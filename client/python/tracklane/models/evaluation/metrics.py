"""Built-in metrics of ``evaluate`` (MLflow's names) and user metrics made with ``make_metric``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EvaluationMetric", "MetricValue", "classifier_metrics", "make_metric", "regressor_metrics"]


@dataclass(frozen=True)
class MetricValue:
    """What a metric function may return instead of a number: per-row scores and aggregates."""

    scores: list[float] | None = None
    justifications: list[str] | None = None
    aggregate_results: Mapping[str, float] | None = None


@dataclass(frozen=True)
class EvaluationMetric:
    """A metric computed by ``evaluate`` from predictions (see ``make_metric``)."""

    eval_fn: Callable[..., Any]
    name: str
    greater_is_better: bool
    long_name: str | None = None
    version: str | None = None
    metric_details: str | None = None

    def compute(self, eval_df: Any, builtin: Mapping[str, float]) -> dict[str, float]:
        """The metric's value(s), as ``name`` (or ``name/<aggregate>``) -> number."""
        params = list(inspect.signature(self.eval_fn).parameters)
        if len(params) == 2 and params != ["predictions", "targets"]:
            value = self.eval_fn(eval_df.copy(), dict(builtin))  # MLflow's first form
        else:
            available = {
                "predictions": eval_df["prediction"],
                "targets": eval_df.get("target"),
                "metrics": dict(builtin),
            }
            missing = [p for p in params if p not in available]
            if missing:
                raise ValueError(
                    f"metric {self.name!r}: unknown parameters {missing} (use predictions, targets, metrics)"
                )
            value = self.eval_fn(*(available[p] for p in params))
        return _as_numbers(self.name, value)


def _as_numbers(name: str, value: Any) -> dict[str, float]:
    if isinstance(value, MetricValue) or hasattr(value, "aggregate_results"):
        return {f"{name}/{k}": float(v) for k, v in (value.aggregate_results or {}).items()}
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    try:
        return {name: float(value)}
    except (TypeError, ValueError):
        raise ValueError(f"metric {name!r} returned {type(value).__name__}, not a number") from None


def make_metric(
    *,
    eval_fn: Callable[..., Any],
    greater_is_better: bool,
    name: str | None = None,
    long_name: str | None = None,
    version: str | None = None,
    metric_details: str | None = None,
) -> EvaluationMetric:
    """A metric for ``evaluate(extra_metrics=[...])``, as in MLflow.

    ``eval_fn`` is either ``fn(eval_df, builtin_metrics)`` (``eval_df`` has ``prediction`` and
    ``target`` columns) or takes any of ``predictions``, ``targets``, ``metrics`` by name. It
    returns a number, a dict of numbers, or a ``MetricValue``.

    Args:
        eval_fn: The function.
        greater_is_better: Whether higher is better (thresholds and recipes use it).
        name: The metric's name; the function's name when None.
        long_name: A longer name, for display.
        version: A version label.
        metric_details: How it is computed.

    Raises:
        ValueError: no name given for a lambda.
    """
    metric_name = name or getattr(eval_fn, "__name__", "")
    if not metric_name or metric_name == "<lambda>":
        raise ValueError("name= is required when eval_fn has no __name__ (a lambda)")
    return EvaluationMetric(eval_fn, metric_name, greater_is_better, long_name, version, metric_details)


def regressor_metrics(y: Any, y_pred: Any, sample_weight: Any = None) -> dict[str, float]:
    """MLflow's regressor metrics."""
    import numpy as np
    from sklearn import metrics as sk

    y = np.asarray(y, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    total = float((y * weights).sum() if weights is not None else y.sum())
    mse = float(sk.mean_squared_error(y, y_pred, sample_weight=weights))
    return {
        "example_count": float(len(y)),
        "mean_absolute_error": float(sk.mean_absolute_error(y, y_pred, sample_weight=weights)),
        "mean_squared_error": mse,
        "root_mean_squared_error": float(np.sqrt(mse)),
        "sum_on_target": total,
        "mean_on_target": total / max(1, len(y)),
        "r2_score": float(sk.r2_score(y, y_pred, sample_weight=weights)),
        "max_error": float(sk.max_error(y, y_pred)),
        "mean_absolute_percentage_error": float(
            sk.mean_absolute_percentage_error(y, y_pred, sample_weight=weights)
        ),
    }


def classifier_metrics(
    y: Any,
    y_pred: Any,
    y_proba: Any,
    labels: list[Any],
    pos_label: Any,
    average: str = "weighted",
    sample_weight: Any = None,
) -> dict[str, float]:
    """MLflow's classifier metrics: binary ones when ``labels`` has two classes, else multiclass."""
    import numpy as np
    from sklearn import metrics as sk

    binary = len(labels) <= 2
    avg = "binary" if binary else average
    pos = pos_label if binary else None
    out: dict[str, float] = {"example_count": float(len(y))}
    if binary:
        tn, fp, fn, tp = sk.confusion_matrix(
            y, y_pred, labels=[c for c in labels if c != pos_label] + [pos_label]
        ).ravel()
        out.update(
            true_negatives=float(tn),
            false_positives=float(fp),
            false_negatives=float(fn),
            true_positives=float(tp),
        )
    out["accuracy_score"] = float(sk.accuracy_score(y, y_pred, sample_weight=sample_weight))
    for metric in ("recall_score", "precision_score", "f1_score"):
        fn_ = getattr(sk, metric)
        out[metric] = float(
            fn_(y, y_pred, average=avg, pos_label=pos, sample_weight=sample_weight, zero_division=0)
        )
    if not binary:
        for variant in ("macro", "micro"):
            out[f"f1_score_{variant}"] = float(
                sk.f1_score(y, y_pred, average=variant, sample_weight=sample_weight, zero_division=0)
            )
    if y_proba is not None:
        proba = np.asarray(y_proba, dtype=float)
        out["log_loss"] = float(sk.log_loss(y, proba, labels=labels, sample_weight=sample_weight))
        if binary and len(set(np.asarray(y).tolist())) == 2:
            positive = proba[:, list(labels).index(pos_label)]
            truth = np.asarray(y) == pos_label
            out["roc_auc"] = float(sk.roc_auc_score(truth, positive, sample_weight=sample_weight))
            out["precision_recall_auc"] = float(
                sk.average_precision_score(truth, positive, sample_weight=sample_weight)
            )
        elif not binary and average in ("macro", "weighted"):
            out["roc_auc"] = float(
                sk.roc_auc_score(
                    y, proba, labels=labels, multi_class="ovr", average=average, sample_weight=sample_weight
                )
            )
    return out
