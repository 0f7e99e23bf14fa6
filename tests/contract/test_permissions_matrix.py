"""The permission matrix: every RPC of the four services called by admin, owner (the creator,
MANAGE), editor (EDIT), reader (READ) and stranger (no grant) gets exactly the right answer.

The table states the level each call needs, independently of the server's policy table. A role
below it gets PERMISSION_DENIED; a role at or above it gets the admin's answer (OK, except where
the backend itself cannot serve the call, e.g. presigned URLs on a local folder). A stranger's
refusal is the same for an existing and a missing resource, so nothing leaks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from tests.auth_helpers import AuthServer
from tests.contract.permissions_world import (
    ALIAS,
    ARTIFACT,
    LEVELS,
    OK,
    ROLE_LEVEL,
    ROLES,
    Cast,
    Outcome,
    Stubs,
    World,
    first_of,
    outcome,
    unique,
    upload_requests,
)
from tracklane.v1 import (
    artifacts_pb2,
    auth_pb2,
    common_pb2,
    registry_pb2,
    tracking_pb2,
)
from tracklane.v1 import artifacts_pb2 as art
from tracklane.v1 import registry_pb2 as reg
from tracklane.v1 import tracking_pb2 as trk
from tracklane_server.auth.policy import RULES, check_policy
from tracklane_server.auth.policy import run as run_rule
from tracklane_server.identity.principal import Permission

Call = Callable[[Stubs, World, Cast], Any]


@dataclass(frozen=True)
class Case:
    method: str  # "Service/Method"
    level: str  # ANY, READ, EDIT, MANAGE or ADMIN
    call: Call
    #: Changes the world: each role gets fresh resources.
    mutates: bool = True
    #: The admin's answer is OK (False: the backend may refuse it for reasons of its own).
    admin_ok: bool = True
    label: str = ""

    @property
    def id(self) -> str:
        return self.method.split("/")[1] + (f"[{self.label}]" if self.label else "")

    @property
    def resource_scoped(self) -> bool:
        return self.level in ("READ", "EDIT", "MANAGE")


def _stream_batch(s: Stubs, w: World, c: Cast) -> Any:
    batch = trk.StreamMetricsRequest(
        run_id=w.run_id,
        writer_id=unique("writer"),
        sequence=1,
        keys=["streamed"],
        key_indices=[0],
        values=[1.0],
        steps=[0],
        timestamps_ms=[1],
    )
    return first_of(s.tracking.StreamMetrics(iter([batch])))


def _revoke_own_token(s: Stubs, w: World, c: Cast) -> Any:
    token_id = (
        c.stubs["admin"]
        .auth.CreateToken(
            auth_pb2.CreateTokenRequest(user_name=s.user.name if s.user.name != "admin" else "")
        )
        .token.token_id
    )
    return s.auth.RevokeToken(auth_pb2.RevokeTokenRequest(token_id=token_id))


def _delete_fresh_user(s: Stubs, w: World, c: Cast) -> Any:
    name = unique("doomed")
    c.stubs["admin"].auth.CreateUser(auth_pb2.CreateUserRequest(user=auth_pb2.User(name=name)))
    return s.auth.DeleteUser(auth_pb2.DeleteUserRequest(name=name))


def _mask(*paths: str) -> Any:
    from google.protobuf.field_mask_pb2 import FieldMask

    return FieldMask(paths=list(paths))


T, A, R, U = "TrackingService/", "ArtifactService/", "RegistryService/", "AuthService/"
CASES: list[Case] = [
    # -- TrackingService ------------------------------------------------------------------------------
    Case(
        T + "CreateExperiment",
        "ANY",
        lambda s, w, c: s.tracking.CreateExperiment(trk.CreateExperimentRequest(name=unique("new"))),
    ),
    Case(
        T + "GetExperiment",
        "READ",
        lambda s, w, c: s.tracking.GetExperiment(trk.GetExperimentRequest(experiment_id=w.experiment_id)),
        mutates=False,
    ),
    Case(
        T + "GetExperimentByName",
        "READ",
        lambda s, w, c: s.tracking.GetExperimentByName(
            trk.GetExperimentByNameRequest(name=w.experiment_name)
        ),
        mutates=False,
    ),
    Case(
        T + "SearchExperiments",
        "ANY",
        lambda s, w, c: s.tracking.SearchExperiments(trk.SearchExperimentsRequest()),
        mutates=False,
    ),
    Case(
        T + "UpdateExperiment",
        "EDIT",
        lambda s, w, c: s.tracking.UpdateExperiment(
            trk.UpdateExperimentRequest(
                experiment_id=w.experiment_id, description="d", update_mask=_mask("description")
            )
        ),
        label="description",
    ),
    Case(
        T + "UpdateExperiment",
        "MANAGE",
        lambda s, w, c: s.tracking.UpdateExperiment(
            trk.UpdateExperimentRequest(
                experiment_id=w.experiment_id, name=unique("renamed"), update_mask=_mask("name")
            )
        ),
        label="rename",
    ),
    Case(
        T + "DeleteExperiment",
        "MANAGE",
        lambda s, w, c: s.tracking.DeleteExperiment(
            trk.DeleteExperimentRequest(experiment_id=w.experiment_id)
        ),
    ),
    Case(
        T + "RestoreExperiment",
        "MANAGE",
        lambda s, w, c: s.tracking.RestoreExperiment(
            trk.RestoreExperimentRequest(experiment_id=w.experiment_id)
        ),
    ),
    Case(
        T + "SetExperimentTag",
        "EDIT",
        lambda s, w, c: s.tracking.SetExperimentTag(
            trk.SetExperimentTagRequest(
                experiment_id=w.experiment_id, tag=common_pb2.Tag(key="k2", value="v")
            )
        ),
    ),
    Case(
        T + "DeleteExperimentTag",
        "EDIT",
        lambda s, w, c: s.tracking.DeleteExperimentTag(
            trk.DeleteExperimentTagRequest(experiment_id=w.experiment_id, key="k")
        ),
    ),
    Case(
        T + "CreateRun",
        "EDIT",
        lambda s, w, c: s.tracking.CreateRun(trk.CreateRunRequest(experiment_id=w.experiment_id)),
    ),
    Case(
        T + "GetRun",
        "READ",
        lambda s, w, c: s.tracking.GetRun(trk.GetRunRequest(run_id=w.run_id)),
        mutates=False,
    ),
    Case(
        T + "UpdateRun",
        "EDIT",
        lambda s, w, c: s.tracking.UpdateRun(
            trk.UpdateRunRequest(run_id=w.run_id, run_name="renamed", update_mask=_mask("run_name"))
        ),
    ),
    Case(
        T + "DeleteRun", "EDIT", lambda s, w, c: s.tracking.DeleteRun(trk.DeleteRunRequest(run_id=w.run_id))
    ),
    Case(
        T + "RestoreRun",
        "EDIT",
        lambda s, w, c: s.tracking.RestoreRun(trk.RestoreRunRequest(run_id=w.run_id)),
    ),
    Case(
        T + "SearchRuns",
        "READ",
        lambda s, w, c: s.tracking.SearchRuns(trk.SearchRunsRequest(experiment_ids=[w.experiment_id])),
        mutates=False,
    ),
    Case(
        T + "LogBatch",
        "EDIT",
        lambda s, w, c: s.tracking.LogBatch(
            trk.LogBatchRequest(
                run_id=w.run_id, metrics=[trk.Metric(key="m", value=2.0, step=1, timestamp_ms=2)]
            )
        ),
    ),
    Case(
        T + "DeleteTag",
        "EDIT",
        lambda s, w, c: s.tracking.DeleteTag(trk.DeleteTagRequest(run_id=w.run_id, key="k")),
    ),
    Case(
        T + "LogInputs",
        "EDIT",
        lambda s, w, c: s.tracking.LogInputs(
            trk.LogInputsRequest(
                run_id=w.run_id,
                datasets=[
                    trk.DatasetInput(
                        dataset=trk.Dataset(name="d", digest="abc", source_type="local", source="x"),
                        context="training",
                    )
                ],
            )
        ),
    ),
    Case(
        T + "GetMetricHistory",
        "READ",
        lambda s, w, c: s.tracking.GetMetricHistory(trk.GetMetricHistoryRequest(run_id=w.run_id, key="m")),
        mutates=False,
    ),
    Case(
        T + "BatchGetMetricHistory",
        "READ",
        lambda s, w, c: s.tracking.BatchGetMetricHistory(
            trk.BatchGetMetricHistoryRequest(run_ids=[w.run_id], keys=["m"])
        ),
        mutates=False,
    ),
    Case(T + "StreamMetrics", "EDIT", _stream_batch),
    Case(
        T + "WatchRun",
        "READ",
        lambda s, w, c: first_of(s.tracking.WatchRun(trk.WatchRunRequest(run_id=w.run_id, start_step=0))),
        mutates=False,
    ),
    Case(
        T + "WatchExperiments",
        "READ",
        lambda s, w, c: first_of(
            s.tracking.WatchExperiments(trk.WatchExperimentsRequest(experiment_ids=[w.experiment_id]))
        ),
        mutates=False,
    ),
    # -- ArtifactService ------------------------------------------------------------------------------
    Case(
        A + "UploadArtifact",
        "EDIT",
        lambda s, w, c: s.artifacts.UploadArtifact(upload_requests(w.run_id, "up/b.txt", b"xyz")),
    ),
    Case(
        A + "DownloadArtifact",
        "READ",
        lambda s, w, c: list(
            s.artifacts.DownloadArtifact(art.DownloadArtifactRequest(run_id=w.run_id, path=ARTIFACT))
        ),
        mutates=False,
    ),
    Case(
        A + "ListArtifacts",
        "READ",
        lambda s, w, c: s.artifacts.ListArtifacts(art.ListArtifactsRequest(run_id=w.run_id, recursive=True)),
        mutates=False,
    ),
    Case(
        A + "DeleteArtifact",
        "EDIT",
        lambda s, w, c: s.artifacts.DeleteArtifact(art.DeleteArtifactRequest(run_id=w.run_id, path=ARTIFACT)),
    ),
    Case(
        A + "CreatePresignedUpload",
        "EDIT",
        lambda s, w, c: s.artifacts.CreatePresignedUpload(
            art.CreatePresignedUploadRequest(run_id=w.run_id, path="p/c.bin", size=3)
        ),
        admin_ok=False,
    ),
    Case(
        A + "CompletePresignedUpload",
        "EDIT",
        lambda s, w, c: s.artifacts.CompletePresignedUpload(
            art.CompletePresignedUploadRequest(
                run_id=w.run_id,
                path="p/c.bin",
                upload_id="nope",
                parts=[art.CompletedPart(part_number=1, etag="x")],
            )
        ),
        admin_ok=False,
    ),
    Case(
        A + "AbortPresignedUpload",
        "EDIT",
        lambda s, w, c: s.artifacts.AbortPresignedUpload(
            art.AbortPresignedUploadRequest(run_id=w.run_id, path="p/c.bin", upload_id="nope")
        ),
        admin_ok=False,
    ),
    Case(
        A + "GetPresignedDownload",
        "READ",
        lambda s, w, c: s.artifacts.GetPresignedDownload(
            art.GetPresignedDownloadRequest(run_id=w.run_id, path=ARTIFACT)
        ),
        mutates=False,
        admin_ok=False,
    ),
    # -- RegistryService ------------------------------------------------------------------------------
    Case(
        R + "CreateRegisteredModel",
        "ANY",
        lambda s, w, c: s.registry.CreateRegisteredModel(
            reg.CreateRegisteredModelRequest(name=unique("new-model"))
        ),
    ),
    Case(
        R + "GetRegisteredModel",
        "READ",
        lambda s, w, c: s.registry.GetRegisteredModel(reg.GetRegisteredModelRequest(name=w.model)),
        mutates=False,
    ),
    Case(
        R + "SearchRegisteredModels",
        "ANY",
        lambda s, w, c: s.registry.SearchRegisteredModels(reg.SearchRegisteredModelsRequest()),
        mutates=False,
    ),
    Case(
        R + "RenameRegisteredModel",
        "MANAGE",
        lambda s, w, c: s.registry.RenameRegisteredModel(
            reg.RenameRegisteredModelRequest(name=w.model, new_name=unique("renamed-model"))
        ),
    ),
    Case(
        R + "UpdateRegisteredModel",
        "EDIT",
        lambda s, w, c: s.registry.UpdateRegisteredModel(
            reg.UpdateRegisteredModelRequest(name=w.model, description="d")
        ),
    ),
    Case(
        R + "DeleteRegisteredModel",
        "MANAGE",
        lambda s, w, c: s.registry.DeleteRegisteredModel(reg.DeleteRegisteredModelRequest(name=w.model)),
    ),
    Case(
        R + "SetRegisteredModelTag",
        "EDIT",
        lambda s, w, c: s.registry.SetRegisteredModelTag(
            reg.SetRegisteredModelTagRequest(name=w.model, tag=common_pb2.Tag(key="k2", value="v"))
        ),
    ),
    Case(
        R + "DeleteRegisteredModelTag",
        "EDIT",
        lambda s, w, c: s.registry.DeleteRegisteredModelTag(
            reg.DeleteRegisteredModelTagRequest(name=w.model, key="k")
        ),
    ),
    Case(
        R + "CreateModelVersion",
        "EDIT",
        lambda s, w, c: s.registry.CreateModelVersion(
            reg.CreateModelVersionRequest(name=w.model, source=f"runs:/{w.run_id}/model")
        ),
    ),
    Case(
        R + "GetModelVersion",
        "READ",
        lambda s, w, c: s.registry.GetModelVersion(
            reg.GetModelVersionRequest(name=w.model, version=w.version)
        ),
        mutates=False,
    ),
    Case(
        R + "SearchModelVersions",
        "ANY",
        lambda s, w, c: s.registry.SearchModelVersions(reg.SearchModelVersionsRequest()),
        mutates=False,
    ),
    Case(
        R + "UpdateModelVersion",
        "EDIT",
        lambda s, w, c: s.registry.UpdateModelVersion(
            reg.UpdateModelVersionRequest(name=w.model, version=w.version, description="d")
        ),
    ),
    Case(
        R + "DeleteModelVersion",
        "EDIT",
        lambda s, w, c: s.registry.DeleteModelVersion(
            reg.DeleteModelVersionRequest(name=w.model, version=w.version)
        ),
    ),
    Case(
        R + "SetModelVersionTag",
        "EDIT",
        lambda s, w, c: s.registry.SetModelVersionTag(
            reg.SetModelVersionTagRequest(
                name=w.model, version=w.version, tag=common_pb2.Tag(key="k2", value="v")
            )
        ),
    ),
    Case(
        R + "DeleteModelVersionTag",
        "EDIT",
        lambda s, w, c: s.registry.DeleteModelVersionTag(
            reg.DeleteModelVersionTagRequest(name=w.model, version=w.version, key="k")
        ),
    ),
    Case(
        R + "GetModelVersionDownloadUri",
        "READ",
        lambda s, w, c: s.registry.GetModelVersionDownloadUri(
            reg.GetModelVersionDownloadUriRequest(name=w.model, version=w.version)
        ),
        mutates=False,
    ),
    Case(
        R + "TransitionModelVersionStage",
        "EDIT",
        lambda s, w, c: s.registry.TransitionModelVersionStage(
            reg.TransitionModelVersionStageRequest(
                name=w.model, version=w.version, stage=reg.MODEL_STAGE_STAGING
            )
        ),
    ),
    Case(
        R + "GetLatestVersions",
        "READ",
        lambda s, w, c: s.registry.GetLatestVersions(reg.GetLatestVersionsRequest(name=w.model)),
        mutates=False,
    ),
    Case(
        R + "SetRegisteredModelAlias",
        "EDIT",
        lambda s, w, c: s.registry.SetRegisteredModelAlias(
            reg.SetRegisteredModelAliasRequest(name=w.model, alias="other", version=w.version)
        ),
    ),
    Case(
        R + "DeleteRegisteredModelAlias",
        "EDIT",
        lambda s, w, c: s.registry.DeleteRegisteredModelAlias(
            reg.DeleteRegisteredModelAliasRequest(name=w.model, alias=ALIAS)
        ),
    ),
    Case(
        R + "GetModelVersionByAlias",
        "READ",
        lambda s, w, c: s.registry.GetModelVersionByAlias(
            reg.GetModelVersionByAliasRequest(name=w.model, alias=ALIAS)
        ),
        mutates=False,
    ),
    Case(
        R + "CopyModelVersion",
        "READ",
        lambda s, w, c: s.registry.CopyModelVersion(
            reg.CopyModelVersionRequest(name=w.model, version=w.version, destination_name=unique("copy"))
        ),
    ),
    Case(
        R + "ListModelEvents",
        "READ",
        lambda s, w, c: s.registry.ListModelEvents(reg.ListModelEventsRequest(name=w.model)),
        mutates=False,
    ),
    # -- AuthService: users and tokens ----------------------------------------------------------------
    Case(
        U + "GetCurrentUser",
        "ANY",
        lambda s, w, c: s.auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest()),
        mutates=False,
    ),
    Case(
        U + "CreateUser",
        "ADMIN",
        lambda s, w, c: s.auth.CreateUser(
            auth_pb2.CreateUserRequest(user=auth_pb2.User(name=unique("made")))
        ),
    ),
    Case(
        U + "GetUser",
        "ANY",
        lambda s, w, c: s.auth.GetUser(auth_pb2.GetUserRequest(name=s.user.name)),
        mutates=False,
        label="self",
    ),
    Case(
        U + "ListUsers", "ADMIN", lambda s, w, c: s.auth.ListUsers(auth_pb2.ListUsersRequest()), mutates=False
    ),
    Case(
        U + "UpdateUser",
        "ADMIN",
        lambda s, w, c: s.auth.UpdateUser(
            auth_pb2.UpdateUserRequest(
                user=auth_pb2.User(name=c.bystander.name, is_admin=False), update_mask=_mask("is_admin")
            )
        ),
    ),
    Case(U + "DeleteUser", "ADMIN", _delete_fresh_user),
    Case(
        U + "CreateToken",
        "ANY",
        lambda s, w, c: s.auth.CreateToken(auth_pb2.CreateTokenRequest(name="extra")),
        label="self",
    ),
    Case(
        U + "ListTokens",
        "ANY",
        lambda s, w, c: s.auth.ListTokens(auth_pb2.ListTokensRequest()),
        mutates=False,
        label="self",
    ),
    Case(U + "RevokeToken", "ANY", _revoke_own_token, label="own"),
    # -- AuthService: permissions ---------------------------------------------------------------------
    Case(
        U + "SetExperimentPermission",
        "MANAGE",
        lambda s, w, c: s.auth.SetExperimentPermission(
            auth_pb2.SetExperimentPermissionRequest(
                experiment_id=w.experiment_id, user_name=c.bystander.name, permission=auth_pb2.PERMISSION_READ
            )
        ),
    ),
    Case(
        U + "DeleteExperimentPermission",
        "MANAGE",
        lambda s, w, c: s.auth.DeleteExperimentPermission(
            auth_pb2.DeleteExperimentPermissionRequest(
                experiment_id=w.experiment_id, user_name=c.user("reader").name
            )
        ),
    ),
    Case(
        U + "ListExperimentPermissions",
        "MANAGE",
        lambda s, w, c: s.auth.ListExperimentPermissions(
            auth_pb2.ListExperimentPermissionsRequest(experiment_id=w.experiment_id)
        ),
        mutates=False,
    ),
    Case(
        U + "SetRegisteredModelPermission",
        "MANAGE",
        lambda s, w, c: s.auth.SetRegisteredModelPermission(
            auth_pb2.SetRegisteredModelPermissionRequest(
                name=w.model, user_name=c.bystander.name, permission=auth_pb2.PERMISSION_READ
            )
        ),
    ),
    Case(
        U + "DeleteRegisteredModelPermission",
        "MANAGE",
        lambda s, w, c: s.auth.DeleteRegisteredModelPermission(
            auth_pb2.DeleteRegisteredModelPermissionRequest(name=w.model, user_name=c.user("reader").name)
        ),
    ),
    Case(
        U + "ListRegisteredModelPermissions",
        "MANAGE",
        lambda s, w, c: s.auth.ListRegisteredModelPermissions(
            auth_pb2.ListRegisteredModelPermissionsRequest(name=w.model)
        ),
        mutates=False,
    ),
    Case(
        U + "ListUserPermissions",
        "ANY",
        lambda s, w, c: s.auth.ListUserPermissions(auth_pb2.ListUserPermissionsRequest()),
        mutates=False,
        label="self",
    ),
]


def test_the_table_covers_every_rpc_of_the_four_services() -> None:
    services = [
        tracking_pb2.DESCRIPTOR.services_by_name["TrackingService"],
        artifacts_pb2.DESCRIPTOR.services_by_name["ArtifactService"],
        registry_pb2.DESCRIPTOR.services_by_name["RegistryService"],
        auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
    ]
    rpcs = {f"{s.name}/{m.name}" for s in services for m in s.methods}
    assert {case.method for case in CASES} == rpcs


def test_the_server_refuses_to_start_with_a_policy_missing_a_method() -> None:
    check_policy()  # the real table is complete
    partial = {name: rule for name, rule in RULES.items() if not name.endswith("/GetRun")}
    with pytest.raises(RuntimeError, match="TrackingService/GetRun has no rule"):
        check_policy(partial)
    misnamed = {**RULES, "/tracklane.v1.TrackingService/GetRun": run_rule(Permission.READ, "run")}
    with pytest.raises(RuntimeError, match="GetRunRequest has no field 'run'"):
        check_policy(misnamed)


@pytest.fixture(scope="module")
def cast(auth_server: AuthServer) -> Cast:
    return Cast.create(auth_server)


def _world_for(cast: Cast, case: Case) -> World:
    """Only what the case needs: uploads and models are the slow part of a world."""
    model = case.method.startswith((R, U)) or "Model" in case.method
    return cast.world(model=model, artifact=model or case.method.startswith(A))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_role_gets_exactly_the_right_answer(cast: Cast, case: Case) -> None:
    shared = None if case.mutates else _world_for(cast, case)
    answers: dict[str, Outcome] = {}
    for role in ROLES:
        world = shared or _world_for(cast, case)
        answers[role] = outcome(functools.partial(case.call, cast.stubs[role], world, cast))
    if case.admin_ok:
        assert answers["admin"] == OK
    assert answers["admin"][0] is not grpc.StatusCode.PERMISSION_DENIED
    for role in ROLES:
        if ROLE_LEVEL[role] >= LEVELS[case.level]:
            assert answers[role][0] == answers["admin"][0], (role, answers[role])
        else:
            assert answers[role][0] == grpc.StatusCode.PERMISSION_DENIED, (role, answers[role])


def _shape(message: str, world: World) -> str:
    for ident in world.idents():
        message = message.replace(f"'{ident}'", "'<id>'")
    return message


@pytest.mark.parametrize("case", [c for c in CASES if c.resource_scoped], ids=lambda c: c.id)
def test_a_stranger_cannot_tell_an_existing_resource_from_a_missing_one(cast: Cast, case: Case) -> None:
    existing, missing = _world_for(cast, case), World.missing()
    stranger = cast.stubs["stranger"]
    on_existing = outcome(lambda: case.call(stranger, existing, cast))
    on_missing = outcome(lambda: case.call(stranger, missing, cast))
    assert on_existing[0] == on_missing[0] == grpc.StatusCode.PERMISSION_DENIED
    assert _shape(on_existing[1], existing) == _shape(on_missing[1], missing)
    assert re.fullmatch(
        r"permission denied on (experiment|run|registered model) '<id>' \(or it does not exist\)",
        _shape(on_existing[1], existing),
    )
