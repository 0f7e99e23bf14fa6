"""A container image really built from `generate-dockerfile`'s output (buildah) and scored through.

The base image is made from Debian's packages (tests/image_helpers.py; no registry is needed); the
image installs the model's requirements from PyPI with uv. It is run with podman where podman can
start containers here, else with `buildah run` of the image's own entrypoint.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.image_helpers import base_image, storage_env, tools_missing
from tests.servers import free_port
from tests.serving_helpers import IRIS_COLUMNS, iris, save_iris, tracklane_command
from tracklane.serving.oip import open_inference_pb2 as pb
from tracklane.serving.oip import open_inference_pb2_grpc as pb_grpc

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def base() -> str:
    missing = tools_missing()
    if missing:
        message = f"{', '.join(missing)} not installed: apt-get install buildah podman mmdebstrap"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message}; TRACKLANE_REQUIRE_SERVICES=1 requires it")
        pytest.skip(message)
    return base_image()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.timeout(1800)
def test_build_docker_image_serves_the_model(base: str, tmp_path: Path, unique: str) -> None:
    clf = save_iris(tmp_path / "iris")
    env = storage_env()

    # generate-dockerfile: the build context.
    context = tmp_path / "context"
    subprocess.run(
        [
            *tracklane_command(),
            "models",
            "generate-dockerfile",
            "-m",
            str(tmp_path / "iris"),
            "-d",
            str(context),
            "--base-image",
            base,
        ],
        check=True,
        timeout=600,
        env=env,
    )
    dockerfile = (context / "Dockerfile").read_text()
    assert f"FROM {base}" in dockerfile
    assert "USER 10001:10001" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    assert (context / "model" / "MLmodel").exists()
    assert (context / "bin" / "uv").exists()
    assert [w.name.split("-")[0] for w in (context / "wheels").glob("*.whl")] == ["tracklane"]
    requirements = (context / "requirements.txt").read_text().splitlines()
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert not any(r.startswith("tracklane") for r in requirements)

    # build-docker: the same context, built.
    image = f"localhost/tracklane-test-iris:{unique}"
    started = time.monotonic()
    subprocess.run(
        [
            *tracklane_command(),
            "models",
            "build-docker",
            "-m",
            str(tmp_path / "iris"),
            "-n",
            image,
            "--base-image",
            base,
        ],
        check=True,
        timeout=900,
        env=env,
    )
    build_seconds = time.monotonic() - started
    try:
        inspected = json.loads(
            subprocess.run(
                ["buildah", "inspect", "--type", "image", image],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        config = inspected["Docker"]["config"]
        assert config["User"] == "10001:10001"
        assert "http://127.0.0.1:8080/ping" in " ".join(config["Healthcheck"]["Test"])
        assert set(config["ExposedPorts"]) == {"8080/tcp", "8081/tcp"}
        entrypoint = config["Entrypoint"]
        assert entrypoint[1:3] == ["models", "serve"]
        size = subprocess.run(
            ["buildah", "images", "--format", "{{.Size}}", image],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"image {image}: {size}, built in {build_seconds:.0f} s")
        _score_through_the_image(image, config, env, clf)
    finally:
        subprocess.run(["buildah", "rmi", "--force", image], env=env, capture_output=True, check=False)


def _podman_runs(image: str, env: dict[str, str]) -> bool:
    if shutil.which("podman") is None:
        return False
    probe = subprocess.run(
        ["podman", "run", "--rm", "--network", "host", "--ulimit", "host", "--entrypoint", "id", image, "-u"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.strip() == "10001"


def _score_through_the_image(image: str, config: dict[str, Any], env: dict[str, str], clf: object) -> None:
    entrypoint = config["Entrypoint"]
    use_defaults = _port_free(8080) and _port_free(8081)  # then the HEALTHCHECK's own URL can be tried
    rest, oip = (8080, 8081) if use_defaults else (free_port(), free_port())
    extra = [] if use_defaults else ["--port", str(rest), "--grpc-port", str(oip)]
    container = subprocess.run(
        ["buildah", "from", image], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    proc = None
    lines: list[str] = []
    try:
        if _podman_runs(image, env):
            cmd = ["podman", "run", "--rm", "--network", "host", "--ulimit", "host", image, *extra]
        else:
            # podman cannot start containers here (no rlimits, no systemd): the image's entrypoint
            # in a `buildah run` container instead.
            cmd = ["buildah", "run", container, "--", *entrypoint, *extra]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()

        def read() -> None:
            assert proc is not None
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if "tracklane models serve:" in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        assert ready.wait(300), "".join(lines)[-3000:]
        X, _ = iris()
        reply = httpx.post(
            f"http://127.0.0.1:{rest}/invocations",
            timeout=60,
            json={"dataframe_split": {"columns": IRIS_COLUMNS, "data": X.to_numpy().tolist()}},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"predictions": clf.predict(X).tolist()}  # type: ignore[attr-defined]
        with grpc.insecure_channel(f"127.0.0.1:{oip}") as channel:
            metadata = pb_grpc.GRPCInferenceServiceStub(channel).ModelMetadata(
                pb.ModelMetadataRequest(name="iris")
            )
        assert [t.name for t in metadata.inputs] == IRIS_COLUMNS
        whoami = subprocess.run(
            ["buildah", "run", container, "--", "id", "-u"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert whoami.stdout.strip() == "10001"
        if use_defaults:
            probe = config["Healthcheck"]["Test"][1:]
            assert (
                subprocess.run(["buildah", "run", container, "--", *probe], env=env, check=False).returncode
                == 0
            )
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        subprocess.run(["buildah", "rm", container], env=env, capture_output=True, check=False)
