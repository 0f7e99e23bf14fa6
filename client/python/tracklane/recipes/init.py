"""``tracklane recipes init``: a runnable recipe, with data from a dataset scikit-learn ships.

Regression uses the diabetes dataset, classification the breast cancer dataset (both are inside
the scikit-learn package: nothing is downloaded).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from tracklane.recipes.errors import RecipeError

__all__ = ["TEMPLATES", "init_recipe"]

TEMPLATES = ("regression", "classification")
_GITIGNORE = ".tracklane/\ndata/scored.*\n"


def init_recipe(directory: str | os.PathLike[str], template: str, tracking_uri: str | None = None) -> Path:
    """Writes a recipe into ``directory`` (which must be empty or missing).

    Args:
        directory: The new recipe's folder; its name becomes the recipe's, experiment's and model's.
        template: ``regression`` or ``classification``.
        tracking_uri: The server the local profile names (default ``grpc://127.0.0.1:50051``).

    Returns:
        The recipe folder.

    Raises:
        RecipeError: an unknown template, or a folder that is not empty.
    """
    if template not in TEMPLATES:
        raise RecipeError(f"unknown template {template!r}: use {' or '.join(TEMPLATES)}")
    root = Path(directory)
    if root.exists() and any(root.iterdir()):
        raise RecipeError(f"{root} is not empty")
    source = resources.files("tracklane.recipes") / "templates" / template
    for folder in ("", "steps", "profiles", "data"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    name = root.resolve().name
    for relative in (
        "recipe.yaml",
        "profiles/local.yaml",
        *(f"steps/{f}" for f in ("ingest.py", "split.py", "transform.py", "train.py", "custom_metrics.py")),
    ):
        text = (source / relative).read_text("utf-8").replace("__RECIPE_NAME__", name)
        if tracking_uri and relative == "profiles/local.yaml":
            text = text.replace("grpc://127.0.0.1:50051", tracking_uri)
        (root / relative).write_text(text, "utf-8")
    (root / ".gitignore").write_text(_GITIGNORE, "utf-8")
    _write_data(root, template)
    return root


def _write_data(root: Path, template: str) -> None:
    from sklearn.datasets import load_breast_cancer, load_diabetes

    loaded = (
        load_diabetes(as_frame=True, scaled=False)
        if template == "regression"
        else load_breast_cancer(as_frame=True)
    )
    frame = loaded.frame
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    scoring = frame.drop(columns=["target"]).sample(frac=0.3, random_state=1)
    if template == "regression":
        frame.to_parquet(root / "data" / "training.parquet", index=False)
    else:
        frame.to_csv(root / "data" / "training.csv", index=False)
    scoring.to_csv(root / "data" / "scoring.csv", index=False)
