"""MLflow's model registry REST API on the HTTP listener (real HTTP, both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.contract.mlflow_rest_helpers import API, error, get, new_experiment, new_run, ok, post, tags_of
from tracklane.testing import LocalServer


@pytest.fixture
def web(tracking_server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tracking_server.http_url, timeout=60) as client:
        yield client


def _upload(web: httpx.Client, experiment_id: str, run_id: str, path: str, data: bytes) -> None:
    reply = web.put(
        f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{path}", content=data
    )
    assert ok(reply) == {}


def test_registered_model_lifecycle(web: httpx.Client, unique: str) -> None:
    name = f"reg-{unique}"
    created = ok(
        post(web, "/registered-models/create", {"name": name, "tags": [{"key": "team", "value": "risk"}]})
    )
    model = created["registered_model"]
    assert model["name"] == name
    assert isinstance(model["creation_timestamp"], int)
    assert tags_of(model) == {"team": "risk"}
    error(post(web, "/registered-models/create", {"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
    ok(web.patch(API + "/registered-models/update", json={"name": name, "description": "fraud"}))
    ok(post(web, "/registered-models/set-tag", {"name": name, "key": "stage", "value": ""}))
    renamed = ok(post(web, "/registered-models/rename", {"name": name, "new_name": f"{name}-2"}))[
        "registered_model"
    ]
    assert (renamed["name"], renamed["description"]) == (f"{name}-2", "fraud")
    found = ok(get(web, "/registered-models/search", filter=f"name LIKE 'reg-{unique}%'"))
    assert [m["name"] for m in found["registered_models"]] == [f"{name}-2"]
    assert tags_of(found["registered_models"][0]) == {"team": "risk", "stage": ""}
    ok(
        web.request(
            "DELETE", API + "/registered-models/delete-tag", json={"name": f"{name}-2", "key": "stage"}
        )
    )
    ok(web.request("DELETE", API + "/registered-models/delete", json={"name": f"{name}-2"}))
    error(get(web, "/registered-models/get", name=f"{name}-2"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_versions_stages_aliases_and_download_uri(web: httpx.Client, unique: str) -> None:
    experiment_id = new_experiment(web, f"reg-runs-{unique}")
    run_id = new_run(web, experiment_id)["info"]["run_id"]
    _upload(web, experiment_id, run_id, "model/MLmodel", b"flavors: {}\n")
    name = f"versions-{unique}"
    ok(post(web, "/registered-models/create", {"name": name}))
    sources = [
        f"runs:/{run_id}/model",
        f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model",  # what register_model("runs:/") sends
    ]
    versions = [
        ok(post(web, "/model-versions/create", {"name": name, "source": s, "run_id": run_id}))[
            "model_version"
        ]
        for s in sources
    ]
    assert [v["version"] for v in versions] == ["1", "2"]  # strings in MLflow's JSON
    assert {v["source"] for v in versions} == {f"runs:/{run_id}/model"}  # stored in Tracklane's form
    assert all(v["status"] == "READY" and v["current_stage"] == "None" for v in versions)

    moved = ok(
        post(web, "/model-versions/transition-stage", {"name": name, "version": "1", "stage": "Staging"})
    )
    assert moved["model_version"]["current_stage"] == "Staging"
    ok(
        post(
            web,
            "/model-versions/transition-stage",
            {"name": name, "version": "2", "stage": "staging", "archive_existing_versions": True},
        )
    )
    latest = ok(
        post(web, "/registered-models/get-latest-versions", {"name": name, "stages": ["Staging", "Archived"]})
    )
    assert {(v["version"], v["current_stage"]) for v in latest["model_versions"]} == {
        ("2", "Staging"),
        ("1", "Archived"),
    }
    message = error(
        post(web, "/model-versions/transition-stage", {"name": name, "version": "1", "stage": "Prod"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "Prod" in message

    ok(post(web, "/registered-models/alias", {"name": name, "alias": "champion", "version": "2"}))
    by_alias = ok(get(web, "/registered-models/alias", name=name, alias="champion"))["model_version"]
    assert (by_alias["version"], by_alias["aliases"]) == ("2", ["champion"])
    model = ok(get(web, "/registered-models/get", name=name))["registered_model"]
    assert model["aliases"] == [{"alias": "champion", "version": "2"}]
    uri = ok(get(web, "/model-versions/get-download-uri", name=name, version="2"))["artifact_uri"]
    assert uri == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model"
    ok(web.request("DELETE", API + "/registered-models/alias", json={"name": name, "alias": "champion"}))
    error(get(web, "/registered-models/alias", name=name, alias="champion"), 404, "RESOURCE_DOES_NOT_EXIST")

    ok(post(web, "/model-versions/set-tag", {"name": name, "version": "1", "key": "ok", "value": "yes"}))
    ok(web.patch(API + "/model-versions/update", json={"name": name, "version": "1", "description": "first"}))
    one = ok(get(web, "/model-versions/get", name=name, version="1"))["model_version"]
    assert (one["description"], tags_of(one)) == ("first", {"ok": "yes"})
    found = ok(get(web, "/model-versions/search", filter=f"name = '{name}'", max_results=1))
    assert len(found["model_versions"]) == 1
    rest = ok(
        get(
            web,
            "/model-versions/search",
            filter=f"name = '{name}'",
            max_results=1,
            page_token=found["next_page_token"],
        )
    )
    assert {found["model_versions"][0]["version"], rest["model_versions"][0]["version"]} == {"1", "2"}
    message = error(get(web, "/model-versions/get", name=name, version="one"), 400, "INVALID_PARAMETER_VALUE")
    assert message == "Parameter 'version' must be an integer, got 'one'."
    error(get(web, "/model-versions/get", name=name, version="9"), 404, "RESOURCE_DOES_NOT_EXIST")
    ok(
        web.request(
            "DELETE", API + "/model-versions/delete-tag", json={"name": name, "version": "1", "key": "ok"}
        )
    )
    ok(web.request("DELETE", API + "/model-versions/delete", json={"name": name, "version": "1"}))
    error(get(web, "/model-versions/get", name=name, version="1"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_logged_model_is_a_folder_of_its_run(web: httpx.Client, unique: str) -> None:
    """MLflow 3's log_model: create the logged model, upload to its artifact_uri, register it."""
    experiment_id = new_experiment(web, f"logged-{unique}")
    run_id = new_run(web, experiment_id)["info"]["run_id"]
    created = ok(
        post(
            web,
            "/logged-models",
            {"experiment_id": experiment_id, "name": "clf", "source_run_id": run_id, "model_type": "sklearn"},
        )
    )
    info = created["model"]["info"]
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/clf"
    model_id = info["model_id"]
    ok(
        post(
            web,
            f"/logged-models/{model_id}/params",
            {"model_id": model_id, "params": [{"key": "a", "value": "1"}]},
        )
    )
    _upload(web, experiment_id, run_id, "clf/MLmodel", b"flavors: {}\n")
    _upload(web, experiment_id, run_id, "clf/model.pkl", b"\x80\x04")
    ready = ok(
        web.patch(
            f"{API}/logged-models/{model_id}", json={"model_id": model_id, "status": "LOGGED_MODEL_READY"}
        )
    )
    assert ready["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    assert ok(web.get(f"{API}/logged-models/{model_id}"))["model"]["info"]["name"] == "clf"
    listed = ok(web.get(f"{API}/logged-models/{model_id}/artifacts/directories"))
    assert sorted(f["path"] for f in listed["files"]) == ["MLmodel", "model.pkl"]
    found = ok(
        post(web, "/logged-models/search", {"experiment_ids": [experiment_id], "filter": "name = 'clf'"})
    )
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]
    name = f"from-logged-{unique}"
    ok(post(web, "/registered-models/create", {"name": name}))
    version = ok(
        post(
            web,
            "/model-versions/create",
            {"name": name, "source": f"models:/{model_id}", "model_id": model_id},
        )
    )["model_version"]
    assert (version["source"], version["run_id"], version["model_id"]) == (
        f"runs:/{run_id}/clf",
        run_id,
        model_id,
    )
    error(web.get(f"{API}/logged-models/m-nonsense"), 404, "RESOURCE_DOES_NOT_EXIST")
    message = error(
        post(web, "/logged-models", {"experiment_id": experiment_id, "name": "orphan"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "run" in message
