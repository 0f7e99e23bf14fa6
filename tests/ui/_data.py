"""What the browser tests look at: an experiment of runs with params, metrics, nested runs,
artifacts of every previewable kind and a registered model, logged through the Python client."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field

import numpy as np

import tracklane

LRS = ("0.1", "0.01", "0.001")
OPTIMIZERS = ("adam", "sgd")
STEPS = 200


@dataclass
class Seeded:
    """An experiment the tests made, and what is known about it."""

    experiment_id: str
    name: str
    run_ids: list[str]
    names: dict[str, str]
    artifact_run: str = ""
    parent_run: str = ""
    child_runs: list[str] = field(default_factory=list)
    model_name: str = ""


def _png() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (64, 48), (30, 144, 255))
    for x in range(64):
        image.putpixel((x, 24), (255, 200, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _parquet() -> bytes:
    import pandas as pd

    out = io.BytesIO()
    frame = pd.DataFrame(
        {"epoch": range(1, 11), "loss": [1 / (e + 1) for e in range(10)], "split": ["train"] * 10}
    )
    frame.to_parquet(out, index=False)
    return out.getvalue()


def _log_artifacts(client: tracklane.Client, run_id: str) -> None:
    files = {
        "config.json": json.dumps({"optimizer": "adam", "layers": [64, 32], "dropout": 0.1}).encode(),
        "params.yaml": b"learning_rate: 0.01\nbatch_size: 32\nschedule:\n  - warmup\n  - cosine\n",
        "data/metrics.csv": b"epoch,loss,accuracy\n1,0.9,0.51\n2,0.5,0.74\n3,0.31,0.88\n",
        "data/frame.parquet": _parquet(),
        "images/curve.png": _png(),
        "report.html": b"<html><body><h1>Evaluation report</h1><p>accuracy 0.93</p>"
        b"<script>document.title='ran'</script></body></html>",
        # Larger than the text preview's cap: only its head is read.
        "logs/train.log": b"".join(f"step {i:06d} loss {1 / (i + 1):.6f}\n".encode() for i in range(40_000)),
    }
    for path, data in files.items():
        client.log_bytes(run_id, data, path)


def _log_model(client: tracklane.Client, run_id: str, model_name: str) -> None:
    """A fitted scikit-learn model with a signature under `model/`, registered twice."""
    import tempfile
    from pathlib import Path

    from sklearn.linear_model import LinearRegression

    import tracklane.sklearn
    from tracklane.models import infer_signature

    x = np.arange(20, dtype=float).reshape(10, 2)
    y = x @ np.array([0.5, -1.0])
    model = LinearRegression().fit(x, y)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        tracklane.sklearn.save_model(model, str(folder), signature=infer_signature(x, model.predict(x)))
        client.log_artifacts(run_id, str(folder), "model")
    client.create_registered_model(model_name)
    for _ in range(2):
        client.create_model_version(model_name, f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(model_name, "champion", 1)


def seed_experiment(client: tracklane.Client, name: str, *, runs: int = 12) -> Seeded:
    """An experiment with `runs` finished runs (params lr, optimizer; metrics loss, acc), a parent
    with two nested runs, and one run carrying artifacts and a registered model."""
    experiment_id = client.create_experiment(name)
    seeded = Seeded(experiment_id=experiment_id, name=name, run_ids=[], names={})
    steps = np.arange(STEPS, dtype=np.int64)
    for i in range(runs):
        lr, opt = LRS[i % 3], OPTIMIZERS[i % 2]
        run = client.create_run(experiment_id, run_name=f"run-{i:02d}")
        run_id = run.info.run_id
        loss = np.exp(-steps / (40 + 10 * i)) + 0.01 * i
        client.log_batch(
            run_id,
            params=[tracklane.entities.Param("lr", lr), tracklane.entities.Param("optimizer", opt)],
            metrics=[
                tracklane.entities.Metric("loss", float(v), int(s), 0)
                for s, v in zip(steps, loss, strict=True)
            ]
            + [tracklane.entities.Metric("acc", 0.5 + 0.04 * i, STEPS - 1, 0)],
            tags=[tracklane.entities.RunTag("team", "vision" if i % 2 else "nlp")],
        )
        client.update_run(run_id, status="FAILED" if i == runs - 1 else "FINISHED")
        seeded.run_ids.append(run_id)
        seeded.names[run_id] = f"run-{i:02d}"
    parent = client.create_run(experiment_id, run_name="sweep-parent").info.run_id
    for j in range(2):
        child = client.create_run(
            experiment_id, run_name=f"sweep-child-{j}", parent_run_id=parent
        ).info.run_id
        client.log_batch(child, params=[tracklane.entities.Param("lr", LRS[j])])
        seeded.child_runs.append(child)
        seeded.names[child] = f"sweep-child-{j}"
    seeded.parent_run = parent
    seeded.names[parent] = "sweep-parent"
    seeded.artifact_run = seeded.run_ids[0]
    _log_artifacts(client, seeded.artifact_run)
    seeded.model_name = f"{name}-model"
    _log_model(client, seeded.artifact_run, seeded.model_name)
    return seeded


def wait_until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


__all__ = ["Seeded", "seed_experiment", "wait_until"]
