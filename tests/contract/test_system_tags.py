"""MLflow's system tags over gRPC: kept as the run's attributes, shown and searchable as tags."""

from __future__ import annotations

import pytest

import tracklane
from tracklane import exceptions


def _experiment(client: tracklane.Client, unique: str) -> str:
    return client.create_experiment(f"system-tags-{unique}")


def test_tags_at_creation_become_attributes_and_come_back_as_tags(
    client: tracklane.Client, unique: str
) -> None:
    experiment_id = _experiment(client, unique)
    parent = client.create_run(experiment_id)
    run = client.create_run(
        experiment_id,
        tags={
            "mlflow.runName": "from-tag",
            "mlflow.parentRunId": parent.info.run_id,
            "mlflow.user": "alice",
            "mlflow.note.content": "# notes",
            "mlflow.source.name": "train.py",
            "mlflow.source.type": "LOCAL",
        },
    )
    info = run.info
    assert (info.run_name, info.parent_run_id, info.user_id, info.description) == (
        "from-tag",
        parent.info.run_id,
        "alice",
        "# notes",
    )
    tags = client.get_run(info.run_id).data.tags
    assert dict(tags) == {
        "mlflow.runName": "from-tag",
        "mlflow.parentRunId": parent.info.run_id,
        "mlflow.user": "alice",
        "mlflow.note.content": "# notes",
        "mlflow.source.name": "train.py",  # no attribute: a plain tag
        "mlflow.source.type": "LOCAL",
    }
    assert list(tags) == sorted(tags)


def test_explicit_fields_win_over_the_tags(client: tracklane.Client, unique: str) -> None:
    run = client.create_run(_experiment(client, unique), run_name="field", tags={"mlflow.runName": "tag"})
    assert run.info.run_name == "field"
    assert client.get_run(run.info.run_id).data.tags["mlflow.runName"] == "field"


def test_setting_the_tags_later_changes_the_attributes(client: tracklane.Client, unique: str) -> None:
    experiment_id = _experiment(client, unique)
    parent = client.create_run(experiment_id)
    run_id = client.create_run(experiment_id, run_name="before").info.run_id
    client.set_tag(run_id, "mlflow.runName", "after")
    client.set_tag(run_id, "mlflow.note.content", "described")
    client.set_tag(run_id, "mlflow.parentRunId", parent.info.run_id)
    info = client.get_run(run_id).info
    assert (info.run_name, info.description, info.parent_run_id) == ("after", "described", parent.info.run_id)
    client.delete_tag(run_id, "mlflow.note.content")
    client.delete_tag(run_id, "mlflow.parentRunId")
    run = client.get_run(run_id)
    assert (run.info.description, run.info.parent_run_id) == ("", "")
    assert set(run.data.tags) == {"mlflow.runName"}


def test_refused_changes_store_nothing(client: tracklane.Client, unique: str) -> None:
    experiment_id = _experiment(client, unique)
    other = client.create_run(client.create_experiment(f"system-tags-other-{unique}"))
    run = client.create_run(experiment_id, run_name="kept", user_id="alice")
    run_id = run.info.run_id
    with pytest.raises(exceptions.InvalidArgument, match=r"mlflow\.user"):
        client.set_tag(run_id, "mlflow.user", "mallory")  # would rewrite who made the run
    with pytest.raises(exceptions.InvalidArgument, match="another experiment"):
        client.set_tag(run_id, "mlflow.parentRunId", other.info.run_id)
    with pytest.raises(exceptions.NotFound):
        client.set_tag(run_id, "mlflow.parentRunId", "f" * 32)
    with pytest.raises(exceptions.InvalidArgument, match="own parent"):
        client.set_tag(run_id, "mlflow.parentRunId", run_id)
    with pytest.raises(exceptions.InvalidArgument, match="cannot be removed"):
        client.delete_tag(run_id, "mlflow.runName")
    with pytest.raises(exceptions.InvalidArgument, match=r"mlflow\.runName"):
        client.set_tag(run_id, "mlflow.runName", "")
    info = client.get_run(run_id).info
    assert (info.run_name, info.user_id, info.parent_run_id) == ("kept", "alice", "")


def test_search_by_system_tags_and_parent_attribute(client: tracklane.Client, unique: str) -> None:
    experiment_id = _experiment(client, unique)
    parent = client.create_run(experiment_id, run_name="sweep")
    children = [
        client.create_run(
            experiment_id, run_name=f"trial-{i}", tags={"mlflow.parentRunId": parent.info.run_id}
        )
        for i in range(3)
    ]
    child_ids = {c.info.run_id for c in children}

    def ids(filter_string: str, order_by: list[str] | None = None) -> list[str]:
        return [r.info.run_id for r in client.search_runs(experiment_id, filter_string, order_by=order_by)]

    assert set(ids(f"tags.mlflow.parentRunId = '{parent.info.run_id}'")) == child_ids
    assert set(ids(f"attributes.parent_run_id = '{parent.info.run_id}'")) == child_ids
    assert ids("attributes.parent_run_id IS NULL") == [parent.info.run_id]
    assert ids("tags.mlflow.parentRunId IS NULL") == [parent.info.run_id]
    assert ids("tags.mlflow.runName = 'sweep'") == [parent.info.run_id]
    assert ids("tags.mlflow.runName LIKE 'trial-%'", ["tags.mlflow.runName DESC"]) == [
        c.info.run_id for c in reversed(children)
    ]
    client.set_tag(children[0].info.run_id, "mlflow.note.content", "best")
    assert ids("tags.mlflow.note.content = 'best'") == [children[0].info.run_id]
    assert set(ids("tags.mlflow.note.content IS NULL")) == {parent.info.run_id} | child_ids - {
        children[0].info.run_id
    }


def test_experiment_description_is_its_note_tag(client: tracklane.Client, unique: str) -> None:
    experiment_id = client.create_experiment(f"noted-{unique}", tags={"mlflow.note.content": "from tag"})
    experiment = client.get_experiment(experiment_id)
    assert experiment.description == "from tag"
    assert dict(experiment.tags) == {"mlflow.note.content": "from tag"}
    client.set_experiment_tag(experiment_id, "mlflow.note.content", "changed")
    assert client.get_experiment(experiment_id).description == "changed"
    client.delete_experiment_tag(experiment_id, "mlflow.note.content")
    experiment = client.get_experiment(experiment_id)
    assert (experiment.description, dict(experiment.tags)) == ("", {})
