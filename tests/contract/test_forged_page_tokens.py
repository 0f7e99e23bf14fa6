"""Forged page tokens over real gRPC on every backend: a token's check is not a signature, so anyone
can build one that passes it with any payload. Whatever the payload, every paged RPC answers with a
page or INVALID_ARGUMENT naming ``page_token``, never INTERNAL.

Each token here starts as a real ``next_page_token``; each cursor field (and each item of a list
field) is then dropped or replaced by a hostile JSON value (null, true, integers beyond int64, NaN,
lists, objects) and the token re-signed for the same request, as a hostile client can do.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from tests.contract.hostile import Stubs, serving, tag
from tracklane import exceptions
from tracklane.v1 import artifacts_pb2, registry_pb2, tracking_pb2
from tracklane_server.store.db.page_tokens import encode_page_token

HOSTILE_VALUES: list[Any] = [
    None,
    True,
    False,
    -1,
    2**63,
    2**70,
    1.5,
    math.nan,
    math.inf,
    "x",
    "",
    [],
    [None],
    {},
    {"a": 1},
]


def forgeries(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The payload with one field dropped or replaced (or one list item replaced) by a hostile value."""
    for key, value in payload.items():
        yield {k: v for k, v in payload.items() if k != key}
        for hostile in HOSTILE_VALUES:
            yield {**payload, key: hostile}
            if isinstance(value, list):
                for index in range(len(value)):
                    yield {**payload, key: [*value[:index], hostile, *value[index + 1 :]]}
    yield {**payload, "extra": 1}


def read_token(token: str) -> tuple[str, dict[str, Any]]:
    """(query fingerprint, payload) of a token, as page_tokens.py lays it out."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    body = json.loads(raw[9:])
    return body["q"], body["p"]


Paged = Callable[[str], Any]  # page_token -> response


@pytest.fixture(scope="module")
def paged_calls(stubs: Stubs) -> dict[str, Paged]:
    """Every paged RPC over three items, with page_size 1 so that each has a next page."""
    t, r, a = stubs.tracking, stubs.registry, stubs.artifacts
    experiment_id = t.CreateExperiment(
        tracking_pb2.CreateExperimentRequest(name=f"forged-{uuid.uuid4().hex}")
    ).experiment.experiment_id
    run_ids = []
    for i in range(3):
        run_id = t.CreateRun(
            tracking_pb2.CreateRunRequest(experiment_id=experiment_id, tags=[tag("t", str(i))])
        ).run.info.run_id
        t.LogBatch(
            tracking_pb2.LogBatchRequest(
                run_id=run_id,
                metrics=[
                    tracking_pb2.Metric(key="m", value=float(s), step=s, timestamp_ms=1) for s in range(3)
                ],
            )
        )
        run_ids.append(run_id)
    for i in range(3):
        header = artifacts_pb2.UploadHeader(run_id=run_ids[0], path=f"f{i}.txt")
        a.UploadArtifact(
            iter(
                [
                    artifacts_pb2.UploadArtifactRequest(header=header),
                    artifacts_pb2.UploadArtifactRequest(chunk=b"x"),
                ]
            )
        )
    model = f"forged-{uuid.uuid4().hex}"
    for name in (model, f"{model}-2"):
        r.CreateRegisteredModel(registry_pb2.CreateRegisteredModelRequest(name=name))
    for _ in range(3):
        r.CreateModelVersion(
            registry_pb2.CreateModelVersionRequest(name=model, source=f"runs:/{run_ids[0]}/m")
        )
    return {
        "SearchRuns": lambda tok: t.SearchRuns(
            tracking_pb2.SearchRunsRequest(
                experiment_ids=[experiment_id], order_by=["metrics.m DESC"], page_size=1, page_token=tok
            )
        ),
        "SearchExperiments": lambda tok: t.SearchExperiments(
            tracking_pb2.SearchExperimentsRequest(page_size=1, page_token=tok)
        ),
        "GetMetricHistory": lambda tok: t.GetMetricHistory(
            tracking_pb2.GetMetricHistoryRequest(run_id=run_ids[0], key="m", page_size=1, page_token=tok)
        ),
        "BatchGetMetricHistory": lambda tok: t.BatchGetMetricHistory(
            tracking_pb2.BatchGetMetricHistoryRequest(
                run_ids=run_ids, keys=["m"], page_size=1, page_token=tok
            )
        ),
        "SearchRegisteredModels": lambda tok: r.SearchRegisteredModels(
            registry_pb2.SearchRegisteredModelsRequest(page_size=1, page_token=tok)
        ),
        "SearchModelVersions": lambda tok: r.SearchModelVersions(
            registry_pb2.SearchModelVersionsRequest(filter=f"name = '{model}'", page_size=1, page_token=tok)
        ),
        "ListModelEvents": lambda tok: r.ListModelEvents(
            registry_pb2.ListModelEventsRequest(name=model, page_size=1, page_token=tok)
        ),
        "ListArtifacts": lambda tok: a.ListArtifacts(
            artifacts_pb2.ListArtifactsRequest(run_id=run_ids[0], page_size=1, page_token=tok)
        ),
    }


RPCS = [
    pytest.param("SearchRuns"),
    pytest.param("SearchExperiments"),
    pytest.param("GetMetricHistory"),
    pytest.param("BatchGetMetricHistory"),
    pytest.param("SearchRegisteredModels"),
    pytest.param("SearchModelVersions"),
    pytest.param("ListModelEvents"),
    "ListArtifacts",
]


@pytest.mark.parametrize("rpc", RPCS)
def test_forged_cursors_get_a_page_or_invalid_argument(
    stubs: Stubs, paged_calls: dict[str, Paged], rpc: str
) -> None:
    call = paged_calls[rpc]
    token = call("").next_page_token
    assert token, f"{rpc} should have a second page"
    query, payload = read_token(token)

    for cursor in forgeries(payload):
        error = _error(call, encode_page_token(cursor, query_fingerprint=query))
        if error is not None:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (
                f"{cursor}: {error.code()}: {error.details()}"
            )
            assert exceptions.from_rpc_error(error).field == "page_token", error.details()
    assert serving(stubs)


def _error(call: Paged, token: str) -> grpc.Call | None:
    try:
        call(token)
    except grpc.RpcError as err:
        if not isinstance(err, grpc.Call):
            raise
        return err
    return None
