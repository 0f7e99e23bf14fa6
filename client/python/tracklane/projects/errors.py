"""The error of a project that cannot be run, or whose run failed (MLflow's ``ExecutionException``)."""

from __future__ import annotations

from tracklane.exceptions import FailedPrecondition

__all__ = ["ExecutionException"]


class ExecutionException(FailedPrecondition):
    """A project that cannot run as given (bad MLproject, unknown entry point, missing tool), or a
    synchronous run that did not finish (``.run_id`` names it)."""

    def __init__(self, message: str, *, field: str = "", reason: str = "", run_id: str = "") -> None:
        super().__init__(message, field=field, reason=reason)
        self.run_id = run_id
