"""Custom metrics named under custom_metrics in recipe.yaml."""

from pandas import DataFrame


def balanced_error(eval_df: DataFrame, builtin_metrics: dict[str, float]) -> float:
    """The mean of the error rates on each class."""
    errors = eval_df["prediction"] != eval_df["target"]
    return float(errors.groupby(eval_df["target"]).mean().mean())
