"""Optuna's MLflowCallback (optuna-integration), unchanged: a 20-trial study logged to MLflow."""

import json
import sys

import mlflow
import optuna
from optuna.integration.mlflow import MLflowCallback

name = sys.argv[1]
optuna.logging.set_verbosity(optuna.logging.WARNING)
callback = MLflowCallback(tracking_uri=mlflow.get_tracking_uri(), metric_name="objective")
study = optuna.create_study(study_name=name, sampler=optuna.samplers.TPESampler(seed=1))
study.optimize(lambda t: (t.suggest_float("x", -10, 10) - 2) ** 2, n_trials=20, callbacks=[callback])
runs = mlflow.search_runs(experiment_names=[name], output_format="list")
print(
    json.dumps(
        {
            "runs": len(runs),
            "best_value": study.best_value,
            "logged_best": min(r.data.metrics["objective"] for r in runs),
            "xs": sorted(float(r.data.params["x"]) for r in runs),
            "trial_xs": sorted(t.params["x"] for t in study.trials),
        }
    )
)
