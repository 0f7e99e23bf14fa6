"""Hostile text over real gRPC on every backend: SQL fragments, wildcards, quotes, bidi and emoji.

Each input is either stored exactly (read back and compared) or refused with INVALID_ARGUMENT naming
the field; after each test the server still answers and the bystander's data is unchanged.
"""

from __future__ import annotations

import uuid

import grpc
import pytest

from tests.contract.hostile import (
    HOSTILE_TEXT,
    Stubs,
    invalid,
    tag,
)
from tracklane.v1 import artifacts_pb2, registry_pb2, tracking_pb2

# Every test ends by checking the server still answers and the bystander is untouched.
pytestmark = pytest.mark.usefixtures("server_survives")


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- free text: stored exactly --------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_tracking_text_is_stored_exactly(stubs: Stubs, unique: str, text: str) -> None:
    t = stubs.tracking
    name = f"{unique} {text}"
    experiment = t.CreateExperiment(
        tracking_pb2.CreateExperimentRequest(name=name, description=text, tags=[tag("note", text)])
    ).experiment
    found = t.GetExperimentByName(tracking_pb2.GetExperimentByNameRequest(name=name)).experiment
    assert (found.name, found.description) == (name, text)
    # The description is also shown as MLflow's mlflow.note.content tag.
    assert [(x.key, x.value) for x in found.tags] == [("mlflow.note.content", text), ("note", text)]
    by_filter = t.SearchExperiments(tracking_pb2.SearchExperimentsRequest(filter=f"name = {quoted(name)}"))
    assert [e.experiment_id for e in by_filter.experiments] == [experiment.experiment_id]

    run = t.CreateRun(
        tracking_pb2.CreateRunRequest(
            experiment_id=experiment.experiment_id,
            run_name=text[:250],
            description=text,
            user_id=text,
            tags=[tag("note", text)],
        )
    ).run
    t.LogBatch(
        tracking_pb2.LogBatchRequest(
            run_id=run.info.run_id, params=[tracking_pb2.Param(key="p", value=text)], tags=[tag("t2", text)]
        )
    )
    stored = t.GetRun(tracking_pb2.GetRunRequest(run_id=run.info.run_id)).run
    assert (stored.info.run_name, stored.info.description, stored.info.user_id) == (text, text, text)
    assert [(p.key, p.value) for p in stored.data.params] == [("p", text)]
    assert {x.key: x.value for x in stored.data.tags}["t2"] == text

    for search in (f"params.p = {quoted(text)}", f"tags.t2 = {quoted(text)}", f"run_name = {quoted(text)}"):
        runs = t.SearchRuns(
            tracking_pb2.SearchRunsRequest(experiment_ids=[experiment.experiment_id], filter=search)
        ).runs
        assert [r.info.run_id for r in runs] == [run.info.run_id], search


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_registry_text_is_stored_exactly_or_refused(stubs: Stubs, unique: str, text: str) -> None:
    r = stubs.registry
    name = f"{unique} {text} end"
    if "/" in text or "@" in text:
        invalid(r.CreateRegisteredModel, registry_pb2.CreateRegisteredModelRequest(name=name), "name")
        name = f"{unique} plain"
    model = r.CreateRegisteredModel(
        registry_pb2.CreateRegisteredModelRequest(name=name, description=text, tags=[tag("note", text)])
    ).registered_model
    assert (model.name, model.description) == (name, text)
    got = r.GetRegisteredModel(registry_pb2.GetRegisteredModelRequest(name=name)).registered_model
    assert (got.name, got.description, [(x.key, x.value) for x in got.tags]) == (name, text, [("note", text)])
    found = r.SearchRegisteredModels(
        registry_pb2.SearchRegisteredModelsRequest(filter=f"name = {quoted(name)}")
    )
    assert [m.name for m in found.registered_models] == [name]


# -- keys: a fixed alphabet --------------------------------------------------------------------------------

