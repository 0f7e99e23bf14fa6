"""The services over Connect on the HTTP listener (real HTTP on loopback, both backends): the same
servicers as gRPC, so what one side writes the other reads, with the same error codes and details."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

import tracklane
from tests.connect_helpers import ConnectFailure, envelope, server_stream, unary, unary_json
from tracklane.entities import Metric, Param
from tracklane.testing import LocalServer
from tracklane.v1 import artifacts_pb2, auth_pb2, registry_pb2, tracking_pb2


@pytest.fixture
def http(tracking_server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tracking_server.http_url, timeout=30) as web:
        yield web


def test_unary_json_and_binary_reach_the_same_store_as_grpc(
    http: httpx.Client, client: tracklane.Client, unique: str
) -> None:
    created = unary_json(http, "TrackingService/CreateExperiment", {"name": f"connect-{unique}"})
    experiment_id = created["experiment"]["experimentId"]
    assert client.get_experiment(experiment_id).name == f"connect-{unique}"  # written over HTTP, read by gRPC
    run_id = client.create_run(experiment_id, run_name="from-grpc").info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", 0.25, 3, 1000)], params=[Param("lr", "0.1")])
    got = unary(
        http, "TrackingService/GetRun", tracking_pb2.GetRunRequest(run_id=run_id), tracking_pb2.GetRunResponse
    )
    assert got.run.info.run_name == "from-grpc"
    assert [(m.key, m.value, m.step) for m in got.run.data.metrics] == [("loss", 0.25, 3)]
    assert {p.key: p.value for p in got.run.data.params} == {"lr": "0.1"}


def test_search_runs_over_connect_equals_grpc(
    http: httpx.Client, client: tracklane.Client, unique: str
) -> None:
    experiment_id = client.create_experiment(f"search-{unique}")
    for i in range(5):
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(run_id, metrics=[Metric("m", float(i), 0, 0)])
    request = tracking_pb2.SearchRunsRequest(
        experiment_ids=[experiment_id], filter="metrics.m >= 2", order_by=["metrics.m DESC"]
    )
    over_http = unary(http, "TrackingService/SearchRuns", request, tracking_pb2.SearchRunsResponse)
    over_grpc = client.search_runs([experiment_id], "metrics.m >= 2", order_by=["metrics.m DESC"])
    assert [r.info.run_id for r in over_http.runs] == [r.info.run_id for r in over_grpc]
    assert len(over_http.runs) == 3


def test_errors_keep_their_code_message_and_field(http: httpx.Client, client: tracklane.Client) -> None:
    with pytest.raises(ConnectFailure) as missing:
        unary(
            http,
            "TrackingService/GetRun",
            tracking_pb2.GetRunRequest(run_id="f" * 32),
            tracking_pb2.GetRunResponse,
        )
    assert (missing.value.http_status, missing.value.code) == (404, "not_found")
    assert missing.value.fields == ["run_id"]
    assert "does not exist" in missing.value.message
    with pytest.raises(ConnectFailure) as bad_filter:
        unary_json(http, "TrackingService/SearchRuns", {"experimentIds": ["0"], "filter": "metrics.x >>> 1"})
    assert (bad_filter.value.http_status, bad_filter.value.code) == (400, "invalid_argument")
    assert bad_filter.value.fields == ["filter"]
    name = f"dup-{uuid.uuid4().hex[:8]}"
    client.create_experiment(name)
    with pytest.raises(ConnectFailure) as duplicate:
        unary_json(http, "TrackingService/CreateExperiment", {"name": name})
    assert (duplicate.value.http_status, duplicate.value.code) == (409, "already_exists")


def test_a_body_that_is_not_the_message_is_invalid_argument(http: httpx.Client) -> None:
    reply = http.post(
        "/tracklane.v1.TrackingService/GetRun",
        content=b"\xff\xff\xff",
        headers={"content-type": "application/proto"},
    )
    assert reply.status_code == 400
    assert reply.json()["code"] == "invalid_argument"


def test_each_service_answers(http: httpx.Client, client: tracklane.Client, unique: str) -> None:
    run_id = client.create_run().info.run_id
    listed = unary(
        http,
        "ArtifactService/ListArtifacts",
        artifacts_pb2.ListArtifactsRequest(run_id=run_id),
        artifacts_pb2.ListArtifactsResponse,
    )
    assert list(listed.files) == []
    model = unary(
        http,
        "RegistryService/CreateRegisteredModel",
        registry_pb2.CreateRegisteredModelRequest(name=f"model-{unique}"),
        registry_pb2.CreateRegisteredModelResponse,
    )
    assert model.registered_model.name == f"model-{unique}"
    with pytest.raises(ConnectFailure) as off:  # auth is off on this server: said as over gRPC
        unary(
            http,
            "AuthService/GetCurrentUser",
            auth_pb2.GetCurrentUserRequest(),
            auth_pb2.GetCurrentUserResponse,
        )
    assert off.value.code == "failed_precondition"


def test_client_streaming_methods_say_to_use_grpc(http: httpx.Client) -> None:
    reply = http.post(
        "/tracklane.v1.TrackingService/StreamMetrics",
        content=envelope(b""),
        headers={"content-type": "application/connect+proto"},
    )
    end = reply.content[5:]
    assert b'"unimplemented"' in end
    assert b"over gRPC" in end


def test_grpc_web_unary(http: httpx.Client, client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    reply = http.post(
        "/tracklane.v1.TrackingService/GetRun",
        content=envelope(tracking_pb2.GetRunRequest(run_id=run_id).SerializeToString()),
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
    )
    assert reply.status_code == 200
    body = reply.content
    length = int.from_bytes(body[1:5], "big")
    assert tracking_pb2.GetRunResponse.FromString(body[5 : 5 + length]).run.info.run_id == run_id
    assert b"grpc-status:0" in body[5 + length :].replace(b" ", b"")  # the trailers frame


def test_watch_run_streams_history_then_new_points(http: httpx.Client, client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", float(s), s, 10 + s) for s in range(3)])
    request = tracking_pb2.WatchRunRequest(run_id=run_id, start_step=1)
    received: list[tuple[int, float]] = []
    arrived = threading.Event()

    def watch() -> None:
        for response in server_stream(
            http, "TrackingService/WatchRun", request, tracking_pb2.WatchRunResponse
        ):
            for series in response.series:
                received.extend(zip(series.steps, series.values, strict=True))
            if len(received) >= 3:
                arrived.set()
                return

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert received == [(1, 1.0), (2, 2.0)]  # the history from start_step
    client.log_batch(run_id, metrics=[Metric("loss", 9.0, 3, 13)])
    assert arrived.wait(10), received
    assert received[2] == (3, 9.0)
    reader.join(5)


def test_watch_run_error_arrives_as_the_end_of_stream(http: httpx.Client) -> None:
    request = tracking_pb2.WatchRunRequest(run_id="")
    with pytest.raises(ConnectFailure) as failure:
        list(server_stream(http, "TrackingService/WatchRun", request, tracking_pb2.WatchRunResponse))
    assert failure.value.code == "invalid_argument"
    assert failure.value.fields == ["run_id"]
