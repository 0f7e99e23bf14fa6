"""Model servers for the serving protocol tests: one iris and one echo server for this folder's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving_helpers import ModelServer, save_echo, save_iris

pytest.importorskip("sklearn")
pytest.importorskip("starlette")


@pytest.fixture(scope="package")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """An iris model folder and its estimator."""
    folder = tmp_path_factory.mktemp("serving") / "iris"
    return folder, save_iris(folder)


@pytest.fixture(scope="package")
def echo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The echo model's folder (strings and numbers in, a table out)."""
    folder = tmp_path_factory.mktemp("serving") / "echo"
    save_echo(folder)
    return folder


@pytest.fixture(scope="package")
def servers(
    iris_model: tuple[Path, Any], echo_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ModelServer]]:
    """Both servers, started together (each takes seconds to load scikit-learn)."""
    logs = tmp_path_factory.mktemp("serving-logs")
    started = {
        "iris": ModelServer(["-m", str(iris_model[0]), "--max-request-size", "65536"], log_dir=logs),
        "echo": ModelServer(["-m", str(echo_model), "--workers", "2"], log_dir=logs),
    }
    try:
        for server in started.values():
            server.start_async()
        for server in started.values():
            server.wait_started()
        yield started
    finally:
        for server in started.values():
            server.__exit__(None, None, None)


@pytest.fixture(scope="package")
def iris_server(servers: dict[str, ModelServer]) -> ModelServer:
    """`tracklane models serve` of the iris model (one worker, 64 KiB request limit)."""
    return servers["iris"]


@pytest.fixture(scope="package")
def echo_server(servers: dict[str, ModelServer]) -> ModelServer:
    """`tracklane models serve` of the echo model (two workers)."""
    return servers["echo"]
