"""``Recipe``: run, inspect, clean and read a recipe's outputs (MLflow 2.x's ``mlflow.recipes.Recipe``)."""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracklane.recipes import graph
from tracklane.recipes.cache import CARD_FILE, Entry
from tracklane.recipes.config import RecipeConfig, find_recipe_root, load_config
from tracklane.recipes.runner import Runner, StepOutcome
from tracklane.recipes.steps import _context as files

__all__ = ["Inspection", "Recipe"]


class Recipe:
    """A recipe folder (``recipe.yaml``, ``profiles/``, ``steps/``) under one profile.

    The configuration is read again by every call, so edits between calls take effect.

    Args:
        profile: The profile (``profiles/<profile>.yaml``); None for a recipe without variables.
        recipe_root: The recipe folder; default the nearest folder holding recipe.yaml from here up.
        tracking_uri: The Tracklane server; overrides the profile (see ``tracklane.recipes.tracking``).

    Raises:
        RecipeConfigError: no recipe found, or its configuration is malformed.
    """

    def __init__(
        self,
        profile: str | None = None,
        recipe_root: str | os.PathLike[str] | None = None,
        tracking_uri: str | None = None,
    ) -> None:
        self.root = find_recipe_root(recipe_root)
        self.profile = profile
        self.tracking_uri = tracking_uri
        self._load()

    def _load(self) -> Runner:
        config: RecipeConfig = load_config(self.root, self.profile)
        return Runner(config, self.tracking_uri)

    @property
    def name(self) -> str:
        """The recipe's name (its folder's)."""
        return self.root.name

    def run(self, step: str | None = None) -> list[StepOutcome]:
        """Runs ``step`` (default ``register``: the whole training recipe) and the steps it needs.

        Steps whose code, configuration, inputs and upstream steps have not changed are skipped.

        Returns:
            What happened to each step, in order.

        Raises:
            StepFailedError: a step raised; its failure card is in the cache and on the run.
        """
        return self._load().run(step or graph.DEFAULT_TARGET)

    def clean(self, step: str | None = None) -> None:
        """Removes cached outputs: of every step, or of ``step`` and the steps after it."""
        runner = self._load()
        runner.cache.clean(list(graph.ORDER) if step is None else graph.downstream(step))

    def inspect(self, step: str | None = None) -> Inspection:
        """The step graph with each step's state, or one step's last card.

        The result renders as HTML in Jupyter (``_repr_html_``) and as a summary with ``str()``.
        """
        runner = self._load()
        if step is None:
            plan = runner.plan(graph.DEFAULT_TARGET, resolve_model=False)
            rows = []
            for name in graph.ORDER:
                spec = graph.STEPS[name]
                current = plan.hits.get(name)
                last = runner.cache.last(name)
                failed = runner.cache.failure_card(name)
                state = "cached" if current else ("failed" if failed else ("stale" if last else "not run"))
                if name in ("ingest_scoring", "predict") and last:
                    state = "run"
                rows.append((name, state, ", ".join(spec.artifacts), spec.upstream))
            return Inspection(self.name, None, rows, None, None)
        graph.check_step(step)
        card = runner.cache.failure_card(step)
        entry = _current_or_last(runner, step)
        if card is None and entry is not None:
            card = entry.file(CARD_FILE)
        return Inspection(self.name, step, [], card, entry.meta if entry else None)

    def get_artifact(self, artifact_name: str) -> Any:
        """An output of the recipe by MLflow's name, or None when its step has not run.

        Names: ``ingested_data``, ``training_data``, ``validation_data``, ``test_data``,
        ``transformed_training_data``, ``transformed_validation_data``, ``transformer``,
        ``model`` (a PyFuncModel), ``run``, ``model_validation_status``,
        ``registered_model_version``, ``ingested_scoring_data``, ``scored_data``.

        Raises:
            ValueError: an unknown artifact name.
        """
        step = graph.ARTIFACTS.get(artifact_name)
        if step is None:
            raise ValueError(f"unknown artifact {artifact_name!r}: use one of {', '.join(graph.ARTIFACTS)}")
        runner = self._load()
        entry = _current_or_last(runner, step)
        try:
            return None if entry is None else _read_artifact(runner, artifact_name, entry)
        finally:
            runner.tracking.close()

    def artifact_location(self, artifact_name: str) -> str | None:
        """Where an output is: a local file or folder, a run id, or a ``models:/`` URI (None: not yet)."""
        step = graph.ARTIFACTS.get(artifact_name)
        if step is None:
            raise ValueError(f"unknown artifact {artifact_name!r}: use one of {', '.join(graph.ARTIFACTS)}")
        entry = _current_or_last(self._load(), step)
        if entry is None:
            return None
        if artifact_name in _FRAMES:
            return str(entry.file(_FRAMES[artifact_name]))
        locations: dict[str, Callable[[], str | None]] = {
            "transformer": lambda: str(entry.file(files.TRANSFORMER)),
            "model": lambda: str(entry.file(files.MODEL_DIR)),
            "run": lambda: str(entry.meta["run_id"]),
            "model_validation_status": lambda: str(entry.meta["model_validation_status"]),
            "registered_model_version": lambda: (
                entry.meta.get("model_uri") if entry.meta.get("registered") else None
            ),
        }
        return locations[artifact_name]()


