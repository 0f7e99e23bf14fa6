"""The metrics a recipe knows: the template's built-in ones and ``custom_metrics`` of recipe.yaml."""

from __future__ import annotations

from typing import Any

from tracklane.recipes.code import load_function
from tracklane.recipes.errors import RecipeConfigError
from tracklane.recipes.schema import RecipeSchema

__all__ = ["greater_is_better", "known_metrics", "load_custom_metrics", "model_type", "primary_metric"]

_REGRESSION = {
    "mean_absolute_error": False,
    "mean_squared_error": False,
    "root_mean_squared_error": False,
    "max_error": False,
    "mean_absolute_percentage_error": False,
    "r2_score": True,
    "example_count": True,
    "sum_on_target": True,
    "mean_on_target": True,
}
_BINARY = {
    "true_negatives": True,
    "false_positives": False,
    "false_negatives": False,
    "true_positives": True,
    "recall_score": True,
    "precision_score": True,
    "f1_score": True,
    "accuracy_score": True,
    "roc_auc": True,
    "precision_recall_auc": True,
    "log_loss": False,
    "example_count": True,
}
_MULTICLASS = {
    "recall_score": True,
    "precision_score": True,
    "f1_score": True,
    "f1_score_macro": True,
    "f1_score_micro": True,
    "accuracy_score": True,
    "roc_auc": True,
    "log_loss": False,
    "example_count": True,
}
_DEFAULT_PRIMARY = {
    "regression": "root_mean_squared_error",
    "binary": "f1_score",
    "multiclass": "f1_score_macro",
}


def _kind(schema: RecipeSchema) -> str:
    if schema.task == "regression":
        return "regression"
    return "binary" if schema.positive_class is not None else "multiclass"


def model_type(schema: RecipeSchema) -> str:
    """``regressor`` or ``classifier``, for ``tracklane.models.evaluate``."""
    return "regressor" if schema.task == "regression" else "classifier"


def known_metrics(schema: RecipeSchema) -> dict[str, bool]:
    """Metric name -> greater_is_better, built-in and custom."""
    builtin = {"regression": _REGRESSION, "binary": _BINARY, "multiclass": _MULTICLASS}[_kind(schema)]
    return {**builtin, **{m.name: m.greater_is_better for m in schema.custom_metrics}}


def primary_metric(schema: RecipeSchema) -> str:
    """The configured primary metric, else the template's default."""
    return schema.primary_metric or _DEFAULT_PRIMARY[_kind(schema)]


def greater_is_better(schema: RecipeSchema, metric: str) -> bool:
    """Whether higher is better for ``metric``."""
    return known_metrics(schema)[metric]


def check_metric_names(schema: RecipeSchema) -> None:
    """Primary metric and validation criteria must name known metrics.

    Raises:
        RecipeConfigError: an unknown metric name.
    """
    known = known_metrics(schema)
    named = [("primary_metric", primary_metric(schema))]
    evaluate = schema.steps.evaluate
    for i, criterion in enumerate((evaluate.validation_criteria if evaluate else None) or []):
        named.append((f"steps.evaluate.validation_criteria.{i}.metric", criterion.metric))
    for key, name in named:
        if name not in known:
            raise RecipeConfigError(
                f"recipe.yaml: {key}: unknown metric {name!r}; built-in and custom metrics are: "
                f"{', '.join(sorted(known))}"
            )


def load_custom_metrics(schema: RecipeSchema) -> list[Any]:
    """``custom_metrics`` as ``make_metric`` objects (inside ``user_code``)."""
    from tracklane.models.evaluation import make_metric

    return [
        make_metric(
            eval_fn=load_function(m.function, "steps.custom_metrics", f"custom_metrics {m.name}"),
            greater_is_better=m.greater_is_better,
            name=m.name,
        )
        for m in schema.custom_metrics
    ]
