"""A project written for MLflow, unchanged: `tracklane run` hands it MLFLOW_RUN_ID and
MLFLOW_TRACKING_URI, and the stock mlflow client (its own virtualenv) logs into the same run through
the server's MLflow REST API, on both backends."""

from __future__ import annotations

from pathlib import Path

import tracklane
from tests.e2e.mlflow_venv import mlflow_python
from tests.projects_helpers import run_env, tracklane_run, write_project
from tracklane.testing import LocalServer

TRAIN = """\
import sys

import mlflow

with mlflow.start_run() as run:  # MLFLOW_RUN_ID: the run `tracklane run` made
    mlflow.log_metric("rmse", float(sys.argv[1]))
    mlflow.set_tag("written.for", "mlflow")
    print("mlflow attached to", run.info.run_id, flush=True)
"""


def test_mlflow_code_logs_into_the_projects_run(
    tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path, unique: str
) -> None:
    python = mlflow_python()
    experiment = client.create_experiment(f"mlflow-code-{unique}")
    project = write_project(
        tmp_path / "proj",
        """\
        name: mlflow-code
        entry_points:
          main:
            parameters:
              interpreter: path
              rmse: {type: float, default: 0.25}
            command: "{interpreter} train.py {rmse}"
        """,
        {"train.py": TRAIN},
    )
    env = run_env(tracking_server.uri, tmp_path / "cache", {"MLFLOW_TRACKING_URI": tracking_server.http_url})
    done = tracklane_run(
        [
            str(project),
            "-P",
            f"interpreter={python}",
            "--env-manager",
            "local",
            "--experiment-id",
            experiment,
        ],
        env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [found] = client.search_runs([experiment])
    run = client.get_run(found.info.run_id)
    assert f"mlflow attached to {run.info.run_id}" in done.stdout
    assert run.info.status == tracklane.RunStatus.FINISHED
    assert run.data.metrics == {"rmse": 0.25}
    assert run.data.tags["written.for"] == "mlflow"
    assert run.data.tags["mlflow.source.type"] == "PROJECT"
    assert run.data.params["rmse"] == "0.25"
