"""Who is calling: set once per call by the auth interceptor, read by the services and stores.

A context variable rather than a parameter: grpc.aio runs each call's handler in one task, and
the interceptor wraps that handler, so everything the call awaits sees the same value.
"""

from __future__ import annotations

import enum
from contextvars import ContextVar
from dataclasses import dataclass


class Permission(enum.IntEnum):
    """Ordered: a higher level includes the lower ones. Stored by name (READ, EDIT, MANAGE)."""

    READ = 1
    EDIT = 2
    MANAGE = 3


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user."""

    user_id: int
    name: str
    is_admin: bool
    #: When the token the call came with expires, epoch milliseconds; 0: never.
    token_expire_time: int = 0


_current: ContextVar[Principal | None] = ContextVar("tracklane_principal", default=None)


def current_principal() -> Principal | None:
    """The caller; None when the server runs without auth (everyone may do everything)."""
    return _current.get()


def set_principal(principal: Principal | None) -> None:
    """For the auth interceptor only, at the start of each call."""
    _current.set(principal)
