"""The foundation's vertical slice over real gRPC, on every backend: experiments, runs, LogBatch."""

from __future__ import annotations

import math

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import tracklane
from tracklane import exceptions
from tracklane.entities import LifecycleStage, Metric, Param, RunStatus, RunTag
from tracklane.testing import LocalServer
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc


def test_experiment_round_trip(client: tracklane.Client, unique: str) -> None:
    experiment_id = client.create_experiment(f"exp-{unique}", tags={"team": "cv"}, description="d")
    experiment = client.get_experiment(experiment_id)
    assert experiment.experiment_id == experiment_id
    assert experiment.name == f"exp-{unique}"
    assert dict(experiment.tags) == {"team": "cv", "mlflow.note.content": "d"}  # MLflow's name for it
    assert experiment.description == "d"
    assert experiment.lifecycle_stage is LifecycleStage.ACTIVE
    assert experiment.creation_time is not None
    assert experiment.creation_time > 0
    # Default location: under the server's artifact root, named by the id.
    assert experiment.artifact_location.endswith(f"/{experiment_id}")
    assert client.get_experiment_by_name(f"exp-{unique}") == experiment


def test_experiment_errors(client: tracklane.Client, unique: str) -> None:
    client.create_experiment(f"dup-{unique}")
    with pytest.raises(exceptions.AlreadyExists) as err:
        client.create_experiment(f"dup-{unique}")
    assert err.value.field == "name"
    with pytest.raises(exceptions.InvalidArgument) as bad:
        client.create_experiment("   ")
    assert bad.value.field == "name"
    with pytest.raises(exceptions.InvalidArgument) as bad_tag:
        client.create_experiment(f"tag-{unique}", tags={"bad\nkey": "v"})
    assert bad_tag.value.field == "tags[0].key"
    with pytest.raises(exceptions.NotFound) as missing:
        client.get_experiment("987654321")
    assert missing.value.field == "experiment_id"
    with pytest.raises(exceptions.NotFound):
        client.get_experiment("not-an-id")
    assert client.get_experiment_by_name(f"missing-{unique}") is None


def test_default_experiment_exists(client: tracklane.Client) -> None:
    default = client.get_experiment("0")
    assert default.name == "Default"
    run = client.create_run()  # no experiment: the default one
    assert run.info.experiment_id == "0"


def test_run_round_trip(client: tracklane.Client, unique: str) -> None:
    experiment_id = client.create_experiment(f"runs-{unique}")
    experiment = client.get_experiment(experiment_id)
    run = client.create_run(experiment_id, start_time=1_700_000_000_123, tags={"k": "v"}, run_name="first")
    assert run.info.status is RunStatus.RUNNING
    assert run.info.start_time == 1_700_000_000_123
    assert run.info.end_time is None
    assert run.info.run_name == "first"
    assert run.info.artifact_uri == f"{experiment.artifact_location}/{run.info.run_id}/artifacts"
    assert dict(run.data.tags) == {"k": "v", "mlflow.runName": "first"}  # the name, as MLflow tags it
    assert client.get_run(run.info.run_id) == run

    generated = client.create_run(experiment_id)
    assert generated.info.run_name.count("-") >= 2  # adjective-noun-number, like MLflow
    child = client.create_run(experiment_id, parent_run_id=run.info.run_id)
    assert child.info.parent_run_id == run.info.run_id


def test_run_errors(client: tracklane.Client, unique: str) -> None:
    with pytest.raises(exceptions.NotFound) as err:
        client.create_run("424242")
    assert err.value.field == "experiment_id"
    with pytest.raises(exceptions.NotFound) as missing_parent:
        client.create_run("0", parent_run_id="0" * 32)
    assert missing_parent.value.field == "parent_run_id"
    other = client.create_experiment(f"other-{unique}")
    parent = client.create_run("0")
    with pytest.raises(exceptions.InvalidArgument) as cross:
        client.create_run(other, parent_run_id=parent.info.run_id)
    assert cross.value.field == "parent_run_id"
    with pytest.raises(exceptions.NotFound):
        client.get_run("f" * 32)


def test_create_run_is_idempotent_with_request_id(client: tracklane.Client, unique: str) -> None:
    first = client.create_run("0", request_id=f"req-{unique}")
    again = client.create_run("0", request_id=f"req-{unique}")
    assert again.info.run_id == first.info.run_id


def test_log_batch_stores_everything(client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    client.log_batch(
        run_id,
        metrics=[
            Metric("loss", 1.0, step=0, timestamp=1000),
            Metric("loss", 0.5, step=1, timestamp=2000),
            Metric("acc", math.inf, step=3, timestamp=1000),
            Metric("odd", math.nan, step=0, timestamp=1000),
            Metric("neg", -math.inf, step=0, timestamp=1000),
        ],
        params=[Param("lr", "0.01"), Param("layers", "3")],
        tags=[RunTag("team", "cv")],
    )
    data = client.get_run(run_id).data
    assert dict(data.params) == {"lr": "0.01", "layers": "3"}
    assert data.tags["team"] == "cv"
    assert data.latest_metrics["loss"] == Metric("loss", 0.5, 1, 2000)
    assert data.metrics["acc"] == math.inf
    assert data.metrics["neg"] == -math.inf
    assert math.isnan(data.metrics["odd"])


def test_latest_metric_is_by_step_not_arrival(client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    client.log_metric(run_id, "m", 5.0, timestamp=10, step=5)
    client.log_metric(run_id, "m", 1.0, timestamp=20, step=1)  # late arrival of an older step
    assert client.get_run(run_id).data.latest_metrics["m"] == Metric("m", 5.0, 5, 10)


def test_params_are_set_once(client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    client.log_param(run_id, "lr", 0.1)
    client.log_param(run_id, "lr", 0.1)  # the same value again is fine
    with pytest.raises(exceptions.InvalidArgument) as err:
        client.log_batch(run_id, metrics=[Metric("loss", 1.0)], params=[Param("lr", "0.2")])
    assert err.value.field == "params[0].value"
    run = client.get_run(run_id)
    assert run.data.params["lr"] == "0.1"
    assert "loss" not in run.data.metrics  # atomic: the batch's metric was not stored either


def test_log_batch_rejects_bad_input_naming_the_field(client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    cases = [
        ({"metrics": [Metric("ok", 1.0), Metric("", 1.0)]}, "metrics[1].key"),
        ({"metrics": [Metric("../up", 1.0)]}, "metrics[0].key"),
        ({"params": [Param("k" * 251, "v")]}, "params[0].key"),
        ({"params": [Param("k", "v" * 70_000)]}, "params[0].value"),
        ({"tags": [RunTag("t", "nul\x00byte")]}, "tags[0].value"),
    ]
    for kwargs, field in cases:
        with pytest.raises(exceptions.InvalidArgument) as err:
            client.log_batch(run_id, **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field
    assert client.get_run(run_id).data.metrics == {}
    with pytest.raises(exceptions.NotFound):
        client.log_batch("0" * 32, params=[Param("a", "b")])


def test_errors_carry_google_rpc_details_on_the_wire(tracking_server: LocalServer) -> None:
    """What a Go or Java client sees: the status code plus a BadRequest naming the field."""
    with grpc.insecure_channel(f"127.0.0.1:{tracking_server.port}") as channel:
        stub = tracking_pb2_grpc.TrackingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.CreateExperiment(tracking_pb2.CreateExperimentRequest(name=""))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(err.value)
        assert status is not None
        bad_request = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(bad_request)
        assert bad_request.field_violations[0].field == "name"
