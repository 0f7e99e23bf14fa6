"""Roles and resources for the permission tests: an owner's experiment, run, artifact, model and
version, shared with an editor (EDIT) and a reader (READ); a stranger has no grant.

Calls go through raw stubs so every RPC, streaming ones included, is made exactly as a generated
client in any language would make it; ``outcome`` reduces an answer to (status code, message).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from tests.auth_helpers import AuthServer, AuthUser
from tracklane.v1 import (
    artifacts_pb2,
    artifacts_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    registry_pb2,
    registry_pb2_grpc,
    tracking_pb2,
    tracking_pb2_grpc,
)

ROLES = ("admin", "owner", "editor", "reader", "stranger")
#: Each role's level on the owner's resources (admins: everything).
ROLE_LEVEL = {"admin": 4, "owner": 3, "editor": 2, "reader": 1, "stranger": 0}
LEVELS = {"ANY": 0, "READ": 1, "EDIT": 2, "MANAGE": 3, "ADMIN": 4}

ALIAS = "champion"
ARTIFACT = "model/a.txt"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class World:
    """One set of resources (or, for ``missing()``, names of resources that do not exist)."""

    experiment_id: str
    experiment_name: str
    run_id: str
    model: str
    version: int = 1

    @staticmethod
    def missing() -> World:
        return World("987654321", unique("no-such-experiment"), uuid.uuid4().hex, unique("no-such-model"))

    def idents(self) -> list[str]:
        return [self.experiment_id, self.experiment_name, self.run_id, self.model]


class Stubs:
    """A user's stubs for the four services."""

    def __init__(self, user: AuthUser) -> None:
        channel = user.channel()
        self.user = user
        self.tracking = tracking_pb2_grpc.TrackingServiceStub(channel)
        self.artifacts = artifacts_pb2_grpc.ArtifactServiceStub(channel)
        self.registry = registry_pb2_grpc.RegistryServiceStub(channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)

    def service(self, name: str) -> Any:
        return {
            "TrackingService": self.tracking,
            "ArtifactService": self.artifacts,
            "RegistryService": self.registry,
            "AuthService": self.auth,
        }[name]


@dataclass
class Cast:
    """The users of the permission tests on one server, with their stubs."""

    server: AuthServer
    stubs: dict[str, Stubs]
    #: A user no test role is: the subject of grants, updates and the like.
    bystander: AuthUser

    @staticmethod
    def create(server: AuthServer) -> Cast:
        users = {"admin": server.admin}
        users.update({role: server.create_user(role) for role in ROLES if role != "admin"})
        return Cast(
            server, {role: Stubs(user) for role, user in users.items()}, server.create_user("bystander")
        )

    def user(self, role: str) -> AuthUser:
        return self.stubs[role].user

    def world(self, *, artifact: bool = True, model: bool = True) -> World:
        """Fresh resources made by the owner and shared with the editor and the reader."""
        owner = self.stubs["owner"]
        name = unique("perm-exp")
        experiment_id = owner.tracking.CreateExperiment(
            tracking_pb2.CreateExperimentRequest(name=name, tags=[common_pb2.Tag(key="k", value="v")])
        ).experiment.experiment_id
        run_id = owner.tracking.CreateRun(
            tracking_pb2.CreateRunRequest(
                experiment_id=experiment_id, tags=[common_pb2.Tag(key="k", value="v")]
            )
        ).run.info.run_id
        owner.tracking.LogBatch(
            tracking_pb2.LogBatchRequest(
                run_id=run_id,
                metrics=[tracking_pb2.Metric(key="m", value=1.0, step=0, timestamp_ms=1)],
                params=[tracking_pb2.Param(key="p", value="1")],
            )
        )
        grants = {"editor": auth_pb2.PERMISSION_EDIT, "reader": auth_pb2.PERMISSION_READ}
        for role, level in grants.items():
            owner.auth.SetExperimentPermission(
                auth_pb2.SetExperimentPermissionRequest(
                    experiment_id=experiment_id, user_name=self.user(role).name, permission=level
                )
            )
        if artifact or model:
            owner.artifacts.UploadArtifact(upload_requests(run_id, ARTIFACT, b"abc"))
        model_name = unique("perm-model")
        if model:
            owner.registry.CreateRegisteredModel(
                registry_pb2.CreateRegisteredModelRequest(
                    name=model_name, tags=[common_pb2.Tag(key="k", value="v")]
                )
            )
            owner.registry.CreateModelVersion(
                registry_pb2.CreateModelVersionRequest(
                    name=model_name, source=f"runs:/{run_id}/model", tags=[common_pb2.Tag(key="k", value="v")]
                )
            )
            owner.registry.SetRegisteredModelAlias(
                registry_pb2.SetRegisteredModelAliasRequest(name=model_name, alias=ALIAS, version=1)
            )
            for role, level in grants.items():
                owner.auth.SetRegisteredModelPermission(
                    auth_pb2.SetRegisteredModelPermissionRequest(
                        name=model_name, user_name=self.user(role).name, permission=level
                    )
                )
        return World(experiment_id, name, run_id, model_name)


def upload_requests(run_id: str, path: str, data: bytes) -> Iterator[artifacts_pb2.UploadArtifactRequest]:
    yield artifacts_pb2.UploadArtifactRequest(header=artifacts_pb2.UploadHeader(run_id=run_id, path=path))
    yield artifacts_pb2.UploadArtifactRequest(chunk=data)


Outcome = tuple[grpc.StatusCode, str]
OK: Outcome = (grpc.StatusCode.OK, "")
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def outcome(call: Callable[[], Any]) -> Outcome:
    """(code, message) of a call; for StreamMetrics, of the batch's ack (its ItemError if any)."""
    try:
        result = call()
    except grpc.RpcError as err:
        return err.code(), err.details() or ""
    if isinstance(result, tracking_pb2.StreamMetricsResponse) and result.HasField("error"):
        return _CODES[result.error.code], result.error.message
    return OK


def first_of(stream: Any) -> Any:
    """The first answer of a server stream (cancelling the rest): a WatchRun never ends by itself."""
    try:
        return next(stream)
    finally:
        stream.cancel()
