"""The figures ``evaluate`` logs, drawn with matplotlib's object API (no pyplot, no backend switch)."""

from __future__ import annotations

import io
from typing import Any

__all__ = ["confusion_matrix_png", "feature_importance_png", "pr_curve_png", "residuals_png", "roc_curve_png"]


def _figure(width: float = 5.5, height: float = 4.0) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="tight")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def residuals_png(y: Any, y_pred: Any) -> bytes:
    """Residuals (target - prediction) against predictions."""
    import numpy as np

    figure, ax = _figure()
    pred = np.asarray(y_pred, dtype=float)
    ax.scatter(pred, np.asarray(y, dtype=float) - pred, s=6, alpha=0.5)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("target - prediction")
    ax.set_title("Residuals")
    return _png(figure)


def confusion_matrix_png(y: Any, y_pred: Any, labels: list[Any]) -> bytes:
    """The confusion matrix, counts in each cell."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y, y_pred, labels=labels)
    size = max(4.0, 0.6 * len(labels) + 2)
    figure, ax = _figure(size, size * 0.85)
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax)
    ticks = range(len(labels))
    ax.set_xticks(list(ticks), [str(v) for v in labels], rotation=45)
    ax.set_yticks(list(ticks), [str(v) for v in labels])
    for i in ticks:
        for j in ticks:
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    return _png(figure)


def roc_curve_png(truth: Any, score: Any) -> bytes:
    """ROC curve of a binary classifier (positive class probability)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(truth, score)
    figure, ax = _figure()
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(truth, score):.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    return _png(figure)


def pr_curve_png(truth: Any, score: Any) -> bytes:
    """Precision-recall curve of a binary classifier."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(truth, score)
    figure, ax = _figure()
    ax.plot(recall, precision, label=f"AP {average_precision_score(truth, score):.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall curve")
    ax.legend(loc="lower left")
    return _png(figure)


def feature_importance_png(importance: dict[str, float]) -> bytes:
    """Horizontal bars, most important on top (at most 20)."""
    top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:20]
    figure, ax = _figure(6.0, max(2.5, 0.3 * len(top) + 1))
    names = [k for k, _ in reversed(top)]
    ax.barh(names, [v for _, v in reversed(top)])
    ax.set_xlabel("drop in score when the feature is shuffled")
    ax.set_title("Permutation feature importance")
    return _png(figure)
