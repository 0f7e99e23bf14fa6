"""``tracklane tokens create|list|revoke`` and ``tracklane users create|list|update|delete``.

They call AuthService on the server of ``--tracking-uri`` / $TRACKLANE_TRACKING_URI with the token
in $TRACKLANE_TRACKING_TOKEN (never a flag: command lines are visible to every local user).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from tracklane.client import Client
from tracklane.exceptions import InvalidArgument
from tracklane.v1 import auth_pb2, auth_pb2_grpc

__all__ = ["NewToken", "TokenList", "UserList", "add_commands"]

_DAY_MS = 86_400_000


@dataclass(frozen=True)
class UserInfo:
    name: str
    is_admin: bool
    create_time: int | None

    def render_table(self) -> str:
        """What ``users create`` and ``users update`` print."""
        admin = "yes" if self.is_admin else "no"
        return f"name:    {self.name}\nadmin:   {admin}\ncreated: {_time(self.create_time)}\n"


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    user_name: str
    name: str
    create_time: int | None
    expire_time: int | None
    last_used_time: int | None


@dataclass(frozen=True)
class UserList:
    users: list[UserInfo] = field(default_factory=list)

    def render_table(self) -> str:
        return _rows(
            ("NAME", "ADMIN", "CREATED"),
            [(u.name, "yes" if u.is_admin else "no", _time(u.create_time)) for u in self.users],
        )


@dataclass(frozen=True)
class TokenList:
    tokens: list[TokenInfo] = field(default_factory=list)

    def render_table(self) -> str:
        return _rows(
            ("TOKEN_ID", "USER", "NAME", "CREATED", "EXPIRES", "LAST_USED"),
            [
                (
                    t.token_id,
                    t.user_name,
                    t.name,
                    _time(t.create_time),
                    _time(t.expire_time) or "never",
                    _time(t.last_used_time) or "never",
                )
                for t in self.tokens
            ],
        )


@dataclass(frozen=True)
class NewToken:
    """A created token with its secret, shown this once."""

    token: TokenInfo
    secret: str

    def render_table(self) -> str:
        print("store the secret now: the server keeps only its hash", file=sys.stderr)
        return (
            f"token_id: {self.token.token_id}\n"
            f"user:     {self.token.user_name}\n"
            f"expires:  {_time(self.token.expire_time) or 'never'}\n"
            f"secret:   {self.secret}\n"
        )


def add_commands(commands: Any, with_common: Any) -> None:
    """Adds ``tokens`` and ``users``; ``with_common`` adds --tracking-uri and --output."""
    tokens = commands.add_parser("tokens", help="create, list and revoke API tokens")
    tok = tokens.add_subparsers(dest="tokens_command", required=True, metavar="COMMAND")
    create = with_common(tok.add_parser("create", help="create a token; prints its secret once"))
    create.add_argument("--user", default="", help="whose token (admins only; default: yourself)")
    create.add_argument("--name", default="", help="a label, e.g. ci or laptop")
    create.add_argument("--expires-in", type=float, default=None, metavar="DAYS", help="default: never")
    create.set_defaults(handler=_tokens_create)
    listing = with_common(tok.add_parser("list", help="list tokens (never their secrets)"))
    listing.add_argument("--user", default="", help="whose tokens (admins only; default: yours)")
    listing.set_defaults(handler=_tokens_list)
    revoke = with_common(tok.add_parser("revoke", help="revoke a token at once"))
    revoke.add_argument("token_id", help="the token's id (tokens list shows them)")
    revoke.set_defaults(handler=_tokens_revoke)

    users = commands.add_parser("users", help="create, list, update and delete users (admins)")
    usr = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    user_create = with_common(usr.add_parser("create", help="create a user"))
    user_create.add_argument("name", help="user name (what runs and registry history record)")
    user_create.add_argument("--admin", action="store_true", help="may do everything")
    user_create.set_defaults(handler=_users_create)
    user_list = with_common(usr.add_parser("list", help="list users"))
    user_list.set_defaults(handler=_users_list)
    update = with_common(usr.add_parser("update", help="make a user admin or not"))
    update.add_argument("name", help="user name")
    update.add_argument(
        "--admin",
        action=argparse.BooleanOptionalAction,
        required=True,
        help="admin (--admin) or not (--no-admin)",
    )
    update.set_defaults(handler=_users_update)
    delete = with_common(usr.add_parser("delete", help="delete a user with their tokens and permissions"))
    delete.add_argument("name", help="user name")
    delete.set_defaults(handler=_users_delete)


def _stub(client: Client) -> auth_pb2_grpc.AuthServiceStub:
    return auth_pb2_grpc.AuthServiceStub(client._channel)


def _tokens_create(client: Client, args: argparse.Namespace) -> object:
    request = auth_pb2.CreateTokenRequest(user_name=args.user, name=args.name)
    if args.expires_in is not None:
        if not args.expires_in > 0:
            raise InvalidArgument("--expires-in: a positive number of days", field="expires_in")
        request.expire_time.CopyFrom(_timestamp(int(time.time() * 1000 + args.expires_in * _DAY_MS)))
    response = client._call(_stub(client).CreateToken, request)
    return NewToken(_token(response.token), response.secret)


def _tokens_list(client: Client, args: argparse.Namespace) -> object:
    response = client._call(_stub(client).ListTokens, auth_pb2.ListTokensRequest(user_name=args.user))
    return TokenList([_token(t) for t in response.tokens])


def _tokens_revoke(client: Client, args: argparse.Namespace) -> object:
    client._call(_stub(client).RevokeToken, auth_pb2.RevokeTokenRequest(token_id=args.token_id))
    return {"revoked": args.token_id}


def _users_create(client: Client, args: argparse.Namespace) -> object:
    user = auth_pb2.User(name=args.name, is_admin=args.admin)
    return _user(client._call(_stub(client).CreateUser, auth_pb2.CreateUserRequest(user=user)).user)


def _users_list(client: Client, args: argparse.Namespace) -> object:
    users: list[UserInfo] = []
    request = auth_pb2.ListUsersRequest(page_size=1000)
    while True:
        response = client._call(_stub(client).ListUsers, request)
        users.extend(_user(u) for u in response.users)
        if not response.next_page_token:
            return UserList(users)
        request.page_token = response.next_page_token


def _users_update(client: Client, args: argparse.Namespace) -> object:
    request = auth_pb2.UpdateUserRequest(
        user=auth_pb2.User(name=args.name, is_admin=args.admin), update_mask=FieldMask(paths=["is_admin"])
    )
    return _user(client._call(_stub(client).UpdateUser, request).user)


def _users_delete(client: Client, args: argparse.Namespace) -> object:
    client._call(_stub(client).DeleteUser, auth_pb2.DeleteUserRequest(name=args.name))
    return {"deleted": args.name}


def _ms(message: Any, name: str) -> int | None:
    return int(getattr(message, name).ToMilliseconds()) if message.HasField(name) else None


def _user(user: auth_pb2.User) -> UserInfo:
    return UserInfo(user.name, user.is_admin, _ms(user, "create_time"))


def _token(token: auth_pb2.Token) -> TokenInfo:
    return TokenInfo(
        token.token_id,
        token.user_name,
        token.name,
        _ms(token, "create_time"),
        _ms(token, "expire_time"),
        _ms(token, "last_used_time"),
    )


def _timestamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _time(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    ]
    return "\n".join(lines) + "\n"
