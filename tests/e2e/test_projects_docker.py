"""`tracklane run` of a docker_env project with podman, on both backends: the image is used as it is
(the project mounted, the run's variables passed, docker_env's volumes and environment applied) and
never rebuilt per run; --build-image makes one image with the project inside and reuses it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import tracklane
from tests.conftest import REQUIRE_SERVICES
from tests.container_helpers import base_image, podman_env, tools_missing
from tests.projects_helpers import run_env, tracklane_run, write_project
from tracklane.testing import LocalServer

ENTRY = """\
import os, pathlib
print("run", os.environ["TRACKLANE_RUN_ID"], os.environ["MLFLOW_RUN_ID"])
print("tracking", os.environ["TRACKLANE_TRACKING_URI"])
print("cwd", os.getcwd(), pathlib.Path("message.txt").read_text().strip())
print("env", os.environ["NEW_VAR"], os.environ["COPIED_VAR"])
print("volume", pathlib.Path("/data/input.txt").read_text().strip())
"""


@pytest.fixture(scope="module")
def image() -> str:
    missing = tools_missing()
    if missing:
        message = f"{', '.join(missing)} not installed: apt-get install podman runc mmdebstrap"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message}; TRACKLANE_REQUIRE_SERVICES=1 requires it")
        pytest.skip(message)
    return base_image()


def _project(tmp_path: Path, image: str) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "input.txt").write_text("from the volume\n")
    return write_project(
        tmp_path / "proj",
        f"""\
        name: Docker Example
        docker_env:
          image: {image}
          volumes: ["{data}:/data"]
          environment: [["NEW_VAR", "new-value"], "COPIED_VAR"]
        entry_points:
          main:
            parameters:
              alpha: {{type: float, default: 0.5}}
            command: "python3 entry.py --alpha {{alpha}}"
        """,
        {"entry.py": ENTRY + "import sys; print('args', sys.argv[1:])\n", "message.txt": "mounted\n"},
    )


def _env(server: LocalServer, tmp_path: Path) -> dict[str, str]:
    return run_env(server.uri, tmp_path / "cache", {**podman_env(), "COPIED_VAR": "copied-value"})


def test_docker_env_image_runs_the_project_mounted(
    image: str, tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path, unique: str
) -> None:
    experiment = client.create_experiment(f"docker-{unique}")
    project = _project(tmp_path, image)
    env = _env(tracking_server, tmp_path)
    image_ids = []
    for alpha in ("0.1", "0.2"):
        done = tracklane_run([str(project), "-P", f"alpha={alpha}", "--experiment-id", experiment], env)
        assert done.returncode == 0, done.stdout + done.stderr
        run_id = next(
            r.info.run_id for r in client.search_runs([experiment]) if r.data.params["alpha"] == alpha
        )
        assert f"run {run_id} {run_id}" in done.stdout
        assert f"tracking {tracking_server.uri}" in done.stdout
        assert "cwd /mlflow/projects/code mounted" in done.stdout
        assert "env new-value copied-value" in done.stdout
        assert "volume from the volume" in done.stdout
        assert f"args ['--alpha', '{alpha}']" in done.stdout
        run = client.get_run(run_id)
        assert run.info.status == tracklane.RunStatus.FINISHED
        assert run.data.tags["mlflow.project.env"] == "docker"
        assert run.data.tags["mlflow.docker.image.uri"] == image
        image_ids.append(run.data.tags["mlflow.docker.image.id"])
        assert "volume from the volume" in client.read_artifact(run_id, "project/output.log").decode()
    assert image_ids[0] == image_ids[1]  # the same image, nothing built

    failing = tracklane_run([str(project), "-P", "alpha=x"], env)
    assert failing.returncode == 2
    assert "'alpha' expects a float" in failing.stderr


def test_build_image_puts_the_project_inside_once(
    image: str, tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path, unique: str
) -> None:
    experiment = client.create_experiment(f"docker-build-{unique}")
    project = _project(tmp_path, image)
    env = _env(tracking_server, tmp_path)
    uris = []
    for _ in range(2):
        done = tracklane_run([str(project), "--build-image", "--experiment-id", experiment], env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "cwd /mlflow/projects/code mounted" in done.stdout
    for run in client.search_runs([experiment]):
        uris.append((run.data.tags["mlflow.docker.image.uri"], run.data.tags["mlflow.docker.image.id"]))
    assert uris[0] == uris[1]  # unchanged project: the same image
    uri = uris[0][0]
    assert uri.startswith("docker-example:")
    inside = subprocess.run(
        ["podman", "run", "--rm", uri, "cat", "/mlflow/projects/code/message.txt"],
        env={**os.environ, **podman_env()},
        capture_output=True,
        text=True,
        check=True,
    )
    assert inside.stdout.strip() == "mounted"  # built in, not mounted
    subprocess.run(
        ["podman", "rmi", "--force", uri],
        env={**os.environ, **podman_env()},
        capture_output=True,
        check=False,
    )
