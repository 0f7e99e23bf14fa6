"""MLflow's scoring protocol on `tracklane models serve`: every input form, every bad input, the probes.

Each request goes over real HTTP to a real server process; the expected predictions are the model's
own ``predict`` in this process.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import tracklane
from tests.serving_helpers import IRIS_COLUMNS, ModelServer, echo_input, iris

JSON = {"Content-Type": "application/json"}


def _rows() -> pd.DataFrame:
    X, _ = iris()
    return X.iloc[[0, 1, 50, 51, 100, 101, 149]].reset_index(drop=True)


def _post(server: ModelServer, body: bytes | str, content_type: str = "application/json") -> httpx.Response:
    return httpx.post(f"{server.url}/invocations", content=body, headers={"Content-Type": content_type})


def _forms(X: pd.DataFrame) -> dict[str, tuple[bytes | str, str]]:
    rows = X.to_numpy().tolist()
    records = X.to_dict(orient="records")
    parquet = io.BytesIO()
    X.to_parquet(parquet, index=False)
    return {
        "dataframe_split": (
            json.dumps({"dataframe_split": {"columns": IRIS_COLUMNS, "data": rows}}),
            "application/json",
        ),
        "dataframe_split with index": (
            json.dumps(
                {
                    "dataframe_split": {
                        "columns": IRIS_COLUMNS,
                        "data": rows,
                        "index": list(range(10, 10 + len(rows))),
                    }
                }
            ),
            "application/json; charset=utf-8",
        ),
        "dataframe_records": (json.dumps({"dataframe_records": records}), "application/json"),
        "instances as rows": (json.dumps({"instances": rows}), "application/json"),
        "instances as objects": (json.dumps({"instances": records}), "application/json"),
        "inputs as columns": (
            json.dumps({"inputs": {c: X[c].tolist() for c in IRIS_COLUMNS}}),
            "application/json",
        ),
        "inputs as rows": (json.dumps({"inputs": rows}), "application/json"),
        "csv": (X.to_csv(index=False), "text/csv"),
        "parquet": (parquet.getvalue(), "application/vnd.apache.parquet"),
    }


@pytest.mark.parametrize("form", list(_forms(_rows())))
def test_every_input_form_scores_as_local_predict(
    iris_server: ModelServer, iris_model: tuple[Path, Any], form: str
) -> None:
    X = _rows()
    expected = tracklane.pyfunc.load_model(str(iris_model[0])).predict(X)
    body, content_type = _forms(X)[form]
    response = _post(iris_server, body, content_type)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"predictions": expected.tolist()}
    assert len(set(expected.tolist())) == 3  # the rows span every class: a constant answer would fail


def test_table_predictions_and_params(echo_server: ModelServer, echo_model: Path) -> None:
    frame = echo_input()
    expected = tracklane.pyfunc.load_model(str(echo_model)).predict(frame, params={"n": 7})
    body = {"dataframe_split": frame.to_dict(orient="split") | {"index": None}, "params": {"n": 7}}
    del body["dataframe_split"]["index"]
    response = _post(echo_server, json.dumps(body))
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected.to_dict(orient="records")}
    assert response.json()["predictions"][1] == {"name": "BÉ", "value": 4.0, "n": 7}


BAD_INPUTS = {
    "missing column": (
        json.dumps({"dataframe_records": [{c: 1.0 for c in IRIS_COLUMNS[:3]}]}),
        "application/json",
        400,
        "INVALID_PARAMETER_VALUE",
        "petal width (cm)",
    ),
    "string in a double column": (
        json.dumps({"dataframe_split": {"columns": IRIS_COLUMNS, "data": [[5.1, 3.5, "x", 0.2]]}}),
        "application/json",
        400,
        "INVALID_PARAMETER_VALUE",
        "petal length (cm)",
    ),
    "malformed JSON": ('{"dataframe_split": ', "application/json", 400, "BAD_REQUEST", "valid JSON"),
    "a JSON list": ("[[1, 2, 3, 4]]", "application/json", 400, "BAD_REQUEST", "Received a list"),
    "two input fields": (
        json.dumps({"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}),
        "application/json",
        400,
        "BAD_REQUEST",
        "exactly one of the input fields",
    ),
    "an unknown field": (
        json.dumps({"rows": [[1, 2, 3, 4]]}),
        "application/json",
        400,
        "BAD_REQUEST",
        "'rows'",
    ),
    "split without data": (
        json.dumps({"dataframe_split": {"columns": IRIS_COLUMNS}}),
        "application/json",
        400,
        "BAD_REQUEST",
        "'data' field",
    ),
    "records not a list": (
        json.dumps({"dataframe_records": {"a": 1}}),
        "application/json",
        400,
        "BAD_REQUEST",
        "list of records",
    ),
    "params not an object": (
        json.dumps({"instances": [[1, 2, 3, 4]], "params": [1]}),
        "application/json",
        400,
        "BAD_REQUEST",
        "'params' must be a JSON object",
    ),
    "ragged instances": (
        json.dumps({"instances": [[1, 2, 3, 4], [1, 2]]}),
        "application/json",
        400,
        "BAD_REQUEST",
        "instances",
    ),
    "CSV with text in a double column": (
        ",".join(IRIS_COLUMNS) + "\n5.1,3.5,abc,0.2\n",
        "text/csv",
        400,
        "INVALID_PARAMETER_VALUE",
        "petal length (cm)",
    ),
    "not a Parquet file": (
        b"PAR1 not really",
        "application/vnd.apache.parquet",
        400,
        "BAD_REQUEST",
        "Parquet",
    ),
    "too large": (
        json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 4000}),
        "application/json",
        413,
        "RESOURCE_LIMIT_EXCEEDED",
        "65536 bytes",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_mlflow_error_and_server_keeps_serving(iris_server: ModelServer, case: str) -> None:
    body, content_type, status, error_code, fragment = BAD_INPUTS[case]
    response = _post(iris_server, body, content_type)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["error_code"] == error_code
    assert fragment in error["message"]
    good = _post(iris_server, json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}))
    assert good.status_code == 200
    assert good.json() == {"predictions": [0]}


@pytest.mark.parametrize(
    ("content_type", "fragment"),
    [
        ("text/plain", "only supports the following content types"),
        ("application/xml", "Got 'application/xml'"),
        ("application/json; charset=latin-1", "only supports UTF-8"),
        ("application/json; format=pandas-split", "Unrecognized content type parameters: format"),
    ],
)
def test_other_content_types_get_415(iris_server: ModelServer, content_type: str, fragment: str) -> None:
    response = _post(iris_server, json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}), content_type)
    assert response.status_code == 415
    assert fragment in response.text


def test_probes_and_version(iris_server: ModelServer) -> None:
    for path in ("/ping", "/health"):
        response = httpx.get(iris_server.url + path)
        assert response.status_code == 200
    version = httpx.get(iris_server.url + "/version")
    assert version.status_code == 200
    assert version.text == tracklane.__version__
    assert httpx.get(iris_server.url + "/invocations").status_code == 405
    assert httpx.get(iris_server.url + "/nope").status_code == 404


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(
                part.split("=", 1)
                for part in line[line.find("{") + 1 : line.find("}")].split(",")
                if "=" in part
            )
            if all(found.get(k) == f'"{v}"' for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_latency_and_errors(echo_server: ModelServer) -> None:
    # Two workers: /metrics adds up both, whichever answers.
    before = httpx.get(echo_server.url + "/metrics").text
    body = json.dumps({"dataframe_records": echo_input().to_dict(orient="records")})
    for _ in range(6):
        assert _post(echo_server, body).status_code == 200
    assert _post(echo_server, '{"dataframe_records": [{"name": 1}]}').status_code == 400
    after = httpx.get(echo_server.url + "/metrics").text
    ok = "tracklane_serving_requests_total"
    assert (
        _sample(after, ok, endpoint="invocations", status="200")
        - _sample(before, ok, endpoint="invocations", status="200")
        == 6
    )
    errors = "tracklane_serving_errors_total"
    labels = {"endpoint": "invocations", "error_code": "INVALID_PARAMETER_VALUE"}
    assert _sample(after, errors, **labels) - _sample(before, errors, **labels) == 1
    latency = "tracklane_serving_request_duration_seconds_count"
    assert (
        _sample(after, latency, endpoint="invocations") - _sample(before, latency, endpoint="invocations")
        == 7
    )
    assert 'tracklane_serving_request_duration_seconds_bucket{endpoint="invocations",le="0.005"}' in after


def test_predictions_of_a_numpy_model_keep_their_dtype(iris_server: ModelServer) -> None:
    response = _post(iris_server, json.dumps({"inputs": {c: [1.0, 7.0] for c in IRIS_COLUMNS}}))
    assert response.status_code == 200
    assert all(isinstance(v, int) for v in response.json()["predictions"])
    assert np.array(response.json()["predictions"]).shape == (2,)
