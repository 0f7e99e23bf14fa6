"""Access that can be taken away during a call: each long-lived call's caller, checked again.

A unary call is authenticated and authorized once, when it starts. A stream (StreamMetrics,
WatchRun, an upload or download) may last for days, so its caller is checked again: at once after
any change on this server that can take access away (a token revoked, a user deleted or demoted, a
permission changed: each bumps the ``AccessEpoch``, identity/epoch.py), and every
``RECHECK_SECONDS`` in any case, which is how changes made through other replicas arrive (their
token cache lives as long).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from tracklane_server.identity.epoch import AccessEpoch
from tracklane_server.identity.principal import Principal

__all__ = ["RECHECK_SECONDS", "CallAccess", "current_access", "set_access"]

#: How old a stream's check of its caller may get before the next message or response re-checks it.
RECHECK_SECONDS = 5.0


class CallAccess:
    """One call's caller, re-authenticated when the epoch moved or the last check is too old.

    Args:
        principal: who the call was authenticated as.
        authenticate: authenticates the call's credentials again (raises Unauthenticated).
        epoch: the server's access epoch.
    """

    def __init__(
        self, principal: Principal, authenticate: Callable[[], Awaitable[Principal]], epoch: AccessEpoch
    ) -> None:
        self.principal = principal
        self._authenticate = authenticate
        self._epoch = epoch
        self._seen = epoch.value
        self._checked = time.monotonic()
        #: Moves on every refresh: what was decided for the caller before must be decided again.
        self.generation = 0

    def stale(self) -> bool:
        """Whether something may have changed since the last check."""
        return self._epoch.value != self._seen or time.monotonic() - self._checked >= RECHECK_SECONDS

    async def refresh(self) -> Principal:
        """Authenticates again (the caller may have been demoted meanwhile).

        Raises:
            Unauthenticated: the token was revoked or expired, or its user deleted.
        """
        seen = self._epoch.value  # read first: a bump during the lookup leaves this stale
        self.principal = await self._authenticate()
        self._seen, self._checked = seen, time.monotonic()
        self.generation += 1
        return self.principal

    async def wait_stale(self) -> None:
        """Until :meth:`stale` would say True."""
        while not self.stale():
            left = RECHECK_SECONDS - (time.monotonic() - self._checked)
            await self._epoch.wait(self._seen, max(left, 0.0))


_current: ContextVar[CallAccess | None] = ContextVar("tracklane_call_access", default=None)


def current_access() -> CallAccess | None:
    """This call's CallAccess; None without auth."""
    return _current.get()


def set_access(access: CallAccess | None) -> None:
    """For the authentication interceptor only, at the start of each call."""
    _current.set(access)