KEYS = [
    # (key, accepted)
    ("under_score-dash.dot/slash space", True),
    ("größe", True),  # letters of any script are letters
    ("'; DROP TABLE runs; --", False),
    ('" OR 1=1', False),
    ("a`b", False),
    ("100%", False),
    ("a*b", False),
    ("🚀", False),
    ("\u202eevil", False),
    ("tab\tkey", False),
    ("nul\x00key", False),
    ("../etc/passwd", False),
    ("a/../b", False),
    ("/absolute", False),
    ("", False),
    ("k" * 251, False),
]


@pytest.mark.parametrize(("key", "accepted"), KEYS)
def test_param_metric_and_tag_keys(stubs: Stubs, key: str, accepted: bool) -> None:
    t = stubs.tracking
    run_id = t.CreateRun(tracking_pb2.CreateRunRequest()).run.info.run_id
    batches = {
        "params[0].key": tracking_pb2.LogBatchRequest(
            run_id=run_id, params=[tracking_pb2.Param(key=key, value="v")]
        ),
        "metrics[0].key": tracking_pb2.LogBatchRequest(
            run_id=run_id, metrics=[tracking_pb2.Metric(key=key, value=1.0, step=0, timestamp_ms=1)]
        ),
        "tags[0].key": tracking_pb2.LogBatchRequest(run_id=run_id, tags=[tag(key, "v")]),
    }
    for field, request in batches.items():
        if accepted:
            t.LogBatch(request)
        else:
            invalid(t.LogBatch, request, field)
    stored = t.GetRun(tracking_pb2.GetRunRequest(run_id=run_id)).run.data
    if accepted:
        assert [p.key for p in stored.params] == [key]
        assert [m.key for m in stored.metrics] == [key]
        assert key in {x.key for x in stored.tags}
    else:
        assert not stored.params
        assert not stored.metrics
        assert key not in {x.key for x in stored.tags}
        invalid(
            t.CreateExperiment,
            tracking_pb2.CreateExperimentRequest(name=uuid.uuid4().hex, tags=[tag(key, "v")]),
            "tags[0].key",
        )
        invalid(t.CreateRun, tracking_pb2.CreateRunRequest(tags=[tag(key, "v")]), "tags[0].key")


# -- filters and order-by: parsed, never spliced into SQL ---------------------------------------------------


@pytest.fixture(scope="module")
def searchable(stubs: Stubs) -> tuple[str, dict[str, str]]:
    """Runs whose tag ``t`` holds wildcard and quote characters; returns (experiment id, value -> run id)."""
    t = stubs.tracking
    experiment_id = t.CreateExperiment(
        tracking_pb2.CreateExperimentRequest(name=f"search-{uuid.uuid4().hex}")
    ).experiment.experiment_id
    ids = {}
    for value in ("100%", "100x", "a_b", "axb", "it's", 'say "hi"', "back\\slash", "x"):
        run_id = t.CreateRun(
            tracking_pb2.CreateRunRequest(experiment_id=experiment_id, tags=[tag("t", value)])
        ).run.info.run_id
        ids[value] = run_id
    return experiment_id, ids


