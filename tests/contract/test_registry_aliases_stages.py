"""Aliases, stages, latest versions, copies and history over real gRPC on both backends."""

from __future__ import annotations

import getpass
import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest

import tracklane
from tracklane import exceptions
from tracklane.entities.model_registry import ModelStage
from tracklane.v1 import registry_pb2


def _model_with_versions(client: tracklane.Client, name: str, count: int) -> None:
    client.create_registered_model(name)
    for i in range(count):
        client.create_model_version(name, f"s3://bucket/{name}/{i + 1}")


def test_alias_move_and_rollback_show_in_history(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    _model_with_versions(client, name, 2)
    client.set_registered_model_alias(name, "champion", 1)
    assert client.get_model_version_by_alias(name, "champion").version == 1
    client.set_registered_model_alias(name, "champion", 2)  # promote
    assert client.get_model_version_by_alias(name, "champion").version == 2
    assert client.get_model_version(name, 2).aliases == ("champion",)
    assert client.get_model_version(name, 1).aliases == ()
    client.set_registered_model_alias(name, "champion", 1)  # roll back: one call
    client.set_registered_model_alias(name, "champion", 1)  # no move, no event
    assert client.get_model_version_by_alias(name, "champion").version == 1
    assert dict(client.get_registered_model(name).aliases) == {"champion": 1}
    moves = [(e.old_value, e.new_value) for e in client.list_model_events(name) if e.kind == "alias_set"]
    assert moves == [("2", "1"), ("1", "2"), ("", "1")]  # newest first
    events = [e for e in client.list_model_events(name) if e.kind == "alias_set"]
    assert all(e.alias == "champion" and e.user_id == getpass.getuser() for e in events)
    times = [e.timestamp or 0 for e in events]
    assert all(times)
    assert times == sorted(times, reverse=True)


def test_alias_errors_and_delete(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    _model_with_versions(client, name, 1)
    for bad in ("", "v3", "V12", "latest", "has space", "a/b", "x" * 256):
        with pytest.raises(exceptions.InvalidArgument) as err:
            client.set_registered_model_alias(name, bad, 1)
        assert err.value.field == "alias", bad
    with pytest.raises(exceptions.NotFound) as no_version:
        client.set_registered_model_alias(name, "champion", 5)
    assert no_version.value.field == "version"
    with pytest.raises(exceptions.NotFound) as no_model:
        client.set_registered_model_alias(f"missing-{unique}", "champion", 1)
    assert no_model.value.field == "name"
    with pytest.raises(exceptions.NotFound) as unset:
        client.get_model_version_by_alias(name, "champion")
    assert unset.value.field == "alias"
    client.set_registered_model_alias(name, "champion", 1)
    client.set_registered_model_alias(name, "challenger-2", 1)
    assert client.get_model_version(name, 1).aliases == ("challenger-2", "champion")
    client.delete_registered_model_alias(name, "champion")
    assert dict(client.get_registered_model(name).aliases) == {"challenger-2": 1}
    with pytest.raises(exceptions.NotFound) as again:
        client.delete_registered_model_alias(name, "champion")
    assert again.value.field == "alias"
    (deleted,) = [e for e in client.list_model_events(name) if e.kind == "alias_deleted"]
    assert (deleted.alias, deleted.old_value, deleted.version) == ("champion", "1", 1)


def test_concurrent_alias_moves_leave_one_consistent_history(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    _model_with_versions(client, name, 4)
    targets = [1 + i % 4 for i in range(24)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda v: client.set_registered_model_alias(name, "live", v), targets))
    moves = [e for e in client.list_model_events(name) if e.kind == "alias_set"][::-1]  # oldest first
    assert moves[0].old_value == ""
    for before, after in itertools.pairwise(moves):
        assert after.old_value == before.new_value  # each move saw the one before it
    assert int(moves[-1].new_value) == client.get_model_version_by_alias(name, "live").version


def test_stage_transitions_and_archive_existing(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    _model_with_versions(client, name, 3)
    v1 = client.transition_model_version_stage(name, 1, "Production")
    assert v1.current_stage == ModelStage.PRODUCTION
    client.transition_model_version_stage(name, 2, "production")  # MLflow's names, any case
    assert [v.version for v in client.get_latest_versions(name, ["Production"])] == [2]
    client.transition_model_version_stage(name, 3, ModelStage.PRODUCTION, archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{name}'")}
    assert stages == {1: ModelStage.ARCHIVED, 2: ModelStage.ARCHIVED, 3: ModelStage.PRODUCTION}
    transitions = [
        (e.version, e.old_value, e.new_value)
        for e in client.list_model_events(name)
        if e.kind == "stage_transition"
    ]
    assert transitions == [
        (3, "None", "Production"),
        (2, "Production", "Archived"),
        (1, "Production", "Archived"),
        (2, "None", "Production"),
        (1, "None", "Production"),
    ]
    client.transition_model_version_stage(name, 2, "Staging")
    latest = client.get_latest_versions(name)
    assert [(v.version, v.current_stage) for v in latest] == [
        (2, ModelStage.STAGING),
        (3, ModelStage.PRODUCTION),
        (1, ModelStage.ARCHIVED),
    ]
    assert client.get_registered_model(name).latest_versions == tuple(latest)
    assert client.get_latest_versions(name, ["None"]) == []


def test_stage_errors(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    _model_with_versions(client, name, 1)
    with pytest.raises(exceptions.InvalidArgument) as archiving:
        client.transition_model_version_stage(name, 1, "Archived", archive_existing_versions=True)
    assert archiving.value.field == "archive_existing_versions"
    with pytest.raises(exceptions.InvalidArgument) as bad_stage:
        client.transition_model_version_stage(name, 1, "Prod")
    assert bad_stage.value.field == "stage"
    request = registry_pb2.TransitionModelVersionStageRequest(name=name, version=1)
    with pytest.raises(exceptions.InvalidArgument) as unspecified:
        client._call(client._registry.TransitionModelVersionStage, request)
    assert unspecified.value.field == "stage"
    request.stage = 42  # type: ignore[assignment]  # an enum value this server does not know
    with pytest.raises(exceptions.InvalidArgument):
        client._call(client._registry.TransitionModelVersionStage, request)
    with pytest.raises(exceptions.NotFound) as no_version:
        client.transition_model_version_stage(name, 2, "Staging")
    assert no_version.value.field == "version"
    with pytest.raises(exceptions.NotFound):
        client.get_latest_versions(f"missing-{unique}")
    latest = registry_pb2.GetLatestVersionsRequest(name=name, stages=[registry_pb2.MODEL_STAGE_UNSPECIFIED])
    with pytest.raises(exceptions.InvalidArgument) as unspecified_latest:
        client._call(client._registry.GetLatestVersions, latest)
    assert unspecified_latest.value.field == "stages[0]"


def test_copy_version_to_another_model(client: tracklane.Client, unique: str) -> None:
    run = client.create_run("0")
    client.create_registered_model(f"dev-{unique}")
    client.create_model_version(
        f"dev-{unique}", f"runs:/{run.info.run_id}/model", tags={"validated": "yes"}, description="good"
    )
    client.set_registered_model_alias(f"dev-{unique}", "candidate", 1)
    copied = client.copy_model_version(f"models:/dev-{unique}/1", f"prod-{unique}")  # created on demand
    assert (copied.name, copied.version, copied.run_id) == (f"prod-{unique}", 1, run.info.run_id)
    assert (copied.source, copied.tags, copied.description) == (
        f"runs:/{run.info.run_id}/model",
        {"validated": "yes"},
        "good",
    )
    assert client.get_model_version_download_uri(
        f"prod-{unique}", 1
    ) == client.get_model_version_download_uri(f"dev-{unique}", 1)
    again = client.copy_model_version(f"models:/dev-{unique}@candidate", f"prod-{unique}")
    assert again.version == 2
    created = client.list_model_events(f"prod-{unique}", version=2)
    assert [(e.kind, e.old_value) for e in created] == [("version_created", f"models:/dev-{unique}/1")]
    with pytest.raises(exceptions.NotFound) as no_source:
        client.copy_model_version(f"models:/dev-{unique}/9", f"prod-{unique}")
    assert no_source.value.field == "version"
    with pytest.raises(exceptions.InvalidArgument) as bad_dest:
        client.copy_model_version(f"models:/dev-{unique}/1", "a/b")
    assert bad_dest.value.field == "destination_name"
    with pytest.raises(exceptions.InvalidArgument) as bad_uri:
        client.copy_model_version(f"runs:/{run.info.run_id}/model", f"prod-{unique}")
    assert bad_uri.value.field == "src_model_uri"
    request = registry_pb2.CopyModelVersionRequest(name=f"missing-{unique}", version=1, destination_name="x")
    with pytest.raises(exceptions.NotFound) as no_model:
        client._call(client._registry.CopyModelVersion, request)
    assert no_model.value.field == "name"
    with pytest.raises(exceptions.NotFound):
        client.get_registered_model("x")  # a failed copy creates nothing


def test_history_pages_and_filters_by_version(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    _model_with_versions(client, name, 2)
    for version in (1, 2, 1, 2, 1):
        client.set_registered_model_alias(name, "live", version)
    whole = client.list_model_events(name)
    assert [e.kind for e in whole][-3:] == ["version_created", "version_created", "model_created"]
    assert len(whole) == 8
    request = registry_pb2.ListModelEventsRequest(name=name, page_size=3)
    paged: list[registry_pb2.ModelEvent] = []
    while True:
        response = client._call(client._registry.ListModelEvents, request)
        paged.extend(response.events)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    assert [tracklane.ModelEvent.from_proto(e) for e in paged] == whole
    assert {e.version for e in client.list_model_events(name, version=2)} == {2}
    assert len(client.list_model_events(name, version=2)) == 3  # created + two moves to 2
    first_token = client._call(
        client._registry.ListModelEvents, registry_pb2.ListModelEventsRequest(name=name, page_size=3)
    ).next_page_token
    other = registry_pb2.ListModelEventsRequest(name=name, version=1, page_size=3, page_token=first_token)
    with pytest.raises(exceptions.InvalidArgument) as token:
        client._call(client._registry.ListModelEvents, other)  # a token only continues its own listing
    assert token.value.field == "page_token"
    with pytest.raises(exceptions.NotFound):
        client.list_model_events(f"missing-{unique}")
    with pytest.raises(exceptions.InvalidArgument) as negative:
        client._call(
            client._registry.ListModelEvents, registry_pb2.ListModelEventsRequest(name=name, version=-1)
        )
    assert negative.value.field == "version"
