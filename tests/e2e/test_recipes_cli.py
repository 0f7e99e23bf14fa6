"""``tracklane recipes``: the commands as a user types them, against the backend's server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracklane.testing import LocalServer

pytest.importorskip("sklearn")
pytest.importorskip("msgspec")


def _tracklane(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracklane_server.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_init_run_inspect_get_artifact_clean(
    tracking_server: LocalServer, tmp_path: Path, unique: str
) -> None:
    folder = tmp_path / f"cli-{unique}"
    made = _tracklane(
        "recipes",
        "init",
        "--template",
        "classification",
        "--tracking-uri",
        tracking_server.uri,
        str(folder),
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert (folder / "recipe.yaml").is_file()
    assert (folder / "data" / "training.csv").is_file()

    first = _tracklane("recipes", "run", cwd=folder)
    assert first.returncode == 0, first.stderr
    assert "6 step(s) ran, 0 cached" in first.stdout
    again = _tracklane("recipes", "run", "--profile", "local", cwd=folder / "steps")  # found from a subfolder
    assert "0 step(s) ran, 6 cached" in again.stdout

    graph = _tracklane("recipes", "inspect", cwd=folder)
    assert "evaluate        cached" in graph.stdout
    card = _tracklane("recipes", "inspect", "--step", "evaluate", cwd=folder)
    assert "model_validation_status: VALIDATED" in card.stdout
    html = _tracklane("recipes", "inspect", "--step", "evaluate", "--html", cwd=folder)
    assert html.stdout.startswith("<!DOCTYPE html>")

    version = _tracklane("recipes", "get-artifact", "registered_model_version", cwd=folder)
    assert version.stdout.strip() == f"models:/{folder.name}-model/1"
    model = _tracklane("recipes", "get-artifact", "-a", "model", cwd=folder)
    assert (Path(model.stdout.strip()) / "MLmodel").is_file()
    scored = _tracklane("recipes", "get-artifact", "scored_data", cwd=folder)
    assert "not produced yet" in scored.stdout

    scoring = _tracklane("recipes", "run", "--step", "predict", cwd=folder)
    assert scoring.returncode == 0, scoring.stderr
    assert (folder / "data" / "scored.parquet").is_file()

    assert _tracklane("recipes", "clean", "--step", "train", cwd=folder).returncode == 0
    after = _tracklane("recipes", "run", cwd=folder)
    assert "3 step(s) ran, 3 cached" in after.stdout


def test_errors_are_one_line(tracking_server: LocalServer, tmp_path: Path, unique: str) -> None:
    folder = tmp_path / f"bad-{unique}"
    _tracklane("recipes", "init", "--tracking-uri", tracking_server.uri, str(folder), cwd=tmp_path)
    recipe = folder / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("target_col:", "target_column:"))
    bad = _tracklane("recipes", "run", cwd=folder)
    assert bad.returncode == 2
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .startswith("tracklane: error: recipe.yaml, line 4: unknown key 'target_column'")
    )
    assert "Traceback" not in bad.stderr
    recipe.write_text(recipe.read_text().replace("target_column:", "target_col:"))
    unknown = _tracklane("recipes", "run", "--step", "deploy", cwd=folder)
    assert "unknown step 'deploy'" in unknown.stderr
    outside = _tracklane("recipes", "run", cwd=tmp_path)
    assert "no recipe.yaml" in outside.stderr
    taken = _tracklane("recipes", "init", str(folder), cwd=tmp_path)
    assert taken.returncode == 2
    assert "is not empty" in taken.stderr
