"""The authorization interceptor: checks each call against its rule in ``auth.policy``.

Placed after the authentication interceptor (which sets the Principal) and inside the error
interceptor (which turns the PermissionDenied raised here into its status). Unary requests are
checked before the handler runs; client-streaming calls have their request iterator wrapped so
each message's run is checked (once per run and call) before the handler sees it. A refused
StreamMetrics batch is answered with a PERMISSION_DENIED ItemError and the stream goes on;
other refusals end the call. Installed only when auth is enabled: without it nothing is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from tracklane.exceptions import PermissionDenied, Unauthenticated
from tracklane_server.auth.permissions import PermissionStore, denied, set_default_permission
from tracklane_server.auth.policy import RULES, Access, Kind, Need, Rule, check_policy, is_public
from tracklane_server.auth.principal import Permission, Principal, current_principal
from tracklane_server.interceptors import responses, rewrap_handler
from tracklane_server.services.base import BlockingCalls

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]

__all__ = ["AuthorizationInterceptor"]

_UNKNOWN = Rule(Access.ADMIN)  # never matched: a method without a rule is refused to everyone


class AuthorizationInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Refuses calls the caller has no permission for; sets the call's default permission."""

    def __init__(
        self, permissions: PermissionStore, blocking: BlockingCalls, default_permission: Permission | None
    ) -> None:
        check_policy()  # fail at start, not on the first call of a forgotten method
        self.permissions = permissions
        self.blocking = blocking
        self.default_permission = default_permission

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_public(method):
            return handler
        rule = RULES.get(method, _UNKNOWN)
        known = method in RULES
        shapes = {
            (False, False): self._unary,
            (False, True): self._unary_stream,
            (True, False): self._stream_unary,
            (True, True): self._stream_stream,
        }
        return rewrap_handler(handler, lambda behaviour, cs, ss: shapes[cs, ss](behaviour, rule, known))

    # -- the four call shapes -----------------------------------------------------------------------

    def _unary(self, behaviour: Callable[..., Any], rule: Rule, known: bool) -> Callable[..., Awaitable[Any]]:
        async def wrapper(request: Any, context: Any) -> Any:
            principal = self._begin(known)
            await self._check(principal, rule, request)
            return await behaviour(request, context)

        return wrapper

    def _unary_stream(
        self, behaviour: Callable[..., Any], rule: Rule, known: bool
    ) -> Callable[..., AsyncIterator[Any]]:
        async def wrapper(request: Any, context: Any) -> AsyncIterator[Any]:
            principal = self._begin(known)
            await self._check(principal, rule, request)
            async for response in responses(behaviour(request, context)):
                yield response

        return wrapper

    def _stream_unary(
        self, behaviour: Callable[..., Any], rule: Rule, known: bool
    ) -> Callable[..., Awaitable[Any]]:
        async def wrapper(requests: AsyncIterator[Any], context: Any) -> Any:
            principal = self._begin(known)
            await self._check(principal, rule, None)
            if rule.per_message and not principal.is_admin:
                requests = self._checked(principal, rule, requests, refused=None)
            return await behaviour(requests, context)

        return wrapper

    def _stream_stream(
        self, behaviour: Callable[..., Any], rule: Rule, known: bool
    ) -> Callable[..., AsyncIterator[Any]]:
        async def wrapper(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            principal = self._begin(known)
            await self._check(principal, rule, None)
            if not rule.per_message or principal.is_admin:
                async for response in responses(behaviour(requests, context)):
                    yield response
                return
            refused: asyncio.Queue[Any] = asyncio.Queue()
            checked = self._checked(principal, rule, requests, refused=refused if rule.refuse else None)
            async for response in _merged(responses(behaviour(checked, context)), refused):
                yield response

        return wrapper

    # -- checks -------------------------------------------------------------------------------------

    def _begin(self, known: bool) -> Principal:
        """The caller, with this server's default permission set for the stores this call reaches."""
        principal = current_principal()
        if principal is None:
            # Authentication runs first and sets the caller on every call it lets through.
            raise Unauthenticated("authentication required: send authorization: Bearer <token>")
        if not known:
            raise PermissionDenied("permission denied: this method is not open to anyone")
        set_default_permission(self.default_permission)
        return principal

    async def _check(self, principal: Principal, rule: Rule, request: Any) -> None:
        """Raises PermissionDenied unless the caller may make this call (``request`` None: the
        rule's needs are checked per message, not here)."""
        if principal.is_admin or rule.access is Access.ANY:
            return
        if rule.access is Access.ADMIN:
            raise PermissionDenied("permission denied: only admins may do this")
        if request is None and rule.per_message:
            return
        for need in rule.needs:
            await self._check_need(principal, need, request)

    async def _check_need(self, principal: Principal, need: Need, request: Any) -> None:
        ids = need.ids_of(request)
        if not ids:
            return
        required = need.level_for(request)
        store = self.permissions
        if need.kind is Kind.RUN:
            levels = await self.blocking.call(store.run_levels, principal, ids)
        elif need.kind is Kind.EXPERIMENT:
            levels = await self.blocking.call(store.experiment_levels, principal, ids)
        elif need.kind is Kind.EXPERIMENT_NAME:
            levels = {ids[0]: await self.blocking.call(store.experiment_level_by_name, principal, ids[0])}
        else:
            levels = {ids[0]: await self.blocking.call(store.model_level, principal, ids[0])}
        for ident in ids:
            level = levels[ident]
            if level is not None and level >= required:
                continue
            if need.if_exists and not await self.blocking.call(store.model_exists, ident):
                continue  # a model this call creates
            raise denied(need.kind.noun, ident)

    async def _checked(
        self,
        principal: Principal,
        rule: Rule,
        requests: AsyncIterator[Any],
        refused: asyncio.Queue[Any] | None,
    ) -> AsyncIterator[Any]:
        """``requests`` with each message's needs checked (each resource once per call). A refused
        message raises PermissionDenied, or with ``refused`` is answered there and left out."""
        refusals: dict[str, str] = {}  # per resource: the refusal's message, "" when allowed
        first = True
        async for request in requests:
            if first or not rule.first_only:
                try:
                    for need in rule.needs:
                        key = f"{need.kind.value}\0{need.ids_of(request)}"
                        if key not in refusals:
                            try:
                                await self._check_need(principal, need, request)
                                refusals[key] = ""
                            except PermissionDenied as exc:
                                refusals[key] = exc.message
                        if refusals[key]:
                            raise PermissionDenied(refusals[key])
                except PermissionDenied as exc:
                    if refused is None or rule.refuse is None:
                        raise
                    refused.put_nowait(rule.refuse(request, exc.message))
                    continue
            first = False
            yield request


async def _merged(responses: AsyncIterator[Any], refused: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    """The handler's answers and the refusals, each as soon as it is ready."""
    source = aiter(responses)
    next_response: asyncio.Future[Any] = asyncio.ensure_future(anext(source))
    next_refusal: asyncio.Future[Any] = asyncio.ensure_future(refused.get())
    try:
        while True:
            done, _ = await asyncio.wait({next_response, next_refusal}, return_when=asyncio.FIRST_COMPLETED)
            if next_refusal in done:
                yield next_refusal.result()
                next_refusal = asyncio.ensure_future(refused.get())
            if next_response in done:
                try:
                    response = next_response.result()
                except StopAsyncIteration:
                    break
                yield response
                next_response = asyncio.ensure_future(anext(source))
        while not refused.empty():  # refusals of the last messages, after the handler ended
            yield refused.get_nowait()
    finally:
        for pending in (next_response, next_refusal):
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending
