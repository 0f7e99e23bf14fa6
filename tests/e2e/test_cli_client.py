"""`tracklane experiments ...` and `tracklane runs ...` against a real server, as a user runs them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracklane
from tests.servers import clean_env, tracklane_executable
from tracklane.entities import Metric, Param
from tracklane.testing import LocalServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(tmp_path_factory.mktemp("cli")) as s:
        yield s


def tl(server: LocalServer, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [tracklane_executable(), *args, "--tracking-uri", server.uri],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def test_experiments_create_and_list(server: LocalServer) -> None:
    created = json.loads(
        tl(server, "experiments", "create", "cli-exp", "--tag", "team=cv", "--output", "json").stdout
    )
    listed = json.loads(tl(server, "experiments", "list", "--output", "json").stdout)
    mine = [e for e in listed if e["experiment_id"] == created["experiment_id"]]
    assert mine[0]["name"] == "cli-exp"
    assert mine[0]["tags"] == {"team": "cv"}
    table = tl(server, "experiments", "list", "--filter", "name = 'cli-exp'").stdout.splitlines()
    assert table[0].split() == ["EXPERIMENT_ID", "NAME", "STAGE", "CREATED", "ARTIFACT_LOCATION"]
    assert len(table) == 2
    assert table[1].split()[:3] == [created["experiment_id"], "cli-exp", "active"]
    duplicate = tl(server, "experiments", "create", "cli-exp", ok=False)
    assert duplicate.returncode != 0
    assert duplicate.stderr.strip() == "tracklane: error: experiment 'cli-exp' already exists"


def test_runs_list_get_delete(server: LocalServer, tmp_path: Path) -> None:
    with tracklane.Client(server.uri) as client:
        experiment_id = client.create_experiment("cli-runs")
        run_id = client.create_run(experiment_id, run_name="r1").info.run_id
        client.log_batch(run_id, metrics=[Metric("acc", 0.93, 1)], params=[Param("lr", "0.1")])
        other = client.create_run(experiment_id, run_name="r2").info.run_id
    listed = json.loads(
        tl(
            server,
            "runs",
            "list",
            "--experiment-id",
            experiment_id,
            "--filter",
            "metrics.acc > 0.9",
            "--output",
            "json",
        ).stdout
    )
    assert [r["info"]["run_id"] for r in listed] == [run_id]
    assert listed[0]["data"]["metrics"] == {"acc": 0.93}
    shown = tl(server, "runs", "get", run_id).stdout
    assert f"run_id:        {run_id}" in shown
    assert "  lr = 0.1" in shown
    assert "  acc = 0.93" in shown
    tl(server, "runs", "delete", other)
    remaining = json.loads(
        tl(server, "runs", "list", "--experiment-id", experiment_id, "--output", "json").stdout
    )
    assert [r["info"]["run_id"] for r in remaining] == [run_id]
    bad = tl(server, "runs", "list", "--experiment-id", experiment_id, "--filter", "metrics.acc >", ok=False)
    assert bad.returncode != 0
    assert bad.stderr.startswith("tracklane: error: filter: at column")
