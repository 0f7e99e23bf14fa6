"""``register``: the recipe model as the next version of ``model_registry.model_name``.

Only a VALIDATED model is registered, unless ``allow_non_validated_model: true``.
"""

from __future__ import annotations

from typing import Any

from tracklane.recipes.errors import RecipeError
from tracklane.recipes.steps._context import StepContext

__all__ = ["run"]


def run(ctx: StepContext) -> dict[str, Any]:
    """Registers the model, or records why it did not."""
    import tracklane

    schema = ctx.config.schema
    section = schema.steps.register
    allow = bool(section and section.allow_non_validated_model)
    status = ctx.inputs["evaluate"].meta["model_validation_status"]
    name = schema.model_registry.model_name if schema.model_registry else None
    if not name:
        raise RecipeError("model_registry.model_name is not set in the profile: register needs a model name")
    model_uri = ctx.inputs["train"].meta["model_uri"]
    run_id = ctx.run_id()
    ctx.card.fact("model validation status", status)
    ctx.card.fact("model", model_uri)
    if status != "VALIDATED" and not allow:
        ctx.card.verdict = status
        ctx.card.add_html(
            "Registration",
            f"<p>Not registered: the model is {status}. Set <code>allow_non_validated_model: true</code> "
            "under <code>steps.register</code> to register it anyway.</p>",
        )
        return {"registered": False, "model_validation_status": status, "name": name}
    version = tracklane.register_model(
        model_uri,
        name,
        tags={"tracklane.recipe.model_validation_status": status, "tracklane.recipe.run_id": run_id},
    )
    ctx.card.verdict = status
    ctx.card.fact("registered model", f"{name} version {version.version}")
    ctx.card.add_html(
        "Registration", f"<p>Registered <code>{name}</code> version {version.version}, from run {run_id}.</p>"
    )
    return {
        "registered": True,
        "model_validation_status": status,
        "name": name,
        "version": int(version.version),
        "model_uri": f"models:/{name}/{version.version}",
    }
