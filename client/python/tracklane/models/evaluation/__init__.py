"""Model evaluation as in MLflow 2.x: ``evaluate``, ``make_metric``, ``MetricThreshold``.

import tracklane
from tracklane.models import MetricThreshold, make_metric

def weighted_mse(eval_df, builtin_metrics):
    return ((eval_df["prediction"] - eval_df["target"]) ** 2 / eval_df["target"]).mean()

with tracklane.start_run():
    result = tracklane.models.evaluate(
        "models:/fares/1", test_df, targets="fare_amount", model_type="regressor",
        extra_metrics=[make_metric(eval_fn=weighted_mse, greater_is_better=False)],
        validation_thresholds={"root_mean_squared_error": MetricThreshold(10, greater_is_better=False)},
    )
"""

from tracklane.models.evaluation.base import EvaluationArtifact, EvaluationResult, evaluate
from tracklane.models.evaluation.metrics import EvaluationMetric, MetricValue, make_metric
from tracklane.models.evaluation.validation import MetricThreshold, ModelValidationFailedException

__all__ = [
    "EvaluationArtifact",
    "EvaluationMetric",
    "EvaluationResult",
    "MetricThreshold",
    "MetricValue",
    "ModelValidationFailedException",
    "evaluate",
    "make_metric",
]
