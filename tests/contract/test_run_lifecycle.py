"""UpdateRun, DeleteRun/RestoreRun, DeleteTag and LogInputs over real gRPC on every backend."""

from __future__ import annotations

import grpc
import pytest

import tracklane
from tracklane import exceptions
from tracklane.entities import Dataset, DatasetInput, LifecycleStage, Param, RunStatus, RunTag, ViewType
from tracklane.testing import LocalServer
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc


def test_update_run_status_name_and_end_time(client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    info = client.update_run(run_id, name="renamed", description="about it")
    assert (info.run_name, info.description, info.status) == ("renamed", "about it", RunStatus.RUNNING)
    info = client.update_run(run_id, status="FINISHED")
    assert info.status is RunStatus.FINISHED
    assert info.end_time is not None  # a terminal status without an end time ends it now
    assert info.end_time >= (info.start_time or 0)
    client.set_terminated(run_id, "FAILED", end_time=1234)
    assert client.get_run(run_id).info.end_time == 1234
    resumed = client.update_run(run_id, status=RunStatus.RUNNING)
    assert resumed.status is RunStatus.RUNNING
    assert resumed.end_time is None


def test_update_run_errors(client: tracklane.Client, tracking_server: LocalServer) -> None:
    with pytest.raises(exceptions.NotFound):
        client.update_run("0" * 32, status="FINISHED")
    run_id = client.create_run().info.run_id
    with pytest.raises(exceptions.InvalidArgument) as err:
        client.update_run(run_id, name="")
    assert err.value.field == "run_name"
    with grpc.insecure_channel(f"127.0.0.1:{tracking_server.port}") as channel:
        stub = tracking_pb2_grpc.TrackingServiceStub(channel)
        request = tracking_pb2.UpdateRunRequest(run_id=run_id)
        request.update_mask.paths.append("experiment_id")
        with pytest.raises(grpc.RpcError) as bad_mask:
            stub.UpdateRun(request)
        assert bad_mask.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "experiment_id" in (bad_mask.value.details() or "")


def test_deleted_runs_leave_searches_and_refuse_writes_until_restored(
    client: tracklane.Client, unique: str
) -> None:
    experiment_id = client.create_experiment(f"trash-{unique}")
    keep, trash = (client.create_run(experiment_id).info.run_id for _ in range(2))
    client.delete_run(trash)
    assert client.get_run(trash).info.lifecycle_stage is LifecycleStage.DELETED
    assert [r.info.run_id for r in client.search_runs(experiment_id)] == [keep]
    assert [
        r.info.run_id for r in client.search_runs(experiment_id, run_view_type=ViewType.DELETED_ONLY)
    ] == [trash]
    assert len(client.search_runs(experiment_id, run_view_type=ViewType.ALL)) == 2
    with pytest.raises(exceptions.FailedPrecondition):
        client.log_batch(trash, params=[Param("a", "b")])
    client.restore_run(trash)
    client.log_batch(trash, params=[Param("a", "b")])
    assert client.get_run(trash).data.params == {"a": "b"}


def test_delete_tag(client: tracklane.Client) -> None:
    run = client.create_run()
    run_id = run.info.run_id
    client.log_batch(run_id, tags=[RunTag("a", "1"), RunTag("b", "2")])
    client.delete_tag(run_id, "a")
    assert client.get_run(run_id).data.tags == {"b": "2", "mlflow.runName": run.info.run_name}
    with pytest.raises(exceptions.NotFound) as err:
        client.delete_tag(run_id, "a")
    assert err.value.field == "key"


def test_log_inputs_is_idempotent_and_ordered(client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    train = Dataset(
        "iris", "abc12345", "local", '{"uri": "/data/iris.csv"}', '{"cols": 4}', '{"num_rows": 150}'
    )
    test = Dataset("iris-test", "def67890", "local", '{"uri": "/data/test.csv"}')
    inputs = [DatasetInput(train, "training", {"split": "0.8"}), DatasetInput(test, "test")]
    client.log_inputs(run_id, inputs)
    client.log_inputs(run_id, inputs[:1])  # again: no duplicate
    stored = client.get_run(run_id).inputs.dataset_inputs
    assert [(d.dataset, d.context, dict(d.tags)) for d in stored] == [
        (train, "training", {"split": "0.8"}),
        (test, "test", {}),
    ]
    with pytest.raises(exceptions.InvalidArgument) as err:
        client.log_inputs(run_id, [DatasetInput(Dataset("", "d", "local", "s"))])
    assert err.value.field == "datasets[0].dataset.name"
