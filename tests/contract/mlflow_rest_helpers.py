"""Helpers of the MLflow REST contract tests: JSON calls and MLflow's error bodies."""

from __future__ import annotations

from typing import Any

import httpx

API = "/api/2.0/mlflow"


def ok(reply: httpx.Response) -> Any:
    """The JSON of a 200 answer (the body is shown when it is not one)."""
    assert reply.status_code == 200, f"{reply.status_code}: {reply.text}"
    assert reply.headers["content-type"] == "application/json"
    return reply.json()


def error(reply: httpx.Response, status: int, code: str) -> str:
    """The message of MLflow's error body, after checking its status and code."""
    assert reply.status_code == status, f"{reply.status_code}: {reply.text}"
    body = reply.json()
    assert body["error_code"] == code, body
    assert set(body) == {"error_code", "message"}
    return str(body["message"])


def post(web: httpx.Client, endpoint: str, body: Any) -> httpx.Response:
    return web.post(API + endpoint, json=body)


def get(web: httpx.Client, endpoint: str, /, **params: Any) -> httpx.Response:
    return web.get(API + endpoint, params=params)


def new_experiment(web: httpx.Client, name: str) -> str:
    return str(ok(post(web, "/experiments/create", {"name": name}))["experiment_id"])


def new_run(web: httpx.Client, experiment_id: str, **fields: Any) -> dict[str, Any]:
    run: dict[str, Any] = ok(post(web, "/runs/create", {"experiment_id": experiment_id, **fields}))["run"]
    return run


def tags_of(entity: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in entity.get("tags", [])}
