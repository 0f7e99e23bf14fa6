"""Recipes: MLflow 2.x's regression and classification step pipelines, cached by content.

    from tracklane.recipes import Recipe

    r = Recipe(profile="local")      # recipe.yaml + profiles/local.yaml in this folder or above
    r.run()                          # ingest -> split -> transform -> train -> evaluate -> register
    r.inspect("evaluate")            # the step's card (HTML in Jupyter, a summary in a terminal)
    model = r.get_artifact("model")  # a PyFuncModel
    r.run("predict")                 # batch scoring with the registered model, pandas only

A recipe written for MLflow 2.x Recipes runs unchanged. Needs ``pip install "tracklane[recipes]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracklane.recipes.errors import RecipeConfigError, RecipeError, StepFailedError
    from tracklane.recipes.recipe import Inspection, Recipe
    from tracklane.recipes.runner import StepOutcome

__all__ = ["Inspection", "Recipe", "RecipeConfigError", "RecipeError", "StepFailedError", "StepOutcome"]

_HOMES = {
    "Inspection": "recipe",
    "Recipe": "recipe",
    "RecipeConfigError": "errors",
    "RecipeError": "errors",
    "StepFailedError": "errors",
    "StepOutcome": "runner",
}


def __getattr__(name: str) -> Any:
    # Lazy: the `tracklane` command imports recipes.cli, and should not pay for (or need) msgspec and jinja2.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tracklane.recipes' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"tracklane.recipes.{home}"), name)
