"""The fluent artifact functions and tracklane.artifacts against a real server, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import tracklane
from tracklane.exceptions import InvalidArgument, NotFound
from tracklane.testing import LocalServer


@pytest.fixture
def fl(fl: Any, tracking_server: LocalServer) -> Iterator[tracklane.Client]:
    """The fluent state of tests/e2e/conftest.py; yields a Client to check what was stored."""
    with tracklane.Client(tracking_server.uri) as client:
        yield client


def test_log_artifact_and_artifacts_to_the_active_run(fl: tracklane.Client, tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"weights")
    folder = tmp_path / "plots"
    for i in range(12):
        (folder / f"epoch{i // 4}").mkdir(parents=True, exist_ok=True)
        (folder / f"epoch{i // 4}" / f"{i}.txt").write_text(str(i))
    with tracklane.start_run() as run:
        info = tracklane.log_artifact(tmp_path / "model.pt", artifact_path="checkpoints")
        stored = tracklane.log_artifacts(folder, artifact_path="plots")
    assert info.path == "checkpoints/model.pt"
    assert len(stored) == 12
    run_id = run.info.run_id
    assert [f.path for f in fl.list_artifacts(run_id)] == ["checkpoints", "plots"]
    assert len(fl.list_artifacts(run_id, "plots", recursive=True)) == 12
    uri = f"runs:/{run_id}/plots/epoch2"
    assert [f.path for f in tracklane.artifacts.list_artifacts(uri)] == [
        f"plots/epoch2/{i}.txt" for i in (10, 11, 8, 9)
    ]
    local = tracklane.artifacts.download_artifacts(uri, dst_path=tmp_path / "out")
    assert sorted(p.name for p in Path(local).iterdir()) == ["10.txt", "11.txt", "8.txt", "9.txt"]
    same = tracklane.artifacts.download_artifacts(
        run_id=run_id, artifact_path="checkpoints/model.pt", dst_path=tmp_path / "again"
    )
    assert Path(same).read_bytes() == b"weights"


def test_log_artifact_starts_a_run_when_none_is_active(fl: tracklane.Client, tmp_path: Path) -> None:
    tracklane.log_text("hello", "notes/hello.txt")
    active = tracklane.active_run()
    assert active is not None
    assert fl.read_artifact(active.info.run_id, "notes/hello.txt") == b"hello"


def test_text_dict_and_table(fl: tracklane.Client) -> None:
    config = {"lr": 0.01, "layers": [64, 32], "name": "résumé"}
    with tracklane.start_run() as run:
        tracklane.log_text("line one\nligne deux ✓", "notes.txt")
        tracklane.log_dict(config, "config.json")
        tracklane.log_dict(config, "config.yaml")
        tracklane.log_table({"epoch": [1, 2], "loss": [0.5, 0.25]}, "tables/loss.json")
    base = f"runs:/{run.info.run_id}"
    assert tracklane.artifacts.load_text(f"{base}/notes.txt") == "line one\nligne deux ✓"
    assert tracklane.artifacts.load_dict(f"{base}/config.json") == config
    assert tracklane.artifacts.load_dict(f"{base}/config.yaml") == config
    raw = fl.read_artifact(run.info.run_id, "config.yaml").decode()
    assert yaml.safe_load(raw) == config
    assert "lr: 0.01" in raw.splitlines()  # YAML, not JSON
    table = json.loads(tracklane.artifacts.load_text(f"{base}/tables/loss.json"))
    assert table == {"columns": ["epoch", "loss"], "data": [[1, 0.5], [2, 0.25]]}
    pd = pytest.importorskip("pandas")
    with tracklane.start_run(run_id=run.info.run_id):
        tracklane.log_table(pd.DataFrame({"epoch": [1, 2], "loss": [0.5, 0.25]}), "tables/frame.json")
    assert json.loads(tracklane.artifacts.load_text(f"{base}/tables/frame.json")) == table
    with pytest.raises(InvalidArgument) as err:
        tracklane.log_table({"a": [1], "b": [1, 2]}, "table.json")
    assert err.value.field == "data"
    with pytest.raises(InvalidArgument) as err:
        tracklane.log_table({"a": [1]}, "table.csv")
    assert err.value.field == "artifact_file"
    with pytest.raises(NotFound):
        tracklane.artifacts.load_text(f"{base}/missing.txt")


def test_log_image(fl: tracklane.Client) -> None:
    pil = pytest.importorskip("PIL.Image")
    gradient = np.linspace(0, 1, 12 * 8).reshape(12, 8)
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    with tracklane.start_run() as run:
        tracklane.log_image(gradient, "images/grey.png")
        tracklane.log_image(rgb, "images/red.png")
        tracklane.log_image(pil.new("RGB", (3, 2), (0, 0, 255)), "images/blue.jpg")
        with pytest.raises(InvalidArgument) as err:
            tracklane.log_image(np.full((2, 2), 2.0), "bad.png")
        assert err.value.field == "image"
    import io

    red = pil.open(io.BytesIO(fl.read_artifact(run.info.run_id, "images/red.png")))
    assert (red.size, red.mode, red.getpixel((0, 0))) == ((5, 4), "RGB", (255, 0, 0))
    grey = pil.open(io.BytesIO(fl.read_artifact(run.info.run_id, "images/grey.png")))
    assert (grey.size, grey.getpixel((7, 11))) == ((8, 12), 255)
    assert pil.open(io.BytesIO(fl.read_artifact(run.info.run_id, "images/blue.jpg"))).format == "JPEG"


def test_log_figure(fl: tracklane.Client) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([1, 2, 3], [3, 1, 2])
    with tracklane.start_run() as run:
        tracklane.log_figure(figure, "plots/curve.png")
        tracklane.log_figure(figure, "plots/curve.svg")
        with pytest.raises(InvalidArgument):
            tracklane.log_figure(object(), "plots/nothing.png")
    plt.close(figure)
    assert fl.read_artifact(run.info.run_id, "plots/curve.png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in fl.read_artifact(run.info.run_id, "plots/curve.svg")


def test_runs_uri_errors(fl: tracklane.Client) -> None:
    bad: list[dict[str, Any]] = [
        {"artifact_uri": "s3://bucket/x"},
        {"artifact_uri": "runs:/"},
        {"artifact_uri": "runs:/abc/x", "run_id": "abc"},
        {},
    ]
    for kwargs in bad:
        with pytest.raises(InvalidArgument):
            tracklane.artifacts.download_artifacts(**kwargs)


def test_direct_mode_by_configuration(
    fl: tracklane.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = np.random.default_rng(1).bytes(3 * 1024 * 1024)
    (tmp_path / "blob.bin").write_bytes(data)
    monkeypatch.setenv("TRACKLANE_ARTIFACT_TRANSFER", "direct")
    with tracklane.start_run() as run:
        tracklane.log_artifact(tmp_path / "blob.bin")
    local = tracklane.artifacts.download_artifacts(
        f"runs:/{run.info.run_id}/blob.bin", dst_path=tmp_path / "d"
    )
    assert Path(local).read_bytes() == data
    monkeypatch.setenv("TRACKLANE_ARTIFACT_TRANSFER", "carrier-pigeon")
    with pytest.raises(InvalidArgument) as err:
        tracklane.artifacts.download_artifacts(f"runs:/{run.info.run_id}/blob.bin", dst_path=tmp_path / "e")
    assert err.value.field == "TRACKLANE_ARTIFACT_TRANSFER"


def test_progress_bar_only_when_asked_outside_a_terminal(
    fl: tracklane.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "blob.bin").write_bytes(b"x" * (2 * 1024 * 1024))
    run_id = fl.create_run().info.run_id
    fl.log_artifact(run_id, tmp_path / "blob.bin")
    fl.download_artifacts(run_id, "blob.bin", tmp_path / "quiet")
    assert capsys.readouterr().err == ""
    fl.log_artifact(run_id, tmp_path / "blob.bin", "loud", progress=True)
    fl.download_artifacts(run_id, "loud/blob.bin", tmp_path / "loud", progress=True)
    shown = capsys.readouterr().err
    assert shown.count("blob.bin") >= 2
    assert "2.00M" in shown
