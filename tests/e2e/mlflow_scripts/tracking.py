"""Stock MLflow tracking code, unchanged, run with the mlflow client against MLFLOW_TRACKING_URI.

Prints one JSON line of what it saw. Never imports tracklane.
"""

import json
import math
import sys
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

name = sys.argv[1]
out = {}
client = mlflow.MlflowClient()
experiment_id = mlflow.create_experiment(name, tags={"team": "cv"})
try:
    mlflow.create_experiment(name)
except MlflowException as exc:
    out["duplicate_code"] = exc.error_code
try:
    client.get_run("0" * 32)
except MlflowException as exc:
    out["missing_code"] = exc.error_code
mlflow.set_experiment(name)

with mlflow.start_run(run_name="parent") as parent:
    mlflow.log_params({"lr": 0.01, "empty": ""})
    mlflow.set_tags({"stage": "dev", "blank": ""})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metric("weird", float("nan"))
    now = int(time.time() * 1000)
    client.log_batch(
        parent.info.run_id,
        metrics=[Metric("batch", i * 0.5, now, i) for i in range(1000)],
        params=[Param("batch_size", "32")],
        tags=[RunTag("kind", "batch")],
    )
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "notes.txt").write_text("hello from mlflow")
        Path(tmp, "sub").mkdir()
        Path(tmp, "sub", "data.bin").write_bytes(bytes(range(256)) * 4096)
        mlflow.log_artifact(str(Path(tmp, "notes.txt")))
        mlflow.log_artifacts(tmp, artifact_path="folder")
    mlflow.log_dict({"a": 1}, "config.json")
    for i in range(3):
        with mlflow.start_run(run_name=f"child-{i}", nested=True):
            mlflow.log_param("i", i)
            mlflow.log_metric("acc", i / 10)

run = client.get_run(parent.info.run_id)
out["run_id"] = run.info.run_id
out["experiment_id"] = experiment_id
out["status"] = run.info.status
out["params"] = run.data.params
out["tags"] = {k: v for k, v in run.data.tags.items()}
out["metrics"] = {k: (None if math.isnan(v) else v) for k, v in run.data.metrics.items()}
out["history"] = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")]
out["batch_points"] = len(client.get_metric_history(run.info.run_id, "batch"))
children = mlflow.search_runs(
    filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'", order_by=["metrics.acc DESC"]
)
out["children"] = list(children["tags.mlflow.runName"])
out["frame_columns"] = sorted(
    c for c in children.columns if c.startswith(("params.", "metrics.", "tags.mlflow.runName"))
)
best = mlflow.search_runs([experiment_id], "metrics.acc > 0.05 and params.i != '2'", output_format="list")
out["filtered"] = sorted(r.info.run_name for r in best)
out["artifacts"] = sorted(a.path for a in client.list_artifacts(run.info.run_id))
out["folder"] = sorted(a.path for a in client.list_artifacts(run.info.run_id, "folder/sub"))
with tempfile.TemporaryDirectory() as tmp:
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=tmp)
    out["downloaded"] = sorted(str(p.relative_to(local)) for p in Path(local).rglob("*") if p.is_file())
    out["notes"] = Path(local, "notes.txt").read_text()
    out["data_ok"] = Path(local, "folder", "sub", "data.bin").read_bytes() == bytes(range(256)) * 4096
out["config"] = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/config.json")
experiments = client.search_experiments(filter_string=f"name = '{name}'")
out["experiment_tags"] = experiments[0].tags
print(json.dumps(out))
