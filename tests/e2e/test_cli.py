"""End to end: the installed ``tracklane`` console script as a child process, called by grpcurl.

grpcurl is a generic gRPC client nobody here wrote: it sees the services only through server
reflection, so these tests also prove that a non-Python client can use Tracklane with no .proto files.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import create_postgres_database, drop_postgres_database, find_executable
from tests.servers import ServerProcess, clean_env, start_server, tracklane_executable
from tracklane_server.settings import SETTINGS

TRACKLANE_SERVICES = {
    "tracklane.v1.TrackingService",
    "tracklane.v1.ArtifactService",
    "tracklane.v1.RegistryService",
}
REFLECTION_SERVICES = {"grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}


# -- helpers -------------------------------------------------------------------------------------------


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Runs ``tracklane ARGS...`` to completion; fails the test if it is still running after ``timeout``."""
    try:
        return subprocess.run(
            [tracklane_executable(), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=clean_env(env),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"`tracklane {' '.join(args)}` still running after {timeout:.0f} s; stderr: {exc.stderr!r}"
        )


def snake_keys(value: Any) -> Any:
    """grpcurl prints JSON field names in lowerCamelCase; the proto names them in snake_case."""
    if isinstance(value, dict):
        return {
            "".join("_" + c.lower() if c.isupper() else c for c in k): snake_keys(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


class Grpcurl:
    """grpcurl against one server, plaintext."""

    def __init__(self, executable: str, address: str) -> None:
        self.executable = executable
        self.address = address

    def run(self, *args: str, data: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [self.executable, "-plaintext", "-max-time", "15"]
        if data is not None:
            argv += ["-d", json.dumps(data)]
        return subprocess.run(
            [*argv, self.address, *args], capture_output=True, text=True, timeout=30, check=False
        )

    def ok(self, *args: str, data: dict[str, Any] | None = None) -> str:
        result = self.run(*args, data=data)
        assert result.returncode == 0, (
            f"grpcurl {' '.join(args)} failed ({result.returncode}): {result.stderr}"
        )
        return result.stdout

    def call(self, method: str, data: dict[str, Any]) -> Any:
        """Calls a unary method and returns its response as JSON with snake_case keys."""
        return snake_keys(json.loads(self.ok(method, data=data)))


@pytest.fixture(scope="session")
def grpcurl_executable() -> str:
    return find_executable(
        "grpcurl", "go install github.com/fullstorydev/grpcurl/cmd/grpcurl (.ci/tools.sh pins it)"
    )


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server on the embedded default (SQLite + local artifacts), shared by the grpcurl tests."""
    base = tmp_path_factory.mktemp("embedded")
    with start_server(data_dir=base / "data", log_dir=base) as server:
        yield server
        server.terminate()


@pytest.fixture
def grpcurl(grpcurl_executable: str, embedded_server: ServerProcess) -> Grpcurl:
    return Grpcurl(grpcurl_executable, embedded_server.address)


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The contract for a bad setting: non-zero exit, one `tracklane: error:` line, no traceback."""
    assert result.returncode > 0, f"exit code {result.returncode}, stderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith("tracklane: error:"), lines[0]
    return lines[0]


# -- starting ------------------------------------------------------------------------------------------


def test_starts_on_embedded_default(tmp_path: Path) -> None:
    # How fast (target < 3 s) is measured by bench/startup.py, not asserted here.
    data_dir = tmp_path / "new-data-dir"  # does not exist yet: the server creates it
    with start_server(data_dir=data_dir, log_dir=tmp_path) as server:
        assert server.host == "127.0.0.1"
        assert server.port != 0, "the log line must name the real port, not the requested 0"
        assert len(server.listening_lines()) == 1, server.log
        with socket.create_connection((server.host, server.port), timeout=5):
            pass  # the port in the log line is the one really listening
        assert (data_dir / "tracklane.db").is_file(), "the embedded default keeps SQLite in the data folder"
        assert server.terminate() == 0, server.log
    assert len(server.listening_lines()) == 1, server.log


def test_reflection_lists_every_service(grpcurl: Grpcurl) -> None:
    services = set(grpcurl.ok("list").split())
    assert services >= TRACKLANE_SERVICES | {"grpc.health.v1.Health"}
    assert services & REFLECTION_SERVICES, f"no reflection service in {sorted(services)}"


def test_health_check_is_serving(grpcurl: Grpcurl) -> None:
    reply = grpcurl.call("grpc.health.v1.Health/Check", {"service": ""})
    assert reply == {"status": "SERVING"}


def test_reflection_describes_the_contract(grpcurl: Grpcurl) -> None:
    described = grpcurl.ok("describe", "tracklane.v1.TrackingService")
    assert "rpc CreateExperiment" in described
    assert "rpc StreamMetrics ( stream .tracklane.v1.StreamMetricsRequest )" in described
    request = grpcurl.ok("describe", "tracklane.v1.CreateExperimentRequest")
    assert "string name = 1;" in request


def test_create_and_get_experiment_with_grpcurl(grpcurl: Grpcurl, embedded_server: ServerProcess) -> None:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    created = grpcurl.call("tracklane.v1.TrackingService/CreateExperiment", {"name": name})["experiment"]
    experiment_id = created["experiment_id"]
    assert experiment_id
    assert created["name"] == name

    got = grpcurl.call("tracklane.v1.TrackingService/GetExperiment", {"experiment_id": experiment_id})
    assert got["experiment"]["experiment_id"] == experiment_id
    assert got["experiment"]["name"] == name
    assert got["experiment"]["artifact_location"] == created["artifact_location"]
    assert created["artifact_location"].endswith(experiment_id), created["artifact_location"]

    again = grpcurl.run("tracklane.v1.TrackingService/CreateExperiment", data={"name": name})
    assert again.returncode != 0
    assert "AlreadyExists" in again.stderr, again.stderr

    missing = grpcurl.run("tracklane.v1.TrackingService/GetExperiment", data={"experiment_id": "no-such-id"})
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr, missing.stderr


# -- configuration -------------------------------------------------------------------------------------


def test_help_documents_every_setting() -> None:
    result = run_cli("server", "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    for setting in SETTINGS:
        assert setting.flag in result.stdout, f"{setting.flag} missing from --help"
        assert setting.env in result.stdout, f"{setting.env} missing from --help"


def test_db_upgrade_help_names_the_backend_flag() -> None:
    result = run_cli("db", "upgrade", "--help")
    assert result.returncode == 0, result.stderr
    assert "--backend-store-uri" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "mentions"),
    [
        pytest.param(["--bind", "nonsense"], {}, ("bind",), id="bind-not-host-port"),
        pytest.param(["--bind", "127.0.0.1:70000"], {}, ("bind",), id="bind-port-out-of-range"),
        pytest.param([], {"TRACKLANE_BIND": "nonsense"}, ("bind",), id="bind-from-env"),
        pytest.param(["--http-bind", "nonsense"], {}, ("http-bind",), id="http-bind-not-host-port"),
        pytest.param([], {"TRACKLANE_HTTP_BIND": "127.0.0.1:99999"}, ("http-bind",), id="http-bind-from-env"),
        pytest.param(
            ["--http-bind", "0.0.0.0:0"], {}, ("http-bind", "auth"), id="http-bind-public-without-auth"
        ),
        pytest.param(
            ["--backend-store-uri", "mysql://x"], {}, ("mysql", "backend-store-uri"), id="backend-unsupported"
        ),
        pytest.param(
            ["--backend-store-uri", "postgresql+psycopg://x:s3cret-pw@127.0.0.1:1/nope"],
            {},
            ("127.0.0.1", "postgres", "database", "backend"),
            id="backend-unreachable",
        ),
        pytest.param(["--artifact-root", "ftp://host/x"], {}, ("artifact",), id="artifact-root-unsupported"),
        pytest.param(["--workers", "0"], {}, ("workers",), id="workers-zero"),
        pytest.param(["--threads", "many"], {}, ("threads",), id="threads-not-a-number"),
    ],
)
def test_bad_setting_is_one_error_line(
    tmp_path: Path, args: list[str], env: dict[str, str], mentions: tuple[str, ...]
) -> None:
    bind = [] if "--bind" in args or "TRACKLANE_BIND" in env else ["--bind", "127.0.0.1:0"]
    bind += [] if "--http-bind" in args or "TRACKLANE_HTTP_BIND" in env else ["--http-bind", "127.0.0.1:0"]
    result = run_cli("server", "--data-dir", str(tmp_path / "data"), *bind, *args, env=env, timeout=30)
    line = assert_one_error_line(result)
    assert any(word in line.lower() for word in mentions), f"{line!r} should mention one of {mentions}"
    assert "s3cret-pw" not in result.stderr, "the database password must not be printed"


def test_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as taken:  # no SO_REUSEPORT, so the server cannot share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "server",
            "--data-dir",
            str(tmp_path / "data"),
            "--bind",
            f"127.0.0.1:{port}",
            "--http-bind",
            "127.0.0.1:0",
            timeout=30,
        )
    line = assert_one_error_line(result)
    assert str(port) in line


# -- stopping ------------------------------------------------------------------------------------------


def test_sigterm_stops_an_idle_server_with_exit_0(tmp_path: Path) -> None:
    grace = 5.0
    with start_server("--shutdown-grace-seconds", str(grace), data_dir=tmp_path / "data") as server:
        started = time.monotonic()
        code = server.terminate(timeout=grace + 10)
        took = time.monotonic() - started
    assert code == 0, server.log
    assert took < grace, f"an idle server took {took:.1f} s to stop"
    assert "Traceback" not in server.log, server.log
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((server.host, server.port), timeout=2),
    ):
        pass


def test_sigterm_reports_not_serving_then_exits_0_within_the_grace_period(tmp_path: Path) -> None:
    grace = 2.0
    with (
        start_server("--shutdown-grace-seconds", str(grace), data_dir=tmp_path / "data") as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        # A health Watch is a stream that stays open until the server ends it: an in-flight call.
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
        updates = iter(watch)
        assert next(updates).status == health_pb2.HealthCheckResponse.SERVING
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert next(updates).status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as ended:
            next(updates)
        cut_after = time.monotonic() - started
        code = server.wait(timeout=60)
    assert code == 0, server.log
    # The server cut the call once the grace period was over (UNAVAILABLE), not the call's own
    # 60 s deadline (DEADLINE_EXCEEDED). No upper bound in seconds: on a busy machine the process
    # takes seconds more to exit (interpreter teardown), which is not what this tests.
    assert ended.value.code() is grpc.StatusCode.UNAVAILABLE, server.log
    assert cut_after >= grace, f"the in-flight call was cut after {cut_after:.1f} s, before the grace period"


@pytest.mark.services
def test_db_upgrade_on_fresh_postgres_then_serve(
    postgres_admin_uri: str, grpcurl_executable: str, tmp_path: Path
) -> None:
    uri = create_postgres_database(postgres_admin_uri)
    try:
        upgraded = run_cli("db", "upgrade", "--backend-store-uri", uri)
        assert upgraded.returncode == 0, upgraded.stderr
        assert "Traceback" not in upgraded.stderr

        engine = sa.create_engine(uri)
        try:
            tables = set(sa.inspect(engine).get_table_names())
            with engine.connect() as conn:
                versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        finally:
            engine.dispose()
        assert "alembic_version" in tables
        assert len(tables) > 1, f"only {tables} after db upgrade"
        assert len(versions) == 1

        # Idempotent, and the variable works as well as the flag.
        again = run_cli("db", "upgrade", env={"TRACKLANE_BACKEND_STORE_URI": uri})
        assert again.returncode == 0, again.stderr

        # The schema `db upgrade` made is all a server needs.
        with start_server(
            "--backend-store-uri", uri, "--auto-migrate", "false", data_dir=tmp_path / "data"
        ) as server:
            grpcurl = Grpcurl(grpcurl_executable, server.address)
            name = f"e2e-pg-{uuid.uuid4().hex[:8]}"
            created = grpcurl.call("tracklane.v1.TrackingService/CreateExperiment", {"name": name})
            experiment_id = created["experiment"]["experiment_id"]
            got = grpcurl.call("tracklane.v1.TrackingService/GetExperiment", {"experiment_id": experiment_id})
            assert got["experiment"]["name"] == name
            assert server.terminate() == 0, server.log
        assert not (tmp_path / "data" / "tracklane.db").exists(), "the server used SQLite, not PostgreSQL"
    finally:
        drop_postgres_database(postgres_admin_uri, uri)


def test_servers_here_ignore_the_callers_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own TRACKLANE_BACKEND_STORE_URI must not redirect the servers these tests start.
    monkeypatch.setenv("TRACKLANE_BACKEND_STORE_URI", "postgresql+psycopg://leak@127.0.0.1:1/leak")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "leak")
    env = clean_env({"TRACKLANE_BIND": "127.0.0.1:0"})
    assert "TRACKLANE_BACKEND_STORE_URI" not in env
    assert "AWS_ACCESS_KEY_ID" not in env
    assert env["TRACKLANE_BIND"] == "127.0.0.1:0"
