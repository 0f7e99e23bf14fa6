"""`tracklane models serve` and `predict` against a real tracking server, on both backends.

Registered versions are told apart by their labels: version 1 predicts iris' classes 0-2, version 2
classes 10-12 and the local folder classes 20-22, so a server that loaded the wrong one fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

import tracklane
from tests.serving_helpers import ModelServer, fit_iris, iris, save_iris, tracklane_command
from tracklane.models import infer_signature
from tracklane.serving.oip import open_inference_pb2 as pb
from tracklane.serving.oip import open_inference_pb2_grpc as pb_grpc
from tracklane.testing import LocalServer

pytest.importorskip("sklearn")
pytest.importorskip("starlette")


def _register(name: str, offset: int) -> Any:
    X, _ = iris()
    clf = fit_iris(offset)
    with tracklane.start_run():
        tracklane.sklearn.log_model(
            clf, "model", signature=infer_signature(X, clf.predict(X)), registered_model_name=name
        )
    return clf


def _score(server: ModelServer, rows: Any) -> list[int]:
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
    response = httpx.post(f"{server.url}/invocations", json=body, timeout=60)
    assert response.status_code == 200, response.text
    predictions: list[int] = response.json()["predictions"]
    return predictions


def test_serve_and_predict_by_version_alias_stage_and_folder(
    fl: None, client: tracklane.Client, tracking_server: LocalServer, unique: str, tmp_path: Path
) -> None:
    tracklane.set_experiment(f"serving-{unique}")
    name = f"iris-{unique}"
    v1, v2 = _register(name, 0), _register(name, 10)
    client.set_registered_model_alias(name, "champion", 1)
    client.transition_model_version_stage(name, 2, "Production")
    folder_model = save_iris(tmp_path / "folder", offset=20)
    X, _ = iris()
    rows = X.iloc[::7].reset_index(drop=True)
    env = {"TRACKLANE_TRACKING_URI": tracking_server.uri}
    cases = {
        f"models:/{name}/1": (v1, "1"),
        f"models:/{name}@champion": (v1, "1"),
        f"models:/{name}/Production": (v2, "2"),
        str(tmp_path / "folder"): (folder_model, ""),
    }
    servers = {
        uri: ModelServer(["-m", uri], env=env, log_dir=tmp_path, grpc=uri.endswith("Production"))
        for uri in cases
    }
    try:
        for server in servers.values():
            server.start_async()
        for uri, server in servers.items():
            server.wait_started()
            estimator, _ = cases[uri]
            assert _score(server, rows) == estimator.predict(rows).tolist(), uri
        # The OIP names the registered model and version it serves.
        production = servers[f"models:/{name}/Production"]
        with grpc.insecure_channel(production.grpc_target) as channel:
            metadata = pb_grpc.GRPCInferenceServiceStub(channel).ModelMetadata(
                pb.ModelMetadataRequest(name=name)
            )
        assert (metadata.name, list(metadata.versions)) == (name, ["2"])
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
    assert {server.proc.returncode for server in servers.values() if server.proc} == {0}

    # `tracklane models predict`: the server's input handling, from a file, by alias.
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"dataframe_records": rows.to_dict(orient="records")}))
    out = tmp_path / "predictions.json"

    def predict_cli(uri: str, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            *tracklane_command(),
            "models",
            "predict",
            "-m",
            uri,
            "--tracking-uri",
            tracking_server.uri,
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)

    done = predict_cli(f"models:/{name}@champion", "-i", str(request), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == {"predictions": v1.predict(rows).tolist()}
    csv = tmp_path / "request.csv"
    rows.to_csv(csv, index=False)
    done = predict_cli(f"models:/{name}/Production", "-i", str(csv), "-t", "csv")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"predictions": v2.predict(rows).tolist()}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dataframe_records": [{"sepal length (cm)": 1.0}]}))
    done = predict_cli(f"models:/{name}/1", "-i", str(bad))
    assert done.returncode == 2
    assert "INVALID_PARAMETER_VALUE" in done.stderr
    assert "petal width (cm)" in done.stderr

    # tracklane.models.predict, MLflow's signature: a DataFrame in, predictions written out.
    python_out = tmp_path / "python.json"
    tracklane.models.predict(f"models:/{name}/2", input_data=rows, output_path=str(python_out))
    assert json.loads(python_out.read_text()) == {"predictions": v2.predict(rows).tolist()}
    with pytest.raises(ValueError, match="not both"):
        tracklane.models.predict(f"models:/{name}/2", input_data=rows, input_path=str(request))


def test_unknown_model_uri_is_a_one_line_error(tracking_server: LocalServer, unique: str) -> None:
    done = subprocess.run(
        [
            *tracklane_command(),
            "models",
            "serve",
            "-m",
            f"models:/missing-{unique}/1",
            "-p",
            "0",
            "--tracking-uri",
            tracking_server.uri,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.startswith("tracklane: error: ")
    assert f"missing-{unique}" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_command_help_lists_the_flags() -> None:
    done = subprocess.run(
        [*tracklane_command(), "models", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for flag in (
        "--model-uri",
        "--port",
        "--host",
        "--grpc-port",
        "--workers",
        "--env-manager",
        "--max-batch-size",
        "--max-batch-delay-ms",
    ):
        assert flag in done.stdout
    assert sys.executable  # the interpreter the command ran with
