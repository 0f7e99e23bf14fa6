"""The 'train' step: an unfitted estimator with fit() and predict()."""

from typing import Any


def estimator_fn(estimator_params: dict[str, Any] | None = None):
    """A logistic regression, with the parameters of recipe.yaml's estimator_params."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, **(estimator_params or {}))
