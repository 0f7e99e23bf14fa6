"""The model server's processes: SIGTERM under load, environments, and MLflow's own model folders.

No tracking server: the models are local folders.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

import tracklane
from tests.conftest import REQUIRE_SERVICES
from tests.serving_helpers import IRIS_COLUMNS, ModelServer, iris, save_iris, tracklane_command

pytest.importorskip("sklearn")
pytest.importorskip("starlette")

SLOW_SCRIPT = """
import time

import tracklane


class Slow(tracklane.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        time.sleep(0.2)
        return model_input["x"] * 2


tracklane.models.set_model(Slow())
"""


def _slow_model(tmp_path: Path) -> Path:
    from tracklane.models import ModelSignature
    from tracklane.models.schema import ColSpec, DataType, Schema

    script = tmp_path / "slow.py"
    script.write_text(SLOW_SCRIPT)
    folder = tmp_path / "slow"
    tracklane.pyfunc.save_model(
        folder, python_model=str(script), signature=ModelSignature(Schema([ColSpec(DataType.long, "x")]))
    )
    return folder


def test_sigterm_under_load_drops_no_accepted_request(tmp_path: Path) -> None:
    server = ModelServer(
        ["-m", str(_slow_model(tmp_path)), "--workers", "2"], grpc=False, log_dir=tmp_path
    ).start()
    stop_load = threading.Event()
    load: list[object] = []  # status codes, or the exception's type name

    def keep_loading(worker: int) -> None:
        with httpx.Client(timeout=30) as http:
            n = 0
            while not stop_load.is_set():
                n += 1
                try:
                    reply = http.post(
                        server.url + "/invocations", json={"inputs": {"x": [worker * 1000 + n]}}
                    )
                    load.append(reply.status_code)
                    if reply.status_code == 200:
                        assert reply.json() == {"predictions": [2 * (worker * 1000 + n)]}
                except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                    load.append(type(exc).__name__)  # a request the server never read
                    time.sleep(0.05)

    probes: dict[int, object] = {}
    sent = threading.Semaphore(0)
    port = int(server.url.rsplit(":", 1)[1])

    def probe(i: int) -> None:
        # A fresh connection each, its request sent before SIGTERM: accepted, read, then queued.
        body = json.dumps({"inputs": {"x": [i]}}).encode()
        request = (
            f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                sock.sendall(request)
                sent.release()
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
            head, _, payload = reply.partition(b"\r\n\r\n")
            probes[i] = (int(head.split()[1]), json.loads(payload), time.monotonic())
        except (OSError, ValueError, IndexError) as exc:
            sent.release()
            probes[i] = repr(exc)

    loaders = [threading.Thread(target=keep_loading, args=(w,)) for w in range(4)]
    for thread in loaders:
        thread.start()
    time.sleep(1.0)
    probers = [threading.Thread(target=probe, args=(i,)) for i in range(12)]
    for thread in probers:
        thread.start()
    for _ in probers:
        assert sent.acquire(timeout=30)
    time.sleep(0.3)  # every probe's request has been read by a worker
    sigterm_at = time.monotonic()
    assert server.terminate(timeout=60) == 0, server.log()[-3000:]
    stop_load.set()
    for thread in [*loaders, *probers]:
        thread.join(60)

    for i in range(12):
        assert isinstance(probes[i], tuple), f"probe {i} was dropped: {probes[i]}"
        status, body, _finished_at = probes[i]  # type: ignore[misc]
        assert (status, body) == (200, {"predictions": [2 * i]})
    # 16 requests of 0.2 s on 2 workers were queued at SIGTERM: answering them took the drain a while.
    assert max(p[2] for p in probes.values() if isinstance(p, tuple)) - sigterm_at > 0.4
    assert load.count(200) > 0
    assert all(outcome == 200 or isinstance(outcome, str) for outcome in load), load
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=2).close()


def _worker_pythons(server: ModelServer) -> set[str]:
    import psutil

    assert server.proc is not None
    return {child.cmdline()[0] for child in psutil.Process(server.proc.pid).children() if child.is_running()}


def test_env_manager_uv_serves_from_its_own_environment(tmp_path: Path) -> None:
    clf = save_iris(tmp_path / "iris")
    env_root = Path.home() / ".cache" / "tracklane-ci" / "envs"  # built once per content hash, then reused
    X, _ = iris()
    with ModelServer(
        ["-m", str(tmp_path / "iris"), "--env-manager", "uv"],
        grpc=False,
        log_dir=tmp_path,
        env={"TRACKLANE_ENV_ROOT": str(env_root)},
        timeout=900,
    ) as server:
        [python] = _worker_pythons(server)
        [env_dir] = [p for p in env_root.iterdir() if p.is_dir() and python.startswith(str(p))]
        assert (env_dir / ".complete").exists()
        reply = httpx.post(
            server.url + "/invocations",
            json={"dataframe_split": {"columns": IRIS_COLUMNS, "data": X.to_numpy().tolist()}},
            timeout=60,
        )
        assert reply.status_code == 200
        assert reply.json() == {"predictions": clf.predict(X).tolist()}
    # The environment has the model's scikit-learn and this very client.
    done = subprocess.run(
        [python, "-c", "import sklearn, tracklane; print(sklearn.__version__, tracklane.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    sklearn_version, client_file = done.stdout.split()
    import sklearn

    assert sklearn_version == sklearn.__version__
    assert client_file.startswith(str(env_dir))


def test_env_manager_conda_without_conda_is_one_line(tmp_path: Path) -> None:
    save_iris(tmp_path / "iris")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            *tracklane_command(),
            "models",
            "serve",
            "-m",
            str(tmp_path / "iris"),
            "--env-manager",
            "conda",
            "-p",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "tracklane: error: --env-manager conda needs conda on PATH (install Miniforge); "
        "or use --env-manager uv"
    ]


MLFLOW_PYTHON = Path.home() / ".cache" / "tracklane-bench" / "mlflow-venv" / "bin" / "python"
MLFLOW_SAVE = """
import json, sys
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
clf = LogisticRegression(max_iter=500).fit(X, y)
signature = infer_signature(X, clf.predict(X))
mlflow.sklearn.save_model(clf, sys.argv[1], signature=signature, input_example=X.head(2))
with open(sys.argv[2], "w") as out:
    json.dump({"predictions": clf.predict(X).tolist(), "proba": clf.predict_proba(X).tolist()}, out)
"""


def test_model_folder_saved_by_mlflow_serves_unchanged(tmp_path: Path) -> None:
    if not MLFLOW_PYTHON.exists():
        if REQUIRE_SERVICES:
            pytest.fail(f"MLflow's virtualenv is missing at {MLFLOW_PYTHON} (.ci/run creates it)")
        pytest.skip(f"MLflow's virtualenv is missing at {MLFLOW_PYTHON}")
    folder, expected_path = tmp_path / "mlflow-model", tmp_path / "expected.json"
    subprocess.run(
        [str(MLFLOW_PYTHON), "-c", MLFLOW_SAVE, str(folder), str(expected_path)], check=True, timeout=300
    )
    expected = json.loads(expected_path.read_text())
    assert "mlflow.sklearn" in (folder / "MLmodel").read_text()
    X, _ = iris()
    with ModelServer(["-m", str(folder)], log_dir=tmp_path) as server:
        reply = httpx.post(
            server.url + "/invocations", json={"dataframe_records": X.to_dict(orient="records")}, timeout=60
        )
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"predictions": expected["predictions"]}
        # MLflow's signature is enforced as MLflow would.
        bad = httpx.post(
            server.url + "/invocations", json={"dataframe_records": [{"sepal length (cm)": "x"}]}
        )
        assert bad.status_code == 400
        assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    frame = pd.DataFrame(X)
    assert tracklane.pyfunc.load_model(str(folder)).predict(frame).tolist() == expected["predictions"]
