"""SearchExperiments, UpdateExperiment, Delete/Restore and experiment tags over real gRPC."""

from __future__ import annotations

import pytest

import tracklane
from tracklane import exceptions
from tracklane.entities import LifecycleStage, ViewType


def test_search_by_name_tags_and_order(client: tracklane.Client, unique: str) -> None:
    ids = {
        name: client.create_experiment(f"{unique}-{name}", tags={"team": team})
        for name, team in [("alpha", "cv"), ("beta", "nlp"), ("gamma", "cv")]
    }
    found = client.search_experiments(filter_string=f"name LIKE '{unique}-%' and tags.team = 'cv'")
    assert [e.name for e in found] == [f"{unique}-gamma", f"{unique}-alpha"]  # newest first
    by_name = client.search_experiments(filter_string=f"name LIKE '{unique}-%'", order_by=["name DESC"])
    assert [e.experiment_id for e in by_name] == [ids["gamma"], ids["beta"], ids["alpha"]]
    assert [
        e.experiment_id for e in client.search_experiments(filter_string=f"experiment_id = '{ids['beta']}'")
    ] == [ids["beta"]]
    with pytest.raises(exceptions.InvalidArgument) as err:
        client.search_experiments(filter_string="metrics.acc > 1")
    assert err.value.field == "filter"


def test_search_pages_through_everything(client: tracklane.Client, unique: str) -> None:
    for i in range(7):
        client.create_experiment(f"page-{unique}-{i}", tags={"order": str(i % 3)})
    whole = client.search_experiments(filter_string=f"name LIKE 'page-{unique}-%'", order_by=["tags.order"])
    paged = []
    request = tracklane.v1.tracking_pb2.SearchExperimentsRequest(
        filter=f"name LIKE 'page-{unique}-%'", order_by=["tags.order"], page_size=3
    )
    while True:
        response = client._call(client._tracking.SearchExperiments, request)
        paged.extend(e.name for e in response.experiments)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    assert paged == [e.name for e in whole]
    assert len(paged) == 7


def test_rename_and_tags(client: tracklane.Client, unique: str) -> None:
    experiment_id = client.create_experiment(f"old-{unique}")
    client.create_experiment(f"taken-{unique}")
    client.rename_experiment(experiment_id, f"new-{unique}")
    assert client.get_experiment(experiment_id).name == f"new-{unique}"
    with pytest.raises(exceptions.AlreadyExists):
        client.rename_experiment(experiment_id, f"taken-{unique}")
    client.set_experiment_tag(experiment_id, "owner", "ana")
    client.set_experiment_tag(experiment_id, "owner", "bo")
    assert client.get_experiment(experiment_id).tags == {"owner": "bo"}
    client.delete_experiment_tag(experiment_id, "owner")
    assert client.get_experiment(experiment_id).tags == {}
    with pytest.raises(exceptions.NotFound):
        client.delete_experiment_tag(experiment_id, "owner")


def test_delete_and_restore_take_the_runs_along(client: tracklane.Client, unique: str) -> None:
    experiment_id = client.create_experiment(f"bin-{unique}")
    live = client.create_run(experiment_id).info.run_id
    deleted_before = client.create_run(experiment_id).info.run_id
    client.delete_run(deleted_before)
    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage is LifecycleStage.DELETED
    assert client.get_run(live).info.lifecycle_stage is LifecycleStage.DELETED
    assert experiment_id not in [e.experiment_id for e in client.search_experiments()]
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert experiment_id in [e.experiment_id for e in deleted]
    with pytest.raises(exceptions.FailedPrecondition):
        client.create_run(experiment_id)
    with pytest.raises(exceptions.FailedPrecondition):
        client.rename_experiment(experiment_id, f"renamed-{unique}")
    client.restore_experiment(experiment_id)
    assert client.get_run(live).info.lifecycle_stage is LifecycleStage.ACTIVE
    # A run deleted on its own before stays deleted.
    assert client.get_run(deleted_before).info.lifecycle_stage is LifecycleStage.DELETED
    with pytest.raises(exceptions.FailedPrecondition):
        client.delete_experiment("0")
