"""Cache keys: what each step's outputs depend on, hashed (see cache.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracklane.recipes.cache import digest_json, hash_files
from tracklane.recipes.code import code_digest, module_of
from tracklane.recipes.config import RecipeConfig
from tracklane.recipes.errors import RecipeError
from tracklane.recipes.graph import STEPS

__all__ = ["ENGINE_VERSION", "compute_keys", "data_files", "step_methods"]

# Bumped when a step's outputs change shape, so caches of older versions are not reused.
ENGINE_VERSION = 1

_TRACKING_STEPS = ("train", "evaluate", "register", "predict")


def step_methods(config: RecipeConfig, step: str) -> list[str]:
    """The user methods ``step`` calls, as written in recipe.yaml."""
    s = config.schema.steps
    methods: list[str] = []
    if step in ("ingest", "ingest_scoring"):
        section = s.ingest if step == "ingest" else s.ingest_scoring
        if section is not None and section.loader_method:
            methods.append(section.loader_method)
    elif step == "split" and s.split is not None:
        methods += [
            m
            for m in (s.split.split_method, s.split.post_split_filter_method, s.split.post_split_method)
            if m
        ]
    elif step == "transform" and s.transform is not None and s.transform.transformer_method:
        methods.append(s.transform.transformer_method)
    elif step == "train":
        if s.train.estimator_method:
            methods.append(s.train.estimator_method)
        if s.train.tuning is not None and s.train.tuning.early_stop_fn:
            methods.append(s.train.tuning.early_stop_fn)
    if step in ("train", "evaluate"):
        methods += [f"steps.custom_metrics.{m.function}" for m in config.schema.custom_metrics]
    return methods


def _config_part(config: RecipeConfig, step: str, tracking: dict[str, Any]) -> dict[str, Any]:
    schema = config.schema
    part: dict[str, Any] = {
        "template": schema.template_name,
        "section": config.step_section(step),
    }
    if step != "ingest_scoring" and step != "predict":
        part["target_col"] = schema.target_col
        part["positive_class"] = schema.positive_class
    if step in ("train", "evaluate"):
        part["primary_metric"] = schema.primary_metric
        part["custom_metrics"] = config.raw.get("custom_metrics")
    if step in _TRACKING_STEPS:
        part["tracking"] = tracking
    if step in ("register", "predict"):
        part["model_registry"] = config.raw.get("model_registry")
    return part


def data_files(config: RecipeConfig, step: str) -> Iterator[tuple[str, Path]]:
    """The local files an ingest step reads, sorted, with the names they are hashed under.

    Raises:
        RecipeError: a location that does not exist, or a folder without files of the format.
    """
    section = config.schema.steps.ingest if step == "ingest" else config.schema.steps.ingest_scoring
    if section is None or section.location is None or section.using == "spark_sql":
        return
    locations = section.location if isinstance(section.location, list) else [section.location]
    for location in locations:
        path = _local_path(config.root, location)
        if path.is_dir():
            pattern = "*" if section.loader_method else f"*.{section.using}"
            files = (
                sorted(p for p in path.rglob(pattern) if p.is_file())
                if section.using != "delta"
                else sorted(p for p in path.rglob("*") if p.is_file())
            )
            if not files:
                raise RecipeError(f"steps.{step}.location: no {pattern} files in {location}")
            for file in files:
                yield f"{location}/{file.relative_to(path).as_posix()}", file
        elif path.is_file():
            yield location, path
        else:
            raise RecipeError(f"steps.{step}.location: {location} does not exist")


def _local_path(root: Path, location: str) -> Path:
    if "://" in location and not location.startswith("file://"):
        raise RecipeError(
            f"ingest location {location!r}: only local files and folders are read (copy it locally first)"
        )
    path = Path(location.removeprefix("file://"))
    return path if path.is_absolute() else root / path


def compute_keys(
    config: RecipeConfig,
    steps: list[str],
    tracking: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The cache key of each of ``steps`` (given in execution order, upstream first).

    Args:
        config: The recipe.
        steps: Steps to key, with all their upstream steps before them.
        tracking: What identifies the tracking server and experiment (part of tracking steps' keys).
        extra: Further inputs per step (the resolved model version of ``predict``).
    """
    from tracklane import __version__

    keys: dict[str, str] = {}
    for step in steps:
        spec = STEPS[step]
        modules = sorted({module_of(m, spec.module)[0] for m in step_methods(config, step)})
        parts: dict[str, Any] = {
            "engine": [ENGINE_VERSION, __version__],
            "step": step,
            "config": _config_part(config, step, tracking),
            "code": code_digest(config.root, modules),
            "upstream": {up: keys[up] for up in spec.upstream},
        }
        if step in ("ingest", "ingest_scoring"):
            parts["data"] = hash_files(data_files(config, step))
        if extra and step in extra:
            parts["extra"] = extra[step]
        keys[step] = digest_json(parts)
    return keys
