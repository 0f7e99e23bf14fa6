"""Clients in four languages against one real server: what one writes, another reads exactly.

- Go streams 100,000 points into a run; Python reads the history back point for point.
- TypeScript uploads an artifact; Java downloads it byte-identical.
- Python registers a model version and sets an alias; Go resolves the alias to that version.
- The same over mutual TLS with auth on: each language finds its token, CA and client certificate
  in the TRACKLANE_TRACKING_* variables, and a wrong token is refused.

Each language runs through a small driver (client/go/cmd/tracklane-polyglot,
client/typescript/test/polyglot-cli.ts, client/java/src/test/java/.../PolyglotCli.java) built here
with the language's own toolchain. A missing toolchain skips its tests, or fails them when
TRACKLANE_REQUIRE_TOOLCHAINS=1.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tracklane
from tests.auth_helpers import BOOTSTRAP_TOKEN
from tests.servers import ServerProcess, start_server
from tests.tls_helpers import Pki, make_pki

ROOT = Path(__file__).resolve().parents[2]
GO_DIR = ROOT / "client" / "go"
TS_DIR = ROOT / "client" / "typescript"
JAVA_DIR = ROOT / "client" / "java"
BUILD_TIMEOUT = 600
RUN_TIMEOUT = 300
T0_MS = 1_700_000_000_000

Driver = Callable[..., dict[str, Any]]


def require_toolchain(*commands: str) -> None:
    """Skips (or fails, under TRACKLANE_REQUIRE_TOOLCHAINS=1) when a command is not on PATH."""
    missing = [c for c in commands if shutil.which(c) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not on PATH"
    if os.environ.get("TRACKLANE_REQUIRE_TOOLCHAINS") == "1":
        pytest.fail(f"{reason} (TRACKLANE_REQUIRE_TOOLCHAINS=1)")
    pytest.skip(reason)


def run(args: list[str], cwd: Path, timeout: float = RUN_TIMEOUT, env: dict[str, str] | None = None) -> str:
    """Runs a command (with ``env`` added to this process's); the assertion carries its output."""
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def is_stale(output: Path, *sources: Path) -> bool:
    """True when ``output`` is missing or older than any file under ``sources`` (skips a rebuild
    when the language's own test run, e.g. in .ci/run, already built it)."""
    if not output.exists():
        return True
    built = output.stat().st_mtime
    return any(
        f.stat().st_mtime > built
        for src in sources
        for f in ([src] if src.is_file() else src.rglob("*"))
        if f.is_file()
    )


def last_json(out: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return value


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(data_dir=tmp_path_factory.mktemp("polyglot-data")) as proc:
        yield proc
        proc.terminate()


@pytest.fixture(scope="module")
def py_client(server: ServerProcess) -> Iterator[tracklane.Client]:
    client = tracklane.Client(f"grpc://{server.address}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def go_driver(tmp_path_factory: pytest.TempPathFactory) -> Driver:
    require_toolchain("go")
    binary = tmp_path_factory.mktemp("go") / "tracklane-polyglot"
    run(["go", "build", "-o", str(binary), "./cmd/tracklane-polyglot"], GO_DIR, BUILD_TIMEOUT)

    def drive(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        return last_json(run([str(binary), *args], GO_DIR, env=env))

    return drive


@pytest.fixture(scope="module")
def ts_driver() -> Driver:
    require_toolchain("node", "npm")
    if not (TS_DIR / "node_modules" / ".bin" / "tsc").exists():
        run(["npm", "ci", "--no-audit", "--no-fund"], TS_DIR, BUILD_TIMEOUT)
    if is_stale(TS_DIR / "dist" / "test" / "polyglot-cli.js", TS_DIR / "src", TS_DIR / "test"):
        run(["npm", "run", "build"], TS_DIR, BUILD_TIMEOUT)

    def drive(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        return last_json(run(["node", "dist/test/polyglot-cli.js", *args], TS_DIR, env=env))

    return drive


@pytest.fixture(scope="module")
def java_driver(tmp_path_factory: pytest.TempPathFactory) -> Driver:
    require_toolchain("java", "mvn")
    classpath_file = JAVA_DIR / "target" / "polyglot-classpath.txt"
    if is_stale(classpath_file, JAVA_DIR / "src", JAVA_DIR / "pom.xml", ROOT / "proto" / "tracklane"):
        # process-test-classes: compiles, and writes the classpath file (see pom.xml).
        run(["mvn", "-B", "-q", "process-test-classes"], JAVA_DIR, BUILD_TIMEOUT)
    target = JAVA_DIR / "target"
    classpath = os.pathsep.join(
        [str(target / "test-classes"), str(target / "classes"), classpath_file.read_text()]
    )

    def drive(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        command = ["java", "-cp", classpath, "org.tracklane.client.PolyglotCli", *args]
        return last_json(run(command, JAVA_DIR, env=env))

    return drive


def test_go_streams_points_python_reads_them_back_exactly(
    go_driver: Driver, py_client: tracklane.Client, server: ServerProcess
) -> None:
    run_id = py_client.create_run(run_name="go-stream").info.run_id
    n = 100_000
    out = go_driver("stream", "-addr", server.address, "-run", run_id, "-key", "loss", "-points", str(n))
    assert out["acked"] == n, out
    assert out["written"] == n, out

    history = py_client.get_metric_history(run_id, "loss")
    assert list(history.steps) == list(range(n))
    # i * 0.001 is one correctly rounded multiplication in both languages: equal bits expected.
    assert list(history.values) == [i * 0.001 for i in range(n)]
    assert list(history.timestamps) == [T0_MS + i for i in range(n)]


def test_typescript_uploads_java_downloads_byte_identical(
    ts_driver: Driver, java_driver: Driver, py_client: tracklane.Client, server: ServerProcess, tmp_path: Path
) -> None:
    run_id = py_client.create_run(run_name="ts-to-java").info.run_id
    data = secrets.token_bytes(2 * 1024 * 1024 + 4321)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    uploaded = ts_driver("upload", server.address, run_id, "data/blob.bin", str(source))
    assert uploaded["size"] == len(data)

    target = tmp_path / "download.bin"
    downloaded = java_driver("download", server.address, run_id, "data/blob.bin", str(target))
    assert downloaded == {"bytes": len(data)}
    assert target.read_bytes() == data


def test_python_registers_a_version_go_resolves_it_by_alias(
    go_driver: Driver, py_client: tracklane.Client, server: ServerProcess
) -> None:
    run_id = py_client.create_run(run_name="py-registers").info.run_id
    name = f"polyglot-{secrets.token_hex(4)}"
    py_client.create_registered_model(name)
    py_client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    second = py_client.create_model_version(name, f"runs:/{run_id}/model-2", run_id=run_id)
    py_client.set_registered_model_alias(name, "champion", second.version)

    resolved = go_driver("alias", "-addr", server.address, "-model", name, "-alias", "champion")
    assert resolved == {"name": name, "version": 2, "run_id": run_id, "source": f"runs:/{run_id}/model-2"}


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Pki]]:
    """Mutual TLS and auth on; the admin's token is BOOTSTRAP_TOKEN."""
    pki = make_pki(tmp_path_factory.mktemp("polyglot-pki"))
    with start_server(
        "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
        "--tls-client-ca-file", str(pki.ca), "--auth", "true",
        data_dir=tmp_path_factory.mktemp("polyglot-secure"),
        env={"TRACKLANE_AUTH_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN},
    ) as proc:  # fmt: skip
        yield proc, pki
        proc.terminate()


def test_every_language_over_mutual_tls_with_a_token(
    go_driver: Driver,
    ts_driver: Driver,
    java_driver: Driver,
    secure_server: tuple[ServerProcess, Pki],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, pki = secure_server
    address = f"grpcs://127.0.0.1:{server.port}"
    env = {
        "TRACKLANE_TRACKING_TOKEN": BOOTSTRAP_TOKEN,
        "TRACKLANE_TRACKING_CA_FILE": str(pki.ca),
        "TRACKLANE_TRACKING_CLIENT_CERT_FILE": str(pki.client_cert),
        "TRACKLANE_TRACKING_CLIENT_KEY_FILE": str(pki.client_key),
    }
    for name, value in env.items():  # Python reads the same variables
        monkeypatch.setenv(name, value)
    with tracklane.Client(address) as py:
        run_id = py.create_run(run_name="secure").info.run_id
        out = go_driver("stream", "-addr", address, "-run", run_id, "-points", "1000", env=env)
        assert out["acked"] == 1000, out
        assert list(py.get_metric_history(run_id, "loss").steps) == list(range(1000))

        data = secrets.token_bytes(1024 * 1024 + 7)
        source, target = tmp_path / "up.bin", tmp_path / "down.bin"
        source.write_bytes(data)
        assert ts_driver("upload", address, run_id, "blob.bin", str(source), env=env)["size"] == len(data)
        downloaded = java_driver("download", address, run_id, "blob.bin", str(target), env=env)
        assert downloaded == {"bytes": len(data)}
        assert target.read_bytes() == data

    # A wrong token gets through TLS but not past authentication, in each language.
    wrong = {**env, "TRACKLANE_TRACKING_TOKEN": "tlk_not-a-token"}
    for driver, args in (
        (go_driver, ("stream", "-addr", address, "-run", run_id, "-points", "10")),
        (ts_driver, ("upload", address, run_id, "other.bin", str(source))),
        (java_driver, ("download", address, run_id, "blob.bin", str(tmp_path / "no.bin"))),
    ):
        with pytest.raises(AssertionError, match=r"(?i)unauthenticated"):
            driver(*args, env=wrong)
