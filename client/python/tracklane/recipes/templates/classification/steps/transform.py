"""The 'transform' step: an unfitted scikit-learn transformer, fitted by the recipe."""

from sklearn.preprocessing import StandardScaler


def transformer_fn():
    """Scales every feature to zero mean and unit variance."""
    return StandardScaler()
