"""The schema of ``recipe.yaml`` (MLflow 2.x's regression/v1 and classification/v1 keys), as msgspec structs.

Unknown keys are errors, as are values of the wrong type; ``config.py`` turns them into messages
naming the file, line and key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "CustomMetric",
    "EvaluateConfig",
    "ExperimentConfig",
    "IngestConfig",
    "ModelRegistryConfig",
    "PredictConfig",
    "RecipeSchema",
    "RegisterConfig",
    "SplitConfig",
    "StepsConfig",
    "TrainConfig",
    "TransformConfig",
    "TuningConfig",
]

TEMPLATES = ("regression/v1", "classification/v1")
NATIVE_FORMATS = ("parquet", "csv", "delta", "spark_sql")


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A section of the configuration; ``__post_init__`` raises ValueError("<field>: <why>")."""

    def __post_init__(self) -> None:
        return None


Positive = Annotated[int, msgspec.Meta(gt=0)]


class IngestConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``steps.ingest`` and ``steps.ingest_scoring``."""

    using: str
    location: str | list[str] | None = None
    loader_method: str | None = None
    sql: str | None = None
    version: int | None = None
    timestamp: str | None = None
    skip_data_profiling: bool = False

    def __post_init__(self) -> None:
        if self.using == "spark_sql":
            if self.sql is None and self.location is None:
                raise ValueError("using: spark_sql needs `sql` or `location`")
        elif self.location is None:
            raise ValueError(f"`location` is required with using: {self.using}")
        elif self.using not in NATIVE_FORMATS and self.loader_method is None:
            raise ValueError(
                f"using: format {self.using!r} is not read natively ({', '.join(NATIVE_FORMATS)}): "
                "give `loader_method` (a function of steps/ingest.py)"
            )


class SplitConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``steps.split``."""

    using: Literal["split_ratios", "custom"] = "split_ratios"
    split_ratios: list[float] = msgspec.field(default_factory=lambda: [0.75, 0.125, 0.125])
    split_method: str | None = None
    post_split_filter_method: str | None = None
    post_split_method: str | None = None
    skip_data_profiling: bool = False

    def __post_init__(self) -> None:
        if len(self.split_ratios) != 3 or any(v <= 0 for v in self.split_ratios):
            raise ValueError("split_ratios: must be 3 positive numbers: [train, validation, test]")
        if self.using == "custom" and not self.split_method:
            raise ValueError("using: custom needs `split_method`")


class TransformConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``steps.transform``; no ``transformer_method`` means the identity."""

    using: Literal["custom"] = "custom"
    transformer_method: str | None = None
    skip_data_profiling: bool = False


class TuningConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``steps.train.tuning``: hyperopt (``hyperopt.*`` algorithms) or optuna (``optuna.*``)."""

    enabled: bool
    max_trials: Positive | None = None
    algorithm: str = "hyperopt.rand.suggest"
    parallelism: Positive = 1
    sample_fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1.0
    early_stop_fn: str | None = None
    parameters: dict[str, dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        if self.max_trials is None:
            raise ValueError("max_trials: required when tuning is enabled")
        if not self.parameters:
            raise ValueError("parameters: required when tuning is enabled")
        for name, spec in self.parameters.items():
            if ("values" in spec) == ("distribution" in spec):
                raise ValueError(f"parameters: {name!r} needs either `values` or a `distribution`")
        if not self.algorithm.startswith(("hyperopt.", "optuna.")):
            raise ValueError(
                f"algorithm: {self.algorithm!r}: use hyperopt.<algo> or optuna.samplers.<Sampler>"
            )


class TrainConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``steps.train``."""

    using: Literal["custom", "estimator_spec", "automl/flaml"] = "custom"
    estimator_method: str | None = None
    estimator_params: dict[str, Any] = msgspec.field(default_factory=dict)
    tuning: TuningConfig | None = None
    time_budget_secs: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    flaml_params: dict[str, Any] = msgspec.field(default_factory=dict)
    rebalance_training_data: bool = True
    calibrate_proba: Literal["sigmoid", "isotonic"] | None = None
    predict_prefix: str = "predicted_"
    predict_scores_for_all_classes: bool = True
    skip_data_profiling: bool = False

    def __post_init__(self) -> None:
        if self.using != "automl/flaml" and not self.estimator_method:
            raise ValueError(f"using: {self.using} needs `estimator_method`")


class Criterion(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One ``validation_criteria`` item."""

    metric: str
    threshold: float


class EvaluateConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``steps.evaluate``."""

    validation_criteria: list[Criterion] | None = None


class RegisterConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``steps.register``."""

    allow_non_validated_model: bool = False
    registry_uri: str | None = None


class OutputConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``steps.predict.output``."""

    using: Literal["parquet", "csv", "delta", "table"]
    location: str


class PredictConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``steps.predict``: batch scoring with the registered model (or ``model_uri``)."""

    output: OutputConfig
    model_uri: str | None = None
    result_type: str = "double"
    save_mode: Literal["overwrite", "default", "error", "errorifexists", "ignore"] = "overwrite"
    batch_size: Positive = 65536
    skip_data_profiling: bool = False


class StepsConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``steps``; a step written with only comments under it (YAML null) takes its defaults."""

    ingest: IngestConfig
    split: SplitConfig | None = None
    transform: TransformConfig | None = None
    train: TrainConfig
    evaluate: EvaluateConfig | None = None
    register: RegisterConfig | None = None
    ingest_scoring: IngestConfig | None = None
    predict: PredictConfig | None = None


class CustomMetric(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A ``custom_metrics`` item: a function of steps/custom_metrics.py."""

    name: str
    function: str
    greater_is_better: bool


class ExperimentConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The profile's ``experiment``."""

    name: str | None = None
    id: str | None = None
    tracking_uri: str | None = None
    artifact_location: str | None = None


class ModelRegistryConfig(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The profile's ``model_registry``."""

    model_name: str | None = None
    registry_uri: str | None = None
    uri: str | None = None


class RecipeSchema(_Section, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The whole rendered configuration: ``recipe.yaml`` plus what the profile adds."""

    recipe: Literal["regression/v1", "classification/v1"] | None = None
    template: Literal["regression/v1", "classification/v1"] | None = None
    target_col: str
    positive_class: Any = None
    primary_metric: str | None = None
    steps: StepsConfig
    custom_metrics: list[CustomMetric] = msgspec.field(default_factory=list)
    experiment: ExperimentConfig | None = None
    model_registry: ModelRegistryConfig | None = None

    def __post_init__(self) -> None:
        if self.recipe is None and self.template is None:
            raise ValueError('recipe: name the template: recipe: "regression/v1" or "classification/v1"')
        if self.recipe and self.template and self.recipe != self.template:
            raise ValueError(f"recipe: {self.recipe!r} and template {self.template!r} disagree")

    @property
    def template_name(self) -> str:
        """``regression/v1`` or ``classification/v1``."""
        return str(self.recipe or self.template)

    @property
    def task(self) -> str:
        """``regression`` or ``classification``."""
        return self.template_name.split("/")[0]
