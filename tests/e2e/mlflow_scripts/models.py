"""Stock MLflow model code, unchanged: log an sklearn model, register it, alias, load by alias."""

import json
import sys

import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression

name = sys.argv[1]
mlflow.set_experiment(name)
rng = np.random.default_rng(0)
X = rng.random((60, 3))
y = (X[:, 0] > 0.5).astype(int)
model = LogisticRegression().fit(X, y)
with mlflow.start_run() as run:
    info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2])
client = mlflow.MlflowClient()
version = mlflow.register_model(info.model_uri, name)
client.set_registered_model_alias(name, "champion", version.version)
loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
again = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
client.transition_model_version_stage(name, again.version, "Staging")
client.transition_model_version_stage(name, again.version, "Production", archive_existing_versions=True)
by_stage = mlflow.sklearn.load_model(f"models:/{name}/Production")
print(
    json.dumps(
        {
            "run_id": run.info.run_id,
            "model_id": info.model_id,
            "versions": [version.version, again.version],
            "same_predictions": bool((loaded.predict(X) == model.predict(X)).all()),
            "stage_predictions": bool((by_stage.predict(X) == model.predict(X)).all()),
            "alias_version": client.get_model_version_by_alias(name, "champion").version,
            "latest_production": [v.version for v in client.get_latest_versions(name, ["Production"])],
            "stages": {v.version: v.current_stage for v in client.search_model_versions(f"name = '{name}'")},
        }
    )
)
