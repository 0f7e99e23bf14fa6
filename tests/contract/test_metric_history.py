"""GetMetricHistory over real gRPC on every backend: order, ranges, paging, downsampling."""

from __future__ import annotations

import math

import grpc
import pytest

import tracklane
from tracklane import exceptions
from tracklane.entities import Metric
from tracklane.testing import LocalServer
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc


def test_history_is_in_step_order_with_every_point(client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", float(s), s, 1000 + s) for s in (5, 1, 3)])
    client.log_batch(run_id, metrics=[Metric("loss", math.nan, 2, 50), Metric("loss", -math.inf, 4, 60)])
    series = client.get_metric_history(run_id, "loss")
    assert series.steps == [1, 2, 3, 4, 5]
    assert series.timestamps == [1001, 50, 1003, 60, 1005]
    assert math.isnan(series.values[1])
    assert series.values[3] == -math.inf
    assert client.get_metric_history(run_id, "loss", start_step=2, end_step=4).steps == [2, 3, 4]
    assert client.get_metric_history(run_id, "other").steps == []


def test_paging_returns_each_point_once_even_across_equal_steps(client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    # Three points at step 7 straddle a page boundary.
    points = [Metric("m", float(i), step, 100 + i) for i, step in enumerate([1, 2, 7, 7, 7, 9, 10])]
    client.log_batch(run_id, metrics=points)
    for page_size in (1, 2, 3, 4, 100):
        series = client.get_metric_history(run_id, "m", page_size=page_size)
        assert series.to_metrics() == sorted(points, key=lambda m: (m.step, m.timestamp)), page_size


def test_downsampling_keeps_spikes_and_ends(client: tracklane.Client) -> None:
    run_id = client.create_run().info.run_id
    values = [math.sin(i / 50) for i in range(20_000)]
    values[12_345] = 100.0
    values[777] = -100.0
    client.log_batch(run_id, metrics=[Metric("wave", v, i, 1) for i, v in enumerate(values)])
    series = client.get_metric_history(run_id, "wave", max_points=400)
    assert 0 < len(series) <= 400
    assert series.steps[0] == 0
    assert series.steps[-1] == 19_999
    assert 12_345 in series.steps
    assert 777 in series.steps
    assert series.steps == sorted(series.steps)


def test_history_errors(client: tracklane.Client, tracking_server: LocalServer) -> None:
    with pytest.raises(exceptions.NotFound):
        client.get_metric_history("0" * 32, "loss")
    run_id = client.create_run().info.run_id
    client.log_batch(run_id, metrics=[Metric("m", 1.0, s, 1) for s in range(10)])
    with pytest.raises(exceptions.InvalidArgument) as err:
        client.get_metric_history(run_id, "m", page_size=-1)
    assert err.value.field == "page_size"
    with grpc.insecure_channel(f"127.0.0.1:{tracking_server.port}") as channel:
        stub = tracking_pb2_grpc.TrackingServiceStub(channel)
        request = tracking_pb2.GetMetricHistoryRequest(run_id=run_id, key="m", page_size=3)
        token = stub.GetMetricHistory(request).next_page_token
        assert token
        with pytest.raises(grpc.RpcError) as bad_token:
            stub.GetMetricHistory(
                tracking_pb2.GetMetricHistoryRequest(run_id=run_id, key="m", page_token="garbage")
            )
        assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # A token is bound to its request: reusing it with another key is refused, not misread.
        other = tracking_pb2.GetMetricHistoryRequest(run_id=run_id, key="n", page_size=3, page_token=token)
        with pytest.raises(grpc.RpcError) as mismatch:
            stub.GetMetricHistory(other)
        assert mismatch.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_batch_history_reads_runs_by_keys_across_pages(client: tracklane.Client) -> None:
    runs = [client.create_run().info.run_id for _ in range(3)]
    for n, run_id in enumerate(runs):
        metrics = [Metric("loss", 1.0 / (s + 1), s, 10 + s) for s in range(5 + n)]
        if n != 1:  # run 1 has no "acc": it gets no series for it
            metrics += [Metric("acc", s / 10, s, 10 + s) for s in range(3)]
        client.log_batch(run_id, metrics=metrics)
    expected = {
        (run_id, key): client.get_metric_history(run_id, key).to_metrics()
        for run_id in runs
        for key in ("loss", "acc")
        if not (run_id == runs[1] and key == "acc")
    }
    for page_size in (0, 1, 4, 7):
        series = client.batch_get_metric_history(runs, ["loss", "acc"], page_size=page_size)
        assert [(s.run_id, s.key) for s in series] == list(expected), page_size  # run, then key order
        assert {(s.run_id, s.key): s.to_metrics() for s in series} == expected, page_size
    ranged = client.batch_get_metric_history(runs[:1], ["loss"], start_step=2, end_step=3)
    assert ranged[0].steps == [2, 3]
    with pytest.raises(exceptions.NotFound) as err:
        client.batch_get_metric_history([runs[0], "f" * 32], ["loss"])
    assert err.value.field == "run_ids[1]"
    with pytest.raises(exceptions.InvalidArgument) as too_many:
        client.batch_get_metric_history(runs, [f"k{i}" for i in range(101)])
    assert too_many.value.field == "keys"
