"""``train``: fits the estimator (custom, tuned, or found by FLAML) and logs the recipe model.

The transformer and the fitted estimator are logged together as one pyfunc model, ``train/model``
on the recipe's run, with the estimator's parameters and MLflow's ``training_*`` and ``val_*``
metrics.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from tracklane.recipes import metrics as recipe_metrics
from tracklane.recipes.code import load_function
from tracklane.recipes.errors import RecipeError
from tracklane.recipes.model import RecipeModel
from tracklane.recipes.steps import tuning
from tracklane.recipes.steps._context import (
    MODEL_DIR,
    TRAIN,
    TRANSFORMED_TRAIN,
    TRANSFORMED_VALIDATION,
    TRANSFORMER,
    VALIDATION,
    StepContext,
)

__all__ = ["missing_engine", "run", "worst_predictions"]

MODEL_ARTIFACT = "train/model"


def missing_engine(ctx_schema: Any) -> str | None:
    """Why training cannot run here (FLAML, hyperopt or optuna missing), else None."""
    train = ctx_schema.steps.train
    if train.using == "automl/flaml" and not _flaml_automl():
        return "steps.train: using: automl/flaml needs FLAML's AutoML (pip install 'flaml[automl]')"
    return tuning.missing_engine(train.tuning)


def _flaml_automl() -> bool:
    # Plain `flaml` installs without AutoML (it warns and lacks the class): look for the real thing.
    if importlib.util.find_spec("flaml") is None:
        return False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import flaml

    return hasattr(flaml, "AutoML")


def run(ctx: StepContext) -> dict[str, Any]:
    """Fits, logs and evaluates the model on the training and validation sets."""
    import cloudpickle

    import tracklane
    from tracklane.models import evaluate, infer_signature

    schema = ctx.config.schema
    section = schema.steps.train
    target = schema.target_col
    train_t = ctx.read_parquet("transform", TRANSFORMED_TRAIN)
    validation_t = ctx.read_parquet("transform", TRANSFORMED_VALIDATION)
    raw_train = ctx.read_parquet("split", TRAIN)
    raw_validation = ctx.read_parquet("split", VALIDATION)
    with open(ctx.input_file("transform", TRANSFORMER), "rb") as src:
        transformer = cloudpickle.load(src)
    X, y = train_t.drop(columns=[target]), train_t[target]
    custom = recipe_metrics.load_custom_metrics(schema)
    run_id = ctx.run_id()
    with tracklane.start_run(run_id=run_id):
        estimator, params, trials = _estimator(ctx, X, y, validation_t, custom)
        if section.calibrate_proba and schema.task == "classification":
            from sklearn.calibration import CalibratedClassifierCV

            estimator = CalibratedClassifierCV(estimator, method=section.calibrate_proba, cv=3)
        estimator.fit(X, y)
        tracklane.log_params({k: _short(v) for k, v in params.items()})
        model = RecipeModel(
            transformer,
            estimator,
            schema.task == "classification",
            section.predict_prefix,
            section.predict_scores_for_all_classes,
        )
        folder = ctx.out / MODEL_DIR
        features = raw_train.drop(columns=[target])
        _save(ctx, model, folder, features, infer_signature, run_id)
        tracklane.log_artifacts(folder, MODEL_ARTIFACT)
        loaded = tracklane.pyfunc.load_model(folder)
        kind = recipe_metrics.model_type(schema)
        config: dict[str, Any] = {}
        if schema.positive_class is not None:
            config["pos_label"] = schema.positive_class
        results = {}
        for name, frame, prefix in (
            ("training", raw_train, "training_"),
            ("validation", raw_validation, "val_"),
        ):
            results[name] = evaluate(
                loaded,
                frame,
                targets=target,
                model_type=kind,
                extra_metrics=custom,
                evaluator_config={
                    **config,
                    "metric_prefix": prefix,
                    "log_model_explainability": name == "validation",
                },
            )
    metric_rows = _metric_rows(results, ("training", "training_"), ("validation", "val_"))
    primary = recipe_metrics.primary_metric(schema)
    ctx.card.fact("run id", run_id)
    ctx.card.fact("estimator", type(estimator).__name__)
    ctx.card.fact(
        f"validation {primary}", f"{results['validation'].metrics.get('val_' + primary, float('nan')):.6g}"
    )
    ctx.card.add_table("Metrics", metric_rows)
    ctx.card.add_table(
        "Parameters", [{"parameter": k, "value": _short(v)} for k, v in sorted(params.items())]
    )
    importance = results["validation"].feature_importance
    if importance:
        ctx.card.add_image(
            "Feature importance (validation set)",
            results["validation"].artifacts["feature_importance"].content,
        )
    if trials:
        ctx.card.add_table("Tuning trials (best first)", trials)
    ctx.card.add_table(
        "Worst predictions (validation set)", worst_predictions(loaded, raw_validation, target, schema.task)
    )
    return {
        "run_id": run_id,
        "model_uri": f"runs:/{run_id}/{MODEL_ARTIFACT}",
        "estimator": type(estimator).__name__,
        "metrics": {r["metric"]: r for r in metric_rows},
    }


def _save(
    ctx: StepContext, model: RecipeModel, folder: Any, features: Any, infer_signature: Any, run_id: str
) -> None:
    from tracklane.models.model import Model
    from tracklane.pyfunc import save_model

    steps_dir = ctx.config.root / "steps"
    sample = features.head(100)
    signature = infer_signature(sample, model.predict(None, sample))  # type: ignore[arg-type]
    save_model(
        folder,
        python_model=model,
        signature=signature,
        input_example=features.head(5),
        code_paths=[steps_dir] if steps_dir.is_dir() else None,
        extra_pip_requirements=["scikit-learn", "pandas"],
        _model=Model(artifact_path=MODEL_ARTIFACT, run_id=run_id),
    )


def _estimator(
    ctx: StepContext, X: Any, y: Any, validation: Any, custom: list[Any]
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    schema = ctx.config.schema
    section = schema.steps.train
    if section.using == "automl/flaml":
        return _flaml(ctx, X, y)
    estimator_fn = load_function(str(section.estimator_method), "steps.train", "steps.train.estimator_method")
    fixed = dict(section.estimator_params)
    trials: list[dict[str, Any]] = []
    if section.tuning is not None and section.tuning.enabled:
        best = _tune(ctx, estimator_fn, fixed, X, y, validation, custom, trials)
        fixed = {**fixed, **best}
    estimator = estimator_fn(fixed) if fixed else estimator_fn()
    if not callable(getattr(estimator, "fit", None)) or not callable(getattr(estimator, "predict", None)):
        raise RecipeError(
            f"estimator_method {section.estimator_method} must return an estimator with fit() and predict()"
        )
    params = estimator.get_params() if hasattr(estimator, "get_params") else fixed
    return estimator, params, trials


def _tune(
    ctx: StepContext,
    estimator_fn: Any,
    fixed: dict[str, Any],
    X: Any,
    y: Any,
    validation: Any,
    custom: list[Any],
    trials: list[dict[str, Any]],
) -> dict[str, Any]:
    import pandas as pd

    import tracklane
    from tracklane.models.evaluation.base import _builtin, _flat

    schema = ctx.config.schema
    settings = schema.steps.train.tuning
    assert settings is not None
    target = schema.target_col
    primary = recipe_metrics.primary_metric(schema)
    higher = recipe_metrics.greater_is_better(schema, primary)
    sample_X, sample_y = X, y
    if settings.sample_fraction < 1:
        sample_X = X.sample(frac=settings.sample_fraction, random_state=0)
        sample_y = y.loc[sample_X.index]
    val_X, val_y = validation.drop(columns=[target]), validation[target].to_numpy()
    kind = recipe_metrics.model_type(schema)
    parent = tracklane.active_run()
    assert parent is not None
    experiment_id = parent.info.experiment_id

    def objective(trial_params: dict[str, Any]) -> float:
        params = {**fixed, **trial_params}
        with tracklane.start_run(
            nested=True, experiment_id=experiment_id, run_name=f"trial-{len(trials) + 1}"
        ):
            estimator = estimator_fn(params).fit(sample_X, sample_y)
            predicted = _flat(estimator.predict(val_X))
            proba = getattr(estimator, "predict_proba", None)
            config = {
                "plots": False,
                **({"pos_label": schema.positive_class} if schema.positive_class is not None else {}),
            }
            values, *_ = _builtin(kind, val_y, predicted, val_X, proba, config)
            eval_df = pd.DataFrame({"prediction": predicted, "target": val_y})
            for metric in custom:
                values.update(metric.compute(eval_df, values))
            value = float(values[primary])
            tracklane.log_params({k: _short(v) for k, v in trial_params.items()})
            tracklane.log_metric(f"val_{primary}", value)
        trials.append({**{k: _short(v) for k, v in trial_params.items()}, f"val_{primary}": value})
        return -value if higher else value

    best = tuning.tune(settings, objective)
    trials.sort(key=lambda row: row[f"val_{primary}"], reverse=higher)
    return best


def _flaml(ctx: StepContext, X: Any, y: Any) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    from flaml import AutoML

    schema = ctx.config.schema
    section = schema.steps.train
    automl = AutoML()
    task = "regression" if schema.task == "regression" else "classification"
    settings = {
        "time_budget": section.time_budget_secs,
        "task": task,
        "verbose": 0,
        "seed": 0,
        **section.flaml_params,
    }
    automl.fit(X, y, **settings)
    estimator = automl.model.estimator
    params = {"flaml_best_estimator": automl.best_estimator, **automl.best_config}
    return estimator, params, []


def _metric_rows(results: dict[str, Any], *sets: tuple[str, str]) -> list[dict[str, Any]]:
    names = sorted({k.removeprefix(p) for (n, p) in sets for k in results[n].metrics})
    return [{"metric": m, **{n: results[n].metrics.get(p + m) for n, p in sets}} for m in names]


def worst_predictions(model: Any, frame: Any, target: str, task: str, count: int = 10) -> Any:
    """The rows the model gets most wrong (largest absolute error, or misclassified)."""
    import numpy as np

    from tracklane.models.evaluation.base import _flat

    predicted = _flat(model.predict(frame.drop(columns=[target])))
    out = frame.copy()
    out.insert(0, "prediction", predicted)
    if task == "regression":
        out.insert(1, "error", np.asarray(predicted, dtype=float) - frame[target].to_numpy(dtype=float))
        return out.reindex(out["error"].abs().sort_values(ascending=False).index).head(count)
    return out[out["prediction"] != out[target]].head(count)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."
