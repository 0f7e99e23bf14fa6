"""The auth interceptor: ``authorization: Bearer <token>`` -> the call's Principal, or UNAUTHENTICATED.

It wraps each handler's behaviour (as ErrorInterceptor does) so ``set_principal`` runs in the
call's own task, which the service and, through BlockingCalls, the store threads then see. It sits
inside ErrorInterceptor, which turns the Unauthenticated raised here into its status. The standard
health service and reflection stay open: load balancers and grpcurl have no token.

Tokens never reach a log line or an error message: messages say only what was wrong in kind.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from tracklane.exceptions import Unauthenticated
from tracklane_server.auth.policy import is_public
from tracklane_server.auth.principal import Principal, set_principal
from tracklane_server.auth.users_store import NotCached, UsersStore
from tracklane_server.interceptors import responses, rewrap_handler
from tracklane_server.services.base import BlockingCalls

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]

__all__ = ["AuthInterceptor", "bearer_token", "credentials"]
_MISSING = (
    "this server requires a token: send `authorization: Bearer <token>` metadata "
    "(the Python client: token= or TRACKLANE_TRACKING_TOKEN)"
)
_MALFORMED = "the authorization metadata must read `Bearer <token>` (or `Basic` with user name and token)"
_REFUSED = "the token is unknown, expired or revoked"


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The token of ``authorization: Bearer <token>``.

    Raises:
        Unauthenticated: no such metadata, or not a Bearer token.
    """
    token, _user = credentials(metadata)
    return token


def credentials(metadata: Sequence[tuple[str, str | bytes]] | None) -> tuple[str, str]:
    """(token, user name claimed) of ``authorization: Bearer <token>`` (no name claimed) or of
    ``Basic base64(<user>:<token>)``, the form the ``mlflow`` client sends for
    MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (the password is an API token).

    Raises:
        Unauthenticated: no such metadata, or neither form.
    """
    values = [v for k, v in metadata or () if k == "authorization"]
    if not values:
        raise Unauthenticated(_MISSING, reason="TOKEN_MISSING")
    value = values[0]
    scheme, _, token = (value.decode("latin-1") if isinstance(value, bytes) else value).partition(" ")
    token, user = token.strip(), ""
    if len(values) == 1 and scheme.lower() == "basic" and token:
        try:
            user, _, token = base64.b64decode(token, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            token = ""
        if not user:
            token = ""
    elif scheme.lower() != "bearer":
        token = ""
    if len(values) > 1 or not token:
        raise Unauthenticated(_MALFORMED, reason="TOKEN_MALFORMED")
    return token, user


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Sets the caller's Principal for every call but health and reflection; refuses the unknown."""

    def __init__(self, users: UsersStore, blocking: BlockingCalls) -> None:
        self._users = users
        self._blocking = blocking

    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> Principal:
        """The caller of a call with this metadata.

        Raises:
            Unauthenticated: missing, malformed, unknown, expired or revoked token.
        """
        token, claimed_user = credentials(metadata)
        # Cache hits stay on the event loop: they must not queue behind slow store calls.
        principal = self._users.resolve_cached(token)
        if isinstance(principal, NotCached):
            principal = await self._blocking.call(self._users.resolve, token)
        if principal is None or (claimed_user and claimed_user != principal.name):
            # A Basic user name must be the token's own user; saying which part was wrong would
            # tell a guesser that the token is valid.
            raise Unauthenticated(_REFUSED, reason="TOKEN_INVALID")
        return principal

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None or is_public(handler_call_details.method):  # callable without a token
            return handler
        metadata = handler_call_details.invocation_metadata

        def wrap(behaviour: Callable[..., Any], _client_streaming: bool, server_streaming: bool) -> Any:
            make = self._wrap_stream if server_streaming else self._wrap_unary
            return make(behaviour, metadata)

        return rewrap_handler(handler, wrap)

    def _wrap_unary(self, behaviour: Callable[..., Any], metadata: Any) -> Callable[..., Awaitable[Any]]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            set_principal(await self.authenticate(metadata))
            return await behaviour(request, context)

        return wrapper

    def _wrap_stream(self, behaviour: Callable[..., Any], metadata: Any) -> Callable[..., AsyncIterator[Any]]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            set_principal(await self.authenticate(metadata))
            async for response in responses(behaviour(request, context)):
                yield response

        return wrapper
