"""Errors of recipes: a configuration a user can fix, and a step that failed.

They are Tracklane errors, so the ``tracklane`` command prints them as one line.
"""

from __future__ import annotations

from typing import ClassVar

import grpc

from tracklane.exceptions import InvalidArgument, TracklaneError

__all__ = ["RecipeConfigError", "RecipeError", "StepFailedError"]


class RecipeError(TracklaneError):
    """Base of the errors a recipe raises."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.FAILED_PRECONDITION


class RecipeConfigError(InvalidArgument, RecipeError):
    """``recipe.yaml`` or a profile is malformed; the message names the file, line and key."""


class StepFailedError(RecipeError):
    """A step raised; its failure card (with the traceback) is in the cache and on the run.

    Attributes:
        step: The step that failed.
        card_path: The failure card, an HTML file.
    """

    def __init__(self, step: str, message: str, card_path: str) -> None:
        super().__init__(f"step {step!r} failed: {message} (failure card: {card_path})")
        self.step = step
        self.card_path = card_path
