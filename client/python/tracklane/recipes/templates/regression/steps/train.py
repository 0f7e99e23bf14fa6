"""The 'train' step: an unfitted estimator with fit() and predict()."""

from typing import Any


def estimator_fn(estimator_params: dict[str, Any] | None = None):
    """A ridge regression, with the parameters of recipe.yaml's estimator_params."""
    from sklearn.linear_model import Ridge

    return Ridge(**(estimator_params or {}))
