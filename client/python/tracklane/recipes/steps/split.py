"""``split``: training, validation and test sets, the same rows every time.

A row's set is decided by a hash of its values (not by its position or a random draw), so the
split does not change when rows are reordered or appended, nor between machines.
"""

from __future__ import annotations

from typing import Any

from tracklane.recipes.code import load_function
from tracklane.recipes.errors import RecipeError
from tracklane.recipes.schema import SplitConfig
from tracklane.recipes.steps._context import INGESTED, TEST, TRAIN, VALIDATION, StepContext

__all__ = ["run"]

_BUCKETS = 1000
_MIN_ROWS = 4
_SPLITS = ("TRAINING", "VALIDATION", "TEST")


def run(ctx: StepContext) -> dict[str, Any]:
    """Splits the ingested dataset."""
    section = ctx.config.schema.steps.split or SplitConfig()
    target = ctx.config.schema.target_col
    frame = ctx.read_parquet("ingest", INGESTED)
    before = len(frame)
    frame = frame.dropna(subset=[target]).reset_index(drop=True)
    dropped = before - len(frame)
    if section.using == "custom":
        parts = _custom_split(frame, str(section.split_method))
    else:
        parts = _hash_split(frame, section.split_ratios)
    if section.post_split_method:
        post = load_function(section.post_split_method, "steps.split", "steps.split.post_split_method")
        result = post(*parts)
        if not (isinstance(result, tuple | list) and len(result) == 3):
            raise RecipeError("post_split_method must return (train_df, validation_df, test_df)")
        parts = [
            _same_columns(p, r, name)
            for p, r, name in zip(parts, result, ("train", "validation", "test"), strict=True)
        ]
    elif section.post_split_filter_method:
        keep = load_function(
            section.post_split_filter_method, "steps.split", "steps.split.post_split_filter_method"
        )
        parts = [_filtered(part, keep) for part in parts]
    train, validation, test = parts
    if min(len(train), len(validation), len(test)) < _MIN_ROWS:
        raise RecipeError(
            f"each set needs at least {_MIN_ROWS} rows: training {len(train)}, validation "
            f"{len(validation)}, test {len(test)}"
        )
    for part, name in ((train, TRAIN), (validation, VALIDATION), (test, TEST)):
        part.to_parquet(ctx.out / name, index=False)
    sizes = {"training": len(train), "validation": len(validation), "test": len(test)}
    for name, size in sizes.items():
        ctx.card.fact(f"{name} rows", size)
    ctx.card.fact("rows dropped (no target)", dropped)
    ctx.card.add_table(
        "Split sizes",
        [{"set": k, "rows": v, "share": f"{v / max(1, sum(sizes.values())):.1%}"} for k, v in sizes.items()],
    )
    if not section.skip_data_profiling:
        from tracklane.recipes.cards import data_profile

        for name, part in (("Training", train), ("Validation", validation), ("Test", test)):
            ctx.card.add_html(f"{name} set profile", data_profile(part.head(10_000)))
    return {"sizes": sizes, "dropped": dropped}


def _hash_split(frame: Any, ratios: list[float]) -> list[Any]:
    import numpy as np
    from pandas.util import hash_pandas_object

    hashes = hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    bucket = (hashes % np.uint64(_BUCKETS)).astype(np.float64) / _BUCKETS
    total = sum(ratios)
    train_end = ratios[0] / total
    validation_end = (ratios[0] + ratios[1]) / total
    masks = (bucket < train_end, (bucket >= train_end) & (bucket < validation_end), bucket >= validation_end)
    return [frame[mask].reset_index(drop=True) for mask in masks]


def _custom_split(frame: Any, method: str) -> list[Any]:
    import pandas as pd

    split = load_function(method, "steps.split", "steps.split.split_method")
    labels = split(frame)
    if not isinstance(labels, pd.Series) or len(labels) != len(frame):
        raise RecipeError(f"split_method {method} must return a Series with one label per row")
    unknown = set(labels.unique()) - set(_SPLITS)
    if unknown:
        raise RecipeError(
            f"split_method {method} returned {sorted(map(str, unknown))}: use TRAINING, VALIDATION, TEST"
        )
    values = labels.to_numpy()
    return [frame[values == name].reset_index(drop=True) for name in _SPLITS]


def _filtered(part: Any, keep: Any) -> Any:
    mask = keep(part)
    if len(mask) != len(part):
        raise RecipeError("post_split_filter_method must return one boolean per row")
    return part[mask.to_numpy(dtype=bool) if hasattr(mask, "to_numpy") else mask].reset_index(drop=True)


def _same_columns(before: Any, after: Any, name: str) -> Any:
    if not hasattr(after, "columns") or list(after.columns) != list(before.columns):
        raise RecipeError(
            f"post_split_method changed the columns of the {name} set: filter rows, transform later"
        )
    return after.reset_index(drop=True)
