"""The schema of ``recipe.yaml`` (MLflow 2.x's regression/v1 and classification/v1 keys).

Unknown keys are errors, as are values of the wrong type; ``config.py`` turns them into messages
naming the file, line and key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestConfig(_Section):
    """``steps.ingest`` and ``steps.ingest_scoring``."""

    using: str
    location: str | list[str] | None = None
    loader_method: str | None = None
    sql: str | None = None
    version: int | None = None
    timestamp: str | None = None
    skip_data_profiling: bool = False

    @model_validator(mode="after")
    def _check(self) -> IngestConfig:
        if self.using == "spark_sql":
            if self.sql is None and self.location is None:
                raise ValueError("spark_sql needs `sql` or `location`")
        elif self.location is None:
            raise ValueError(f"`location` is required with using: {self.using}")
        elif self.using not in NATIVE_FORMATS and self.loader_method is None:
            raise ValueError(
                f"format {self.using!r} is not read natively ({', '.join(NATIVE_FORMATS)}): "
                "give `loader_method` (a function of steps/ingest.py)"
            )
        return self


class SplitConfig(_Section):
    """``steps.split``."""

    using: Literal["split_ratios", "custom"] = "split_ratios"
    split_ratios: list[float] = Field(default_factory=lambda: [0.75, 0.125, 0.125])
    split_method: str | None = None
    post_split_filter_method: str | None = None
    post_split_method: str | None = None
    skip_data_profiling: bool = False

    @field_validator("split_ratios")
    @classmethod
    def _three_positive(cls, value: list[float]) -> list[float]:
        if len(value) != 3 or any(v <= 0 for v in value):
            raise ValueError("must be 3 positive numbers: [train, validation, test]")
        return value

    @model_validator(mode="after")
    def _custom_needs_method(self) -> SplitConfig:
        if self.using == "custom" and not self.split_method:
            raise ValueError("using: custom needs `split_method`")
        return self


class TransformConfig(_Section):
    """``steps.transform``; no ``transformer_method`` means the identity."""

    using: Literal["custom"] = "custom"
    transformer_method: str | None = None
    skip_data_profiling: bool = False


class TuningConfig(_Section):
    """``steps.train.tuning``: hyperopt (``hyperopt.*`` algorithms) or optuna (``optuna.*``)."""

    enabled: bool
    max_trials: int | None = Field(default=None, gt=0)
    algorithm: str = "hyperopt.rand.suggest"
    parallelism: int = Field(default=1, gt=0)
    sample_fraction: float = Field(default=1.0, gt=0, le=1)
    early_stop_fn: str | None = None
    parameters: dict[str, dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _complete(self) -> TuningConfig:
        if not self.enabled:
            return self
        if self.max_trials is None:
            raise ValueError("`max_trials` is required when tuning is enabled")
        if not self.parameters:
            raise ValueError("`parameters` is required when tuning is enabled")
        for name, spec in self.parameters.items():
            if ("values" in spec) == ("distribution" in spec):
                raise ValueError(f"parameter {name!r} needs either `values` or a `distribution`")
        if not self.algorithm.startswith(("hyperopt.", "optuna.")):
            raise ValueError(
                f"algorithm {self.algorithm!r}: use hyperopt.<algo> or optuna.samplers.<Sampler>"
            )
        return self


class TrainConfig(_Section):
    """``steps.train``."""

    using: Literal["custom", "estimator_spec", "automl/flaml"] = "custom"
    estimator_method: str | None = None
    estimator_params: dict[str, Any] = Field(default_factory=dict)
    tuning: TuningConfig | None = None
    time_budget_secs: float = Field(default=600, gt=0)
    flaml_params: dict[str, Any] = Field(default_factory=dict)
    rebalance_training_data: bool = True
    calibrate_proba: Literal["sigmoid", "isotonic"] | None = None
    predict_prefix: str = "predicted_"
    predict_scores_for_all_classes: bool = True
    skip_data_profiling: bool = False

    @model_validator(mode="after")
    def _custom_needs_method(self) -> TrainConfig:
        if self.using != "automl/flaml" and not self.estimator_method:
            raise ValueError(f"using: {self.using} needs `estimator_method`")
        return self


class Criterion(_Section):
    """One ``validation_criteria`` item."""

    metric: str
    threshold: float


class EvaluateConfig(_Section):
    """``steps.evaluate``."""

    validation_criteria: list[Criterion] | None = None


class RegisterConfig(_Section):
    """``steps.register``."""

    allow_non_validated_model: bool = False
    registry_uri: str | None = None


class OutputConfig(_Section):
    """``steps.predict.output``."""

    using: Literal["parquet", "csv", "delta", "table"]
    location: str


class PredictConfig(_Section):
    """``steps.predict``: batch scoring with the registered model (or ``model_uri``)."""

    output: OutputConfig
    model_uri: str | None = None
    result_type: str = "double"
    save_mode: Literal["overwrite", "default", "error", "errorifexists", "ignore"] = "overwrite"
    batch_size: int = Field(default=65536, gt=0)
    skip_data_profiling: bool = False


class StepsConfig(_Section):
    """``steps``; a step written with only comments under it (YAML null) takes its defaults."""

    ingest: IngestConfig
    split: SplitConfig | None = None
    transform: TransformConfig | None = None
    train: TrainConfig
    evaluate: EvaluateConfig | None = None
    # pydantic's BaseModel has a `register` attribute of its own.
    register_: RegisterConfig | None = Field(default=None, alias="register")
    ingest_scoring: IngestConfig | None = None
    predict: PredictConfig | None = None


class CustomMetric(_Section):
    """A ``custom_metrics`` item: a function of steps/custom_metrics.py."""

    name: str
    function: str
    greater_is_better: bool


class ExperimentConfig(_Section):
    """The profile's ``experiment``."""

    name: str | None = None
    id: str | None = None
    tracking_uri: str | None = None
    artifact_location: str | None = None


class ModelRegistryConfig(_Section):
    """The profile's ``model_registry``."""

    model_name: str | None = None
    registry_uri: str | None = None
    uri: str | None = None


class RecipeSchema(_Section):
    """The whole rendered configuration: ``recipe.yaml`` plus what the profile adds."""

    recipe: Literal["regression/v1", "classification/v1"] | None = None
    template: Literal["regression/v1", "classification/v1"] | None = None
    target_col: str
    positive_class: Any = None
    primary_metric: str | None = None
    steps: StepsConfig
    custom_metrics: list[CustomMetric] = Field(default_factory=list)
    experiment: ExperimentConfig | None = None
    model_registry: ModelRegistryConfig | None = None

    @model_validator(mode="after")
    def _one_template(self) -> RecipeSchema:
        if self.recipe is None and self.template is None:
            raise ValueError('name the template: recipe: "regression/v1" or "classification/v1"')
        if self.recipe and self.template and self.recipe != self.template:
            raise ValueError(f"recipe {self.recipe!r} and template {self.template!r} disagree")
        return self

    @property
    def template_name(self) -> str:
        """``regression/v1`` or ``classification/v1``."""
        return str(self.recipe or self.template)

    @property
    def task(self) -> str:
        """``regression`` or ``classification``."""
        return self.template_name.split("/")[0]
