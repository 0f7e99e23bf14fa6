"""Client methods for permissions on experiments and registered models (AuthService).

Levels are the strings ``"READ"``, ``"EDIT"`` and ``"MANAGE"``; each includes the ones before it.
Granting and listing a resource's permissions needs MANAGE on it (or admin).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from tracklane._client_base import ClientBase
from tracklane.exceptions import InvalidArgument
from tracklane.v1 import auth_pb2, auth_pb2_grpc

__all__ = ["PERMISSIONS", "ExperimentPermission", "PermissionMethods", "RegisteredModelPermission"]

#: The permission levels, lowest first.
PERMISSIONS = ("READ", "EDIT", "MANAGE")


@dataclass(frozen=True)
class ExperimentPermission:
    """A user's permission on an experiment (and its runs)."""

    experiment_id: str
    user_name: str
    permission: str


@dataclass(frozen=True)
class RegisteredModelPermission:
    """A user's permission on a registered model (and its versions); follows renames."""

    name: str
    user_name: str
    permission: str


def _to_proto(permission: str) -> auth_pb2.Permission.ValueType:
    name = permission.upper()
    if name not in PERMISSIONS:
        raise InvalidArgument(
            f"permission: expected READ, EDIT or MANAGE, got {permission!r}", field="permission"
        )
    return auth_pb2.Permission.Value(f"PERMISSION_{name}")


def _name(value: auth_pb2.Permission.ValueType) -> str:
    return auth_pb2.Permission.Name(value).removeprefix("PERMISSION_")


def _experiment(p: auth_pb2.ExperimentPermission) -> ExperimentPermission:
    return ExperimentPermission(p.experiment_id, p.user_name, _name(p.permission))


def _model(p: auth_pb2.RegisteredModelPermission) -> RegisteredModelPermission:
    return RegisteredModelPermission(p.name, p.user_name, _name(p.permission))


class PermissionMethods(ClientBase):
    """Grant, revoke and list permissions; mixed into :class:`tracklane.Client`."""

    @cached_property
    def _auth_permissions(self) -> auth_pb2_grpc.AuthServiceStub:
        return auth_pb2_grpc.AuthServiceStub(self._channel)

    def set_experiment_permission(
        self, experiment_id: str, user_name: str, permission: str
    ) -> ExperimentPermission:
        """Grants (or replaces) ``user_name``'s permission on an experiment.

        Raises:
            PermissionDenied: the caller lacks MANAGE on it. NotFound: no such user.
        """
        response = self._call(
            self._auth_permissions.SetExperimentPermission,
            auth_pb2.SetExperimentPermissionRequest(
                experiment_id=experiment_id, user_name=user_name, permission=_to_proto(permission)
            ),
        )
        return _experiment(response.permission)

    def delete_experiment_permission(self, experiment_id: str, user_name: str) -> None:
        """Removes ``user_name``'s permission on an experiment. NotFound when there is none."""
        self._call(
            self._auth_permissions.DeleteExperimentPermission,
            auth_pb2.DeleteExperimentPermissionRequest(experiment_id=experiment_id, user_name=user_name),
        )

    def list_experiment_permissions(self, experiment_id: str) -> list[ExperimentPermission]:
        """The permissions granted on an experiment, by user name."""
        response = self._call(
            self._auth_permissions.ListExperimentPermissions,
            auth_pb2.ListExperimentPermissionsRequest(experiment_id=experiment_id),
        )
        return [_experiment(p) for p in response.permissions]

    def set_registered_model_permission(
        self, name: str, user_name: str, permission: str
    ) -> RegisteredModelPermission:
        """Grants (or replaces) ``user_name``'s permission on a registered model."""
        response = self._call(
            self._auth_permissions.SetRegisteredModelPermission,
            auth_pb2.SetRegisteredModelPermissionRequest(
                name=name, user_name=user_name, permission=_to_proto(permission)
            ),
        )
        return _model(response.permission)

    def delete_registered_model_permission(self, name: str, user_name: str) -> None:
        """Removes ``user_name``'s permission on a registered model. NotFound when there is none."""
        self._call(
            self._auth_permissions.DeleteRegisteredModelPermission,
            auth_pb2.DeleteRegisteredModelPermissionRequest(name=name, user_name=user_name),
        )

    def list_registered_model_permissions(self, name: str) -> list[RegisteredModelPermission]:
        """The permissions granted on a registered model, by user name."""
        response = self._call(
            self._auth_permissions.ListRegisteredModelPermissions,
            auth_pb2.ListRegisteredModelPermissionsRequest(name=name),
        )
        return [_model(p) for p in response.permissions]

    def list_user_permissions(
        self, user_name: str = ""
    ) -> tuple[list[ExperimentPermission], list[RegisteredModelPermission]]:
        """The caller's permissions (or ``user_name``'s, for admins) on experiments and models."""
        response = self._call(
            self._auth_permissions.ListUserPermissions,
            auth_pb2.ListUserPermissionsRequest(user_name=user_name),
        )
        return (
            [_experiment(p) for p in response.experiment_permissions],
            [_model(p) for p in response.registered_model_permissions],
        )
