"""`tracklane models serve` as a child process, and the models the serving tests score.

with ModelServer(["-m", folder]) as server:   # REST on a free port, OIP gRPC on another
    httpx.post(server.url + "/invocations", ...)
    server.terminate()                        # SIGTERM: drains, exits 0
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

import tracklane
from tests.servers import free_port
from tracklane.models import infer_signature

BANNER = re.compile(r"on http://(\S+):(\d+)(?:, OIP gRPC on (\S+):(\d+))?, (\d+) worker")
IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
START_TIMEOUT = 240.0  # loading scikit-learn on a loaded 2-core machine takes seconds per worker


def tracklane_command() -> list[str]:
    """The `tracklane` command of the interpreter running the tests."""
    return [sys.executable, "-m", "tracklane_server"]


class ModelServer:
    """A running `tracklane models serve`; killed on exit if still running."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        grpc: bool = True,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        timeout: float = START_TIMEOUT,
    ) -> None:
        self.args = list(args)
        self.grpc_port = free_port() if grpc else 0
        self.env = {**os.environ, **(env or {})}
        self.timeout = timeout
        self.log_path = (
            log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
        ) / f"serve-{os.getpid()}-{id(self)}.log"
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.grpc_target = ""
        self.workers = 0

    def start(self) -> ModelServer:
        """Starts the server; returns once it printed where it serves."""
        self.start_async()
        return self.wait_started()

    def start_async(self) -> None:
        """Starts the process without waiting (start several, then ``wait_started`` each)."""
        cmd = [
            *tracklane_command(),
            "models",
            "serve",
            "-p",
            "0",
            "--grpc-port",
            str(self.grpc_port),
            *self.args,
        ]
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, text=True, env=self.env)
        ready = threading.Event()

        def read() -> None:
            assert self.proc is not None
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                match = BANNER.search(line)
                if match:
                    self.url = f"http://{match.group(1)}:{match.group(2)}"
                    if match.group(3):
                        self.grpc_target = f"{match.group(3)}:{match.group(4)}"
                    self.workers = int(match.group(5))
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        self._ready = ready
        self._cmd = cmd

    def wait_started(self) -> ModelServer:
        """Waits for the line saying where it serves."""
        assert self.proc is not None
        deadline = time.monotonic() + self.timeout
        while not self._ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(
                    f"model server did not start: {' '.join(self._cmd)}\n{self.log()[-4000:]}"
                )
        return self

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM; waits for the exit and returns its status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._close_files()
        return code

    def _close_files(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if hasattr(self, "_log"):
            self._log.close()

    def kill(self) -> None:
        """SIGKILL to the supervisor and its workers, if they still run."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_files()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(60)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_files()


def iris() -> tuple[pd.DataFrame, pd.Series]:
    """The iris table and its labels."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def fit_iris(offset: int = 0) -> Any:
    """A scaled logistic regression on iris; ``offset`` shifts the labels so versions differ."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris()
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y + offset)


def save_iris(path: Path, offset: int = 0) -> Any:
    """Saves ``fit_iris(offset)`` as a model folder with its signature; returns the estimator."""
    X, _ = iris()
    clf = fit_iris(offset)
    tracklane.sklearn.save_model(
        clf, path, signature=infer_signature(X, clf.predict(X)), input_example=X.head(3)
    )
    return clf


ECHO_SCRIPT = """
import numpy as np
import pandas as pd

import tracklane


class Echo(tracklane.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        n = (params or {}).get("n", 0)
        return pd.DataFrame(
            {
                "name": model_input["name"].str.upper(),
                "value": model_input["value"] * 2.0,
                "n": np.full(len(model_input), n, dtype=np.int64),
            }
        )


tracklane.models.set_model(Echo())
"""


def echo_input() -> pd.DataFrame:
    """An input of the echo model."""
    return pd.DataFrame({"name": ["a", "bé", "c"], "value": [1.5, 2.0, -3.25]})


def save_echo(path: Path) -> None:
    """Saves the echo model (from code: name upper-cased, value doubled, params' n) with a signature
    of a string and a double column."""
    from tracklane.models import ModelSignature
    from tracklane.models.schema import ColSpec, DataType, Schema

    signature = ModelSignature(
        Schema([ColSpec(DataType.string, "name"), ColSpec(DataType.double, "value")]),
        Schema(
            [ColSpec(DataType.string, "name"), ColSpec(DataType.double, "value"), ColSpec(DataType.long, "n")]
        ),
    )
    script = path.parent / f"{path.name}_code.py"
    script.write_text(ECHO_SCRIPT)
    tracklane.pyfunc.save_model(path, python_model=str(script), signature=signature)


TRITON_VENV = Path.home() / ".cache" / "tracklane-ci" / "tritonclient-venv"
TRITON_SPEC = ["tritonclient[grpc]==2.73.0", "numpy"]


def triton_python() -> str:
    """The interpreter of a virtualenv with tritonclient[grpc] (it pins its own protobuf), made once.

    Cached in ~/.cache/tracklane-ci/tritonclient-venv, remade when the pinned spec changes.
    """
    from tracklane.serving.environments import uv_binary

    python = TRITON_VENV / "bin" / "python"
    stamp = TRITON_VENV / ".tracklane-spec"
    if python.exists() and stamp.exists() and stamp.read_text() == " ".join(TRITON_SPEC):
        return str(python)
    uv = uv_binary()
    subprocess.run([uv, "venv", "--quiet", "--clear", str(TRITON_VENV)], check=True, timeout=300)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), *TRITON_SPEC], check=True, timeout=600
    )
    stamp.write_text(" ".join(TRITON_SPEC))
    return str(python)
