"""Who is calling, and the level of users without a grant: set once per call by the auth
interceptors, read by the services and stores (the permission filters of store/access.py).

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


_default: ContextVar[Permission | None] = ContextVar("tracklane_default_permission", default=None)


def parse_default_permission(name: str) -> Permission | None:
    """The ``auth_default_permission`` setting (checked there): ``NONE`` -> None, else its level."""
    return None if name == "NONE" else Permission[name]


def set_default_permission(level: Permission | None) -> None:
    """For the authorization interceptor only, at the start of each call."""
    _default.set(level)


def current_default_permission() -> Permission | None:
    """The level of users without an explicit grant on this call's server; None: no access."""
    return _default.get()
