"""Authentication: ``authorization: Bearer <token>`` -> the caller's Principal, or UNAUTHENTICATED.

:meth:`Authenticator.authenticate` is a plain function of the request's metadata (or HTTP headers,
as (name, value) pairs with lower-case names) and the peer: every listener calls it, the gRPC one
through :class:`AuthInterceptor`. The interceptor authenticates in the call's own task before the
request is read: it sits outside LimitsInterceptor (interceptors.py), which defers reading a unary
request until the handler runs, so a caller without a valid token never gets a byte of its body
buffered or decoded. It sets the Principal (and the call's CallAccess, which long-lived calls use to
re-check their caller) for the service and, through BlockingCalls, the store threads. It sits
inside ErrorInterceptor, which turns the Unauthenticated raised here into its status. The standard
health service and reflection stay open: load balancers and grpcurl have no token.

Tokens never reach a log line or an error message: messages say only what was wrong in kind.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from tracklane.exceptions import Unauthenticated
from tracklane.wire.headers import AUTHORIZATION_HEADER
from tracklane_server.auth.policy import is_public
from tracklane_server.auth.revocation import CallAccess, set_access
from tracklane_server.identity.epoch import AccessEpoch
from tracklane_server.identity.principal import Principal, set_principal
from tracklane_server.interceptors import responses, rewrap_handler
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.store.users import NotCached, UsersStore

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]

__all__ = ["AuthInterceptor", "Authenticator", "Metadata", "bearer_token", "credentials"]

log = logging.getLogger(__name__)

#: Request metadata or HTTP headers: (lower-case name, value) pairs.
Metadata = Sequence[tuple[str, str | bytes]]

_MISSING = (
    "this server requires a token: send `authorization: Bearer <token>` metadata "
    "(the Python client: token= or TRACKLANE_TRACKING_TOKEN)"
)
_MALFORMED = "the authorization metadata must read `Bearer <token>` (or `Basic` with user name and token)"
_REFUSED = "the token is unknown, expired or revoked"


def bearer_token(metadata: Metadata | None) -> str:
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
    values = [v for k, v in metadata or () if k == AUTHORIZATION_HEADER]
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


class Authenticator:
    """Resolves bearer tokens through the users store (cache hits stay on the event loop)."""

    def __init__(self, users: UsersStore, blocking: BlockingCalls) -> None:
        self.users = users
        self.blocking = blocking

    @property
    def epoch(self) -> AccessEpoch:
        """Moves whenever access may have been taken away (see auth/revocation.py)."""
        return self.users.epoch

    async def authenticate(self, metadata: Metadata | None, peer: str = "") -> Principal:
        """The caller of a request with this metadata, from ``peer`` (for the log only).

        Raises:
            Unauthenticated: missing, malformed, unknown, expired or revoked token.
        """
        try:
            token, claimed_user = credentials(metadata)
        except Unauthenticated as exc:
            log.debug("refused a call from %s: %s", peer or "?", exc.reason)
            raise
        # Cache hits stay on the event loop: they must not queue behind slow store calls.
        principal = self.users.resolve_cached(token)
        if isinstance(principal, NotCached):
            principal = await self.blocking.call(self.users.resolve, token)
        if principal is None or (claimed_user and claimed_user != principal.name):
            # A Basic user name must be the token's own user; saying which part was wrong would
            # tell a guesser that the token is valid.
            log.debug("refused a call from %s: unknown, expired or revoked token", peer or "?")
            raise Unauthenticated(_REFUSED, reason="TOKEN_INVALID")
        return principal


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Sets the caller's Principal for every call but health and reflection; refuses the unknown."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

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

    async def _begin(self, metadata: Metadata | None, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        peer = context.peer()
        principal = await self.authenticator.authenticate(metadata, peer)
        set_principal(principal)
        set_access(
            CallAccess(
                principal, lambda: self.authenticator.authenticate(metadata, peer), self.authenticator.epoch
            )
        )

    def _wrap_unary(self, behaviour: Callable[..., Any], metadata: Any) -> Callable[..., Awaitable[Any]]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await self._begin(metadata, context)
            return await behaviour(request, context)

        return wrapper

    def _wrap_stream(self, behaviour: Callable[..., Any], metadata: Any) -> Callable[..., AsyncIterator[Any]]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            await self._begin(metadata, context)
            async for response in responses(behaviour(request, context)):
                yield response

        return wrapper
