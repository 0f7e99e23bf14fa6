"""The stock ``mlflow`` client, in its own virtualenv, run against a Tracklane server.

The virtualenv (mlflow 3.17.2, scikit-learn, optuna, optuna-integration) is made by .ci/run;
TRACKLANE_MLFLOW_PYTHON names another interpreter. Without it the tests skip, or fail under
TRACKLANE_REQUIRE_TOOLCHAINS=1 (as CI runs them). Scripts in mlflow_scripts/ are plain MLflow
code: they never import tracklane, and the interpreter's environment holds none of it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).parent / "mlflow_scripts"
DEFAULT_PYTHON = Path.home() / ".cache" / "tracklane-bench" / "mlflow-venv" / "bin" / "python"


def mlflow_python() -> Path:
    """The virtualenv's interpreter; skips (fails under TRACKLANE_REQUIRE_TOOLCHAINS=1) without one."""
    python = Path(os.environ.get("TRACKLANE_MLFLOW_PYTHON", DEFAULT_PYTHON))
    if not python.exists():
        reason = f"no mlflow virtualenv at {python} (.ci/run makes it; or set TRACKLANE_MLFLOW_PYTHON)"
        if os.environ.get("TRACKLANE_REQUIRE_TOOLCHAINS") == "1":
            pytest.fail(f"{reason} (TRACKLANE_REQUIRE_TOOLCHAINS=1)")
        pytest.skip(reason)
    return python


def run_script(
    python: Path, script: str, http_url: str, *args: str, env: dict[str, str] | None = None
) -> Any:
    """Runs ``mlflow_scripts/<script>`` with MLFLOW_TRACKING_URI=http_url; the JSON of its last line."""
    return json.loads(run_text(python, SCRIPTS / script, http_url, *args, env=env).splitlines()[-1])


def run_text(python: Path, script: Path, http_url: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Runs a script of MLflow code with MLFLOW_TRACKING_URI=http_url; what it printed."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLANE_", "PYTHON", "VIRTUAL_ENV"))}
    clean.update(
        MLFLOW_TRACKING_URI=http_url,
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        GIT_PYTHON_REFRESH="quiet",
        **(env or {}),
    )
    done = subprocess.run(
        [str(python), str(script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean,
        cwd=script.parent,
    )
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stdout.strip()
