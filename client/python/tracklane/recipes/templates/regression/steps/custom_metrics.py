"""Custom metrics named under custom_metrics in recipe.yaml."""

from pandas import DataFrame


def weighted_mean_squared_error(eval_df: DataFrame, builtin_metrics: dict[str, float]) -> float:
    """The root of the squared errors weighted by the target (errors on large targets count more)."""
    weights = eval_df["target"] / eval_df["target"].mean()
    return float((weights * (eval_df["prediction"] - eval_df["target"]) ** 2).mean() ** 0.5)
