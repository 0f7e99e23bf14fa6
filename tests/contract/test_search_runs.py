"""SearchRuns over real gRPC on every backend: the filter language, ordering, paging, errors."""

from __future__ import annotations

import math

import pytest

import tracklane
from tracklane import exceptions
from tracklane.entities import Metric, Param, RunTag
from tracklane.v1 import tracking_pb2


@pytest.fixture
def seeded(client: tracklane.Client, unique: str) -> tuple[str, dict[str, str]]:
    """An experiment with five runs of known params, metrics and tags; returns (id, name -> run_id)."""
    experiment_id = client.create_experiment(f"search-{unique}")
    rows = [
        ("a", "rf", 0.95, "vision-core", 1000),
        ("b", "rf", 0.80, "vision-edge", 2000),
        ("c", "svm", 0.99, "nlp", 3000),
        ("d", "rf", math.nan, "Vision-caps", 4000),
        ("e", "svm", None, "nlp", 5000),  # no acc metric at all
    ]
    ids = {}
    for name, model, acc, team, start in rows:
        run = client.create_run(experiment_id, start_time=start, run_name=name)
        metrics = [] if acc is None else [Metric("acc", acc, 1, 1)]
        client.log_batch(
            run.info.run_id, metrics=metrics, params=[Param("model", model)], tags=[RunTag("team", team)]
        )
        ids[name] = run.info.run_id
    return experiment_id, ids


def names(runs: list[tracklane.Run]) -> list[str]:
    return [r.info.run_name for r in runs]


def test_default_order_is_newest_first(client: tracklane.Client, seeded: tuple[str, dict[str, str]]) -> None:
    experiment_id, _ = seeded
    assert names(client.search_runs(experiment_id)) == ["e", "d", "c", "b", "a"]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.acc > 0.9", {"a", "c"}),
        ("metrics.acc <= 0.95 and params.model = 'rf'", {"a", "b"}),
        ("params.model != 'rf'", {"c", "e"}),
        ("tags.team LIKE 'vision%'", {"a", "b"}),  # LIKE is case-sensitive on both databases
        ("tags.team ILIKE 'vision%'", {"a", "b", "d"}),
        ("params.model IN ('svm', 'xgb')", {"c", "e"}),
        ("params.model NOT IN ('svm')", {"a", "b", "d"}),
        ("attributes.run_name = 'c'", {"c"}),
        ("attributes.start_time >= 3000 and attributes.status = 'RUNNING'", {"c", "d", "e"}),
        ("metrics.acc IS NULL", {"e"}),
        ("metrics.`acc` > 0.5 and tags.`team` = 'nlp'", {"c"}),
    ],
)
def test_filters(
    client: tracklane.Client, seeded: tuple[str, dict[str, str]], filter_string: str, expected: set[str]
) -> None:
    experiment_id, _ = seeded
    assert set(names(client.search_runs(experiment_id, filter_string))) == expected


def test_nan_never_matches_a_comparison(client: tracklane.Client, seeded: tuple[str, dict[str, str]]) -> None:
    experiment_id, _ = seeded
    assert "d" not in names(client.search_runs(experiment_id, "metrics.acc > -1e308"))
    assert "d" not in names(client.search_runs(experiment_id, "metrics.acc < 1e308"))


def test_order_by_metric_puts_missing_values_last(
    client: tracklane.Client, seeded: tuple[str, dict[str, str]]
) -> None:
    experiment_id, _ = seeded
    desc = names(client.search_runs(experiment_id, order_by=["metrics.acc DESC"]))
    asc = names(client.search_runs(experiment_id, order_by=["metrics.acc ASC"]))
    assert desc[:3] == ["c", "a", "b"]
    assert asc[:3] == ["b", "a", "c"]
    assert set(desc[3:]) == set(asc[3:]) == {"d", "e"}  # NaN and missing, either direction
    by_param = names(client.search_runs(experiment_id, order_by=["params.model DESC", "attributes.run_name"]))
    assert by_param == ["c", "e", "a", "b", "d"]


@pytest.mark.parametrize(
    "order_by", [[], ["metrics.acc DESC"], ["params.model", "metrics.acc"], ["tags.team"]]
)
def test_paging_visits_every_run_once_in_order(
    client: tracklane.Client, seeded: tuple[str, dict[str, str]], order_by: list[str]
) -> None:
    experiment_id, _ = seeded
    whole = names(client.search_runs(experiment_id, order_by=order_by))
    request = tracking_pb2.SearchRunsRequest(experiment_ids=[experiment_id], order_by=order_by, page_size=2)
    paged: list[str] = []
    pages = 0
    while True:
        response = client._call(client._tracking.SearchRuns, request)
        paged.extend(r.info.run_name for r in response.runs)
        pages += 1
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    assert paged == whole
    assert pages == 3


def test_search_errors(client: tracklane.Client, seeded: tuple[str, dict[str, str]]) -> None:
    experiment_id, _ = seeded
    with pytest.raises(exceptions.InvalidArgument) as err:
        client.search_runs(experiment_id, "metrics.acc > 'high'")
    assert err.value.field == "filter"
    assert "column" in err.value.message
    with pytest.raises(exceptions.InvalidArgument) as bad_order:
        client.search_runs(experiment_id, order_by=["metrics.acc SIDEWAYS"])
    assert bad_order.value.field == "order_by"
    with pytest.raises(exceptions.InvalidArgument):
        client.search_runs([])
    # SQL in a value is data, bound as a parameter: it matches nothing and breaks nothing.
    assert client.search_runs(experiment_id, "params.model = 'rf''; DROP TABLE runs; --'") == []
    assert len(client.search_runs(experiment_id)) == 5
