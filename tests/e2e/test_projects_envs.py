"""`tracklane run` environments on both backends: a uv environment built once from python_env.yaml
and reused, its lock logged and rebuilt by --from-run; the errors for a Python or conda that is
not installed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import tracklane
from tests.projects_helpers import run_env, tracklane_run, write_project
from tracklane.testing import LocalServer

PROJECT = """\
name: with-deps
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      n: {type: int, default: 3}
    command: "python main.py {n}"
"""
PYTHON_ENV = """\
python: "3.11"
build_dependencies:
  - pip
dependencies:
  - six
"""
MAIN_PY = """\
import sys

import six  # only in the project's environment
import tracklane

with tracklane.start_run():
    tracklane.log_metric("n", int(sys.argv[1]))
    print(f"prefix={sys.prefix} six={six.__version__}")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "proj", PROJECT, {"python_env.yaml": PYTHON_ENV, "main.py": MAIN_PY})


def _setup(stderr: str) -> tuple[str, float]:
    match = re.search(r"uv environment (built|reused) in ([\d.]+) s", stderr)
    assert match, stderr
    return match.group(1), float(match.group(2))


def _run_id(client: tracklane.Client, experiment: str, before: set[str]) -> str:
    new = {r.info.run_id for r in client.search_runs([experiment])} - before
    assert len(new) == 1
    return new.pop()


def test_uv_environment_is_built_once_reused_and_reproduced(
    tracking_server: LocalServer, client: tracklane.Client, project: Path, tmp_path: Path, unique: str
) -> None:
    experiment = client.create_experiment(f"envs-{unique}")
    cache = tmp_path / "cache"
    env = run_env(tracking_server.uri, cache)
    args = [str(project), "--env-manager", "uv", "--experiment-id", experiment]

    first = tracklane_run(args, env)
    assert first.returncode == 0, first.stderr
    assert _setup(first.stderr)[0] == "built"
    assert f"prefix={cache / 'envs'}" in first.stdout  # the project's own environment, not this one
    first_id = _run_id(client, experiment, set())

    second = tracklane_run([*args, "-P", "n=5"], env)
    assert second.returncode == 0, second.stderr
    state, seconds = _setup(second.stderr)
    assert state == "reused"
    print(f"second run's environment set-up: {seconds:.3f} s (first: {_setup(first.stderr)[1]:.1f} s)")
    second_id = _run_id(client, experiment, {first_id})
    assert len(list((cache / "envs").glob("uv-*/"))) == 1

    runs = {r: client.get_run(r) for r in (first_id, second_id)}
    for run in runs.values():
        tags = run.data.tags
        assert tags["mlflow.project.env"] == "uv"
        assert tags["tracklane.project.python"].startswith("3.11.")
        assert re.fullmatch(r"[0-9a-f]{64}", tags["tracklane.project.lockHash"])
    assert runs[first_id].data.metrics["n"] == 3.0
    assert runs[second_id].data.metrics["n"] == 5.0
    lock = client.read_artifact(first_id, "project/requirements.lock").decode()
    assert re.search(r"^six==[\d.]+$", lock, re.MULTILINE), lock
    assert (
        runs[first_id].data.tags["tracklane.project.lockHash"]
        == runs[second_id].data.tags["tracklane.project.lockHash"]
    )

    # --from-run: the same source, entry point, params and exactly the locked packages, rebuilt
    # from the lock (the spec's environment is not what it uses).
    shutil.rmtree(cache / "envs")
    (project / "python_env.yaml").write_text(PYTHON_ENV.replace("- six", "- six\n  - toolz"))
    again = tracklane_run(["--from-run", second_id, "--experiment-id", experiment], env)
    assert again.returncode == 0, again.stderr
    assert _setup(again.stderr)[0] == "built"
    again_id = _run_id(client, experiment, {first_id, second_id})
    reproduced = client.get_run(again_id)
    assert reproduced.data.params == {"n": "5"}
    assert reproduced.data.metrics["n"] == 5.0
    assert (
        reproduced.data.tags["tracklane.project.lockHash"]
        == runs[second_id].data.tags["tracklane.project.lockHash"]
    )
    assert client.read_artifact(again_id, "project/requirements.lock").decode() == lock
    assert "toolz" not in lock


def test_python_version_that_is_not_installed_is_one_clear_error(
    tracking_server: LocalServer, project: Path, tmp_path: Path
) -> None:
    (project / "python_env.yaml").write_text('python: "3.4.10"\ndependencies: [six]\n')
    done = tracklane_run([str(project), "--env-manager", "uv"], run_env(tracking_server.uri, tmp_path / "c"))
    assert done.returncode == 2
    assert "asks for Python 3.4.10" in done.stderr
    assert "no Python 3.4 is installed here" in done.stderr


def test_conda_without_conda_is_one_line(tracking_server: LocalServer, tmp_path: Path) -> None:
    if shutil.which("conda"):
        pytest.skip("conda is installed here: the error path cannot be shown")
    project = write_project(
        tmp_path / "proj",
        "name: c\nconda_env: conda.yaml\nentry_points:\n  main:\n    command: 'true'\n",
        {"conda.yaml": "dependencies:\n  - python=3.11\n"},
    )
    done = tracklane_run([str(project)], run_env(tracking_server.uri, tmp_path / "c"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("tracklane: error: --env-manager conda needs conda")
