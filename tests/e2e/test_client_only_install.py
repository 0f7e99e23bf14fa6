"""`pip install tracklane` is the client: a fresh virtualenv logs a run without the server's dependencies.

The install resolves grpcio, protobuf, numpy... from the package index (pip's cache makes a rerun
quick); without an index the test is skipped, or fails under TRACKLANE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import tracklane
from tests.conftest import missing
from tests.servers import start_server

REPO = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("sqlalchemy", "alembic", "psycopg", "minio", "starlette", "uvicorn", "connectrpc")


def _client_only_venv(root: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    python = root / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if installed.returncode != 0:
        missing(f"pip could not install the client from the package index: {installed.stderr[-400:]}")
    return python


def test_a_client_only_install_logs_a_run_and_refuses_to_serve(tmp_path: Path) -> None:
    python = _client_only_venv(tmp_path / "venv")
    present = subprocess.run(
        [
            str(python),
            "-c",
            f"import importlib.util as u; print([m for m in {SERVER_ONLY!r} if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert present.stdout.strip() == "[]"

    with start_server(data_dir=tmp_path / "data", http_bind="none") as server:
        script = textwrap.dedent(
            f"""
            import tracklane
            tracklane.set_tracking_uri("grpc://{server.address}")
            with tracklane.start_run(run_name="client-only") as run:
                tracklane.log_param("alpha", 0.5)
                for step in range(100):
                    tracklane.log_metric("loss", 1.0 / (step + 1), step=step)
            print(run.info.run_id)
            """
        )
        logged = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=120)
        assert logged.returncode == 0, logged.stderr
        with tracklane.Client(f"grpc://{server.address}") as client:
            run = client.get_run(logged.stdout.strip())
            history = client.get_metric_history(run.info.run_id, "loss")
    assert (run.info.status, run.info.run_name, run.data.params) == (
        "FINISHED",
        "client-only",
        {"alpha": "0.5"},
    )
    assert list(history.steps) == list(range(100))
    assert history.values[9] == 0.1

    refused = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "tracklane"), "server", "--data-dir", str(tmp_path / "other")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "pip install 'tracklane[server]'" in refused.stderr
    assert "sqlalchemy" in refused.stderr
    assert not (tmp_path / "other").exists()
