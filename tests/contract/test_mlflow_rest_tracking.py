"""MLflow's tracking REST API on the HTTP listener (real HTTP, both backends): each endpoint the
``mlflow`` client calls, with MLflow's JSON, validation messages, error codes and paging."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import pytest

from tests.contract.mlflow_rest_helpers import API, error, get, new_experiment, new_run, ok, post, tags_of
from tracklane.testing import LocalServer

MISSING_HINT = " See the API docs for more information about request parameters."


@pytest.fixture
def web(tracking_server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tracking_server.http_url, timeout=60) as client:
        yield client


# -- experiments ---------------------------------------------------------------------------------


def test_experiment_create_get_rename_delete_restore(web: httpx.Client, unique: str) -> None:
    name = f"rest-{unique}"
    created = ok(post(web, "/experiments/create", {"name": name, "tags": [{"key": "team", "value": "cv"}]}))
    experiment_id = created["experiment_id"]
    assert set(created) == {"experiment_id"}
    experiment = ok(get(web, "/experiments/get", experiment_id=experiment_id))["experiment"]
    assert experiment["name"] == name
    assert experiment["lifecycle_stage"] == "active"
    assert experiment["artifact_location"] == f"mlflow-artifacts:/{experiment_id}"
    assert isinstance(experiment["creation_time"], int)  # int64 as a JSON number, as MLflow writes it
    assert tags_of(experiment) == {"team": "cv"}
    by_name = ok(get(web, "/experiments/get-by-name", experiment_name=name))["experiment"]
    assert by_name["experiment_id"] == experiment_id

    ok(post(web, "/experiments/update", {"experiment_id": experiment_id, "new_name": f"{name}-2"}))
    ok(
        post(
            web, "/experiments/set-experiment-tag", {"experiment_id": experiment_id, "key": "k", "value": ""}
        )
    )
    ok(post(web, "/experiments/delete", {"experiment_id": experiment_id}))
    experiment = ok(get(web, "/experiments/get", experiment_id=experiment_id))["experiment"]
    assert (experiment["name"], experiment["lifecycle_stage"]) == (f"{name}-2", "deleted")
    assert tags_of(experiment) == {"team": "cv", "k": ""}  # an empty value is kept as such
    ok(post(web, "/experiments/restore", {"experiment_id": experiment_id}))
    ok(post(web, "/experiments/delete-experiment-tag", {"experiment_id": experiment_id, "key": "k"}))
    experiment = ok(get(web, "/experiments/get", experiment_id=experiment_id))["experiment"]
    assert (experiment["lifecycle_stage"], tags_of(experiment)) == ("active", {"team": "cv"})


def test_missing_and_duplicate_experiments(web: httpx.Client, unique: str) -> None:
    name = f"dup-{unique}"
    new_experiment(web, name)
    message = error(post(web, "/experiments/create", {"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
    assert name in message
    error(
        get(web, "/experiments/get-by-name", experiment_name=f"none-{unique}"), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    error(get(web, "/experiments/get", experiment_id="987654321"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_search_experiments_pages_with_tokens(web: httpx.Client, unique: str) -> None:
    ids = {new_experiment(web, f"page-{unique}-{i}") for i in range(5)}
    seen: list[str] = []
    token = None
    for _ in range(5):
        body = {"max_results": 2, "filter": f"name LIKE 'page-{unique}-%'"}
        if token:
            body["page_token"] = token
        page = ok(post(web, "/experiments/search", body))
        seen += [e["experiment_id"] for e in page.get("experiments", [])]
        token = page.get("next_page_token")
        if not token:
            break
    assert len(seen) == 5
    assert set(seen) == ids
    by_get = ok(get(web, "/experiments/search", max_results=10, filter=f"name = 'page-{unique}-0'"))
    assert [e["name"] for e in by_get["experiments"]] == [f"page-{unique}-0"]


# -- validation, as MLflow words it --------------------------------------------------------------


def test_wrong_types_and_missing_fields_are_mlflows_messages(web: httpx.Client, unique: str) -> None:
    message = error(get(web, "/runs/get"), 400, "INVALID_PARAMETER_VALUE")
    assert message == "Missing value for required parameter 'run_id'." + MISSING_HINT
    message = error(
        post(web, "/runs/log-metric", {"run_id": 31, "key": "k", "value": 1, "timestamp": 1}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert message.startswith("Invalid value 31 for parameter 'run_id' supplied")
    assert "Hint: Value was of type 'int'" in message
    run = new_run(web, new_experiment(web, f"valid-{unique}"))
    run_id = run["info"]["run_id"]
    message = error(
        post(web, "/runs/log-metric", {"run_id": run_id, "value": 1, "timestamp": 1}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert message == "Missing value for required parameter 'key'." + MISSING_HINT
    message = error(
        post(
            web,
            "/runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [{"key": "a", "value": 1, "timestamp": 1}, {"key": "b", "value": 2}],
            },
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert message == "Missing value for required parameter 'metrics[1].timestamp'." + MISSING_HINT
    message = error(
        post(web, "/runs/log-parameter", {"run_id": run_id, "key": "", "value": "x"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "'key'" in message
    message = error(get(web, "/runs/search"), 400, "BAD_REQUEST")  # a POST endpoint
    assert "POST" in message
    data = ok(get(web, "/runs/get", run_id=run_id))["run"]["data"]
    assert data == {"tags": [{"key": "mlflow.runName", "value": run["info"]["run_name"]}]}  # nothing stored


def test_unknown_and_unserved_endpoints(web: httpx.Client) -> None:
    error(web.get(API + "/no/such/thing"), 404, "ENDPOINT_NOT_FOUND")
    message = error(web.post("/api/3.0/mlflow/scorers/register", json={}), 501, "NOT_IMPLEMENTED")
    assert "registerScorer" in message
    info = ok(web.get("/api/3.0/mlflow/server-info"))
    assert info["multipart_uploads_enabled"] is False
    assert web.get("/version").text == "3.17.2"


# -- runs, params, metrics, tags ---------------------------------------------------------------------


def test_run_lifecycle_with_system_tags(web: httpx.Client, unique: str) -> None:
    experiment_id = new_experiment(web, f"runs-{unique}")
    parent = new_run(web, experiment_id, run_name="parent")
    run = new_run(
        web,
        experiment_id,
        start_time=1_700_000_000_000,
        user_id="alice",
        tags=[
            {"key": "mlflow.runName", "value": "child"},
            {"key": "mlflow.parentRunId", "value": parent["info"]["run_id"]},
            {"key": "mlflow.source.name", "value": "train.py"},
        ],
    )
    info = run["info"]
    assert (info["run_name"], info["user_id"], info["status"], info["lifecycle_stage"]) == (
        "child",
        "alice",
        "RUNNING",
        "active",
    )
    assert info["run_uuid"] == info["run_id"]
    assert info["start_time"] == 1_700_000_000_000
    assert "end_time" not in info  # unset fields are left out, as MLflow's JSON does
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{info['run_id']}/artifacts"
    assert tags_of(run["data"]) == {
        "mlflow.runName": "child",
        "mlflow.parentRunId": parent["info"]["run_id"],
        "mlflow.user": "alice",
        "mlflow.source.name": "train.py",
    }
    ok(post(web, "/runs/set-tag", {"run_id": info["run_id"], "key": "mlflow.runName", "value": "renamed"}))
    updated = ok(
        post(
            web,
            "/runs/update",
            {"run_id": info["run_id"], "status": "FINISHED", "end_time": 1_700_000_001_000},
        )
    )
    assert updated["run_info"]["status"] == "FINISHED"
    assert updated["run_info"]["end_time"] == 1_700_000_001_000
    assert updated["run_info"]["run_name"] == "renamed"
    ok(post(web, "/runs/delete", {"run_id": info["run_id"]}))
    assert ok(get(web, "/runs/get", run_id=info["run_id"]))["run"]["info"]["lifecycle_stage"] == "deleted"
    message = error(
        post(web, "/runs/log-parameter", {"run_id": info["run_id"], "key": "k", "value": "v"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "deleted" in message
    ok(post(web, "/runs/restore", {"run_id": info["run_id"]}))
    error(get(web, "/runs/get", run_id="0" * 32), 404, "RESOURCE_DOES_NOT_EXIST")


def test_params_metrics_and_tags_round_trip(web: httpx.Client, unique: str) -> None:
    run_id = new_run(web, new_experiment(web, f"data-{unique}"))["info"]["run_id"]
    ok(post(web, "/runs/log-parameter", {"run_id": run_id, "key": "empty", "value": ""}))
    ok(post(web, "/runs/set-tag", {"run_id": run_id, "key": "blank", "value": ""}))
    for value in ("NaN", "Infinity", "-Infinity", 0.5):
        ok(
            post(
                web,
                "/runs/log-metric",
                {"run_id": run_id, "key": f"m{value}", "value": value, "timestamp": 5, "step": 2},
            )
        )
    batch = {
        "run_id": run_id,
        "metrics": [
            {"key": "loss", "value": 1.0 / (i + 1), "timestamp": 1000 + i, "step": i} for i in range(1000)
        ],
        "params": [{"key": "lr", "value": "0.01"}],
        "tags": [{"key": "team", "value": "cv"}],
    }
    assert ok(post(web, "/runs/log-batch", batch)) == {}
    message = error(
        post(web, "/runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "lr" in message
    data = ok(get(web, "/runs/get", run_id=run_id))["run"]["data"]
    params = {p["key"]: p["value"] for p in data["params"]}
    assert params == {"empty": "", "lr": "0.01"}
    assert tags_of(data)["blank"] == ""
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["mNaN"]["value"] == "NaN"  # protobuf's JSON for NaN, which the client parses
    assert metrics["mInfinity"]["value"] == "Infinity"
    assert metrics["m-Infinity"]["value"] == "-Infinity"
    assert metrics["loss"] == {"key": "loss", "value": 1.0 / 1000, "timestamp": 1999, "step": 999}
    history = ok(get(web, "/metrics/get-history", run_id=run_id, metric_key="loss"))["metrics"]
    assert [m["step"] for m in history] == list(range(1000))
    assert math.isclose(history[3]["value"], 0.25)
    page = ok(get(web, "/metrics/get-history", run_id=run_id, metric_key="loss", max_results=300))
    assert len(page["metrics"]) == 300
    token, steps = page["next_page_token"], [m["step"] for m in page["metrics"]]
    while token:  # the client pages with the same max_results
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 300, "page_token": token}
        page = ok(get(web, "/metrics/get-history", **params))
        steps += [m["step"] for m in page["metrics"]]
        token = page.get("next_page_token")
    assert steps == list(range(1000))
    ok(post(web, "/runs/delete-tag", {"run_id": run_id, "key": "team"}))
    assert "team" not in tags_of(ok(get(web, "/runs/get", run_id=run_id))["run"]["data"])
    error(post(web, "/runs/delete-tag", {"run_id": run_id, "key": "team"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_history_bulk_interval(web: httpx.Client, unique: str) -> None:
    experiment_id = new_experiment(web, f"bulk-{unique}")
    run_ids = [new_run(web, experiment_id)["info"]["run_id"] for _ in range(2)]
    for run_id in run_ids:
        metrics = [{"key": "acc", "value": i / 100, "timestamp": i, "step": i} for i in range(100)]
        ok(post(web, "/runs/log-batch", {"run_id": run_id, "metrics": metrics}))
    reply = ok(
        web.get(
            API + "/metrics/get-history-bulk-interval",
            params={"run_ids": run_ids, "metric_key": "acc", "start_step": 10, "end_step": 19},
        )
    )
    points = reply["metrics"]
    assert {p["run_id"] for p in points} == set(run_ids)
    assert sorted({p["step"] for p in points}) == list(range(10, 20))
    ajax = web.get(
        "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
        params={"run_ids": run_ids[0], "metric_key": "acc", "max_results": 10},
    )
    assert 2 <= len(ok(ajax)["metrics"]) <= 10  # downsampled, first and last steps kept
    assert {0, 99} <= {p["step"] for p in ok(ajax)["metrics"]}
    message = error(
        web.get(API + "/metrics/get-history-bulk-interval", params={"metric_key": "acc"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "run_id" in message


def test_search_runs_grammar_order_and_paging(web: httpx.Client, unique: str) -> None:
    experiment_id = new_experiment(web, f"search-{unique}")
    parent = new_run(web, experiment_id, run_name="sweep")["info"]["run_id"]
    for i in range(5):
        run_id = new_run(
            web, experiment_id, run_name=f"trial-{i}", tags=[{"key": "mlflow.parentRunId", "value": parent}]
        )["info"]["run_id"]
        ok(
            post(
                web,
                "/runs/log-batch",
                {
                    "run_id": run_id,
                    "metrics": [{"key": "acc", "value": i / 10, "timestamp": 1, "step": 0}],
                    "params": [{"key": "p", "value": "even" if i % 2 == 0 else "odd"}],
                },
            )
        )

    def search(**body: object) -> dict[str, object]:
        reply: dict[str, object] = ok(post(web, "/runs/search", {"experiment_ids": [experiment_id], **body}))
        return reply

    children = search(filter=f"tags.mlflow.parentRunId = '{parent}'", order_by=["metrics.acc DESC"])
    names = [r["info"]["run_name"] for r in children["runs"]]  # type: ignore[index,union-attr]
    assert names == [f"trial-{i}" for i in (4, 3, 2, 1, 0)]
    even = search(filter="params.p = 'even' and metrics.acc > 0.1")
    assert sorted(r["info"]["run_name"] for r in even["runs"]) == ["trial-2", "trial-4"]  # type: ignore[index,union-attr]
    top = search(filter="attributes.parent_run_id IS NULL")
    assert [r["info"]["run_id"] for r in top["runs"]] == [parent]  # type: ignore[index,union-attr]
    first = search(max_results=4, order_by=["attributes.run_name ASC"])
    assert len(first["runs"]) == 4  # type: ignore[arg-type]
    second = search(max_results=4, order_by=["attributes.run_name ASC"], page_token=first["next_page_token"])
    assert [r["info"]["run_name"] for r in second["runs"]] == ["trial-3", "trial-4"]  # type: ignore[index,union-attr]
    assert "next_page_token" not in second
    message = error(
        post(web, "/runs/search", {"experiment_ids": [experiment_id], "filter": "metrics.acc >"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "filter" in message
    error(
        post(web, "/runs/search", {"experiment_ids": [experiment_id], "max_results": 50001}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
