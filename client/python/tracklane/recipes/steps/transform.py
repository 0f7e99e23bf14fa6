"""``transform``: fits the recipe's transformer on the training set (the identity when none)."""

from __future__ import annotations

from typing import Any

from tracklane.recipes.code import load_function
from tracklane.recipes.errors import RecipeError
from tracklane.recipes.steps._context import (
    TRAIN,
    TRANSFORMED_TRAIN,
    TRANSFORMED_VALIDATION,
    TRANSFORMER,
    VALIDATION,
    StepContext,
)

__all__ = ["apply_transformer", "run"]


def run(ctx: StepContext) -> dict[str, Any]:
    """Fits the transformer; writes it and the transformed training and validation sets."""
    import cloudpickle

    section = ctx.config.schema.steps.transform
    target = ctx.config.schema.target_col
    train = ctx.read_parquet("split", TRAIN)
    validation = ctx.read_parquet("split", VALIDATION)
    transformer = None
    if section is not None and section.transformer_method:
        make = load_function(
            section.transformer_method, "steps.transform", "steps.transform.transformer_method"
        )
        transformer = make()
        for method in ("fit", "transform"):
            if transformer is not None and not callable(getattr(transformer, method, None)):
                raise RecipeError(
                    f"transformer_method {section.transformer_method} returned an object without {method}()"
                )
    if transformer is None:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer

        transformer = Pipeline([("identity", FunctionTransformer(feature_names_out="one-to-one"))])
    transformer.fit(train.drop(columns=[target]), train[target])
    transformed_train = apply_transformer(transformer, train, target)
    transformed_validation = apply_transformer(transformer, validation, target)
    transformed_train.to_parquet(ctx.out / TRANSFORMED_TRAIN, index=False)
    transformed_validation.to_parquet(ctx.out / TRANSFORMED_VALIDATION, index=False)
    with open(ctx.out / TRANSFORMER, "wb") as out:
        cloudpickle.dump(transformer, out)
    features_in = train.shape[1] - 1
    features_out = transformed_train.shape[1] - 1
    ctx.card.fact("input features", features_in)
    ctx.card.fact("output features", features_out)
    ctx.card.fact("training rows", len(transformed_train))
    ctx.card.add_text("Transformer", repr(transformer))
    ctx.card.add_table(
        "Output shape",
        [
            {"set": "training", "rows": transformed_train.shape[0], "features": features_out},
            {"set": "validation", "rows": transformed_validation.shape[0], "features": features_out},
        ],
    )
    from tracklane.recipes.cards import data_profile, schema_table

    ctx.card.add_html("Output schema", schema_table(transformed_train))
    section_skip = section is not None and section.skip_data_profiling
    if not section_skip:
        ctx.card.add_html("Transformed training set profile", data_profile(transformed_train.head(10_000)))
    ctx.card.add_table("Preview", transformed_train.head(10))
    return {
        "features_in": features_in,
        "features_out": features_out,
        "transformer": type(transformer).__name__,
    }


def apply_transformer(transformer: Any, frame: Any, target: str | None) -> Any:
    """``transformer.transform`` on the features of ``frame`` as a DataFrame (target kept at the end)."""
    import numpy as np
    import pandas as pd

    features = frame.drop(columns=[target]) if target and target in frame.columns else frame
    out = transformer.transform(features)
    if hasattr(out, "toarray"):  # scipy sparse
        out = out.toarray()
    if not isinstance(out, pd.DataFrame):
        out = np.asarray(out)
        try:
            names = [str(n) for n in transformer.get_feature_names_out(features.columns)]
        except Exception:  # not every transformer names its outputs
            names = []
        if len(names) != out.shape[1]:
            width = len(str(out.shape[1]))
            names = [f"f_{i:0{width}d}" for i in range(out.shape[1])]
        out = pd.DataFrame(out, columns=names)
    out = out.reset_index(drop=True)
    if target and target in frame.columns:
        out[target] = frame[target].to_numpy()
    return out
