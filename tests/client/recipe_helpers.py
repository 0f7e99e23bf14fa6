"""Recipes made by ``tracklane recipes init`` for the end-to-end tests, and what the server holds of them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tracklane
from tracklane.recipes import Recipe
from tracklane.recipes.init import init_recipe


@dataclass
class RecipeUnderTest:
    """A recipe folder on the test's server, with helpers to edit and inspect it."""

    root: Path
    client: tracklane.Client

    @classmethod
    def create(cls, folder: Path, template: str, client: tracklane.Client) -> RecipeUnderTest:
        init_recipe(folder, template, tracking_uri=client.tracking_uri)
        return cls(folder, client)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def model_name(self) -> str:
        return f"{self.name}-model"

    def recipe(self) -> Recipe:
        return Recipe(profile="local", recipe_root=self.root)

    def run(self, step: str | None = None) -> dict[str, str]:
        """Runs; returns step -> 'ran' or 'cached'."""
        return {o.step: o.status for o in self.recipe().run(step)}

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    def set_profile(self, **values: Any) -> None:
        """Adds (or replaces) top-level variables of profiles/local.yaml."""
        path = self.root / "profiles" / "local.yaml"
        text = path.read_text()
        for key, value in values.items():
            text = re.sub(rf"^{key}:.*\n", "", text, flags=re.M) + f"{key}: {value}\n"
        path.write_text(text)

    def runs(self) -> list[tracklane.Run]:
        experiment = self.client.get_experiment_by_name(self.name)
        assert experiment is not None
        return list(self.client.search_runs([experiment.experiment_id], "", max_results=1000))

    def versions(self) -> list[Any]:
        return list(self.client.search_model_versions(f"name = '{self.model_name}'"))

    def artifact_paths(self, run_id: str) -> set[str]:
        return {f.path for f in self.client.list_artifacts(run_id, "", recursive=True)}

    def card(self, run_id: str, step: str) -> str:
        return self.client.read_artifact(run_id, f"{step}/card.html").decode()


TRAINING = ["ingest", "split", "transform", "train", "evaluate", "register"]


def statuses(ran: list[str], cached: list[str]) -> dict[str, str]:
    return {**{s: "cached" for s in cached}, **{s: "ran" for s in ran}}