FILTERS = [
    # (filter, the values of tag t it matches, or None for INVALID_ARGUMENT on `filter`)
    ("tags.t = '''; DROP TABLE runs; --'", set()),
    ("tags.t = ''; DROP TABLE runs; --", None),
    ("tags.t = 'x' OR 1=1", None),
    ("tags.t = 'x' OR tags.t != 'x'", None),
    ('tags.t = "x" OR "1"="1"', None),
    ("tags.t = 'x' -- comment", None),
    ("tags.t = 'x'; DELETE FROM runs", None),
    ("tags.t = 'x' UNION SELECT run_id FROM runs", None),
    ("tags.t = 'x') OR ('1'='1", None),
    ("(tags.t = 'x')", None),
    ("tags.`t' OR '1'='1` = 'x'", set()),
    ("tags.t = 'it''s'", {"it's"}),
    ("tags.t = 'say \"hi\"'", {'say "hi"'}),
    ('tags.t = "say ""hi"""', {'say "hi"'}),
    ("tags.t = 'back\\slash'", {"back\\slash"}),
    ("tags.t = '100%'", {"100%"}),  # = is exact: % is not a wildcard
    ("tags.t = 'a_b'", {"a_b"}),
    ("tags.t LIKE '100%'", {"100%", "100x"}),  # LIKE: % and _ are wildcards, as in MLflow
    ("tags.t LIKE 'a_b'", {"a_b", "axb"}),
    ("tags.t IN ('x', ''' OR ''1''=''1')", {"x"}),
    ("tags.t = 'x\x00'", None),
    ("tags.`t\x00` = 'x'", None),
    ("metrics.m > 0 AND metrics.m < NaN", None),
    ("metrics.m > 1e999999", set()),
    ("attributes.status = 'RUNNING; DROP TABLE runs'", None),
    ("attributes.`run_id; DROP TABLE runs` = 'x'", None),
    ("attributes.start_time > 99999999999999999999999", None),
    ("\u202etags.t = 'x'", None),
    ("tags.t = 'x' AND", None),
]


@pytest.mark.parametrize(("text", "matches"), FILTERS)
def test_search_runs_filters(
    stubs: Stubs, searchable: tuple[str, dict[str, str]], text: str, matches: set[str] | None
) -> None:
    experiment_id, ids = searchable
    request = tracking_pb2.SearchRunsRequest(experiment_ids=[experiment_id], filter=text)
    if matches is None:
        invalid(stubs.tracking.SearchRuns, request, "filter")
        return
    runs = stubs.tracking.SearchRuns(request).runs
    assert {r.info.run_id for r in runs} == {ids[v] for v in matches}


@pytest.mark.parametrize(
    "text",
    ["name = 'x' OR 1=1", "name = '\x00'", "tags.`k\x00` = 'v'", "name LIKE 'x'; DROP TABLE experiments"],
)
def test_other_searches_refuse_hostile_filters(stubs: Stubs, text: str) -> None:
    invalid(stubs.tracking.SearchExperiments, tracking_pb2.SearchExperimentsRequest(filter=text), "filter")
    invalid(
        stubs.registry.SearchRegisteredModels,
        registry_pb2.SearchRegisteredModelsRequest(filter=text),
        "filter",
    )
    invalid(
        stubs.registry.SearchModelVersions, registry_pb2.SearchModelVersionsRequest(filter=text), "filter"
    )


@pytest.mark.parametrize(
    "item",
    [
        "start_time; DROP TABLE runs",
        "start_time DESC; --",
        "metrics.m DESC, 1",
        "(SELECT 1)",
        "metrics.`m\x00`",
        'tags.t COLLATE "C"',
    ],
)
def test_order_by_refuses_sql(stubs: Stubs, searchable: tuple[str, dict[str, str]], item: str) -> None:
    experiment_id, _ = searchable
    invalid(
        stubs.tracking.SearchRuns,
        tracking_pb2.SearchRunsRequest(experiment_ids=[experiment_id], order_by=[item]),
        "order_by",
    )
    invalid(
        stubs.tracking.SearchExperiments, tracking_pb2.SearchExperimentsRequest(order_by=[item]), "order_by"
    )


