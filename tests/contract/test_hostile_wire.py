"""Numbers, bytes and sizes over real gRPC on every backend: NaN and infinities, extreme steps,
malformed protobuf, invalid UTF-8, every hard limit and an over-size message.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.contract.hostile import (
    INT64_MAX,
    INT64_MIN,
    Bystander,
    Stubs,
    bits,
    invalid,
    open_stubs,
    refused,
    serving,
    tag,
)
from tracklane.testing import LocalServer
from tracklane.v1 import registry_pb2, tracking_pb2
from tracklane_server.store import validation as v
from tracklane_server.store.registry.checks import SOURCE_MAX, TAGS_MAX

# Every test ends by checking the server still answers and the bystander is untouched.
pytestmark = pytest.mark.usefixtures("server_survives")


@pytest.fixture
def run_id(stubs: Stubs) -> str:
    return str(stubs.tracking.CreateRun(tracking_pb2.CreateRunRequest()).run.info.run_id)


# -- numbers -----------------------------------------------------------------------------------------------

VALUES = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, -5e-324, 1.7976931348623157e308, 1 / 3]
STEPS = [INT64_MIN, -1, 0, 1, INT64_MAX]
TIMESTAMPS = [INT64_MIN, -1, 1, INT64_MAX]  # 0 means "now", as an unset field does


def test_metric_values_steps_and_times_round_trip_exactly(stubs: Stubs, run_id: str) -> None:
    t = stubs.tracking
    points = [
        (value, STEPS[i % len(STEPS)], TIMESTAMPS[i % len(TIMESTAMPS)]) for i, value in enumerate(VALUES)
    ]
    t.LogBatch(
        tracking_pb2.LogBatchRequest(
            run_id=run_id,
            metrics=[tracking_pb2.Metric(key="m", value=x, step=s, timestamp_ms=ts) for x, s, ts in points],
        )
    )
    series = t.GetMetricHistory(
        tracking_pb2.GetMetricHistoryRequest(run_id=run_id, key="m", page_size=1000)
    ).series
    got = sorted(zip(series.steps, series.timestamps_ms, [bits(x) for x in series.values], strict=True))
    assert got == sorted((s, ts, bits(x)) for x, s, ts in points)


def test_latest_value_is_at_the_highest_step_even_at_int64_extremes(stubs: Stubs, run_id: str) -> None:
    steps = [INT64_MAX, INT64_MIN]  # MIN - MAX wraps around to +1
    stubs.tracking.LogBatch(
        tracking_pb2.LogBatchRequest(
            run_id=run_id,
            metrics=[tracking_pb2.Metric(key="m", value=float(s % 7), step=s, timestamp_ms=1) for s in steps],
        )
    )
    (latest,) = stubs.tracking.GetRun(tracking_pb2.GetRunRequest(run_id=run_id)).run.data.metrics
    assert latest.step == INT64_MAX


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_each_non_finite_value_is_stored_alone(stubs: Stubs, run_id: str, value: float) -> None:
    stubs.tracking.LogBatch(
        tracking_pb2.LogBatchRequest(
            run_id=run_id, metrics=[tracking_pb2.Metric(key="x", value=value, step=3, timestamp_ms=4)]
        )
    )
    (metric,) = stubs.tracking.GetRun(tracking_pb2.GetRunRequest(run_id=run_id)).run.data.metrics
    assert (bits(metric.value), metric.step, metric.timestamp_ms) == (bits(value), 3, 4)


def test_out_of_range_times_are_refused(stubs: Stubs, run_id: str) -> None:
    t = stubs.tracking
    for seconds, nanos in [(INT64_MAX, 0), (INT64_MIN, 0), (253_402_300_800, 0), (0, -1), (0, 10**9)]:
        invalid(
            t.CreateRun,
            tracking_pb2.CreateRunRequest(start_time={"seconds": seconds, "nanos": nanos}),
            "start_time",
        )
        invalid(
            t.UpdateRun,
            tracking_pb2.UpdateRunRequest(run_id=run_id, end_time={"seconds": seconds, "nanos": nanos}),
            "end_time",
        )
    # The extremes of the range are times like any other.
    for seconds in (-62_135_596_800, 253_402_300_799):
        run = t.CreateRun(tracking_pb2.CreateRunRequest(start_time={"seconds": seconds})).run
        assert run.info.start_time.seconds == seconds


@pytest.mark.parametrize(
    ("call", "request_for", "field"),
    [
        (
            "SearchRuns",
            lambda r: tracking_pb2.SearchRunsRequest(experiment_ids=["0"], page_size=-1),
            "page_size",
        ),
        ("SearchExperiments", lambda r: tracking_pb2.SearchExperimentsRequest(page_size=-1), "page_size"),
        (
            "GetMetricHistory",
            lambda r: tracking_pb2.GetMetricHistoryRequest(run_id=r, key="m", page_size=-1),
            "page_size",
        ),
        (
            "GetMetricHistory",
            lambda r: tracking_pb2.GetMetricHistoryRequest(run_id=r, key="m", max_points=-1),
            "max_points",
        ),
        (
            "SearchRegisteredModels",
            lambda r: registry_pb2.SearchRegisteredModelsRequest(page_size=-1),
            "page_size",
        ),
        ("SearchModelVersions", lambda r: registry_pb2.SearchModelVersionsRequest(page_size=-1), "page_size"),
        ("UpdateRun", lambda r: tracking_pb2.UpdateRunRequest(run_id=r, status=99), "status"),
        (
            "SearchRuns",
            lambda r: tracking_pb2.SearchRunsRequest(experiment_ids=["0"], run_view_type=99),
            "run_view_type",
        ),
    ],
)
def test_negative_sizes_and_unknown_enums_are_refused(
    stubs: Stubs, run_id: str, call: str, request_for: Callable[[str], Any], field: str
) -> None:
    service = stubs.registry if call.endswith(("Models", "Versions")) else stubs.tracking
    invalid(getattr(service, call), request_for(run_id), field)


def test_huge_page_sizes_are_capped(stubs: Stubs) -> None:
    found = stubs.tracking.SearchExperiments(tracking_pb2.SearchExperimentsRequest(page_size=2**31 - 1))
    assert len(found.experiments) <= v.PAGE_SIZE_MAX


# -- bytes that are not a valid message --------------------------------------------------------------------

MALFORMED = {
    "not protobuf": b"\xff",
    "length past the end": b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    "truncated string": b"\x0a\x05ab",
    "truncated varint": b"\x08\x80",
    "wire type 7": b"\x0f",
    "field number 0": b"\x00",
    "invalid UTF-8 in a string": b"\x0a\x03a\xffb",
    "lone surrogate in UTF-8": b"\x0a\x03\xed\xa0\x80",
    "random bytes": bytes(range(256)) * 4,
}
METHODS = [
    "/tracklane.v1.TrackingService/CreateExperiment",
    "/tracklane.v1.TrackingService/LogBatch",
    "/tracklane.v1.TrackingService/SearchRuns",
    "/tracklane.v1.RegistryService/CreateRegisteredModel",
]


def _send_raw(stubs: Stubs, method: str, raw: bytes) -> grpc.RpcError:
    # No serializer: the bytes go on the wire as they are.
    with pytest.raises(grpc.RpcError) as info:
        stubs.channel.unary_unary(method)(raw, timeout=30)
    return info.value


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_messages_are_refused_and_nothing_is_stored(stubs: Stubs, method: str, raw: bytes) -> None:
    before = stubs.tracking.SearchExperiments(tracking_pb2.SearchExperimentsRequest(page_size=1000))
    err = _send_raw(stubs, method, raw)
    assert isinstance(err, grpc.Call)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert "request" in (err.details() or "")
    after = stubs.tracking.SearchExperiments(tracking_pb2.SearchExperimentsRequest(page_size=1000))
    assert after == before


def test_malformed_messages_are_invalid_argument(stubs: Stubs) -> None:
    err = _send_raw(stubs, METHODS[0], MALFORMED["invalid UTF-8 in a string"])
    assert isinstance(err, grpc.Call)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- hard limits: one over each is refused, naming the field -----------------------------------------------

LIMITS: list[tuple[str, str, Callable[[str, str], Any], str]] = [
    # (what, rpc, request(run_id, experiment_id) one over the limit, field)
    (
        "experiment name",
        "CreateExperiment",
        lambda r, e: tracking_pb2.CreateExperimentRequest(name="n" * (v.EXPERIMENT_NAME_MAX + 1)),
        "name",
    ),
    (
        "experiment description",
        "CreateExperiment",
        lambda r, e: tracking_pb2.CreateExperimentRequest(
            name=uuid.uuid4().hex, description="d" * (v.DESCRIPTION_MAX + 1)
        ),
        "description",
    ),
    (
        "experiment tag key",
        "CreateExperiment",
        lambda r, e: tracking_pb2.CreateExperimentRequest(
            name=uuid.uuid4().hex, tags=[tag("k" * (v.KEY_MAX + 1), "v")]
        ),
        "tags[0].key",
    ),
    (
        "experiment tag value",
        "SetExperimentTag",
        lambda r, e: tracking_pb2.SetExperimentTagRequest(
            experiment_id=e, tag=tag("k", "v" * (v.TAG_VALUE_MAX + 1))
        ),
        "tag.value",
    ),
    (
        "run name",
        "CreateRun",
        lambda r, e: tracking_pb2.CreateRunRequest(experiment_id=e, run_name="n" * (v.RUN_NAME_MAX + 1)),
        "run_name",
    ),
    (
        "run description",
        "UpdateRun",
        lambda r, e: tracking_pb2.UpdateRunRequest(run_id=r, description="d" * (v.DESCRIPTION_MAX + 1)),
        "description",
    ),
    (
        "run user id",
        "CreateRun",
        lambda r, e: tracking_pb2.CreateRunRequest(experiment_id=e, user_id="u" * (v.USER_ID_MAX + 1)),
        "user_id",
    ),
    (
        "run request id",
        "CreateRun",
        lambda r, e: tracking_pb2.CreateRunRequest(experiment_id=e, request_id="q" * (v.REQUEST_ID_MAX + 1)),
        "request_id",
    ),
    (
        "run tags",
        "CreateRun",
        lambda r, e: tracking_pb2.CreateRunRequest(
            experiment_id=e, tags=[tag(f"k{i}", "v") for i in range(v.BATCH_TAGS_MAX + 1)]
        ),
        "tags",
    ),
    (
        "metrics per batch",
        "LogBatch",
        lambda r, e: tracking_pb2.LogBatchRequest(
            run_id=r, metrics=[tracking_pb2.Metric(key="m", value=1.0, step=1)] * (v.BATCH_METRICS_MAX + 1)
        ),
        "metrics",
    ),
    (
        "params per batch",
        "LogBatch",
        lambda r, e: tracking_pb2.LogBatchRequest(
            run_id=r,
            params=[tracking_pb2.Param(key=f"p{i}", value="v") for i in range(v.BATCH_PARAMS_MAX + 1)],
        ),
        "params",
    ),
    (
        "tags per batch",
        "LogBatch",
        lambda r, e: tracking_pb2.LogBatchRequest(
            run_id=r, tags=[tag(f"t{i}", "v") for i in range(v.BATCH_TAGS_MAX + 1)]
        ),
        "tags",
    ),
    (
        "param value",
        "LogBatch",
        lambda r, e: tracking_pb2.LogBatchRequest(
            run_id=r, params=[tracking_pb2.Param(key="p", value="v" * (v.PARAM_VALUE_MAX + 1))]
        ),
        "params[0].value",
    ),
    (
        "metric key",
        "LogBatch",
        lambda r, e: tracking_pb2.LogBatchRequest(
            run_id=r, metrics=[tracking_pb2.Metric(key="k" * (v.KEY_MAX + 1), value=1.0)]
        ),
        "metrics[0].key",
    ),
    (
        "filter length",
        "SearchRuns",
        lambda r, e: tracking_pb2.SearchRunsRequest(
            experiment_ids=[e], filter="params.p = '" + "x" * v.FILTER_MAX + "'"
        ),
        "filter",
    ),
    (
        "order_by items",
        "SearchRuns",
        lambda r, e: tracking_pb2.SearchRunsRequest(
            experiment_ids=[e], order_by=["start_time"] * (v.ORDER_BY_MAX + 1)
        ),
        "order_by",
    ),
    (
        "experiment ids per search",
        "SearchRuns",
        lambda r, e: tracking_pb2.SearchRunsRequest(experiment_ids=[e] * (v.SEARCH_EXPERIMENT_IDS_MAX + 1)),
        "experiment_ids",
    ),
    (
        "experiment filter length",
        "SearchExperiments",
        lambda r, e: tracking_pb2.SearchExperimentsRequest(filter="name = '" + "x" * v.FILTER_MAX + "'"),
        "filter",
    ),
    (
        "run id length",
        "GetRun",
        lambda r, e: tracking_pb2.GetRunRequest(run_id="r" * (v.ID_MAX + 1)),
        "run_id",
    ),
    (
        "model name",
        "CreateRegisteredModel",
        lambda r, e: registry_pb2.CreateRegisteredModelRequest(name="m" * 251),
        "name",
    ),
    (
        "model description",
        "CreateRegisteredModel",
        lambda r, e: registry_pb2.CreateRegisteredModelRequest(
            name=uuid.uuid4().hex, description="d" * (v.DESCRIPTION_MAX + 1)
        ),
        "description",
    ),
    (
        "model tags",
        "CreateRegisteredModel",
        lambda r, e: registry_pb2.CreateRegisteredModelRequest(
            name=uuid.uuid4().hex, tags=[tag(f"k{i}", "v") for i in range(TAGS_MAX + 1)]
        ),
        "tags",
    ),
    (
        "model filter length",
        "SearchModelVersions",
        lambda r, e: registry_pb2.SearchModelVersionsRequest(filter="name = '" + "x" * v.FILTER_MAX + "'"),
        "filter",
    ),
    (
        "model order_by items",
        "SearchRegisteredModels",
        lambda r, e: registry_pb2.SearchRegisteredModelsRequest(order_by=["name"] * (v.ORDER_BY_MAX + 1)),
        "order_by",
    ),
    (
        "alias",
        "SetRegisteredModelAlias",
        lambda r, e: registry_pb2.SetRegisteredModelAliasRequest(
            name="m", alias="a" * (v.ALIAS_MAX + 1), version=1
        ),
        "alias",
    ),
]


@pytest.mark.parametrize(("what", "rpc", "request_for", "field"), LIMITS, ids=[row[0] for row in LIMITS])
def test_one_over_each_limit_is_refused(
    stubs: Stubs,
    bystander: tuple[Bystander, list[bytes]],
    what: str,
    rpc: str,
    request_for: Callable[[str, str], Any],
    field: str,
) -> None:
    _b, _ = bystander
    experiment_id = stubs.tracking.CreateExperiment(
        tracking_pb2.CreateExperimentRequest(name=f"limits-{uuid.uuid4().hex}")
    ).experiment.experiment_id
    run_id = stubs.tracking.CreateRun(
        tracking_pb2.CreateRunRequest(experiment_id=experiment_id)
    ).run.info.run_id
    service = stubs.registry if hasattr(registry_pb2, f"{rpc}Request") else stubs.tracking
    message = invalid(getattr(service, rpc), request_for(run_id, experiment_id), field)
    assert any(word in message for word in ("longer than", "at most", "1-255")), message
    run = stubs.tracking.GetRun(tracking_pb2.GetRunRequest(run_id=run_id)).run
    assert not run.data.metrics
    assert not run.data.params
    assert [t.key for t in run.data.tags] == ["mlflow.runName"]  # the run's name, shown as MLflow's tag


def test_source_limit(stubs: Stubs, unique: str) -> None:
    name = f"source-limit-{unique}"
    stubs.registry.CreateRegisteredModel(registry_pb2.CreateRegisteredModelRequest(name=name))
    request = registry_pb2.CreateModelVersionRequest(name=name, source="s3://b/" + "k" * SOURCE_MAX)
    invalid(stubs.registry.CreateModelVersion, request, "source")


def test_over_size_message_is_resource_exhausted(tmp_path: Path) -> None:
    limit = 1024 * 1024
    with LocalServer(tmp_path, max_message_bytes=limit) as server:
        for stubs in open_stubs(server):
            run_id = stubs.tracking.CreateRun(tracking_pb2.CreateRunRequest()).run.info.run_id
            big = tracking_pb2.LogBatchRequest(
                run_id=run_id, params=[tracking_pb2.Param(key="p", value="v" * (limit + 1))]
            )
            with pytest.raises(grpc.RpcError) as info:
                stubs.tracking.LogBatch(big, timeout=30)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert str(limit) in (info.value.details() or "")
            assert serving(stubs)
            small = tracking_pb2.LogBatchRequest(
                run_id=run_id, params=[tracking_pb2.Param(key="p", value="v")]
            )
            stubs.tracking.LogBatch(small, timeout=30)
            params = stubs.tracking.GetRun(tracking_pb2.GetRunRequest(run_id=run_id)).run.data.params
            assert [(p.key, p.value) for p in params] == [("p", "v")]


def test_a_missing_run_is_not_found_naming_the_field(stubs: Stubs) -> None:
    refused(
        stubs.tracking.GetRun,
        tracking_pb2.GetRunRequest(run_id="0" * 32),
        grpc.StatusCode.NOT_FOUND,
        "run_id",
    )


def test_a_malformed_batch_in_a_metric_stream_is_invalid_argument(stubs: Stubs, run_id: str) -> None:
    good = tracking_pb2.StreamMetricsRequest(
        run_id=run_id, writer_id="w-malformed", sequence=1, keys=["m"], key_indices=[0], values=[1.0],
        steps=[1], timestamps_ms=[1],
    ).SerializeToString()  # fmt: skip
    acked = threading.Event()

    def requests() -> Iterator[bytes]:
        yield good
        acked.wait(30)  # the malformed one only once the good one is stored
        yield MALFORMED["truncated varint"]

    call = stubs.channel.stream_stream("/tracklane.v1.TrackingService/StreamMetrics")
    responses = call(requests(), timeout=30)
    next(responses)  # the good batch's ack
    acked.set()
    with pytest.raises(grpc.RpcError) as info:
        next(responses)  # then the refusal
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()  # type: ignore[attr-defined]
    history = stubs.tracking.GetMetricHistory(tracking_pb2.GetMetricHistoryRequest(run_id=run_id, key="m"))
    assert list(history.series.steps) == [1]  # the good batch before it stays stored
