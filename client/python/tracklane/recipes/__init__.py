"""Recipes: MLflow 2.x's regression and classification step pipelines, cached by content.

    from tracklane.recipes import Recipe

    r = Recipe(profile="local")      # recipe.yaml + profiles/local.yaml in this folder or above
    r.run()                          # ingest -> split -> transform -> train -> evaluate -> register
    r.inspect("evaluate")            # the step's card (HTML in Jupyter, a summary in a terminal)
    model = r.get_artifact("model")  # a PyFuncModel
    r.run("predict")                 # batch scoring with the registered model, pandas only

A recipe written for MLflow 2.x Recipes runs unchanged. Needs ``pip install "tracklane[recipes]"``.
"""

from tracklane.recipes.errors import RecipeConfigError, RecipeError, StepFailedError
from tracklane.recipes.recipe import Inspection, Recipe
from tracklane.recipes.runner import StepOutcome

__all__ = ["Inspection", "Recipe", "RecipeConfigError", "RecipeError", "StepFailedError", "StepOutcome"]
