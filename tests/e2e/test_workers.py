"""`--workers N`: N processes share one port (SO_REUSEPORT) over one database, and stop together."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

import tracklane
from tests.servers import clean_env, free_port, server_argv, start_server


def test_workers_share_the_port_and_the_data(tmp_path: Path) -> None:
    port, http_port = free_port(), free_port()
    with start_server(
        "--workers",
        "2",
        data_dir=tmp_path / "data",
        bind=f"127.0.0.1:{port}",
        http_bind=f"127.0.0.1:{http_port}",
    ) as server:
        deadline = time.monotonic() + 20
        while len(server.listening_lines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.listening_lines()) == 2, server.log  # both workers bound the same port
        # Separate connections land on either worker; all see one database.
        experiment_ids = []
        for i in range(6):
            with tracklane.Client(f"grpc://127.0.0.1:{port}") as client:
                experiment_ids.append(client.create_experiment(f"w-{i}"))
        with tracklane.Client(f"grpc://127.0.0.1:{port}") as client:
            assert [client.get_experiment(e).name for e in experiment_ids] == [f"w-{i}" for i in range(6)]
        # The HTTP listener is shared the same way: each new connection may reach either worker.
        for experiment_id in experiment_ids:
            with httpx.Client(base_url=f"http://127.0.0.1:{http_port}") as web:
                reply = web.post(
                    "/tracklane.v1.TrackingService/GetExperiment", json={"experimentId": experiment_id}
                )
                assert reply.status_code == 200, reply.text
                assert reply.json()["experiment"]["experimentId"] == experiment_id
        assert server.terminate(timeout=30) == 0, server.log


def test_workers_need_a_fixed_port(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        server_argv("--workers", "2", data_dir=tmp_path, http_bind=None),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().startswith("tracklane: error:")
    assert "fixed port" in result.stderr


def test_workers_need_a_fixed_http_port(tmp_path: Path) -> None:
    import subprocess

    argv = server_argv("--workers", "2", data_dir=tmp_path, bind=f"127.0.0.1:{free_port()}")
    result = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=60)
    assert result.returncode != 0
    assert "fixed port in --http-bind" in result.stderr
