"""`tracklane artifacts list|download|upload` against a real server, as a user runs them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracklane
from tests.servers import clean_env, tracklane_executable
from tracklane.testing import LocalServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(tmp_path_factory.mktemp("cli-artifacts")) as s:
        yield s


def tl(server: LocalServer, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [tracklane_executable(), "artifacts", *args, "--tracking-uri", server.uri],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def test_upload_list_download(server: LocalServer, tmp_path: Path) -> None:
    with tracklane.Client(server.uri) as client:
        run_id = client.create_run().info.run_id
    (tmp_path / "model.bin").write_bytes(b"x" * 3000)
    folder = tmp_path / "plots"
    (folder / "deep").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "deep" / "b.txt").write_text("bb")

    one = json.loads(
        tl(server, "upload", "--run-id", run_id, str(tmp_path / "model.bin"), "--output", "json").stdout
    )
    assert one["path"] == "model.bin"
    assert one["size"] == 3000
    assert len(one["sha256"]) == 64
    many = json.loads(
        tl(server, "upload", "--run-id", run_id, str(folder), "-a", "plots", "--output", "json").stdout
    )
    assert many == {"uploaded": 2, "bytes": 3}

    table = tl(server, "list", "--run-id", run_id).stdout.splitlines()
    assert table[0].split() == ["SIZE", "MODIFIED", "PATH"]
    assert table[1].split()[-1] == "model.bin"
    assert table[1].split()[:2] == ["2.9", "KiB"]
    assert table[2].split()[0] == "-"
    assert table[2].split()[-1] == "plots/"
    listed = json.loads(tl(server, "list", "-u", f"runs:/{run_id}/plots", "-r", "--output", "json").stdout)
    assert [f["path"] for f in listed["files"]] == ["plots/a.txt", "plots/deep/b.txt"]
    assert listed["root_uri"].endswith(f"{run_id}/artifacts")

    dst = tmp_path / "dst"
    got = json.loads(
        tl(server, "download", "-u", f"runs:/{run_id}/plots", "-d", str(dst), "--output", "json").stdout
    )
    assert got == {"local_path": str(dst / "plots")}
    assert (dst / "plots" / "deep" / "b.txt").read_text() == "bb"
    text = tl(server, "download", "--run-id", run_id, "-a", "model.bin", "-d", str(dst)).stdout
    assert text.strip() == f"local_path: {dst / 'model.bin'}"


def test_errors_are_one_line(server: LocalServer, tmp_path: Path) -> None:
    missing = tl(server, "list", "--run-id", "0" * 32, ok=False)
    assert missing.returncode != 0
    assert missing.stderr.strip() == f"tracklane: error: run {'0' * 32!r} does not exist"
    with tracklane.Client(server.uri) as client:
        run_id = client.create_run().info.run_id
    (tmp_path / "f.txt").write_text("f")
    bad = tl(server, "upload", "--run-id", run_id, str(tmp_path / "f.txt"), "-a", "../up", ok=False)
    assert bad.returncode != 0
    assert bad.stderr.startswith("tracklane: error: artifact path")
    neither = tl(server, "list", ok=False)
    assert neither.stderr.strip() == "tracklane: error: give --run-id or --artifact-uri"
