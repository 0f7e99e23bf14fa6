"""Projects for the ``tracklane run`` tests, and the command as a user types it."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.servers import clean_env, tracklane_executable

# MLflow's documentation, "MLproject File" (docs/source/projects.rst), verbatim.
MLFLOW_DOCS_MLPROJECT = """\
name: My Project

python_env: python_env.yaml
# or
# conda_env: my_env.yaml
# or
# docker_env:
#    image:  mlflow-docker-example

entry_points:
  main:
    parameters:
      data_file: path
      regularization: {type: float, default: 0.1}
    command: "python train.py -r {regularization} {data_file}"
  validate:
    parameters:
      data_file: path
    command: "python validate.py {data_file}"
"""

# train.py of that project: logs through the fluent API into the run `tracklane run` made.
TRAIN_PY = """\
import argparse
import os

import tracklane

parser = argparse.ArgumentParser()
parser.add_argument("-r", "--regularization", type=float)
parser.add_argument("data_file")
args = parser.parse_args()
print(f"entry point started pid={os.getpid()} data={args.data_file}", flush=True)
with tracklane.start_run() as run:
    rows = open(args.data_file).read().splitlines()
    tracklane.log_metric("rows", len(rows))
    tracklane.log_metric("loss", 1.0 / (1.0 + args.regularization))
    tracklane.set_tag("trained.by", "train.py")
    tracklane.log_text("weights", "model/weights.txt")
    print(f"attached to {run.info.run_id}", flush=True)
"""


def write_docs_project(folder: Path, python_env: str = 'python: "3.11"\n') -> Path:
    """MLflow's documented MLproject with a train.py, a python_env.yaml and a data file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLproject").write_text(MLFLOW_DOCS_MLPROJECT)
    (folder / "python_env.yaml").write_text(python_env)
    (folder / "train.py").write_text(TRAIN_PY)
    (folder / "data.csv").write_text("x,y\n1,2\n3,4\n")
    return folder


def write_project(folder: Path, mlproject: str, files: Mapping[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLproject").write_text(textwrap.dedent(mlproject))
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def run_env(tracking_uri: str, cache: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a `tracklane run` under test: its server, its own cache."""
    env = clean_env({"TRACKLANE_TRACKING_URI": tracking_uri, "TRACKLANE_PROJECTS_CACHE": str(cache)})
    for name in ("TRACKLANE_RUN_ID", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def tracklane_run(
    args: Sequence[str],
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """``tracklane run ARGS`` as a user runs it; output captured."""
    return subprocess.run(
        [tracklane_executable(), "run", *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_tracklane_run(
    args: Sequence[str], env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [tracklane_executable(), "run", *args],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
