"""Who may call what: ONE table from every RPC's full method name to its rule.

A rule is "any authenticated user", "admins only", or the permissions the request needs: a level
on the experiments, runs (their experiments) or registered models that named request fields
point at. Searches are open to any user and filtered in SQL to what the caller may read
(see ``store.access.readable_*``). A method without a rule is refused (fail closed), and
:func:`check_policy` refuses to start a server whose table misses a method of the services.

Levels follow auth.proto: READ to see, EDIT to create and change runs, metrics, tags, artifacts,
versions, aliases and stages (soft-deleting a run or deleting a version is a change), MANAGE to
delete, restore or rename the experiment or model itself and to grant permissions on it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from tracklane.v1 import artifacts_pb2, auth_pb2, common_pb2, registry_pb2, tracking_pb2
from tracklane.wire.artifacts import parse_upload_message
from tracklane_server.identity.principal import Permission

__all__ = [
    "PUBLIC_SERVICES",
    "RULES",
    "SERVICES",
    "Access",
    "Kind",
    "Need",
    "Rule",
    "check_policy",
    "is_public",
]

READ, EDIT, MANAGE = Permission.READ, Permission.EDIT, Permission.MANAGE


class Access(enum.Enum):
    ANY = "any authenticated user"
    ADMIN = "admins only"
    RESOURCE = "a permission on the resources named"


class Kind(enum.Enum):
    EXPERIMENT = "experiment"
    EXPERIMENT_NAME = "experiment name"
    RUN = "run"
    MODEL = "registered model"

    @property
    def noun(self) -> str:
        """As refusals name it: an experiment by name is still an experiment."""
        return "experiment" if self is Kind.EXPERIMENT_NAME else self.value


@dataclass(frozen=True)
class Need:
    """A level on the resources of ``kind`` named by request field ``field``."""

    kind: Kind
    field: str
    level: Permission | Callable[[Any], Permission]
    #: The ids from a request; default: the field's value (a string, or each of a repeated field).
    ids: Callable[[Any], Sequence[str]] | None = None
    #: For a model the call creates when missing (a copy's destination): only an existing one needs it.
    if_exists: bool = False

    def ids_of(self, request: Any) -> list[str]:
        """The non-empty ids named (an empty one names nothing: the handler says INVALID_ARGUMENT)."""
        found = self.ids(request) if self.ids is not None else getattr(request, self.field)
        values = [found] if isinstance(found, str) else list(found)
        return [v for v in values if v]

    def level_for(self, request: Any) -> Permission:
        return self.level(request) if callable(self.level) else self.level


@dataclass(frozen=True)
class Rule:
    access: Access
    needs: tuple[Need, ...] = ()
    #: Client streaming: the needs are checked on each message (the first only, if ``first_only``).
    per_message: bool = False
    first_only: bool = False
    #: For a stream with per-item errors: the answer refusing one message, instead of ending the call.
    refuse: Callable[[Any, str], Any] | None = field(default=None, compare=False)


ANY = Rule(Access.ANY)
ADMIN = Rule(Access.ADMIN)


def _needs(*needs: Need, **kwargs: Any) -> Rule:
    return Rule(Access.RESOURCE, needs, **kwargs)


def experiment(level: Permission | Callable[[Any], Permission], fld: str = "experiment_id") -> Rule:
    return _needs(Need(Kind.EXPERIMENT, fld, level))


def run(level: Permission, fld: str = "run_id") -> Rule:
    return _needs(Need(Kind.RUN, fld, level))


def model(level: Permission, fld: str = "name") -> Rule:
    return _needs(Need(Kind.MODEL, fld, level))


def _experiment_update_level(request: tracking_pb2.UpdateExperimentRequest) -> Permission:
    """Renaming needs MANAGE, a new description EDIT (the mask as the handler reads it)."""
    paths = set(request.update_mask.paths)
    renames = "name" in paths if paths else bool(request.name)
    return MANAGE if renames else EDIT


def _source_run(request: registry_pb2.CreateModelVersionRequest) -> list[str]:
    """The run a version is made from: it must be readable (registering grants nothing on it)."""
    if request.run_id:
        return [request.run_id]
    if request.source.startswith("runs:/"):
        return [request.source[len("runs:/") :].split("/", 1)[0]]
    return []


def _upload_run(raw: bytes) -> list[str]:
    header = parse_upload_message(raw)[0]
    return [] if header is None else [header.run_id]  # a headerless first message: INVALID_ARGUMENT


def _refuse_batch(
    request: tracking_pb2.StreamMetricsRequest, message: str
) -> tracking_pb2.StreamMetricsResponse:
    """StreamMetrics answers a refused batch with an ItemError and goes on with the others."""
    return tracking_pb2.StreamMetricsResponse(
        run_id=request.run_id,
        writer_id=request.writer_id,
        sequence=request.sequence,
        error=common_pb2.ItemError(code=7, message=message, field="run_id"),  # 7: PERMISSION_DENIED
    )


_TRACKING = "/tracklane.v1.TrackingService/"
_ARTIFACTS = "/tracklane.v1.ArtifactService/"
_REGISTRY = "/tracklane.v1.RegistryService/"
_AUTH = "/tracklane.v1.AuthService/"

RULES: Mapping[str, Rule] = {
    # -- TrackingService ------------------------------------------------------------------------------
    _TRACKING + "CreateExperiment": ANY,  # the creator gets MANAGE on it
    _TRACKING + "GetExperiment": experiment(READ),
    _TRACKING + "GetExperimentByName": _needs(Need(Kind.EXPERIMENT_NAME, "name", READ)),
    _TRACKING + "SearchExperiments": ANY,  # filtered
    _TRACKING + "UpdateExperiment": experiment(_experiment_update_level),
    _TRACKING + "DeleteExperiment": experiment(MANAGE),
    _TRACKING + "RestoreExperiment": experiment(MANAGE),
    _TRACKING + "SetExperimentTag": experiment(EDIT),
    _TRACKING + "DeleteExperimentTag": experiment(EDIT),
    _TRACKING + "CreateRun": _needs(
        Need(Kind.EXPERIMENT, "experiment_id", EDIT, ids=lambda r: [r.experiment_id or "0"]),
        Need(Kind.RUN, "parent_run_id", READ),  # else its answers would tell whether a run exists
    ),
    _TRACKING + "GetRun": run(READ),
    _TRACKING + "UpdateRun": run(EDIT),
    _TRACKING + "DeleteRun": run(EDIT),
    _TRACKING + "RestoreRun": run(EDIT),
    _TRACKING + "SearchRuns": experiment(READ, "experiment_ids"),  # every experiment named
    _TRACKING + "LogBatch": run(EDIT),
    _TRACKING + "DeleteTag": run(EDIT),
    _TRACKING + "LogInputs": run(EDIT),
    _TRACKING + "GetMetricHistory": run(READ),
    _TRACKING + "BatchGetMetricHistory": run(READ, "run_ids"),
    _TRACKING + "StreamMetrics": _needs(
        Need(Kind.RUN, "run_id", EDIT), per_message=True, refuse=_refuse_batch
    ),
    _TRACKING + "WatchRun": run(READ),
    _TRACKING + "WatchExperiments": experiment(READ, "experiment_ids"),  # every experiment named
    # -- ArtifactService ------------------------------------------------------------------------------
    _ARTIFACTS + "UploadArtifact": _needs(
        Need(Kind.RUN, "header.run_id", EDIT, ids=_upload_run), per_message=True, first_only=True
    ),
    _ARTIFACTS + "DownloadArtifact": run(READ),
    _ARTIFACTS + "ListArtifacts": run(READ),
    _ARTIFACTS + "DeleteArtifact": run(EDIT),
    _ARTIFACTS + "CreatePresignedUpload": run(EDIT),
    _ARTIFACTS + "CompletePresignedUpload": run(EDIT),
    _ARTIFACTS + "AbortPresignedUpload": run(EDIT),
    _ARTIFACTS + "GetPresignedDownload": run(READ),
    # -- RegistryService ------------------------------------------------------------------------------
    _REGISTRY + "CreateRegisteredModel": ANY,  # the creator gets MANAGE on it
    _REGISTRY + "GetRegisteredModel": model(READ),
    _REGISTRY + "SearchRegisteredModels": ANY,  # filtered
    _REGISTRY + "RenameRegisteredModel": model(MANAGE),
    _REGISTRY + "UpdateRegisteredModel": model(EDIT),
    _REGISTRY + "DeleteRegisteredModel": model(MANAGE),
    _REGISTRY + "SetRegisteredModelTag": model(EDIT),
    _REGISTRY + "DeleteRegisteredModelTag": model(EDIT),
    _REGISTRY + "CreateModelVersion": _needs(
        Need(Kind.MODEL, "name", EDIT), Need(Kind.RUN, "run_id", READ, ids=_source_run)
    ),
    _REGISTRY + "GetModelVersion": model(READ),
    _REGISTRY + "SearchModelVersions": ANY,  # filtered by readable models
    _REGISTRY + "UpdateModelVersion": model(EDIT),
    _REGISTRY + "DeleteModelVersion": model(EDIT),
    _REGISTRY + "SetModelVersionTag": model(EDIT),
    _REGISTRY + "DeleteModelVersionTag": model(EDIT),
    _REGISTRY + "GetModelVersionDownloadUri": model(READ),
    _REGISTRY + "TransitionModelVersionStage": model(EDIT),
    _REGISTRY + "GetLatestVersions": model(READ),
    _REGISTRY + "SetRegisteredModelAlias": model(EDIT),
    _REGISTRY + "DeleteRegisteredModelAlias": model(EDIT),
    _REGISTRY + "GetModelVersionByAlias": model(READ),
    _REGISTRY + "CopyModelVersion": _needs(
        Need(Kind.MODEL, "name", READ), Need(Kind.MODEL, "destination_name", EDIT, if_exists=True)
    ),
    _REGISTRY + "ListModelEvents": model(READ),
    # -- AuthService: users and tokens (the handlers also tell "self" from "someone else") -------------
    _AUTH + "GetCurrentUser": ANY,
    _AUTH + "CreateUser": ADMIN,
    _AUTH + "GetUser": ANY,
    _AUTH + "ListUsers": ADMIN,
    _AUTH + "UpdateUser": ADMIN,
    _AUTH + "DeleteUser": ADMIN,
    _AUTH + "CreateToken": ANY,
    _AUTH + "ListTokens": ANY,
    _AUTH + "RevokeToken": ANY,
    # -- AuthService: permissions ---------------------------------------------------------------------
    _AUTH + "SetExperimentPermission": experiment(MANAGE),
    _AUTH + "DeleteExperimentPermission": experiment(MANAGE),
    _AUTH + "ListExperimentPermissions": experiment(MANAGE),
    _AUTH + "SetRegisteredModelPermission": model(MANAGE),
    _AUTH + "DeleteRegisteredModelPermission": model(MANAGE),
    _AUTH + "ListRegisteredModelPermissions": model(MANAGE),
    _AUTH + "ListUserPermissions": ANY,  # the handler: the caller's own, anyone's for admins
}

#: The services whose every method must have a rule.
SERVICES: tuple[ServiceDescriptor, ...] = (
    tracking_pb2.DESCRIPTOR.services_by_name["TrackingService"],
    artifacts_pb2.DESCRIPTOR.services_by_name["ArtifactService"],
    registry_pb2.DESCRIPTOR.services_by_name["RegistryService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
)

#: Infrastructure any caller may use (whether it needs a token is authentication's business).
PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


def is_public(method: str) -> bool:
    """Whether ``method`` (``/package.Service/Method``) belongs to one of PUBLIC_SERVICES."""
    return method.lstrip("/").split("/", 1)[0] in PUBLIC_SERVICES


def check_policy(rules: Mapping[str, Rule] = RULES, services: Sequence[ServiceDescriptor] = SERVICES) -> None:
    """Raises RuntimeError unless every method of ``services`` has a rule, every rule a method, and
    every field a rule reads by name exists in the method's request message."""
    problems: list[str] = []
    known: set[str] = set()
    for service in services:
        for method in service.methods:
            name = f"/{service.full_name}/{method.name}"
            known.add(name)
            rule = rules.get(name)
            if rule is None:
                problems.append(f"{name} has no rule")
                continue
            for need in rule.needs:
                if need.ids is None and need.field not in method.input_type.fields_by_name:
                    problems.append(f"{name}: {method.input_type.name} has no field {need.field!r}")
            if rule.per_message and not method.client_streaming:
                problems.append(f"{name}: per_message on a method that is not client-streaming")
    problems.extend(f"{name} is not a method of the services" for name in sorted(set(rules) - known))
    if problems:
        raise RuntimeError("authorization policy incomplete: " + "; ".join(problems))
