"""Model versions over real gRPC on both backends: create (also concurrently, and retried with a
request_id), get, search, update, delete, tags, download URI."""

from __future__ import annotations

import getpass
from concurrent.futures import ThreadPoolExecutor

import pytest

import tracklane
from tracklane import exceptions, fluent
from tracklane.testing import LocalServer
from tracklane.v1 import registry_pb2


def _run(client: tracklane.Client) -> tracklane.Run:
    return client.create_run("0", run_name="train")


def test_create_from_a_run_resolves_the_download_uri(client: tracklane.Client, unique: str) -> None:
    run = _run(client)
    client.create_registered_model(f"m-{unique}")
    version = client.create_model_version(
        f"m-{unique}", f"runs:/{run.info.run_id}/model", tags={"stage": "dev"}, description="first"
    )
    assert (version.name, version.version, version.run_id) == (f"m-{unique}", 1, run.info.run_id)
    assert version.source == f"runs:/{run.info.run_id}/model"
    assert version.status == tracklane.ModelVersionStatus.READY
    assert version.current_stage == tracklane.ModelStage.NONE
    assert version.user_id == getpass.getuser()
    assert (version.tags, version.description) == ({"stage": "dev"}, "first")
    assert client.get_model_version(f"m-{unique}", "1") == version  # MLflow passes strings
    uri = client.get_model_version_download_uri(f"m-{unique}", 1)
    assert uri == run.info.artifact_uri.rstrip("/") + "/model"
    second = client.create_model_version(f"m-{unique}", "s3://bucket/elsewhere/model")
    assert (second.version, second.run_id) == (2, "")
    assert client.get_model_version_download_uri(f"m-{unique}", 2) == "s3://bucket/elsewhere/model"
    assert client.get_registered_model(f"m-{unique}").latest_versions == (second,)


def test_create_errors(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    run = _run(client)
    with pytest.raises(exceptions.NotFound) as no_model:
        client.create_model_version(name, "s3://bucket/model")
    assert no_model.value.field == "name"
    client.create_registered_model(name)
    with pytest.raises(exceptions.InvalidArgument) as no_source:
        client.create_model_version(name, "")
    assert no_source.value.field == "source"
    with pytest.raises(exceptions.InvalidArgument) as bad_runs_uri:
        client.create_model_version(name, "runs:model")
    assert bad_runs_uri.value.field == "source"
    with pytest.raises(exceptions.NotFound) as no_run:
        client.create_model_version(name, f"runs:/{'0' * 32}/model")
    assert no_run.value.field == "source"
    with pytest.raises(exceptions.NotFound) as no_run_id:
        client.create_model_version(name, "s3://bucket/model", run_id="0" * 32)
    assert no_run_id.value.field == "run_id"
    with pytest.raises(exceptions.InvalidArgument) as mismatch:
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id="1" * 32)
    assert mismatch.value.field == "run_id"
    with pytest.raises(exceptions.InvalidArgument) as bad_tag:
        client.create_model_version(name, "s3://bucket/model", tags={"": "v"})
    assert bad_tag.value.field == "tags[0].key"
    client.delete_run(run.info.run_id)
    with pytest.raises(exceptions.FailedPrecondition) as deleted:
        client.create_model_version(name, f"runs:/{run.info.run_id}/model")
    assert deleted.value.field == "source"
    # None of the failures used up a number.
    assert client.create_model_version(name, "s3://bucket/model").version == 1


def test_concurrent_registration_numbers_without_gaps(client: tracklane.Client, unique: str) -> None:
    name = f"c-{unique}"
    client.create_registered_model(name)
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(
            pool.map(lambda i: client.create_model_version(name, f"s3://bucket/model-{i}").version, range(20))
        )
    assert sorted(versions) == list(range(1, 21))
    stored = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in stored) == list(range(1, 21))
    assert {v.source for v in stored} == {f"s3://bucket/model-{i}" for i in range(20)}


def _created(client: tracklane.Client, name: str) -> list[int]:
    return [e.version for e in client.list_model_events(name) if e.kind == "version_created"]


