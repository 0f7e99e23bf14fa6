"""recipe.yaml and profiles: Jinja2 rendering, merging, and errors that name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("msgspec")
pytest.importorskip("jinja2")

from tracklane.recipes.config import load_config
from tracklane.recipes.errors import RecipeConfigError
from tracklane.recipes.graph import closure, downstream

RECIPE = """\
recipe: "regression/v1"
target_col: "fare_amount"
steps:
  ingest: {{INGEST_CONFIG}}
  split:
    split_ratios: {{SPLIT_RATIOS|default([0.75, 0.125, 0.125])}}
  transform:
    transformer_method: steps.transform.transformer_fn
  train:
    using: custom
    estimator_method: estimator_fn
  evaluate:
    # validation_criteria: {{COMMENTED_OUT}}
  register:
    allow_non_validated_model: {{ALLOW|default(false)}}
"""

PROFILE = """\
experiment:
  name: "taxi"
model_registry:
  model_name: "taxi-model"
INGEST_CONFIG:
  using: parquet
  location: "./data/sample.parquet"
SPLIT_RATIOS: [0.8, 0.1, 0.1]
UNUSED: 3
"""


def _recipe(tmp_path: Path, recipe: str = RECIPE, profile: str = PROFILE) -> Path:
    (tmp_path / "profiles").mkdir(exist_ok=True)
    (tmp_path / "recipe.yaml").write_text(recipe)
    (tmp_path / "profiles" / "local.yaml").write_text(profile)
    return tmp_path


def test_profile_values_are_substituted_and_added(tmp_path: Path) -> None:
    config = load_config(_recipe(tmp_path), "local")
    steps = config.schema.steps
    assert steps.ingest.using == "parquet"
    assert steps.ingest.location == "./data/sample.parquet"
    assert steps.split is not None
    assert steps.split.split_ratios == [0.8, 0.1, 0.1]
    assert steps.evaluate is None  # only a comment under it: defaults
    assert steps.register is not None
    assert steps.register.allow_non_validated_model is False
    assert config.schema.model_registry is not None
    assert config.schema.model_registry.model_name == "taxi-model"
    assert config.schema.template_name == "regression/v1"
    assert "UNUSED" not in config.raw
    assert "INGEST_CONFIG" not in config.raw


def test_the_older_template_key_is_accepted(tmp_path: Path) -> None:
    config = load_config(_recipe(tmp_path, RECIPE.replace("recipe:", "template:")), "local")
    assert config.schema.template_name == "regression/v1"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("    split_ratios:", "    split_ratio:"),
            r"line 6: unknown key 'steps\.split\.split_ratio' \(known keys: using, split_ratios",
        ),
        (
            ("  train:\n", "  train:\n    estimator_parms: {}\n"),
            r"recipe\.yaml, line 10: unknown key 'steps\.train\.estimator_parms'",
        ),
        (
            ('target_col: "fare_amount"', "target_col: [1, 2]"),
            r"recipe\.yaml, line 2: target_col: Expected `str`, got `array`",
        ),
        (
            ("    using: custom", "    using: magic"),
            r"recipe\.yaml, line 10: steps\.train\.using: Invalid enum value 'magic'",
        ),
        (
            ('recipe: "regression/v1"', 'recipe: "forecasting/v1"'),
            r"recipe\.yaml, line 1: recipe: Invalid enum value 'forecasting/v1'",
        ),
        (
            ("  register:", "  register:\n    allow_non_validated_model: maybe\n  registr:"),
            r"line 15: steps\.register\.allow_non_validated_model: Expected `bool`, got `str`",
        ),
        (('target_col: "fare_amount"\n', ""), r"recipe\.yaml, line 1: 'target_col' is required"),
        (
            ("    split_ratios:", "    split_ratios: [1, 2]\n    using: split_ratios\n    split_ratios:"),
            r"line 8: duplicate key 'steps\.split\.split_ratios' \(first at line 6\)",
        ),
        (("steps:\n", "steps:\n  - ingest\n"), r"invalid YAML"),
    ],
)
def test_malformed_recipe_names_the_line_and_key(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    assert old in RECIPE
    with pytest.raises(RecipeConfigError, match=expected):
        load_config(_recipe(tmp_path, RECIPE.replace(old, new, 1)), "local")


def test_a_sections_own_check_names_its_field_and_line(tmp_path: Path) -> None:
    recipe = RECIPE.replace(
        "    split_ratios: {{SPLIT_RATIOS|default([0.75, 0.125, 0.125])}}", "    split_ratios: [1, 0]"
    )
    with pytest.raises(
        RecipeConfigError, match=r"recipe\.yaml, line 6: steps\.split\.split_ratios: must be 3 positive"
    ):
        load_config(_recipe(tmp_path, recipe), "local")


def test_profile_errors_name_the_profile(tmp_path: Path) -> None:
    with pytest.raises(
        RecipeConfigError, match=r"profiles/local\.yaml, line 2: unknown key 'experiment\.nmae'"
    ):
        load_config(_recipe(tmp_path, profile=PROFILE.replace('  name: "taxi"', '  nmae: "taxi"')), "local")
    with pytest.raises(
        RecipeConfigError,
        match=r"profiles/local\.yaml, line 1: 'steps' is already set in recipe\.yaml, line 3",
    ):
        load_config(_recipe(tmp_path, profile="steps: {}\n" + PROFILE), "local")


def test_a_missing_variable_names_its_line(tmp_path: Path) -> None:
    profile = PROFILE.replace("INGEST_CONFIG:", "OTHER:")
    with pytest.raises(RecipeConfigError, match=r"recipe\.yaml, line 4: 'INGEST_CONFIG' is undefined"):
        load_config(_recipe(tmp_path, profile=profile), "local")


def test_a_missing_profile_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(RecipeConfigError, match=r"profile 'prod' not found.*\['local'\]"):
        load_config(_recipe(tmp_path), "prod")


def test_ingest_needs_a_loader_for_formats_it_does_not_read(tmp_path: Path) -> None:
    profile = PROFILE.replace("using: parquet", "using: json")
    with pytest.raises(
        RecipeConfigError,
        match=r"recipe\.yaml, line 4: steps\.ingest\.using: format 'json' is not read natively.*"
        r"loader_method.*\(the value of INGEST_CONFIG, profiles/local\.yaml, line 5\)",
    ):
        load_config(_recipe(tmp_path, profile=profile), "local")


def test_the_step_graph() -> None:
    assert closure("register") == ["ingest", "split", "transform", "train", "evaluate", "register"]
    assert closure("predict") == ["ingest_scoring", "predict"]
    assert downstream("train") == ["train", "evaluate", "register"]
    assert downstream("ingest") == ["ingest", "split", "transform", "train", "evaluate", "register"]


@pytest.mark.parametrize(
    ("profile_edit", "recipe_edit", "expected"),
    [
        (("using: parquet", "using: delta"), None, r"using: delta needs the deltalake package"),
        (
            ('using: parquet\n  location: "./data/sample.parquet"', "using: spark_sql\n  sql: SELECT 1"),
            None,
            "needs PySpark",
        ),
        (None, ("    using: custom\n", "    using: automl/flaml\n"), r"automl/flaml needs FLAML"),
    ],
)
def test_missing_engines_are_refused_before_any_step(
    tmp_path: Path, profile_edit: tuple[str, str] | None, recipe_edit: tuple[str, str] | None, expected: str
) -> None:
    import importlib.util

    from tracklane.recipes.runner import Runner

    for engine in ("deltalake", "pyspark", "flaml"):
        if importlib.util.find_spec(engine) is not None:
            pytest.skip(f"{engine} is installed here")
    profile = PROFILE.replace(*profile_edit) if profile_edit else PROFILE
    recipe = RECIPE.replace(*recipe_edit) if recipe_edit else RECIPE
    config = load_config(_recipe(tmp_path, recipe, profile), "local")
    with pytest.raises(RecipeConfigError, match=expected):
        Runner(config, "grpc://127.0.0.1:1").check()
    assert not (tmp_path / ".tracklane").exists()
