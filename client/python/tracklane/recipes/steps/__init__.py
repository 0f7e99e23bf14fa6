"""The steps of the regression/v1 and classification/v1 templates: one module each.

Each module has ``run(ctx)``: it reads its upstream steps' cache entries (``ctx.inputs``), writes
its outputs into ``ctx.out``, fills its card and returns the facts stored in the entry's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracklane.recipes.steps._context import StepContext

__all__ = ["StepContext", "runner_of"]


def runner_of(step: str) -> Callable[[StepContext], dict[str, Any]]:
    """The ``run`` function of a step (imported on demand: steps import pandas and scikit-learn)."""
    import importlib

    module = {"ingest_scoring": "ingest"}.get(step, step)
    run: Callable[[StepContext], dict[str, Any]] = getattr(
        importlib.import_module(f"tracklane.recipes.steps.{module}"),
        "run_scoring" if step == "ingest_scoring" else "run",
    )
    return run