def test_a_retry_with_the_same_request_id_returns_the_first_version(
    client: tracklane.Client, unique: str
) -> None:
    name, other = f"r-{unique}", f"r2-{unique}"
    client.create_registered_model(name)
    client.create_registered_model(other)
    first = client.create_model_version(name, "s3://bucket/a", tags={"t": "1"}, request_id="req-1")
    # The retry's differing fields are ignored: the id names the first call's result, unchanged.
    again = client.create_model_version(name, "s3://bucket/b", description="x", request_id="req-1")
    assert again == first
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == [1]
    assert _created(client, name) == [1]
    # A replay uses up no number; another id (or the same id on another model) is a new version.
    assert client.create_model_version(name, "s3://bucket/c", request_id="req-2").version == 2
    assert client.create_model_version(name, "s3://bucket/d").version == 3
    assert client.create_model_version(other, "s3://bucket/a", request_id="req-1").version == 1
    assert sorted(_created(client, name)) == [1, 2, 3]


def test_concurrent_calls_with_one_request_id_make_one_version(client: tracklane.Client, unique: str) -> None:
    name = f"rc-{unique}"
    client.create_registered_model(name)
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(
            pool.map(
                lambda i: client.create_model_version(name, f"s3://bucket/m-{i}", request_id="same"),
                range(8),
            )
        )
    assert len({(v.version, v.source) for v in versions}) == 1
    assert versions[0].version == 1
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == [1]
    assert _created(client, name) == [1]


def test_request_id_over_the_limit_is_invalid(client: tracklane.Client, unique: str) -> None:
    name = f"rl-{unique}"
    client.create_registered_model(name)
    with pytest.raises(exceptions.InvalidArgument) as too_long:
        client.create_model_version(name, "s3://bucket/model", request_id="x" * 129)
    assert too_long.value.field == "request_id"
    assert client.create_model_version(name, "s3://bucket/model", request_id="x" * 128).version == 1


def test_get_errors(client: tracklane.Client, unique: str) -> None:
    client.create_registered_model(f"m-{unique}")
    with pytest.raises(exceptions.NotFound) as no_version:
        client.get_model_version(f"m-{unique}", 1)
    assert no_version.value.field == "version"
    with pytest.raises(exceptions.NotFound) as no_model:
        client.get_model_version(f"missing-{unique}", 1)
    assert no_model.value.field == "name"
    with pytest.raises(exceptions.InvalidArgument) as zero:
        client.get_model_version(f"m-{unique}", 0)
    assert zero.value.field == "version"
    with pytest.raises(exceptions.InvalidArgument):
        client.get_model_version(f"m-{unique}", "one")
    with pytest.raises(exceptions.NotFound):
        client.get_model_version_download_uri(f"m-{unique}", 7)


