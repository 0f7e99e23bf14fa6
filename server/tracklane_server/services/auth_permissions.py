"""The permission RPCs of AuthService: grant, revoke and list permissions on experiments and models.

Who may call them (MANAGE on the resource, or admin) is checked by the authorization interceptor
before these run (auth.policy); ListUserPermissions checks here that a non-admin asks about
themselves. Only admins are told that a user name does not exist (store/access.py). Mixed
into services.auth.AuthService, which provides ``users``, ``blocking`` and ``caller()``
(FAILED_PRECONDITION when auth is off).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from tracklane.exceptions import InvalidArgument, PermissionDenied
from tracklane.v1 import auth_pb2
from tracklane_server.identity.principal import Permission, Principal
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.services.request_checks import checked_requests
from tracklane_server.store.access import Grant, PermissionStore
from tracklane_server.store.users import UsersStore

Context = Any  # grpc.aio.ServicerContext

_TO_PROTO = {
    Permission.READ: auth_pb2.PERMISSION_READ,
    Permission.EDIT: auth_pb2.PERMISSION_EDIT,
    Permission.MANAGE: auth_pb2.PERMISSION_MANAGE,
}
_FROM_PROTO = {value: key for key, value in _TO_PROTO.items()}


def permission_from_proto(value: int) -> Permission:
    """INVALID_ARGUMENT (``permission``) for PERMISSION_UNSPECIFIED or an unknown number."""
    try:
        return _FROM_PROTO[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgument(
            "permission: give PERMISSION_READ, PERMISSION_EDIT or PERMISSION_MANAGE", field="permission"
        ) from None


def experiment_permission_proto(grant: Grant) -> auth_pb2.ExperimentPermission:
    return auth_pb2.ExperimentPermission(
        experiment_id=grant.experiment_id, user_name=grant.user_name, permission=_TO_PROTO[grant.permission]
    )


def model_permission_proto(grant: Grant) -> auth_pb2.RegisteredModelPermission:
    return auth_pb2.RegisteredModelPermission(
        name=grant.model_name, user_name=grant.user_name, permission=_TO_PROTO[grant.permission]
    )


@checked_requests
class PermissionMethods:
    """Set/Delete/List permission RPCs, mixed into services.auth.AuthService."""

    users: UsersStore
    blocking: BlockingCalls

    def caller(self) -> Principal:  # AuthService's comes first in its bases
        raise NotImplementedError

    @cached_property
    def permissions(self) -> PermissionStore:
        return PermissionStore(self.users.engine, self.users.epoch)

    async def SetExperimentPermission(
        self, request: auth_pb2.SetExperimentPermissionRequest, context: Context
    ) -> auth_pb2.SetExperimentPermissionResponse:
        grant = await self.blocking.call(
            self.permissions.set_experiment_permission,
            request.experiment_id,
            request.user_name,
            permission_from_proto(request.permission),
            reveal_users=self.caller().is_admin,
        )
        return auth_pb2.SetExperimentPermissionResponse(permission=experiment_permission_proto(grant))

    async def DeleteExperimentPermission(
        self, request: auth_pb2.DeleteExperimentPermissionRequest, context: Context
    ) -> auth_pb2.DeleteExperimentPermissionResponse:
        await self.blocking.call(
            self.permissions.delete_experiment_permission,
            request.experiment_id,
            request.user_name,
            reveal_users=self.caller().is_admin,
        )
        return auth_pb2.DeleteExperimentPermissionResponse()

    async def ListExperimentPermissions(
        self, request: auth_pb2.ListExperimentPermissionsRequest, context: Context
    ) -> auth_pb2.ListExperimentPermissionsResponse:
        self.caller()
        grants = await self.blocking.call(self.permissions.list_experiment_permissions, request.experiment_id)
        return auth_pb2.ListExperimentPermissionsResponse(
            permissions=[experiment_permission_proto(g) for g in grants]
        )

    async def SetRegisteredModelPermission(
        self, request: auth_pb2.SetRegisteredModelPermissionRequest, context: Context
    ) -> auth_pb2.SetRegisteredModelPermissionResponse:
        grant = await self.blocking.call(
            self.permissions.set_model_permission,
            request.name,
            request.user_name,
            permission_from_proto(request.permission),
            reveal_users=self.caller().is_admin,
        )
        return auth_pb2.SetRegisteredModelPermissionResponse(permission=model_permission_proto(grant))

    async def DeleteRegisteredModelPermission(
        self, request: auth_pb2.DeleteRegisteredModelPermissionRequest, context: Context
    ) -> auth_pb2.DeleteRegisteredModelPermissionResponse:
        await self.blocking.call(
            self.permissions.delete_model_permission,
            request.name,
            request.user_name,
            reveal_users=self.caller().is_admin,
        )
        return auth_pb2.DeleteRegisteredModelPermissionResponse()

    async def ListRegisteredModelPermissions(
        self, request: auth_pb2.ListRegisteredModelPermissionsRequest, context: Context
    ) -> auth_pb2.ListRegisteredModelPermissionsResponse:
        self.caller()
        grants = await self.blocking.call(self.permissions.list_model_permissions, request.name)
        return auth_pb2.ListRegisteredModelPermissionsResponse(
            permissions=[model_permission_proto(g) for g in grants]
        )

    async def ListUserPermissions(
        self, request: auth_pb2.ListUserPermissionsRequest, context: Context
    ) -> auth_pb2.ListUserPermissionsResponse:
        principal = self.caller()
        user_name = request.user_name or principal.name
        if user_name != principal.name and not principal.is_admin:
            raise PermissionDenied("permission denied: only admins may list another user's permissions")
        experiments, models = await self.blocking.call(self.permissions.list_user_permissions, user_name)
        return auth_pb2.ListUserPermissionsResponse(
            experiment_permissions=[experiment_permission_proto(g) for g in experiments],
            registered_model_permissions=[model_permission_proto(g) for g in models],
        )
