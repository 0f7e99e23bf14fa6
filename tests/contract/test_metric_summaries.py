"""Metric summaries (min, max, first, count) kept at ingest, on both backends and both write paths
(LogBatch and StreamMetrics), against a brute-force evaluation of the same points; and the search
grammar over them (``metrics.loss.min < 0.1``, order by ``metrics.loss.max``)."""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Iterator, Sequence

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracklane
from tests.contract.test_watch_run import stream_batch
from tracklane.entities import Metric
from tracklane.testing import LocalServer
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc

Point = tuple[int, float, int]  # step, value, timestamp


@pytest.fixture(scope="module")
def module_client(tracking_server: LocalServer) -> Iterator[tracklane.Client]:
    with tracklane.Client(tracking_server.uri) as client:
        yield client


@pytest.fixture(scope="module")
def stub(tracking_server: LocalServer) -> Iterator[tracking_pb2_grpc.TrackingServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{tracking_server.port}") as channel:
        yield tracking_pb2_grpc.TrackingServiceStub(channel)


def expected(points: Sequence[Point]) -> tuple[float, float, float, int, int]:
    """(min, max, first, first_step, count) by definition: NaN skipped by min/max; first is the
    lowest step, then the earliest timestamp, then the earliest stored."""
    finite = [v for _, v, _ in points if not math.isnan(v)]
    first = sorted(enumerate(points), key=lambda item: (item[1][0], item[1][2], item[0]))[0][1]
    nan = float("nan")
    return (min(finite, default=nan), max(finite, default=nan), first[1], first[0], len(points))


def summary_of(client: tracklane.Client, run_id: str, key: str) -> tuple[float, float, float, int, int]:
    run = client._tracking.GetRun(tracking_pb2.GetRunRequest(run_id=run_id))  # the raw message
    [metric] = [m for m in run.run.data.metrics if m.key == key]
    s = metric.summary
    return (s.min, s.max, s.first, s.first_step, s.count)


def same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True))


values = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([float("nan"), 0.0, -1.5, 2.5])
points = st.lists(st.tuples(st.integers(-3, 3), values, st.integers(1, 4)), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    points=points, cuts=st.lists(st.integers(0, 40), max_size=4), path=st.sampled_from(["batch", "stream"])
)
def test_summaries_match_brute_force(
    module_client: tracklane.Client,
    stub: tracking_pb2_grpc.TrackingServiceStub,
    points: list[Point],
    cuts: list[int],
    path: str,
) -> None:
    run_id = module_client.create_run().info.run_id
    bounds = [0, *sorted(c for c in cuts if c < len(points)), len(points)]
    writer = f"summary-{uuid.uuid4().hex[:8]}"
    batches = [points[lo:hi] for lo, hi in itertools.pairwise(bounds) if hi > lo]
    for sequence, batch in enumerate(batches, start=1):
        if path == "batch":
            module_client.log_batch(run_id, metrics=[Metric("m", v, s, t) for s, v, t in batch])
        else:
            stream_batch(stub, run_id, writer, sequence, [("m", s, v, t) for s, v, t in batch])
    got = summary_of(module_client, run_id, "m")
    assert same(got, expected(points)), (got, expected(points))


def test_search_and_order_by_summaries(client: tracklane.Client, unique: str) -> None:
    experiment_id = client.create_experiment(f"summaries-{unique}")
    histories = {
        "steady": [(0, 1.0, 1), (1, 0.5, 2), (2, 0.4, 3)],
        "spiky": [(0, 2.0, 1), (1, 0.05, 2), (2, 0.9, 3)],  # best epoch 0.05, ends at 0.9
        "nan-start": [(0, float("nan"), 1), (1, 0.3, 2)],
        "long": [(s, 1.0 / (s + 1), s + 1) for s in range(10)],
    }
    ids = {}
    for name, history in histories.items():
        run_id = client.create_run(experiment_id, run_name=name).info.run_id
        client.log_batch(run_id, metrics=[Metric("loss", v, s, t) for s, v, t in history])
        ids[run_id] = name

    def names(filter_text: str, order_by: Sequence[str] = ()) -> list[str]:
        runs = client.search_runs([experiment_id], filter_text, order_by=list(order_by))
        return [ids[r.info.run_id] for r in runs]

    assert sorted(names("metrics.loss.min <= 0.1")) == ["long", "spiky"]  # 0.1 for long: 1/10
    assert names("metrics.loss.min < 0.1") == ["spiky"]
    assert sorted(names("metrics.loss < 0.5")) == ["long", "nan-start", "steady"]
    assert sorted(names("metrics.loss.max >= 2")) == ["spiky"]
    assert sorted(names("metrics.loss.first = 1")) == ["long", "steady"]
    assert names("metrics.loss.first IS NULL") == []  # "no such key", not "NaN"
    assert sorted(names("metrics.loss.count > 3")) == ["long"]
    assert names("", ["metrics.loss.min ASC"]) == ["spiky", "long", "nan-start", "steady"]
    assert names("", ["metrics.loss.count DESC", "attributes.run_name ASC"]) == [
        "long",
        "spiky",
        "steady",
        "nan-start",
    ]
    # Keyset paging over a summary order gives every run once.
    seen: list[str] = []
    token = ""
    while True:
        page = client._tracking.SearchRuns(
            tracking_pb2.SearchRunsRequest(
                experiment_ids=[experiment_id],
                order_by=["metrics.loss.max DESC"],
                page_size=1,
                page_token=token,
            )
        )
        seen += [ids[r.info.run_id] for r in page.runs]
        token = page.next_page_token
        if not token:
            break
    assert seen == names("", ["metrics.loss.max DESC"])
    assert (seen[0], set(seen[1:3]), seen[3]) == ("spiky", {"long", "steady"}, "nan-start")
