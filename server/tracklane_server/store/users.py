"""Users and API tokens on SQL, and bearer token -> Principal with a short in-process cache.

Tokens are looked up by the hash of the bearer string (see identity/tokens.py). Resolved tokens are cached
for ``CACHE_TTL_SECONDS`` so a busy client does not cost a query per call; every change made
through this store (revoke, delete or demote a user) clears the cache after it commits and bumps
the access epoch (identity/epoch.py), so it takes effect at once on this server: a lookup that
read the database before the change cannot put its answer back into the cache after it (the cache
has a generation, and only a lookup that started in the current one may fill it). Other replicas
see a revocation within ``CACHE_TTL_SECONDS``.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracklane.exceptions import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from tracklane_server.identity import tokens
from tracklane_server.identity.epoch import AccessEpoch
from tracklane_server.identity.principal import Principal
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.page_tokens import decode_page_token, encode_page_token, fingerprint
from tracklane_server.store.db.transactions import now_ms, transaction
from tracklane_server.store.validation import check_text
from tracklane_server.store.validation import page_size as check_page_size

__all__ = ["CACHE_TTL_SECONDS", "TokenRecord", "UserRecord", "UsersStore", "check_user_name"]

CACHE_TTL_SECONDS = 5.0
_CACHE_MAX = 10_000
#: last_used_time is written at most this often per token: a write per call would cost more than the call.
LAST_USED_RESOLUTION_MS = 60_000
_USER_NAME = re.compile(rf"[A-Za-z0-9_\-.@+]{{1,{t.USER_NAME_LENGTH}}}")


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: int
    name: str
    is_admin: bool
    create_time: int


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str
    user_name: str
    name: str
    create_time: int
    expire_time: int  # 0: never
    last_used_time: int  # 0: never


class NotCached:
    """The answer of resolve_cached when the database must be asked."""


NOT_CACHED = NotCached()


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    expire_time: int
    cached_at: float


def check_user_name(name: str, field: str) -> str:
    """1-256 letters, digits and ``_ - . @ +``."""
    if not _USER_NAME.fullmatch(name):
        raise InvalidArgument(
            f"{field}: a user name has 1 to {t.USER_NAME_LENGTH} letters, digits and _ - . @ +", field=field
        )
    return name


_USER_COLUMNS = (t.users.c.user_id, t.users.c.name, t.users.c.is_admin, t.users.c.create_time)


class UsersStore:
    """Users, their tokens, and token resolution."""

    def __init__(self, engine: Engine, epoch: AccessEpoch | None = None) -> None:
        self.engine = engine
        #: Bumped after every change here that can take access away (open streams re-check).
        self.epoch = epoch or AccessEpoch()
        self._cache: dict[str, _Cached] = {}
        self._generation = 0  # moves on every forget_cached(); guarded by _lock
        self._lock = threading.Lock()

    # -- users -------------------------------------------------------------------------------------

    def create_user(self, name: str, *, is_admin: bool = False) -> UserRecord:
        check_user_name(name, "user.name")
        with transaction(self.engine) as conn:
            return self._insert_user(conn, name, is_admin)

    def _insert_user(self, conn: Connection, name: str, is_admin: bool) -> UserRecord:
        if conn.execute(sa.select(t.users.c.user_id).where(t.users.c.name == name)).first():
            raise AlreadyExists(f"user {name!r} already exists", field="user.name")
        now = now_ms()
        try:
            with conn.begin_nested():
                user_id = conn.execute(
                    t.users.insert()
                    .values(name=name, is_admin=is_admin, create_time=now)
                    .returning(t.users.c.user_id)
                ).scalar_one()
        except sa.exc.IntegrityError:  # created meanwhile by another call
            raise AlreadyExists(f"user {name!r} already exists", field="user.name") from None
        return UserRecord(user_id, name, is_admin, now)

    def get_user(self, name: str, field: str = "name") -> UserRecord:
        with transaction(self.engine) as conn:
            return _user(conn, name, field)

    def list_users(self, page_size: int = 0, page_token: str = "") -> tuple[list[UserRecord], str]:
        size = check_page_size(page_size)
        query = sa.select(*_USER_COLUMNS).order_by(t.users.c.name).limit(size + 1)
        query_print = fingerprint("users")
        if page_token:
            after = decode_page_token(page_token, query_fingerprint=query_print).get("after")
            if not isinstance(after, str):
                raise InvalidArgument("page_token is not a valid page token", field="page_token")
            query = query.where(t.users.c.name > after)
        with transaction(self.engine) as conn:
            rows = [UserRecord(*row) for row in conn.execute(query)]
        if len(rows) <= size:
            return rows, ""
        rows = rows[:size]
        return rows, encode_page_token({"after": rows[-1].name}, query_fingerprint=query_print)

    def update_user(self, name: str, *, is_admin: bool) -> UserRecord:
        """Sets ``is_admin``; FailedPrecondition when that would leave no admin."""
        with transaction(self.engine) as conn:
            user = _user(conn, name, "user.name")
            if user.is_admin and not is_admin:
                _keep_an_admin(conn, user, "demote")
            conn.execute(t.users.update().where(t.users.c.user_id == user.user_id).values(is_admin=is_admin))
        self.forget_cached()
        return UserRecord(user.user_id, user.name, is_admin, user.create_time)

    def delete_user(self, name: str) -> None:
        """Deletes the user; their tokens and permissions go with them (ON DELETE CASCADE)."""
        with transaction(self.engine) as conn:
            user = _user(conn, name, "name")
            if user.is_admin:
                _keep_an_admin(conn, user, "delete")
            conn.execute(t.users.delete().where(t.users.c.user_id == user.user_id))
        self.forget_cached()

    def count_users(self) -> int:
        with transaction(self.engine) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.users)).scalar_one())

    # -- tokens ------------------------------------------------------------------------------------

    def create_token(
        self, user_name: str, *, name: str = "", expire_time: int = 0, secret: str | None = None
    ) -> tuple[TokenRecord, str]:
        """A new token for an existing user; returns it with its secret (not stored)."""
        check_text(name, "name", t.TOKEN_NAME_LENGTH)
        with transaction(self.engine) as conn:
            user = _user(conn, user_name, "user_name")
            return self._insert_token(conn, user, name, expire_time, secret)

    def _insert_token(
        self, conn: Connection, user: UserRecord, name: str, expire_time: int, secret: str | None
    ) -> tuple[TokenRecord, str]:
        now = now_ms()
        if expire_time and expire_time <= now:
            raise InvalidArgument("expire_time: must be in the future", field="expire_time")
        secret = secret or tokens.new_secret()
        record = TokenRecord(tokens.new_token_id(), user.name, name, now, expire_time, 0)
        try:
            with conn.begin_nested():
                conn.execute(
                    t.api_tokens.insert().values(
                        token_id=record.token_id,
                        user_id=user.user_id,
                        name=name,
                        token_hash=tokens.hash_secret(secret),
                        create_time=now,
                        expire_time=expire_time,
                        last_used_time=0,
                    )
                )
        except sa.exc.IntegrityError:  # only a supplied secret can collide; say nothing about it
            raise AlreadyExists("this token is already in use", field="secret") from None
        return record, secret

    def create_user_with_token(self, name: str, *, is_admin: bool, secret: str) -> TokenRecord:
        """The bootstrap: both or neither. AlreadyExists when the user exists."""
        with transaction(self.engine) as conn:
            user = self._insert_user(conn, name, is_admin)
            record, _ = self._insert_token(conn, user, "bootstrap", 0, secret)
            return record

    def list_tokens(self, user_name: str) -> list[TokenRecord]:
        with transaction(self.engine) as conn:
            user = _user(conn, user_name, "user_name")
            rows = conn.execute(
                sa.select(
                    t.api_tokens.c.token_id,
                    t.api_tokens.c.name,
                    t.api_tokens.c.create_time,
                    t.api_tokens.c.expire_time,
                    t.api_tokens.c.last_used_time,
                )
                .where(t.api_tokens.c.user_id == user.user_id)
                .order_by(t.api_tokens.c.create_time, t.api_tokens.c.token_id)
            ).all()
        return [
            TokenRecord(r.token_id, user.name, r.name, r.create_time, r.expire_time, r.last_used_time)
            for r in rows
        ]

    def token_owner(self, token_id: str) -> str:
        """The name of the user a token belongs to. NotFound (``token_id``)."""
        with transaction(self.engine) as conn:
            owner = conn.execute(
                sa.select(t.users.c.name)
                .join(t.api_tokens, t.api_tokens.c.user_id == t.users.c.user_id)
                .where(t.api_tokens.c.token_id == token_id)
            ).scalar_one_or_none()
        if owner is None:
            raise NotFound(f"token {token_id!r} does not exist", field="token_id")
        return str(owner)

    def revoke_token(self, token_id: str) -> None:
        """Deletes the token; it stops working on this server at once. NotFound (``token_id``)."""
        with transaction(self.engine) as conn:
            deleted = conn.execute(t.api_tokens.delete().where(t.api_tokens.c.token_id == token_id)).rowcount
        self.forget_cached()
        if not deleted:
            raise NotFound(f"token {token_id!r} does not exist", field="token_id")

    # -- resolution --------------------------------------------------------------------------------

    def resolve_cached(self, secret: str) -> Principal | NotCached | None:
        """From memory only, so the event loop may call it: the user, None (expired), or NOT_CACHED."""
        digest = tokens.hash_secret(secret)
        with self._lock:
            cached = self._cache.get(digest)
        if cached is None or time.monotonic() - cached.cached_at >= CACHE_TTL_SECONDS:
            return NOT_CACHED
        return cached.principal if not cached.expire_time or now_ms() < cached.expire_time else None

    def resolve(self, secret: str) -> Principal | None:
        """The user of a bearer token; None when it is unknown, revoked or expired."""
        cached = self.resolve_cached(secret)
        if not isinstance(cached, NotCached):
            return cached
        digest = tokens.hash_secret(secret)
        with self._lock:
            generation = self._generation  # before the read: see forget_cached()
        now = now_ms()
        with transaction(self.engine) as conn:
            row = conn.execute(
                sa.select(
                    t.api_tokens.c.token_id,
                    t.api_tokens.c.token_hash,
                    t.api_tokens.c.expire_time,
                    t.api_tokens.c.last_used_time,
                    t.users.c.user_id,
                    t.users.c.name,
                    t.users.c.is_admin,
                )
                .join(t.users, t.users.c.user_id == t.api_tokens.c.user_id)
                .where(t.api_tokens.c.token_hash == digest)
            ).first()
            if row is None or not tokens.hashes_match(row.token_hash, digest):
                return None
            if row.expire_time and now >= row.expire_time:
                return None
            if now - row.last_used_time >= LAST_USED_RESOLUTION_MS:
                touched = conn.execute(
                    t.api_tokens.update()
                    .where(t.api_tokens.c.token_id == row.token_id)
                    .values(last_used_time=now)
                ).rowcount
                if not touched:  # revoked while this read (PostgreSQL waited on the row): refuse
                    return None
        principal = Principal(row.user_id, row.name, bool(row.is_admin), token_expire_time=row.expire_time)
        with self._lock:
            if generation == self._generation:  # else a change committed meanwhile: do not cache
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[digest] = _Cached(principal, row.expire_time, time.monotonic())
        return principal

    def forget_cached(self) -> None:
        """Drops every cached token after a change that may revoke or demote one (committed by then),
        and wakes the open streams to re-check their callers.

        A lookup that read the database before the change still answers its own call (which began
        before the change), but may not cache that answer: the generation it started in is over.
        """
        with self._lock:
            self._cache.clear()
            self._generation += 1
        self.epoch.bump()


def _user(conn: Connection, name: str, field: str) -> UserRecord:
    row = conn.execute(sa.select(*_USER_COLUMNS).where(t.users.c.name == name)).first()
    if row is None:
        raise NotFound(f"user {name!r} does not exist", field=field)
    return UserRecord(*row)


def _keep_an_admin(conn: Connection, user: UserRecord, verb: str) -> None:
    # FOR UPDATE (PostgreSQL): two admins demoting each other at once must not leave none.
    admins = conn.execute(
        sa.select(t.users.c.user_id).where(t.users.c.is_admin.is_(True)).with_for_update()
    ).all()
    if not any(row.user_id != user.user_id for row in admins):
        raise FailedPrecondition(
            f"cannot {verb} {user.name!r}: it is the last admin; make another admin first"
        )
