"""``evaluate``: the model on the test set (``tracklane.models.evaluate``), judged by the thresholds.

The verdict is VALIDATED when every ``validation_criteria`` threshold holds on the test metrics,
REJECTED when one does not, and UNKNOWN when there are no criteria (as in MLflow).
"""

from __future__ import annotations

import html
from typing import Any

from tracklane.recipes import metrics as recipe_metrics
from tracklane.recipes.steps._context import MODEL_DIR, TEST, StepContext
from tracklane.recipes.steps.train import worst_predictions

__all__ = ["run"]

_FIGURES = {
    "residuals_plot": "Residuals",
    "confusion_matrix": "Confusion matrix",
    "roc_curve_plot": "ROC curve",
    "precision_recall_curve_plot": "Precision-recall curve",
}


def run(ctx: StepContext) -> dict[str, Any]:
    """Scores the test set and decides the verdict."""
    import tracklane
    from tracklane.models import evaluate

    schema = ctx.config.schema
    target = schema.target_col
    test = ctx.read_parquet("split", TEST)
    model = tracklane.pyfunc.load_model(ctx.input_file("train", MODEL_DIR))
    config: dict[str, Any] = {"metric_prefix": "test_", "log_model_explainability": False}
    if schema.positive_class is not None:
        config["pos_label"] = schema.positive_class
    run_id = ctx.run_id()
    with tracklane.start_run(run_id=run_id):
        result = evaluate(
            model,
            test,
            targets=target,
            model_type=recipe_metrics.model_type(schema),
            extra_metrics=recipe_metrics.load_custom_metrics(schema),
            evaluator_config=config,
        )
        test_metrics = {k.removeprefix("test_"): v for k, v in result.metrics.items()}
        criteria = (schema.steps.evaluate.validation_criteria if schema.steps.evaluate else None) or []
        rows = []
        for criterion in criteria:
            higher = recipe_metrics.greater_is_better(schema, criterion.metric)
            value = test_metrics.get(criterion.metric)
            passed = value is not None and (
                value >= criterion.threshold if higher else value <= criterion.threshold
            )
            rows.append(
                {
                    "metric": criterion.metric,
                    "value": value,
                    "threshold": criterion.threshold,
                    "greater is better": higher,
                    "passed": passed,
                }
            )
        status = "UNKNOWN" if not rows else ("VALIDATED" if all(r["passed"] for r in rows) else "REJECTED")
        tracklane.set_tag("tracklane.recipe.model_validation_status", status)
    ctx.card.verdict = status
    ctx.card.fact("run id", run_id)
    ctx.card.fact("model validation status", status)
    if rows:
        ctx.card.add_html("Validation criteria (test set)", _criteria_html(rows))
    validation = ctx.inputs["train"].meta.get("metrics", {})
    ctx.card.add_table(
        "Metrics",
        [
            {"metric": m, "validation": (validation.get(m) or {}).get("validation"), "test": v}
            for m, v in sorted(test_metrics.items())
        ],
    )
    for name, title in _FIGURES.items():
        if name in result.artifacts:
            ctx.card.add_image(f"{title} (test set)", result.artifacts[name].content)
    ctx.card.add_table("Worst predictions (test set)", worst_predictions(model, test, target, schema.task))
    return {
        "run_id": run_id,
        "model_validation_status": status,
        "test_metrics": test_metrics,
        "criteria": rows,
    }


def _criteria_html(rows: list[dict[str, Any]]) -> str:
    cells = []
    for row in rows:
        value = "not computed" if row["value"] is None else f"{row['value']:.6g}"
        op = ">=" if row["greater is better"] else "<="
        verdict = '<span class="pass">passed</span>' if row["passed"] else '<span class="fail">failed</span>'
        cells.append(
            f"<tr><td>{html.escape(row['metric'])}</td><td>{value}</td>"
            f"<td>{op} {row['threshold']:.6g}</td><td>{verdict}</td></tr>"
        )
    return (
        "<table><tr><th>metric</th><th>value</th><th>threshold</th><th>result</th></tr>"
        + "".join(cells)
        + "</table>"
    )
