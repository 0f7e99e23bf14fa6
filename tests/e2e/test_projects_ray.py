"""`tracklane run --backend ray`: the same MLflow project as a job on a real Ray head (started here,
bound to 127.0.0.1), with the same run, tags, status and logs, on both backends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracklane
import tracklane.projects
from tests.conftest import REQUIRE_SERVICES
from tests.projects_helpers import run_env, tracklane_run, write_docs_project, write_project
from tests.servers import free_port
from tracklane.testing import LocalServer


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A single-node Ray head on loopback only; its dashboard (job API) address."""
    import shutil
    import sys

    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists() and shutil.which("ray") is None:
        message = "Ray is not installed: pip install -e '.[ray]'"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message}; TRACKLANE_REQUIRE_SERVICES=1 requires it")
        pytest.skip(message)
    temp = tmp_path_factory.mktemp("ray")
    dashboard = free_port()
    # Without it Ray swaps 127.0.0.1 for the machine's address and listens on every interface.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    log = open(temp / "head.log", "w")  # noqa: SIM115 - closed at teardown
    head = subprocess.Popen(
        [
            str(ray_cli) if ray_cli.exists() else "ray", "start", "--head", "--block",
            "--node-ip-address", "127.0.0.1", "--port", str(free_port()),
            "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
            "--dashboard-agent-listen-port", str(free_port()), "--num-cpus", "2",
            "--include-dashboard", "true", "--disable-usage-stats", "--temp-dir", str(temp),
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{address}/api/version", timeout=2).close()
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((temp / "head.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield address
    finally:
        # Every Ray process of this head is in its process group.
        os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(30)
        log.close()


def test_docs_project_runs_as_a_ray_job(
    ray_head: str, tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path, unique: str
) -> None:
    experiment = client.create_experiment(f"ray-{unique}")
    project = write_docs_project(tmp_path / "proj")
    config = tmp_path / "ray.json"
    config.write_text(json.dumps({"address": ray_head}))
    done = tracklane_run(
        [str(project), "-P", f"data_file={project / 'data.csv'}", "--backend", "ray", "--backend-config",
         str(config), "--env-manager", "local", "--experiment-id", experiment],
        run_env(tracking_server.uri, tmp_path / "cache"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [found] = client.search_runs([experiment])
    run = client.get_run(found.info.run_id)
    assert f"attached to {run.info.run_id}" in done.stdout  # the job's log, streamed here
    assert run.info.status == tracklane.RunStatus.FINISHED
    assert run.data.params == {"data_file": str(project / "data.csv"), "regularization": "0.1"}
    assert run.data.metrics["rows"] == 3.0
    tags = run.data.tags
    assert tags["mlflow.project.backend"] == "ray"
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["tracklane.ray.jobId"] == f"tracklane-{run.info.run_id}"
    assert tags["trained.by"] == "train.py"
    log = client.read_artifact(run.info.run_id, "project/output.log").decode()
    assert f"attached to {run.info.run_id}" in log
    from ray.job_submission import JobSubmissionClient

    assert str(JobSubmissionClient(ray_head).get_job_status(tags["tracklane.ray.jobId"])).endswith(
        "SUCCEEDED"
    )


def test_failed_and_cancelled_ray_jobs(
    ray_head: str, tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path, unique: str
) -> None:
    experiment = client.create_experiment(f"ray-{unique}")
    failing = write_project(
        tmp_path / "bad", "name: bad\nentry_points:\n  main:\n    command: 'echo nope; exit 4'\n"
    )
    done = tracklane_run(
        [str(failing), "--backend", "ray", "--backend-config", json.dumps({"address": ray_head}),
         "--env-manager", "local", "--experiment-id", experiment],
        run_env(tracking_server.uri, tmp_path / "cache"),
    )  # fmt: skip
    assert done.returncode == 1
    [failed] = client.search_runs([experiment])
    assert failed.info.status == tracklane.RunStatus.FAILED

    slow = write_project(
        tmp_path / "slow", "name: slow\nentry_points:\n  main:\n    command: 'echo up; sleep 300'\n"
    )
    submitted = tracklane.projects.run(
        str(slow),
        backend="ray",
        backend_config={"address": ray_head},
        env_manager="local",
        experiment_id=experiment,
        synchronous=False,
        tracking_uri=tracking_server.uri,
        echo=False,
    )
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(ray_head)
    job_id = f"tracklane-{submitted.run_id}"
    deadline = time.monotonic() + 120
    while "up" not in jobs.get_job_logs(job_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    submitted.cancel()
    assert submitted.get_status() == "KILLED"
    assert client.get_run(submitted.run_id).info.status == tracklane.RunStatus.KILLED
    assert str(jobs.get_job_status(job_id)).endswith("STOPPED")
