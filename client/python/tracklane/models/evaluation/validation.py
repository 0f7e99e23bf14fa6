"""``MetricThreshold`` and the checks ``evaluate(validation_thresholds=...)`` makes (MLflow's rules)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MetricThreshold", "ModelValidationFailedException", "check_thresholds"]


class ModelValidationFailedException(Exception):
    """The candidate model did not meet a threshold; the message lists each failure."""


@dataclass(frozen=True)
class MetricThreshold:
    """A bar a metric must pass.

    Args:
        threshold: The value must be >= it (greater_is_better) or <= it.
        min_absolute_change: Better than the baseline model's value by at least this much.
        min_relative_change: Better than the baseline by at least this fraction (0..1) of it.
        greater_is_better: Whether higher values are better (required).
    """

    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    greater_is_better: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.greater_is_better, bool):
            raise ValueError("MetricThreshold: greater_is_better (a bool) is required")
        if self.threshold is None and self.min_absolute_change is None and self.min_relative_change is None:
            raise ValueError("MetricThreshold: give threshold, min_absolute_change or min_relative_change")
        if self.min_absolute_change is not None and self.min_absolute_change <= 0:
            raise ValueError("MetricThreshold: min_absolute_change must be positive")
        if self.min_relative_change is not None and not 0 <= self.min_relative_change <= 1:
            raise ValueError("MetricThreshold: min_relative_change must be between 0 and 1")

    def failures(self, name: str, value: float | None, baseline: float | None) -> list[str]:
        """Why ``value`` fails this threshold (empty when it passes)."""
        if value is None:
            return [f"{name}: not computed"]
        higher = bool(self.greater_is_better)

        def better(a: float, b: float) -> bool:
            return a >= b if higher else a <= b

        sign = 1 if self.greater_is_better else -1
        out = []
        if self.threshold is not None and not better(value, self.threshold):
            op = ">=" if self.greater_is_better else "<="
            out.append(f"{name}: {value:.6g} is not {op} {self.threshold:.6g}")
        if baseline is not None:
            if self.min_absolute_change is not None:
                bar = baseline + sign * self.min_absolute_change
                if not better(value, bar):
                    out.append(
                        f"{name}: {value:.6g} does not beat the baseline {baseline:.6g} "
                        f"by {self.min_absolute_change:g}"
                    )
            if self.min_relative_change is not None:
                bar = (
                    baseline + sign * abs(baseline) * self.min_relative_change
                    if baseline
                    else baseline + sign * 1e-10
                )
                if not better(value, bar):
                    out.append(
                        f"{name}: {value:.6g} does not beat the baseline {baseline:.6g} "
                        f"by {self.min_relative_change:.0%}"
                    )
        return out


def check_thresholds(
    thresholds: Mapping[str, MetricThreshold],
    metrics: Mapping[str, float],
    baseline: Mapping[str, float] | None = None,
) -> None:
    """Raises ModelValidationFailedException listing every threshold that is not met."""
    problems: list[str] = []
    for name, bar in thresholds.items():
        problems += bar.failures(name, metrics.get(name), (baseline or {}).get(name))
    if problems:
        raise ModelValidationFailedException("model validation failed: " + "; ".join(problems))
