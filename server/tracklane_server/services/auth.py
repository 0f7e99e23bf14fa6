"""AuthService: who the caller is, users and API tokens. The permission RPCs come from PermissionMethods.

Every RPC answers FAILED_PRECONDITION when the server runs without auth. Admins manage users and
anyone's tokens; others see themselves and manage their own tokens. A non-admin asking about
another user's token gets NOT_FOUND, as if it did not exist. A token made by CreateToken expires no
later than the token that made it, nor past the server's --max-token-days.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from tracklane.exceptions import FailedPrecondition, NotFound, PermissionDenied, Unauthenticated
from tracklane.v1 import auth_pb2, auth_pb2_grpc
from tracklane_server.identity import tokens
from tracklane_server.identity.principal import Principal, current_principal
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.services.auth_permissions import PermissionMethods
from tracklane_server.services.masks import update_fields
from tracklane_server.services.request_checks import checked_requests
from tracklane_server.store.db.transactions import now_ms
from tracklane_server.store.users import TokenRecord, UserRecord, UsersStore

Context = Any  # grpc.aio.ServicerContext; the interceptor turns TracklaneError into its status

_DISABLED = "auth is disabled on this server; start it with --auth true to manage users and tokens"


def _time(ms: int) -> Timestamp | None:
    if not ms:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def user_proto(user: UserRecord) -> auth_pb2.User:
    return auth_pb2.User(name=user.name, is_admin=user.is_admin, create_time=_time(user.create_time))


def token_proto(token: TokenRecord) -> auth_pb2.Token:
    return auth_pb2.Token(
        token_id=token.token_id,
        user_name=token.user_name,
        name=token.name,
        create_time=_time(token.create_time),
        expire_time=_time(token.expire_time),
        last_used_time=_time(token.last_used_time),
    )


@checked_requests
class AuthService(PermissionMethods, auth_pb2_grpc.AuthServiceServicer):
    """Users and tokens over UsersStore; ``enabled`` is the server's auth switch."""

    def __init__(
        self, users: UsersStore, blocking: BlockingCalls, *, enabled: bool, max_token_days: int = 0
    ) -> None:
        self.users = users
        self.blocking = blocking
        self.enabled = enabled
        self.max_token_days = max_token_days

    def caller(self) -> Principal:
        """The authenticated caller.

        Raises:
            FailedPrecondition: auth is disabled.
        """
        if not self.enabled:
            raise FailedPrecondition(_DISABLED, reason="AUTH_DISABLED")
        principal = current_principal()
        if principal is None:  # the interceptor lets no call through without one
            raise Unauthenticated("this call needs a token")
        return principal

    def admin(self) -> Principal:
        """The caller, who must be an admin. PermissionDenied otherwise."""
        principal = self.caller()
        if not principal.is_admin:
            raise PermissionDenied("only admins may do this")
        return principal

    def _subject(self, user_name: str) -> str:
        """``user_name``, or the caller when empty; another user's only for admins."""
        principal = self.caller()
        if not user_name or user_name == principal.name:
            return principal.name
        if not principal.is_admin:
            raise PermissionDenied("only admins may manage other users' tokens", field="user_name")
        return user_name

    async def GetCurrentUser(
        self, request: auth_pb2.GetCurrentUserRequest, context: Context
    ) -> auth_pb2.GetCurrentUserResponse:
        user = await self.blocking.call(self.users.get_user, self.caller().name)
        return auth_pb2.GetCurrentUserResponse(user=user_proto(user))

    async def CreateUser(
        self, request: auth_pb2.CreateUserRequest, context: Context
    ) -> auth_pb2.CreateUserResponse:
        self.admin()
        user = await self.blocking.call(
            self.users.create_user, request.user.name, is_admin=request.user.is_admin
        )
        return auth_pb2.CreateUserResponse(user=user_proto(user))

    async def GetUser(self, request: auth_pb2.GetUserRequest, context: Context) -> auth_pb2.GetUserResponse:
        principal = self.caller()
        if request.name != principal.name and not principal.is_admin:
            raise PermissionDenied("only admins may look up other users", field="name")
        user = await self.blocking.call(self.users.get_user, request.name)
        return auth_pb2.GetUserResponse(user=user_proto(user))

    async def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: Context
    ) -> auth_pb2.ListUsersResponse:
        self.admin()
        users, next_token = await self.blocking.call(
            self.users.list_users, request.page_size, request.page_token
        )
        return auth_pb2.ListUsersResponse(users=[user_proto(u) for u in users], next_page_token=next_token)

    async def UpdateUser(
        self, request: auth_pb2.UpdateUserRequest, context: Context
    ) -> auth_pb2.UpdateUserResponse:
        self.admin()
        update_fields(request, allowed=("is_admin",), implicit={"is_admin": True})
        user = await self.blocking.call(
            self.users.update_user, request.user.name, is_admin=request.user.is_admin
        )
        return auth_pb2.UpdateUserResponse(user=user_proto(user))

    async def DeleteUser(
        self, request: auth_pb2.DeleteUserRequest, context: Context
    ) -> auth_pb2.DeleteUserResponse:
        self.admin()
        await self.blocking.call(self.users.delete_user, request.name)
        return auth_pb2.DeleteUserResponse()

    async def CreateToken(
        self, request: auth_pb2.CreateTokenRequest, context: Context
    ) -> auth_pb2.CreateTokenResponse:
        user_name = self._subject(request.user_name)
        requested = request.expire_time.ToMilliseconds() if request.HasField("expire_time") else 0
        expire_time = tokens.child_expire_time(
            requested, self.caller().token_expire_time, self.max_token_days, now_ms()
        )
        token, secret = await self.blocking.call(
            self.users.create_token, user_name, name=request.name, expire_time=expire_time
        )
        return auth_pb2.CreateTokenResponse(token=token_proto(token), secret=secret)

    async def ListTokens(
        self, request: auth_pb2.ListTokensRequest, context: Context
    ) -> auth_pb2.ListTokensResponse:
        tokens = await self.blocking.call(self.users.list_tokens, self._subject(request.user_name))
        return auth_pb2.ListTokensResponse(tokens=[token_proto(t) for t in tokens])

    async def RevokeToken(
        self, request: auth_pb2.RevokeTokenRequest, context: Context
    ) -> auth_pb2.RevokeTokenResponse:
        principal = self.caller()
        if not principal.is_admin:
            owner = await self.blocking.call(self.users.token_owner, request.token_id)
            if owner != principal.name:  # as if it did not exist: token ids are not to be probed
                raise NotFound(f"token {request.token_id!r} does not exist", field="token_id")
        await self.blocking.call(self.users.revoke_token, request.token_id)
        return auth_pb2.RevokeTokenResponse()
