"""Registered models over real gRPC on both backends: create, get, search, rename, update, delete, tags."""

from __future__ import annotations

import getpass

import pytest

import tracklane
from tracklane import exceptions
from tracklane.v1 import registry_pb2


def test_create_get_and_duplicate(client: tracklane.Client, unique: str) -> None:
    created = client.create_registered_model(f"m-{unique}", tags={"team": "risk"}, description="fraud model")
    assert created.name == f"m-{unique}"
    assert created.description == "fraud model"
    assert created.tags == {"team": "risk"}
    assert created.latest_versions == ()
    assert dict(created.aliases) == {}
    assert created.creation_timestamp
    assert created.creation_timestamp == created.last_updated_timestamp
    assert client.get_registered_model(f"m-{unique}") == created
    with pytest.raises(exceptions.AlreadyExists) as err:
        client.create_registered_model(f"m-{unique}")
    assert err.value.field == "name"


@pytest.mark.parametrize(
    ("name", "why"),
    [("", "must not be empty"), ("a/b", "'/'"), ("a@b", "'@'"), (" padded", "spaces"), ("x" * 251, "longer")],
)
def test_create_rejects_bad_names(client: tracklane.Client, name: str, why: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as err:
        client.create_registered_model(name)
    assert err.value.field == "name"
    assert why in err.value.message


def test_create_rejects_bad_tags(client: tracklane.Client, unique: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as err:
        client.create_registered_model(f"m-{unique}", tags={"bad\nkey": "v"})
    assert err.value.field == "tags[0].key"
    with pytest.raises(exceptions.NotFound):
        client.get_registered_model(f"m-{unique}")  # nothing half-created


def test_get_unknown_and_empty_name(client: tracklane.Client, unique: str) -> None:
    with pytest.raises(exceptions.NotFound) as err:
        client.get_registered_model(f"missing-{unique}")
    assert err.value.field == "name"
    with pytest.raises(exceptions.InvalidArgument) as invalid:
        client.get_registered_model("")
    assert invalid.value.field == "name"


def test_rename_keeps_versions_and_aliases(client: tracklane.Client, unique: str) -> None:
    client.create_registered_model(f"old-{unique}")
    client.create_model_version(f"old-{unique}", "s3://bucket/model")
    client.set_registered_model_alias(f"old-{unique}", "champion", 1)
    client.create_registered_model(f"taken-{unique}")
    renamed = client.rename_registered_model(f"old-{unique}", f"new-{unique}")
    assert renamed.name == f"new-{unique}"
    assert dict(renamed.aliases) == {"champion": 1}
    assert client.get_model_version(f"new-{unique}", 1).name == f"new-{unique}"
    with pytest.raises(exceptions.NotFound):
        client.get_registered_model(f"old-{unique}")
    with pytest.raises(exceptions.AlreadyExists) as err:
        client.rename_registered_model(f"new-{unique}", f"taken-{unique}")
    assert err.value.field == "new_name"
    with pytest.raises(exceptions.NotFound) as missing:
        client.rename_registered_model(f"old-{unique}", f"other-{unique}")
    assert missing.value.field == "name"
    with pytest.raises(exceptions.InvalidArgument) as invalid:
        client.rename_registered_model(f"new-{unique}", "has/slash")
    assert invalid.value.field == "new_name"
    events = client.list_model_events(f"new-{unique}")
    assert [(e.kind, e.old_value, e.new_value) for e in events if e.kind == "model_renamed"] == [
        ("model_renamed", f"old-{unique}", f"new-{unique}")
    ]


def test_update_description_is_recorded(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    client.create_registered_model(name, description="first")
    updated = client.update_registered_model(name, description="second")
    assert updated.description == "second"
    assert updated.last_updated_timestamp is not None
    assert updated.creation_timestamp is not None
    assert updated.last_updated_timestamp >= updated.creation_timestamp
    (event,) = [e for e in client.list_model_events(name) if e.kind == "description_changed"]
    assert (event.version, event.old_value, event.new_value) == (0, "first", "second")
    assert event.user_id == getpass.getuser()
    with pytest.raises(exceptions.NotFound):
        client.update_registered_model(f"missing-{unique}", description="x")


def test_update_mask_names_only_description(client: tracklane.Client, unique: str) -> None:
    client.create_registered_model(f"m-{unique}")
    request = registry_pb2.UpdateRegisteredModelRequest(name=f"m-{unique}", description="d")
    request.update_mask.paths.append("name")
    with pytest.raises(exceptions.InvalidArgument) as err:
        client._call(client._registry.UpdateRegisteredModel, request)
    assert err.value.field == "update_mask.paths[0]"


def test_tags_set_overwrite_delete(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    client.create_registered_model(name)
    client.set_registered_model_tag(name, "owner", "ana")
    client.set_registered_model_tag(name, "owner", "bo")
    client.set_registered_model_tag(name, "tier", 1)
    assert client.get_registered_model(name).tags == {"owner": "bo", "tier": "1"}
    client.delete_registered_model_tag(name, "owner")
    assert client.get_registered_model(name).tags == {"tier": "1"}
    with pytest.raises(exceptions.NotFound) as err:
        client.delete_registered_model_tag(name, "owner")
    assert err.value.field == "key"
    with pytest.raises(exceptions.InvalidArgument) as invalid:
        client.set_registered_model_tag(name, "", "v")
    assert invalid.value.field == "tag.key"
    with pytest.raises(exceptions.NotFound):
        client.set_registered_model_tag(f"missing-{unique}", "k", "v")


def test_delete_removes_versions_aliases_and_tags(client: tracklane.Client, unique: str) -> None:
    name = f"m-{unique}"
    client.create_registered_model(name, tags={"a": "b"})
    client.create_model_version(name, "s3://bucket/model", tags={"k": "v"})
    client.set_registered_model_alias(name, "champion", 1)
    client.delete_registered_model(name)
    with pytest.raises(exceptions.NotFound):
        client.get_registered_model(name)
    assert client.search_model_versions(f"name = '{name}'") == []
    with pytest.raises(exceptions.NotFound):
        client.delete_registered_model(name)
    # The name is free again and starts from version 1 with no leftovers.
    client.create_registered_model(name)
    version = client.create_model_version(name, "s3://bucket/other")
    assert (version.version, version.tags, version.aliases) == (1, {}, ())
    assert client.get_registered_model(name).tags == {}


def test_search_filters_order_and_pages(client: tracklane.Client, unique: str) -> None:
    for i, team in enumerate(["cv", "nlp", "cv", "cv", "nlp"]):
        client.create_registered_model(f"s-{unique}-{i}", tags={"team": team, "rank": str(5 - i)})
    names = [m.name for m in client.search_registered_models(f"name LIKE 's-{unique}-%'")]
    assert names == [f"s-{unique}-{i}" for i in range(5)]  # by name by default
    cv = client.search_registered_models(
        f"name LIKE 's-{unique}-%' and tags.team = 'cv'", order_by=["name DESC"]
    )
    assert [m.name for m in cv] == [f"s-{unique}-{i}" for i in (3, 2, 0)]
    by_tag = client.search_registered_models(f"name LIKE 's-{unique}-%'", order_by=["tags.rank"])
    assert [m.name for m in by_tag] == [f"s-{unique}-{i}" for i in (4, 3, 2, 1, 0)]
    assert len(client.search_registered_models(f"name ILIKE 'S-{unique}-%'", max_results=2)) == 2

    request = registry_pb2.SearchRegisteredModelsRequest(
        filter=f"name LIKE 's-{unique}-%'", order_by=["tags.rank DESC"], page_size=2
    )
    paged: list[str] = []
    pages = 0
    while True:
        response = client._call(client._registry.SearchRegisteredModels, request)
        paged.extend(m.name for m in response.registered_models)
        pages += 1
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    assert paged == [f"s-{unique}-{i}" for i in range(5)]
    assert pages == 3

    request.filter = f"name LIKE 'x-{unique}-%'"  # a token only continues its own search
    with pytest.raises(exceptions.InvalidArgument) as token_err:
        client._call(client._registry.SearchRegisteredModels, request)
    assert token_err.value.field == "page_token"
    for bad_filter in ("metrics.acc > 1", "name = ", "run_id = 'x'"):
        with pytest.raises(exceptions.InvalidArgument) as err:
            client.search_registered_models(bad_filter)
        assert err.value.field == "filter"
    with pytest.raises(exceptions.InvalidArgument) as order_err:
        client.search_registered_models(order_by=["nope DESC"])
    assert order_err.value.field == "order_by"


def test_negative_page_size(client: tracklane.Client) -> None:
    request = registry_pb2.SearchRegisteredModelsRequest(page_size=-1)
    with pytest.raises(exceptions.InvalidArgument) as err:
        client._call(client._registry.SearchRegisteredModels, request)
    assert err.value.field == "page_size"
