"""The step graph of the regression and classification templates (the same for both).

Training: ingest -> split -> transform -> train -> evaluate -> register. Batch scoring:
ingest_scoring -> predict, with the model ``register`` produced when it is in the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracklane.recipes.errors import RecipeError

__all__ = ["ARTIFACTS", "DEFAULT_TARGET", "STEPS", "StepSpec", "closure", "downstream"]


@dataclass(frozen=True)
class StepSpec:
    """One step: what it needs, which user module its bare method names live in, what it makes."""

    name: str
    upstream: tuple[str, ...]
    module: str | None
    artifacts: tuple[str, ...]
    description: str


STEPS: dict[str, StepSpec] = {
    spec.name: spec
    for spec in (
        StepSpec("ingest", (), "steps.ingest", ("ingested_data",), "reads the dataset into parquet"),
        StepSpec(
            "split",
            ("ingest",),
            "steps.split",
            ("training_data", "validation_data", "test_data"),
            "splits it into training, validation and test sets",
        ),
        StepSpec(
            "transform",
            ("split",),
            "steps.transform",
            ("transformed_training_data", "transformed_validation_data", "transformer"),
            "fits the transformer on the training set",
        ),
        StepSpec("train", ("split", "transform"), "steps.train", ("model", "run"), "fits the estimator"),
        StepSpec(
            "evaluate",
            ("split", "train"),
            "steps.custom_metrics",
            ("model_validation_status",),
            "scores the model on the test set against the thresholds",
        ),
        StepSpec(
            "register",
            ("train", "evaluate"),
            None,
            ("registered_model_version",),
            "registers a validated model",
        ),
        StepSpec(
            "ingest_scoring",
            (),
            "steps.ingest",
            ("ingested_scoring_data",),
            "reads the data to score into parquet",
        ),
        StepSpec("predict", ("ingest_scoring",), None, ("scored_data",), "scores it with the model"),
    )
}

ORDER = tuple(STEPS)
DEFAULT_TARGET = "register"

ARTIFACTS = {artifact: spec.name for spec in STEPS.values() for artifact in spec.artifacts}


def check_step(step: str) -> StepSpec:
    """The step's spec.

    Raises:
        RecipeError: no step has that name.
    """
    spec = STEPS.get(step)
    if spec is None:
        raise RecipeError(f"unknown step {step!r}: use one of {', '.join(ORDER)}")
    return spec


def closure(target: str) -> list[str]:
    """``target`` and every step it depends on, in execution order."""
    wanted: set[str] = set()
    pending = [check_step(target).name]
    while pending:
        step = pending.pop()
        if step not in wanted:
            wanted.add(step)
            pending.extend(STEPS[step].upstream)
    return [step for step in ORDER if step in wanted]


def downstream(step: str) -> list[str]:
    """``step`` and every step that depends on it, in execution order."""
    found = {check_step(step).name}
    for name in ORDER:
        if any(up in found for up in STEPS[name].upstream):
            found.add(name)
    return [name for name in ORDER if name in found]
