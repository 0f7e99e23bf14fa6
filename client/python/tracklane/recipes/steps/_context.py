"""What a step is given when it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracklane.recipes.cache import Entry
from tracklane.recipes.cards import Card
from tracklane.recipes.config import RecipeConfig

__all__ = ["StepContext"]

# Names of the files steps write; get_artifact reads the same.
INGESTED = "dataset.parquet"
SCORING_INGESTED = "scoring-dataset.parquet"
TRAIN, VALIDATION, TEST = "train.parquet", "validation.parquet", "test.parquet"
TRANSFORMED_TRAIN = "transformed_training_data.parquet"
TRANSFORMED_VALIDATION = "transformed_validation_data.parquet"
TRANSFORMER = "transformer.pkl"
MODEL_DIR = "model"
SCORED = "scored.parquet"


@dataclass
class StepContext:
    """One execution of one step.

    Attributes:
        config: The recipe's configuration.
        step: The step's name.
        key: Its cache key.
        out: The (temporary) folder for its outputs.
        inputs: Upstream steps' cache entries by step name.
        card: The step's card.
        run_id: Returns the recipe's run, creating it on first use (tracking steps call it).
    """

    config: RecipeConfig
    step: str
    key: str
    out: Path
    inputs: dict[str, Entry]
    card: Card
    run_id: Callable[[], str]
    extra: dict[str, Any]

    def input_file(self, step: str, name: str) -> Path:
        """A file of an upstream step's entry."""
        return self.inputs[step].file(name)

    def read_parquet(self, step: str, name: str) -> Any:
        """An upstream parquet output as a DataFrame."""
        import pandas as pd

        return pd.read_parquet(self.input_file(step, name))