def test_update_description_and_tags(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    client.create_registered_model(name)
    client.create_model_version(name, "s3://bucket/model")
    updated = client.update_model_version(name, 1, description="validated on holdout")
    assert updated.description == "validated on holdout"
    (event,) = [e for e in client.list_model_events(name, version=1) if e.kind == "description_changed"]
    assert (event.old_value, event.new_value) == ("", "validated on holdout")
    client.set_model_version_tag(name, 1, "validated", True)
    client.set_model_version_tag(name, 1, "owner", "ana")
    client.delete_model_version_tag(name, 1, "owner")
    assert client.get_model_version(name, 1).tags == {"validated": "True"}
    with pytest.raises(exceptions.NotFound) as no_tag:
        client.delete_model_version_tag(name, 1, "owner")
    assert no_tag.value.field == "key"
    with pytest.raises(exceptions.NotFound) as no_version:
        client.set_model_version_tag(name, 9, "k", "v")
    assert no_version.value.field == "version"
    with pytest.raises(exceptions.InvalidArgument) as bad_key:
        client.set_model_version_tag(name, 1, "a\tb", "v")
    assert bad_key.value.field == "tag.key"
    with pytest.raises(exceptions.NotFound):
        client.update_model_version(name, 9, description="x")
    request = registry_pb2.UpdateModelVersionRequest(name=name, version=1)
    request.update_mask.paths.append("source")
    with pytest.raises(exceptions.InvalidArgument) as mask:
        client._call(client._registry.UpdateModelVersion, request)
    assert mask.value.field == "update_mask.paths[0]"


def test_delete_keeps_other_numbers_and_never_reuses(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, "s3://bucket/model")
    client.set_registered_model_alias(name, "champion", 3)
    client.delete_model_version(name, 3)
    client.delete_model_version(name, 1)
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == [2]
    assert dict(client.get_registered_model(name).aliases) == {}
    with pytest.raises(exceptions.NotFound):
        client.get_model_version_by_alias(name, "champion")
    assert client.create_model_version(name, "s3://bucket/model").version == 4
    with pytest.raises(exceptions.NotFound) as gone:
        client.delete_model_version(name, 3)
    assert gone.value.field == "version"
    kinds = [(e.kind, e.version, e.alias) for e in client.list_model_events(name)[:4]]
    assert kinds == [
        ("version_created", 4, ""),
        ("version_deleted", 1, ""),
        ("version_deleted", 3, ""),
        ("alias_deleted", 3, "champion"),
    ]


def test_search_by_name_run_and_tags_with_paging(client: tracklane.Client, unique: str) -> None:
    run_a, run_b = _run(client), _run(client)
    for model in ("a", "b"):
        client.create_registered_model(f"{model}-{unique}")
        for i, run in enumerate([run_a, run_b, run_a]):
            client.create_model_version(
                f"{model}-{unique}", f"runs:/{run.info.run_id}/model", tags={"i": str(i), "model": model}
            )
    everything = client.search_model_versions(f"name LIKE '%-{unique}'")
    assert [(v.name, v.version) for v in everything] == [
        (f"{m}-{unique}", n) for m in ("a", "b") for n in (3, 2, 1)
    ]  # name, then newest first
    of_a = client.search_model_versions(f"name = 'a-{unique}' and run_id = '{run_a.info.run_id}'")
    assert [v.version for v in of_a] == [3, 1]
    tagged = client.search_model_versions(
        f"tags.model = 'b' and tags.i IN ('0', '2') and name LIKE '%-{unique}'"
    )
    assert [(v.name, v.version) for v in tagged] == [(f"b-{unique}", 3), (f"b-{unique}", 1)]
    by_version = client.search_model_versions(
        f"name LIKE '%-{unique}' and version >= 2", order_by=["version ASC"]
    )
    assert [v.version for v in by_version] == [2, 2, 3, 3]
    assert client.search_model_versions(f"run_id = '{run_b.info.run_id}'", max_results=10)[0].version == 2

    request = registry_pb2.SearchModelVersionsRequest(filter=f"name LIKE '%-{unique}'", page_size=4)
    first = client._call(client._registry.SearchModelVersions, request)
    request.page_token = first.next_page_token
    second = client._call(client._registry.SearchModelVersions, request)
    assert len(first.model_versions) == 4
    assert len(second.model_versions) == 2
    assert not second.next_page_token
    paged = [(v.name, v.version) for v in [*first.model_versions, *second.model_versions]]
    assert paged == [(v.name, v.version) for v in everything]
    for bad in ("metrics.x > 1", "version = 'one'", "stage = 'x'"):
        with pytest.raises(exceptions.InvalidArgument) as err:
            client.search_model_versions(bad)
        assert err.value.field == "filter"


def test_fluent_register_model(tracking_server: LocalServer, client: tracklane.Client, unique: str) -> None:
    fluent._reset()
    tracklane.set_tracking_uri(tracking_server.uri)
    try:
        run = _run(client)
        first = tracklane.register_model(f"runs:/{run.info.run_id}/model", f"f-{unique}", tags={"k": 1})
        second = tracklane.register_model("s3://bucket/model", f"f-{unique}")  # the model exists now
        with pytest.raises(exceptions.InvalidArgument) as bad:
            tracklane.register_model("runs:", f"f-{unique}")
        assert bad.value.field == "model_uri"
    finally:
        fluent._reset()
    assert (first.version, first.run_id, first.tags) == (1, run.info.run_id, {"k": "1"})
    assert (second.version, second.run_id) == (2, "")
