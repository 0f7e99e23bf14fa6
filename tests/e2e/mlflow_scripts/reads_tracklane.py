"""Stock MLflow code reading what a Tracklane (gRPC) client wrote: run, history, artifacts, registry."""

import json
import sys
import tempfile
from pathlib import Path

import mlflow

run_id, model_name = sys.argv[1], sys.argv[2]
client = mlflow.MlflowClient()
run = client.get_run(run_id)
with tempfile.TemporaryDirectory() as tmp:
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="report.txt", dst_path=tmp))
    report = local.read_text()
version = client.get_model_version_by_alias(model_name, "prod")
print(
    json.dumps(
        {
            "name": run.info.run_name,
            "params": run.data.params,
            "metrics": run.data.metrics,
            "tags": run.data.tags,
            "history": [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")],
            "report": report,
            "version": version.version,
            "version_run": version.run_id,
            "download_uri": client.get_model_version_download_uri(model_name, version.version),
            "found": [
                r.info.run_id
                for r in mlflow.search_runs(
                    [run.info.experiment_id], "params.lr = '0.1'", output_format="list"
                )
            ],
        }
    )
)
