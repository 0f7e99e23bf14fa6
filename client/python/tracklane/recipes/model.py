"""The model a recipe registers: its fitted transformer and estimator as one pyfunc model."""

from __future__ import annotations

from typing import Any

from tracklane.pyfunc.model import PythonModel, PythonModelContext

__all__ = ["RecipeModel"]


class RecipeModel(PythonModel):
    """Transforms raw rows with the recipe's transformer, then predicts with its estimator.

    Classifiers that give probabilities answer, as MLflow's recipe models do, with a DataFrame:
    ``<prefix>label``, ``<prefix>score`` (the label's probability) and ``<prefix>score_<class>``
    per class, unless ``predict_scores_for_all_classes`` was turned off.
    """

    def __init__(
        self, transformer: Any, estimator: Any, classifier: bool, prefix: str, all_scores: bool
    ) -> None:
        self.transformer = transformer
        self.estimator = estimator
        self.classifier = classifier
        self.prefix = prefix
        self.all_scores = all_scores

    def _features(self, frame: Any) -> Any:
        from tracklane.recipes.steps.transform import apply_transformer

        return apply_transformer(self.transformer, frame, None)

    def predict_proba(self, frame: Any) -> Any:
        """Class probabilities, columns in ``estimator.classes_`` order."""
        return self.estimator.predict_proba(self._features(frame))

    @property
    def classes_(self) -> Any:
        """The classes, in the order of ``predict_proba``'s columns."""
        return getattr(self.estimator, "classes_", None)

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        """Predictions for raw rows (a DataFrame with the training features)."""
        import numpy as np
        import pandas as pd

        features = self._features(model_input)
        labels = self.estimator.predict(features)
        if not (self.classifier and self.all_scores and hasattr(self.estimator, "predict_proba")):
            return labels
        proba = np.asarray(self.estimator.predict_proba(features))
        out = pd.DataFrame({f"{self.prefix}label": labels, f"{self.prefix}score": proba.max(axis=1)})
        for index, cls in enumerate(self.estimator.classes_):
            out[f"{self.prefix}score_{cls}"] = proba[:, index]
        return out
