"""Auth on MLflow's REST API (real HTTP, both backends): the ``mlflow`` client's Bearer token
(MLFLOW_TRACKING_TOKEN) and Basic user + token (MLFLOW_TRACKING_USERNAME/PASSWORD) are the same
users, tokens and permissions as gRPC's."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from tests.auth_helpers import AuthServer
from tests.contract.mlflow_rest_helpers import error, ok


@pytest.fixture
def web(auth: AuthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=auth.local.http_url, timeout=60) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_calls_without_credentials_are_unauthenticated(web: httpx.Client) -> None:
    message = error(web.get("/api/2.0/mlflow/experiments/search"), 401, "UNAUTHENTICATED")
    assert "token" in message
    error(
        web.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}, headers=bearer("tlk_nope")),
        401,
        "UNAUTHENTICATED",
    )


def test_bearer_and_basic_are_the_same_user(auth: AuthServer, web: httpx.Client) -> None:
    user = auth.create_user("rest")
    created = web.post(
        "/api/2.0/mlflow/experiments/create", json={"name": f"{user.name}-exp"}, headers=bearer(user.token)
    )
    experiment_id = ok(created)["experiment_id"]
    run = ok(
        web.post(
            "/api/2.0/mlflow/runs/create",
            json={"experiment_id": experiment_id},
            headers=basic(user.name, user.token),
        )
    )
    assert run["run"]["info"]["user_id"] == user.name  # the authenticated user, not what a client claims
    # Basic with another user's name and this token: refused, whoever the name is.
    other = auth.create_user("other")
    error(
        web.get(
            "/api/2.0/mlflow/experiments/get",
            params={"experiment_id": experiment_id},
            headers=basic(other.name, user.token),
        ),
        401,
        "UNAUTHENTICATED",
    )
    error(
        web.get(
            "/api/2.0/mlflow/experiments/get",
            params={"experiment_id": experiment_id},
            headers=basic(user.name, "wrong"),
        ),
        401,
        "UNAUTHENTICATED",
    )


def test_permissions_are_the_grpc_ones(auth: AuthServer, web: httpx.Client) -> None:
    owner, reader = auth.create_user("owner"), auth.create_user("reader")
    experiment_id = ok(
        web.post(
            "/api/2.0/mlflow/experiments/create",
            json={"name": f"{owner.name}-perm"},
            headers=bearer(owner.token),
        )
    )["experiment_id"]
    run_id = ok(
        web.post(
            "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id}, headers=bearer(owner.token)
        )
    )["run"]["info"]["run_id"]
    artifact = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/f.txt"
    ok(web.put(artifact, content=b"secret", headers=bearer(owner.token)))

    error(
        web.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}, headers=bearer(reader.token)),
        403,
        "PERMISSION_DENIED",
    )
    error(web.get(artifact, headers=bearer(reader.token)), 403, "PERMISSION_DENIED")
    owner.client().set_experiment_permission(experiment_id, reader.name, "READ")
    assert (
        ok(web.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}, headers=bearer(reader.token)))[
            "run"
        ]["info"]["run_id"]
        == run_id
    )
    assert web.get(artifact, headers=basic(reader.name, reader.token)).content == b"secret"
    # READ is not EDIT: writes are refused and store nothing.
    error(
        post_as(web, reader.token, "/runs/log-parameter", {"run_id": run_id, "key": "k", "value": "v"}),
        403,
        "PERMISSION_DENIED",
    )
    error(web.put(artifact, content=b"overwritten", headers=bearer(reader.token)), 403, "PERMISSION_DENIED")
    assert web.get(artifact, headers=bearer(owner.token)).content == b"secret"
    searched = ok(
        web.post(
            "/api/2.0/mlflow/experiments/search",
            json={"filter": f"name = '{owner.name}-perm'"},
            headers=bearer(auth.create_user("stranger").token),
        )
    )
    assert "experiments" not in searched  # filtered to what the caller may read


def test_the_browser_session_needs_the_csrf_header(auth: AuthServer, web: httpx.Client) -> None:
    user = auth.create_user("cookie")
    csrf = ok(web.post("/auth/session", json={"token": user.token}))["csrf_token"]
    assert (
        ok(web.post("/ajax-api/2.0/mlflow/experiments/search", json={}, headers={"x-csrf-token": csrf}))
        is not None
    )
    error(web.post("/ajax-api/2.0/mlflow/experiments/search", json={}), 403, "PERMISSION_DENIED")
    ok(web.get("/ajax-api/2.0/mlflow/experiments/search", params={"max_results": 5}))  # a GET needs none
    ok(web.delete("/auth/session", headers={"x-csrf-token": csrf}))
    error(web.get("/ajax-api/2.0/mlflow/experiments/search"), 401, "UNAUTHENTICATED")  # signed out


def post_as(web: httpx.Client, token: str, endpoint: str, body: object) -> httpx.Response:
    return web.post("/api/2.0/mlflow" + endpoint, json=body, headers=bearer(token))