def _current_or_last(runner: Runner, step: str) -> Entry | None:
    return runner.cache.last(step)


_FRAMES = {
    "ingested_data": files.INGESTED,
    "training_data": files.TRAIN,
    "validation_data": files.VALIDATION,
    "test_data": files.TEST,
    "transformed_training_data": files.TRANSFORMED_TRAIN,
    "transformed_validation_data": files.TRANSFORMED_VALIDATION,
    "ingested_scoring_data": files.SCORING_INGESTED,
    "scored_data": files.SCORED,
}


def _read_artifact(runner: Runner, name: str, entry: Entry) -> Any:
    if name in _FRAMES:
        import pandas as pd

        return pd.read_parquet(entry.file(_FRAMES[name]))
    if name == "transformer":
        import cloudpickle

        with open(entry.file(files.TRANSFORMER), "rb") as src:
            return cloudpickle.load(src)
    if name == "model":
        from tracklane.pyfunc import load_model

        return load_model(entry.file(files.MODEL_DIR))
    if name == "model_validation_status":
        return entry.meta["model_validation_status"]
    client = runner.tracking.client()
    if name == "run":
        return client.get_run(entry.meta["run_id"])
    if not entry.meta.get("registered"):
        return None
    return client.get_model_version(entry.meta["name"], entry.meta["version"])


@dataclass(frozen=True)
class Inspection:
    """What ``Recipe.inspect`` shows: the graph, or one step's card."""

    recipe: str
    step: str | None
    graph: list[tuple[str, str, str, tuple[str, ...]]]
    card: Path | None
    meta: dict[str, Any] | None

    def _repr_html_(self) -> str:
        if self.step is not None:
            if self.card is None:
                return f"<p>Step {html.escape(self.step)} has not run: run it first.</p>"
            return self.card.read_text("utf-8")
        rows = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{html.escape(s)}</td>"
            f"<td>{html.escape(', '.join(u) or '-')}</td>"
            f"<td>{html.escape(a)}</td></tr>"
            for n, s, a, u in self.graph
        )
        return (
            f"<h3>Recipe {html.escape(self.recipe)}</h3><table><tr><th>step</th><th>state</th><th>after</th>"
            f"<th>artifacts</th></tr>{rows}</table>"
        )

    def __str__(self) -> str:
        if self.step is None:
            width = max(len(n) for n, *_ in self.graph)
            lines = [
                f"recipe {self.recipe}",
                "  ingest -> split -> transform -> train -> evaluate -> register",
                "  ingest_scoring -> predict",
                "",
            ]
            lines += [f"  {n.ljust(width)}  {s.ljust(8)}  {a}" for n, s, a, _ in self.graph]
            return "\n".join(lines) + "\n"
        if self.card is None:
            return f"step {self.step} has not run\n"
        out = [f"step {self.step}: card {self.card}"]
        if self.meta and self.card.parent.name != "failed":
            out += [
                f"  {k}: {v}"
                for k, v in sorted(self.meta.items())
                if k not in ("key", "metrics", "criteria", "test_metrics")
            ]
            for row in self.meta.get("criteria") or []:
                verdict = "passed" if row["passed"] else "FAILED"
                out.append(
                    f"  {row['metric']} = {row['value']:.6g} (threshold {row['threshold']:g}): {verdict}"
                )
        else:
            out.append("  the last execution FAILED: the card holds the traceback")
        return "\n".join(out) + "\n"

    def render_table(self) -> str:
        """For the ``tracklane`` command's table output."""
        return str(self)
