"""Permissions beyond the matrix: filtered searches with paging, grants and revocations taking
effect on the next call, renames, creators, streams, the default permission and the CLI."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest

import tracklane
from tests.auth_helpers import AuthServer, AuthUser, start_auth_server
from tests.conftest import BACKENDS
from tests.contract.permissions_world import Cast, outcome, unique, upload_requests
from tests.servers import own_backend
from tracklane import exceptions
from tracklane.v1 import auth_pb2, registry_pb2, tracking_pb2
from tracklane_server.cli import main as cli_main

DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
def cast(auth_server: AuthServer) -> Cast:
    return Cast.create(auth_server)


def _pages(fetch: Any, items: str, page_size: int = 1) -> tuple[list[Any], int]:
    """Every item of a paged search, and how many pages it took."""
    found, token, pages = [], "", 0
    while True:
        response = fetch(page_size, token)
        found.extend(getattr(response, items))
        pages += 1
        token = response.next_page_token
        if not token:
            return found, pages


# -- searches contain only what the caller may read ----------------------------------------------


def test_experiment_search_pages_through_exactly_the_readable_ones(cast: Cast) -> None:
    owner, reader = cast.user("owner").client(), cast.user("reader")
    prefix = unique("search")
    ids = [owner.create_experiment(f"{prefix}-{i}") for i in range(7)]
    cast.user("stranger").client().create_experiment(f"{prefix}-theirs")  # readable by its creator only
    shared = ids[1::2]  # 3 of 7, interleaved with unreadable ones
    for experiment_id in shared:
        owner.set_experiment_permission(experiment_id, reader.name, "READ")
    stub = cast.stubs["reader"].tracking

    def fetch(size: int, token: str) -> Any:
        request = tracking_pb2.SearchExperimentsRequest(
            filter=f"name LIKE '{prefix}-%'", page_size=size, page_token=token
        )
        return stub.SearchExperiments(request)

    found, pages = _pages(fetch, "experiments")
    assert sorted(e.experiment_id for e in found) == sorted(shared)
    assert pages == len(shared)  # every page full: the restriction is in the query, not after it
    everything, _ = _pages(
        lambda size, token: cast.stubs["admin"].tracking.SearchExperiments(
            tracking_pb2.SearchExperimentsRequest(
                filter=f"name LIKE '{prefix}-%'", page_size=size, page_token=token
            )
        ),
        "experiments",
        page_size=100,
    )
    assert len(everything) == 8


def test_model_and_version_searches_contain_only_readable_models(cast: Cast) -> None:
    owner = cast.stubs["owner"]
    reader = cast.user("reader")
    world = cast.world()
    prefix = unique("models")
    names = [f"{prefix}-{i}" for i in range(5)]
    for name in names:
        owner.registry.CreateRegisteredModel(registry_pb2.CreateRegisteredModelRequest(name=name))
        for _ in range(2):
            owner.registry.CreateModelVersion(
                registry_pb2.CreateModelVersionRequest(name=name, source=f"runs:/{world.run_id}/model")
            )
    shared = names[::2]
    for name in shared:
        owner.auth.SetRegisteredModelPermission(
            auth_pb2.SetRegisteredModelPermissionRequest(
                name=name, user_name=reader.name, permission=auth_pb2.PERMISSION_READ
            )
        )
    stub = cast.stubs["reader"].registry
    models, pages = _pages(
        lambda size, token: stub.SearchRegisteredModels(
            registry_pb2.SearchRegisteredModelsRequest(
                filter=f"name LIKE '{prefix}-%'", page_size=size, page_token=token
            )
        ),
        "registered_models",
    )
    assert [m.name for m in models] == shared
    assert pages == len(shared)
    versions, pages = _pages(
        lambda size, token: stub.SearchModelVersions(
            registry_pb2.SearchModelVersionsRequest(
                filter=f"name LIKE '{prefix}-%'", page_size=size, page_token=token
            )
        ),
        "model_versions",
        page_size=2,
    )
    assert sorted((v.name, v.version) for v in versions) == [(n, v) for n in shared for v in (1, 2)]
    assert pages == len(shared)
    stranger = cast.stubs["stranger"].registry
    nothing = stranger.SearchModelVersions(
        registry_pb2.SearchModelVersionsRequest(filter=f"name LIKE '{prefix}-%'")
    )
    assert list(nothing.model_versions) == []


def test_search_runs_naming_an_unreadable_experiment_is_refused(cast: Cast) -> None:
    readable = cast.world(model=False, artifact=False)
    theirs = (
        cast.stubs["stranger"]
        .tracking.CreateExperiment(tracking_pb2.CreateExperimentRequest(name=unique("private")))
        .experiment.experiment_id
    )
    reader = cast.stubs["reader"].tracking
    ok = reader.SearchRuns(tracking_pb2.SearchRunsRequest(experiment_ids=[readable.experiment_id]))
    assert [r.info.run_id for r in ok.runs] == [readable.run_id]
    code, message = outcome(
        lambda: reader.SearchRuns(
            tracking_pb2.SearchRunsRequest(experiment_ids=[readable.experiment_id, theirs])
        )
    )
    assert code == DENIED
    assert f"'{theirs}'" in message


def test_batch_metric_history_needs_every_run(cast: Cast) -> None:
    readable = cast.world(model=False, artifact=False)
    theirs = cast.world(model=False, artifact=False)
    reader = cast.stubs["reader"].tracking
    cast.stubs["owner"].auth.DeleteExperimentPermission(
        auth_pb2.DeleteExperimentPermissionRequest(
            experiment_id=theirs.experiment_id, user_name=cast.user("reader").name
        )
    )
    request = tracking_pb2.BatchGetMetricHistoryRequest(run_ids=[readable.run_id, theirs.run_id], keys=["m"])
    code, message = outcome(lambda: reader.BatchGetMetricHistory(request))
    assert code == DENIED
    assert theirs.run_id in message


# -- grants, revocations, renames and creators ---------------------------------------------------


def test_a_grant_and_a_revocation_take_effect_on_the_next_call(cast: Cast) -> None:
    owner, bystander = cast.user("owner").client(), cast.bystander
    world = cast.world(model=False, artifact=False)
    theirs = bystander.client()
    with pytest.raises(exceptions.PermissionDenied):
        theirs.get_run(world.run_id)
    owner.set_experiment_permission(world.experiment_id, bystander.name, "READ")
    assert theirs.get_run(world.run_id).info.run_id == world.run_id
    with pytest.raises(exceptions.PermissionDenied):
        theirs.set_experiment_tag(world.experiment_id, "k", "v")
    owner.set_experiment_permission(world.experiment_id, bystander.name, "EDIT")  # replaces READ
    theirs.set_experiment_tag(world.experiment_id, "k", "v")
    owner.delete_experiment_permission(world.experiment_id, bystander.name)
    with pytest.raises(exceptions.PermissionDenied):
        theirs.get_run(world.run_id)
    assert world.experiment_id not in {e.experiment_id for e in theirs.search_experiments()}


def test_a_model_permission_follows_a_rename_and_dies_with_the_model(cast: Cast) -> None:
    world = cast.world()
    owner, reader = cast.user("owner").client(), cast.user("reader").client()
    new_name = unique("renamed")
    owner.rename_registered_model(world.model, new_name)
    assert reader.get_registered_model(new_name).name == new_name
    with pytest.raises(exceptions.PermissionDenied):
        reader.get_registered_model(world.model)  # the old name is simply unknown now
    owner.delete_registered_model(new_name)
    cast.user("stranger").client().create_registered_model(new_name)  # a new model, the same name
    with pytest.raises(exceptions.PermissionDenied):
        reader.get_registered_model(new_name)


def test_the_creator_gets_manage_and_is_listed(cast: Cast) -> None:
    creator = cast.bystander.client()
    experiment_id = creator.create_experiment(unique("mine"))
    assert [(p.user_name, p.permission) for p in creator.list_experiment_permissions(experiment_id)] == [
        (cast.bystander.name, "MANAGE")
    ]
    experiments, _ = creator.list_user_permissions()
    assert (experiment_id, "MANAGE") in {(p.experiment_id, p.permission) for p in experiments}


def test_copying_creates_a_destination_the_copier_manages_but_never_writes_into_a_foreign_one(
    cast: Cast,
) -> None:
    world = cast.world()
    reader = cast.stubs["reader"]
    destination = unique("copy")
    reader.registry.CopyModelVersion(
        registry_pb2.CopyModelVersionRequest(name=world.model, version=1, destination_name=destination)
    )
    listed = reader.auth.ListRegisteredModelPermissions(
        auth_pb2.ListRegisteredModelPermissionsRequest(name=destination)
    ).permissions
    assert [(p.user_name, p.permission) for p in listed] == [
        (cast.user("reader").name, auth_pb2.PERMISSION_MANAGE)
    ]
    foreign = unique("foreign")
    cast.stubs["stranger"].registry.CreateRegisteredModel(
        registry_pb2.CreateRegisteredModelRequest(name=foreign)
    )
    code, _ = outcome(
        lambda: reader.registry.CopyModelVersion(
            registry_pb2.CopyModelVersionRequest(name=world.model, version=1, destination_name=foreign)
        )
    )
    assert code == DENIED


def test_a_version_source_run_must_be_readable(cast: Cast) -> None:
    world = cast.world(model=False)
    stranger = cast.stubs["stranger"]
    name = unique("their-model")
    stranger.registry.CreateRegisteredModel(registry_pb2.CreateRegisteredModelRequest(name=name))
    for request in (
        registry_pb2.CreateModelVersionRequest(name=name, source=f"runs:/{world.run_id}/model"),
        registry_pb2.CreateModelVersionRequest(name=name, source="s3://elsewhere/model", run_id=world.run_id),
    ):
        code, message = outcome(functools.partial(stranger.registry.CreateModelVersion, request))
        assert code == DENIED
        assert world.run_id in message


def test_permission_rpcs_name_the_bad_field(cast: Cast) -> None:
    world = cast.world(model=False, artifact=False)
    owner = cast.stubs["owner"].auth
    cases: list[tuple[Callable[[], Any], grpc.StatusCode, str]] = [
        (
            lambda: owner.SetExperimentPermission(
                auth_pb2.SetExperimentPermissionRequest(
                    experiment_id=world.experiment_id, user_name=cast.bystander.name
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "permission",
        ),
        (  # only an admin is told that a user does not exist (test_hostile_auth.py: others are not)
            lambda: cast.stubs["admin"].auth.SetExperimentPermission(
                auth_pb2.SetExperimentPermissionRequest(
                    experiment_id=world.experiment_id,
                    user_name=unique("nobody"),
                    permission=auth_pb2.PERMISSION_READ,
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "user_name",
        ),
        (
            lambda: owner.DeleteExperimentPermission(
                auth_pb2.DeleteExperimentPermissionRequest(
                    experiment_id=world.experiment_id, user_name=cast.bystander.name
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "user_name",
        ),
    ]
    for call, code, fld in cases:
        with pytest.raises(grpc.RpcError) as err:
            call()
        error = exceptions.from_rpc_error(err.value)
        assert error.code == code
        assert error.field == fld


def test_only_admins_list_another_users_permissions(cast: Cast) -> None:
    reader = cast.stubs["reader"].auth
    code, _ = outcome(
        lambda: reader.ListUserPermissions(auth_pb2.ListUserPermissionsRequest(user_name="admin"))
    )
    assert code == DENIED
    world = cast.world(model=False, artifact=False)
    listed = cast.stubs["admin"].auth.ListUserPermissions(
        auth_pb2.ListUserPermissionsRequest(user_name=cast.user("reader").name)
    )
    assert (world.experiment_id, auth_pb2.PERMISSION_READ) in {
        (p.experiment_id, p.permission) for p in listed.experiment_permissions
    }


# -- streams ---------------------------------------------------------------------------------------


def test_a_refused_metric_batch_gets_an_item_error_and_the_stream_goes_on(cast: Cast) -> None:
    mine = cast.world(model=False, artifact=False)
    theirs = (
        cast.stubs["stranger"]
        .tracking.CreateRun(
            tracking_pb2.CreateRunRequest(
                experiment_id=cast.stubs["stranger"]
                .tracking.CreateExperiment(tracking_pb2.CreateExperimentRequest(name=unique("private")))
                .experiment.experiment_id
            )
        )
        .run.info.run_id
    )
    writer = unique("writer")

    def batch(run_id: str, value: float) -> tracking_pb2.StreamMetricsRequest:
        return tracking_pb2.StreamMetricsRequest(
            run_id=run_id,
            writer_id=writer,
            sequence=1,
            keys=["s"],
            key_indices=[0],
            values=[value],
            steps=[0],
            timestamps_ms=[1],
        )

    requests = [batch(theirs, 1.0), batch(mine.run_id, 2.0), batch(theirs, 3.0)]
    acks = list(cast.stubs["editor"].tracking.StreamMetrics(iter(requests)))
    by_run: dict[str, list[Any]] = {}
    for ack in acks:
        by_run.setdefault(ack.run_id, []).append(ack)
    assert [a.points_written for a in by_run[mine.run_id]] == [1]
    assert not by_run[mine.run_id][0].HasField("error")
    assert [a.error.code for a in by_run[theirs]] == [7, 7]
    stored = cast.stubs["admin"].tracking.GetMetricHistory(
        tracking_pb2.GetMetricHistoryRequest(run_id=theirs, key="s")
    )
    assert list(stored.series.values) == []


def test_an_upload_to_a_run_the_caller_cannot_edit_stores_nothing(cast: Cast) -> None:
    world = cast.world(model=False, artifact=False)
    code, _ = outcome(
        lambda: cast.stubs["reader"].artifacts.UploadArtifact(upload_requests(world.run_id, "x.txt", b"data"))
    )
    assert code == DENIED
    files = cast.user("admin").client().list_artifacts(world.run_id)
    assert [f.path for f in files] == []


# -- the default permission ------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def default_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AuthServer]]:
    """Two servers on one backend, with default permission READ and EDIT."""
    servers: dict[str, AuthServer] = {}
    with ExitStack() as stack:
        for default in ("READ", "EDIT"):
            own = stack.enter_context(own_backend(request, s3_prefix=f"tracklane-default-{default.lower()}"))
            data_dir = tmp_path_factory.mktemp(f"tracklane-default-{default.lower()}")
            servers[default] = server = start_auth_server(
                data_dir, auth_default_permission=default, **own.settings()
            )
            stack.callback(server.local.stop)
            stack.callback(server.close_clients)
        yield servers


def test_default_read_lets_everyone_see_but_not_change(default_servers: dict[str, AuthServer]) -> None:
    server = default_servers["READ"]
    owner, other = server.create_user("owner").client(), server.create_user("other").client()
    experiment_id = owner.create_experiment(unique("open"))
    run_id = owner.create_run(experiment_id).info.run_id
    name = unique("open-model")
    owner.create_registered_model(name)
    assert other.get_run(run_id).info.run_id == run_id
    assert experiment_id in {e.experiment_id for e in other.search_experiments()}
    assert other.get_registered_model(name).name == name
    with pytest.raises(exceptions.PermissionDenied):
        other.set_experiment_tag(experiment_id, "k", "v")
    with pytest.raises(exceptions.PermissionDenied):
        other.set_registered_model_tag(name, "k", "v")
    # Anyone may list everything: a missing experiment is simply not found.
    with pytest.raises(exceptions.NotFound):
        other.get_experiment("987654321")


def test_default_edit_lets_everyone_change_and_a_grant_replaces_it(
    default_servers: dict[str, AuthServer],
) -> None:
    server = default_servers["EDIT"]
    owner = server.create_user("owner").client()
    other_user = server.create_user("other")
    other = other_user.client()
    experiment_id = owner.create_experiment(unique("shared"))
    other.set_experiment_tag(experiment_id, "k", "v")
    with pytest.raises(exceptions.PermissionDenied):
        other.delete_experiment(experiment_id)  # MANAGE stays with the creator
    owner.set_experiment_permission(experiment_id, other_user.name, "READ")  # below the default
    with pytest.raises(exceptions.PermissionDenied):
        other.set_experiment_tag(experiment_id, "k", "w")
    assert other.get_experiment(experiment_id).tags["k"] == "v"


def test_the_default_permission_setting_rejects_unknown_levels(tmp_path: Path) -> None:
    with pytest.raises(exceptions.InvalidArgument) as err:
        start_auth_server(tmp_path, auth_default_permission="WRITE")
    assert err.value.field == "--auth-default-permission"


def test_permission_rpcs_are_refused_without_auth(client: tracklane.Client) -> None:
    with pytest.raises(exceptions.FailedPrecondition):
        client.list_user_permissions()


# -- the CLI ---------------------------------------------------------------------------------------


def _cli(
    user: AuthUser, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> Any:
    monkeypatch.setenv("TRACKLANE_TRACKING_TOKEN", user.token)
    cli_main(["permissions", *args, "--tracking-uri", user.server.uri, "--output", "json"])
    return json.loads(capsys.readouterr().out)


def test_cli_sets_lists_and_deletes_permissions(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = cast.world()
    owner, name = cast.user("owner"), cast.bystander.name
    granted = _cli(owner, monkeypatch, capsys, "set", "--experiment-id", world.experiment_id, name, "edit")
    assert granted["experiments"] == [
        {"experiment_id": world.experiment_id, "user_name": name, "permission": "EDIT"}
    ]
    _cli(owner, monkeypatch, capsys, "set", "--model", world.model, name, "READ")
    listed = _cli(owner, monkeypatch, capsys, "list", "--model", world.model)
    assert {(p["user_name"], p["permission"]) for p in listed["registered_models"]} == {
        (owner.name, "MANAGE"),
        (cast.user("editor").name, "EDIT"),
        (cast.user("reader").name, "READ"),
        (name, "READ"),
    }
    _cli(owner, monkeypatch, capsys, "delete", "--experiment-id", world.experiment_id, name)
    own = _cli(cast.bystander, monkeypatch, capsys, "list")
    assert world.experiment_id not in {p["experiment_id"] for p in own["experiments"]}
    assert {"name": world.model, "user_name": name, "permission": "READ"} in own["registered_models"]
