"""The authorization interceptor: checks each call against its rule in ``auth.policy``.

Placed after the authentication interceptor (which sets the Principal) and inside the error
interceptor (which turns the PermissionDenied raised here into its status). Unary requests are
checked before the handler runs; client-streaming calls have their request iterator wrapped so
each message's run is checked (once per run and call) before the handler sees it. A refused
StreamMetrics batch is answered with a PERMISSION_DENIED ItemError and the stream goes on;
other refusals end the call. Installed only when auth is enabled: without it nothing is checked.

Streams are checked again while they last (auth/revocation.py): when the access epoch moves or the
last check is RECHECK_SECONDS old, the caller is re-authenticated (a revoked token ends the call
with UNAUTHENTICATED), the per-run decisions of a client stream are forgotten (the next batch to a
run no longer writable is refused), and a server-streaming call (WatchRun, a download) has its
rule checked again before its next response, or at once while it waits (PERMISSION_DENIED ends it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from tracklane.exceptions import PermissionDenied, Unauthenticated
from tracklane_server.auth.policy import RULES, Access, Kind, Need, Rule, check_policy, is_public
from tracklane_server.auth.revocation import CallAccess, current_access
from tracklane_server.identity.principal import (
    Permission,
    Principal,
    current_principal,
    set_default_permission,
)
from tracklane_server.interceptors import responses, rewrap_handler
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.store.access import PermissionStore

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]

__all__ = ["AuthorizationInterceptor"]


def denied(kind: str, ident: str) -> PermissionDenied:
    """The one refusal for a resource the caller may not use, whether it exists or not."""
    return PermissionDenied(f"permission denied on {kind} {ident!r} (or it does not exist)")


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

            async def recheck(again: Principal) -> None:
                await self._check(again, rule, request)

            async for response in _guarded(responses(behaviour(request, context)), recheck):
                yield response

        return wrapper

    def _stream_unary(
        self, behaviour: Callable[..., Any], rule: Rule, known: bool
    ) -> Callable[..., Awaitable[Any]]:
        async def wrapper(requests: AsyncIterator[Any], context: Any) -> Any:
            principal = self._begin(known)
            await self._check(principal, rule, None)
            if rule.per_message:
                requests = self._checked(principal, rule, requests, refused=None)
            return await behaviour(requests, context)

        return wrapper

    def _stream_stream(
        self, behaviour: Callable[..., Any], rule: Rule, known: bool
    ) -> Callable[..., AsyncIterator[Any]]:
        async def wrapper(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            principal = self._begin(known)
            await self._check(principal, rule, None)
            if not rule.per_message:
                async for response in _guarded(responses(behaviour(requests, context)), None):
                    yield response
                return
            refused: asyncio.Queue[Any] = asyncio.Queue()
            checked = self._checked(principal, rule, requests, refused=refused if rule.refuse else None)
            merged = _merged(responses(behaviour(checked, context)), refused)
            async for response in _guarded(merged, None):
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
        await self._check_ids(principal, need, need.ids_of(request), need.level_for(request))

    async def _check_ids(
        self, principal: Principal, need: Need, ids: list[str], required: Permission
    ) -> None:
        if not ids or principal.is_admin:
            return
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
        """``requests`` with each message's needs checked (each resource once per call, again after
        the caller is re-checked). A refused message raises PermissionDenied, or with ``refused`` is
        answered there and left out. With ``rule.first_only`` the first message's needs hold for the
        call, and are checked again whenever the caller is."""
        access = current_access()
        generation = access.generation if access is not None else 0
        refusals: dict[str, str] = {}  # per resource: the refusal's message, "" when allowed
        first_needs: list[tuple[Need, list[str], Permission]] = []
        first = True
        async for request in requests:
            if access is not None:
                if access.stale():
                    await access.refresh()  # Unauthenticated ends the call
                if access.generation != generation:
                    generation = access.generation
                    principal = access.principal
                    refusals.clear()
                    for need, ids, level in first_needs:  # PermissionDenied ends the call
                        await self._check_ids(principal, need, ids, level)
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
                if first and rule.first_only:
                    first_needs = [(n, n.ids_of(request), n.level_for(request)) for n in rule.needs]
            first = False
            yield request


async def _guarded(
    source: AsyncIterator[Any], recheck: Callable[[Principal], Awaitable[None]] | None
) -> AsyncIterator[Any]:
    """``source``'s responses while the caller keeps its access: re-checked (``recheck``: the
    call's rule) before each response once stale, and as soon as it goes stale while the call
    waits for its next response. A failed check raises, ending the call."""
    access = current_access()
    if access is None:
        async for item in source:
            yield item
        return
    lock = asyncio.Lock()
    checked = access.generation

    async def ensure(call_access: CallAccess) -> None:
        nonlocal checked
        async with lock:  # a response waits for a check in progress
            if call_access.stale():
                await call_access.refresh()
            if call_access.generation != checked:
                if recheck is not None:
                    await recheck(call_access.principal)
                checked = call_access.generation

    async def watch(call_access: CallAccess) -> None:
        while True:
            await call_access.wait_stale()
            await ensure(call_access)

    it = aiter(source)
    watcher: asyncio.Future[None] = asyncio.ensure_future(watch(access))
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            pending = asyncio.ensure_future(anext(it))
            done, _ = await asyncio.wait({pending, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if watcher in done:
                watcher.result()  # raises the refusal
            try:
                item = await pending
            except StopAsyncIteration:
                return
            pending = None
            await ensure(access)
            yield item
    finally:
        for task in (pending, watcher):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


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
