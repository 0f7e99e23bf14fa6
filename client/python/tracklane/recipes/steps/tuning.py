"""Hyperparameter tuning for ``train``: MLflow's ``tuning:`` section, with hyperopt or optuna.

Search spaces are written as in MLflow (hyperopt's words): ``values: [...]`` or
``distribution: uniform|loguniform|quniform|qloguniform|randint|normal`` with its arguments.
Each trial is a child run of the recipe's run, with its parameters and the primary metric on
the validation set.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from tracklane.recipes.errors import RecipeError
from tracklane.recipes.schema import TuningConfig

__all__ = ["missing_engine", "tune"]

Objective = Callable[[dict[str, Any]], float]  # params -> loss (lower is better)


def missing_engine(tuning: TuningConfig | None) -> str | None:
    """Why tuning cannot run here (its library is not installed), else None."""
    if tuning is None or not tuning.enabled:
        return None
    engine = tuning.algorithm.split(".", 1)[0]
    if importlib.util.find_spec(engine) is None:
        return f"steps.train.tuning: algorithm {tuning.algorithm} needs {engine} (pip install {engine})"
    return None


def tune(tuning: TuningConfig, objective: Objective) -> dict[str, Any]:
    """The best parameters found in ``max_trials`` trials."""
    if tuning.algorithm.startswith("hyperopt."):
        return _hyperopt(tuning, objective)
    return _optuna(tuning, objective)


def _hyperopt(tuning: TuningConfig, objective: Objective) -> dict[str, Any]:
    import numpy as np
    from hyperopt import STATUS_OK, Trials, fmin, hp, space_eval

    space = {}
    for name, spec in (tuning.parameters or {}).items():
        if "values" in spec:
            space[name] = hp.choice(name, spec["values"])
        else:
            args = {k: v for k, v in spec.items() if k != "distribution"}
            space[name] = getattr(hp, spec["distribution"])(name, **args)
    module, _, algo_name = tuning.algorithm.removeprefix("hyperopt.").rpartition(".")
    algo = getattr(importlib.import_module(f"hyperopt.{module}" if module else "hyperopt"), algo_name)
    trials = Trials()
    best = fmin(
        fn=lambda params: {"loss": objective(dict(params)), "status": STATUS_OK},
        space=space,
        algo=algo,
        max_evals=int(tuning.max_trials or 1),
        trials=trials,
        rstate=np.random.default_rng(0),
        show_progressbar=False,
    )
    return dict(space_eval(space, best))


def _optuna(tuning: TuningConfig, objective: Objective) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler_name = tuning.algorithm.removeprefix("optuna.").removeprefix("samplers.")
    sampler_class = getattr(optuna.samplers, sampler_name, None)
    if sampler_class is None:
        raise RecipeError(f"steps.train.tuning.algorithm: optuna has no sampler {sampler_name!r}")
    study = optuna.create_study(direction="minimize", sampler=sampler_class(seed=0))
    specs = tuning.parameters or {}
    study.optimize(
        lambda trial: objective({n: _suggest(trial, n, s) for n, s in specs.items()}),
        n_trials=int(tuning.max_trials or 1),
    )
    return {n: _suggest(optuna.trial.FixedTrial(study.best_params), n, s) for n, s in specs.items()}


def _suggest(trial: Any, name: str, spec: dict[str, Any]) -> Any:
    if "values" in spec:
        return trial.suggest_categorical(name, spec["values"])
    kind = spec["distribution"]
    low, high = float(spec.get("low", 0)), float(spec.get("high", 0))
    if kind == "uniform":
        return trial.suggest_float(name, low, high)
    if kind == "loguniform":  # hyperopt's bounds are logs
        import math

        return trial.suggest_float(name, math.exp(low), math.exp(high), log=True)
    if kind == "quniform":
        return trial.suggest_float(name, low, high, step=spec["q"])
    if kind == "randint":
        return trial.suggest_int(name, int(spec.get("low", 0)), int(spec.get("upper", high)) - 1)
    raise RecipeError(
        f"steps.train.tuning.parameters.{name}: distribution {kind!r} is not supported with optuna"
    )
