"""The stock ``mlflow`` 3.17.2 client, code unchanged, against ``tracklane server`` on both backends
(SQLite + folder, PostgreSQL + MinIO); what it writes read back over gRPC, and the other way round."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracklane
from tests.auth_helpers import AuthServer, start_auth_server
from tests.e2e.mlflow_venv import mlflow_python, run_script, run_text
from tracklane.entities import Param
from tracklane.testing import LocalServer

README = Path(__file__).resolve().parents[2] / "README.md"
#: The README's MLflow examples, fenced as ```python mlflow: run with the mlflow client, not Tracklane's.
README_EXAMPLES = re.findall(r"```python mlflow\n(.*?)```", README.read_text(), re.S)


@pytest.fixture(scope="module")
def python() -> Path:
    return mlflow_python()


@pytest.mark.parametrize("code", README_EXAMPLES, ids=[f"example-{i}" for i in range(len(README_EXAMPLES))])
def test_readme_mlflow_example(python: Path, tmp_path: Path, code: str) -> None:
    claimed = re.search(r"print\(.*\)\s*#\s*(.+)", code)
    script = tmp_path / "example.py"
    script.write_text(code)
    with LocalServer(tmp_path / "server") as server:
        printed = run_text(python, script, server.http_url)
    assert README_EXAMPLES
    if claimed:
        assert printed.splitlines()[-1].strip() == claimed.group(1).strip()


def test_fluent_tracking_search_and_artifacts(
    python: Path, tracking_server: LocalServer, client: tracklane.Client, unique: str
) -> None:
    seen = run_script(python, "tracking.py", tracking_server.http_url, f"mlflow-e2e-{unique}")
    assert (seen["duplicate_code"], seen["missing_code"]) == (
        "RESOURCE_ALREADY_EXISTS",
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert seen["status"] == "FINISHED"
    assert seen["params"] == {"lr": "0.01", "empty": "", "batch_size": "32"}
    assert seen["metrics"] == {"loss": 0.2, "weird": None, "batch": 499.5}
    assert seen["history"] == [[s, 1.0 / (s + 1)] for s in range(5)]
    assert seen["batch_points"] == 1000
    assert {k: seen["tags"][k] for k in ("stage", "blank", "kind", "mlflow.runName")} == {
        "stage": "dev",
        "blank": "",
        "kind": "batch",
        "mlflow.runName": "parent",
    }
    assert seen["children"] == ["child-2", "child-1", "child-0"]  # tags.mlflow.parentRunId, ordered
    assert seen["frame_columns"] == ["metrics.acc", "params.i", "tags.mlflow.runName"]
    assert seen["filtered"] == ["child-1"]
    assert seen["artifacts"] == ["config.json", "folder", "notes.txt"]
    assert seen["folder"] == ["folder/sub/data.bin"]
    assert seen["downloaded"] == ["config.json", "folder/notes.txt", "folder/sub/data.bin", "notes.txt"]
    assert (seen["notes"], seen["data_ok"], seen["config"]) == ("hello from mlflow", True, {"a": 1})
    assert seen["experiment_tags"] == {"team": "cv"}

    # The same run over gRPC: system tags are attributes, files are the run's artifacts.
    run = client.get_run(seen["run_id"])
    assert run.info.run_name == "parent"
    assert run.info.user_id == seen["tags"]["mlflow.user"]
    assert run.data.params["batch_size"] == "32"
    assert run.data.tags["mlflow.source.name"].endswith("tracking.py")
    children = client.search_runs(seen["experiment_id"], f"attributes.parent_run_id = '{run.info.run_id}'")
    assert sorted(r.info.run_name for r in children) == ["child-0", "child-1", "child-2"]
    assert client.read_artifact(run.info.run_id, "notes.txt") == b"hello from mlflow"
    assert client.read_artifact(run.info.run_id, "folder/sub/data.bin") == bytes(range(256)) * 4096


def test_sklearn_model_registry_alias_and_stages(
    python: Path, tracking_server: LocalServer, client: tracklane.Client, unique: str
) -> None:
    name = f"mlflow-model-{unique}"
    seen = run_script(python, "models.py", tracking_server.http_url, name)
    assert (seen["same_predictions"], seen["stage_predictions"]) == (True, True)
    assert seen["versions"] == ["1", "2"]
    assert seen["alias_version"] == "1"
    assert seen["latest_production"] == ["2"]
    assert seen["stages"] == {"1": "None", "2": "Production"}
    # Over gRPC: the model is the run's model/ folder, both versions point at it.
    version = client.get_model_version_by_alias(name, "champion")
    assert (version.source, version.run_id) == (f"runs:/{seen['run_id']}/model", seen["run_id"])
    files = {f.path for f in client.list_artifacts(seen["run_id"], "model")}
    assert {"model/MLmodel", "model/requirements.txt"} <= files


def test_optuna_callback_logs_a_20_trial_study(
    python: Path, tracking_server: LocalServer, client: tracklane.Client, unique: str
) -> None:
    seen = run_script(python, "optuna_study.py", tracking_server.http_url, f"optuna-{unique}")
    assert seen["runs"] == 20
    assert seen["logged_best"] == seen["best_value"]
    assert seen["xs"] == seen["trial_xs"]
    experiment = client.get_experiment_by_name(f"optuna-{unique}")
    assert experiment is not None
    assert len(client.search_runs(experiment.experiment_id, "metrics.objective >= 0")) == 20


def test_mlflow_reads_what_a_tracklane_client_wrote(
    python: Path, tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path, unique: str
) -> None:
    experiment_id = client.create_experiment(f"from-grpc-{unique}")
    run = client.create_run(experiment_id, run_name="grpc-run", description="written over gRPC")
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param("lr", "0.1")])
    for step in range(3):
        client.log_metric(run_id, "loss", 1.0 - step / 10, step=step)
    (tmp_path / "report.txt").write_text("made by tracklane")
    client.log_artifact(run_id, str(tmp_path / "report.txt"))
    name = f"grpc-model-{unique}"
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(name, "prod", version.version)

    seen = run_script(python, "reads_tracklane.py", tracking_server.http_url, run_id, name)
    assert seen["name"] == "grpc-run"
    assert seen["params"] == {"lr": "0.1"}
    assert seen["metrics"] == {"loss": 0.8}
    assert seen["tags"]["mlflow.note.content"] == "written over gRPC"  # the description, as MLflow's tag
    assert seen["tags"]["mlflow.runName"] == "grpc-run"
    assert seen["history"] == [[0, 1.0], [1, 0.9], [2, 0.8]]
    assert seen["report"] == "made by tracklane"
    assert (seen["version"], seen["version_run"]) == (str(version.version), run_id)
    assert seen["download_uri"] == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model"
    assert seen["found"] == [run_id]


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A server with auth on (SQLite: the contract tests cover auth over REST on both backends)."""
    server = start_auth_server(tmp_path_factory.mktemp("mlflow-auth"))
    try:
        yield server
    finally:
        server.close_clients()
        server.local.stop()


@pytest.mark.parametrize("scheme", ["token", "basic"])
def test_auth_with_a_token(python: Path, auth: AuthServer, scheme: str, unique: str) -> None:
    user = auth.create_user(f"mlflow-{scheme}")
    env = (
        {"MLFLOW_TRACKING_TOKEN": user.token}
        if scheme == "token"
        else {"MLFLOW_TRACKING_USERNAME": user.name, "MLFLOW_TRACKING_PASSWORD": user.token}
    )
    seen = run_script(python, "tracking.py", auth.local.http_url, f"auth-{scheme}-{unique}", env=env)
    assert seen["status"] == "FINISHED"
    assert seen["tags"]["mlflow.user"] == user.name  # the token's user, whatever the client claims
    with user.client() as own:
        assert own.get_run(seen["run_id"]).info.user_id == user.name
