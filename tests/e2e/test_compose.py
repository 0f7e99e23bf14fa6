"""docker-compose.yml: valid for docker-compose, and wired only through settings the server reads.

No Docker engine is needed: `docker-compose config` validates the file without starting anything.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import require_service
from tracklane_server.settings import env_names, load

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as f:
        parsed = yaml.safe_load(f)
    assert isinstance(parsed, dict)
    return parsed


@pytest.fixture(scope="module")
def server_env(compose: dict[str, Any]) -> dict[str, str]:
    environment = compose["services"]["server"]["environment"]
    if isinstance(environment, list):  # the `- NAME=value` form
        environment = dict(item.split("=", 1) for item in environment)
    return {str(k): str(v) for k, v in environment.items()}


def minio_init_bucket(compose: dict[str, Any]) -> str:
    """The bucket minio-init creates: the last argument of `mc mb`, ALIAS/BUCKET."""
    command = compose["services"]["minio-init"]["command"]
    args = command.split() if isinstance(command, str) else [str(a) for a in command]
    assert "mb" in args, f"minio-init should run `mc mb ...`, runs {args}"
    return args[-1].split("/", 1)[1]


def test_docker_compose_validates_the_file() -> None:
    executable = shutil.which("docker-compose")
    if executable is None:
        require_service("docker-compose", "PATH (apt-get install docker-compose)")
    assert executable is not None
    result = subprocess.run(
        [executable, "-f", str(COMPOSE_FILE), "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", f"warnings from docker-compose config:\n{result.stderr}"


def test_services_are_all_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "minio", "minio-init", "server"}
    server = compose["services"]["server"]
    assert (ROOT / server["build"]["context"] / server["build"]["dockerfile"]).is_file()
    assert server["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "minio": {"condition": "service_healthy"},
        "minio-init": {"condition": "service_completed_successfully"},
    }
    for name in ("postgres", "minio"):
        assert "healthcheck" in compose["services"][name], f"{name} needs a healthcheck for depends_on"


def test_server_reads_every_variable_it_is_given(server_env: dict[str, str]) -> None:
    unknown = {name for name in server_env if name.startswith("TRACKLANE_")} - env_names()
    assert not unknown, f"the server does not read {sorted(unknown)}"
    assert set(server_env) <= env_names(), f"not server settings: {sorted(set(server_env) - env_names())}"


def test_server_settings_load(server_env: dict[str, str]) -> None:
    settings = load({}, environ=server_env)  # raises on a value the server would refuse
    assert settings.host_port == ("0.0.0.0", 50051)


def test_server_port_is_published(compose: dict[str, Any], server_env: dict[str, str]) -> None:
    container_port = server_env["TRACKLANE_BIND"].rpartition(":")[2]
    published = [str(p) for p in compose["services"]["server"]["ports"]]
    assert any(p.endswith(f":{container_port}") for p in published), published
    http_port = server_env["TRACKLANE_HTTP_BIND"].rpartition(":")[2]
    assert any(p.endswith(f":{http_port}") for p in published), published


def test_backend_store_is_the_postgres_service(compose: dict[str, Any], server_env: dict[str, str]) -> None:
    url = sa.make_url(server_env["TRACKLANE_BACKEND_STORE_URI"])
    postgres_env = compose["services"]["postgres"]["environment"]
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port or 5432) == ("postgres", 5432)
    assert url.username == postgres_env["POSTGRES_USER"]
    assert url.password == postgres_env["POSTGRES_PASSWORD"]
    assert url.database == postgres_env["POSTGRES_DB"]


def test_artifact_root_is_the_bucket_minio_init_creates(
    compose: dict[str, Any], server_env: dict[str, str]
) -> None:
    root = urlsplit(server_env["TRACKLANE_ARTIFACT_ROOT"])
    assert root.scheme == "s3"
    assert root.netloc == minio_init_bucket(compose)

    endpoint = urlsplit(server_env["TRACKLANE_S3_ENDPOINT_URL"])
    assert endpoint.hostname == "minio"
    minio_env = compose["services"]["minio"]["environment"]
    assert server_env["TRACKLANE_S3_ACCESS_KEY_ID"] == minio_env["MINIO_ROOT_USER"]
    assert server_env["TRACKLANE_S3_SECRET_ACCESS_KEY"] == minio_env["MINIO_ROOT_PASSWORD"]


def test_minio_init_talks_to_the_minio_service(compose: dict[str, Any]) -> None:
    init = compose["services"]["minio-init"]
    alias = init["command"][-1].split("/", 1)[0]
    host = urlsplit(init["environment"][f"MC_HOST_{alias}"])
    minio_env = compose["services"]["minio"]["environment"]
    assert (host.hostname, host.port) == ("minio", 9000)
    assert (host.username, host.password) == (minio_env["MINIO_ROOT_USER"], minio_env["MINIO_ROOT_PASSWORD"])