def test_hostile_ids_are_not_found(stubs: Stubs) -> None:
    for text in [*HOSTILE_TEXT, "1 OR 1=1", "%", "_"]:
        for call, request, field in [
            (stubs.tracking.GetRun, tracking_pb2.GetRunRequest(run_id=text), "run_id"),
            (
                stubs.tracking.GetExperiment,
                tracking_pb2.GetExperimentRequest(experiment_id=text),
                "experiment_id",
            ),
            (stubs.tracking.GetExperimentByName, tracking_pb2.GetExperimentByNameRequest(name=text), "name"),
            (stubs.registry.GetRegisteredModel, registry_pb2.GetRegisteredModelRequest(name=text), "name"),
        ]:
            with pytest.raises(grpc.RpcError) as info:
                call(request, timeout=30)
            assert info.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), (
                text,
                info.value.details(),
            )
            assert field in (info.value.details() or "") or info.value.code() == grpc.StatusCode.NOT_FOUND


# -- paths: artifact paths and model sources ----------------------------------------------------------------

TRAVERSALS = [
    ("../x", "contains a '..' segment"),
    ("a/../../x", "contains a '..' segment"),
    ("..", "contains a '..' segment"),
    ("./x", "'.' segment"),
    ("/etc/passwd", "absolute"),
    ("\\\\server\\share", "absolute"),
    ("C:\\Windows", "backslash"),
    ("C:x", "drive letter"),
    ("a\\..\\..\\x", "backslash"),
    ("a//b", "empty segment"),
    ("a\x00b", "NUL"),  # refused with every string field's NUL check, before the path rules
    ("a\nb", "control character"),
    ("x" * 256, "segment"),
    ("a/" * 600, "bytes"),
]


@pytest.fixture(scope="module")
def run_id(stubs: Stubs) -> str:
    return str(stubs.tracking.CreateRun(tracking_pb2.CreateRunRequest()).run.info.run_id)


@pytest.mark.parametrize(("path", "problem"), TRAVERSALS)
def test_artifact_paths_cannot_escape(stubs: Stubs, run_id: str, path: str, problem: str) -> None:
    a = stubs.artifacts
    header = artifacts_pb2.UploadHeader(run_id=run_id, path=path)
    with pytest.raises(grpc.RpcError) as info:
        a.UploadArtifact(
            iter(
                [
                    artifacts_pb2.UploadArtifactRequest(header=header),
                    artifacts_pb2.UploadArtifactRequest(chunk=b"x"),
                ]
            ),
            timeout=30,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert problem in (info.value.details() or "")
    assert "path" in (info.value.details() or "")
    message = invalid(a.ListArtifacts, artifacts_pb2.ListArtifactsRequest(run_id=run_id, path=path), "path")
    assert problem in message
    invalid(a.DeleteArtifact, artifacts_pb2.DeleteArtifactRequest(run_id=run_id, path=path), "path")
    with pytest.raises(grpc.RpcError) as info:
        list(a.DownloadArtifact(artifacts_pb2.DownloadArtifactRequest(run_id=run_id, path=path), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    listing = a.ListArtifacts(artifacts_pb2.ListArtifactsRequest(run_id=run_id, recursive=True))
    assert list(listing.files) == []


@pytest.mark.parametrize(
    "path",
    ["runs:/{run}/../../other-run", "runs:/{run}/a/../../../etc", "runs:/{run}/..", "runs:/../{run}/model"],
)
def test_model_sources_cannot_escape_the_run(stubs: Stubs, run_id: str, unique: str, path: str) -> None:
    r = stubs.registry
    name = f"source-{unique}"
    r.CreateRegisteredModel(registry_pb2.CreateRegisteredModelRequest(name=name))
    request = registry_pb2.CreateModelVersionRequest(name=name, source=path.format(run=run_id))
    with pytest.raises(grpc.RpcError) as info:
        r.CreateModelVersion(request, timeout=30)
    if info.value.code() == grpc.StatusCode.NOT_FOUND:  # `runs:/../x`: a run named '..' does not exist
        assert "'..'" in (info.value.details() or "")
    else:
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
        assert "source" in (info.value.details() or "")
    versions = r.SearchModelVersions(registry_pb2.SearchModelVersionsRequest(filter=f"name = '{name}'"))
    assert list(versions.model_versions) == []
